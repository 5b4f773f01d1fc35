"""Proof that the real FiftyOne services work here: private mongod, a persistent dataset with an
embedded ``vislint`` field and a saved view, seen by a second process and by the App in chromium.

Screenshots go to ../test-artifacts/ (kept by CI)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import write_images
from fo_fixtures import fo_app, fo_db  # noqa: F401  (fixtures)

NAME = "vislint-fo-services"
VIEW = "demo: big"
N, N_BIG = 12, 5


@pytest.fixture(scope="module")
def fo_dataset(fo_db, tmp_path_factory):
    """12 generated JPEGs; ``vislint`` = {score: float, blur: float, is_big: bool}, top-level
    ``vislint_rank`` (int); saved view "demo: big" = the 5 samples with ``vislint.is_big``."""
    import fiftyone as fo
    from fiftyone import ViewField as F

    paths = write_images(tmp_path_factory.mktemp("fo-images"), N, seed=7)
    ds = fo.Dataset(NAME, persistent=True, overwrite=True)
    samples = []
    for i, p in enumerate(paths):
        s = fo.Sample(filepath=str(p), vislint_rank=i)
        s["vislint"] = fo.DynamicEmbeddedDocument(score=i / (N - 1), blur=float(i % 3),
                                                  is_big=i >= N - N_BIG)
        samples.append(s)
    ds.add_samples(samples)
    ds.add_dynamic_sample_fields()
    ds.save_view(VIEW, ds.match(F("vislint.is_big") == True))  # noqa: E712 (a query, not a test)
    return ds


def test_second_process_sees_dataset(fo_dataset, fo_db):
    code = f"""
import json, fiftyone as fo
ds = fo.load_dataset({NAME!r})
print(json.dumps(dict(uri=fo.config.database_uri, n=len(ds), views=ds.list_saved_views(),
                      big=len(ds.load_saved_view({VIEW!r})),
                      score=sorted(ds.values("vislint.score"))[-1],
                      fields=sorted(ds.get_field("vislint").get_field_schema()))))
"""
    out = subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == dict(uri=fo_db.uri, n=N, views=[VIEW], big=N_BIG, score=1.0,
                        fields=["blur", "is_big", "score"])


def test_app_shows_saved_view(fo_dataset, fo_app, artifacts):
    from fo_services import open_in_browser

    app = fo_app(NAME, view=VIEW)
    assert app.view_url.endswith(f"/datasets/{NAME}?view=demo-big")
    page = open_in_browser(app.view_url, artifacts / "fo-services-saved-view.png", min_tiles=N_BIG,
                           expand=("vislint",))
    print(f"App ready in {app.ready_seconds:.1f} s, page ready in {page.seconds:.1f} s")

    assert page.url == app.view_url
    assert page.saved_view == VIEW
    assert page.sample_count == N_BIG
    assert f"{N_BIG} samples" in page.text
    assert page.tiles == N_BIG
    assert {"vislint.score", "vislint.blur", "vislint.is_big", "vislint_rank",
            "filepath"} <= set(page.shown_fields)
    assert {"PRIMITIVES", "VISLINT"} <= set(page.sidebar_groups)
    # The sidebar labels embedded fields by their last path component only.
    lines = {line.strip() for line in page.text.splitlines()}
    assert {"score", "blur", "is_big", "vislint_rank"} <= lines
    assert page.screenshot.stat().st_size > 10_000

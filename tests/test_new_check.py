"""Adding a check is one new file: a check registered from its own module shows up in the
result table, the CLI summary and help, the report, the FiftyOne fields, tags and saved views
and the Label Studio queues — with no change to any of those modules (issue 14)."""
from __future__ import annotations

import importlib
import sys

import pytest

import vislint
from fo_fixtures import fo_db  # noqa: F401  (fixtures)
from ls_fixtures import ls_client, ls_server  # noqa: F401  (fixtures)
from vislint.demo import build_demo

CHECK_FILE = '''
"""A plug-in check: files under 4 kB, which are often thumbnails saved by mistake."""
import numpy as np

from vislint.vocabulary import Check, CheckResult, register


def small_file(ctx):
    size = ctx.meta["file_size"].astype(float)
    flag = ctx.valid & (size < 4096)
    return CheckResult(flag=flag, score=np.where(ctx.valid, (size < 4096).astype(float), np.nan),
                       columns={"file_kib": size / 1024})


register(Check("small_file", "small files", "files under 4 kB", "file size < 4 kB",
               "small_file_check:small_file", evidence=(("file_kib", "float"),),
               view="small files", order=95))
'''


@pytest.fixture(scope="module")
def small_file_check(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "small_file_check.py").write_text(CHECK_FILE)
    sys.path.insert(0, str(folder))
    importlib.import_module("small_file_check")
    yield
    sys.path.remove(str(folder))
    sys.modules.pop("small_file_check", None)
    from vislint.vocabulary import unregister

    unregister("small_file")


@pytest.fixture(scope="module")
def scanned(small_file_check, ls_server):
    info = build_demo(ls_server.document_root / "new-check")
    res = vislint.scan(info.root)
    return info, res


def test_a_new_check_reaches_the_table_summary_help_and_report(scanned, tmp_path):
    from vislint.cli import check_help, summary_text

    _, res = scanned
    img = res.images
    small = img["file_size"] < 4096
    assert small.any() and (~small).any()
    assert (img["is_small_file"] == (small & ~img["is_invalid"])).all()
    assert {"small_file_score", "file_kib"} <= set(img.columns)
    row = res.summary().set_index("check").loc["small_file"]
    assert row["images"] == img["is_small_file"].sum() and row["threshold"] == "file size < 4 kB"
    assert f"  small files             {img['is_small_file'].sum():,}" in summary_text(res)
    assert "small_file       files under 4 kB (flag: file size < 4 kB)" in check_help()
    page = res.report(tmp_path / "report.html").read_text()
    assert '"id":"small_file"' in page and "Small files" in page


def test_a_new_check_reaches_label_studio_and_fiftyone(scanned, ls_server, fo_db):
    import fiftyone as fo

    import vislint.integrations.fiftyone as vfo
    import vislint.integrations.label_studio as vls

    info, res = scanned
    flagged = int(res.images["is_small_file"].sum())
    assert "small files" in vls.queues()
    proj = vls.push(res, url=ls_server.url, api_key=ls_server.api_key, project="new check",
                    document_root=ls_server.document_root)
    tasks = vls.queue_tasks(url=ls_server.url, api_key=ls_server.api_key, project=proj.id,
                            queue="small files")
    assert len(tasks) == flagged and all(t.data["verdicts"] == [{"value": "keep"}, {"value": "remove"}]
                                         for t in tasks)

    ds = fo.Dataset("new-check", overwrite=True)
    ds.add_samples([fo.Sample(filepath=p) for p in res.images["path"]], progress=False)
    run = vfo.scan(ds, key="vl", progress=False)
    assert ds.count_values("vl.is_small_file")[True] == flagged
    assert len(ds.exists("vl.file_kib")) == len(ds)  # its evidence, on every sample
    assert len(ds.match_tags("vl:small_file")) == flagged
    assert "vl: small files" in run.views and len(run.view("small files")) == flagged
    ds.delete()

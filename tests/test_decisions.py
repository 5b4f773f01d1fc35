"""Reviewer decisions honoured by the next scan (vislint.decisions), on the demo data set."""
from __future__ import annotations

import pandas as pd
import pytest

import vislint
from vislint.decisions import DECISIONS_FILE, read_decisions

CHECK_COLUMNS = ["is_near_duplicate", "is_exact_duplicate", "is_leak", "is_label_conflict",
                 "is_dark", "is_blurry", "is_outlier", "duplicate_group", "label"]


def truth(demo_data, kind):
    gt = pd.read_csv(demo_data.root / "ground_truth.csv")
    return gt[gt.kind == kind]


@pytest.fixture(scope="module")
def baseline(demo_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    return vislint.scan(demo_data.root, out=out).images.set_index("relpath")


def rescan(demo_data, tmp_path, rows):
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame(rows).to_csv(out / DECISIONS_FILE, index=False)
    return vislint.scan(demo_data.root, out=out).images.set_index("relpath")


def test_not_duplicate_removes_the_pair_and_nothing_else(demo_data, baseline, tmp_path):
    row = truth(demo_data, "near_duplicate").iloc[0]
    a, b = row.file, row.partner
    assert baseline.loc[a, "is_near_duplicate"] and baseline.loc[b, "is_near_duplicate"]
    after = rescan(demo_data, tmp_path, [{"check": "near_duplicate", "verdict": "not_duplicate",
                                          "image": a, "partner": b, "reviewer": "ann@example.org",
                                          "time": "2026-11-22T10:00:00"}])
    assert not after.loc[a, "is_near_duplicate"] and not after.loc[b, "is_near_duplicate"]
    assert after.loc[a, "duplicate_group"] == -1
    assert after.loc[a, "reviewed"] == "near_duplicate:not_duplicate by ann@example.org"
    others = baseline.index.difference([a, b])
    flags = [c for c in CHECK_COLUMNS if c != "duplicate_group"]
    pd.testing.assert_frame_equal(after.loc[others, flags], baseline.loc[others, flags])


def test_relabel_and_keep(demo_data, baseline, tmp_path):
    copy = truth(demo_data, "mislabeled_copy").iloc[0]
    dark = truth(demo_data, "dark").iloc[0].file
    assert baseline.loc[copy.file, "is_label_conflict"] and baseline.loc[dark, "is_dark"]
    right = baseline.loc[copy.partner, "label"]
    after = rescan(demo_data, tmp_path, [
        {"check": "label_conflict", "verdict": "relabel", "image": copy.file, "new_label": right,
         "reviewer": "bo", "time": "2026-11-22T10:00:00"},
        {"check": "dark", "verdict": "keep", "image": dark, "reviewer": "bo",
         "time": "2026-11-22T10:01:00"},
    ])
    assert after.loc[copy.file, "label"] == right
    assert after.loc[copy.file, "label_original"] == baseline.loc[copy.file, "label"]
    assert not after.loc[copy.file, "is_label_conflict"] and not after.loc[copy.partner, "is_label_conflict"]
    assert after.loc[copy.file, "is_exact_duplicate"]  # still a copy: only the label changed
    assert not after.loc[dark, "is_dark"] and after.loc[dark, "dark_score"] == baseline.loc[dark, "dark_score"]
    assert after.loc[dark, "reviewed"] == "dark:keep by bo"


def test_latest_decision_wins_and_unknown_images_are_ignored(demo_data, baseline, tmp_path):
    dark = truth(demo_data, "dark").iloc[0].file
    after = rescan(demo_data, tmp_path, [
        {"check": "dark", "verdict": "keep", "image": dark, "time": "2026-11-22T10:00:00"},
        {"check": "dark", "verdict": "remove", "image": dark, "time": "2026-11-22T11:00:00"},
        {"check": "dark", "verdict": "keep", "image": "no/such/file.jpg", "time": "2026-11-22T12:00:00"},
    ])
    assert after.loc[dark, "is_dark"] and after.loc[dark, "reviewed"] == "dark:remove"


def test_decisions_are_validated(tmp_path):
    bad = [({"check": "dark", "verdict": "meh", "image": "a.jpg"}, "unknown verdict"),
           ({"check": "leak", "verdict": "not_leak", "image": "a.jpg"}, "needs a partner"),
           ({"check": "label_conflict", "verdict": "relabel", "image": "a.jpg"}, "needs new_label"),
           ({"check": "dark", "verdict": "keep"}, "missing image")]
    for row, message in bad:
        with pytest.raises(ValueError, match=message):
            read_decisions(pd.DataFrame([row]))

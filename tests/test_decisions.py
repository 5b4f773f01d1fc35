"""Reviewer decisions honoured by the next scan (vislint.decisions), on the demo data set."""
from __future__ import annotations

import pandas as pd
import pytest

import vislint
from vislint.decisions import DECISIONS_FILE, read_decisions, write_decisions

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


def test_latest_decision_wins_and_unknown_images_are_listed(demo_data, baseline, tmp_path):
    dark = truth(demo_data, "dark").iloc[0].file
    with pytest.warns(UserWarning, match=r"1 of 3 reviewer decisions name no image of this scan.*"
                                         r"dark:keep no/such/file.jpg \(image: no such image"):
        after = rescan(demo_data, tmp_path, [
            {"check": "dark", "verdict": "keep", "image": dark, "time": "2026-11-22T10:00:00"},
            {"check": "dark", "verdict": "remove", "image": dark, "time": "2026-11-22T11:00:00"},
            {"check": "dark", "verdict": "keep", "image": "no/such/file.jpg", "time": "2026-11-22T12:00:00"},
        ])
    assert after.loc[dark, "is_dark"] and after.loc[dark, "reviewed"] == "dark:remove"
    info = vislint.load(tmp_path / "out").info["decisions"]
    assert (info["rows"], info["applied"], info["unmatched"]) == (3, 2, 1)
    assert info["unmatched_rows"][0]["image"] == "no/such/file.jpg"
    assert info["images_by_verdict"] == {"dark:remove": 1}


def _hashes(baseline, *relpaths):
    return [baseline.loc[r, "content_hash"] for r in relpaths]


def test_decisions_follow_the_content_into_a_scan_of_absolute_paths(demo_data, baseline, tmp_path):
    """A decisions file of paths relative to the scanned folder, with the content hashes a
    Label Studio pull writes, is honoured by a scan of the same files listed by absolute
    path (whose relative paths are other strings); without the hashes it would match
    nothing, and the scan says so."""
    row = truth(demo_data, "near_duplicate").iloc[0]
    a, b = row.file, row.partner
    dark = truth(demo_data, "dark").iloc[0].file
    ha, hb = _hashes(baseline, a, b)
    (hd,) = _hashes(baseline, dark)
    rows = [{"check": "near_duplicate", "verdict": "not_duplicate", "image": a, "partner": b,
             "image_hash": ha, "partner_hash": hb, "reviewer": "ann"},
            {"check": "dark", "verdict": "keep", "image": dark, "image_hash": hd, "reviewer": "ann"}]
    csv = tmp_path / "decisions.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    listed = [str(demo_data.root / r) for r in baseline.index]
    after = vislint.scan(listed, decisions=csv).images.set_index("path")
    for img in (a, b):
        assert not after.loc[str(demo_data.root / img), "is_near_duplicate"]
    assert not after.loc[str(demo_data.root / dark), "is_dark"]
    assert after.loc[str(demo_data.root / dark), "reviewed"] == "dark:keep by ann"
    pd.DataFrame(rows).drop(columns=["image_hash", "partner_hash"]).to_csv(csv, index=False)
    with pytest.warns(UserWarning, match="2 of 2 reviewer decisions name no image"):
        unmatched = vislint.scan(listed, decisions=csv)
    assert unmatched.images["is_dark"].sum() == baseline["is_dark"].sum()


def test_a_decision_names_content_not_a_path(demo_data, baseline, tmp_path):
    """A file replaced by other bytes at the same path does not inherit the decision made on
    the old content; a copy of the decided bytes elsewhere does."""
    dark = truth(demo_data, "dark").iloc[0].file
    (hd,) = _hashes(baseline, dark)
    decision = [{"check": "dark", "verdict": "keep", "image": dark, "image_hash": hd}]
    with pytest.warns(UserWarning, match=r"image: its file has other content now"):
        after = rescan(demo_data, tmp_path, [{**decision[0], "image_hash": "0" * 32}])
    assert after.loc[dark, "is_dark"] and pd.isna(after.loc[dark, "reviewed"])
    listed = [str(demo_data.root / dark), str(demo_data.root / baseline.index[0])]
    csv = tmp_path / "moved.csv"
    pd.DataFrame([{**decision[0], "image": "elsewhere/dark.jpg"}]).to_csv(csv, index=False)
    moved = vislint.scan(listed, decisions=csv).images.set_index("path")
    assert not moved.loc[str(demo_data.root / dark), "is_dark"]


def test_the_summary_says_what_the_decisions_did(demo_data, baseline, tmp_path):
    from vislint.cli import summary_text

    dark = truth(demo_data, "dark").iloc[0].file
    rescan(demo_data, tmp_path, [{"check": "dark", "verdict": "keep", "image": dark}])
    text = summary_text(vislint.load(tmp_path / "out"))
    assert "reviewer decisions: 1 of 1 applied (dark:keep on 1 images)" in text


def test_decisions_are_validated(tmp_path):
    bad = [({"check": "dark", "verdict": "meh", "image": "a.jpg"}, "unknown verdict"),
           ({"check": "leak", "verdict": "not_leak", "image": "a.jpg"}, "needs a partner"),
           ({"check": "label_conflict", "verdict": "relabel", "image": "a.jpg"}, "needs new_label"),
           ({"check": "dark", "verdict": "keep"}, "missing image"),
           ({"check": "rm_rf", "verdict": "keep", "image": "a.jpg"}, "unknown check"),
           ({"check": "dark", "verdict": "not_duplicate", "image": "a.jpg", "partner": "b.jpg"},
            "not_duplicate is not a verdict on dark")]
    for row, message in bad:
        with pytest.raises(ValueError, match=message):
            read_decisions(pd.DataFrame([row]))


def test_a_decisions_file_that_does_not_parse_is_named_with_its_row(tmp_path):
    path = tmp_path / DECISIONS_FILE
    # an unquoted comma: pandas took the first field as the index and shifted the rest
    path.write_text("check,verdict,image\ndark,keep,a.jpg\ndark,keep,b,c.jpg\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}, row 3: 4 fields where the header has 3"):
        read_decisions(path)
    path.write_bytes("check,verdict,image\ndark,keep,caf\xe9.jpg\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"{path}: not UTF-8 text"):
        read_decisions(path)
    path.write_text("check,verdict,image\nrm_rf,keep,a.jpg\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}, row 2 .*unknown check"):
        read_decisions(path)


def test_keep_on_duplicates_is_recorded_and_leaves_the_group_whole(demo_data, baseline, tmp_path):
    row = truth(demo_data, "near_duplicate").iloc[0]
    a, b = row.file, row.partner
    after = rescan(demo_data, tmp_path, [
        {"check": "near_duplicate", "verdict": "keep", "image": img, "reviewer": "ann"}
        for img in (a, b)])
    for img in (a, b):  # still copies: flag, group and score as before, and the decision noted
        assert after.loc[img, "is_near_duplicate"] and after.loc[img, "duplicate_group"] >= 0
        assert after.loc[img, "reviewed"] == "near_duplicate:keep by ann"
    pd.testing.assert_frame_equal(after[CHECK_COLUMNS], baseline[CHECK_COLUMNS])


def test_cells_a_spreadsheet_would_run_are_quoted_and_read_back_as_written(tmp_path):
    names = ["=cmd|' calc'!A0.jpg", "=2+3", "+1.jpg", "-x.jpg", "@SUM(A1).jpg", "'quoted.jpg",
             "'=x.jpg", "plain.jpg"]
    frame = pd.DataFrame({"check": "dark", "verdict": "keep", "image": names,
                          "reviewer": "=HYPERLINK(\"http://x\")"})
    path = write_decisions(frame, tmp_path / DECISIONS_FILE)
    cells = [line.split(",")[2] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert not any(c.lstrip('"').startswith(("=", "+", "-", "@")) for c in cells)
    back = read_decisions(path)
    assert back["image"].tolist() == names and set(back["reviewer"]) == {"=HYPERLINK(\"http://x\")"}


def test_the_report_lists_applied_and_unmatched_decisions(demo_data, baseline, tmp_path):
    from vislint.report import report_html

    dark = truth(demo_data, "dark").iloc[0].file
    with pytest.warns(UserWarning, match="1 of 2"):
        rescan(demo_data, tmp_path, [{"check": "dark", "verdict": "keep", "image": dark},
                                     {"check": "blurry", "verdict": "keep", "image": "gone.jpg"}])
    html = report_html(vislint.load(tmp_path / "out"), max_per_section=1)
    card = html[html.index('<div id="decisions">'):]
    card = card[:card.index("</div>")]
    assert "<th>read</th><td>2</td>" in card and "<th>applied</th><td>1</td>" in card
    assert "dark:keep" in card and "1 name no image of this scan" in card
    assert "blurry:keep gone.jpg — image: no such image in this scan" in card

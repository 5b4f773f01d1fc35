"""``vislint scan NEW --out W --add``: images added to a saved scan (vislint.adding)."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import vislint
from conftest import shared
from test_lookup import loads, plant
from vislint import copy_index, knn
from vislint.adding import COPY_CHECKS
from vislint.catalog import build_catalog

CLI = [sys.executable, "-m", "vislint"]
PAIR_CHECKS = ("exact_duplicate", "near_duplicate", "same_scene", "leak")
KINDS = ("jpeg", "resize", "crop", "hflip", "brightness", "colour", "rotate", "rotate_any")


def pairs(res, check: str) -> dict:
    """{(path, path): score} of a check's pairs."""
    p = res.pairs(check)
    return {tuple(sorted((a, b))): round(float(s), 5)
            for a, b, s in zip(p["path_a"], p["path_b"], p["similarity"])}


def groups(res, check: str) -> set:
    """The groups of a check, each as (representative, frozenset of paths)."""
    g = res.groups(check)
    return {(str(m.path[m.keep].iloc[0]), frozenset(m.path)) for _, m in g.groupby("group")}


def per_image(res, columns) -> pd.DataFrame:
    """Columns of the images table by path (ids of other images as paths; lists as sets)."""
    images = res.images.set_index("path")
    path_of = dict(zip(res.images["id"], res.images["path"]))
    out = pd.DataFrame(index=images.index)
    for c in columns:
        values = images[c]
        if c in ("duplicate_of", "scene_of", "nearest_id"):
            values = values.map(lambda i: path_of.get(i))
        elif c == "leak_partners":
            values = values.map(lambda s: frozenset(path_of[i] for i in s.split(";")) if isinstance(s, str) else None)
        out[c] = values
    return out


NEIGHBOURS = ("nearest_id", "nearest_similarity", "suggested_label", "label_agreement",
              "label_conflict_score")
"""Columns read off an image's neighbour list (the nearest one; without embeddings, the
label vote, which flags nothing, and the label check's score, which is the vote's)."""


def columns_of(names) -> list[str]:
    """The columns of these checks that do not depend on how groups are numbered (the
    groups are compared as sets), on the wording of the evidence, or on neighbours."""
    from vislint.vocabulary import check

    out = []
    for name in names:
        c = check(name)
        out += [c.flag] + ([c.score] if c.scored else []) + [col for col, _ in c.evidence]
    return [c for c in out if c not in NEIGHBOURS + (
        "exact_group", "duplicate_group", "scene_group", "duplicate_evidence", "scene_evidence")]


def intel_frame() -> pd.DataFrame:
    cat = build_catalog(shared("intel-scenes-sample"))
    return pd.DataFrame({"path": cat.paths, "label": cat.labels, "split": cat.splits})


def planted_frame(originals: pd.DataFrame, folder) -> pd.DataFrame:
    """Edited copies of ``originals`` (path, label, split), in other splits than their
    original's, every third under another label."""
    copies = plant(list(originals.path), folder, KINDS, seed=1)
    labels = sorted(set(originals.label.dropna()))
    rows = []
    for k, (copy, original) in enumerate(copies.items()):
        o = originals[originals.path == original].iloc[0]
        label = (labels[(labels.index(o.label) + 1) % len(labels)]
                 if k % 3 == 0 and isinstance(o.label, str) else o.label)
        split = "test" if o.split != "test" else "train"
        rows.append((copy, label, split))
    return pd.DataFrame(rows, columns=["path", "label", "split"])


def test_images_added_to_a_saved_scan_are_checked_as_a_scan_of_all_of_them(tmp_path):
    """Intel photos: a scan of 3,000, then the other 999 and 120 planted copies of saved ones
    added (in other splits, a third under another label). The copy checks — pairs, groups,
    every flag, score and evidence column — are those of one scan of all 4,119; so are the
    new images' quality checks; saved images no new one reaches keep every column as saved."""
    frame = intel_frame()
    rng = np.random.default_rng(1)
    saved_rows = np.zeros(len(frame), bool)
    saved_rows[rng.choice(len(frame), 3000, replace=False)] = True
    index, rest = frame[saved_rows], frame[~saved_rows]
    planted = planted_frame(index.sample(120, random_state=1), tmp_path / "planted")
    new = pd.concat([rest, planted], ignore_index=True)
    work = tmp_path / "work"
    vislint.scan(index, out=work)
    before, before_groups = vislint.load(work).images, vislint.load(work).group_table
    added = vislint.scan(new, out=work, add=True)
    full = vislint.scan(pd.concat([index, new], ignore_index=True))

    assert list(added.images.path) == list(index.path) + list(new.path)
    for check in PAIR_CHECKS:
        assert pairs(added, check) == pairs(full, check), check
    for check in COPY_CHECKS:
        assert groups(added, check) == groups(full, check), check
    assert len(pairs(added, "leak")) >= 100 and len(groups(added, "label_conflict")) >= 30
    pd.testing.assert_frame_equal(per_image(added, columns_of(COPY_CHECKS)),
                                  per_image(full, columns_of(COPY_CHECKS)))
    # what is read off the neighbour lists: the saved images' stay as saved, and the new
    # images' are searched in the descriptor centred on the saved images (the full scan
    # centres it on all): nearly always the same neighbour
    mine, theirs = per_image(added, NEIGHBOURS).loc[new.path], per_image(full, NEIGHBOURS).loc[new.path]
    for c in ("nearest_id", "suggested_label"):
        same = (mine[c] == theirs[c]) | (mine[c].isna() & theirs[c].isna())
        assert same.mean() >= 0.98, (c, same.mean())
    quality = columns_of(("invalid", "blurry", "dark", "bright", "low_information", "grayscale",
                          "odd_size"))
    pd.testing.assert_frame_equal(per_image(added, quality).loc[new.path],
                                  per_image(full, quality).loc[new.path])
    # the planted copies found with their originals
    originals = index.sample(120, random_state=1).path
    copies = {**pairs(added, "near_duplicate"), **pairs(added, "exact_duplicate")}
    hits = [tuple(sorted((c, o))) in copies for c, o in zip(planted.path, originals)]
    assert np.mean(hits) >= 0.97, np.mean(hits)
    # the saved images' other columns stay as saved, and so do the groups no new image joined,
    # with their numbers
    ours = [c for name in COPY_CHECKS for c in every_column(name)]
    other = [c for c in before.columns if c not in ours]
    pd.testing.assert_frame_equal(added.images.iloc[:len(index)][other].reset_index(drop=True),
                                  before[other].reset_index(drop=True))
    kept = 0
    for (check, number), g in vislint.load(work).group_table.groupby(["check", "group"]):
        if not set(g.path) & set(new.path):
            was = before_groups[(before_groups.check == check) & (before_groups.group == number)]
            assert set(was.path) == set(g.path)
            kept += 1
    assert kept >= 10


def every_column(name: str) -> list[str]:
    from vislint.vocabulary import check

    c = check(name)
    return [c.flag] + ([c.score] if c.scored else []) + [col for col, _ in c.evidence]


def demo_split(demo_data, tmp_path):
    """The demo's images as (saved, added) DataFrames with their labels and splits; the added
    ones hold planted copies of saved images."""
    cat = build_catalog(demo_data.root)
    frame = pd.DataFrame({"path": cat.paths, "label": cat.labels, "split": cat.splits})
    frame = frame[frame.path.map(lambda p: p.endswith(".jpg"))]
    saved = frame.sample(frac=2 / 3, random_state=3).sort_index()
    good = [p for p in saved.path if loads(p)]
    copies = plant(good[:12], tmp_path / "planted", KINDS, seed=2)
    added = pd.concat([frame.drop(saved.index),
                       pd.DataFrame({"path": list(copies), "label": None, "split": "test"})],
                      ignore_index=True)
    return saved, added, copies


@pytest.mark.parametrize("exact_max", [None, 5])
def test_the_copy_index_takes_the_added_images(demo_data, tmp_path, monkeypatch, exact_max):
    """With the copy index saved (below 20,000 images only when told to; the IVF made from
    five images when exact_max is 5), an add extends it: its vectors, IVF, statistics and
    cache locations hold every valid image, and a query finds copies of added images."""
    monkeypatch.setattr(copy_index, "SAVED_FROM", 0)
    if exact_max:
        monkeypatch.setattr(knn, "EXACT_MAX", exact_max)
    saved, added, _ = demo_split(demo_data, tmp_path)
    work = tmp_path / "work"
    vislint.scan(saved, out=work)
    vectors = next(work.glob("tables-*")) / "copy-vectors.npy"
    inode = vectors.stat().st_ino
    res = vislint.scan(added, out=work, add=True)
    folder = next(work.glob("tables-*"))
    # the saved vectors linked, not copied; the added ones a part of their own
    assert (folder / "copy-vectors.npy").stat().st_ino == inode
    assert (folder / "copy-vectors-1.npy").exists()
    index = copy_index.Saved.open(folder)
    valid = int((~res.images.is_invalid).sum())
    assert len(index.copy) == len(index.stats) == len(index.cache_locs) == valid
    assert (index.copy_ivf is not None) == bool(exact_max)
    if exact_max:
        assert index.copy_ivf.ntotal == valid
        assert index.rotation_ivf.ntotal == len(index.rotation) == len(index.rotation_rows)
    # copies of images that were added are found in the index (read through the saved cache
    # locations, hashes checked)
    fresh = [p for p in added.path if loads(p)][:6]
    copies = plant(fresh, tmp_path / "copies", ("jpeg", "resize", "crop"), seed=3)
    found = vislint.query(sorted(copies), work).matches
    hits = {(q, m) for q, m, k in zip(found.query_path, found.match_path, found.kind)
            if k in ("exact", "copy")}
    assert sum((c, o) in hits for c, o in copies.items()) >= 5, hits


def test_added_twice_the_images_are_skipped_and_nothing_changes(demo_data, tmp_path, capsys):
    saved, added, _ = demo_split(demo_data, tmp_path)
    work = tmp_path / "work"
    vislint.scan(saved, out=work)
    vislint.scan(added, out=work, add=True, progress=True)
    shown = capsys.readouterr().err  # the decoding's bar, then the add's steps
    assert "adding" in shown and "4/4" in shown, shown[-500:]
    first, tables = vislint.load(work), sorted(work.glob("tables-*"))
    with pytest.warns(UserWarning, match=f"{len(added):,} of the images to add are in the scan"):
        again = vislint.scan(added, out=work, add=True)
    pd.testing.assert_frame_equal(again.images, first.images)
    pd.testing.assert_frame_equal(again.pair_table, first.pair_table)
    assert again.info["added"][-1]["images"] == 0
    assert vislint.load(work).info == first.info and sorted(work.glob("tables-*")) == tables


def test_an_add_that_fails_leaves_the_saved_scan_as_it_was(demo_data, tmp_path, monkeypatch):
    """Nothing replaces the saved scan until the new one is whole: an add that dies while
    writing leaves the work dir holding the saved scan, and the next add completes."""
    saved, added, _ = demo_split(demo_data, tmp_path)
    work = tmp_path / "work"
    vislint.scan(saved, out=work)
    before = vislint.load(work).images

    def dies(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(vislint.ScanResults, "save_manifest", dies)
    with pytest.raises(OSError, match="disk full"):
        vislint.scan(added, out=work, add=True)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(vislint.load(work).images, before)
    assert len(vislint.scan(added, out=work, add=True)) == len(saved) + len(added)


def test_an_interrupted_add_resumes_without_decoding_again(demo_data, tmp_path, monkeypatch):
    """Ctrl-C after the new images were decoded: the work dir still holds the saved scan, and
    the next add decodes nothing (the chunks written since the saved scan are read back) and
    ends with what an add that ran through gives. Unusable files are added with their reason."""
    from vislint import adding, decode

    monkeypatch.setattr(copy_index, "SAVED_FROM", 0)  # (the saved chunks are then skipped)
    saved, added, _ = demo_split(demo_data, tmp_path)
    work, other = tmp_path / "work", tmp_path / "other"
    vislint.scan(saved, out=work)
    vislint.scan(saved, out=other)
    whole = vislint.scan(added, out=other, add=True).images
    before = vislint.load(work).images
    real = adding.compare
    monkeypatch.setattr(adding, "compare", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        vislint.scan(added, out=work, add=True)
    pd.testing.assert_frame_equal(vislint.load(work).images, before)
    monkeypatch.setattr(adding, "compare", real)
    described = []
    real_chunk = decode._describe_chunk

    def counted(*args, **kwargs):
        result = real_chunk(*args, **kwargs)
        described.append(0 if result[1] is None else len(result[1]["hash"]))
        return result

    monkeypatch.setattr(decode, "_describe_chunk", counted)
    again = vislint.scan(added, out=work, add=True, threads=1).images
    assert described and sum(described) == 0, described
    pd.testing.assert_frame_equal(again.drop(columns="reviewed"), whole.drop(columns="reviewed"))
    bad = again[again.is_invalid]
    assert len(bad) and bad.invalid_reason.notna().all()


def test_a_reviewer_s_not_duplicate_holds_for_added_images(demo_data, tmp_path):
    """A decision naming a saved image and a file not yet scanned (by its content hash, as
    pulled from a review) keeps the pair apart when that file is added."""
    from vislint.decisions import DECISIONS_FILE

    saved, added, copies = demo_split(demo_data, tmp_path)
    work = tmp_path / "work"
    vislint.scan(saved, out=work)
    plain = vislint.scan(added, out=tmp_path / "other", add=False)  # (hashes of the added)
    hashes = dict(zip(plain.images.path, plain.images.content_hash))
    work2 = tmp_path / "work2"
    vislint.scan(saved, out=work2)
    first = vislint.scan(added, out=work2, add=True)
    pair = next((c, o) for c, o in copies.items()
                if tuple(sorted((c, o))) in pairs(first, "near_duplicate"))
    pd.DataFrame([{"check": "near_duplicate", "verdict": "not_duplicate", "image": pair[0],
                   "partner": pair[1], "image_hash": hashes[pair[0]],
                   "reviewer": "ann@example.org"}]).to_csv(work / DECISIONS_FILE, index=False)
    res = vislint.scan(added, out=work, add=True)
    assert tuple(sorted(pair)) not in pairs(res, "near_duplicate")
    assert res.images.set_index("path").loc[pair[0], "reviewed"] == \
        "near_duplicate:not_duplicate by ann@example.org"


def test_an_add_takes_the_saved_settings_and_says_what_it_cannot_do(demo_data, tmp_path):
    saved, added, _ = demo_split(demo_data, tmp_path)
    work = tmp_path / "work"
    with pytest.raises(FileNotFoundError, match="holds no saved scan"):
        vislint.scan(added, out=work, add=True)
    with pytest.raises(ValueError, match="give the work dir"):
        vislint.scan(added, add=True)
    vislint.scan(saved, out=work)
    with pytest.raises(ValueError, match="drop thresholds, k"):
        vislint.scan(added, out=work, add=True, k=5, thresholds={"near_duplicate": 0.9})
    vectors = np.random.default_rng(0).normal(size=(len(saved), 8)).astype(np.float32)
    vislint.scan(saved, out=tmp_path / "semantic", embeddings=vectors)
    with pytest.raises(ValueError, match="made with embeddings: images cannot be added"):
        vislint.scan(added, out=tmp_path / "semantic", add=True)


def test_scan_add_command(demo_data, tmp_path):
    saved, added, _ = demo_split(demo_data, tmp_path)
    saved.to_csv(tmp_path / "saved.csv", index=False)
    added.to_csv(tmp_path / "added.csv", index=False)
    work = tmp_path / "work"
    subprocess.run(CLI + ["scan", str(tmp_path / "saved.csv"), "--out", str(work), "-q"],
                   check=True, capture_output=True)
    done = subprocess.run(CLI + ["scan", str(tmp_path / "added.csv"), "--out", str(work), "--add",
                                 "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["images"] == len(saved) + len(added)
    assert summary["added"][-1]["images"] == len(added) and summary["added"][-1]["skipped"] == 0
    text = subprocess.run(CLI + ["scan", str(tmp_path / "added.csv"), "--out", str(work), "--add",
                                 "-q", "--no-report"], capture_output=True, text=True)
    assert text.stdout.startswith(f"vislint added 0 images to the scan ({len(added):,} were in "
                                  f"it already): {len(saved) + len(added):,} images"), text.stdout
    assert (work / "report.html").stat().st_size > 0
    assert len(vislint.load(work).images) == len(saved) + len(added)
    refused = subprocess.run(CLI + ["scan", str(tmp_path / "added.csv"), "--out", str(work),
                                    "--add", "--k", "5"], capture_output=True, text=True)
    assert refused.returncode != 0 and "drop k" in refused.stderr

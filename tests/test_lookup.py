"""``vislint query``: new images checked against a saved scan (vislint.lookup)."""
from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import vislint
from conftest import fingerprint, shared, write_images
from natural import intel_truth, pair_key
from planted import _save, transform
from vislint.workdir import WorkDirError

CLI = [sys.executable, "-m", "vislint"]
KINDS = {"exact_duplicate": "exact", "near_duplicate": "copy", "same_scene": "same_scene"}


def plant(originals: list[str], dest: Path, kinds, seed: int = 0) -> dict[str, str]:
    """A transformed copy of each original in ``dest`` (kinds in turn): {copy path: original}."""
    rng = random.Random(seed)
    out = {}
    for i, src in enumerate(originals):
        kind = kinds[i % len(kinds)]
        im, _, quality = transform(Image.open(src).convert("RGB"), kind, rng)
        path = dest / f"{i:03d}_{kind}.jpg"
        _save(im, path, quality)
        out[str(path)] = src
    return out


def cross_pairs(results, index_paths: set[str]) -> dict[tuple[str, str], str]:
    """{(query path, indexed path): kind} of a scan's copy and same-scene pairs that join an
    image of ``index_paths`` with one that is not."""
    out = {}
    for check, kind in KINDS.items():
        p = results.pairs(check)
        for a, b in zip(p["path_a"], p["path_b"]):
            if (a in index_paths) != (b in index_paths):
                out.setdefault((b, a) if a in index_paths else (a, b), kind)
    return out


def found(res) -> dict[tuple[str, str], str]:
    m = res.matches
    return dict(zip(zip(m["query_path"], m["match_path"]), m["kind"]))


def agreement(index: list[str], queries: list[str], work: Path):
    """(what a query of ``queries`` against a scan of ``index`` finds, what a scan of both
    together finds between them, that scan)."""
    vislint.scan(index, out=work)
    res = vislint.query(queries, work)
    both = vislint.scan(index + queries)
    return res, found(res), cross_pairs(both, set(index)), both


def graph_similarity(results, a: str, b: str) -> float:
    """The copy-space similarity of two images in a scan's kNN graph (NaN: not neighbours)."""
    row = {p: i for i, p in enumerate(results.images["path"])}
    g = results.graphs["copy"]
    for x, y in ((row[a], row[b]), (row[b], row[a])):
        hit = np.flatnonzero(g.neighbors[x] == y)
        if len(hit):
            return float(g.sims[x, hit[0]])
    return float("nan")


def loads(path: str) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return min(im.size) >= 32
    except OSError:
        return False


def test_query_finds_what_a_scan_of_index_and_query_together_finds(demo_data, tmp_path):
    paths = sorted(str(p) for p in demo_data.root.rglob("*.jpg"))
    rng = random.Random(3)
    index = sorted(rng.sample(paths, len(paths) * 2 // 3))
    rest = sorted(set(paths) - set(index))
    good = [p for p in index if loads(p)]  # the demo plants broken files too
    copies = plant(rng.sample(good[2:], 12), tmp_path / "planted",
                   ("jpeg", "resize", "crop", "hflip", "brightness", "rotate_any"))
    shutil.copy(good[0], tmp_path / "planted" / "bytes.jpg")
    Image.open(good[1]).save(tmp_path / "planted" / "pixels.png")
    queries = rest + sorted(str(p) for p in (tmp_path / "planted").iterdir())
    res, got, ref, both = agreement(index, queries, tmp_path / "index")
    # The query centres the descriptor on the indexed images (as their scan did), a scan of
    # both on all of them: a similarity near the candidate threshold (0.85) can fall on either
    # side of it. Any pair found by one and not the other must be such a pair.
    differ = got.items() ^ ref.items()
    assert len(differ) <= 2, differ
    sims = dict(zip(zip(res.matches["query_path"], res.matches["match_path"]), res.matches["similarity"]))
    for (q, m), _ in differ:
        near = [s for s in (sims.get((q, m), np.nan), graph_similarity(both, q, m)) if np.isfinite(s)]
        assert near and min(abs(s - 0.85) for s in near) < 0.05, (q, m, near)
    assert got[(str(tmp_path / "planted" / "bytes.jpg"), good[0])] == "exact"
    assert got[(str(tmp_path / "planted" / "pixels.png"), good[1])] == "exact"
    hits = [got.get((c, o)) in ("exact", "copy") for c, o in copies.items()]
    assert sum(hits) >= 11, hits
    images = res.images
    assert set(images["status"]) <= {"exact", "copy", "same_scene", "new"}
    counts = res.counts()
    assert counts["exact"] + counts["copy"] + counts["same_scene"] + counts["new"] == len(queries)
    # an image's status is its best match's kind, and every match names an indexed image
    for q, status, best in zip(images["path"], images["status"], images["best_match_path"]):
        mine = {m: k for (qq, m), k in got.items() if qq == q}
        assert (status == "new") == (not mine)
        if mine:
            assert mine[best] == status
    assert set(res.matches["match_path"]) <= set(index)


@pytest.mark.parametrize("exact_max,on_disk", [(None, False), (5, False), (5, True)])
def test_the_copy_index_saved_with_a_scan_answers_as_the_features_in_its_cache(
        demo_data, tmp_path, monkeypatch, exact_max, on_disk):
    """A query through the copy index a scan saves (its centred vectors, memory-mapped, and
    IVF indexes) finds exactly what one that fits everything again from the feature cache
    finds: with exact searches, with every search approximate (exact_max 5), and from a large
    scan (on_disk: its vectors in files of the work dir; of valid images only, so the index
    links the scan's file rather than copying it)."""
    from vislint import copy_index, knn, pipeline
    from vislint.copy_index import Saved

    monkeypatch.setattr(copy_index, "SAVED_FROM", 0)  # (saved from 20,000 images)
    if exact_max is not None:
        monkeypatch.setattr(knn, "EXACT_MAX", exact_max)
    if on_disk:
        monkeypatch.setattr(pipeline, "ON_DISK_FROM", 0)
    paths = sorted(str(p) for p in demo_data.root.rglob("*.jpg"))
    rng = random.Random(5)
    index = sorted(rng.sample(paths, len(paths) * 2 // 3))
    good = [p for p in index if loads(p)]
    copies = plant(rng.sample(good, 12), tmp_path / "planted",
                   ("jpeg", "resize", "crop", "hflip", "brightness", "rotate_any"))
    queries = sorted(set(paths) - set(index)) + sorted(copies)
    work = tmp_path / "index"
    if on_disk:
        index = good
    res = vislint.scan(index, out=work)
    tables = next(work.glob("tables-*"))
    assert isinstance(res.features, np.memmap) == on_disk
    if on_disk:
        assert (tables / "copy-vectors.npy").stat().st_ino == os.stat(res.features.filename).st_ino
    saved = Saved.open(tables)
    valid = ~vislint.load(work).images["is_invalid"].to_numpy(bool)
    assert saved is not None and len(saved.copy) == valid.sum() == len(saved.stats)
    assert (saved.copy_ivf is not None) == (exact_max is not None)
    # its searches give what those over the features fitted again from the cache give
    from vislint import _native
    from vislint.checks.rotation import COLOUR_DIMS
    from vislint.features import Builtin, Centring
    from vislint.lookup import Index

    base = Index(work)
    got = base.cache.gather(base.hashes, fields=("raw", "stats", "rot"))
    gray = got["stats"][:, _native.STAT_NAMES.index("channel_diff")] < base.thresholds.grayscale
    fit = Centring.fit(got["raw"], Builtin.colour_dims, gray)
    want = knn.cross_neighbors(fit.apply(got["raw"], gray), fit.apply(got["raw"], gray), 10)
    for a, b in zip(saved.copy_neighbors(got["raw"], gray, 10, 2), want):
        np.testing.assert_array_equal(a, b)
    j = saved.rotation_rows
    from vislint.checks.rotation import judged
    info = base.cache.gather(base.hashes, fields=("rot_info",))["rot_info"]
    entropy = got["stats"][:, _native.STAT_NAMES.index("entropy")]
    np.testing.assert_array_equal(j, np.flatnonzero(judged(np.ones(len(info), bool), info,
                                                           entropy)))
    fit = Centring.fit(got["rot"][j], COLOUR_DIMS, gray[j])
    want = knn.cross_neighbors(fit.apply(got["rot"][j], gray[j]), fit.apply(got["rot"][j], gray[j]), 6)
    for a, b in zip(saved.rotation_neighbors(got["rot"][j], gray[j], 6, 2), want):
        np.testing.assert_array_equal(a, b)
    # where each image is in the cache is saved too: the query reads its candidates'
    # thumbnails and polar grids from there, without opening the cache
    assert saved.cache_locs is not None and len(saved.cache_locs) == valid.sum()
    from vislint import lookup

    calls, opened = [], []
    search, open_cache = Saved.copy_neighbors, lookup.FeatureCache
    monkeypatch.setattr(Saved, "copy_neighbors", lambda *a: calls.append(1) or search(*a))
    monkeypatch.setattr(lookup, "FeatureCache", lambda root, *a, **kw: opened.append(root)
                        or open_cache(root, *a, **kw))
    with_index = vislint.query(queries, work)
    assert opened == [None]  # (the query images' own, in memory)
    assert calls and found(with_index).values() and sum(found(with_index)[(c, o)] in ("exact", "copy")
                                              for c, o in copies.items()) >= 11
    for name in [f.name for f in tables.iterdir()
                 if f.name.startswith(("copy-", "rotation-"))]:
        (tables / name).unlink()
    assert Saved.open(tables) is None
    from_cache = vislint.query(queries, work)
    pd.testing.assert_frame_equal(with_index.matches, from_cache.matches)
    pd.testing.assert_frame_equal(with_index.images, from_cache.images)


def test_a_scan_of_fewer_images_than_saved_from_saves_no_copy_index(demo_scan):
    from vislint import copy_index

    res, out = demo_scan
    assert len(res.images) < copy_index.SAVED_FROM
    tables = next(out.glob("tables-*"))
    assert not [f for f in tables.iterdir() if f.name.startswith(("copy-", "rotation-"))]
    assert copy_index.Saved.open(tables) is None


def test_query_changes_nothing_in_the_work_dir_and_reads_it_again(demo_scan, tmp_path):
    res, out = demo_scan
    before = fingerprint(out)
    src = [p for p, dup, near in zip(res.images["path"], res.images["is_exact_duplicate"],
                                     res.images["is_near_duplicate"]) if not dup and not near][:4]
    copies = plant(src, tmp_path / "q", ("resize", "hflip", "crop", "jpeg"))
    new = [str(p) for p in write_images(tmp_path / "new", 3, seed=5)]
    first = vislint.query(sorted(copies) + new, out)
    assert fingerprint(out) == before
    got = found(first)
    for c, o in copies.items():
        assert got.get((c, o)) == "copy", (c, o, got)
    status = dict(zip(first.images["path"], first.images["status"]))
    assert all(status[p] == "new" for p in new)
    # the same answer from the loaded results and from the scan's own object
    assert found(vislint.load(out).query(sorted(copies) + new)) == got
    assert found(res.query(sorted(copies) + new)) == got


def test_query_reports_unreadable_images_and_keeps_going(demo_scan, tmp_path):
    _, out = demo_scan
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    good = write_images(tmp_path, 2, seed=9)
    res = vislint.query(tmp_path, out)
    row = res.images.set_index("relpath").loc["broken.jpg"]
    assert row["status"] == "invalid" and row["is_invalid"] and row["invalid_reason"]
    assert res.counts()["invalid"] == 1 and len(res.images) == len(good) + 1


def test_query_needs_a_saved_scan_with_its_cache(tmp_path, demo_scan):
    with pytest.raises(FileNotFoundError, match="no saved scan"):
        vislint.query(write_images(tmp_path / "q", 1), tmp_path / "nothing")
    unsaved = vislint.scan(write_images(tmp_path / "s", 3))
    with pytest.raises(ValueError, match="not saved"):
        unsaved.query(write_images(tmp_path / "q2", 1))
    _, out = demo_scan
    copy = tmp_path / "nocache"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("cache"))
    with pytest.raises(ValueError, match="scan the images again"):
        vislint.query(write_images(tmp_path / "q3", 1), copy)


def test_a_query_whose_saved_cache_is_gone_says_so(demo_data, tmp_path, monkeypatch, capsys):
    """An index saved with its images' cache locations, whose cache was deleted since: the
    command says which file cannot be read and how to recover (exit 2), no traceback."""
    from vislint import cli, copy_index

    monkeypatch.setattr(copy_index, "SAVED_FROM", 0)
    paths = sorted(str(p) for p in demo_data.root.rglob("*.jpg"))
    vislint.scan(paths[:60], out=tmp_path / "index")
    shutil.rmtree(tmp_path / "index" / "cache")
    pd.DataFrame({"path": paths[60:70]}).to_csv(tmp_path / "new.csv", index=False)
    assert cli.main(["query", str(tmp_path / "new.csv"), "--index", str(tmp_path / "index"),
                     "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and "scan again" in err and "Traceback" not in err


def test_query_waits_for_no_scan_holding_the_work_dir(demo_scan, tmp_path):
    _, out = demo_scan
    fd = open(out / ".lock", "rb")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a scan holds it
        with pytest.raises(WorkDirError, match="in use by a vislint scan"):
            vislint.query(write_images(tmp_path, 1), out)
    finally:
        fd.close()


def test_query_command_prints_counts_and_writes_every_match(demo_scan, tmp_path):
    res, out = demo_scan
    src = [p for p, near in zip(res.images["path"], res.images["is_near_duplicate"]) if not near][:3]
    copies = plant(src, tmp_path / "q", ("resize", "crop", "hflip"))
    text = subprocess.run([*CLI, "query", str(tmp_path / "q"), "--index", str(out),
                           "--csv", str(tmp_path / "m.csv"), "--quiet"],
                          capture_output=True, text=True, check=True).stdout
    assert "copies (the same photograph, edited)  3" in text
    assert "all matches written to" in text
    import pandas as pd

    table = pd.read_csv(tmp_path / "m.csv")
    assert {(q, m) for q, m, k in zip(table["query_path"], table["match_path"], table["kind"])
            if k == "copy"} >= set(copies.items())
    data = json.loads(subprocess.run([*CLI, "query", str(tmp_path / "q"), "--index", str(out), "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    assert data["counts"]["copy"] == 3 and data["images"] == 3
    assert {(m["query_path"], m["match_path"]) for m in data["matches"] if m["kind"] == "copy"} \
        >= set(copies.items())
    helptext = subprocess.run([*CLI, "query", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--index" in helptext and "without changing it" in helptext


def test_intel_query_agrees_with_a_scan_of_both_and_finds_planted_copies(tmp_path, monkeypatch):
    paths = sorted(str(p) for p in shared("intel-scenes-sample").rglob("*.jpg"))
    rng = random.Random(1)
    index = sorted(rng.sample(paths, 3000))
    rest = sorted(set(paths) - set(index))
    kinds = ("jpeg", "resize", "crop", "hflip", "brightness", "colour", "rotate", "rotate_any")
    copies = plant(rng.sample(index, 120), tmp_path / "planted", kinds, seed=1)
    res, got, ref, _ = agreement(index, rest + sorted(copies), tmp_path / "index")
    assert got == ref
    # the same images flagged by a scan of the query images with the index as its reference
    against = vislint.scan(rest + sorted(copies), reference=tmp_path / "index").images
    assert set(against.path[against.is_in_reference]) == {q for (q, _), k in got.items()
                                                          if k in ("exact", "copy")}
    recall = np.mean([got.get(p) in ("exact", "copy") for p in copies.items()])
    print(f"planted copies found: {recall:.3f}")
    # the index scanned again with its copy index saved (from 20,000 images otherwise): the
    # query through it finds the same matches on these photos
    from vislint import copy_index

    monkeypatch.setattr(copy_index, "SAVED_FROM", 0)
    vislint.scan(index, out=tmp_path / "index")
    assert copy_index.Saved.open(next((tmp_path / "index").glob("tables-*"))) is not None
    again = vislint.query(rest + sorted(copies), tmp_path / "index")
    pd.testing.assert_frame_equal(again.matches, res.matches)
    assert recall >= 0.97, recall
    # among the untouched photos, copies are only called where the labelled natural pairs
    # (intel-scenes-pairs.csv, the exact-duplicate list) say copy
    truth = intel_truth(shared(""))
    root = str(shared("intel-scenes-sample")) + "/"
    untouched = [(q, m) for (q, m), kind in got.items() if q not in copies and kind == "copy"]
    assert untouched, "the sample has labelled copies across the split"
    for q, m in untouched:
        assert truth.get(pair_key(q[len(root):], m[len(root):])) in ("copy", "exact"), (q, m)


def test_a_scan_with_a_reference_flags_its_copies_of_reference_images(demo_data, tmp_path):
    """Set A scanned against set B (scan(reference=W)): the images of A that are exact or
    verified copies of images of B are flagged with their best match — what a query of A
    against B calls exact or copy — and A's own findings are those of a scan without it."""
    paths = sorted(str(p) for p in demo_data.root.rglob("*.jpg"))
    rng = random.Random(5)
    b = sorted(rng.sample(paths, len(paths) // 2))
    a_own = sorted(set(paths) - set(b))
    good = [p for p in b if loads(p)]
    copies = plant(rng.sample(good, 6), tmp_path / "a", ("resize", "crop", "hflip"))
    a = a_own + sorted(copies)
    vislint.scan(b, out=tmp_path / "b")
    before = fingerprint(tmp_path / "b")
    res = vislint.scan(a, out=tmp_path / "a-out", reference=tmp_path / "b")
    assert fingerprint(tmp_path / "b") == before
    df = res.images.set_index("path")
    want = {q: m for (q, m), k in found(vislint.query(a, tmp_path / "b")).items()
            if k in ("exact", "copy")}
    flagged = df.index[df.is_in_reference].tolist()
    assert set(flagged) == set(want)
    hit = [c for c in copies if c in flagged]
    assert len(hit) >= 5, hit  # (a crop of one demo picture is missed, by the query too)
    for c in hit:
        assert df.loc[c, "reference_kind"] == "copy" and df.loc[c, "in_reference_score"] >= 0.5
        assert df.loc[c, "reference_match"] == copies[c]
        assert df.loc[c, "reference_evidence"].startswith("copy ")
    for q in flagged:  # the best match is one the query found
        assert (q, df.loc[q, "reference_match"]) in found(vislint.query([q], tmp_path / "b"))
    assert (df.in_reference_score[~df.is_in_reference].fillna(0) == 0).all()
    plain = vislint.scan(a)
    same = [c for c in plain.images.columns if "reference" not in c]
    pd.testing.assert_frame_equal(res.images[same], plain.images[same])
    assert res.info["params"]["reference"] == str(tmp_path / "b")
    assert not plain.images.is_in_reference.any() and plain.images.in_reference_score.isna().all()
    with pytest.raises(ValueError, match="another scan's work dir"):
        vislint.scan(a, out=tmp_path / "b", reference=tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="no saved scan"):
        vislint.scan(a, reference=tmp_path / "nothing")

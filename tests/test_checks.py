"""Each check function on small hand-made inputs: a Context built here from a few vectors,
labels, splits, hashes and statistics (no image is decoded), and the vocabulary's rules."""
from __future__ import annotations

import numpy as np
import pytest

from vislint import _native
from vislint.catalog import Catalog
from vislint.checks.context import Context, Space
from vislint.checks.duplicates import exact_duplicate, near_duplicate
from vislint.checks.invalid import invalid
from vislint.checks.labels import label_conflict
from vislint.checks.leaks import leak
from vislint.checks.outliers import outlier, outlier_scores
from vislint.checks.quality import dark, odd_size
from vislint.checks.similar import similar_content
from vislint.decisions import Decisions
from vislint.thresholds import Thresholds
from vislint.vocabulary import Check, check, checks, names, register, unregister


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def texture(seed: int) -> np.ndarray:
    """A 64 x 64 grey thumbnail with structure at every scale (a photo, to the verification)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = np.zeros((64, 64))
    for side, amp in ((4, 60), (8, 40), (16, 20)):
        layer = Image.fromarray(rng.uniform(0, 255, (side, side)).astype(np.float32))
        out += amp / 255 * np.asarray(layer.resize((64, 64), Image.Resampling.BICUBIC))
    return np.clip(out + 128 - out.mean(), 0, 255).astype(np.uint8)


def thumbnails(copy: np.ndarray, copies) -> np.ndarray:
    """Grey thumbnails: one texture per image, a copy's that of its original plus noise.
    copies: {copy row: original row}, or None: rows whose copy vectors have cosine ≥ 0.999."""
    n = len(copy)
    if copies is None:
        copies = {}
        for i in range(n):
            for j in range(i):
                if copy[i] @ copy[j] >= 0.999 and i not in copies:
                    copies[i] = copies.get(j, j)
    noise = np.random.default_rng(99).normal(0, 1.0, (n, 64, 64))
    base = np.stack([texture(copies.get(i, i)) for i in range(n)]).astype(float)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def context(vectors, *, labels=None, splits=None, hashes=None, valid=None, semantic=None,
            stats=None, size=(100, 100), copies=None, **thresholds) -> Context:
    """A Context of len(vectors) images named 0.jpg, 1.jpg, ... with these copy vectors and
    grey thumbnails (:func:`thumbnails`: ``copies`` says which images show one photograph)."""
    copy = unit(vectors)
    n = len(copy)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    copy[~valid] = 0
    rel = [f"{i}.jpg" for i in range(n)]
    catalog = Catalog(root=None, paths=[f"/data/{r}" for r in rel], relpaths=rel,
                      labels=list(labels or [None] * n), splits=list(splits or [None] * n),
                      ids=[f"id{i}" for i in range(n)])
    meta = {"ok": valid, "reason": [None if v else "corrupt" for v in valid],
            "message": [None if v else "damaged" for v in valid],
            "width": np.full(n, size[0], np.int32), "height": np.full(n, size[1], np.int32),
            "file_size": np.full(n, 1000, np.int64),
            "content_hash": list(hashes or [f"h{i}" for i in range(n)]), "format": ["JPEG"] * n}
    if stats is None:
        stats = np.full((n, len(_native.STAT_NAMES)), 100.0)
    spaces = {"copy": Space("copy", copy, _graph(copy, valid), "test")}
    if semantic is not None:
        sem = unit(semantic)
        spaces["semantic"] = Space("semantic", sem, _graph(sem, valid), "test")
    rotation = {"candidates": np.empty((0, 2), np.int64), "polar": np.zeros((n, 16, 128), np.int8),
                "info": np.zeros((n, 2), np.float32)}  # no texture: no rotation verdicts
    return Context(catalog=catalog, meta=meta, valid=valid, stats=stats, spaces=spaces,
                   rotation=rotation, thresholds=Thresholds().replace(**thresholds),
                   reviewed=Decisions(), thumbs=thumbnails(unit(vectors), copies).__getitem__)


def _graph(vectors, valid):
    from vislint.knn import valid_graph as graph

    return graph(vectors, valid, min(4, len(vectors) - 1), "exact", 1)


def far(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    """n random, mutually dissimilar directions."""
    return np.random.default_rng(seed).normal(size=(n, d))


def test_same_bytes_are_exact_duplicates_with_score_one():
    v = far(5)
    v[3] = v[1]
    ctx = context(v, hashes=["a", "b", "c", "b", "e"])
    r = exact_duplicate(ctx)
    assert r.flag.tolist() == [False, True, False, True, False]
    assert r.score.tolist() == [0, 1, 0, 1, 0]
    assert r.pairs.tolist() == [[1, 3]] and r.pair_sims.tolist() == [1.0]
    assert [(rows, sims) for _, rows, sims in r.groups] == [([1, 3], [1.0, 1.0])]


def test_a_look_alike_is_verified_and_rejected_a_copy_is_kept():
    # 0 ~ 1 and 0 ~ 2 both at descriptor similarity 0.95 (candidates); 1 shows 0's photograph,
    # 2 another photograph with the same layout
    base = far(1)[0]
    other = far(1, seed=1)[0]
    other -= other @ base / (base @ base) * base  # orthogonal to base
    base, other = base / np.linalg.norm(base), other / np.linalg.norm(other)
    angle = np.arccos(0.95)
    v = np.stack([base, np.cos(angle) * base + np.sin(angle) * other,
                  np.cos(angle) * base - np.sin(angle) * other, *far(3, seed=5)])
    ctx = context(v, copies={1: 0})
    r = near_duplicate(ctx)
    assert [rows for _, rows, _ in r.groups] == [[0, 1]]
    assert r.flag.tolist() == [True, True, False, False, False, False]
    assert r.columns["duplicate_of"][1] == "id0" and r.columns["duplicate_of"][0] is None
    assert r.pairs.tolist() == [[0, 1]] and r.pair_sims[0] > 0.98  # copy probability
    ev = r.pair_columns
    assert ev["descriptor_similarity"][0] == pytest.approx(0.95, abs=1e-4)
    assert ev["residual_median"][0] < 0.065 and not ev["mirrored"][0]
    # scores agree with the flags: the look-alike was a candidate, verified, and scores 0
    assert r.score[0] == r.score[1] == r.pair_sims[0] and r.score[2] == 0.0
    verified = ctx.duplicates.verified
    assert {tuple(p): k for p, k in zip(verified.pairs.tolist(), verified.kind)} == {
        (0, 1): "copy", (0, 2): "different"}  # (1-2 at 0.80 is no candidate)


def test_groups_form_around_centres_and_a_left_over_copy_joins_through_its_partner():
    from vislint.checks.duplicates import _groups

    order = np.arange(6)
    # 0-1, 1-2 copies (0-2 not): 0 takes 1; 2, whose only copy is taken, joins through 1
    centre = _groups(6, np.ones(6, bool), np.array([[0, 1], [1, 2], [4, 5]]),
                     np.array([0.9, 0.8, 0.7]), order)
    assert centre.tolist() == [0, 0, 0, -1, 4, 4]
    # with 3 first in keep order, 3-4 and 4-5: 3 takes 4, 5 joins through 4
    centre = _groups(6, np.ones(6, bool), np.array([[3, 4], [4, 5]]), np.array([0.9, 0.9]),
                     np.array([3, 0, 1, 2, 4, 5]))
    assert centre.tolist() == [-1, -1, -1, 3, 3, 3]


def test_the_keep_policy_keeps_the_labelled_train_image():
    v = far(4)
    v[1] = v[0] + 0.01
    ctx = context(v, labels=[None, "cat", None, None], splits=["test", "train", None, None])
    r = near_duplicate(ctx)
    assert [rows for _, rows, _ in r.groups] == [[1, 0]]  # representative first
    assert r.columns["duplicate_of"][0] == "id1"


def test_a_duplicate_across_splits_is_a_leak_with_its_partner_and_table():
    v = far(4)
    v[2] = v[0] + 0.01
    ctx = context(v, splits=["train", "train", "test", "test"])
    r = leak(ctx)
    assert r.flag.tolist() == [True, False, True, False]
    assert r.columns["leak_partners"] == ["id2", None, "id0", None]
    assert r.info["leak_table"] == {"train": {"test": 1}, "test": {"train": 1}}
    assert np.isnan(r.score).sum() == 0 and r.score[1] == 0 and r.score[0] > 0.99
    assert [rows for _, rows, _ in r.groups] == [[0, 2]]


def test_a_group_with_two_labels_is_a_conflict_and_the_vote_flags_only_semantically():
    v = far(8)
    v[1] = v[0] + 0.01
    labels = ["cat", "dog", "cat", "cat", "cat", "dog", "dog", "dog"]
    r = label_conflict(context(v, labels=labels))
    assert r.flag.tolist() == [True, True] + [False] * 6
    assert r.columns["conflict_labels"][:2] == ["cat|dog", "cat|dog"]
    assert [sorted(rows) for _, rows, _ in r.groups] == [[0, 1]]
    # semantic space: image 7, labelled dog, sits among the cats
    sem = np.repeat([[1.0, 0.0], [0.0, 1.0]], 4, axis=0) + np.random.default_rng(2).normal(0, .01, (8, 2))
    sem[7] = [1.0, 0.02]
    labels = ["cat"] * 4 + ["dog"] * 3 + ["dog"]
    voted = label_conflict(context(far(8), labels=labels, semantic=sem, label_min_support=1.0))
    assert voted.flag.tolist() == [False] * 7 + [True]
    assert voted.columns["suggested_label"][7] == "cat"
    unflagged = label_conflict(context(sem, labels=labels, label_min_support=1.0,  # copy space only
                                       copies={}))
    assert not unflagged.flag.any() and unflagged.columns["suggested_label"][7] == "cat"


def test_labels_the_predictions_contradict_are_conflicts_with_the_predicted_class():
    from vislint.predictions import Predictions

    labels = ["cat", "dog", "cat", "bird", "dog", "cat"]
    probs = np.array([[0.9, 0.05, 0.05],   # cat: agrees
                      [0.2, 0.7, 0.1],     # dog: agrees
                      [0.1, 0.8, 0.1],     # cat, but dog is likelier: flagged, suggests dog
                      [0.4, 0.2, 0.4],     # bird: tied with cat, margin 0: score 0.5, flagged
                      [0.05, 0.9, 0.05],   # dog: agrees
                      [0.55, 0.45, 0.0]])  # cat: agrees
    classes = ["cat", "dog", "bird"]
    ctx = context(far(6), labels=labels)
    ctx.predictions = Predictions(probs, classes)
    r = label_conflict(ctx)
    assert r.flag.tolist() == [False, False, True, True, False, False]
    assert r.columns["suggested_label"][2] == "dog"
    assert r.columns["predicted_label"] == ["cat", "dog", "dog", "cat", "dog", "cat"]
    np.testing.assert_allclose(r.columns["predicted_probability"], probs.max(axis=1))
    np.testing.assert_allclose(r.score, [0.075, 0.25, 0.85, 0.5, 0.075, 0.45])
    assert r.columns["label_sources"] == [None, None, "prediction", "prediction", None, None]
    strict = context(far(6), labels=labels, label_prediction=0.6)
    strict.predictions = Predictions(probs, classes)
    assert label_conflict(strict).flag.tolist() == [False, False, True, False, False, False]


def test_confident_learning_counts_the_confident_joint_and_prunes_by_margin():
    """Worked by hand. Thresholds: class 0 the mean p0 of images 0-3, (0.9 + 0.9 + 0.3 + 0.1) / 4
    = 0.55; class 1 the mean p1 of images 4-6, 0.8. Confident joint: images 0, 1 at (0, 0);
    image 2 nowhere (p0 0.3 < 0.55, p1 0.7 < 0.8); image 3 at (0, 1); images 4-6 at (1, 1).
    Calibrated, row 0 (4 images) is [2.67, 1.33]: one 0 → 1 error, the labelled-0 image with
    the largest p1 - p0 — image 3 (0.8; image 2: 0.4)."""
    from vislint.checks.labels import confident_learning

    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.1, 0.9], [0.2, 0.8], [0.2, 0.8],
                      [0.2, 0.8]])
    given = np.array([0, 0, 0, 0, 1, 1, 1])
    assert confident_learning(probs, given).tolist() == [False, False, False, True, False,
                                                         False, False]
    assert not confident_learning(probs, np.array([0, 0, 1, 1, 1, 1, 1])).any()


def test_an_image_far_from_the_rest_is_an_outlier_in_the_semantic_space():
    rng = np.random.default_rng(3)
    cluster = np.eye(8)[0] + rng.normal(0, 0.3, (30, 8))
    cluster[29] = -np.eye(8)[0]
    r = outlier(context(far(30, seed=9), semantic=cluster))
    assert np.flatnonzero(r.flag).tolist() == [29] and r.score[29] > 0.5
    assert r.columns["outlier_z"][29] > 6


def photo_like_stats(n: int, seed: int) -> np.ndarray:
    """Image statistics (columns STAT_NAMES) spread as photographs' are, roughly."""
    rng = np.random.default_rng(seed)
    lum = rng.normal(115, 25, n)
    spread = rng.normal(55, 10, n)
    detail = rng.dirichlet([1, 2, 4, 6, 8], n)
    return np.column_stack([
        np.exp(rng.normal(7.8, 0.8, n)), lum, spread, lum - 2 * spread, lum - 1.6 * spread,
        lum, lum + 1.6 * spread, lum + 2 * spread, rng.normal(7.3, 0.3, n),
        np.exp(rng.normal(3.4, 0.5, n)), np.exp(rng.normal(3.3, 0.5, n)), detail]).astype(np.float32)


def appearance_flags(stats, hashes=None, valid=None):
    from vislint.checks.outliers import appearance_distances, appearance_scores

    n = len(stats)
    dist = appearance_distances(stats, np.ones(n, bool) if valid is None else valid,
                                hashes or [f"h{i}" for i in range(n)], threads=1)
    return appearance_scores(dist, 5.0)


def test_a_group_of_alike_odd_images_is_an_outlier_by_appearance():
    """25 grey digit-like images (dark, no colour, coarse shapes, alike) among 500 photos are
    each other's nearest neighbours, but far from their 30th: all flagged, few photos."""
    stats = photo_like_stats(525, seed=1)
    rng = np.random.default_rng(2)
    digit = np.array([50, 35, 76, 0, 0, 0, 246, 255, 2.9, 0, 0, 0.05, 0.1, 0.2, 0.3, 0.35])
    stats[500:] = digit * rng.normal(1, 0.02, (25, 16))
    score, flag, z = appearance_flags(stats)
    assert flag[500:].all() and (score[500:] > 0.5).all()
    assert flag[:500].mean() <= 0.01
    # with only five of them, their 5th neighbour would be a photo: still flagged
    assert appearance_flags(stats[:505])[1][500:].all()
    # copies of one file count once: 40 copies of an odd image are not a crowd that hides it
    copies = photo_like_stats(540, seed=3)
    copies[500:] = digit
    hashes = [f"h{i}" if i < 500 else "odd" for i in range(540)]
    assert appearance_flags(copies, hashes)[1][500:].all()


def test_appearance_needs_enough_images_and_skips_invalid_ones():
    stats = photo_like_stats(30, seed=4)
    valid = np.ones(30, bool)
    valid[3] = False
    stats[3] = np.nan
    score, flag, z = appearance_flags(stats, valid=valid)
    assert np.isnan(z[3]) and not flag[3] and np.isfinite(z[np.arange(30) != 3]).all()
    few = appearance_flags(stats[:10])
    assert np.isnan(few[2]).all() and not few[1].any()  # 10 images: no 30th, not even a 1st


def test_the_outlier_check_flags_by_appearance_unless_it_is_switched_off():
    stats = photo_like_stats(130, seed=5)
    stats[120:] = np.array([50, 35, 76, 0, 0, 0, 246, 255, 2.9, 0, 0, 0.05, 0.1, 0.2, 0.3, 0.35])
    r = outlier(context(far(130, seed=6), stats=stats))
    assert r.flag[120:].all() and (r.columns["outlier_appearance_z"][120:] >= 5).all()
    assert np.isfinite(r.columns["outlier_z"]).all()  # the neighbour measure is still there
    alone = outlier_scores(valid=np.ones(130, bool), graph=_graph(unit(far(130, seed=6)), np.ones(130, bool)),
                           exact_group=np.full(130, -1), z_threshold=6.0)
    np.testing.assert_array_equal(r.columns["outlier_distance"], alone[2])  # its own distance
    off = outlier(context(far(130, seed=6), stats=stats, outlier_appearance_z=None))
    assert not off.flag[120:].any() and np.isnan(off.columns["outlier_appearance_z"]).all()
    rule = check("outlier").rule_text(Thresholds().replace(outlier_appearance_z=None).to_dict())
    assert rule.endswith("appearance z ≥ ∞ (off)") and "z ≥ 6.0" in rule


def test_similar_content_groups_semantic_neighbours_only_when_its_threshold_is_set():
    rng = np.random.default_rng(4)
    semantic = far(8, seed=11)
    semantic[[1, 2]] = semantic[0] + rng.normal(0, 0.05, (2, 16))  # 0, 1, 2 show one thing
    copy = far(8, seed=12)  # ... and are different photographs
    off = similar_content(context(copy, semantic=semantic))
    assert not off.flag.any() and not off.groups and not len(off.pairs)
    assert off.score[0] > 0.99 and off.score[5] < 0.9  # the nearest semantic neighbour
    on = similar_content(context(copy, semantic=semantic, labels=["a"] * 8, similar_content=0.95))
    assert np.flatnonzero(on.flag).tolist() == [0, 1, 2]
    [(g, rows, sims)] = on.groups
    assert sorted(rows) == [0, 1, 2] and sims[0] == 1.0 and min(sims) > 0.95
    assert on.columns["similar_group"][:3].tolist() == [g] * 3
    assert [on.columns["similar_to"][r] for r in rows] == [None, f"id{rows[0]}", f"id{rows[0]}"]
    assert sorted(map(tuple, on.pairs.tolist())) == [(0, 1), (0, 2), (1, 2)]
    # without a semantic space there is nothing to group: copies are the duplicate checks' job
    none = similar_content(context(copy, similar_content=0.5))
    assert not none.flag.any() and np.isnan(none.score).all()
    assert check("similar_content").rule_text() == "off (set the similar_content threshold)"
    assert check("similar_content").rule_text({"similar_content": 0.9}) == "semantic cosine ≥ 0.9"


def test_quality_checks_judge_statistics_and_size():
    stats = np.full((4, len(_native.STAT_NAMES)), 100.0)
    stats[2, _native.STAT_NAMES.index("lum_p95")] = 10.0  # very dark
    r = dark(context(far(4), stats=stats))
    assert r.flag.tolist() == [False, False, True, False] and r.columns["lum_p95"][2] == 10.0
    assert r.score[2] > 0.5 > r.score[0]
    ctx = context(far(4))
    ctx.meta["width"][1] = 5000  # aspect 50:1
    assert odd_size(ctx).flag.tolist() == [False, True, False, False]


def test_invalid_files_carry_their_reason():
    r = invalid(context(far(3), valid=[True, False, True]))
    assert r.flag.tolist() == [False, True, False] and r.score is None
    assert r.columns["invalid_reason"] == [None, "corrupt", None]


def test_the_vocabulary_names_every_check_once_and_refuses_bad_records():
    assert len(names()) == len(set(names())) == len(checks())
    assert names(unit="group") == ("exact_duplicate", "near_duplicate", "same_scene", "leak",
                                   "label_conflict", "similar_content")
    assert names(pairs=True) == ("exact_duplicate", "near_duplicate", "same_scene", "leak",
                                 "similar_content")
    assert check("near_duplicate").rule_text() == "copy probability ≥ 0.5"
    with pytest.raises(ValueError, match="unknown check 'nope'; the checks are invalid, "):
        check("nope")
    with pytest.raises(ValueError, match="unit must be one of"):
        Check("x", "xs", "x", "x", ".checks.invalid:invalid", unit="pair")
    with pytest.raises(ValueError, match="unknown kind"):
        Check("x", "xs", "x", "x", ".checks.invalid:invalid", evidence=(("c", "blob"),))
    register(Check("tiny", "tiny things", "t", "t", ".checks.invalid:invalid", order=5))
    try:
        assert names()[1] == "tiny"
    finally:
        unregister("tiny")
    assert "tiny" not in names()
    with pytest.raises(ValueError, match="built-in"):
        unregister("leak")


def test_centring_in_blocks_and_in_place_gives_the_same_vectors(monkeypatch):
    """The copy descriptor's centring, block by block (FIT_BLOCK rows) and written over the raw
    vectors (what a scan does, so the two are never held at once), equals the whole-array
    formula; a Centring fitted on one set transforms other vectors alike (what a query does)."""
    from vislint import features
    from vislint.features import Builtin, Centring

    rng = np.random.default_rng(2)
    raw = rng.random((300, features.Builtin.dim)).astype(np.float32)
    gray = rng.random(300) < 0.2
    b = Builtin()
    colour = b.colour_dims
    x = raw.astype(np.float64)
    grey = x[~gray][:, colour].mean(axis=0)
    x[np.ix_(gray, np.arange(features.Builtin.dim)[colour])] = grey
    shift = x.mean(axis=0) * (300 / (300 + features.MEAN_PRIOR))
    want = (x - shift) / np.linalg.norm(x - shift, axis=1, keepdims=True)
    monkeypatch.setattr(features, "FIT_BLOCK", 64)
    got = b.fit_transform(raw, gray)
    np.testing.assert_allclose(got, want, atol=1e-6)
    inplace = raw.copy()
    assert b.fit_transform(inplace, gray, in_place=True) is inplace
    np.testing.assert_array_equal(inplace, got)
    centring = Centring.fit(raw[:200], colour, gray[:200])
    np.testing.assert_array_equal(centring.apply(raw[200:], gray[200:]),
                                  centring.apply(raw, gray)[200:])

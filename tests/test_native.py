"""The native core (vislint._native) against NumPy / pure-Python references."""
from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from references import resize_reference
from vislint import _native as nat

REPO = Path(__file__).resolve().parents[1]
S = nat.TILE_SIZE


# ---------------------------------------------------------------- inputs

def random_tiles(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, S, S, 3), dtype=np.uint8)


def structured_tiles() -> np.ndarray:
    """Flat, ramps, checkerboard, pure colours, half/half, stripes."""
    yy, xx = np.mgrid[0:S, 0:S]
    t = []
    t.append(np.full((S, S, 3), 128))                                  # flat grey
    t.append(np.repeat((xx * 2)[..., None], 3, -1))                     # horizontal ramp
    t.append(np.repeat((yy * 2)[..., None], 3, -1))                     # vertical ramp
    t.append(np.repeat((((yy // 8) + (xx // 8)) % 2 * 255)[..., None], 3, -1))  # checkerboard
    t.append(np.stack([np.full((S, S), 255), np.zeros((S, S)), np.zeros((S, S))], -1))  # red
    t.append(np.stack([np.zeros((S, S)), np.full((S, S), 40), np.full((S, S), 200)], -1))
    t.append(np.repeat(np.where(xx < S // 2, 0, 255)[..., None], 3, -1))  # half / half
    t.append(np.stack([(xx * 7) % 256, (yy * 3) % 256, (xx + yy) % 256], -1))  # stripes
    t.append(np.zeros((S, S, 3)))                                       # black
    return np.stack(t).astype(np.uint8)


def smooth_photo(rng: np.random.Generator, size=(160, 160)) -> Image.Image:
    """A real-looking image: a smooth random colour field with soft-edged blobs and noise."""
    h, w = size
    coarse = rng.uniform(0, 255, (5, 5, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)).astype(float)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 40)
        mask = np.clip((r - np.hypot(yy - cy, xx - cx)) / 2, 0, 1)[..., None]
        base = base * (1 - mask) + rng.uniform(0, 255, 3) * mask
    base += rng.normal(0, 4, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def to_tile(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB").resize((S, S), Image.Resampling.BILINEAR))


def smooth_tiles(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([to_tile(smooth_photo(rng)) for _ in range(n)])


def luma(tile: np.ndarray) -> np.ndarray:
    """Y = 0.299 R + 0.587 G + 0.114 B, computed exactly as (299 R + 587 G + 114 B) / 1000."""
    t = tile.astype(np.int64)
    return (299 * t[..., 0] + 587 * t[..., 1] + 114 * t[..., 2]) / 1000.0


# ---------------------------------------------------------------- image_stats

def stats_reference(tile: np.ndarray) -> np.ndarray:
    t = tile.astype(np.float64)
    R, G, B = t[..., 0], t[..., 1], t[..., 2]
    Y = luma(tile)
    lap = Y[:-2, 1:-1] + Y[2:, 1:-1] + Y[1:-1, :-2] + Y[1:-1, 2:] - 4 * Y[1:-1, 1:-1]
    hist = np.bincount(np.floor(Y + 0.5).astype(int).ravel(), minlength=256)
    cum = np.cumsum(hist)
    pct = [int(np.argmax(cum >= p * Y.size)) for p in (0.01, 0.05, 0.50, 0.95, 0.99)]
    q = hist[hist > 0] / Y.size
    rg, yb = R - G, 0.5 * (R + G) - B
    colourfulness = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    diff = np.maximum.reduce([np.abs(R - G), np.abs(G - B), np.abs(R - B)]).mean()
    return np.array([lap.var(), Y.mean(), Y.std(), *pct, -(q * np.log2(q)).sum(), colourfulness, diff])


def test_stat_names():
    assert nat.STAT_NAMES == [
        "blur_laplacian_var", "lum_mean", "lum_std", "lum_p01", "lum_p05", "lum_p50",
        "lum_p95", "lum_p99", "entropy", "colourfulness", "channel_diff",
        "detail_2", "detail_4", "detail_8", "detail_16", "detail_coarse",
    ]


def detail_reference(thumb: np.ndarray) -> np.ndarray:
    """The five detail shares of one 64 x 64 grey thumbnail, in NumPy: the mean square of
    each level minus its repeated 2x2 box means, 64 -> 32 -> 16 -> 8, then the 4x4 level's
    variance; 0.1 added to each, as shares of their sum."""
    x, energy = thumb.astype(np.float64), []
    for _ in range(4):
        n = len(x) // 2
        means = x.reshape(n, 2, n, 2).mean(axis=(1, 3))
        energy.append(((x - np.kron(means, np.ones((2, 2)))) ** 2).mean())
        x = means
    e = np.array(energy + [x.var()]) + 0.1
    return e / e.sum()


def test_detail_shares_split_the_thumbnail_variance_over_scales():
    tiles = np.concatenate([structured_tiles(), random_tiles(3), smooth_tiles(3)])
    stats = nat.image_stats(tiles, threads=1)
    shares = stats[:, nat.STAT_NAMES.index("detail_2"):]
    want = np.stack([detail_reference(t) for t in nat.grey_thumbnails(tiles, threads=1)])
    np.testing.assert_allclose(shares, want, rtol=1e-5)
    np.testing.assert_allclose(shares.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(shares[0], 0.2)  # the flat tile: only the floor
    noise, smooth = shares[len(structured_tiles())], shares[-1]
    assert noise.argmax() == 0 and smooth.argmax() >= 3  # finest details vs coarse levels


@pytest.mark.parametrize("kind", ["random", "structured", "smooth"])
def test_image_stats_match_numpy(kind):
    tiles = {"random": random_tiles(4), "structured": structured_tiles(), "smooth": smooth_tiles(4)}[kind]
    got = nat.image_stats(tiles, threads=1)
    assert got.dtype == np.float32 and got.shape == (len(tiles), len(nat.STAT_NAMES))
    want = np.stack([stats_reference(t) for t in tiles])  # (the detail shares: below)
    np.testing.assert_allclose(got[:, :len(want[0])], want, rtol=1e-3, atol=1e-3)


def test_image_stats_known_values():
    got = dict(zip(nat.STAT_NAMES, nat.image_stats(structured_tiles())[[0, 3, 4]].T))
    flat, checker, red = 0, 1, 2
    assert got["blur_laplacian_var"][flat] == 0 and got["entropy"][flat] == 0
    assert got["lum_p50"][flat] == 128 and got["channel_diff"][flat] == 0
    assert got["entropy"][checker] == pytest.approx(1.0)
    assert got["channel_diff"][red] == 255
    assert got["colourfulness"][red] == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-5)


# ---------------------------------------------------------------- thumbnails and verification

def test_grey_thumbnails_are_rounded_2x2_means_of_luminance():
    tiles = np.concatenate([random_tiles(3, seed=3), smooth_tiles(3, seed=3)])
    got = nat.grey_thumbnails(tiles)
    assert got.dtype == np.uint8 and got.shape == (len(tiles), 64, 64)
    rgb = tiles.astype(np.int64)
    y = 299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2]
    sums = y.reshape(len(tiles), 64, 2, 64, 2).sum(axis=(2, 4))
    assert np.array_equal(got, (sums + 2000) // 4000)  # half up


def edited(im: Image.Image, rng) -> dict[str, Image.Image]:
    """Copies of a photo as a user makes them, and another photo of the same layout."""
    w, h = im.size
    return {"jpeg": jpeg(im, 60), "resize": im.resize((w * 3 // 4, h * 3 // 4), Image.Resampling.LANCZOS),
            "crop": im.crop((6, 4, w - 3, h - 5)), "flip": im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            "brighter": ImageEnhance.Brightness(im).enhance(1.1),
            "contrast": ImageEnhance.Contrast(im).enhance(0.7)}


def thumbs_of(images) -> np.ndarray:
    return nat.grey_thumbnails(np.stack([to_tile(im) for im in images]))


def test_verification_accepts_edited_copies_and_rejects_other_photos():
    rng = np.random.default_rng(21)
    photos = [smooth_photo(rng, (150, 200)) for _ in range(3)]
    copies = edited(photos[0], rng)
    th = thumbs_of([photos[0], *copies.values(), photos[1], photos[2]])
    n = len(copies)
    ev = nat.verify_pairs(th, np.zeros(n + 2, np.int64), np.arange(1, n + 3))
    med, worst = ev["residual_median"], ev["residual_max"]
    # within what vislint.checks.verification calls a copy (median ≤ 0.065, worst ≤ 0.16)
    assert (med[:n] < 0.065).all() and (worst[:n] < 0.16).all(), dict(zip(copies, zip(med, worst)))
    assert (med[n:] > 0.3).all()  # other photographs
    assert ev["mirrored"].tolist() == [k == "flip" for k in copies] + [ev["mirrored"][n], ev["mirrored"][n + 1]]
    scale = dict(zip(copies, ev["affine"][:n, 0]))
    assert scale["crop"] > 1.01 and abs(scale["jpeg"] - 1) < 0.01  # b, a crop, shows a enlarged
    # (coverage: of a inside b and 2 px clear of its edge, which the smoothing blurred)
    assert (ev["coverage"][:n] > 0.75).all() and (ev["correlation"][:n] > 0.98).all()


def test_verification_sees_where_a_scene_changed():
    """Another shot of one scene: the background matches, one region changed."""
    rng = np.random.default_rng(5)
    a = np.asarray(smooth_photo(rng, (150, 150))).copy()
    b = a.copy()
    b[20:44, 90:120] = np.asarray(smooth_photo(rng, (24, 30)))  # the subject moved
    ev = nat.verify_pairs(thumbs_of([Image.fromarray(a), Image.fromarray(b)]), np.array([0]), np.array([1]))
    assert ev["residual_min"][0] < 0.03 and ev["residual_max"][0] > 0.3


def test_verification_of_flat_or_unrelated_pairs_reports_no_evidence():
    flat = np.full((2, 64, 64), 128, np.uint8)
    ev = nat.verify_pairs(flat, np.array([0]), np.array([1]))
    assert ev["residual_median"][0] == 0 or ev["residual_median"][0] >= 0  # defined, not NaN
    assert np.isfinite(ev["residual_median"]).all()
    with pytest.raises(IndexError, match="outside"):
        nat.verify_pairs(flat, np.array([0]), np.array([2]))
    with pytest.raises(ValueError, match=r"thumbs: expected uint8 array of shape \(N, 64, 64\)"):
        nat.verify_pairs(np.zeros((2, 32, 32), np.uint8), np.array([0]), np.array([1]))


def test_verification_is_identical_for_any_thread_count():
    rng = np.random.default_rng(8)
    th = thumbs_of([smooth_photo(rng) for _ in range(6)])
    a, b = np.array([0, 1, 2, 3, 4, 0]), np.array([1, 2, 3, 4, 5, 5])
    one, two = nat.verify_pairs(th, a, b, threads=1), nat.verify_pairs(th, a, b, threads=2)
    for k in one:
        assert np.array_equal(one[k], two[k]), k


# ---------------------------------------------------------------- descriptor

def jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def test_descriptor_shape_and_unit_norm():
    assert nat.DESCRIPTOR_DIM == 448
    tiles = np.concatenate([random_tiles(3), smooth_tiles(3), structured_tiles()[1:-1]])
    d = nat.descriptor(tiles)
    assert d.dtype == np.float32 and d.shape == (len(tiles), 448)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    # Flat grey and black tiles have no structure and no colour: the zero vector.
    assert not nat.descriptor(structured_tiles()[[0, -1]]).any()


def test_descriptor_identical_for_mirror():
    tiles = np.concatenate([random_tiles(3, seed=1), smooth_tiles(3, seed=1), structured_tiles()])
    assert np.array_equal(nat.descriptor(tiles), nat.descriptor(np.ascontiguousarray(tiles[:, :, ::-1])))


def test_descriptor_near_copies_close_unrelated_far():
    rng = np.random.default_rng(11)
    for _ in range(3):
        a, b = smooth_photo(rng), smooth_photo(rng)
        w, h = a.size
        dx, dy = round(0.05 * w), round(0.05 * h)
        copies = [
            jpeg(a, 50),
            ImageEnhance.Brightness(a).enhance(0.8),
            a.crop((dx, dy, w, h)),  # 5% crop, resized back to the tile
        ]
        d = nat.descriptor(np.stack([to_tile(a), to_tile(b)] + [to_tile(c) for c in copies]))
        copy_cos = d[2:] @ d[0]
        unrelated = float(d[1] @ d[0])
        assert copy_cos.min() >= 0.9, copy_cos
        assert unrelated < copy_cos.min() - 0.1, (unrelated, copy_cos)


def test_descriptor_weights():
    tiles = smooth_tiles(2, seed=2)
    only_layout = nat.descriptor(tiles, weight_layout=1.0, weight_gradients=0.0, weight_colour=0.0)
    assert not only_layout[:, 128:].any() and only_layout[:, :128].any()
    with pytest.raises(ValueError, match="weights: expected finite values >= 0"):
        nat.descriptor(tiles, weight_colour=-1.0)


# ---------------------------------------------------------------- threads

def test_identical_for_any_thread_count():
    tiles = np.concatenate([random_tiles(5, seed=9), smooth_tiles(4, seed=9)])
    for fn in (nat.image_stats, nat.grey_thumbnails, nat.descriptor):
        one, two = fn(tiles, threads=1), fn(tiles, threads=2)
        assert np.array_equal(one, two, equal_nan=True), fn.__name__
        assert np.array_equal(one, fn(tiles, threads=0), equal_nan=True), fn.__name__
    nb, sims, labels = random_knn(300, 8, seed=4)
    a = nat.label_tally(nb, sims, labels, 5, threads=1)
    b = nat.label_tally(nb, sims, labels, 5, threads=2)
    for x, y in zip(a, b):
        assert np.array_equal(x, y, equal_nan=True)


def test_empty_batches():
    empty = np.zeros((0, S, S, 3), np.uint8)
    assert nat.image_stats(empty).shape == (0, len(nat.STAT_NAMES))
    assert nat.grey_thumbnails(empty).shape == (0, 64, 64)
    assert nat.descriptor(empty).shape == (0, nat.DESCRIPTOR_DIM)
    assert nat.components(0, np.zeros(0, np.int64), np.zeros(0, np.int64)).shape == (0,)


# ---------------------------------------------------------------- analyze (fused)

def analyze_inputs(seed: int = 0) -> list[np.ndarray]:
    """Photos and noise at sizes that shrink, enlarge, keep and mix both per axis."""
    rng = np.random.default_rng(seed)
    images = [np.asarray(smooth_photo(rng, size)) for size in [(150, 150), (160, 240), (128, 128)]]
    for h, w in [(150, 150), (90, 300), (300, 90), (7, 5), (1, 1), (257, 129)]:
        images.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    images.append(np.full((150, 150, 3), 128, np.uint8))  # flat grey: zero descriptor
    return images


def test_analyze_equals_the_separate_functions():
    images = analyze_inputs()
    tiles, stats, thumbs, desc = nat.analyze(images, threads=1)
    assert tiles.dtype == np.uint8 and tiles.shape == (len(images), S, S, 3)
    assert stats.dtype == np.float32 and stats.shape == (len(images), len(nat.STAT_NAMES))
    assert thumbs.dtype == np.uint8 and thumbs.shape == (len(images), 64, 64)
    assert desc.dtype == np.float32 and desc.shape == (len(images), nat.DESCRIPTOR_DIM)
    want = nat.tiles_from_images(images, size=S, threads=1)
    assert np.array_equal(tiles, want)
    assert np.array_equal(stats, nat.image_stats(want, threads=1))
    assert np.array_equal(thumbs, nat.grey_thumbnails(want, threads=1))
    assert np.array_equal(desc, nat.descriptor(want, threads=1))
    assert not desc[-1].any()


def test_analyze_identical_for_any_thread_count_and_weights():
    images = analyze_inputs(seed=1)
    one = nat.analyze(images, threads=1)
    for threads in (2, 3, 0):
        for a, b in zip(one, nat.analyze(images, threads=threads)):
            assert np.array_equal(a, b), threads
    w = dict(weight_layout=1.0, weight_gradients=0.5, weight_colour=0.0)
    _, _, _, desc = nat.analyze(images, threads=2, **w)
    assert np.array_equal(desc, nat.descriptor(one[0], threads=1, **w))


def test_analyze_validates_and_handles_empty():
    tiles, stats, thumbs, desc = nat.analyze([])
    assert tiles.shape == (0, S, S, 3) and stats.shape == (0, len(nat.STAT_NAMES))
    assert thumbs.shape == (0, 64, 64) and desc.shape == (0, nat.DESCRIPTOR_DIM)
    ok = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match=r"size: expected 128"):
        nat.analyze([ok], size=64)
    with pytest.raises(ValueError, match=r"images\[1\]: expected a uint8 array of shape \(H, W, 3\)"):
        nat.analyze([ok, np.zeros((20, 30), np.uint8)])
    with pytest.raises(ValueError, match=r"images\[0\]: expected uint8 array of shape \(H, W, 3\) or \(H, W, 4\), got float64"):
        nat.analyze([np.zeros((20, 30, 3))])
    with pytest.raises(ValueError, match="weights: expected finite values >= 0"):
        nat.analyze([ok], weight_colour=-1.0)
    with pytest.raises(ValueError, match="threads: expected an int >= 0"):
        nat.analyze([ok], threads=-1)


def rounded_resize_reference(image: np.ndarray, size: int) -> np.ndarray:
    """:func:`references.resize_reference` to size x size, rounded as the core rounds."""
    return np.clip(np.floor(resize_reference(image, size, size) + 0.5), 0, 255)


def test_tiles_from_images_match_area_and_linear_reference():
    images = analyze_inputs(seed=2)
    tiles = nat.tiles_from_images(images, size=S)
    for image, tile in zip(images, tiles):
        diff = np.abs(tile.astype(int) - rounded_resize_reference(image, S))
        # float32 weights vs float64: only values within ~1e-4 of a rounding tie may differ
        assert diff.max() <= 1 and (diff > 0).sum() <= 8, image.shape
    assert nat.tiles_from_images([np.zeros((3, 4, 3), np.uint8)], size=13).shape == (1, 13, 13, 3)


# ---------------------------------------------------------------- graph

def components_reference(n, i, j):
    adj = [[] for _ in range(n)]
    for a, b in zip(i, j):
        adj[a].append(b)
        adj[b].append(a)
    label = [-1] * n
    for s in range(n):  # increasing s: the first node reached is the smallest
        if label[s] >= 0:
            continue
        label[s] = s
        queue = deque([s])
        while queue:
            v = queue.popleft()
            for w in adj[v]:
                if label[w] < 0:
                    label[w] = s
                    queue.append(w)
    return label


def test_components_hand_made():
    i = np.array([1, 5, 6, 3], np.int64)
    j = np.array([2, 4, 2, 3], np.int64)
    got = nat.components(8, i, j)
    assert got.dtype == np.int64
    assert got.tolist() == [0, 1, 1, 3, 4, 4, 1, 7]


def test_components_random_against_bfs():
    rng = np.random.default_rng(1)
    n = 500
    i = rng.integers(0, n, 400)
    j = rng.integers(0, n, 400)
    assert nat.components(n, i, j).tolist() == components_reference(n, i.tolist(), j.tolist())


def test_components_validates():
    with pytest.raises(ValueError, match=r"edges: expected node indices in \[0, 3\), got \(0, 3\)"):
        nat.components(3, np.array([0]), np.array([3]))
    with pytest.raises(ValueError, match=r"j: expected integer array of the same shape as i \(2,\)"):
        nat.components(3, np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match="i: expected integer array of shape"):
        nat.components(3, np.array([0.0]), np.array([1]))


def random_knn(n, k, seed=0, n_labels=5):
    rng = np.random.default_rng(seed)
    nb = rng.integers(-1, n, (n, k)).astype(np.int64)
    nb[::7, 0] = np.arange(n)[::7]  # some self-neighbours
    sims = rng.uniform(-0.2, 1.0, (n, k)).astype(np.float32)
    labels = rng.integers(-1, n_labels, n).astype(np.int32)
    return nb, sims, labels


def center_groups_reference(nb, sims, threshold, order):
    n = len(nb)
    adj = [set() for _ in range(n)]
    for r in range(n):
        for v, s in zip(nb[r], sims[r]):
            if v >= 0 and v != r and s >= np.float32(threshold):
                adj[r].add(int(v))
                adj[v].add(r)
    out = [None] * n
    for c in order:
        if out[c] is not None:
            continue
        out[c] = c
        members = [v for v in sorted(adj[c]) if out[v] is None]
        for v in members:
            out[v] = c
        if not members:
            out[c] = -1
    return out


def test_center_groups_does_not_chain():
    # Path a-b-c-d-e, every edge well above the threshold, listed both ways.
    nb = np.array([[1, -1], [0, 2], [1, 3], [2, 4], [3, -1]], np.int64)
    sims = np.where(nb >= 0, 0.99, 0.0).astype(np.float32)
    got = nat.center_groups(nb, sims, 0.9, np.arange(5))
    assert got.tolist() == [0, 0, 2, 2, -1]
    assert len({g for g in got.tolist() if g >= 0}) > 1


def test_center_groups_uses_reverse_edges_and_ignores_self():
    nb = np.array([[1, 0], [1, -1], [2, -1]], np.int64)  # only 0 -> 1 listed; self-loops
    sims = np.array([[0.95, 1.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    got = nat.center_groups(nb, sims, 0.9, np.array([1, 0, 2]))
    assert got.tolist() == [1, 1, -1]
    # Below the threshold: nobody joins. Threshold compares in float32.
    assert nat.center_groups(nb, sims, 0.96, np.array([1, 0, 2])).tolist() == [-1, -1, -1]
    assert nat.center_groups(nb, sims, 0.95, np.array([1, 0, 2])).tolist() == [1, 1, -1]


def test_center_groups_random_against_reference():
    nb, sims, _ = random_knn(200, 6, seed=2)
    order = np.random.default_rng(3).permutation(200)
    got = nat.center_groups(nb, sims, 0.8, order)
    assert got.tolist() == center_groups_reference(nb, sims, 0.8, order.tolist())


def test_center_groups_validates():
    nb = np.array([[1], [0]], np.int64)
    sims = np.ones((2, 1), np.float32)
    with pytest.raises(ValueError, match="order: expected a permutation of 0..2-1, got repeated value 0"):
        nat.center_groups(nb, sims, 0.5, np.array([0, 0]))
    with pytest.raises(ValueError, match=r"order: expected integer array of shape \(2,\)"):
        nat.center_groups(nb, sims, 0.5, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"sims: expected float array of the same shape as neighbors \(2, 1\)"):
        nat.center_groups(nb, np.ones((2, 2), np.float32), 0.5, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"neighbors: expected indices in \[0, 2\) or -1 for none, got 5"):
        nat.center_groups(np.array([[5], [0]]), sims, 0.5, np.array([0, 1]))


def label_tally_reference(nb, sims, labels, n_labels, min_sim):
    n = len(nb)
    suggested = np.full(n, -1, np.int32)
    agreement = np.full(n, np.nan, np.float32)
    support = np.zeros(n, np.float32)
    for r in range(n):
        tally = np.zeros(n_labels)
        for v, s in zip(nb[r], sims[r]):
            if v < 0 or v == r or labels[v] < 0 or not s >= np.float32(min_sim):
                continue
            tally[labels[v]] += max(float(s), 0.0)
        total = tally.sum()
        support[r] = total
        if total > 0:
            suggested[r] = int(np.argmax(tally))  # first maximum = smallest label
            if labels[r] >= 0:
                agreement[r] = tally[labels[r]] / total
    return suggested, agreement, support


@pytest.mark.parametrize("min_sim", [0.0, 0.5, -1.0])
def test_label_tally_against_reference(min_sim):
    nb, sims, labels = random_knn(400, 10, seed=6)
    got = nat.label_tally(nb, sims, labels, 5, min_sim=min_sim)
    want = label_tally_reference(nb, sims, labels, 5, min_sim)
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32 and got[2].dtype == np.float32
    assert np.array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-5)


def test_label_tally_ties_and_empty():
    nb = np.array([[1, 2], [0, -1], [0, -1], [0, 1]], np.int64)
    sims = np.array([[0.5, 0.5], [0.0, 0.0], [-0.5, 0.0], [0.9, 0.9]], np.float32)
    labels = np.array([-1, 3, 1, 0], np.int32)
    suggested, agreement, support = nat.label_tally(nb, sims, labels, 4)
    assert suggested.tolist() == [1, -1, -1, 3]  # tie 1 vs 3 -> 1; zero support -> -1
    assert np.isnan(agreement[0]) and np.isnan(agreement[1]) and np.isnan(agreement[2])
    assert agreement[3] == 0.0
    assert support.tolist() == pytest.approx([1.0, 0.0, 0.0, 0.9])


def test_label_tally_validates():
    nb = np.array([[1], [0]], np.int64)
    sims = np.ones((2, 1), np.float32)
    with pytest.raises(ValueError, match="labels: expected values < n_labels=2 .* got 2 at index 1"):
        nat.label_tally(nb, sims, np.array([0, 2]), 2)
    with pytest.raises(ValueError, match=r"labels: expected integer array of shape \(2,\)"):
        nat.label_tally(nb, sims, np.array([0]), 2)


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("fn", [nat.image_stats, nat.grey_thumbnails, nat.descriptor])
def test_tiles_validation(fn):
    msg = r"tiles: expected uint8 array of shape \(N, 128, 128, 3\), got {}"
    with pytest.raises(ValueError, match=msg.format(r"float64 array of shape \(2, 128, 128, 3\)")):
        fn(np.zeros((2, S, S, 3)))
    with pytest.raises(ValueError, match=msg.format(r"uint8 array of shape \(2, 64, 64, 3\)")):
        fn(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=msg.format(r"uint8 array of shape \(128, 128, 3\)")):
        fn(np.zeros((S, S, 3), np.uint8))
    with pytest.raises(ValueError, match="threads: expected an int >= 0"):
        fn(np.zeros((1, S, S, 3), np.uint8), threads=-1)


def test_non_contiguous_tiles_accepted():
    tiles = random_tiles(4)
    view = tiles[::2]
    assert np.array_equal(nat.image_stats(view), nat.image_stats(np.ascontiguousarray(view)))


def test_knn_validation():
    with pytest.raises(ValueError, match=r"neighbors: expected integer array of shape \(N, k\), got int64 array of shape \(3,\)"):
        nat.label_tally(np.zeros(3, np.int64), np.zeros(3, np.float32), np.zeros(3, np.int32), 1)
    with pytest.raises(ValueError, match="sims: expected float array of shape"):
        nat.label_tally(np.zeros((3, 1), np.int64), np.zeros((3, 1), np.int64), np.zeros(3, np.int32), 1)


# ---------------------------------------------------------------- type stub

def test_stub_is_up_to_date(tmp_path):
    if importlib.util.find_spec("pybind11_stubgen") is None:
        pytest.skip("pybind11-stubgen is not installed (pip install pybind11-stubgen)")
    out = tmp_path / "_native.pyi"
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_native_stub.py"), str(out)], check=True)
    committed = REPO / "core" / "vislint" / "_native.pyi"
    assert out.read_text() == committed.read_text(), (
        "core/vislint/_native.pyi is stale: run python tools/gen_native_stub.py"
    )


def test_rgbx_input_gives_the_same_results_as_rgb():
    rng = np.random.default_rng(11)
    rgbx = rng.integers(0, 256, (97, 150, 4), dtype=np.uint8)
    rgb = np.ascontiguousarray(rgbx[..., :3])
    for a, b in zip(nat.analyze([rgbx]), nat.analyze([rgb])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nat.tiles_from_images([rgbx]), nat.tiles_from_images([rgb]))


# ---------------------------------------------------------------- rotation

def rotation_of(images: list[Image.Image]):
    tiles = np.stack([to_tile(im) for im in images])
    w = np.array([im.size[0] for im in images], np.int32)
    h = np.array([im.size[1] for im in images], np.int32)
    return nat.rotation_features(tiles, w, h)


def centred(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=0)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_rotation_features_invariant_to_rotation_and_mirror():
    rng = np.random.default_rng(21)
    photos = [smooth_photo(rng, (160, 200)) for _ in range(6)]
    a = photos[0]
    copies = [a.rotate(90, expand=True), a.rotate(37, resample=Image.Resampling.BILINEAR, expand=True),
              a.rotate(200, resample=Image.Resampling.BILINEAR),
              a.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(60, resample=Image.Resampling.BILINEAR)]
    ret, polar, info = rotation_of(photos + copies)
    assert ret.shape == (10, nat.ROTATION_DIM) and polar.shape == (10, 16, 128) and polar.dtype == np.int8
    v = centred(ret.astype(np.float64))
    copy_cos, unrelated = v[6:] @ v[0], v[1:6] @ v[0]
    assert copy_cos.min() > unrelated.max() + 0.1, (copy_cos, unrelated)
    # content radius: the whole canvas for photos, about 1/(|cos|+|sin|) of it on an expanded 37° canvas
    assert np.allclose(info[:6, 0], 1.0) and info[7, 0] < 0.85
    assert (info[:, 1] > 1).all()  # texture present
    ai = np.full(4, 0)
    score, angle, mirrored = nat.rotation_verify(polar, ai, np.arange(6, 10))
    assert score.min() > 0.8, score
    assert abs(angle[0] - 270) <= 360 / 256 + 1e-3 or abs(angle[0] - 90) <= 360 / 256 + 1e-3, angle
    assert mirrored.tolist() == [False, False, False, True]
    others, _, _ = nat.rotation_verify(polar, np.zeros(5, int), np.arange(1, 6))
    assert others.max() < 0.6, others
    self_score, _, _ = nat.rotation_verify(polar, np.arange(10), np.arange(10))
    assert np.allclose(self_score, 1.0, atol=1e-4)


def test_rotation_identical_for_any_thread_count_and_validates():
    tiles = np.concatenate([random_tiles(3, seed=5), smooth_tiles(5, seed=5), structured_tiles()])
    n = len(tiles)
    w, h = np.full(n, 300, np.int32), np.arange(100, 100 + n, dtype=np.int32)
    one, two = nat.rotation_features(tiles, w, h, threads=1), nat.rotation_features(tiles, w, h, threads=2)
    for x, y in zip(one, two):
        assert np.array_equal(x, y)
    a, b = np.arange(n), np.roll(np.arange(n), 1)
    v1, v2 = nat.rotation_verify(one[1], a, b, threads=1), nat.rotation_verify(one[1], a, b, threads=2)
    for x, y in zip(v1, v2):
        assert np.array_equal(x, y)
    flat = structured_tiles()[[0, 8]]  # flat grey, black: no texture, zero grid
    _, polar, info = nat.rotation_features(flat, np.full(2, 50, np.int32), np.full(2, 50, np.int32))
    assert (info[:, 1] == 0).all() and not polar.any()
    with pytest.raises(ValueError, match="widths: expected integer array of shape \\(2,\\)"):
        nat.rotation_features(flat, np.full(3, 50), np.full(2, 50))
    with pytest.raises(ValueError, match="polar: expected int8 array of shape \\(N, 16, 128\\)"):
        nat.rotation_verify(np.zeros((2, 16, 64), np.int8), np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="row index out of range"):
        nat.rotation_verify(polar, np.array([0]), np.array([2]))
    with pytest.raises(ValueError, match="same shape"):
        nat.rotation_verify(polar, np.array([0, 1]), np.array([1]))
    empty = nat.rotation_verify(polar, np.zeros(0, int), np.zeros(0, int))
    assert all(len(x) == 0 for x in empty)


def test_pair_dots_are_the_inner_products_whatever_the_threads():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(300, 451)).astype(np.float32)  # (a dimension that is no lane multiple)
    b = rng.normal(size=(200, 451)).astype(np.float32)
    ia, ib = rng.integers(0, 300, 5_000), rng.integers(0, 200, 5_000)
    got = nat.pair_dots(a, ia, b, ib, threads=1)
    want = np.einsum("nd,nd->n", a[ia].astype(np.float64), b[ib].astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(got, nat.pair_dots(a, ia, b, ib, threads=3))
    np.testing.assert_array_equal(got[::7], nat.pair_dots(a, ia[::7], b, ib[::7], threads=2))
    with pytest.raises(ValueError, match="out of range"):
        nat.pair_dots(a, np.array([300]), b, np.array([0]))
    with pytest.raises(ValueError, match="same number of columns"):
        nat.pair_dots(a, ia, b[:, :10], ib)

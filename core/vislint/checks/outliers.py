"""Outliers: images far from everything else, by two measures.

- **Neighbours** (the semantic space, or the copy descriptor without one): the distance of an
  image to the data set is 1 − the mean similarity to its ``n_neighbors`` nearest neighbours
  (exact copies of itself excluded, so a duplicated odd image is still odd).
- **Appearance** (no model needed): image statistics that tell a photograph from a scan, a
  digit, noise, a texture or a microscope slide — exposure, contrast, sharpness, entropy,
  colour and how the detail splits over scales (:func:`appearance`), each as a robust z —
  and the distance of an image to its :data:`APPEARANCE_K`-th nearest other image there. A
  group of up to that many odd images that look alike (25 digits among photos are each
  other's nearest neighbours) is still far from its K-th. Byte-identical files count once.

Each distance becomes a robust z-score (distance − median) / (1.4826 · MAD) over the valid
images; the image is an outlier when the neighbour z ≥ ``outlier_z`` or the appearance z ≥
``outlier_appearance_z``. The score maps the larger excess to [0, 1], 0.5 at the threshold.
Measured on planted other-domain images among the Intel photos: docs/defaults.md.
"""
from __future__ import annotations

import numpy as np

from .. import _native
from ..thresholds import soft_score

APPEARANCE_K = 30
"""The appearance distance is to the K-th nearest other image: groups of up to about K odd
images that look alike stay far from it (planted groups of 25 were found; docs/defaults.md).
Capped at a tenth of the images, so that a small set is not all outliers."""


def outlier_scores(*, valid, graph, exact_group, z_threshold: float, n_neighbors: int = 3):
    """Returns (score float[N], flag bool[N], distance float[N], z float[N]); NaN for invalid."""
    nbr, sims = graph.neighbors, graph.sims.astype(np.float64)
    same = (nbr >= 0) & (exact_group[:, None] >= 0) & (
        exact_group[np.maximum(nbr, 0)] == exact_group[:, None])
    usable = (nbr >= 0) & np.isfinite(sims) & ~same
    # each row's first n_neighbors usable similarities, moved to the front and padded with
    # zeros; for n_neighbors < 9, numpy sums so few values one by one, so the row sums are
    # bit-identical to the mean of each row's own values
    first = np.argsort(~usable, axis=1, kind="stable")[:, :n_neighbors]
    taken = np.take_along_axis(usable, first, axis=1)
    total = np.where(taken, np.take_along_axis(sims, first, axis=1), 0.0).sum(axis=1)
    count = taken.sum(axis=1)
    dist = np.where(valid & (count > 0), 1.0 - total / np.maximum(count, 1), np.nan)
    z = robust_z(dist)
    score = np.where(np.isfinite(z), soft_score(np.maximum(z, 0.0), z_threshold, low_is_bad=False), np.nan)
    flag = np.isfinite(z) & (z >= z_threshold)
    return score, flag, dist, z


def robust_z(x: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826 · MAD) over the finite values (NaN elsewhere, and everywhere
    when fewer than 3 are finite); the MAD is floored at 10⁻⁶."""
    z = np.full(len(x), np.nan)
    ok = np.isfinite(x)
    if ok.sum() >= 3:
        med = np.median(x[ok])
        mad = 1.4826 * np.median(np.abs(x[ok] - med))
        z[ok] = (x[ok] - med) / max(mad, 1e-6)
    return z


def appearance(stats: np.ndarray) -> np.ndarray:
    """float64[N, 17]: what the appearance distance compares, from the image statistics
    (columns :data:`vislint._native.STAT_NAMES`): the eleven exposure, contrast, sharpness,
    entropy and colour statistics (sharpness and the two colour ones on a log scale), the
    sharpness for the contrast (log sharpness − 2 log contrast: high for noise, low for
    smooth shapes), and the log share of each scale of detail. Each column is then a
    robust z over the valid rows (scale: 1.4826 MAD, at least half the standard deviation,
    so a column most images share one value of still counts)."""
    col = {name: stats[:, i].astype(np.float64) for i, name in enumerate(_native.STAT_NAMES)}
    log = {name: np.log1p(np.maximum(col[name], 0.0))
           for name in ("blur_laplacian_var", "lum_std", "colourfulness", "channel_diff")}
    x = np.column_stack(
        [log["blur_laplacian_var"]]
        + [col[n] for n in ("lum_mean", "lum_std", "lum_p01", "lum_p05", "lum_p50", "lum_p95",
                            "lum_p99", "entropy")]
        + [log["colourfulness"], log["channel_diff"],
           log["blur_laplacian_var"] - 2 * log["lum_std"]]
        + [np.log(col[n]) for n in ("detail_2", "detail_4", "detail_8", "detail_16",
                                    "detail_coarse")])
    ok = np.isfinite(x).all(axis=1)
    if ok.sum() >= 3:
        med = np.median(x[ok], axis=0)
        scale = np.maximum(1.4826 * np.median(np.abs(x[ok] - med), axis=0), 0.5 * x[ok].std(axis=0))
        x = (x - med) / np.where(scale > 0, scale, 1.0)
    x[~ok] = np.nan
    return x


def appearance_distances(stats, valid, content_hashes, *, threads: int = 0) -> np.ndarray:
    """float64[N]: each valid image's distance in :func:`appearance` to its
    :data:`APPEARANCE_K`-th nearest other image (capped at a tenth of the distinct images);
    byte-identical files count once, so copies of an odd image do not hide it. NaN for
    invalid images, and for all when there are fewer than 11 distinct valid images. The scan
    computes it beside the kNN graphs (it needs only the statistics)."""
    from ..knn import kth_distances

    x = appearance(stats)
    rows = np.flatnonzero(valid & np.isfinite(x).all(axis=1))
    _, first, member_of = np.unique(np.array([content_hashes[r] for r in rows], dtype=object),
                                    return_index=True, return_inverse=True)
    dist = np.full(len(valid), np.nan)
    k = min(APPEARANCE_K, (len(first) - 1) // 10)
    if k >= 1:
        dist[rows] = kth_distances(x[rows[first]], k, threads=threads)[member_of]
    return dist


def appearance_scores(dist: np.ndarray, z_threshold: float):
    """(score float[N], flag bool[N], z float[N]) of the :func:`appearance_distances`."""
    z = robust_z(dist)
    score = np.where(np.isfinite(z), soft_score(np.maximum(z, 0.0), z_threshold, low_is_bad=False), np.nan)
    return score, np.isfinite(z) & (z >= z_threshold), z


def outlier(ctx):
    """The outlier check: neighbour distance in the semantic space (the copy space when
    there is none), and appearance."""
    from ..vocabulary import CheckResult

    t = ctx.thresholds
    score, flag, dist, z = outlier_scores(valid=ctx.valid, graph=ctx.space("semantic").graph,
                                          exact_group=ctx.duplicates.exact_group,
                                          z_threshold=t.outlier_z)
    if t.outlier_appearance_z is None:  # appearance switched off
        look_score = look_z = np.full(len(ctx), np.nan)
        look_flag = np.zeros(len(ctx), bool)
    else:
        look = (ctx.appearance if ctx.appearance is not None else
                appearance_distances(ctx.stats, ctx.valid, ctx.meta["content_hash"], threads=ctx.threads))
        look_score, look_flag, look_z = appearance_scores(look, t.outlier_appearance_z)
    return CheckResult(flag=flag | look_flag, score=np.fmax(score, look_score),
                       columns={"outlier_distance": dist, "outlier_z": z,
                                "outlier_appearance_z": look_z})

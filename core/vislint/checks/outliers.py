"""Outliers: images far from everything else in feature space.

The distance of an image to the data set is 1 − the mean similarity to its
``n_neighbors`` nearest neighbours (exact copies of itself excluded, so a
duplicated odd image is still odd). Its robust z-score is
(distance − median) / (1.4826 · MAD) over all valid images; the image is an
outlier when z ≥ ``outlier_z``. The score maps z to [0, 1] with 0.5 at the
threshold.
"""
from __future__ import annotations

import numpy as np

from ..thresholds import soft_score


def outlier_scores(*, valid, graph, exact_group, z_threshold: float, n_neighbors: int = 3):
    """Returns (score float[N], flag bool[N], distance float[N], z float[N]); NaN for invalid."""
    n = len(valid)
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
    ok = np.isfinite(dist)
    z = np.full(n, np.nan)
    if ok.sum() >= 3:
        med = np.median(dist[ok])
        mad = 1.4826 * np.median(np.abs(dist[ok] - med))
        z[ok] = (dist[ok] - med) / max(mad, 1e-6)
    score = np.where(np.isfinite(z), soft_score(np.maximum(z, 0.0), z_threshold, low_is_bad=False), np.nan)
    flag = np.isfinite(z) & (z >= z_threshold)
    return score, flag, dist, z


def outlier(ctx):
    """The outlier check in the semantic space (the copy space when there is none)."""
    from ..vocabulary import CheckResult

    score, flag, dist, z = outlier_scores(valid=ctx.valid, graph=ctx.space("semantic").graph,
                                          exact_group=ctx.duplicates.exact_group,
                                          z_threshold=ctx.thresholds.outlier_z)
    return CheckResult(flag=flag, score=score, columns={"outlier_distance": dist, "outlier_z": z})

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
    dist = np.full(n, np.nan)
    for i in np.flatnonzero(valid):
        s = sims[i][usable[i]][:n_neighbors]
        if len(s):
            dist[i] = 1.0 - s.mean()
    ok = np.isfinite(dist)
    z = np.full(n, np.nan)
    if ok.sum() >= 3:
        med = np.median(dist[ok])
        mad = 1.4826 * np.median(np.abs(dist[ok] - med))
        z[ok] = (dist[ok] - med) / max(mad, 1e-6)
    score = np.where(np.isfinite(z), soft_score(np.maximum(z, 0.0), z_threshold, low_is_bad=False), np.nan)
    flag = np.isfinite(z) & (z >= z_threshold)
    return score, flag, dist, z

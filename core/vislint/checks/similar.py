"""Similar content: groups of images that a model sees as showing the same thing.

This check reads the semantic space only (a model's or precomputed embeddings). The copy
space answers another question, "is it the same photograph?", and the duplicate checks
already ask it; a model never changes what is a copy.

Groups are built as near-duplicate groups are, over the semantic kNN graph: images are
visited in keep order, and each unassigned image becomes the centre of a group that takes its
unassigned neighbours with cosine similarity ≥ ``similar_content``. Every member is therefore
similar to the representative itself; groups never chain.

The check is off unless ``similar_content`` is set. A cosine that means "same content" depends
on the model (docs/defaults.md), and no model could be measured here to choose a default.
Without a semantic space it flags nothing, and its score is NaN.
"""
from __future__ import annotations

import numpy as np

from .. import _native
from .duplicates import group_members, _renumber


def similar_groups(*, valid, graph, order, threshold: float) -> np.ndarray:
    """int64[N] group number per row (-1: in no group of two or more). Groups are numbered
    0..G-1 in the keep ``order`` of their best member."""
    n = len(valid)
    sims = np.where(valid[:, None], graph.sims, -np.inf).astype(np.float32)
    full_order = np.concatenate([order, np.flatnonzero(~valid)]).astype(np.int64)
    centre = np.where(valid, _native.center_groups(graph.neighbors, sims, float(threshold),
                                                   full_order), -1)
    size = np.bincount(np.where(centre >= 0, centre, n), minlength=n + 1)[:n]
    centre = np.where((centre >= 0) & (size[np.maximum(centre, 0)] > 1), centre, -1)
    return _renumber(centre, order)


def similar_content(ctx):
    """The similar-content check (see the module docstring)."""
    from ..vocabulary import CheckResult

    n, ids = len(ctx), ctx.catalog.ids
    threshold = ctx.thresholds.similar_content
    group = np.full(n, -1, np.int64)
    score = np.full(n, np.nan)
    groups, pairs, pair_sims = [], np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    if ctx.semantic:
        space = ctx.spaces["semantic"]
        graph = space.graph
        top = graph.sims[:, 0].astype(np.float64)
        score = np.where(ctx.valid & (graph.neighbors[:, 0] >= 0), np.clip(top, 0.0, 1.0), np.nan)
        if threshold is not None:
            group = similar_groups(valid=ctx.valid, graph=graph, order=ctx.keep_order,
                                   threshold=threshold)
            groups = _listed(group, ctx.rank, space.vectors)
            pairs, pair_sims = _pairs(group, graph, threshold)
    representative = np.full(n, -1, np.int64)
    for g, rows, _ in groups:
        representative[rows] = rows[0]
    return CheckResult(
        flag=group >= 0, score=score,
        columns={"similar_group": group,
                 "similar_to": [ids[r] if r >= 0 and r != i else None
                                for i, r in enumerate(representative.tolist())]},
        groups=groups, pairs=pairs, pair_sims=pair_sims)


def _listed(group, rank, vectors) -> list:
    """Groups as (number, rows with the representative first, cosine to it)."""
    out = []
    for members in group_members(group):
        rep = int(members[np.argmin(rank[members])])
        rows = [rep] + sorted(int(m) for m in members if m != rep)
        sims = np.clip(vectors[rows] @ vectors[rep], -1.0, 1.0).astype(float).tolist()
        sims[0] = 1.0
        out.append((int(group[rep]), rows, sims))
    return out


def _pairs(group, graph, threshold):
    """The graph's edges at or above ``threshold`` within one group, each once (i < j)."""
    rows = np.repeat(np.arange(len(group)), graph.neighbors.shape[1])
    cols, sims = graph.neighbors.ravel(), graph.sims.ravel()
    keep = (cols >= 0) & (sims >= np.float32(threshold)) & (group[rows] >= 0)
    keep[keep] = group[rows[keep]] == group[cols[keep]]
    a, b = np.minimum(rows[keep], cols[keep]), np.maximum(rows[keep], cols[keep])
    _, first = np.unique(a * len(group) + b, return_index=True)
    return np.stack([a[first], b[first]], axis=1).astype(np.int64), sims[keep][first]

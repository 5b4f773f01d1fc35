"""Exact and near duplicates, grouped without chaining, with a keep policy.

Exact duplicates: files with the same bytes (content hash), or files with
different bytes whose decoded pixels are identical (a PNG and a BMP of one
picture). Pixel comparison is done only for candidates: same width and height
and a descriptor similarity of at least ``exact_pixels_min_sim``.

Near duplicates: pairs whose descriptor similarity is at least
``near_duplicate``. Groups are built by :func:`vislint._native.center_groups`:
images are visited in keep-policy order and each unassigned image becomes the
centre of a group that takes its unassigned neighbours above the threshold.
Every member is therefore similar to the group's representative itself, not
merely linked through a chain of copies — groups stay tight where connected
components would chain thousands of images into one blob. Exact copies always
share a group.

Keep policy (which member represents the group, ``duplicate_of`` of the
others): labelled before unlabelled, then split train < valid < test < other,
then more pixels, then sharper (higher Laplacian variance), then path order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _native

SPLIT_RANK = {"train": 0, "valid": 1, "test": 2}


def keep_order(valid, labels, splits, area, sharpness, relpaths) -> np.ndarray:
    """Indices of the valid images, best to keep first (see module docstring)."""
    idx = np.flatnonzero(valid)
    keys = [(labels[i] is None, SPLIT_RANK.get(splits[i], 3 if splits[i] is None else 2.5),
             -int(area[i]), -float(sharpness[i]), relpaths[i]) for i in idx]
    return idx[sorted(range(len(idx)), key=keys.__getitem__)]


@dataclass
class Duplicates:
    """Per-image arrays (length N) and pair lists of the duplicate checks.

    exact_group / duplicate_group: group number or -1.
    representative: row index of the image's group representative, -1 if none.
    near_sim: highest similarity to any other image (NaN for invalid images).
    pairs: int64[P, 2] row pairs (i < j) that are duplicates, with
    pair_sims: float32[P] and pair_exact: bool[P].
    """

    exact_group: np.ndarray
    duplicate_group: np.ndarray
    representative: np.ndarray
    near_sim: np.ndarray
    pairs: np.ndarray
    pair_sims: np.ndarray
    pair_exact: np.ndarray


def find_duplicates(*, valid, content_hash, width, height, graph, order,
                    near_threshold: float, pixel_min_sim: float, pixels_equal) -> Duplicates:
    """Find exact and near duplicates among the ``valid`` rows.

    ``graph``: the shared kNN graph (row indices; -1 = none). ``order``: keep
    order from :func:`keep_order`. ``pixels_equal(i, j)``: compares two rows'
    decoded pixels (called only for candidates).
    """
    n = len(valid)
    nbr, sims = graph.neighbors, graph.sims
    rows = np.repeat(np.arange(n), nbr.shape[1])
    cols, vals = nbr.ravel(), sims.ravel()
    real = (cols >= 0) & valid[rows]
    a, b = np.minimum(rows[real], cols[real]), np.maximum(rows[real], cols[real])
    # each undirected edge once, with its similarity from the graph
    _, first = np.unique(a * n + b, return_index=True)
    edges = np.stack([a[first], b[first]], axis=1).reshape(-1, 2)
    e_sim = vals[real][first].astype(np.float64)

    # Exact: same bytes (all pairs within a hash), then same pixels among candidates.
    by_hash: dict[str, list[int]] = {}
    for i in np.flatnonzero(valid):
        by_hash.setdefault(content_hash[i], []).append(int(i))
    ei, ej = [], []
    for members in by_hash.values():
        for m in members[1:]:
            ei.append(members[0])
            ej.append(m)
    if len(edges):
        cand = ((e_sim >= pixel_min_sim) & (width[edges[:, 0]] == width[edges[:, 1]])
                & (height[edges[:, 0]] == height[edges[:, 1]]))
        for i, j in edges[cand]:
            if content_hash[i] != content_hash[j] and pixels_equal(int(i), int(j)):
                ei.append(int(i))
                ej.append(int(j))
    comp = _native.components(n, np.array(ei, np.int64), np.array(ej, np.int64))
    comp_size = np.bincount(comp, minlength=n)
    is_exact = valid & (comp_size[comp] > 1)
    exact_group = _renumber(np.where(is_exact, comp, -1), order)

    # Near: non-chaining groups over the shared graph, then exact copies joined.
    masked_sims = np.where(valid[:, None], sims, -np.inf).astype(np.float32)
    full_order = np.concatenate([order, np.flatnonzero(~valid)]).astype(np.int64)
    centre = _native.center_groups(nbr, masked_sims, float(near_threshold), full_order)
    centre = np.where(valid, centre, -1)
    rank = np.empty(n, np.int64)
    rank[full_order] = np.arange(n)
    for members in _members(exact_group):
        first = members[np.argmin(rank[members])]
        target = centre[first] if centre[first] >= 0 else first
        centre[members] = target
    size = np.bincount(np.where(centre >= 0, centre, n), minlength=n + 1)[:n]
    centre = np.where((centre >= 0) & (size[np.maximum(centre, 0)] > 1), centre, -1)
    # Representative: the member earliest in keep order.
    representative = np.full(n, -1, np.int64)
    for members in _members(centre):
        representative[members] = members[np.argmin(rank[members])]
    duplicate_group = _renumber(centre, order)

    # Pairs: every near edge of the graph, plus every exact pair.
    pair_list = {}
    if len(edges):
        near = e_sim >= near_threshold
        for (i, j), s in zip(edges[near], e_sim[near]):
            pair_list[(int(i), int(j))] = float(s)
    exact_pairs = set()
    for members in _members(exact_group):
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                p = (int(members[x]), int(members[y]))
                exact_pairs.add(p)
                pair_list[p] = 1.0
    keys = sorted(pair_list)
    pairs = np.array(keys, np.int64).reshape(-1, 2)
    near_sim = np.where(valid, np.clip(sims[:, 0], 0.0, 1.0), np.nan)
    near_sim[is_exact] = 1.0
    return Duplicates(exact_group, duplicate_group, representative, near_sim, pairs,
                      np.array([pair_list[p] for p in keys], np.float32),
                      np.array([p in exact_pairs for p in keys], bool))


def _members(group: np.ndarray):
    """Yield the row indices of each group (label ≥ 0), in label order."""
    idx = np.flatnonzero(group >= 0)
    if not len(idx):
        return
    srt = idx[np.argsort(group[idx], kind="stable")]
    bounds = np.flatnonzero(np.diff(group[srt])) + 1
    yield from np.split(srt, bounds)


def _renumber(group: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Relabel groups 0..G-1 in the keep order of their best member; -1 stays -1."""
    lut = np.full(len(group) + 1, -1, np.int64)
    seen = group[order]
    seen = seen[seen >= 0]
    firsts = seen[np.sort(np.unique(seen, return_index=True)[1])]
    lut[firsts] = np.arange(len(firsts))
    return np.where(group >= 0, lut[np.maximum(group, 0)], -1)


def find_duplicates_in(ctx) -> Duplicates:
    """:func:`find_duplicates` over a scan's copy space (a
    :class:`vislint.checks.context.Context`): its kNN graph with the verified rotated copies
    folded in and the pairs reviewers called "not duplicates" taken out."""
    from ..decode import decode_full
    from .rotation import duplicate_graph, judge_rotations

    copy, t, meta, paths = ctx.spaces["copy"], ctx.thresholds, ctx.meta, ctx.catalog.paths

    def pixels_equal(i: int, j: int) -> bool:
        try:
            return bool(np.array_equal(decode_full(paths[i]), decode_full(paths[j])))
        except Exception:  # a file that changed since decoding is simply not a pixel twin
            return False

    rot = judge_rotations(candidates=ctx.rotation["candidates"], polar=ctx.rotation["polar"],
                          info=ctx.rotation["info"], valid=ctx.valid, graph=copy.graph,
                          near_threshold=t.near_duplicate, veto_padded=True, threads=ctx.threads)
    return find_duplicates(valid=ctx.valid, content_hash=meta["content_hash"], width=meta["width"],
                           height=meta["height"],
                           graph=duplicate_graph(copy.graph, rot).without_pairs(ctx.reviewed.pairs),
                           order=ctx.keep_order, near_threshold=t.near_duplicate,
                           pixel_min_sim=t.exact_pixels_min_sim, pixels_equal=pixels_equal)


def group_rows(ctx, group: np.ndarray, keep=None) -> list:
    """The groups of ``group`` (a group number per row, -1 = none) as :class:`CheckResult`
    groups: (number, rows with the representative — best in keep order — first and the rest
    in row order, similarity to the representative). ``keep(rows, number)``: which groups to
    list (default all). A similarity is the duplicate pair's where the pair was judged (the
    descriptor's or the rotation rule's), else the copy vectors' cosine."""
    dup = ctx.duplicates
    vectors = ctx.spaces["copy"].vectors
    pair_sim = dict(zip(map(tuple, dup.pairs.tolist()), dup.pair_sims.tolist()))
    out = []
    for members in _members(group):
        g = int(group[members[0]])
        if keep is not None and not keep(members, g):
            continue
        rep = int(members[np.argmin(ctx.rank[members])])
        ordered = [rep] + sorted(int(m) for m in members if m != rep)
        sims = np.clip(vectors[ordered] @ vectors[rep], -1.0, 1.0)
        sims = [pair_sim.get((min(m, rep), max(m, rep)), float(s)) for m, s in zip(ordered, sims)]
        sims[0] = 1.0
        out.append((g, ordered, sims))
    return out


def exact_duplicate(ctx):
    """Files with the same bytes or the same decoded pixels (see the module docstring)."""
    from ..vocabulary import CheckResult

    dup = ctx.duplicates
    flag = dup.exact_group >= 0
    return CheckResult(flag=flag, score=np.where(ctx.valid, flag.astype(float), np.nan),
                       groups=group_rows(ctx, dup.exact_group), pairs=dup.pairs[dup.pair_exact],
                       pair_sims=dup.pair_sims[dup.pair_exact])


def near_duplicate(ctx):
    """Members of duplicate groups holding at least one copy that is not an exact copy of
    them; the evidence of every duplicate group (group, representative, nearest neighbour)."""
    from ..vocabulary import CheckResult

    dup, ids = ctx.duplicates, ctx.catalog.ids
    n = len(ctx)
    flag = np.zeros(n, bool)
    for members in _members(dup.duplicate_group):
        for m in members:
            flag[m] = any(dup.exact_group[o] < 0 or dup.exact_group[o] != dup.exact_group[m]
                          for o in members if o != m)
    rep, in_group = dup.representative, dup.duplicate_group >= 0
    graph = ctx.spaces["copy"].graph
    nearest = graph.neighbors[:, 0]
    near = ~dup.pair_exact
    return CheckResult(
        flag=flag, score=dup.near_sim,
        columns={"exact_group": dup.exact_group, "duplicate_group": dup.duplicate_group,
                 "duplicate_of": [ids[rep[i]] if in_group[i] and rep[i] != i else None
                                  for i in range(n)],
                 "nearest_id": [ids[j] if j >= 0 else None for j in nearest],
                 "nearest_similarity": np.where(nearest >= 0, graph.sims[:, 0], np.nan)},
        groups=group_rows(ctx, dup.duplicate_group, lambda members, g: flag[members].any()),
        pairs=dup.pairs[near], pair_sims=dup.pair_sims[near])

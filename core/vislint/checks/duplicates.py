"""Exact and near duplicates, and shots of one scene, grouped without chaining, with a keep
policy.

Exact duplicates: files with the same bytes (content hash), or files with different bytes
whose decoded pixels are identical (a PNG and a BMP of one picture). Pixel comparison is done
only for candidates: same width and height and a descriptor similarity of at least
``exact_pixels_min_sim``.

Near duplicates: candidate pairs verified as copies (:mod:`vislint.checks.verification`: the
same photograph, edited), with their copy probability. Groups are built by
:func:`vislint._native.center_groups` over the verified copies: images are visited in
keep-policy order and each unassigned image becomes the centre of a group that takes its
unassigned copies. Every member is a verified copy of the group's representative, or — when
all its copies were already taken by other groups — of the member it joined through; groups
stay tight where connected components would chain many images into one blob. Exact copies
always share a group.

Same scene: pairs verified as other shots of one scene (a burst, a moved subject), grouped
the same way, never merged with copies.

Keep policy (which member represents the group, ``duplicate_of`` of the others): labelled
before unlabelled, then split train < valid < test < other, then more pixels, then sharper
(higher Laplacian variance), then path order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _native
from .verification import ROTATION_VERIFIED, TURNED, Verified, verify

SPLIT_RANK = {"train": 0, "valid": 1, "test": 2}


def keep_order(valid, labels, splits, area, sharpness, relpaths) -> np.ndarray:
    """Indices of the valid images, best to keep first (see module docstring)."""
    idx = np.flatnonzero(valid)
    keys = [(labels[i] is None, SPLIT_RANK.get(splits[i], 3 if splits[i] is None else 2.5),
             -int(area[i]), -float(sharpness[i]), relpaths[i]) for i in idx]
    return idx[sorted(range(len(idx)), key=keys.__getitem__)]


@dataclass
class Duplicates:
    """Per-image arrays (length N) and pair lists of the duplicate and same-scene checks.

    exact_group / duplicate_group / scene_group: group number or -1.
    representative: row index of the image's duplicate group representative, -1 if none.
    near_score: highest copy probability of a verified pair of the image (1 for an exact
    copy; 0 without one; NaN for invalid images). scene_score: likewise for same-scene pairs.
    pairs: int64[P, 2] copy pairs (i < j) with pair_scores float64[P] (copy probability, 1
    for exact pairs) and pair_exact bool[P]. scene_pairs, scene_pair_scores: same-scene pairs.
    verified: every verified candidate (:class:`vislint.checks.verification.Verified`).
    """

    exact_group: np.ndarray
    duplicate_group: np.ndarray
    representative: np.ndarray
    near_score: np.ndarray
    pairs: np.ndarray
    pair_scores: np.ndarray
    pair_exact: np.ndarray
    scene_group: np.ndarray
    scene_score: np.ndarray
    scene_pairs: np.ndarray
    scene_pair_scores: np.ndarray
    verified: Verified


def graph_edges(graph, valid) -> tuple[np.ndarray, np.ndarray]:
    """The undirected edges (i < j, each once) of a kNN graph between valid rows, with their
    similarity (float64)."""
    n = len(valid)
    nbr, sims = graph.neighbors, graph.sims
    rows = np.repeat(np.arange(n), nbr.shape[1])
    cols, vals = nbr.ravel(), sims.ravel()
    real = (cols >= 0) & valid[rows]
    real[real] &= valid[cols[real]]
    a, b = np.minimum(rows[real], cols[real]), np.maximum(rows[real], cols[real])
    _, first = np.unique(a * n + b, return_index=True)
    edges = np.stack([a[first], b[first]], axis=1).reshape(-1, 2)
    return edges, vals[real][first].astype(np.float64)


def find_duplicates(*, valid, content_hash, width, height, graph, order, thumbs, rotation,
                    near_threshold: float, candidate_threshold: float, pixel_min_sim: float,
                    pixels_equal, threads: int = 0) -> Duplicates:
    """Find exact and near duplicates and same-scene shots among the ``valid`` rows.

    graph: the copy space's kNN graph (row indices; -1 = none), without the pairs reviewers
    called "not duplicates". order: keep order from :func:`keep_order`. thumbs: the grey
    thumbnails that verify candidates. rotation: {(i, j): (similarity, angle)} of the pairs
    the rotation rule judged. pixels_equal(i, j): compares two rows' decoded pixels (called
    only for candidates).
    """
    n = len(valid)
    edges, e_sim = graph_edges(graph, valid)

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
    is_exact = valid & (np.bincount(comp, minlength=n)[comp] > 1)

    # Verify the candidates that are not exact copies of each other: the graph's pairs at
    # the candidate threshold and the pairs the rotation rule accepts (with their descriptor
    # similarity where the graph has one).
    edge_key = edges[:, 0] * n + edges[:, 1]  # sorted: edges come from np.unique
    rot = np.array([p for p, (s, _) in rotation.items() if valid[p[0]] and valid[p[1]]
                    and s >= ROTATION_VERIFIED], np.int64).reshape(-1, 2)
    keys = np.union1d(edge_key[e_sim >= candidate_threshold], rot[:, 0] * n + rot[:, 1])
    cand = np.stack([keys // n, keys % n], axis=1).astype(np.int64).reshape(-1, 2)
    cand = cand[~(is_exact[cand[:, 0]] & (comp[cand[:, 0]] == comp[cand[:, 1]]))]
    cand_key = cand[:, 0] * n + cand[:, 1]
    at = np.minimum(np.searchsorted(edge_key, cand_key), max(len(edge_key) - 1, 0))
    in_graph = edge_key[at] == cand_key if len(edge_key) else np.zeros(len(cand), bool)
    checked = verify(thumbs=thumbs, pairs=cand,
                     similarity=np.where(in_graph, e_sim[at] if len(e_sim) else 0.0, -np.inf),
                     rotation=rotation, near_threshold=near_threshold, threads=threads)
    return group_duplicates(valid=valid, exact_links=np.stack([ei, ej], axis=1)
                            .astype(np.int64).reshape(-1, 2), verified=checked, order=order)


def group_duplicates(*, valid, exact_links, verified: Verified, order) -> Duplicates:
    """The groups of :class:`Duplicates` from what was found between the ``valid`` rows:
    ``exact_links`` (int64[E, 2], pairs of rows with the same bytes or pixels; their
    connected components are the exact groups) and the ``verified`` candidate pairs (i < j;
    those joining two members of one exact group are ignored), in keep ``order`` (see the
    module docstring). Used by a scan, and by a scan that adds images to a saved one
    (:mod:`vislint.adding`), which gives it the pairs found before and the new ones."""
    n = len(valid)
    comp = _native.components(n, exact_links[:, 0].copy(), exact_links[:, 1].copy())
    comp_size = np.bincount(comp, minlength=n)
    is_exact = valid & (comp_size[comp] > 1)
    exact_group = _renumber(np.where(is_exact, comp, -1), order)
    vp = verified.pairs
    inside = is_exact[vp[:, 0]] & (comp[vp[:, 0]] == comp[vp[:, 1]])
    copy = (verified.kind == "copy") & ~inside
    exact_pairs = [(int(m[x]), int(m[y])) for m in group_members(exact_group)
                   for x in range(len(m)) for y in range(x + 1, len(m))]
    exact_pairs = np.array(sorted(exact_pairs), np.int64).reshape(-1, 2)
    pairs = np.concatenate([exact_pairs, vp[copy]])
    scores = np.concatenate([np.ones(len(exact_pairs)), verified.copy_probability[copy]])
    srt = np.lexsort((pairs[:, 1], pairs[:, 0])) if len(pairs) else np.zeros(0, np.int64)
    pairs, scores = pairs[srt], scores[srt]
    pair_exact = np.concatenate([np.ones(len(exact_pairs), bool), np.zeros(copy.sum(), bool)])[srt]

    # Near: non-chaining groups over the verified copies, then exact copies joined.
    centre = _groups(n, valid, pairs, scores, order)
    rank = np.empty(n, np.int64)
    rank[np.concatenate([order, np.flatnonzero(~valid)])] = np.arange(n)
    for members in group_members(exact_group):
        first = members[np.argmin(rank[members])]
        target = centre[first] if centre[first] >= 0 else first
        centre[members] = target
    centre = _drop_singletons(centre)
    representative = np.full(n, -1, np.int64)
    for members in group_members(centre):
        representative[members] = members[np.argmin(rank[members])]
    near_score = _best(n, pairs, scores)
    near_score[is_exact] = 1.0

    scene = (verified.kind == "same_scene") & ~inside
    scene_pairs, scene_scores = vp[scene], verified.scene_score[scene]
    scene_group = _renumber(_drop_singletons(_groups(n, valid, scene_pairs, scene_scores, order)),
                            order)
    return Duplicates(exact_group, _renumber(centre, order), representative,
                      np.where(valid, near_score, np.nan), pairs, scores, pair_exact,
                      scene_group, np.where(valid, _best(n, scene_pairs, scene_scores), np.nan),
                      scene_pairs, scene_scores, verified)


def _groups(n, valid, pairs, scores, order) -> np.ndarray:
    """Centre of each row's group (-1: none) over the ``pairs``: :func:`_native.center_groups`
    in keep ``order``, then each row left out while it has a partner joins its best partner's
    group."""
    if not len(pairs):
        return np.full(n, -1, np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    rows, cols = np.concatenate([a, b]), np.concatenate([b, a])
    w = np.concatenate([scores, scores]).astype(np.float32)
    srt = np.lexsort((cols, -w, rows))
    rows, cols, w = rows[srt], cols[srt], w[srt]
    counts = np.bincount(rows, minlength=n)
    pos = np.arange(len(rows)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[rows]
    nbr = np.full((n, max(1, int(counts.max()))), -1, np.int64)
    sims = np.full(nbr.shape, -np.inf, np.float32)
    nbr[rows, pos], sims[rows, pos] = cols, w
    full_order = np.concatenate([order, np.flatnonzero(~valid)]).astype(np.int64)
    centre = _native.center_groups(nbr, sims, -np.inf, full_order)
    centre = np.where(valid & (counts > 0), centre, -1)
    size = np.bincount(np.where(centre >= 0, centre, n), minlength=n + 1)[:n]
    for r in np.flatnonzero((counts > 0) & ((centre < 0) | (size[np.maximum(centre, 0)] < 2))):
        best = nbr[r, 0]  # the row's best partner (rows are sorted by score)
        if centre[best] >= 0 and centre[best] != r and size[centre[best]] >= 2:
            centre[r] = centre[best]
    return centre


def _drop_singletons(centre: np.ndarray) -> np.ndarray:
    n = len(centre)
    size = np.bincount(np.where(centre >= 0, centre, n), minlength=n + 1)[:n]
    return np.where((centre >= 0) & (size[np.maximum(centre, 0)] > 1), centre, -1)


def _best(n: int, pairs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """float64[N]: each row's highest score over ``pairs`` (0 without one)."""
    best = np.zeros(n)
    if len(pairs):
        np.maximum.at(best, pairs[:, 0], scores)
        np.maximum.at(best, pairs[:, 1], scores)
    return best


def group_members(group: np.ndarray):
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
    :class:`vislint.checks.context.Context`): its kNN graph without the pairs reviewers
    called "not duplicates", its thumbnails, and the rotation rule's judged pairs."""
    from ..decode import decode_full
    from .rotation import judge_rotations

    copy, t, meta, paths = ctx.spaces["copy"], ctx.thresholds, ctx.meta, ctx.catalog.paths

    def pixels_equal(i: int, j: int) -> bool:
        try:
            return bool(np.array_equal(decode_full(paths[i]), decode_full(paths[j])))
        except Exception:  # a file that changed since decoding is simply not a pixel twin
            return False

    graph = copy.graph.without_pairs(ctx.reviewed.pairs)
    rot = judge_rotations(candidates=ctx.rotation["candidates"], polar=ctx.rotation["polar"],
                          info=ctx.rotation["info"], valid=ctx.valid,
                          entropy=ctx.stat("entropy"), graph=graph,
                          near_threshold=t.copy_candidate, veto_padded=True, threads=ctx.threads)
    judged = {(int(i), int(j)): (float(s), float(a)) for (i, j), s, a
              in zip(rot.pairs.tolist(), rot.similarity, rot.angle)
              if (int(i), int(j)) not in ctx.reviewed.pairs}
    return find_duplicates(valid=ctx.valid, content_hash=meta["content_hash"], width=meta["width"],
                           height=meta["height"], graph=graph, order=ctx.keep_order,
                           thumbs=ctx.thumbs, rotation=judged, near_threshold=t.near_duplicate,
                           candidate_threshold=t.copy_candidate,
                           pixel_min_sim=t.exact_pixels_min_sim, pixels_equal=pixels_equal,
                           threads=ctx.threads)


def group_rows(ctx, group: np.ndarray, keep=None, scene: bool = False) -> list:
    """The groups of ``group`` (a group number per row, -1 = none) as :class:`CheckResult`
    groups: (number, rows with the representative — best in keep order — first and the rest
    in row order, score of each member). ``keep(rows, number)``: which groups to list
    (default all). A member's score is its pair's with the representative (copy probability;
    the same-scene score when ``scene``), or, for a member that joined through another, its
    best pair inside the group."""
    dup = ctx.duplicates
    pairs, scores = (dup.scene_pairs, dup.scene_pair_scores) if scene else (dup.pairs, dup.pair_scores)
    score_of = dict(zip(map(tuple, pairs.tolist()), scores.tolist()))
    out = []
    for members in group_members(group):
        g = int(group[members[0]])
        if keep is not None and not keep(members, g):
            continue
        rep = int(members[np.argmin(ctx.rank[members])])
        ordered = [rep] + sorted(int(m) for m in members if m != rep)
        sims = [1.0]
        for m in ordered[1:]:
            s = score_of.get((min(m, rep), max(m, rep)))
            if s is None:
                s = max(score_of.get((min(m, o), max(m, o)), 0.0) for o in ordered if o != m)
            sims.append(float(s))
        out.append((g, ordered, sims))
    return out


def evidence_notes(ctx, group: np.ndarray, scene: bool = False) -> list:
    """Per image, one line saying how it was verified against its group's representative
    (the first member :func:`group_rows` lists): "exact copy", or "copy 0.99 · residual 0.017
    (worst cell 0.094) · mirrored · turned 12°" ("same scene 0.86 · ..." when ``scene``); a
    member that joined through another says so ("via <id>"). None outside groups and for
    representatives."""
    dup, ids = ctx.duplicates, ctx.catalog.ids
    pairs, scores = (dup.scene_pairs, dup.scene_pair_scores) if scene else (dup.pairs, dup.pair_scores)
    exact = set() if scene else set(map(tuple, dup.pairs[dup.pair_exact].tolist()))
    score_of = dict(zip(map(tuple, pairs.tolist()), scores.tolist()))
    v = dup.verified
    at = {p: k for k, p in enumerate(map(tuple, v.pairs.tolist()))}
    notes: list = [None] * len(ctx)
    for _, rows, _ in group_rows(ctx, group, scene=scene):
        rep = rows[0]
        for m in rows[1:]:
            partner = rep
            key = (min(m, rep), max(m, rep))
            if key not in score_of:  # joined through its best partner in the group
                partner = max((o for o in rows if o != m),
                              key=lambda o: score_of.get((min(m, o), max(m, o)), -1.0))
                key = (min(m, partner), max(m, partner))
            note = ("exact copy" if key in exact
                    else pair_note(score_of.get(key, 0.0), v.evidence, at.get(key), scene))
            notes[m] = note if partner == rep else f"{note} (via {ids[partner]})"
    return notes


def pair_note(score: float, evidence: dict, k: int | None, scene: bool = False) -> str:
    """One line saying how a verified pair was judged: "copy 0.99 · residual 0.017 (worst
    cell 0.094) · mirrored · turned 12°" ("same scene 0.86 · ..." when ``scene``), from
    pair ``k`` of a :class:`vislint.checks.verification.Verified`'s ``evidence`` (None: the
    score alone)."""
    note = f"{'same scene' if scene else 'copy'} {score:.2f}"
    if k is None:
        return note
    if evidence["residual_median"][k] < 9:
        note += (f" · residual {evidence['residual_median'][k]:.3f} "
                 f"(worst cell {evidence['residual_max'][k]:.3f})")
    if evidence["mirrored"][k]:
        note += " · mirrored"
    angle = evidence["rotation_angle"][k]
    if np.isfinite(angle) and min(angle % 360, 360 - angle % 360) >= TURNED:
        note += f" · turned {min(angle % 360, 360 - angle % 360):.0f}°"
    return note


def exact_duplicate(ctx):
    """Files with the same bytes or the same decoded pixels (see the module docstring)."""
    from ..vocabulary import CheckResult

    dup = ctx.duplicates
    flag = dup.exact_group >= 0
    return CheckResult(flag=flag, score=np.where(ctx.valid, flag.astype(float), np.nan),
                       groups=group_rows(ctx, dup.exact_group), pairs=dup.pairs[dup.pair_exact],
                       pair_sims=dup.pair_scores[dup.pair_exact])


def near_duplicate(ctx):
    """Members of duplicate groups holding at least one copy that is not an exact copy of
    them; the evidence of every duplicate group (group, representative, nearest neighbour)
    and of every verified copy pair (:func:`pair_evidence`)."""
    from ..vocabulary import CheckResult

    dup, ids = ctx.duplicates, ctx.catalog.ids
    n = len(ctx)
    flag = np.zeros(n, bool)
    for members in group_members(dup.duplicate_group):
        for m in members:
            flag[m] = any(dup.exact_group[o] < 0 or dup.exact_group[o] != dup.exact_group[m]
                          for o in members if o != m)
    rep, in_group = dup.representative, dup.duplicate_group >= 0
    graph = ctx.spaces["copy"].graph
    nearest = graph.neighbors[:, 0]
    near = ~dup.pair_exact
    return CheckResult(
        flag=flag, score=dup.near_score,
        columns={"exact_group": dup.exact_group, "duplicate_group": dup.duplicate_group,
                 "duplicate_of": [ids[rep[i]] if in_group[i] and rep[i] != i else None
                                  for i in range(n)],
                 "nearest_id": [ids[j] if j >= 0 else None for j in nearest],
                 "nearest_similarity": np.where(nearest >= 0, graph.sims[:, 0], np.nan),
                 "duplicate_evidence": evidence_notes(ctx, dup.duplicate_group)},
        groups=group_rows(ctx, dup.duplicate_group, lambda members, g: flag[members].any()),
        pairs=dup.pairs[near], pair_sims=dup.pair_scores[near],
        pair_columns=pair_evidence(dup.verified, dup.pairs[near]))


def same_scene(ctx):
    """Members of same-scene groups: other shots of one scene (see the module docstring)."""
    from ..vocabulary import CheckResult

    dup, ids, splits = ctx.duplicates, ctx.catalog.ids, ctx.catalog.splits
    n = len(ctx)
    group = dup.scene_group
    rep = np.full(n, -1, np.int64)
    listed = group_rows(ctx, group, scene=True)
    for _, rows, _ in listed:
        rep[rows] = rows[0]
    return CheckResult(
        flag=group >= 0, score=dup.scene_score,
        columns={"scene_group": group,
                 "scene_of": [ids[rep[i]] if rep[i] >= 0 and rep[i] != i else None
                              for i in range(n)],
                 "scene_splits": [_splits(splits, np.flatnonzero(group == group[i]))
                                  if group[i] >= 0 else None for i in range(n)],
                 "scene_evidence": evidence_notes(ctx, group, scene=True)},
        groups=listed, pairs=dup.scene_pairs, pair_sims=dup.scene_pair_scores,
        pair_columns=pair_evidence(dup.verified, dup.scene_pairs))


def _splits(splits, rows) -> str | None:
    """The splits of a group's members, joined by "|" when they are more than one (a scene
    split across train and test is a leak worth reviewing)."""
    found = sorted({splits[r] for r in rows if isinstance(splits[r], str)})
    return "|".join(found) if len(found) > 1 else None


def pair_evidence(verified: Verified | None, pairs: np.ndarray) -> dict:
    """The :data:`vislint.vocabulary.PAIR_EVIDENCE` columns of ``pairs`` (NaN / False for
    pairs never verified: exact copies; all of them when ``verified`` is None)."""
    from ..vocabulary import PAIR_EVIDENCE

    index = ({} if verified is None else
             {p: k for k, p in enumerate(map(tuple, verified.pairs.tolist()))})
    at = np.array([index.get(p, -1) for p in map(tuple, pairs.tolist())], np.int64)
    known = at >= 0
    out = {}
    for name, kind in PAIR_EVIDENCE:
        col = np.zeros(len(at), bool) if kind == "bool" else np.full(len(at), np.nan)
        if known.any():
            src = verified.similarity if name == "descriptor_similarity" else verified.evidence[name]
            col[known] = np.asarray(src)[at[known]]
        out[name] = col
    return out

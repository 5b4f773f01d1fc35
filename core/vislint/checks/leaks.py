"""Leaks: an image whose exact or near duplicate sits in another split.

An image leaks when a duplicate pair or its duplicate group joins it to an
image of a different split (both splits known). ``leak_partners`` lists those
partners, ``leak_score`` is the highest similarity to one of them, and the
split × split table counts, for each split, the images that have a partner in
each other split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Leaks:
    """partners: per image, the sorted row indices of its cross-split partners.
    score: float[N] highest similarity to a partner (0 when none).
    pairs: int64[P, 2] duplicate pairs whose splits differ, with pair_sims.
    table: {row split: {partner split: images}}."""

    partners: list[list[int]]
    score: np.ndarray
    pairs: np.ndarray
    pair_sims: np.ndarray
    table: dict[str, dict[str, int]]


def find_leaks(*, splits, near_score, duplicate_group, pairs, pair_sims) -> Leaks:
    n = len(splits)
    split = np.array([s if s is not None else "" for s in splits], dtype=object)
    partners: list[set[int]] = [set() for _ in range(n)]
    score = np.zeros(n, np.float64)
    cross = [(int(i), int(j)) for i, j in pairs
             if split[i] and split[j] and split[i] != split[j]]
    sim_of = {(int(i), int(j)): float(s) for (i, j), s in zip(pairs, pair_sims)}
    for i, j in cross:
        partners[i].add(j)
        partners[j].add(i)
    # Group members in other splits, even where the pair was not a graph edge.
    order = np.argsort(duplicate_group, kind="stable")
    order = order[duplicate_group[order] >= 0]
    for members in np.split(order, np.flatnonzero(np.diff(duplicate_group[order])) + 1):
        if len(members) < 2 or len({split[m] for m in members if split[m]}) < 2:
            continue
        for a in members:
            for b in members:
                if split[a] and split[b] and split[a] != split[b]:
                    partners[a].add(int(b))
    for i in range(n):
        for j in partners[i]:
            s = sim_of.get((min(i, j), max(i, j)))
            if s is None:  # joined through the group: both are copies at least this sure
                s = float(min(near_score[i], near_score[j]))
            score[i] = max(score[i], min(max(s, 0.0), 1.0))
    table: dict[str, dict[str, int]] = {}
    for i in range(n):
        for other in sorted({split[j] for j in partners[i]}):
            row = table.setdefault(split[i], {})
            row[other] = row.get(other, 0) + 1
    cross.sort()
    return Leaks([sorted(p) for p in partners], score,
                 np.array(cross, np.int64).reshape(-1, 2),
                 np.array([sim_of[p] for p in cross], np.float32), table)


def leak(ctx):
    """The leak check over a scan's duplicate groups (see the module docstring); its groups
    are the duplicate groups spanning several splits, its info the split × split table."""
    from ..vocabulary import CheckResult
    from .duplicates import group_rows

    dup, splits, ids = ctx.duplicates, ctx.catalog.splits, ctx.catalog.ids
    found = find_leaks(splits=splits, near_score=dup.near_score,
                       duplicate_group=dup.duplicate_group, pairs=dup.pairs, pair_sims=dup.pair_scores)
    spans = lambda members, g: len({splits[m] for m in members if isinstance(splits[m], str)}) > 1  # noqa: E731
    return CheckResult(
        flag=np.array([len(p) > 0 for p in found.partners], bool),
        score=np.where(ctx.valid, found.score, np.nan),
        columns={"leak_partners": [";".join(ids[j] for j in p) if p else None
                                   for p in found.partners]},
        groups=group_rows(ctx, dup.duplicate_group, spans),
        pairs=found.pairs, pair_sims=found.pair_sims, info={"leak_table": found.table})

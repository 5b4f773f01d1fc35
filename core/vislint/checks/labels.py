"""Label conflicts: labels that disagree with what the images show.

(a) Duplicate groups holding several labels: every labelled member is flagged,
    score 1, ``conflict_labels`` names the labels of the group.
(b) Neighbour vote: each labelled image's k nearest neighbours vote for their
    labels, weighted by similarity. ``label_agreement`` is the share of the vote
    for the image's own label, ``suggested_label`` the winner. Flagged when
    another label wins, the agreement is at most ``label_agreement`` and the
    vote's total weight is at least ``label_min_support``. Score = 1 − agreement.
    The vote flags only with semantic features (a model's embeddings or
    precomputed vectors): the built-in descriptor finds copies, not classes —
    on the Intel sample its best vote precision for planted wrong labels was
    0.19 — so with it the vote fills ``suggested_label``/``label_agreement``
    for review but raises no flag.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _native


@dataclass
class LabelConflicts:
    """Per-image arrays: score (NaN unlabelled), flag, suggested label (None),
    agreement (NaN), conflict_labels ("a|b" for group conflicts, None), and the
    group numbers (duplicate groups) that hold several labels."""

    score: np.ndarray
    flag: np.ndarray
    suggested: list
    agreement: np.ndarray
    conflict_labels: list
    conflict_groups: list[int]


def find_label_conflicts(*, labels, valid, graph, duplicate_group, representative,
                         max_agreement: float, min_support: float, flag_votes: bool) -> LabelConflicts:
    n = len(labels)
    names = sorted({l for l in labels if l is not None})
    code = {name: c for c, name in enumerate(names)}
    lab = np.array([code[l] if l is not None and valid[i] else -1 for i, l in enumerate(labels)],
                   np.int32)
    sims = np.where(valid[:, None], graph.sims, -np.inf).astype(np.float32)
    nbr = np.where(np.isfinite(sims), graph.neighbors, -1)
    sugg, agree, support = _native.label_tally(nbr, sims, lab, max(len(names), 1), 0.0)
    labelled = lab >= 0
    vote = labelled & (sugg >= 0) & (sugg != lab) & (agree <= max_agreement) & (support >= min_support)
    score = np.where(labelled, 1.0 - np.nan_to_num(agree, nan=1.0), np.nan)
    flag = vote & flag_votes
    suggested = [names[s] if vote[i] else None for i, s in enumerate(sugg)]
    conflict_labels: list = [None] * n
    conflict_groups = []
    order = np.argsort(duplicate_group, kind="stable")
    order = order[duplicate_group[order] >= 0]
    for members in np.split(order, np.flatnonzero(np.diff(duplicate_group[order])) + 1):
        if len(members) < 2:
            continue
        group_labels = sorted({int(lab[m]) for m in members if lab[m] >= 0})
        if len(group_labels) < 2:
            continue
        conflict_groups.append(int(duplicate_group[members[0]]))
        text = "|".join(names[c] for c in group_labels)
        counts = np.bincount(lab[members][lab[members] >= 0], minlength=len(names))
        top = np.flatnonzero(counts == counts.max())
        for m in members:
            if lab[m] < 0:
                continue
            flag[m] = True
            score[m] = 1.0
            conflict_labels[m] = text
            # A clear majority suggests itself; a tie suggests nothing.
            suggested[m] = names[top[0]] if len(top) == 1 and top[0] != lab[m] else None
    return LabelConflicts(score, flag, suggested, np.where(labelled, agree, np.nan),
                          conflict_labels, conflict_groups)


def label_conflict(ctx):
    """The label check: duplicate groups holding several labels, and the neighbour vote in
    the semantic space (which flags only when there is one: see the module docstring)."""
    from ..vocabulary import CheckResult
    from .duplicates import group_rows

    dup, t = ctx.duplicates, ctx.thresholds
    found = find_label_conflicts(labels=ctx.catalog.labels, valid=ctx.valid,
                                 graph=ctx.space("semantic").graph,
                                 duplicate_group=dup.duplicate_group,
                                 representative=dup.representative, max_agreement=t.label_agreement,
                                 min_support=t.label_min_support, flag_votes=ctx.semantic)
    conflicting = set(found.conflict_groups)
    return CheckResult(
        flag=found.flag, score=found.score,
        columns={"suggested_label": found.suggested, "label_agreement": found.agreement,
                 "conflict_labels": found.conflict_labels},
        groups=group_rows(ctx, dup.duplicate_group, lambda members, g: g in conflicting))

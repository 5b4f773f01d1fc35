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
(c) A model's predicted class probabilities (``predictions=``, :mod:`vislint.predictions`):
    each labelled image's label score is (1 − m) / 2, m the normalised margin (the given
    label's probability minus that of the likeliest other class), so above 0.5 exactly when
    the model finds another class likelier. Flagged at ≥ ``label_prediction`` (default 0.5)
    and where confident learning (:func:`confident_learning`) finds an issue;
    ``label_conflict_score`` is the larger of the label score and the vote's (semantic space
    only; 1 in a copy group with several labels), ``suggested_label`` the predicted class, and ``predicted_label`` / ``predicted_probability`` are written for every image.
    MNIST test set with a real model's out-of-sample predictions (docs/defaults.md): 87
    flagged, all 15 errors people confirmed among them; confident learning alone (as
    cleanlab's default) flags 15, 7 of them confirmed.

An image is flagged when any source flags it; ``label_sources`` names those that did
("copies", "neighbours", "prediction").
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


def prediction_scores(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    """float[n] in [0, 1]: (1 − m) / 2, m = the given label's probability minus the largest
    probability of another class (the normalised margin): > 0.5 exactly when another class is
    likelier than the given label."""
    n = len(given)
    own = probs[np.arange(n), given]
    others = probs.copy()
    others[np.arange(n), given] = -np.inf
    return (1.0 - (own - others.max(axis=1))) / 2.0


def confident_learning(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    """bool[n]: the images whose given label the predicted probabilities contradict, by
    confident learning (Northcutt, Jiang & Chuang, JAIR 2021), pruning by noise rate — the
    method cleanlab's ``find_label_issues`` applies by default, written here in NumPy (two dozen
    lines; cleanlab would bring scikit-learn with it). ``probs``: float[n, C] out-of-sample
    class probabilities; ``given``: int[n] class indices.

    1. Each class's threshold: the mean probability of that class over the images labelled
       with it.
    2. The confident joint: every image with some class at or above its threshold counts
       under (its given class, the most probable such class).
    3. Calibrated so that each row sums to its class's count (and the whole to n), rounded.
    4. For every off-diagonal cell (i, j): its count of images labelled i, those with the
       largest margin p_j − p_i, are issues — unless the model's top class is the given one.
    """
    n, c = probs.shape
    counts = np.bincount(given, minlength=c)
    sums = np.bincount(given, weights=probs[np.arange(n), given], minlength=c)
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    above = probs >= thresholds - 1e-6  # (the tolerance of float sums, as cleanlab)
    confident = above.any(axis=1)
    top_above = np.where(above, probs, -1.0).argmax(axis=1)
    joint = np.zeros((c, c))
    np.add.at(joint, (given[confident], top_above[confident]), 1)
    rows = joint.sum(axis=1, keepdims=True)
    calibrated = np.divide(joint * counts[:, None], rows, out=np.zeros_like(joint), where=rows > 0)
    if calibrated.sum() > 0:
        calibrated *= n / calibrated.sum()
    issues = np.zeros(n, bool)
    for i in range(c):
        labelled = np.flatnonzero(given == i)
        for j in range(c):
            k = int(round(calibrated[i, j]))
            if i == j or k <= 0:
                continue
            margin = probs[labelled, j] - probs[labelled, i]
            issues[labelled[np.argsort(-margin, kind="stable")[:k]]] = True
    return issues & (probs.argmax(axis=1) != given)


def label_conflict(ctx):
    """The label check: duplicate groups holding several labels, and the neighbour vote in
    the semantic space (which flags only when there is one: see the module docstring)."""
    from ..vocabulary import CheckResult
    from .duplicates import group_rows

    dup, t = ctx.duplicates, ctx.thresholds
    labels = ctx.catalog.labels
    found = find_label_conflicts(labels=labels, valid=ctx.valid,
                                 graph=ctx.space("semantic").graph,
                                 duplicate_group=dup.duplicate_group,
                                 representative=dup.representative, max_agreement=t.label_agreement,
                                 min_support=t.label_min_support, flag_votes=ctx.semantic)
    n = len(labels)
    in_conflict_group = np.array([c is not None for c in found.conflict_labels], bool)
    sources = [[] for _ in range(n)]
    for r in np.flatnonzero(found.flag).tolist():
        sources[r].append("copies" if in_conflict_group[r] else "neighbours")
    flag, score, suggested = found.flag.copy(), found.score.copy(), list(found.suggested)
    predicted, probability = [None] * n, np.full(n, np.nan)
    if ctx.predictions is not None:
        pred = ctx.predictions
        code = {name: k for k, name in enumerate(pred.classes)}
        rows = np.flatnonzero(ctx.valid & np.array([x is not None for x in labels], bool))
        given = np.array([code[labels[r]] for r in rows], np.int64)
        label_score = prediction_scores(pred.probs[rows], given)
        issues = rows[confident_learning(pred.probs[rows], given)
                      | (label_score >= t.label_prediction)]
        top, top_p = pred.predicted()
        predicted = [top[r] if ctx.valid[r] else None for r in range(n)]
        probability = np.where(ctx.valid, top_p, np.nan)
        # without a semantic space the vote's score is the look-alike vote's, no evidence of a
        # class: the prediction's replaces it (a copy group's conflict stays 1)
        vote = score[rows] if ctx.semantic else np.where(in_conflict_group[rows], 1.0, 0.0)
        score[rows] = np.fmax(vote, label_score)
        for r in issues.tolist():
            flag[r] = True
            sources[r].append("prediction")
            suggested[r] = top[r]
    conflicting = set(found.conflict_groups)
    return CheckResult(
        flag=flag, score=score,
        columns={"suggested_label": suggested, "label_agreement": found.agreement,
                 "conflict_labels": found.conflict_labels, "predicted_label": predicted,
                 "predicted_probability": probability,
                 "label_sources": [",".join(x) or None for x in sources]},
        groups=group_rows(ctx, dup.duplicate_group, lambda members, g: g in conflicting))

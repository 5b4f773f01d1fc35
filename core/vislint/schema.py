"""The result schema: the three tables of a scan, assembled from the check results.

``images`` (one row per image): ``id, path, relpath, label, split, width, height,
file_size, format, content_hash``; then, for every check in vocabulary order,
``<check>_score`` (scored checks), ``is_<check>`` and its evidence columns; then the review
columns ``label_original`` (the label before a reviewer's correction) and ``reviewed``
(the decisions that applied, ``check:verdict by reviewer``).

``groups`` (one row per group member, check by check, group by group, representative first):
``check, group, id, path, label, split, keep, similarity`` (to the representative).

``pairs`` (one row per pair, check by check, the highest score first): ``check, id_a, id_b,
path_a, path_b, split_a, split_b, similarity`` (the pair's score for its check: a copy
probability, a same-scene score, a similarity), then the evidence columns the checks' records
name (``pair_evidence``; NaN / False where a check has none).

A reviewer's ``keep`` / ``label_ok`` clears the flag of a check whose record says so
(:attr:`vislint.vocabulary.Check.clears`); the score stays, for the record.
"""
from __future__ import annotations

import numpy as np

from . import tables
from .vocabulary import CheckResult, checks

BASE_COLUMNS = ("id", "path", "relpath", "label", "split", "width", "height", "file_size",
                "format", "content_hash")
REVIEW_COLUMNS = ("label_original", "reviewed")


def assemble(ctx, results: dict[str, CheckResult], original_labels: list):
    """(images, groups, pairs) Arrow tables and the info of the checks (their ``info`` merged,
    plus ``confused_labels``) from a scan's :class:`~vislint.checks.context.Context` and the
    result of each check."""
    cat, meta, reviewed = ctx.catalog, ctx.meta, ctx.reviewed
    n = len(cat)
    ids = np.array(cat.ids, dtype=object)
    images = {"id": ids, "path": cat.paths, "relpath": cat.relpaths, "label": cat.labels,
              "split": cat.splits, "width": meta["width"], "height": meta["height"],
              "file_size": meta["file_size"], "format": meta["format"],
              "content_hash": meta["content_hash"]}
    info = {}
    for check in checks():
        r = results[check.name]
        if check.scored:
            images[check.score] = r.score
        flag = np.asarray(r.flag, bool)
        cleared = reviewed.cleared.get(check.name) if check.clears else None
        if cleared:
            flag = flag.copy()
            flag[sorted(cleared)] = False
        images[check.flag] = flag
        for column, _ in check.evidence:
            images[column] = r.columns[column]
        info.update(r.info)
    images["label_original"] = [o if i in reviewed.labels else None
                                for i, o in enumerate(original_labels)]
    images["reviewed"] = ["; ".join(reviewed.notes[i]) if i in reviewed.notes else None
                          for i in range(n)]
    info["confused_labels"] = confused_labels(images)
    return (tables.table(images), _group_table(images, results), _pair_table(images, results),
            info)


def _group_table(images: dict, results: dict[str, CheckResult]):
    cols = {"check": [], "group": [], "row": [], "keep": [], "similarity": []}
    for check in checks():
        for g, rows, sims in results[check.name].groups:
            cols["check"] += [check.name] * len(rows)
            cols["group"] += [g] * len(rows)
            cols["row"] += rows
            cols["keep"] += [True] + [False] * (len(rows) - 1)
            cols["similarity"] += sims
    at = np.array(cols["row"], np.int64)
    return tables.table({
        "check": cols["check"], "group": np.array(cols["group"], np.int64),
        **{c: _take(images[c], at) for c in ("id", "path", "label", "split")},
        "keep": np.array(cols["keep"], bool), "similarity": np.array(cols["similarity"], np.float64)})


def _pair_table(images: dict, results: dict[str, CheckResult]):
    cols = {c: [] for c in ("check", "id_a", "id_b", "path_a", "path_b", "split_a", "split_b")}
    sim_parts = []
    evidence = {}  # column -> kind, over every check that lists pairs
    for check in checks():
        if check.pairs:
            evidence.update(dict(check.pair_evidence))
    parts = {c: [] for c in evidence}
    for check in checks():
        r = results[check.name]
        if not check.pairs or r.pairs is None or not len(r.pairs):
            continue
        pairs, sims = r.pairs, r.pair_sims
        id_a, id_b = _take(images["id"], pairs[:, 0]), _take(images["id"], pairs[:, 1])
        order = sorted(range(len(pairs)), key=lambda i: (-float(sims[i]), id_a[i], id_b[i]))
        a, b = pairs[order, 0], pairs[order, 1]
        cols["check"] += [check.name] * len(order)
        for side, rows in (("a", a), ("b", b)):
            for c in ("id", "path", "split"):
                cols[f"{c}_{side}"] += _take(images[c], rows)
        sim_parts.append(np.asarray(sims, np.float32)[order])
        for c, kind in evidence.items():
            values = r.pair_columns.get(c)
            if values is None:
                values = np.zeros(len(pairs), bool) if kind == "bool" else np.full(len(pairs), np.nan)
            parts[c].append(np.asarray(values)[order])
    cols["similarity"] = np.concatenate(sim_parts) if sim_parts else np.zeros(0, np.float32)
    for c, kind in evidence.items():
        cols[c] = (np.concatenate(parts[c]) if parts[c]
                   else np.zeros(0, bool if kind == "bool" else np.float64))
    return tables.table(cols)


def _take(values, rows) -> list:
    """values[rows] for a list or object array of strings, as a list."""
    return [values[i] for i in rows.tolist()]


def confused_labels(images: dict, top: int = 10) -> list[dict]:
    """Most frequent (label, suggested or conflicting label) pairs among label conflicts."""
    counts: dict[tuple[str, str], int] = {}
    for i in np.flatnonzero(images["is_label_conflict"]).tolist():
        label, sugg, both = images["label"][i], images["suggested_label"][i], images["conflict_labels"][i]
        others = [sugg] if isinstance(sugg, str) else \
            [o for o in (both if isinstance(both, str) else "").split("|") if o and o != label]
        for o in others:
            key = tuple(sorted((label, o)))
            counts[key] = counts.get(key, 0) + 1
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"labels": list(k), "images": v} for k, v in best]

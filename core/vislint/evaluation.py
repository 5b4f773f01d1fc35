"""Precision, recall and F1 of a scan against ground truth — for any user's data.

Ground truth is a DataFrame or a CSV file with a path column (``path`` or
``file``; relative paths are matched against the scan's relative paths,
absolute ones against absolute paths) and either or both of:

- ``group``: duplicate groups — files sharing a group value are duplicates of
  each other (a singleton's group is unique). Scored as pairs (the scan's
  duplicate pairs, exact and near) and as groups (every pair of images that
  share a scan ``duplicate_group``). An optional boolean ``corrupt`` column
  marks files expected to be invalid: they are left out of the pairs and scored
  under ``invalid``.
- ``check``: the name of a check a file should be flagged by (``dark``,
  ``outlier``, ``label_conflict``, ``invalid``…); one row per (file, check).
  Scored per check on the flags ``is_<check>`` over all images of the scan.

Example::

    vislint.evaluate(res, "ground_truth_groups.csv")
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd

from .results import ScanResults
from .vocabulary import names


def evaluate(results: ScanResults, ground_truth) -> pd.DataFrame:
    """One row per scored item: check, unit (pairs/groups/images), tp, fp, fn,
    precision, recall, f1. See the module docstring for the ground-truth format."""
    gt = pd.read_csv(ground_truth) if isinstance(ground_truth, (str, Path)) else ground_truth.copy()
    path_col = "path" if "path" in gt.columns else "file" if "file" in gt.columns else None
    if path_col is None:
        raise ValueError(f"ground truth needs a 'path' or 'file' column; it has {list(gt.columns)}")
    if "group" not in gt.columns and "check" not in gt.columns:
        raise ValueError("ground truth needs a 'group' column (duplicate groups) and/or a 'check' "
                         "column (the check each file should be flagged by)")
    images = results.images
    row_of = {p: i for i, p in enumerate(images["relpath"])}
    row_of.update({p: i for i, p in enumerate(images["path"])})
    rows = gt[path_col].astype(str).map(lambda p: row_of.get(p, row_of.get(str(Path(p)))))
    missing = gt.loc[rows.isna(), path_col].tolist()
    if missing:
        raise ValueError(f"{len(missing)} ground-truth file(s) are not in the scan, e.g. "
                         f"{missing[0]!r}; paths must be relative to the scanned folder or absolute")
    gt["_row"] = rows.astype(int)
    out = []
    if "group" in gt.columns:
        out += _duplicates(results, gt)
    if "check" in gt.columns:
        for check, sub in gt.dropna(subset=["check"]).groupby("check"):
            if check not in names():
                raise ValueError(f"unknown check {check!r} in ground truth; known: {', '.join(names())}")
            predicted = set(images.index[images[f"is_{check}"].to_numpy(bool)])
            out.append(_score(check, "images", predicted, set(sub["_row"])))
    return pd.DataFrame(out)


def _duplicates(results: ScanResults, gt: pd.DataFrame) -> list[dict]:
    images = results.images
    corrupt = gt["corrupt"].astype(str).str.lower().eq("true") if "corrupt" in gt.columns \
        else pd.Series(False, index=gt.index)
    out = []
    if corrupt.any():
        out.append(_score("invalid", "images", set(images.index[images["is_invalid"]]),
                          set(gt.loc[corrupt, "_row"])))
    clean = gt[~corrupt]
    scope = set(clean["_row"])
    truth = set()
    for _, members in clean.groupby("group")["_row"]:
        truth |= {tuple(sorted(p)) for p in combinations(members.tolist(), 2)}
    id_row = {i: r for r, i in enumerate(images["id"])}
    pairs = results.pair_table
    pairs = pairs[pairs["check"].isin(["exact_duplicate", "near_duplicate"])]
    found = {tuple(sorted((id_row[a], id_row[b]))) for a, b in zip(pairs["id_a"], pairs["id_b"])}
    found = {p for p in found if p[0] in scope and p[1] in scope}
    out.append(_score("duplicate", "pairs", found, truth))
    grouped = set()
    g = images["duplicate_group"].to_numpy()
    members_of: dict[int, list[int]] = {}
    for r in sorted(scope):
        if g[r] >= 0:
            members_of.setdefault(int(g[r]), []).append(r)
    for members in members_of.values():
        grouped |= set(combinations(members, 2))
    out.append(_score("duplicate", "groups", grouped, truth))
    return out


def _score(check: str, unit: str, predicted: set, truth: set) -> dict:
    tp, fp, fn = len(predicted & truth), len(predicted - truth), len(truth - predicted)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"check": check, "unit": unit, "tp": tp, "fp": fp, "fn": fn,
            "precision": precision, "recall": recall, "f1": f1}

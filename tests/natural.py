"""The truth about natural pairs of the Intel sample, and how a scan's pairs measure against it.

Every pair a scan calls is a prediction: two images in one group of a check assert that they
are copies (``exact_duplicate``, ``near_duplicate``) or shots of one scene (``same_scene``).
The truth comes from ``intel-scenes-pairs.csv`` (pairs labelled by eye: ``copy``,
``same_scene``, ``different``) and ``intel-scenes-exact-duplicates.csv`` (``exact``). A called
pair that no label covers is ``unlabelled``: somebody must look at it before it counts either
way (``unlabelled`` lists them).

Used by ``benchmarks/quality.py`` (the tables behind the defaults) and the quality tests.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

KINDS = {"copy": ("exact_duplicate", "near_duplicate"), "same_scene": ("same_scene",)}
"""What a group of each check asserts about its members."""


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def intel_truth(shared: Path) -> dict[tuple[str, str], str]:
    """{(relpath, relpath): "exact" | "copy" | "same_scene" | "different"} of the Intel sample."""
    truth = {}
    for r in pd.read_csv(shared / "intel-scenes-pairs.csv").itertuples():
        truth[pair_key(r.a, r.b)] = r.label
    for _, group in pd.read_csv(shared / "intel-scenes-exact-duplicates.csv").groupby("md5"):
        for a, b in itertools.combinations(sorted(group.file), 2):
            truth[pair_key(a, b)] = "exact"
    return truth


def called_pairs(results, kind: str, name=None) -> set[tuple[str, str]]:
    """Pairs of images that share a group of a check of ``kind`` (see :data:`KINDS`), as keys
    of ``name(relpath)`` (default: the relpath itself)."""
    groups = results.group_table
    rel = dict(zip(results.images["id"], results.images["relpath"]))
    name = name or (lambda r: r)
    out = set()
    for _, g in groups[groups["check"].isin(KINDS[kind])].groupby(["check", "group"]):
        members = sorted({name(rel[i]) for i in g["id"]} - {None})
        out.update(pair_key(a, b) for a, b in itertools.combinations(members, 2))
    return out


def natural_metrics(results, truth: dict, name=None) -> dict:
    """Per kind: the called pairs by their true label, precision over the labelled ones, and
    recall of the true pairs of that kind among the images scanned.

    Returns {kind: {"by_label": {label: pairs}, "precision", "recall", "true", "found",
    "unlabelled": [pairs]}}; a ``copy`` is right when labelled exact or copy, a
    ``same_scene`` when labelled same_scene (a copy in a same-scene group is counted apart,
    as ``copy``)."""
    scanned = {name(r) if name else r for r in results.images["relpath"]} - {None}
    out = {}
    for kind, right in (("copy", {"exact", "copy"}), ("same_scene", {"same_scene"})):
        called = called_pairs(results, kind, name)
        labels = [truth.get(p, "unlabelled") for p in called]
        by_label = pd.Series(labels, dtype=object).value_counts().to_dict()
        labelled = sum(v for k, v in by_label.items() if k != "unlabelled")
        good = sum(by_label.get(k, 0) for k in right)
        true = {p for p, lab in truth.items() if lab in right and set(p) <= scanned}
        out[kind] = {"by_label": by_label, "precision": good / labelled if labelled else 1.0,
                     "recall": len(true & called) / len(true) if true else 1.0,
                     "true": len(true), "found": len(true & called),
                     "unlabelled": sorted(p for p, lab in zip(called, labels) if lab == "unlabelled")}
    return out

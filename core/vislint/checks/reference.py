"""Copies of reference images: set A checked against set B.

A scan given a reference (``scan(reference=W)``, ``vislint scan A --reference W``: ``W`` the
work dir of a saved scan of set B) flags each image of A that is an exact copy or a verified
copy of an image of B, with the best match's path, kind and evidence. B's own findings are not
looked for. The comparison is :func:`vislint.lookup.compare` — what ``vislint query A --index
W`` reports as "exact" and "copy" — made from the scan's own descriptions of A's images (nothing
is decoded twice). Without a reference the check flags nothing.
"""
from __future__ import annotations

import numpy as np

FLAGGED = ("exact", "copy")
"""Match kinds that flag an image (another shot of the same scene is not a copy)."""


def in_reference(ctx):
    """The check: per image, its best exact or copy match in the reference (score: 1 for an
    exact copy, else the copy probability; 0 without a match; NaN for invalid images)."""
    from ..vocabulary import CheckResult

    n = len(ctx)
    flag = np.zeros(n, bool)
    score = np.where(ctx.valid, 0.0, np.nan) if ctx.reference is not None else np.full(n, np.nan)
    match, kind, note = [None] * n, [None] * n, [None] * n
    if ctx.reference is not None:
        base, found, rows = ctx.reference
        best: dict[int, int] = {}
        for p in range(len(found.kind)):
            if found.kind[p] not in FLAGGED:
                continue
            r = int(rows[found.query_rows[p]])
            if r not in best or (found.kind[p] == "exact", found.score[p]) > (
                    found.kind[best[r]] == "exact", found.score[best[r]]):
                best[r] = p
        paths = base.column("path", [base.rows[found.index_rows[p]] for p in best.values()])
        for (r, p), path in zip(best.items(), paths):
            flag[r], score[r], match[r] = True, float(found.score[p]), path
            kind[r], note[r] = found.kind[p], found.evidence[p]
    return CheckResult(flag=flag, score=score,
                       columns={"reference_match": match, "reference_kind": kind,
                                "reference_evidence": note})

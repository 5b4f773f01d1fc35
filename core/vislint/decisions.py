"""Reviewer decisions that a scan honours.

``vislint pull label-studio`` writes them into the work dir as :data:`DECISIONS_FILE`; people
may write or edit the file by hand too. A scan with ``out=DIR`` reads ``DIR/decisions.csv``
when it exists (or pass ``decisions=`` a path or DataFrame). One row per decision:

========== ==================================================================================
column     meaning
========== ==================================================================================
check      the finding reviewed: near_duplicate, exact_duplicate, leak, label_conflict,
           outlier, blurry, dark, bright, low_information, odd_size, grayscale
verdict    see :data:`VERDICTS`
image      the image decided on: its vislint id, or its path relative to the scanned folder
partner    for pair verdicts, the other image (id or relative path); else empty
new_label  for ``relabel``: the label the image should have
reviewer   who decided (e-mail or name); time: when (ISO 8601); source: e.g. a task URL
========== ==================================================================================

What a scan does with them:

- ``not_duplicate`` / ``not_leak`` (image, partner): the pair is no near duplicate any more —
  it leaves the similarity graph before groups are formed, so it is neither a duplicate nor a
  leak, and groups are rebuilt without it. Files with identical bytes stay exact duplicates
  (the bytes say otherwise); the decision is still recorded on them.
- ``keep`` (outlier and quality checks) and ``label_ok`` (label_conflict): the image's flag
  for that check is cleared; its score stays, for the record.
- ``relabel``: the image's label becomes ``new_label`` before the checks run (so label
  conflicts are recomputed with it); the old label is kept in ``label_original``.
- ``remove`` / ``remove_from_train`` / ``remove_from_eval``: recorded only (acting on the data
  is the user's move).

Every decision that applies to an image is listed in its ``reviewed`` column
(``check:verdict by reviewer``, ";"-joined). When several rows decide the same thing, the
latest ``time`` wins. Rows naming images that are not in the scan are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DECISIONS_FILE = "decisions.csv"
"""File name of the decisions in a work dir."""

COLUMNS = ("check", "verdict", "image", "partner", "new_label", "reviewer", "time", "source")

PAIR_VERDICTS = {"not_duplicate", "not_leak"}
CLEAR_VERDICTS = {"keep", "label_ok"}
VERDICTS = PAIR_VERDICTS | CLEAR_VERDICTS | {"relabel", "remove", "remove_from_train",
                                             "remove_from_eval"}
"""Every verdict a decisions file may hold."""


@dataclass
class Decisions:
    """Decisions resolved against one catalog (row indices).

    pairs: {(i, j), i < j} taken out of the similarity graph; cleared: {check: rows whose
    flag is cleared}; labels: {row: new label}; notes: {row: ["check:verdict by reviewer"]}.
    """

    pairs: set = field(default_factory=set)
    cleared: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.pairs or self.cleared or self.labels or self.notes)


def read_decisions(source):
    """The decisions table (a DataFrame with :data:`COLUMNS`) from a CSV path or DataFrame.

    Raises ValueError naming the first bad row for an unknown verdict, a missing image, a pair
    verdict without a partner or a relabel without a new label.
    """
    import pandas as pd

    frame = source.copy() if isinstance(source, pd.DataFrame) else \
        pd.read_csv(source, dtype=str, keep_default_na=False)
    missing = [c for c in ("check", "verdict", "image") if c not in frame.columns]
    if missing:
        raise ValueError(f"decisions need the columns check, verdict, image; missing "
                         f"{', '.join(missing)}")
    for c in COLUMNS:
        if c not in frame.columns:
            frame[c] = ""
    frame = frame[list(COLUMNS)].fillna("").astype(str)
    for n, row in enumerate(frame.itertuples(index=False), start=2):
        where = f"decisions row {n} ({row.check}, {row.verdict}, {row.image})"
        if row.verdict not in VERDICTS:
            raise ValueError(f"{where}: unknown verdict; use one of {', '.join(sorted(VERDICTS))}")
        if not row.image:
            raise ValueError(f"{where}: no image")
        if row.verdict in PAIR_VERDICTS and not row.partner:
            raise ValueError(f"{where}: a {row.verdict} decision needs a partner image")
        if row.verdict == "relabel" and not row.new_label:
            raise ValueError(f"{where}: a relabel decision needs new_label")
    return frame


def resolve(frame, ids: list[str], relpaths: list[str]) -> Decisions:
    """Map a decisions table onto catalog rows (see the module docstring)."""
    row_of = {r: i for i, r in enumerate(relpaths)}
    row_of.update({x: i for i, x in enumerate(ids)})
    latest = {}
    for rec in frame.sort_values("time", kind="stable").itertuples(index=False):
        i = row_of.get(rec.image)
        j = row_of.get(rec.partner) if rec.partner else None
        if i is None or (rec.partner and j is None):
            continue
        pair = tuple(sorted((i, j))) if j is not None else None
        latest[(rec.check, i, pair)] = rec
    out = Decisions()
    for (check, i, pair), rec in latest.items():
        who = f" by {rec.reviewer}" if rec.reviewer else ""
        out.notes.setdefault(i, []).append(f"{check}:{rec.verdict}{who}")
        if rec.verdict in PAIR_VERDICTS:
            out.pairs.add(pair)
        elif rec.verdict in CLEAR_VERDICTS:
            out.cleared.setdefault(check, set()).add(i)
        elif rec.verdict == "relabel":
            out.labels[i] = rec.new_label
    return out


def load_for_scan(decisions, out, ids: list[str], relpaths: list[str]) -> Decisions:
    """The decisions a scan honours: ``decisions`` ("auto" = ``out/decisions.csv`` if it
    exists, None = none, or a path / DataFrame), resolved against the catalog."""
    if decisions is None:
        return Decisions()
    if isinstance(decisions, str) and decisions == "auto":
        path = Path(out) / DECISIONS_FILE if out is not None else None
        if path is None or not path.is_file():
            return Decisions()
        decisions = path
    return resolve(read_decisions(decisions), ids, relpaths)

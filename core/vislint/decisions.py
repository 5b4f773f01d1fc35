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
  for that check is cleared; its score stays, for the record. ``keep`` on a duplicate or a
  leak ("keep them all") is recorded only: the images are still copies, so their flags and
  group stay (a reviewer who says they are not copies answers ``not_duplicate``).
- ``relabel``: the image's label becomes ``new_label`` before the checks run (so label
  conflicts are recomputed with it); the old label is kept in ``label_original``.
- ``remove`` / ``remove_from_train`` / ``remove_from_eval``: recorded only (acting on the data
  is the user's move).

Every decision that applies to an image is listed in its ``reviewed`` column
(``check:verdict by reviewer``, ";"-joined). When several rows decide the same thing, the
latest ``time`` wins. Rows naming images that are not in the scan are ignored.

The file is UTF-8 CSV with a header row. Reviewers open it in spreadsheets, which run a cell
starting with ``=``, ``+``, ``-`` or ``@`` as a formula: :func:`write_decisions` writes such a
cell (a file named ``=cmd|' calc'!A0.jpg``) with a leading ``'``, as spreadsheets themselves
do, and :func:`read_decisions` takes that quote off again.
"""
from __future__ import annotations

import csv
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


def check_verdicts() -> dict[str, set[str]]:
    """{check: the verdicts that make sense for it}, from the checks' records
    (:attr:`vislint.vocabulary.Check.verdicts`)."""
    from .vocabulary import checks

    return {c.name: set(c.verdicts) for c in checks()}


def cleared_checks() -> set[str]:
    """Checks whose flag a ``keep`` / ``label_ok`` clears (image findings; a duplicate or a
    leak stays one when a reviewer keeps it): :attr:`vislint.vocabulary.Check.clears`."""
    from .vocabulary import checks

    return {c.name for c in checks() if c.clears}


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet cell a formula (or hide one)."""


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

    Raises ValueError naming the file and the first bad row for a file that is not UTF-8 CSV,
    a row with more or fewer fields than the header, an unknown check or verdict, a verdict
    that does not fit its check (:func:`check_verdicts`), a missing image, a pair verdict
    without a partner or a relabel without a new label.
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame, what = source.copy(), "decisions"
    else:
        frame, what = _read_csv(Path(source)), str(source)
    missing = [c for c in ("check", "verdict", "image") if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: decisions need the columns check, verdict, image; missing "
                         f"{', '.join(missing)}")
    for c in COLUMNS:
        if c not in frame.columns:
            frame[c] = ""
    frame = frame[list(COLUMNS)].fillna("").astype(str)
    allowed = check_verdicts()
    for c in COLUMNS:
        frame[c] = [_unquote(v) for v in frame[c]]
    for n, row in enumerate(frame.itertuples(index=False), start=2):
        where = f"{what}, row {n} ({row.check}, {row.verdict}, {row.image})"
        if row.check not in allowed:
            raise ValueError(f"{where}: unknown check; use one of {', '.join(allowed)}")
        if row.verdict not in VERDICTS:
            raise ValueError(f"{where}: unknown verdict; use one of {', '.join(sorted(VERDICTS))}")
        if row.verdict not in allowed[row.check]:
            raise ValueError(f"{where}: {row.verdict} is not a verdict on {row.check}; use one "
                             f"of {', '.join(sorted(allowed[row.check]))}")
        if not row.image:
            raise ValueError(f"{where}: no image")
        if row.verdict in PAIR_VERDICTS and not row.partner:
            raise ValueError(f"{where}: a {row.verdict} decision needs a partner image")
        if row.verdict == "relabel" and not row.new_label:
            raise ValueError(f"{where}: a relabel decision needs new_label")
    return frame


def _read_csv(path: Path):
    """A decisions CSV file as a DataFrame of strings; every row must have the header's
    number of fields (pandas would shift the values of a longer row into other columns)."""
    import pandas as pd

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8 CSV") from None
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable CSV file ({e})") from None
    if not rows:
        raise ValueError(f"{path}: empty; a decisions file starts with the header "
                         f"{','.join(COLUMNS)}")
    header, body = rows[0], [r for r in rows[1:] if r]
    for n, r in enumerate(rows[1:], start=2):
        if r and len(r) != len(header):
            raise ValueError(f"{path}, row {n}: {len(r)} fields where the header has "
                             f"{len(header)}; quote values that hold commas")
    return pd.DataFrame(body, columns=header, dtype=str)


def _unquote(cell: str) -> str:
    """A cell as written by :func:`write_decisions`: the quote guarding a formula removed."""
    return cell[1:] if cell.startswith("'") and _needs_guard(cell[1:]) else cell


def _needs_guard(cell: str) -> bool:
    # a formula, or a cell that would read back as a guarded one ("'=x" is written "''=x")
    return cell.startswith(_FORMULA_START) or (cell.startswith("'") and _needs_guard(cell[1:]))


def _guard(cell: str) -> str:
    return "'" + cell if _needs_guard(cell) else cell


def write_decisions(frame, path) -> Path:
    """Write a decisions table (:func:`read_decisions`' columns, plus any others) to ``path``
    as UTF-8 CSV, atomically, with every cell a spreadsheet would run as a formula quoted
    (see the module docstring). Returns the path."""
    from .workdir import atomic_path

    path = Path(path)
    guarded = frame.fillna("").astype(str)
    for c in guarded.columns:
        guarded[c] = [_guard(v) for v in guarded[c]]
    with atomic_path(path) as tmp:
        guarded.to_csv(tmp, index=False)
    return path


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
    clears = cleared_checks()
    for (check, i, pair), rec in latest.items():
        who = f" by {rec.reviewer}" if rec.reviewer else ""
        out.notes.setdefault(i, []).append(f"{check}:{rec.verdict}{who}")
        if rec.verdict in PAIR_VERDICTS:
            out.pairs.add(pair)
        elif rec.verdict in CLEAR_VERDICTS and check in clears:
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

"""Reviewer decisions that a scan honours.

``vislint pull label-studio`` writes them into the work dir as :data:`DECISIONS_FILE`; people
may write or edit the file by hand too. A scan with ``out=DIR`` reads ``DIR/decisions.csv``
when it exists (or pass ``decisions=`` a path or DataFrame). One row per decision:

============ ================================================================================
column       meaning
============ ================================================================================
check        the finding reviewed: near_duplicate, exact_duplicate, leak, label_conflict,
             outlier, blurry, dark, bright, low_information, odd_size, grayscale
verdict      see :data:`VERDICTS`
image        the image decided on: its vislint id, its path relative to the scanned folder, or
             its absolute path
partner      for pair verdicts, the other image (the same forms); else empty
image_hash   the content hash of the image the reviewer saw (the scan's ``content_hash``:
             blake2b of the file's bytes); may be empty in a hand-written file
partner_hash the same for the partner
new_label    for ``relabel``: the label the image should have
reviewer     who decided (e-mail or name); time: when (ISO 8601); source: e.g. a task URL
============ ================================================================================

Which images a decision names (:func:`resolve`): with a content hash, the file of the scan
that the image column names if its bytes have that hash, else every file of the scan with
those bytes — so a decision follows the image wherever it is scanned from (another folder, a
list of absolute paths, a FiftyOne dataset) and never applies to other content that took its
path. Without a hash, the file the image column names. A decision that names no image of the
scan is not applied, and the scan warns with the list.

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
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

DECISIONS_FILE = "decisions.csv"
"""File name of the decisions in a work dir."""

COLUMNS = ("check", "verdict", "image", "partner", "image_hash", "partner_hash", "new_label",
           "reviewer", "time", "source")

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
    flag is cleared}; labels: {row: new label}; notes: {row: ["check:verdict by reviewer"]};
    rows: decision rows read; unmatched: the rows that name no image of the scan, as
    {"check", "verdict", "image", "partner", "why"}.
    """

    pairs: set = field(default_factory=set)
    cleared: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    rows: int = 0
    unmatched: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.pairs or self.cleared or self.labels or self.notes)

    def summary(self) -> dict:
        """What the scan did with the decisions: rows read, applied, unmatched (with the
        first :data:`UNMATCHED_SHOWN` of them), and images each verdict applied to."""
        verdicts: dict[str, int] = {}
        for notes in self.notes.values():
            for note in notes:
                v = note.split(" by ")[0]
                verdicts[v] = verdicts.get(v, 0) + 1
        return {"rows": self.rows, "applied": self.rows - len(self.unmatched),
                "unmatched": len(self.unmatched),
                "unmatched_rows": self.unmatched[:UNMATCHED_SHOWN],
                "images_by_verdict": dict(sorted(verdicts.items()))}


UNMATCHED_SHOWN = 20
"""Unmatched decisions listed in a warning and in the run's info."""


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


def resolve(frame, ids: list[str], relpaths: list[str], paths: list[str] | None = None,
            hashes: list[str | None] | None = None) -> Decisions:
    """Map a decisions table onto catalog rows (see the module docstring): ``ids``,
    ``relpaths``, ``paths`` (absolute) and content ``hashes`` (None where a file could not
    be read) are aligned with the catalog."""
    by_name = {r: i for i, r in enumerate(relpaths)}
    by_name.update({os.path.normpath(os.path.abspath(p)): i for i, p in enumerate(paths or [])})
    by_name.update({x: i for i, x in enumerate(ids)})
    by_hash: dict[str, list[int]] = {}
    for i, h in enumerate(hashes or []):
        if h:
            by_hash.setdefault(h, []).append(i)

    def rows_of(name: str, content: str) -> tuple[list[int], str | None]:
        """(the rows a decision's image names, or [] and why not)."""
        i = by_name.get(name)
        if i is None and os.path.isabs(name):
            i = by_name.get(os.path.normpath(name))
        if not content:
            return ([i], None) if i is not None else ([], "no such image in this scan")
        if hashes is not None and i is not None and hashes[i] == content:
            return [i], None
        if content in by_hash:
            return by_hash[content], None
        return [], ("its file has other content now" if i is not None
                    else "no image of this scan has its content")

    out = Decisions(rows=len(frame))
    latest = {}
    for rec in frame.sort_values("time", kind="stable").itertuples(index=False):
        rows, why = rows_of(rec.image, rec.image_hash)
        partners, partner_why = rows_of(rec.partner, rec.partner_hash) if rec.partner else ([None], None)
        if why or partner_why:
            out.unmatched.append({"check": rec.check, "verdict": rec.verdict, "image": rec.image,
                                  "partner": rec.partner,
                                  "why": f"image: {why}" if why else f"partner: {partner_why}"})
            continue
        for i in rows:
            for j in partners:
                if j == i:
                    continue
                pair = tuple(sorted((i, j))) if j is not None else None
                latest[(rec.check, i, pair)] = rec
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


def read_for_scan(decisions, out):
    """The decisions table a scan honours (validated before any image is read), or None:
    ``decisions`` "auto" = ``out/decisions.csv`` if it exists, None = none, or a path /
    DataFrame."""
    if decisions is None:
        return None
    if isinstance(decisions, str) and decisions == "auto":
        path = Path(out) / DECISIONS_FILE if out is not None else None
        if path is None or not path.is_file():
            return None
        decisions = path
    return read_decisions(decisions)


def for_scan(frame, ids: list[str], relpaths: list[str], paths: list[str],
             hashes: list[str | None]) -> Decisions:
    """:func:`resolve` a scan's decisions table (None: no decisions), warning with the rows
    that name no image of the scan."""
    if frame is None:
        return Decisions()
    out = resolve(frame, ids, relpaths, paths, hashes)
    if out.unmatched:
        shown = "; ".join(f"{u['check']}:{u['verdict']} {u['image']}"
                          + (f" + {u['partner']}" if u['partner'] else "") + f" ({u['why']})"
                          for u in out.unmatched[:UNMATCHED_SHOWN])
        more = len(out.unmatched) - UNMATCHED_SHOWN
        warnings.warn(f"vislint: {len(out.unmatched)} of {out.rows} reviewer decisions name no "
                      f"image of this scan and were not applied: {shown}"
                      + (f"; and {more} more" if more > 0 else ""), stacklevel=4)
    return out


def decisions_text(summary: dict) -> str:
    """One line on what a scan did with the decisions (:meth:`Decisions.summary`)."""
    text = f"reviewer decisions: {summary['applied']} of {summary['rows']} applied"
    if summary["images_by_verdict"]:
        text += " (" + ", ".join(f"{v} on {k} images" for v, k in summary["images_by_verdict"].items()) + ")"
    if summary["unmatched"]:
        text += f"; {summary['unmatched']} name no image of this scan"
    return text

"""ScanResults: everything a scan found, as tables.

- ``to_dataframe()``: one row per image. Columns: ``id, path, relpath, label,
  split, width, height, file_size, format, content_hash``; ``is_invalid,
  invalid_reason, invalid_message``; for every check ``<check>_score`` (in
  [0, 1], higher = worse, NaN where the check does not apply) and
  ``is_<check>``; and the evidence: ``exact_group, duplicate_group,
  duplicate_of`` (id of the representative), ``nearest_id, nearest_similarity``,
  ``leak_partners`` (ids, ";"-joined), ``suggested_label, label_agreement,
  conflict_labels``, ``outlier_distance, outlier_z, outlier_appearance_z`` and the raw statistics
  ``sharpness, lum_p05, lum_p95, entropy, channel_diff, odd_size_stat``; and the review:
  ``reviewed`` (decisions that applied, see :mod:`vislint.decisions`) and ``label_original``
  (the label before a reviewer's correction).
- ``groups(check)``: one row per group member (``exact_duplicate``,
  ``near_duplicate``, ``leak``, ``label_conflict``): group, id, path, label,
  split, keep (the representative chosen by the keep policy), similarity to
  the representative.
- ``pairs(check)``: one row per image pair (``exact_duplicate``,
  ``near_duplicate``, ``leak``): id_a, id_b, paths, splits, similarity.
- ``summary()``: one row per check: images flagged, groups, threshold.

``save(dir)`` writes Parquet tables into a new ``tables-<id>`` folder of ``dir``, then a
``manifest.json`` (format version, the tables folder, parameters, provenance, leak table)
that commits them in one atomic rename (see :mod:`vislint.workdir`); ``vislint.load(dir)``
reads them back.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where it is used: ~0.2 s of CPU (see tables.py)
    import numpy as np
    import pandas as pd

from .vocabulary import check as check_record, checks, names
from .workdir import FORMAT_VERSION, atomic_path, read_manifest, saved_scan, write_json

TABLES = ("images", "groups", "pairs")


class _Table:
    """A table attribute of :class:`ScanResults`: a pandas DataFrame when read (converted from
    Arrow the first time), anything :class:`ScanResults` accepts when set."""

    def __init__(self, key: str, doc: str):
        self.key, self.__doc__ = key, doc

    def __get__(self, results, owner=None):
        return self if results is None else results._frame(self.key)

    def __set__(self, results, table) -> None:
        results._tables[self.key] = table


class ScanResults:
    """The result of :func:`vislint.scan`. Build one with :func:`vislint.load` or a scan.

    The three tables (images, groups, pairs) are pandas DataFrames or Arrow tables; a scan
    hands over Arrow tables (see :mod:`vislint.tables`), each turned into a DataFrame the first
    time it is asked for, so a command-line scan never imports pandas.
    """

    def __init__(self, images, group_table, pair_table, info: dict | None = None,
                 vectors: dict | None = None, graphs: dict | None = None):
        self._tables = {"images": images, "groups": group_table, "pairs": pair_table}
        self.info = info if info is not None else {}
        """parameters, thresholds, provenance, timings, leak_table, confused_labels."""
        self.vectors = vectors or {}
        """{feature space: float32[N, d]}, the L2-normalised vectors of each space ("copy",
        and "semantic" when embeddings were given; rows of invalid images are zero); kept in
        memory after a scan, not saved (empty after :func:`load`)."""
        self.graphs = graphs or {}
        """{feature space: :class:`vislint.knn.KnnGraph`} the checks read (catalog rows),
        saved with the tables and loaded again."""
        self._tables_dir: str | None = None  # the tables folder written by save_tables
        self.work_dir: Path | None = None
        """The work dir these results were saved in or loaded from (None: not saved)."""

    @classmethod
    def from_checks(cls, ctx, original_labels: list) -> "ScanResults":
        """The results of a scan's checks (a :class:`vislint.checks.context.Context` whose
        ``results`` hold every check's), tables assembled by :mod:`vislint.schema`."""
        from .schema import assemble

        images, groups, pairs, info = assemble(ctx, ctx.results, original_labels)
        return cls(images, groups, pairs, info,
                   vectors={name: s.vectors for name, s in ctx.spaces.items()},
                   graphs={name: s.graph for name, s in ctx.spaces.items()})

    @property
    def features(self):
        """float32[N, d]: the semantic space's vectors when embeddings were given, else the
        copy space's (None after :func:`load`)."""
        return self.vectors.get("semantic", self.vectors.get("copy"))

    images = _Table("images", "One row per image (the table itself; :meth:`to_dataframe` gives a copy).")
    group_table = _Table("groups", "Every member of every group check (its ``check`` column says which).")
    pair_table = _Table("pairs", "Every pair of every pair check (its ``check`` column says which).")

    def columns(self, table: str = "images"):
        """The columns of ``table`` ("images", "groups" or "pairs") as NumPy arrays, read
        without pandas from a scan's Arrow tables (see :class:`vislint.tables.Columns`)."""
        from .tables import Columns

        return Columns(self._tables[table])

    def __len__(self) -> int:
        """The number of images scanned."""
        t = self._tables["images"]
        return t.num_rows if _is_arrow(t) else len(t)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per image (a copy)."""
        return self.images.copy()

    def groups(self, check: str) -> pd.DataFrame:
        """Members of the groups of ``check``, group by group, representative first."""
        _require(check, names(unit="group"), "groups")
        t = self.group_table
        return t[t["check"] == check].drop(columns="check").reset_index(drop=True)

    def pairs(self, check: str) -> pd.DataFrame:
        """Image pairs of ``check``, most similar first."""
        _require(check, names(pairs=True), "pairs")
        t = self.pair_table
        return t[t["check"] == check].drop(columns="check").reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """One row per check: images flagged, groups (where the check groups), threshold."""
        import pandas as pd

        return pd.DataFrame(self.summary_rows())

    def summary_rows(self) -> list[dict]:
        """:meth:`summary` as a list of dicts (check, images, groups or None, threshold),
        computed on the Arrow tables without pandas or pyarrow.compute (~0.03 s to import)."""
        th = self.info.get("thresholds", {})
        img, grp = self._arrow("images"), self._arrow("groups")
        groups_of: dict[str, set] = {}
        for check, group in zip(grp.column("check").to_pylist(), grp.column("group").to_pylist()):
            groups_of.setdefault(check, set()).add(group)
        rows = []
        for c in checks():
            images = _true_count(img.column(c.flag)) if c.flag in img.column_names else 0
            groups = len(groups_of.get(c.name, ())) if c.unit == "group" else None
            rows.append({"check": c.name, "images": images, "groups": groups,
                         "threshold": c.rule_text(th) if th else c.rule})
        return rows

    def invalid_reasons(self) -> dict[str, int]:
        """{reason code: images} over the invalid images, most frequent first (codes:
        :data:`vislint.decode.REASONS`)."""
        img = self._arrow("images")
        if not _true_count(img.column("is_invalid")):
            return {}
        import pyarrow.compute as pc

        reasons = img.column("invalid_reason").filter(img.column("is_invalid"))
        counts = [(r["values"], r["counts"]) for r in pc.value_counts(reasons).to_pylist()
                  if r["values"] is not None]
        return dict(sorted(counts, key=lambda rc: (-rc[1], rc[0])))

    def query(self, images, **options):
        """Which of ``images`` already exist among this scan's images: :func:`vislint.lookup.query`
        against the work dir these results were saved in (``options`` are its keywords)."""
        if self.work_dir is None:
            raise ValueError("these results were not saved: scan with out=DIR (or load a work "
                             "dir with vislint.load) to query them")
        from .lookup import query

        return query(images, self.work_dir, **options)

    def report(self, path: str | Path = "report.html", max_per_section: int | None = 200) -> Path:
        """Write the HTML report (overview, plots, a gallery per check) to ``path``, with its
        thumbnails in ``<stem>_files/`` beside it; ``max_per_section`` findings per gallery,
        the most severe first (None: all). See :mod:`vislint.report`."""
        from .report import write_report

        return write_report(self, path, max_per_section=max_per_section)

    def show(self, max_per_section: int | None = 50):
        """Show the report inline in a Jupyter notebook (thumbnails embedded in the page);
        without IPython, write it to a temporary folder and print where. See :mod:`vislint.report`."""
        from .report import show

        return show(self, max_per_section=max_per_section)

    @property
    def leak_table(self) -> dict:
        """{split: {other split: images in split with a duplicate in other split}}."""
        return self.info.get("leak_table", {})

    def save(self, out: str | Path) -> Path:
        """Write the tables and the manifest into ``out``: the tables into a new folder, then
        the manifest naming it, which replaces the previous scan's in one atomic rename."""
        self.save_tables(out)
        self.save_manifest(out)
        self.work_dir = Path(out)
        return Path(out)

    def save_tables(self, out: str | Path, also=None) -> None:
        """Write the three tables into a new ``tables-<id>`` folder of ``out``; nothing
        reads them until :meth:`save_manifest` commits them. ``also(folder)``: writes more
        files into that folder, committed with the tables (the scan's copy index,
        :mod:`vislint.copy_index`)."""
        import numpy as np
        import pyarrow.parquet as pq

        name = f"tables-{time.time_ns():x}-{os.getpid()}"
        folder = Path(out) / name
        folder.mkdir(parents=True)
        for table in TABLES:
            with atomic_path(folder / f"{table}.parquet") as tmp:
                pq.write_table(self._arrow(table), tmp)
        for space, graph in self.graphs.items():
            with atomic_path(folder / f"graph-{space}.npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, neighbors=graph.neighbors, sims=graph.sims, method=graph.method)
        if also is not None:
            also(folder)
        self._tables_dir = name

    def save_manifest(self, out: str | Path) -> None:
        """(Re)write ``manifest.json``, which commits the tables last written by
        :meth:`save_tables` (or keeps the ones it names), then remove older tables."""
        out = Path(out)
        tables = self._tables_dir or read_manifest(out).get("tables")
        if tables is None:
            raise ValueError(f"no tables saved in {out} yet; call save() rather than "
                             "save_manifest()")
        write_json(out / "manifest.json",
                   {"format_version": FORMAT_VERSION, "tables": tables, **self.info})
        for old in out.glob("tables-*"):
            if old.name != tables and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        for table in TABLES:  # format 1 kept its tables beside the manifest
            (out / f"{table}.parquet").unlink(missing_ok=True)

    def _frame(self, name: str) -> pd.DataFrame:
        """Table ``name`` as a DataFrame, converted from Arrow once (then kept as the table)."""
        t = self._tables[name]
        if _is_arrow(t):
            t = self._tables[name] = t.to_pandas()
        return t

    def _arrow(self, name: str):
        """Table ``name`` as an Arrow table (a DataFrame is converted, not kept)."""
        t = self._tables[name]
        if _is_arrow(t):
            return t
        import pyarrow as pa

        return pa.Table.from_pandas(t, preserve_index=False)


def _true_count(column) -> int:
    """True values in a boolean Arrow column (a ChunkedArray)."""
    return sum(chunk.true_count for chunk in column.chunks)


def _is_arrow(table) -> bool:
    pa = sys.modules.get("pyarrow")  # an Arrow table means pyarrow is loaded; never load it here
    return pa is not None and isinstance(table, pa.Table)


def load(path: str | Path) -> ScanResults:
    """Read a scan saved by :meth:`ScanResults.save` (or ``vislint scan --out``)."""
    path = Path(path)
    folder, info = saved_scan(path)
    import pandas as pd

    res = ScanResults(*(pd.read_parquet(folder / f"{t}.parquet") for t in TABLES), info,
                      graphs=load_graphs(folder))
    res._tables_dir = folder.name if folder != path else None
    res.work_dir = path
    return res


def load_graphs(folder: Path) -> dict:
    """{feature space: KnnGraph} saved beside the tables ({} for scans saved without)."""
    import numpy as np

    from .knn import KnnGraph

    graphs = {}
    for f in sorted(folder.glob("graph-*.npz")):
        with np.load(f, allow_pickle=False) as z:
            graphs[f.stem[len("graph-"):]] = KnnGraph(z["neighbors"], z["sims"], str(z["method"]))
    return graphs


def _require(check: str, allowed: tuple[str, ...], what: str) -> None:
    if check not in allowed:
        check_record(check)  # an unknown name: the error lists every check
        raise ValueError(f"{check} has no {what}; choose one of {', '.join(allowed)}")

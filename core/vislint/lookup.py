"""Which of these images already exist? New images checked against a saved scan, the index.

The index is a work dir a scan wrote (``vislint scan DATA --out W``): its tables name the
images, and its feature cache holds what the scan computed for each. A query describes the new
images as a scan does and compares each one with the indexed images only, by the scan's own
copy rules, and changes nothing in the work dir:

1. **exact**: the same bytes as an indexed image (content hash), or the same decoded pixels
   (same size, descriptor similarity ≥ ``exact_pixels_min_sim``, then compared);
2. **candidates**: the ``k`` indexed images most similar in the copy descriptor, centred on
   the index as the scan centred it (:class:`vislint.features.Centring`), at similarity ≥
   ``copy_candidate``; and the rotation rule's candidates (:mod:`vislint.checks.rotation`) in
   its rotation-invariant vectors, centred the same way;
3. **verification** of every candidate (:mod:`vislint.checks.verification`): ``copy`` (the
   same photograph, edited) with its calibrated probability, ``same_scene`` (another shot of
   the same scene), or different (not reported).

The thresholds are the index's (those its scan used) unless changed. Pairs among the query
images themselves are not looked for: only "does this exist in the index?". Decisions that
reviewers made on the index apply to its own scans, not to a query.

What a query finds is what a scan of the index and the query images together finds between
them, but for one difference: the query centres the descriptor on the indexed images (as
their scan did), such a scan on all of them, so a pair whose similarity sits at the candidate
threshold can fall on either side of it. On the Intel sample (an index of 3,000 photos, a
query of the other 999 and 120 planted copies of indexed ones) the pairs were the same; on
the demo one pair at 0.87 differed (tests/test_lookup.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from . import _native
from .catalog import build_catalog
from .checks.duplicates import pair_evidence, pair_note
from .checks.rotation import (CANDIDATE_SIM, CANDIDATES, COLOUR_DIMS, PADDED, judged,
                              rotation_similarity)
from .checks.verification import ROTATION_VERIFIED, verify
from .copy_index import Saved
from .decode import MAX_PIXELS, decode_full, describe_all
from .features import Builtin, Centring
from .knn import DEFAULT_K, cross_neighbors
from .thresholds import Thresholds
from .tuning import tuned
from .workdir import CACHE_FIELDS, CacheRows, FeatureCache, reading_work_dir, saved_scan

KINDS = ("exact", "copy", "same_scene")
"""What a match can be, most certain first."""


@dataclass
class QueryResults:
    """What :func:`query` found.

    images: one row per query image (pandas DataFrame): ``path, relpath, content_hash,
    is_invalid, invalid_reason, invalid_message``, ``status`` (the best match's kind —
    "exact", "copy", "same_scene" — "new" without one, "invalid"), ``matches`` (how many
    indexed images it matches), ``best_match_id, best_match_path, best_score``.
    matches: one row per (query image, indexed image) pair found: ``query_path,
    query_relpath, kind, score`` (1 for exact copies; the copy probability; the same-scene
    score), ``similarity`` (descriptor cosine, NaN when only the rotation rule proposed it),
    ``match_id, match_path, match_relpath, match_label, match_split, evidence``. Sorted by
    query image, then kind, then score.
    index: the work dir queried. info: thresholds, parameters and timings.
    """

    images_table: object
    matches_table: object
    index: Path
    info: dict

    @property
    def images(self):
        return self.images_table.to_pandas()

    @property
    def matches(self):
        return self.matches_table.to_pandas()

    def counts(self) -> dict[str, int]:
        """{status: query images}, for every status."""
        status = self.images_table.column("status").to_pylist()
        return {s: status.count(s) for s in (*KINDS, "new", "invalid")}

    def to_csv(self, path: str | Path, table: str = "matches") -> Path:
        """Write the ``matches`` (default) or ``images`` table as CSV (atomically)."""
        import pyarrow.csv as pcsv

        from .workdir import atomic_path

        if table not in ("matches", "images"):
            raise ValueError(f"table must be 'matches' or 'images', got {table!r}")
        with atomic_path(path, fsync=False) as tmp:
            pcsv.write_csv(self.matches_table if table == "matches" else self.images_table, tmp)
        return Path(path)


def query(images, index, *, threads: int = 0, progress=False,
          thresholds: Thresholds | dict | None = None, k: int = DEFAULT_K, min_side: int = 10,
          max_pixels: int = MAX_PIXELS, batch_size: int = 512) -> QueryResults:
    """Check ``images`` against the scan saved in the work dir ``index`` (see the module
    docstring); returns :class:`QueryResults`. The work dir is only read.

    images: a folder, a list of paths, a DataFrame or a CSV file with a ``path`` column (labels
        and splits are not read). index: a work dir written by ``vislint scan --out``. It must
        not be in use by a scan (:class:`vislint.workdir.WorkDirError`).
    threads: worker processes for decoding, threads for faiss; 0 = all cores. thresholds:
        changes to the index's thresholds (a dict) or a whole :class:`Thresholds`. k: indexed
        images compared with each query image in the copy descriptor (default 10). progress,
        min_side, max_pixels, batch_size: as in :func:`vislint.scan`.
    """
    import time

    index = Path(index)
    threads = threads or os.cpu_count() or 1
    timings: dict[str, float] = {}
    with reading_work_dir(index), tuned():
        clock = time.perf_counter()
        base = Index(index)
        t = _thresholds(base.thresholds, thresholds)
        catalog = build_catalog(images, labels=None, splits=None)
        timings["index"] = time.perf_counter() - clock

        clock = time.perf_counter()
        cache = FeatureCache(None)
        meta = describe_all(catalog.paths, cache, threads=threads, progress=progress,
                            min_side=min_side, max_pixels=max_pixels, batch_size=batch_size)
        timings["decode_describe"] = time.perf_counter() - clock

        clock = time.perf_counter()
        qrows = np.flatnonzero(meta["ok"])
        qhash = [meta["content_hash"][i] for i in qrows]
        got = (cache.gather(qhash, fields=("raw", "stats", "rot", "rot_info")) if len(qrows)
               else None)
        found = compare(base, Described(
            paths=[catalog.paths[i] for i in qrows], hashes=qhash,
            width=meta["width"][qrows], height=meta["height"][qrows], **(got or {}),
            thumbs=lambda rows: cache.gather([qhash[r] for r in rows], fields=("thumb",))["thumb"],
            polar=lambda rows: cache.gather([qhash[r] for r in rows], fields=("polar",))["polar"]),
            t, k, threads)
        timings["compare"] = time.perf_counter() - clock
    info = {"thresholds": t.to_dict(), "params": {"k": k, "threads": threads},
            "index_images": int(base.valid.sum()), "timings": timings}
    return QueryResults(*_tables(base, catalog, meta, found), index, info)


class Index:
    """A saved scan as an index: its images table (paths, hashes, labels, splits, validity),
    its thresholds, its copy index (:class:`vislint.copy_index.Saved`, None for a small or an
    older scan) and ``read(name, rows)``, which reads a cached field of some of its valid
    images (:class:`vislint.workdir.CacheRows`). Open it inside
    :func:`vislint.workdir.reading_work_dir`."""

    COLUMNS = ("id", "path", "relpath", "label", "split", "content_hash", "is_invalid",
               "width", "height")
    """The columns of the images table an index reads (:meth:`column`)."""

    def __init__(self, work_dir: Path):
        import pyarrow.parquet as pq

        self.work_dir = work_dir

        folder, info = saved_scan(work_dir)
        self.table = pq.read_table(folder / "images.parquet", columns=list(self.COLUMNS))
        self.valid = ~self.table.column("is_invalid").to_numpy()
        self.thresholds = Thresholds().replace(**info.get("thresholds", {}))
        self.saved = Saved.open(folder)  # the scan's copy index (None: an older work dir)
        self.rows = np.flatnonzero(self.valid)  # indexed images: the valid ones
        self.hashes = self.table.column("content_hash").take(self.rows).to_pylist()
        saved = self.saved
        if saved is not None and saved.cache_locs is not None and len(saved.cache_locs) == len(self.rows):
            # where each image is in the cache, saved with the index: the cache is not opened
            # (at a million images that reads 2,000 files), and the hashes are checked as read
            self.read = CacheRows([work_dir / f for f in saved.cache_files], saved.cache_locs,
                                  self.hashes)
        else:
            self.read = self.cache.locations(self.hashes)

    def column(self, name: str, rows) -> list:
        """Column ``name`` (one of :attr:`COLUMNS`) of the images table, at table rows ``rows``
        (converted for those rows only: at a million images the whole columns are seconds)."""
        return self.table.column(name).take(np.asarray(rows, np.int64)).to_pylist()

    @cached_property
    def cache(self) -> FeatureCache:
        """The feature cache (read only), opened when first used: without a saved copy index
        every indexed image's features are read from it. Every field is read from the chunk
        files when needed."""
        cache = FeatureCache(Builtin.cache_dir(self.work_dir), on_disk=CACHE_FIELDS[1:],
                             check=False)
        missing = sum(h not in cache for h in self.hashes)
        if missing:
            raise ValueError(f"the feature cache of {self.work_dir} lacks {missing:,} of its "
                             f"{len(self.hashes):,} images (written by another vislint version, "
                             f"or deleted); scan the images again with --out {self.work_dir}")
        return cache


def _thresholds(of_index: Thresholds, given) -> Thresholds:
    if given is None:
        return of_index
    if isinstance(given, Thresholds):
        return given
    if isinstance(given, dict):
        return of_index.replace(**given)
    raise ValueError("thresholds must be a vislint.Thresholds or a dict like {'near_duplicate': 0.9}")


@dataclass
class Described:
    """The valid images checked against an index, as a scan described them (one row each):
    paths, content hashes, width and height (px), the cache's raw descriptors ("raw"),
    statistics ("stats"), rotation vectors ("rot", "rot_info"), and ``thumbs(rows)`` /
    ``polar(rows)`` giving the grey thumbnails and polar grids of some rows."""

    paths: list
    hashes: list
    width: np.ndarray
    height: np.ndarray
    raw: np.ndarray | None = None
    stats: np.ndarray | None = None
    rot: np.ndarray | None = None
    rot_info: np.ndarray | None = None
    thumbs: object = None
    polar: object = None


@dataclass
class Found:
    """Pairs (index row, row of the :class:`Described` images) found, one entry per pair:
    their kind ("exact", "copy", "same_scene"), score, descriptor similarity (NaN when only
    the rotation rule proposed the pair) and evidence note. ``index_rows`` count the index's
    valid images (:attr:`Index.rows` maps them to its table)."""

    index_rows: np.ndarray
    query_rows: np.ndarray
    kind: np.ndarray
    score: np.ndarray
    similarity: np.ndarray
    evidence: list
    pair_columns: dict | None = None
    """The :data:`vislint.vocabulary.PAIR_EVIDENCE` columns of each pair (NaN / False for
    exact copies), as a scan's pairs table shows them."""
    neighbors: np.ndarray | None = None
    """int64[q, k]: the index rows nearest to each described image in the copy descriptor
    (-1: none), with ``sims`` float32[q, k], their similarities, best first."""
    sims: np.ndarray | None = None


def compare(base: Index, images: Described, t: Thresholds, k: int = DEFAULT_K, threads: int = 0
            ) -> Found:
    """Every exact, copy and same-scene pair between the ``images`` and the index ``base``
    (see the module docstring)."""
    grey_at = _native.STAT_NAMES.index("channel_diff")
    entropy_at = _native.STAT_NAMES.index("entropy")
    qhash = images.hashes
    if not len(qhash) or not len(base.rows):
        return Found(*(np.zeros(0, np.int64),) * 2, np.zeros(0, object), np.zeros(0),
                      np.zeros(0), [], pair_evidence(None, np.zeros((0, 2), np.int64)),
                      np.full((len(qhash), k), -1, np.int64),
                      np.full((len(qhash), k), -np.inf, np.float32))
    got_q = {"raw": images.raw, "stats": images.stats, "rot": images.rot,
             "rot_info": images.rot_info}
    gray_q = np.nan_to_num(got_q["stats"][:, grey_at]) < t.grayscale
    saved = base.saved if base.saved is not None and base.saved.grayscale == t.grayscale else None
    if saved is not None:  # the scan's own vectors and searches, saved with it
        gray_i = np.nan_to_num(saved.stats[:, 0]) < t.grayscale
        entropy_i, info_i = saved.stats[:, 1], saved.stats[:, 2:]
        nbr, sim = saved.copy_neighbors(got_q["raw"], gray_q, k, threads)
    else:  # fitted again from every indexed image's features in the cache
        got_i = base.cache.gather(base.hashes, fields=("raw", "stats", "rot", "rot_info"))
        gray_i = np.nan_to_num(got_i["stats"][:, grey_at]) < t.grayscale
        entropy_i, info_i = got_i["stats"][:, entropy_at], got_i["rot_info"]
        # the copy descriptor, centred as the index's scan centred it
        centring = Centring.fit(got_i["raw"], Builtin.colour_dims, gray_i)
        nbr, sim = cross_neighbors(centring.apply(got_q["raw"], gray_q),
                                   centring.apply(got_i["raw"], gray_i),
                                   min(k, len(base.rows)), threads=threads)
    qi, col = np.nonzero(nbr >= 0)
    edges = {(int(nbr[a, b]), int(a)): float(sim[a, b]) for a, b in zip(qi, col)}

    # exact copies: the same bytes, or the same pixels
    of_hash: dict[str, list[int]] = {}
    for j, h in enumerate(qhash):
        of_hash.setdefault(h, []).append(j)
    exact = {(r, j) for r, h in enumerate(base.hashes) if h in of_hash for j in of_hash[h]}
    width_i, height_i = (base.table.column(c).to_numpy()[base.rows] for c in ("width", "height"))
    twins = [(r, j) for (r, j), s in edges.items()
             if s >= t.exact_pixels_min_sim and base.hashes[r] != qhash[j]
             and width_i[r] == images.width[j] and height_i[r] == images.height[j]]
    paths_i = base.column("path", [base.rows[r] for r, _ in twins])
    exact |= {(r, j) for (r, j), path in zip(twins, paths_i) if _pixels_equal(path, images.paths[j])}

    # the rotation rule: its candidates, and the descriptor's candidates between padded images
    info_q = got_q["rot_info"]
    judged_i = judged(np.ones(len(info_i), bool), info_i, entropy_i)
    judged_q = judged(np.ones(len(info_q), bool), info_q, got_q["stats"][:, entropy_at])
    rot_pairs = set()
    ji, jq = np.flatnonzero(judged_i), np.flatnonzero(judged_q)
    if len(ji) >= 1 and len(jq):
        if saved is not None:
            rn, rs = saved.rotation_neighbors(got_q["rot"][jq], gray_q[jq], CANDIDATES, threads)
            ji = saved.rotation_rows
        else:
            rc = Centring.fit(got_i["rot"][ji], COLOUR_DIMS, gray_i[ji])
            rn, rs = cross_neighbors(rc.apply(got_q["rot"][jq], gray_q[jq]),
                                     rc.apply(got_i["rot"][ji], gray_i[ji]),
                                     min(CANDIDATES, len(ji)), threads=threads)
        a, b = np.nonzero((rn >= 0) & (rs >= CANDIDATE_SIM))
        rot_pairs = {(int(ji[rn[x, y]]), int(jq[x])) for x, y in zip(a, b)}
    padded_i = judged_i & (info_i[:, 0] < PADDED)
    padded_q = judged_q & (info_q[:, 0] < PADDED)
    rot_pairs |= {(r, q) for (r, q), s in edges.items()
                  if s >= t.copy_candidate and padded_i[r] and padded_q[q]}
    rot_pairs -= exact
    got_i = None

    # local rows: the indexed images involved, then the query images
    cand = {p for p, s in edges.items() if s >= t.copy_candidate} | rot_pairs
    involved = sorted({r for r, _ in cand})
    local_of = {r: i for i, r in enumerate(involved)}
    n_i = len(involved)
    rotation = {}
    if rot_pairs:
        rp = sorted(rot_pairs)
        rot_i = sorted({r for r, _ in rp})
        rot_q = sorted({j for _, j in rp})
        polar = np.concatenate([base.read("polar", rot_i), images.polar(rot_q)])
        at_i = {r: x for x, r in enumerate(rot_i)}
        at_q = {j: len(rot_i) + x for x, j in enumerate(rot_q)}
        score, angle, _ = _native.rotation_verify(
            polar, np.array([at_i[r] for r, _ in rp], np.int64),
            np.array([at_q[j] for _, j in rp], np.int64), threads=threads)
        rotation = {(local_of[r], n_i + j): (float(s), float(g)) for (r, j), s, g
                    in zip(rp, np.round(rotation_similarity(score), 5), angle)}
    verifiable = sorted(p for p in cand - exact
                        if p in edges and edges[p] >= t.copy_candidate
                        or rotation.get((local_of[p[0]], n_i + p[1]), (0.0,))[0] >= ROTATION_VERIFIED)

    def thumbs(rows: list[int]) -> np.ndarray:
        i_rows = [r for r in rows if r < n_i]
        parts = [base.read("thumb", [involved[r] for r in i_rows]) if i_rows
                 else np.zeros((0, 64, 64), np.uint8)]
        q_rows = [r - n_i for r in rows if r >= n_i]
        if q_rows:
            parts.append(images.thumbs(q_rows))
        return np.concatenate(parts)

    pairs = np.array([(local_of[r], n_i + q) for r, q in verifiable], np.int64).reshape(-1, 2)
    checked = verify(thumbs=thumbs, pairs=pairs,
                     similarity=np.array([edges.get(p, -np.inf) for p in verifiable], np.float64),
                     rotation=rotation, near_threshold=t.near_duplicate, threads=threads)
    ex = sorted(exact)
    keep = checked.kind != "different"
    kinds = checked.kind[keep]
    scores = np.where(kinds == "copy", checked.copy_probability[keep], checked.scene_score[keep])
    notes = [pair_note(s, checked.evidence, int(j), scene=kd == "same_scene")
             for j, kd, s in zip(np.flatnonzero(keep), kinds, scores)]
    kept = [p for p, m in zip(verifiable, keep) if m]
    # evidence columns: the exact pairs have none (rows -1 are not in ``checked``)
    at = np.concatenate([np.full((len(ex), 2), -1, np.int64), pairs[keep]])
    return Found(
        np.array([r for r, _ in ex] + [r for r, _ in kept], np.int64),
        np.array([q for _, q in ex] + [q for _, q in kept], np.int64),
        np.array(["exact"] * len(ex) + list(kinds), object),
        np.concatenate([np.ones(len(ex)), scores]),
        np.array([edges.get(p, np.nan) for p in ex + kept], np.float64),
        ["exact copy"] * len(ex) + notes, pair_evidence(checked, at), nbr, sim)


def _pixels_equal(a: str, b: str) -> bool:
    try:
        return bool(np.array_equal(decode_full(a), decode_full(b)))
    except Exception:  # a file that changed or vanished is simply not a pixel twin
        return False


def _tables(base: Index, catalog, meta, found: Found):
    """(images, matches) as Arrow tables (see :class:`QueryResults`)."""
    from .tables import table

    qrows = np.flatnonzero(meta["ok"])
    rank = {k: i for i, k in enumerate(KINDS)}
    order = sorted(range(len(found.kind)), key=lambda j: (
        found.query_rows[j], rank[found.kind[j]], -found.score[j], found.index_rows[j]))
    at = [int(base.rows[found.index_rows[j]]) for j in order]
    q_at = [int(qrows[found.query_rows[j]]) for j in order]
    cols = {c: base.column(c, at) for c in ("id", "path", "relpath", "label", "split")}
    matches = table({
        "query_path": [catalog.paths[q] for q in q_at],
        "query_relpath": [catalog.relpaths[q] for q in q_at],
        "kind": [found.kind[j] for j in order],
        "score": np.round(found.score[order], 5) if order else np.zeros(0),
        "similarity": np.round(found.similarity[order], 5) if order else np.zeros(0),
        "match_id": cols["id"], "match_path": cols["path"], "match_relpath": cols["relpath"],
        "match_label": cols["label"], "match_split": cols["split"],
        "evidence": [found.evidence[j] for j in order],
    })
    n = len(catalog)
    status = np.where(meta["ok"], "new", "invalid").astype(object)
    count = np.zeros(n, np.int64)
    best_id, best_path = [None] * n, [None] * n
    best_score = np.full(n, np.nan)
    for m, (j, q) in enumerate(zip(order, q_at)):
        if count[q] == 0:  # the first match of a query image is its best (sorted above)
            status[q], best_id[q], best_path[q] = found.kind[j], cols["id"][m], cols["path"][m]
            best_score[q] = found.score[j]
        count[q] += 1
    images = table({
        "path": catalog.paths, "relpath": catalog.relpaths, "content_hash": meta["content_hash"],
        "is_invalid": ~meta["ok"], "invalid_reason": meta["reason"],
        "invalid_message": meta["message"], "status": list(status), "matches": count,
        "best_match_id": best_id, "best_match_path": best_path, "best_score": best_score,
    })
    return images, matches

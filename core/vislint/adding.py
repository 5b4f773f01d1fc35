"""Adding images to a saved scan: ``vislint scan NEW --out W --add``.

A scan saved in the work dir W (its tables, its kNN graph, its copy index and its feature
cache) takes new images without searching or checking its own images again:

1. The new images are decoded and described into W's feature cache. Files the scan holds
   already (the same path, or the same id) are skipped, and counted in a warning.
2. Their copies among the saved images are found as a query finds them
   (:func:`vislint.lookup.compare`: the saved images' centring and copy index, the rotation
   rule, verification). The copies among the new images themselves are found as a scan finds
   them: their own kNN graph, the rotation rule, verification.
3. **The copy checks are formed again where those pairs reach**: exact and near duplicates,
   same-scene shots, leaks and the label conflicts of duplicate groups. This happens for the
   new images and for every saved image connected to one through a chain of copy, exact or
   same-scene pairs. The saved pairs among them are read from the pairs table, not verified
   again. The groups are made by the scan's own rule
   (:func:`vislint.checks.duplicates.group_duplicates`), in the keep order of all the images,
   so they are the groups a scan of old and new images together makes from the same pairs.
   Groups no new image reaches stay as saved.
4. The new images get their other checks too:
   - invalid files;
   - the image statistics (blurry, dark, bright, low information, grayscale; odd size against
     the median size of all the images);
   - the label vote and the neighbour outlier distance, over their nearest saved or new
     images. Its z is taken against the saved images' distances.
5. A new scan of W is saved, atomically, as a scan saves one:
   - the tables;
   - the kNN graph, with the new images' rows added;
   - the copy index, with the new images added to its vectors and to its IVF lists.

What differs from a scan of all the images at once:

- The copy descriptor stays centred on the first scan's images (a query's centring), so a
  pair whose similarity sits at the candidate threshold can fall on the other side of it
  (as for a query: docs/query.md). The IVF lists stay those trained on the first scan's images.
- The saved images' own neighbour lists are not searched again. Their nearest neighbour,
  label vote and outlier distance stay as saved, even where a new image is now nearer.
- The appearance outlier measure of the new images is not computed (NaN). It compares every
  image's statistics with every other's; a scan of all the images computes it.
- A scan made with embeddings, predictions or a reference set cannot take images
  (ValueError): scan all the images again.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _native, copy_index
from .catalog import Catalog, build_catalog, printable, stable_id
from .checks.context import Context, Space
from .checks.duplicates import find_duplicates_in, group_duplicates, group_members
from .checks.outliers import outlier_scores
from .checks.quality import quality_scores
from .checks.rotation import rotation_candidates
from .checks.verification import Verified
from .decisions import Decisions, read_for_scan, resolve
from .decode import describe_all
from .features import Builtin, Centring
from .knn import KnnGraph, valid_graph
from .lookup import Described, Index, compare
from .ondisk import all_rows
from .progress import Bar
from .results import ScanResults, load, load_graphs
from .schema import assemble, confused_labels
from .thresholds import Thresholds, soft_score
from .vocabulary import check as check_record, checks
from .workdir import CACHE_FIELDS, FeatureCache, saved_scan

COPY_CHECKS = ("exact_duplicate", "near_duplicate", "same_scene", "leak", "label_conflict")
"""The checks formed again over the images the new pairs reach: their columns, groups and
pairs. The other checks are computed for the new images only."""

NOT_ADDABLE = ("embeddings", "predictions", "reference")
"""Scan parameters with which a scan cannot take images (see the module docstring)."""

_EVIDENCE = ("residual_median", "residual_max", "mirrored", "scale_x", "scale_y",
             "rotation_angle")
"""The verification evidence a saved pair keeps in the pairs table (its descriptor
similarity aside)."""


def add(source, out, *, labels="auto", splits="auto", threads: int = 0, progress=False,
        min_side: int = 10, max_pixels: int = 178_956_970, batch_size: int = 512,
        decisions="auto") -> ScanResults:
    """Add the images of ``source`` to the scan saved in the work dir ``out`` (see the module
    docstring) and save the result there; returns the :class:`ScanResults` of all the images.
    Call it holding the work dir (:func:`vislint.workdir.open_work_dir`), as
    :func:`vislint.scan` does with ``add=True``. The arguments are :func:`vislint.scan`'s;
    the thresholds, ``k`` and the index are the saved scan's. ``info["added"]`` lists every
    add: its source, the images added, those skipped (in the scan already), when, and for how
    many images the copy checks were formed again ("reached": the new ones and the saved ones
    their pairs reach)."""
    out = Path(out)
    threads = threads or os.cpu_count() or 1
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    saved = _Saved(out)
    params = saved.info.get("params", {})
    used = [p for p in NOT_ADDABLE if params.get(p)]
    if used:
        raise ValueError(f"the scan in {out} was made with {' and '.join(used)}: images cannot "
                         "be added to it; scan all the images again, without --add")
    if "copy" not in saved.graphs:
        raise ValueError(f"the scan in {out} was saved without its kNN graph (by an older "
                         "vislint): scan all the images again, without --add")
    t = Thresholds().replace(**saved.info.get("thresholds", {}))
    k = int(params.get("k") or saved.graphs["copy"].neighbors.shape[1])
    old = saved.images
    n_old = old.num_rows
    catalog, skipped = _new_images(build_catalog(source, labels=labels, splits=splits), old,
                                   params.get("source"))
    if skipped:
        warnings.warn(f"vislint: {skipped:,} of the images to add are in the scan already "
                      "(same path): skipped; to scan changed files again, scan all the images "
                      "without --add", stacklevel=3)
    m = len(catalog)
    added = {"source": str(catalog.root) if catalog.root else None, "images": m,
             "skipped": skipped, "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not m:  # nothing to add: the saved scan stays as it is (the results say so)
        same = load(out)
        same.info["added"] = [*same.info.get("added", []), {**added, "reached": 0}]
        return same
    decided = read_for_scan(decisions, out)
    base = Index(out)
    # the chunks written since the saved scan only (by an add interrupted before): the saved
    # images' fields are read where its copy index says they are, row by row
    saved_chunks = frozenset(out / f for f in (base.saved.cache_files or ())) if base.saved else ()
    cache = FeatureCache(Builtin.cache_dir(out), on_disk=CACHE_FIELDS[1:], check=False,
                         skip=saved_chunks)
    timings["catalog"] = time.perf_counter() - clock

    clock = time.perf_counter()
    meta = describe_all(catalog.paths, cache, threads=threads, progress=progress,
                        min_side=min_side, max_pixels=max_pixels, batch_size=batch_size)
    timings["decode_describe"] = time.perf_counter() - clock
    # what follows takes seconds at a million saved images: a bar of its steps (progress=True)
    bar = Bar("adding", 4, "step", shown=progress is True)
    bar.note("comparing with the saved images")

    clock = time.perf_counter()
    reviewed_new = _resolve(decided, catalog, meta["content_hash"])
    original_new = list(catalog.labels)
    for i, label in reviewed_new.labels.items():
        catalog.labels[i] = label
    valid = np.asarray(meta["ok"], bool)
    qrows = np.flatnonzero(valid)
    qhash = [meta["content_hash"][i] for i in qrows]
    by_row = [h if ok else None for h, ok in zip(meta["content_hash"], valid.tolist())]
    read = cache.locations(by_row)
    got = (cache.gather(qhash, fields=("raw", "stats", "rot", "rot_info")) if len(qrows) else
           {"raw": np.zeros((0, Builtin.dim), np.float32),
            "stats": np.zeros((0, len(_native.STAT_NAMES)), np.float32),
            "rot": np.zeros((0, _native.ROTATION_DIM), np.float32),
            "rot_info": np.zeros((0, 2), np.float32)})
    stats = all_rows(got["stats"], qrows, m, np.nan)

    # the new images against the saved ones, as a query compares them
    found = compare(base, Described(
        paths=[catalog.paths[i] for i in qrows], hashes=qhash, width=meta["width"][qrows],
        height=meta["height"][qrows], raw=got["raw"], stats=got["stats"], rot=got["rot"],
        rot_info=got["rot_info"], thumbs=lambda rows: read("thumb", qrows[rows]),
        polar=lambda rows: read("polar", qrows[rows])), t, k, threads)
    timings["compare"] = time.perf_counter() - clock
    bar()
    bar.note("pairs among the new images")

    clock = time.perf_counter()
    new = _New(catalog, meta, got, stats, read, _copy_centring(base, t), t, k, reviewed_new, threads)
    timings["new_pairs"] = time.perf_counter() - clock
    bar()
    bar.note("groups and checks")

    clock = time.perf_counter()
    graph = _union_graph(saved.graphs["copy"], base, found, new.graph, qrows, n_old, m, k)
    links = _Links(old, saved.pairs, base, found, new.duplicates, qrows, n_old)
    reached = links.reached(n_old + m)
    rows = _with_neighbours(reached, graph)  # the rows the checks read: reached + neighbours
    ctx, original = _context(rows, reached, old, base, catalog, meta, stats, original_new,
                             graph, t, decided, threads, n_old)
    ctx.duplicates = links.duplicates(rows, ctx, old)
    # the median size of all the images, for the new images' odd size
    ctx.shared["quality"] = quality_scores(ctx.stats, ctx.meta["width"], ctx.meta["height"],
                                           ctx.valid, t, median_area=_median_area(old, meta))
    results = {c.name: (_outlier(ctx, old, t) if c.name == "outlier" else c.function()(ctx))
               for c in checks()}
    ctx.results = results
    images_r, groups_r, pairs_r, _ = assemble(ctx, results, original)
    final = _merge_images(old, images_r, rows, reached, n_old)
    again = set(final.column("id").take(rows[reached[rows]]).to_pylist())
    groups = _merge_table(saved.groups, groups_r, again, "groups")
    pairs = _merge_table(saved.pairs, pairs_r, again, "pairs")
    timings["checks"] = time.perf_counter() - clock
    bar()
    bar.note("writing")

    info = dict(saved.info)
    info["leak_table"] = _leak_table(final)
    flagged = final.filter(final.column("is_label_conflict"))
    info["confused_labels"] = confused_labels(
        {c: flagged.column(c).to_numpy() for c in ("label", "suggested_label", "conflict_labels")}
        | {"is_label_conflict": np.ones(flagged.num_rows, bool)})
    info["timings"] = timings
    info["added"] = [*info.get("added", []), {**added, "reached": int(reached.sum())}]
    result = ScanResults(final, groups, pairs, info, graphs={"copy": graph})
    clock = time.perf_counter()
    extend = None
    if base.saved is not None:
        kept = np.flatnonzero(valid)
        extend = lambda folder: copy_index.extend(  # noqa: E731
            folder, base.saved, copy=new.vectors[kept], stats=stats[kept],
            rot_info=new.rot_info[kept], retrieval=new.retrieval[kept],
            grayscale_flags=new.gray[kept], cache_rows=read.take(kept), work_dir=out)
    result.save_tables(out, also=extend)
    timings["write"] = time.perf_counter() - clock
    result.save_manifest(out)
    bar()
    bar.close()
    result.work_dir = out
    return result


class _New:
    """The new images as a scan of them alone describes them: their copy vectors centred by
    ``centring`` (the saved scan's), their kNN graph, the rotation rule's inputs, and the
    :class:`vislint.checks.duplicates.Duplicates` a scan finds among them (its verified pairs
    are what an add takes)."""

    def __init__(self, catalog: Catalog, meta: dict, got: dict, stats: np.ndarray, read,
                 centring: Centring, t: Thresholds, k: int, reviewed: Decisions, threads: int):
        m = len(catalog)
        valid = np.asarray(meta["ok"], bool)
        rows = np.flatnonzero(valid)
        self.gray = np.nan_to_num(stats[:, _native.STAT_NAMES.index("channel_diff")]) < t.grayscale
        self.vectors = np.zeros((m, Builtin.dim), np.float32)
        if len(rows):
            self.vectors[rows] = centring.apply(got["raw"], self.gray[rows])
        self.graph = valid_graph(self.vectors, valid, k, "auto", threads)
        self.retrieval = all_rows(got["rot"], rows, m, 0)
        self.rot_info = all_rows(got["rot_info"], rows, m, np.nan)
        entropy = stats[:, _native.STAT_NAMES.index("entropy")]
        rotation = {"retrieval": self.retrieval, "info": self.rot_info,
                    "polar": lambda r: read("polar", r),
                    "candidates": rotation_candidates(
                        retrieval=self.retrieval, info=self.rot_info, valid=valid, entropy=entropy,
                        grayscale=self.gray, threads=threads)}
        self.duplicates = find_duplicates_in(Context(
            catalog=catalog, meta=meta, valid=valid, stats=stats,
            spaces={"copy": Space("copy", self.vectors, self.graph, Builtin().version)},
            rotation=rotation, thresholds=t, reviewed=reviewed, threads=threads,
            thumbs=lambda r: read("thumb", r)))


class _Saved:
    """The scan saved in a work dir, as Arrow tables (no pandas: at a million images the
    conversions alone are seconds): ``images``, ``groups``, ``pairs``, ``graphs`` and ``info``."""

    def __init__(self, out: Path):
        import pyarrow.parquet as pq

        folder, self.info = saved_scan(out)
        self.images, self.groups, self.pairs = (pq.read_table(folder / f"{t}.parquet")
                                                for t in ("images", "groups", "pairs"))
        self.graphs = load_graphs(folder)


def _new_images(catalog: Catalog, old, root) -> tuple[Catalog, int]:
    """The images of ``catalog`` the saved scan (its images table ``old``, its source folder
    ``root``) does not hold, with relative paths and ids in the saved scan's terms: relative
    to its folder when they are inside it, else the absolute path; and how many it holds."""
    root = os.path.abspath(root) if root else None
    relpaths = []
    for p in catalog.paths:
        inside = root is not None and os.path.commonpath([root, os.path.abspath(p)]) == root
        relpaths.append(Path(os.path.relpath(p, root)).as_posix() if inside else Path(p).as_posix())
    ids = [stable_id(r) for r in relpaths]
    # (paths as the table holds them: a name that is not UTF-8 with \xNN escapes)
    held = (pc.is_in(pa.array(printable(catalog.paths), pa.string()),
                     value_set=old.column("path").combine_chunks())
            .to_numpy(zero_copy_only=False)
            | pc.is_in(pa.array(ids, pa.string()), value_set=old.column("id").combine_chunks())
            .to_numpy(zero_copy_only=False))
    keep = np.flatnonzero(~held).tolist()
    return Catalog(root=catalog.root, paths=[catalog.paths[i] for i in keep],
                   relpaths=[relpaths[i] for i in keep], labels=[catalog.labels[i] for i in keep],
                   splits=[catalog.splits[i] for i in keep], ids=[ids[i] for i in keep]), \
        len(catalog) - len(keep)


def _resolve(decided, catalog: Catalog, hashes: list) -> Decisions:
    """The reviewer decisions that name these images (no warning for the others: they name
    the saved images)."""
    if decided is None:
        return Decisions()
    return resolve(decided, catalog.ids, catalog.relpaths, catalog.paths, list(hashes))


def _copy_centring(base: Index, t: Thresholds) -> Centring:
    """The copy descriptor's centring of the saved scan: saved with its copy index, or fitted
    again from its images' features in the cache as its scan fitted it (a small scan)."""
    if base.saved is not None and base.saved.grayscale == t.grayscale:
        return base.saved.copy_centring
    got = base.cache.gather(base.hashes, fields=("raw", "stats"))
    gray = np.nan_to_num(got["stats"][:, _native.STAT_NAMES.index("channel_diff")]) < t.grayscale
    return Centring.fit(got["raw"], Builtin.colour_dims, gray)


def _union_graph(saved: KnnGraph, base: Index, found, graph_new: KnnGraph, qrows, n_old: int,
                 m: int, k: int) -> KnnGraph:
    """The kNN graph of all the images: the saved rows as they were, and for each new image
    its ``k`` nearest among the saved images (``found``'s search) and the new ones."""
    neighbors = np.full((m, k), -1, np.int64)
    sims = np.full((m, k), -np.inf, np.float32)
    if len(qrows):
        old_nbr = np.where(found.neighbors >= 0, base.rows[np.maximum(found.neighbors, 0)], -1)
        new_nbr = np.where(graph_new.neighbors[qrows] >= 0, n_old + graph_new.neighbors[qrows], -1)
        nbr = np.concatenate([old_nbr, new_nbr], axis=1)
        sim = np.concatenate([found.sims, graph_new.sims[qrows]], axis=1).astype(np.float32)
        sim = np.where(nbr >= 0, sim, -np.inf)
        best = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        width = best.shape[1]
        neighbors[qrows, :width] = np.take_along_axis(nbr, best, axis=1)
        sims[qrows, :width] = np.take_along_axis(sim, best, axis=1)
    kk = saved.neighbors.shape[1]
    if kk != k:  # a saved graph of another width: pad or cut the new rows to it
        neighbors = np.pad(neighbors, ((0, 0), (0, max(0, kk - k))), constant_values=-1)[:, :kk]
        sims = np.pad(sims, ((0, 0), (0, max(0, kk - k))), constant_values=-np.inf)[:, :kk]
    return KnnGraph(np.concatenate([saved.neighbors, neighbors]),
                    np.concatenate([saved.sims, sims]), saved.method)


class _Links:
    """Every exact, copy and same-scene pair between the images (saved and new, as rows of
    the union: saved rows first, then the new images), from the saved pairs table, the
    comparison with the saved images and the new images' own pairs."""

    def __init__(self, old, pair_table, base: Index, found, among_new, qrows, n_old: int):
        table = pair_table.filter(pc.is_in(pair_table.column("check"), value_set=pa.array(
            ["exact_duplicate", "near_duplicate", "same_scene"])))
        a, b = (_rows_of(table.column(c), old.column("id")) for c in ("id_a", "id_b"))
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        check = table.column("check").to_numpy()
        exact = check == "exact_duplicate"
        # exact copies: the saved ones, the new images' of saved images, among the new images
        f_old, f_new = base.rows[found.index_rows], n_old + qrows[found.query_rows]
        f_exact = found.kind == "exact"
        new_exact = among_new.pairs[among_new.pair_exact]
        self.exact = np.concatenate([np.stack([lo[exact], hi[exact]], axis=1),
                                     np.stack([f_old[f_exact], f_new[f_exact]], axis=1),
                                     n_old + new_exact]).reshape(-1, 2)
        # verified pairs, with their evidence
        v = among_new.verified
        keep_new = v.kind != "different"
        saved_v = ~exact
        ev = {name: np.concatenate([
            table.column(name).to_numpy()[saved_v].astype(np.float64),
            np.asarray(found.pair_columns[name], np.float64)[~f_exact],
            np.asarray(v.evidence[name], np.float64)[keep_new]]) for name in _EVIDENCE}
        ev["mirrored"] = ev["mirrored"] > 0
        kind = np.concatenate([np.where(check[saved_v] == "near_duplicate", "copy", "same_scene"),
                               found.kind[~f_exact], v.kind[keep_new]]).astype(object)
        score = np.concatenate([table.column("similarity").to_numpy()[saved_v].astype(np.float64),
                                found.score[~f_exact],
                                np.where(v.kind[keep_new] == "copy", v.copy_probability[keep_new],
                                         v.scene_score[keep_new])])
        self.pairs = np.concatenate([np.stack([lo[saved_v], hi[saved_v]], axis=1),
                                     np.stack([f_old[~f_exact], f_new[~f_exact]], axis=1),
                                     n_old + v.pairs[keep_new]]).reshape(-1, 2)
        self.kind, self.score, self.evidence = kind, score, ev
        self.similarity = np.concatenate([
            table.column("descriptor_similarity").to_numpy()[saved_v].astype(np.float32),
            np.asarray(found.pair_columns["descriptor_similarity"], np.float32)[~f_exact],
            np.asarray(v.similarity, np.float32)[keep_new]])
        self.n_old = n_old

    def reached(self, n: int) -> np.ndarray:
        """bool[n]: the new images and the saved ones a chain of pairs joins to one."""
        links = np.concatenate([self.exact, self.pairs])
        comp = _native.components(n, links[:, 0].copy(), links[:, 1].copy())
        touched = np.zeros(n, bool)
        touched[np.unique(comp[self.n_old:])] = True
        return touched[comp]

    def duplicates(self, rows: np.ndarray, ctx: Context, old):
        """The :class:`vislint.checks.duplicates.Duplicates` of the images ``rows`` (union
        rows, sorted; the context's rows): a group of saved images only, and all of one saved
        group, keeps its saved number (in ``old``, the saved images table); the others are
        numbered after the saved ones."""
        local = np.full(rows[-1] + 1 if len(rows) else 0, -1, np.int64)
        local[rows] = np.arange(len(rows))
        exact = local[self.exact]
        pairs = local[self.pairs]
        inside = (pairs >= 0).all(axis=1)  # (pairs beyond the rows never reach a new image)
        not_dup = {tuple(p) for p in ctx.reviewed.pairs}
        keep = inside & np.array([tuple(p) not in not_dup for p in pairs.tolist()], bool)
        verified = Verified(pairs[keep], self.similarity[keep], self.kind[keep],
                            np.where(self.kind[keep] == "copy", self.score[keep], 0.0),
                            np.where(self.kind[keep] == "same_scene", self.score[keep], 0.0),
                            {name: col[keep] for name, col in self.evidence.items()})
        dup = group_duplicates(valid=ctx.valid, exact_links=exact[(exact >= 0).all(axis=1)],
                               verified=verified, order=ctx.keep_order)
        saved = rows[rows < self.n_old]
        for name in ("exact_group", "duplicate_group", "scene_group"):
            numbers = old.column(name).to_numpy().astype(np.int64)
            setattr(dup, name, _numbered(getattr(dup, name), numbers[saved], numbers))
        return dup


def _numbered(group: np.ndarray, saved: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """Group numbers for ``group`` (0.., -1 = none; the saved images' rows first, ``saved``
    their saved numbers, ``numbers`` the saved column): a group that is exactly a saved group
    keeps its number, the others take numbers after every saved one, in order."""
    out = np.full(len(group), -1, np.int64)
    size = np.bincount(numbers[numbers >= 0]) if (numbers >= 0).any() else np.zeros(0, np.int64)
    after = len(size)
    was = np.full(len(group), -1, np.int64)
    was[:len(saved)] = saved
    for members in group_members(group):
        first = was[members[0]]
        if first >= 0 and (was[members] == first).all() and size[first] == len(members):
            out[members] = first
        else:
            out[members] = after
            after += 1
    return out


def _rows_of(ids, of) -> np.ndarray:
    """The rows of ``of`` (the images table's id column) holding ``ids`` (Arrow columns)."""
    at = pc.index_in(ids, value_set=of.combine_chunks())
    if at.null_count:
        raise ValueError("the saved pairs table names images its images table lacks: "
                         "scan all the images again, without --add")
    return at.to_numpy().astype(np.int64)


def _with_neighbours(reached: np.ndarray, graph: KnnGraph) -> np.ndarray:
    """The sorted rows of the ``reached`` images and of their neighbours in ``graph`` (the
    label vote and the nearest neighbour read them)."""
    at = np.flatnonzero(reached)
    nbr = graph.neighbors[at]
    return np.union1d(at, nbr[nbr >= 0])


def _context(rows, reached, old, base: Index, catalog: Catalog, meta: dict, stats_new,
             original_new, graph: KnnGraph, t: Thresholds, decided, threads: int, n_old: int):
    """The :class:`Context` of the images ``rows`` (union rows, saved ones first) and their
    labels before reviewers' corrections."""
    saved_rows, new_rows = rows[rows < n_old], rows[rows >= n_old] - n_old
    taken = old.select(["id", "path", "relpath", "label", "split", "width", "height",
                        "file_size", "format", "content_hash", "is_invalid", "invalid_reason",
                        "invalid_message", "label_original"]).take(saved_rows)
    cols = {c: taken.column(c).to_numpy() for c in taken.column_names}
    both = lambda a, b: list(a) + [b[i] for i in new_rows]  # noqa: E731
    labels = [None if _missing(x) else x for x in cols["label"]]
    splits = [None if _missing(x) else x for x in cols["split"]]
    cat = Catalog(root=None, paths=both(cols["path"], catalog.paths),
                  relpaths=both(cols["relpath"], catalog.relpaths),
                  labels=both(labels, catalog.labels), splits=both(splits, catalog.splits),
                  ids=both(cols["id"], catalog.ids))
    ok = np.concatenate([~cols["is_invalid"].astype(bool), np.asarray(meta["ok"], bool)[new_rows]])
    merged = {"ok": ok}
    for name, column in (("reason", "invalid_reason"), ("message", "invalid_message"),
                         ("content_hash", "content_hash"), ("format", "format")):
        merged[name] = [None if _missing(x) else x for x in cols[column]] + [meta[name][i] for i in new_rows]
    for name in ("width", "height", "file_size"):
        merged[name] = np.concatenate([cols[name].astype(np.int64),
                                       np.asarray(meta[name], np.int64)[new_rows]])
    # statistics: the new images' and the reached saved ones' (their keep order); the saved
    # images that are only neighbours are in no group formed again, and their checks stay
    stats = np.full((len(rows), len(_native.STAT_NAMES)), np.nan, stats_new.dtype)
    need = np.flatnonzero(reached[saved_rows])
    if len(need):  # (every reached saved row is a valid image: a pair's)
        stats[need] = base.read("stats", np.searchsorted(base.rows, saved_rows[need]))
    stats[len(saved_rows):] = stats_new[new_rows]
    local_nbr = np.full(graph.neighbors.shape[0] + 1, -1, np.int64)
    local_nbr[rows] = np.arange(len(rows))
    nbr = graph.neighbors[rows]
    mapped = np.where(nbr >= 0, local_nbr[nbr], -1)
    sims = np.where(mapped >= 0, graph.sims[rows], -np.inf).astype(np.float32)
    reviewed = (Decisions() if decided is None else
                resolve(decided, cat.ids, cat.relpaths, cat.paths, merged["content_hash"]))
    original = [o if not _missing(o) else lab
                for o, lab in zip(cols["label_original"], labels)] + [original_new[i] for i in new_rows]
    ctx = Context(catalog=cat, meta=merged, valid=ok, stats=stats,
                  spaces={"copy": Space("copy", np.zeros((len(rows), 0), np.float32),
                                        KnnGraph(mapped, sims, graph.method), Builtin().version)},
                  rotation={}, thresholds=t, reviewed=reviewed, threads=threads)
    return ctx, original


def _missing(x) -> bool:
    """A missing value of a table column read back (None or NaN)."""
    return x is None or (isinstance(x, float) and np.isnan(x))


def _median_area(old, meta: dict) -> float:
    """The median area (px) of the valid images, saved and new."""
    valid_old = ~old.column("is_invalid").to_numpy().astype(bool)
    area = np.concatenate([
        (old.column("width").to_numpy().astype(np.float64)
         * old.column("height").to_numpy().astype(np.float64))[valid_old],
        (np.asarray(meta["width"], np.float64) * np.asarray(meta["height"], np.float64))[
            np.asarray(meta["ok"], bool)]])
    return float(np.median(area)) if len(area) else 1.0


def _outlier(ctx: Context, old, t: Thresholds):
    """The outlier check of the context's images: the neighbour distance over their graph
    rows, its robust z against the saved images' distances (their median and MAD); the
    appearance measure is not computed (NaN; see the module docstring)."""
    from .vocabulary import CheckResult

    _, _, dist, _ = outlier_scores(valid=ctx.valid, graph=ctx.spaces["copy"].graph,
                                   exact_group=ctx.duplicates.exact_group, z_threshold=t.outlier_z)
    saved = old.column("outlier_distance").to_numpy().astype(np.float64)
    saved = saved[np.isfinite(saved)]
    z = np.full(len(dist), np.nan)
    if len(saved) >= 3:
        med = np.median(saved)
        z = (dist - med) / max(1.4826 * np.median(np.abs(saved - med)), 1e-6)
    score = np.where(np.isfinite(z), soft_score(np.maximum(z, 0.0), t.outlier_z, low_is_bad=False),
                     np.nan)
    return CheckResult(flag=np.isfinite(z) & (z >= t.outlier_z), score=score,
                       columns={"outlier_distance": dist, "outlier_z": z,
                                "outlier_appearance_z": np.full(len(dist), np.nan)})


def _columns(names) -> list[str]:
    """The images-table columns of these checks: flag, score, evidence."""
    out = []
    for name in names:
        c = check_record(name)
        out += [c.flag] + ([c.score] if c.scored else []) + [col for col, _ in c.evidence]
    return out


def _merge_images(old, made, rows: np.ndarray, reached: np.ndarray, n_old: int):
    """The images table of all the images (Arrow): the saved rows as saved, except the copy
    checks' columns of the reached ones, taken from ``made`` (the table of the context's
    ``rows``); then the new images' rows, in the saved table's types."""
    again = np.flatnonzero(reached[:n_old])
    local = pa.array(np.searchsorted(rows, again))
    mask = np.zeros(n_old, bool)
    mask[again] = True
    mask = pa.array(mask)
    for c in _columns(COPY_CHECKS):
        kind = old.schema.field(c).type
        if kind == pa.null():  # a column all empty when saved takes the new values' type
            kind = made.schema.field(c).type
        column = old.column(c).combine_chunks().cast(kind)
        old = old.set_column(old.schema.get_field_index(c), c, pc.replace_with_mask(
            column, mask, made.column(c).take(local).combine_chunks().cast(kind)))
    new = made.take(pa.array(np.flatnonzero(rows >= n_old))).select(old.column_names)
    return pa.concat_tables([old, _cast(new, old.schema)], promote_options="default")


def _cast(table, schema):
    """``table`` in the types of ``schema``, but for the columns all empty there (of null
    type), which keep their own (the tables are then concatenated promoting them)."""
    return table.cast(pa.schema([table.schema.field(f.name) if f.type == pa.null() else f
                                 for f in schema]))


def _merge_table(saved, made, again: set, kind: str):
    """The groups or pairs table (``kind``; Arrow) of all the images: the saved rows of the copy
    checks that involve none of the images formed again (``again``: their ids), the rows
    ``made`` for those images, and the other checks' rows as saved; ordered as a scan orders
    them (check by check; groups by number, representative first; pairs by score)."""
    ours = pc.is_in(saved.column("check"), value_set=pa.array(COPY_CHECKS)).to_numpy()
    hit = pa.array(sorted(again), pa.string())
    if kind == "groups":
        check, group = saved.column("check").to_numpy(), saved.column("group").to_numpy()
        touched = ours & pc.is_in(saved.column("id"), value_set=hit).to_numpy()
        formed = set(zip(check[touched], group[touched]))
        gone = np.array([(c, g) in formed for c, g in zip(check, group)], bool)
    else:
        gone = ours & (pc.is_in(saved.column("id_a"), value_set=hit).to_numpy()
                       | pc.is_in(saved.column("id_b"), value_set=hit).to_numpy())
    made = made.filter(pc.is_in(made.column("check"), value_set=pa.array(COPY_CHECKS)))
    merged = pa.concat_tables([saved.filter(pa.array(~gone)),
                               _cast(made.select(saved.column_names), saved.schema)],
                              promote_options="default")
    rank = pc.index_in(merged.column("check"), value_set=pa.array([c.name for c in checks()]))
    merged = merged.append_column("_rank", rank)
    keys = ([("_rank", "ascending"), ("group", "ascending"), ("keep", "descending")]
            if kind == "groups" else
            [("_rank", "ascending"), ("similarity", "descending"), ("id_a", "ascending"),
             ("id_b", "ascending")])
    return merged.sort_by(keys).drop_columns(["_rank"])


def _leak_table(final) -> dict:
    """{split: {partner split: images}} over the leak partners of all the images."""
    leaking = final.filter(pc.is_valid(final.column("leak_partners")))
    partners = {p for ps in leaking.column("leak_partners").to_pylist() for p in ps.split(";")}
    of = final.filter(pc.is_in(final.column("id"), value_set=pa.array(sorted(partners), pa.string())))
    split_of = dict(zip(of.column("id").to_pylist(), of.column("split").to_pylist()))
    table: dict = {}
    for split, partners in zip(leaking.column("split").to_pylist(),
                               leaking.column("leak_partners").to_pylist()):
        for other in sorted({split_of[p] for p in partners.split(";")}):
            row = table.setdefault(split, {})
            row[other] = row.get(other, 0) + 1
    return table

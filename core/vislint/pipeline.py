"""The scan: source → catalog → decode → features → kNN graph → checks → ScanResults."""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import platform
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np

from . import _native
from ._version import __version__
from .catalog import Catalog, build_catalog
from .checks.duplicates import find_duplicates, keep_order
from .checks.labels import find_label_conflicts
from .checks.leaks import find_leaks
from .checks.outliers import outlier_scores
from .checks.quality import QUALITY_CHECKS, quality_scores
from .checks.rotation import duplicate_graph, judge_rotations, rotation_candidates
from .decisions import Decisions, load_for_scan
from .decode import REASONS, FileInfo, decode_full, decode_pixels, orient
from .features import Builtin, Onnx, l2_normalise, resolve, validate_precomputed
from .knn import DEFAULT_K, knn_graph
from .results import ScanResults
from .thresholds import Thresholds
from .workdir import FeatureCache, open_work_dir

def scan(source, *, out: str | Path | None = None, labels="auto", splits="auto",
         features="builtin", k: int = DEFAULT_K, index: str = "auto", threads: int = 0,
         thresholds: Thresholds | dict | None = None, progress: bool | Callable = False,
         min_side: int = 10, max_pixels: int = 178_956_970, batch_size: int = 512,
         decisions="auto", offline: bool | None = None) -> ScanResults:
    """Scan images for every kind of problem and return :class:`ScanResults`.

    source: a folder (labels from class folders, splits from top folders named
        like train/valid/test), a list of paths, a DataFrame or a CSV file with
        ``path[,label][,split]``.
    out: work dir. Results are saved there, and per-image features are cached
        there as the scan goes, so an interrupted scan resumes and a re-scan
        only decodes new or changed files. None keeps everything in memory. One scan at a
        time: another scan holding ``out`` raises :class:`vislint.workdir.WorkDirError`
        (so does a work dir that cannot be written), before anything is decoded. A work dir
        inside the scanned folder is not scanned.
    labels, splits: "auto" (infer from folders) or None (ignore).
    features: "builtin" (default, no model); an ONNX image model: "onnx:PATH", a registry
        name (see :mod:`vislint.models`) or a :class:`vislint.features.Onnx`; or precomputed
        vectors: a float array with one row per image in catalog order (or a column of them).
        Model vectors are cached per image and per model (its file's SHA-256).
    k: neighbours per image in the shared kNN graph (default 10).
    index: "auto", "exact" or "ivf" (see :mod:`vislint.knn`).
    threads: worker processes for decoding and describing (1 = decode in this process),
        threads for faiss; 0 = all cores. Results do not depend on it.
    thresholds: a :class:`Thresholds` or a dict of changes to the defaults.
    progress: True shows a progress bar on stderr; a callable is called as
        ``progress(done, total)`` (images decoded so far, all images) after every batch.
    min_side: images with a side shorter than this (px) are invalid (too_small).
    max_pixels: images with more pixels are invalid (too_large), never decoded.
    batch_size: images decoded per batch; each batch is one cache chunk, the
        unit of work an interrupted scan can lose (default 512).
    decisions: reviewer decisions to honour (see :mod:`vislint.decisions`): "auto" (default)
        reads ``out/decisions.csv`` when it exists; None ignores decisions; or a CSV path or
        DataFrame.
    offline: never download a registry model (None: the VISLINT_OFFLINE environment
        variable decides).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    t = _thresholds(thresholds)
    threads = threads or os.cpu_count() or 1

    with open_work_dir(out) if out is not None else nullcontext():
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        catalog = build_catalog(source, labels=labels, splits=splits)
        n = len(catalog)
        reviewed = load_for_scan(decisions, out, catalog.ids, catalog.relpaths)
        original_labels = list(catalog.labels)
        for i, label in reviewed.labels.items():
            catalog.labels[i] = label
        extractor = resolve(features, offline=offline)  # an ONNX model is loaded and checked here
        model = extractor if isinstance(extractor, Onnx) else None
        # the analysis cache; with a model, images are decoded at the model's scale (the key says so)
        key = f"{Builtin.version}-{_native.TILE_SIZE}"
        if model is not None and model.decode_side > _native.TILE_SIZE:
            key += f"-from{model.decode_side}"
        cache = FeatureCache(Path(out) / "cache" / key if out else None)
        vectors = (FeatureCache(Path(out) / "cache" / model.version if out else None, fields=("hash", "vec"))
                   if model is not None else None)
        timings["catalog"] = time.perf_counter() - clock

        # Decode and describe, batch by batch; each batch is cached as it completes.
        meta = _decode_all(catalog, cache, threads, progress, min_side, max_pixels, batch_size, timings,
                           while_waiting=lambda: _import_later_stages(write=out is not None),
                           model=model, vectors=vectors)
        valid = meta["ok"]
        clock = time.perf_counter()
        vidx = np.flatnonzero(valid)
        got = cache.gather([meta["content_hash"][i] for i in vidx])  # rows of the valid images
        del cache  # its chunks hold every descriptor once more; from here on `got` has them
        stats = _all_rows(got["stats"], vidx, n, np.nan)
        rotation = {"retrieval": _all_rows(got["rot"], vidx, n, 0), "polar": _all_rows(got["polar"], vidx, n, 0),
                    "info": _all_rows(got["rot_info"], vidx, n, np.nan)}

        gray = np.nan_to_num(stats[:, _native.STAT_NAMES.index("channel_diff")]) < t.grayscale
        # Rotated-copy candidates need only the rotation vectors: a second thread searches them
        # while this one fits the descriptor and builds the shared graph (on 2 cores, the
        # descriptor's single-threaded NumPy work leaves the other core free for them).
        background = ThreadPoolExecutor(1)
        rot_candidates = background.submit(
            rotation_candidates, retrieval=rotation["retrieval"], info=rotation["info"], valid=valid,
            grayscale=gray, threads=max(1, threads // 2))
        background.shutdown(wait=False)

        if model is not None:
            feats = np.zeros((n, model.dim), np.float32)
            if len(vidx):
                feats[vidx] = l2_normalise(vectors.gather([meta["content_hash"][i] for i in vidx])["vec"])
            feature_name = model.version
            del vectors
        elif isinstance(extractor, Builtin):
            feats = (_all_rows(extractor.fit_transform(got["raw"], gray[vidx]), vidx, n, 0) if len(vidx)
                     else np.zeros((n, extractor.dim), np.float32))
            feature_name = extractor.version
        else:
            feats = validate_precomputed(features, n)
            feature_name = f"precomputed-{feats.shape[1]}d"
        del got
        timings["features"] = time.perf_counter() - clock

        clock = time.perf_counter()
        graph = _graph(feats, valid, k, index, threads)
        timings["graph"] = time.perf_counter() - clock

        clock = time.perf_counter()
        rotation["candidates"] = rot_candidates.result()
        results = _run_checks(catalog, meta, valid, feats, stats, rotation, graph, t,
                              semantic=not isinstance(extractor, Builtin), threads=threads,
                              reviewed=reviewed, original_labels=original_labels)
        results.features = feats
        timings["checks"] = time.perf_counter() - clock
        results.info.update({
            "params": {"k": k, "index": graph.method, "features": feature_name, "threads": threads,
                       "min_side": min_side, "max_pixels": max_pixels, "batch_size": batch_size,
                       "source": str(catalog.root) if catalog.root else None},
            "thresholds": t.to_dict(),
            "provenance": {"vislint": __version__, "python": platform.python_version(),
                           "numpy": np.__version__, "cores": os.cpu_count(),
                           "feature_model": model.describe() if model is not None else None},
            "timings": timings,
            "invalid_reasons": REASONS,
        })
        if out is not None:
            clock = time.perf_counter()
            results.save_tables(out)
            timings["write"] = time.perf_counter() - clock
            results.save_manifest(out)  # last: it commits the new tables
        return results


def _all_rows(values: np.ndarray, rows: np.ndarray, n: int, fill) -> np.ndarray:
    """An array of ``n`` rows holding ``values`` at ``rows`` and ``fill`` elsewhere
    (``values`` itself when ``rows`` are all n rows, in order)."""
    if len(rows) == n:
        return values
    out = np.full((n,) + values.shape[1:], fill, values.dtype)
    out[rows] = values
    return out


def _thresholds(thresholds) -> Thresholds:
    if thresholds is None:
        return Thresholds()
    if isinstance(thresholds, Thresholds):
        return thresholds
    if isinstance(thresholds, dict):
        return Thresholds().replace(**thresholds)
    raise ValueError("thresholds must be a vislint.Thresholds or a dict like {'near_duplicate': 0.95}")


_CHUNK = 32
"""Files one worker decodes and describes in one go (one task, one native call). Fewer, larger
tasks cost the parent less to hand out and collect (32 rather than 16: about 0.08 s less CPU
for 4,000 images) while the last task still ends within ~30 ms of the other worker."""

_START_METHOD = "fork" if sys.platform == "linux" else "spawn"
"""How decode worker processes start. Fork is cheap (nothing is imported again, and what the
parent imported is shared) and safe here: a CLI scan forks before it imports faiss, pandas or
the OpenMP runtime, and in a process that already has those threads (a second scan in one
session) the workers still only run Pillow and the native core single-threaded, never OpenMP
or BLAS."""


def _describe_chunk(paths, skip_hashes, min_side, max_pixels, model=None, model_threads=0):
    """Decode ``paths`` and describe the fresh ones (files whose hash is not in ``skip_hashes``).

    Returns (FileInfo per path, {name: array} for the rows that were described, or None).
    With an ONNX ``model`` the images are decoded at its scale and their vectors come back
    as "vec" (the model runs here, with ``model_threads`` intra-op threads).
    """
    infos, fresh, images = [], [], []
    side = max(_native.TILE_SIZE, model.decode_side) if model is not None else _native.TILE_SIZE
    for path in paths:
        pixels, info = decode_pixels(path, tile=side, min_side=min_side,
                                     max_pixels=max_pixels, skip_hashes=skip_hashes)
        infos.append(info)
        if pixels is not None:
            fresh.append(info)
            images.append(orient(pixels, info.orientation))
    if not images:
        return infos, None
    tiles, stats, hashes, raw = _native.analyze(images, size=_native.TILE_SIZE, threads=1)
    dims = np.array([im.shape[:2] for im in images], np.int32)
    rot, polar, rot_info = _native.rotation_features(tiles, dims[:, 1], dims[:, 0], threads=1)
    extra = {"vec": model.embed(images, threads=model_threads)} if model is not None else {}
    return infos, {**extra,
        "hash": np.array([f.content_hash for f in fresh]),
        "raw": raw, "stats": stats, "phash": hashes, "rot": rot, "polar": polar, "rot_info": rot_info,
        "width": np.array([f.width for f in fresh], np.int32),
        "height": np.array([f.height for f in fresh], np.int32),
        "frames": np.array([f.frames for f in fresh], np.int32),
        "format": np.array([f.format or "" for f in fresh]),
        "mode": np.array([f.mode or "" for f in fresh]),
    }


_worker_skip: frozenset[str] = frozenset()
"""In a decode worker process: content hashes cached before the scan started."""
_worker_model: Onnx | None = None
"""In a decode worker process: the ONNX model of the scan, if any (one session per worker)."""


def _start_worker(skip_hashes: frozenset[str], model: Onnx | None = None) -> None:
    """Set up a decode worker process: remember the cached hashes, leave Ctrl-C to the parent
    (which stops the pool and keeps the cache), and exit as soon as the parent is gone (so a
    ``kill -9`` of the scan leaves no worker behind)."""
    global _worker_skip, _worker_model
    _worker_skip, _worker_model = skip_hashes, model
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sentinel = multiprocessing.parent_process().sentinel
    threading.Thread(target=_exit_with_parent, args=(sentinel,), daemon=True).start()


def _exit_with_parent(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])  # ready when the parent process has ended
    os._exit(1)


def _worker_chunk(task):
    """A decode worker's task: (paths, min_side, max_pixels) -> :func:`_describe_chunk`."""
    paths, min_side, max_pixels = task
    model = _worker_model
    return _describe_chunk(paths, _worker_skip, min_side, max_pixels, model,
                           model_threads=model.threads or 1 if model is not None else 0)


def _decode_all(catalog: Catalog, cache: FeatureCache, threads, progress, min_side, max_pixels,
                batch_size, timings, while_waiting=None, model: Onnx | None = None,
                vectors: FeatureCache | None = None) -> dict:
    """Decode and describe every image not yet cached, batch by batch (a batch = a
    cache chunk, written as soon as it is complete); returns per-image metadata.

    With ``threads`` > 1, chunks of :data:`_CHUNK` files are decoded in that many worker
    processes (Pillow holds the GIL, so threads would take turns), all queued at once and
    gathered in order; ``while_waiting()`` then runs in this process while they work. Files
    cached before the scan are not decoded; a file repeating the bytes of another file of
    this scan is described again but cached once. Results do not depend on ``threads``.
    With an ONNX ``model``, each worker also runs the model on its images and their vectors go
    to ``vectors``; a file is skipped only when both caches hold it.
    """
    n = len(catalog)
    infos: list[FileInfo] = []  # one per catalog image, in order
    report = progress if callable(progress) else None
    clock = time.perf_counter()
    skip = frozenset(cache.hashes() & vectors.hashes() if vectors is not None else cache.hashes())
    batches = [range(start, min(start + batch_size, n), _CHUNK) for start in range(0, n, batch_size)]
    tasks = [(catalog.paths[s:min(s + _CHUNK, b.stop)], min_side, max_pixels)
             for b in batches for s in b]
    workers = min(threads, len(tasks))
    pool = bar = None
    try:
        if workers > 1:
            pool = ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(skip, model),
                                       mp_context=multiprocessing.get_context(_START_METHOD))
            parts = pool.map(_worker_chunk, tasks)  # forks the workers, queues every task
        else:
            parts = (_describe_chunk(paths, skip, ms, mp, model, (model.threads or threads) if model else 0)
                     for paths, ms, mp in tasks)
        if progress and report is None:
            from tqdm import tqdm
            bar = tqdm(total=n, unit="img", desc="scan", dynamic_ncols=True, mininterval=0.5)
        if pool is not None and while_waiting is not None:
            while_waiting()
        for batch in batches:
            described = []
            for _ in batch:
                part, desc = next(parts)
                infos += part
                if desc is not None:
                    described.append(desc)
                if bar is not None:
                    bar.update(len(part))
            if described:
                chunk = {k: np.concatenate([d[k] for d in described]) for k in described[0]}
                if vectors is not None:
                    vec = chunk.pop("vec")
                    new = _first_uncached(vectors, chunk["hash"].tolist())
                    vectors.add({"hash": chunk["hash"][new], "vec": vec[new]})
                new = _first_uncached(cache, chunk["hash"].tolist())
                cache.add(chunk if new.all() else {k: v[new] for k, v in chunk.items()})
            if report is not None:
                report(len(infos), n)
    except BaseException:
        if pool is not None:  # Ctrl-C or an error: drop the queued work, keep the cache
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    if pool is not None:
        pool.shutdown()
    meta = {"ok": np.array([f.reason is None for f in infos], bool),
            "reason": [f.reason for f in infos], "message": [f.message for f in infos],
            "width": np.array([f.width for f in infos], np.int32),
            "height": np.array([f.height for f in infos], np.int32),
            "file_size": np.array([f.file_size for f in infos], np.int64),
            "content_hash": [f.content_hash for f in infos], "format": [f.format for f in infos]}
    # Cached images carry no decode metadata in this run: take it from the cache.
    cached_rows = np.flatnonzero(meta["ok"] & (meta["width"] == 0)).tolist()
    if cached_rows:
        got = cache.gather([meta["content_hash"][i] for i in cached_rows])
        meta["width"][cached_rows] = got["width"]
        meta["height"][cached_rows] = got["height"]
        for r, f in zip(cached_rows, got["format"].tolist()):
            meta["format"][r] = f or None
    timings["decode_describe"] = time.perf_counter() - clock
    return meta


def _first_uncached(cache: FeatureCache, hashes: list[str]) -> np.ndarray:
    """bool mask of the rows whose hash is neither in ``cache`` nor earlier in ``hashes``."""
    seen = set()
    keep = np.zeros(len(hashes), bool)
    for row, h in enumerate(hashes):
        if h not in cache and h not in seen:
            seen.add(h)
            keep[row] = True
    return keep


def _import_later_stages(write: bool) -> None:
    """Import what the stages after decoding need (faiss, pyarrow; pyarrow.parquet when
    ``write``; Pillow's format plugins) so that it overlaps the decode workers instead of
    following them (the workers are forked without them). Not pandas: a scan builds Arrow
    tables (:mod:`vislint.tables`)."""
    import faiss  # noqa: F401
    from PIL import Image

    from . import tables  # noqa: F401  (pyarrow)
    Image.preinit()  # Pillow's common format plugins: the exact-pixel check opens files here
    if write:
        import pyarrow.parquet  # noqa: F401


def _graph(feats, valid, k, index, threads):
    """kNN graph over the valid rows, mapped back to catalog row indices."""
    from .knn import KnnGraph

    n = len(valid)
    vidx = np.flatnonzero(valid)
    g = knn_graph(feats[vidx], k, method=index, threads=threads)
    neighbors = np.full((n, k), -1, np.int64)
    sims = np.full((n, k), -np.inf, np.float32)
    mapped = np.where(g.neighbors >= 0, vidx[np.maximum(g.neighbors, 0)], -1)
    neighbors[vidx], sims[vidx] = mapped, g.sims
    return KnnGraph(neighbors, sims, g.method)


def _run_checks(catalog: Catalog, meta, valid, feats, stats, rotation, graph, t: Thresholds,
                semantic: bool, threads: int, reviewed: Decisions,
                original_labels: list) -> ScanResults:
    from . import tables

    n = len(catalog)
    ids = np.array(catalog.ids, dtype=object)
    col = {name: i for i, name in enumerate(_native.STAT_NAMES)}
    area = meta["width"].astype(np.int64) * meta["height"].astype(np.int64)
    order = keep_order(valid, catalog.labels, catalog.splits, area,
                       np.nan_to_num(stats[:, col["blur_laplacian_var"]]), catalog.relpaths)

    def pixels_equal(i: int, j: int) -> bool:
        try:
            return bool(np.array_equal(decode_full(catalog.paths[i]), decode_full(catalog.paths[j])))
        except Exception:  # a file that changed since decoding is simply not a pixel twin
            return False

    # Rotated copies: verified pairs folded into the graph the duplicate checks use.
    rot = judge_rotations(candidates=rotation["candidates"], polar=rotation["polar"],
                          info=rotation["info"], valid=valid, graph=graph,
                          near_threshold=t.near_duplicate, veto_padded=not semantic, threads=threads)
    dup = find_duplicates(valid=valid, content_hash=meta["content_hash"], width=meta["width"],
                          height=meta["height"],
                          graph=duplicate_graph(graph, rot).without_pairs(reviewed.pairs), order=order,
                          near_threshold=t.near_duplicate, pixel_min_sim=t.exact_pixels_min_sim,
                          pixels_equal=pixels_equal)
    leaks = find_leaks(splits=catalog.splits, features=feats, duplicate_group=dup.duplicate_group,
                       pairs=dup.pairs, pair_sims=dup.pair_sims)
    conflicts = find_label_conflicts(labels=catalog.labels, valid=valid, graph=graph,
                                     duplicate_group=dup.duplicate_group,
                                     representative=dup.representative,
                                     max_agreement=t.label_agreement,
                                     min_support=t.label_min_support, flag_votes=semantic)
    o_score, o_flag, o_dist, o_z = outlier_scores(valid=valid, graph=graph,
                                                  exact_group=dup.exact_group, z_threshold=t.outlier_z)
    quality = quality_scores(stats, meta["width"], meta["height"], valid, t)

    is_exact = dup.exact_group >= 0
    in_group = dup.duplicate_group >= 0
    # near duplicate: in a duplicate group with at least one member that is not its exact copy
    near_flag = np.zeros(n, bool)
    for members in _groups(dup.duplicate_group):
        for m in members:
            near_flag[m] = any(dup.exact_group[o] < 0 or dup.exact_group[o] != dup.exact_group[m]
                               for o in members if o != m)
    rep = dup.representative
    nearest = graph.neighbors[:, 0]
    images = {
        "id": ids, "path": catalog.paths, "relpath": catalog.relpaths,
        "label": catalog.labels, "split": catalog.splits,
        "width": meta["width"], "height": meta["height"], "file_size": meta["file_size"],
        "format": meta["format"], "content_hash": meta["content_hash"],
        "is_invalid": ~valid, "invalid_reason": meta["reason"], "invalid_message": meta["message"],
        "exact_duplicate_score": np.where(valid, is_exact.astype(float), np.nan),
        "is_exact_duplicate": is_exact,
        "near_duplicate_score": dup.near_sim, "is_near_duplicate": near_flag,
        "exact_group": dup.exact_group, "duplicate_group": dup.duplicate_group,
        "duplicate_of": [ids[rep[i]] if in_group[i] and rep[i] != i else None for i in range(n)],
        "nearest_id": [ids[j] if j >= 0 else None for j in nearest],
        "nearest_similarity": np.where(nearest >= 0, graph.sims[:, 0], np.nan),
        "leak_score": np.where(valid, leaks.score, np.nan),
        "is_leak": np.array([len(p) > 0 for p in leaks.partners], bool),
        "leak_partners": [";".join(ids[p]) if p else None for p in leaks.partners],
        "label_conflict_score": conflicts.score, "is_label_conflict": conflicts.flag,
        "suggested_label": conflicts.suggested, "label_agreement": conflicts.agreement,
        "conflict_labels": conflicts.conflict_labels,
        "outlier_score": o_score, "is_outlier": o_flag,
        "outlier_distance": o_dist, "outlier_z": o_z,
    }
    for check in QUALITY_CHECKS:
        stat, score = quality[check]
        images[f"{check}_score"] = score
        images[f"is_{check}"] = np.nan_to_num(score) >= 0.5
    images["sharpness"] = quality["blurry"][0]
    for name in ("lum_p05", "lum_p95", "entropy", "channel_diff"):
        images[name] = stats[:, col[name]]
    images["odd_size_stat"] = quality["odd_size"][0]
    # reviewer decisions: cleared flags, corrected labels, and the record of who decided
    for check, rows in reviewed.cleared.items():
        if f"is_{check}" in images:
            images[f"is_{check}"] = flags = np.array(images[f"is_{check}"], bool)
            flags[sorted(rows)] = False
    images["label_original"] = [o if i in reviewed.labels else None
                                for i, o in enumerate(original_labels)]
    images["reviewed"] = ["; ".join(reviewed.notes[i]) if i in reviewed.notes else None
                          for i in range(n)]

    rank = np.full(n, n, np.int64)
    rank[order] = np.arange(len(order))
    groups = _group_table(images, feats, dup, rank, near_flag, conflicts.conflict_groups)
    pairs = _pair_table(images, dup, leaks)
    info = {"leak_table": leaks.table, "confused_labels": _confused(images)}
    return ScanResults(tables.table(images), groups, pairs, info)


def _groups(group: np.ndarray):
    idx = np.flatnonzero(group >= 0)
    srt = idx[np.argsort(group[idx], kind="stable")]
    return np.split(srt, np.flatnonzero(np.diff(group[srt])) + 1) if len(srt) else []


def _group_table(images: dict, feats, dup, rank, near_flag, conflict_groups):
    """Group members per check, representative (best in keep order) first (an Arrow table).

    Exact groups are the exact-copy components. Every duplicate group is listed
    under near_duplicate when it holds a near (not exact) copy, under leak when
    it spans splits, and under label_conflict when it holds several labels.
    """
    from . import tables

    cols = {"check": [], "group": [], "row": [], "keep": [], "similarity": []}
    split = images["split"]
    conflict_set = set(conflict_groups)
    pair_sim = dict(zip(map(tuple, dup.pairs.tolist()), dup.pair_sims.tolist()))
    for kind, group in (("exact", dup.exact_group), ("duplicate", dup.duplicate_group)):
        for members in _groups(group):
            g = int(group[members[0]])
            rep = int(members[np.argmin(rank[members])])
            if kind == "exact":
                checks = ["exact_duplicate"]
            else:
                checks = [c for c, applies in (
                    ("near_duplicate", near_flag[members].any()),
                    ("leak", len({split[m] for m in members if isinstance(split[m], str)}) > 1),
                    ("label_conflict", g in conflict_set)) if applies]
            ordered = [rep] + sorted(int(m) for m in members if m != rep)
            # similarity to the representative: the pair's (descriptor or rotation) where
            # the pair was judged, else the feature cosine
            sims = np.clip(feats[ordered] @ feats[rep], -1.0, 1.0)
            sims = [pair_sim.get((min(m, rep), max(m, rep)), float(s)) for m, s in zip(ordered, sims)]
            sims[0] = 1.0
            for c in checks:
                cols["check"] += [c] * len(ordered)
                cols["group"] += [g] * len(ordered)
                cols["row"] += ordered
                cols["keep"] += [m == rep for m in ordered]
                cols["similarity"] += sims
    at = np.array(cols["row"], np.int64)
    return tables.table({
        "check": cols["check"], "group": np.array(cols["group"], np.int64),
        **{c: _take(images[c], at) for c in ("id", "path", "label", "split")},
        "keep": np.array(cols["keep"], bool), "similarity": np.array(cols["similarity"], np.float64)})


def _pair_table(images: dict, dup, leaks):
    """Image pairs per check (exact, near, leak), most similar first (an Arrow table)."""
    from . import tables

    cols = {c: [] for c in ("check", "id_a", "id_b", "path_a", "path_b", "split_a", "split_b")}
    sim_parts = []
    for check, pairs, sims in (("exact_duplicate", dup.pairs[dup.pair_exact], dup.pair_sims[dup.pair_exact]),
                               ("near_duplicate", dup.pairs[~dup.pair_exact], dup.pair_sims[~dup.pair_exact]),
                               ("leak", leaks.pairs, leaks.pair_sims)):
        if not len(pairs):
            continue
        id_a, id_b = _take(images["id"], pairs[:, 0]), _take(images["id"], pairs[:, 1])
        order = sorted(range(len(pairs)), key=lambda i: (-float(sims[i]), id_a[i], id_b[i]))
        a, b = pairs[order, 0], pairs[order, 1]
        cols["check"] += [check] * len(order)
        for side, rows in (("a", a), ("b", b)):
            for c in ("id", "path", "split"):
                cols[f"{c}_{side}"] += _take(images[c], rows)
        sim_parts.append(np.asarray(sims, np.float32)[order])
    cols["similarity"] = np.concatenate(sim_parts) if sim_parts else np.zeros(0, np.float32)
    return tables.table(cols)


def _take(values, rows) -> list:
    """values[rows] for a list or object array of strings, as a list."""
    return [values[i] for i in rows.tolist()]


def _confused(images: dict, top: int = 10) -> list[dict]:
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

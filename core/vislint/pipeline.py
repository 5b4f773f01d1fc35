"""The scan: source → catalog → decode → feature spaces → kNN graphs → checks → ScanResults.

Each stage lives in its own module (:mod:`vislint.catalog`, :mod:`vislint.decode`,
:mod:`vislint.features`, :mod:`vislint.knn`, the checks named by :mod:`vislint.vocabulary`,
:mod:`vislint.schema`); this one runs them in order and records what was done.
"""
from __future__ import annotations

import os
import platform
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

import numpy as np

from . import _native, budget, copy_index
from ._version import __version__
from .catalog import build_catalog
from .checks.context import Context, Space
from .checks.outliers import appearance_distances
from .checks.rotation import rotation_candidates
from .decisions import for_scan, read_for_scan
from .decode import REASONS, describe_all
from .features import Builtin, Centring, Onnx, l2_normalise, resolve, validate_precomputed
from .ondisk import all_rows, subset
from .knn import DEFAULT_K, KnnGraph, valid_graph
from .lookup import Described, Index, compare
from .results import ScanResults
from .predictions import read_predictions
from .progress import stage
from .thresholds import Thresholds
from .tuning import tuned
from .vocabulary import checks
from .workdir import CacheRows, FeatureCache, StageCache, open_work_dir, reading_work_dir


ON_DISK_FROM = 100_000
"""Scans of more images with a work dir keep what is large per image in the work dir rather
than in memory (at a million images, gigabytes each):

- the copy descriptors and the rotation rule's retrieval vectors (1.8 kB and 0.6 kB an image),
  gathered from the cache into ``.npy`` files that every stage reads through a memory map,
  block by block (:mod:`vislint.ondisk`);
- the grey thumbnails that verify near duplicates and the polar grids that verify rotated
  copies (4 kB and 2 kB an image), read back from the cache files for the candidate pairs;
- what the searches found — the kNN graphs, the rotation rule's candidates, the appearance
  distances (:class:`vislint.workdir.StageCache`) — so that a scan killed after them resumes
  without searching again (at a million images: minutes).

Smaller scans keep them in memory: reading them back would cost a few percent of a scan of a
few thousand images, and they search again in seconds."""

PAIR_FIELDS = ("thumb", "polar")
"""Cache fields read only for the images of candidate pairs (see :data:`ON_DISK_FROM`)."""

VECTOR_FIELDS = ("raw", "rot")
"""Cache fields a large scan reads into files of its own (see :data:`ON_DISK_FROM`)."""


def scan(source, *, out: str | Path | None = None, labels="auto", splits="auto",
         embeddings=None, predictions=None, k: int = DEFAULT_K, index: str = "auto", threads: int = 0,
         thresholds: Thresholds | dict | None = None, progress: bool | Callable = False,
         min_side: int = 10, max_pixels: int = 178_956_970, batch_size: int = 512,
         decisions="auto", offline: bool | None = None, features=None,
         memory_limit: float | None = None, reference=None, add: bool = False) -> ScanResults:
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
    embeddings: what the images show, for the semantic checks (the neighbour label vote,
        outliers): an ONNX image model ("onnx:PATH", a registry name — see
        :mod:`vislint.models` — or a :class:`vislint.features.Onnx`), or precomputed vectors
        (a float array with one row per image in catalog order, or a column of them). None
        (default): no semantic space; those checks read the copy space. Copies (exact and
        near duplicates, leaks) are always judged by the built-in descriptor: embeddings never
        change them. Model vectors are cached per image and per model (its file's SHA-256).
    predictions: a model's class probabilities per image, ideally out-of-sample (see
        :mod:`vislint.predictions`: a DataFrame with a column per class and optionally a
        ``path`` column, ``(array, class_names)``, or a .npy/.csv/.parquet file): labels they
        contradict become label conflicts (confident learning), with the predicted class
        and its probability. They never change copies, leaks or outliers.
    k: neighbours per image in each kNN graph (default 10).
    index: "auto", "exact" or "ivf" (see :mod:`vislint.knn`).
    threads: worker processes for decoding and describing (1 = decode in this process),
        threads for faiss; 0 = all cores. Results do not depend on it.
    thresholds: a :class:`Thresholds` or a dict of changes to the defaults.
    progress: True shows a progress bar per stage on stderr (decoding, the graph, the checks),
        each with a time estimate; a callable is called as ``progress(done, total)`` (images
        decoded so far, all images) after every batch.
    min_side: images with a side shorter than this (px) are invalid (too_small).
    max_pixels: images with more pixels are invalid (too_large), never decoded.
    batch_size: images decoded per batch; each batch is one cache chunk, the
        unit of work an interrupted scan can lose (default 512).
    decisions: reviewer decisions to honour (see :mod:`vislint.decisions`): "auto" (default)
        reads ``out/decisions.csv`` when it exists; None ignores decisions; or a CSV path or
        DataFrame. They name images by content hash (and path or id), so they hold for any
        scan of the same files; those naming no image of this scan are listed in a warning,
        and ``info["decisions"]`` says how many were applied.
    offline: never download a registry model (None: the VISLINT_OFFLINE environment
        variable decides).
    features: the old name of ``embeddings`` (deprecated; "builtin" means None).
    reference: the work dir of another saved scan (set B): images of this scan that are exact
        or verified copies of its images are flagged (the ``in_reference`` check, see
        :mod:`vislint.checks.reference`); B's own findings are not looked for. It is only
        read, and must not be ``out``.
    memory_limit: GiB the scan may need at its peak (None: 90 % of the memory available when
        it starts). A scan whose estimated peak memory, or work-dir disk space, does not fit
        raises :class:`vislint.budget.BudgetError` before it decodes anything (see
        :mod:`vislint.budget`).
    add: add the images of ``source`` to the scan saved in ``out`` instead of scanning them
        alone (:mod:`vislint.adding`): only they are decoded, compared with the saved images and
        checked, and the copy checks (duplicates, same scene, leaks, label conflicts of
        groups) are formed again where their pairs reach; the saved scan's thresholds, ``k``
        and index are used (giving others raises ValueError), and the result of all the images
        is saved in ``out`` and returned.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    t = _thresholds(thresholds)
    embeddings = embeddings_argument(embeddings, features)
    threads = threads or os.cpu_count() or 1
    # a model is loaded and checked before the work dir is touched: a model that does not
    # fit fails fast and leaves nothing behind
    semantic = resolve(embeddings, offline=offline) if embeddings is not None else None
    if reference is not None and out is not None and os.path.realpath(reference) == os.path.realpath(out):
        raise ValueError("the reference must be another scan's work dir, not this scan's --out")
    if add:
        return _add(source, out, labels=labels, splits=splits, threads=threads, progress=progress,
                    min_side=min_side, max_pixels=max_pixels, batch_size=batch_size,
                    decisions=decisions, settings={
                        "embeddings": embeddings, "predictions": predictions,
                        "reference": reference, "thresholds": thresholds,
                        "k": None if k == DEFAULT_K else k,
                        "index": None if index == "auto" else index})
    with ExitStack() as held:
        held.enter_context(tuned())
        if out is not None:
            held.enter_context(open_work_dir(out))
        base = None
        if reference is not None:  # opened first: a reference that cannot be read fails fast
            held.enter_context(reading_work_dir(reference))
            base = Index(Path(reference))
        return _scan(source, out, labels, splits, semantic, k, index, threads, t, progress,
                     min_side, max_pixels, batch_size, decisions, predictions, memory_limit, base)


def _scan(source, out, labels, splits, semantic, k, index, threads, t, progress, min_side,
          max_pixels, batch_size, decisions, predictions, memory_limit, base) -> ScanResults:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    catalog = build_catalog(source, labels=labels, splits=splits)
    n = len(catalog)
    decided = read_for_scan(decisions, out)  # a bad file fails before any image is read
    predicted = (read_predictions(predictions, relpaths=catalog.relpaths, paths=catalog.paths,
                                  labels=catalog.labels) if predictions is not None else None)
    model = semantic if isinstance(semantic, Onnx) else None
    large = out is not None and n > ON_DISK_FROM
    cache = FeatureCache(Builtin.cache_dir(out) if out else None,
                         on_disk=PAIR_FIELDS + VECTOR_FIELDS if large else ())
    vectors = (FeatureCache(Path(out) / "cache" / model.version if out else None, fields=("hash", "vec"))
               if model is not None else None)
    budget.check(n, max(0, n - len(cache)), out, memory_limit=memory_limit,
                 saves_index=n >= copy_index.SAVED_FROM,
                 on_disk=large)
    timings["catalog"] = time.perf_counter() - clock

    # Decode and describe, batch by batch; each batch is cached as it completes.
    clock = time.perf_counter()
    meta = describe_all(catalog.paths, cache, threads=threads, progress=progress,
                        min_side=min_side, max_pixels=max_pixels, batch_size=batch_size,
                        while_waiting=lambda: _import_later_stages(write=out is not None),
                        model=model, vectors=vectors)
    timings["decode_describe"] = time.perf_counter() - clock
    # decisions follow the content: resolved once every file's hash is known
    reviewed = for_scan(decided, catalog.ids, catalog.relpaths, catalog.paths, meta["content_hash"])
    original_labels = list(catalog.labels)
    for i, label in reviewed.labels.items():
        catalog.labels[i] = label

    clock = time.perf_counter()
    valid = meta["ok"]
    vidx = np.flatnonzero(valid)
    hashes = meta["content_hash"]
    # the small fields, taken out of the chunks, which then keep only the thumbnails and polar
    # grids (only the images of candidate pairs need them); the vectors of every image
    vhash = [hashes[i] for i in vidx]
    by_row = [h if ok else None for h, ok in zip(hashes, valid.tolist())]
    got = cache.gather(vhash, fields=tuple(f for f in cache.fields[1:]
                                           if f not in PAIR_FIELDS + VECTOR_FIELDS), drop=True)
    stages = StageCache(cache.root / "stages") if large else None
    if not len(vidx):
        raw = np.zeros((n, Builtin.dim), np.float32)
        retrieval = np.zeros((n, _native.ROTATION_DIM), np.float32)
    elif large:
        raw = cache.gather_file("raw", by_row, stages.root / "copy-vectors.npy")
        retrieval = cache.gather_file("rot", by_row, stages.root / "rotation-retrieval.npy")
    else:
        vectors_of = cache.gather(vhash, fields=VECTOR_FIELDS, drop=True)
        raw = all_rows(vectors_of["raw"], vidx, n, 0)
        retrieval = all_rows(vectors_of["rot"], vidx, n, 0)
        del vectors_of
    read = cache.reader(by_row)  # the thumbnails and polar grids of candidate pairs, by row
    saves_index = out is not None and len(vidx) >= copy_index.SAVED_FROM
    located = ((read if isinstance(read, CacheRows) else cache.locations(by_row)).take(vidx)
               if saves_index else None)  # (saved with the copy index)
    del cache
    stats = all_rows(got["stats"], vidx, n, np.nan)
    rotation = {"retrieval": retrieval, "polar": lambda rows: read("polar", rows),
                "info": all_rows(got["rot_info"], vidx, n, np.nan)}
    gray = np.nan_to_num(stats[:, _native.STAT_NAMES.index("channel_diff")]) < t.grayscale
    # Rotated-copy candidates need only the rotation vectors, and the outlier check's
    # appearance distances only the statistics: a second thread searches them, one after the
    # other, while this one fits the descriptor and builds the graphs. Each search takes
    # every thread (faiss' OpenMP shares the cores with the graph's): with one thread, the
    # rotation search of a million images outlasted the graph's by a minute, and the checks
    # waited with a core idle. (Both at once were no faster, and held both indexes at once:
    # +0.5 GiB at a million.)
    background = ThreadPoolExecutor(1)
    entropy = stats[:, _native.STAT_NAMES.index("entropy")]
    rot_candidates = background.submit(
        _staged, stages, "rotation", (rotation["retrieval"], rotation["info"], valid, entropy, gray),
        lambda: {"pairs": rotation_candidates(
            retrieval=rotation["retrieval"], info=rotation["info"], valid=valid, entropy=entropy,
            grayscale=gray, threads=threads,
            vectors_file=stages.root / "rotation-vectors.npy" if stages else None)})
    appearance = (background.submit(
        _staged, stages, "appearance", (stats, valid, meta["content_hash"]),
        lambda: {"distances": appearance_distances(stats, valid, meta["content_hash"],
                                                   threads=threads)})
        if t.outlier_appearance_z is not None else None)
    background.shutdown(wait=False)

    reference = None
    if base is not None:  # before the raw descriptors are centred in place
        clock_ref = time.perf_counter()
        reference = (base, compare(base, Described(
            paths=[catalog.paths[i] for i in vidx], hashes=vhash, width=meta["width"][vidx],
            height=meta["height"][vidx], raw=subset(raw, vidx), stats=got["stats"],
            rot=subset(retrieval, vidx), rot_info=got["rot_info"],
            thumbs=lambda rows: read("thumb", vidx[rows]), polar=lambda rows: read("polar", vidx[rows])),
            t, k, threads), vidx)
        timings["reference"] = time.perf_counter() - clock_ref
    builtin = Builtin()
    centring = None
    if len(vidx):  # the copy descriptor centred over its raw vectors, in memory or in its file
        centring = Centring.fit(subset(raw, vidx), builtin.colour_dims, gray[vidx])
        centring.apply(subset(raw, vidx), gray[vidx], out=subset(raw, vidx))
    # (a large scan's file is mapped again read-only: the results hand it out)
    copy = np.load(raw.filename, mmap_mode="r") if isinstance(raw, np.memmap) else raw
    del got, raw
    spaces_vectors = {"copy": (copy, builtin.version)}
    if model is not None:
        vec = np.zeros((n, model.dim), np.float32)
        if len(vidx):
            vec[vidx] = l2_normalise(vectors.gather([meta["content_hash"][i] for i in vidx])["vec"])
        spaces_vectors["semantic"] = (vec, model.version)
    elif semantic is not None:
        vec = validate_precomputed(semantic, n)
        spaces_vectors["semantic"] = (vec, f"precomputed-{vec.shape[1]}d")
    timings["features"] = time.perf_counter() - clock

    clock = time.perf_counter()
    with stage(progress, "graph", total=len(vidx) * len(spaces_vectors)) as bar:
        spaces = {}
        for name, (vec, source) in spaces_vectors.items():
            bar.note(f"{name} space")
            g = _staged(stages, f"graph-{name}", (vec, valid, k, index), lambda: vars(
                valid_graph(vec, valid, k, index, threads, bar)), done=lambda: bar(len(vidx)))
            spaces[name] = Space(name, vec, KnnGraph(g["neighbors"], g["sims"], str(g["method"])),
                                 source)
    timings["graph"] = time.perf_counter() - clock

    clock = time.perf_counter()
    rotation["candidates"] = rot_candidates.result()["pairs"]
    ctx = Context(catalog=catalog, meta=meta, valid=valid, stats=stats, spaces=spaces,
                  rotation=rotation, thresholds=t, reviewed=reviewed, threads=threads,
                  predictions=predicted,
                  appearance=appearance.result()["distances"] if appearance else None,
                  reference=reference,
                  thumbs=lambda rows: read("thumb", rows))
    with stage(progress, "checks", total=len(checks()), unit="check") as bar:
        for check in checks():
            bar.note(check.name)
            ctx.results[check.name] = check.function()(ctx)
            bar()
    results = ScanResults.from_checks(ctx, original_labels)
    timings["checks"] = time.perf_counter() - clock
    results.info.update({
        "params": {"k": k, "index": spaces["copy"].graph.method,
                   "features": spaces["copy"].source,
                   "embeddings": spaces["semantic"].source if "semantic" in spaces else None,
                   "predictions": (f"{len(predicted.classes)} classes" if predicted is not None
                                   else None),
                   "threads": threads, "min_side": min_side, "max_pixels": max_pixels,
                   "batch_size": batch_size, "source": str(catalog.root) if catalog.root else None,
                   "reference": str(base.work_dir) if base is not None else None},
        "thresholds": t.to_dict(),
        "provenance": {"vislint": __version__, "python": platform.python_version(),
                       "numpy": np.__version__, "cores": os.cpu_count(),
                       "feature_model": model.describe() if model is not None else None},
        "timings": timings,
        "invalid_reasons": REASONS,
        "decisions": reviewed.summary() if decided is not None else None,
    })
    if out is not None:
        clock = time.perf_counter()
        results.save_tables(out, also=None if not saves_index else lambda folder: copy_index.write(
            folder, rows=vidx, copy=copy, copy_centring=centring, stats=stats,
            rot_info=rotation["info"], retrieval=rotation["retrieval"], grayscale_flags=gray,
            grayscale=t.grayscale, cache_rows=located, work_dir=Path(out)))
        timings["write"] = time.perf_counter() - clock
        results.save_manifest(out)  # last: it commits the new tables
        if stages is not None:  # (the copy vectors stay: the results map them)
            (stages.root / "rotation-retrieval.npy").unlink(missing_ok=True)
        results.work_dir = Path(out)
    return results


def _add(source, out, *, settings: dict, **kwargs) -> ScanResults:
    """``scan(..., add=True)``: :func:`vislint.adding.add`, holding the work dir."""
    from .adding import add

    if out is None:
        raise ValueError("add=True adds images to the scan saved in out=: give the work dir "
                         "(--out) of that scan")
    given = [name for name, value in settings.items() if value is not None]
    if given:
        raise ValueError(f"images added to a saved scan are checked with its own settings: "
                         f"drop {', '.join(given)} (or scan all the images again, without --add)")
    with tuned(), open_work_dir(out):
        return add(source, out, **kwargs)


def embeddings_argument(embeddings, features):
    """``embeddings``, or the deprecated ``features`` it replaces ("builtin" = None)."""
    if features is None:
        return None if isinstance(embeddings, str) and embeddings == "builtin" else embeddings
    if embeddings is not None:
        raise ValueError("pass embeddings= only (features= is its old, deprecated name)")
    if isinstance(features, str) and features == "builtin":
        return None
    warnings.warn("scan(features=...) is now scan(embeddings=...): the model's vectors feed "
                  "the semantic checks (label vote, outliers) and no longer change which images "
                  "are copies; features= will be removed in the next release",
                  DeprecationWarning, stacklevel=3)
    return features


def _thresholds(thresholds) -> Thresholds:
    if thresholds is None:
        return Thresholds()
    if isinstance(thresholds, Thresholds):
        return thresholds
    if isinstance(thresholds, dict):
        return Thresholds().replace(**thresholds)
    raise ValueError("thresholds must be a vislint.Thresholds or a dict like {'near_duplicate': 0.9}")


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


def _staged(stages, name: str, inputs: tuple, compute, done=None) -> dict:
    """``compute()`` (a dict of arrays), or what an earlier run of this scan saved for stage
    ``name`` from the same ``inputs`` (and vislint version) in ``stages`` (a
    :class:`vislint.workdir.StageCache`, or None: always compute); ``done()`` is called when
    the saved result is used."""
    if stages is None:
        return compute()
    key = StageCache.key(__version__, *inputs)
    got = stages.load(name, key)
    if got is not None:
        if done is not None:
            done()
        return got
    got = compute()
    stages.save(name, key, **got)
    return got

"""The copy index a scan saves beside its tables, so that a query (:mod:`vislint.lookup`) or a
scan with ``--reference`` reads a few files rather than every image's features from the cache.

Saved by scans of :data:`SAVED_FROM` images or more. Files, in the saved scan's tables folder
(committed with the tables), one row per valid image in table order:

- ``copy-vectors.npy``: float32[n, dim], the copy descriptor as the scan centred and
  normalised it (its kNN graph's vectors); ``copy-ivf.faiss`` beside it when n is over
  :data:`vislint.knn.EXACT_MAX`: :func:`vislint.knn.cross_index` of them. Images a scan adds
  (:func:`extend`) are parts of their own, ``copy-vectors-1.npy`` and so on, read with the
  first as one matrix (:class:`vislint.ondisk.Stacked`), and are added to the IVF's lists;
- ``rotation-vectors.npy`` / ``rotation-ivf.faiss``: the rotation rule's retrieval vectors of
  the images it may judge, centred the same way;
- ``copy-index.npz`` (written last): the layout's version and the grayscale threshold the scan
  used (``info``, JSON), both centrings (mean shift, grey colour block), the rows of the
  rotation vectors, float32[n, 4] of what the comparison reads of each image: its colour
  spread (``channel_diff``, for the grayscale rule), entropy and rotation info (2 values), and
  where each image is in the feature cache's chunk files (``cache_files``, relative to the
  work dir, and int32[n, 2] ``cache_locs``: :class:`vislint.workdir.CacheRows`), so that a
  query reads the thumbnails and polar grids of its candidates without opening the cache.

The query memory-maps the vectors and reads the two IVF indexes (0.5 GB at a million images)
instead of every image's features (4.4 GB): 10,000 new images against a million took 12 s
rather than 45 s (docs/query.md). Searches give what
:func:`vislint.knn.cross_neighbors` gives over the vectors fitted again from the cache (the same
centring, the same deterministic IVF), which the tests check. A query with another grayscale
threshold than the scan's centres differently, so it does not use the saved vectors.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _native, ondisk
from .checks.rotation import COLOUR_DIMS, judged
from .features import Centring
from . import knn
from .workdir import CacheRows, atomic_path

SAVED_FROM = 20_000
"""Valid images from which a scan saves its copy index. Below, a query fits the index's
features from the cache in about a second (3,000 indexed photos: 0.5 s), and writing the index
would add ~2 % to a scan of a few thousand images, which no query needs."""

VERSION = 1
"""Layout of the files; an index of another layout is not used (the query falls back to the
feature cache)."""

STATS = ("channel_diff", "entropy")
"""The statistics kept per image, followed by the two rotation info values."""

_BLOCK = 65_536
"""Rows copied at once into the index's vectors file."""


def write(folder: Path, *, rows: np.ndarray, copy: np.ndarray, copy_centring: Centring,
          stats: np.ndarray, rot_info: np.ndarray, retrieval: np.ndarray,
          grayscale_flags: np.ndarray, grayscale: float, cache_rows: CacheRows | None = None,
          work_dir: Path | None = None) -> None:
    """Save the index of a scan's valid images into ``folder``.

    The scan's arrays hold a row per image; ``rows`` (int64[n]) are the valid ones, in order.
    copy: float32[N, dim] the centred copy vectors, fitted by ``copy_centring``. stats:
    float[N, len(STAT_NAMES)] the native statistics; rot_info: float[N, 2]; retrieval:
    float32[N, dims] the rotation rule's raw retrieval vectors; grayscale_flags: bool[N];
    grayscale: the scan's grayscale threshold. cache_rows: where the valid images are in the
    feature cache of ``work_dir`` (the scan's work dir), saved with the index; None: not saved.
    """
    _vectors(folder, "copy", (len(rows), copy.shape[1]),
             lambda out: _copy_rows(ondisk.subset(copy, rows), out),
             same_file=getattr(copy, "filename", None) if len(rows) == len(copy) else None)
    at = [_native.STAT_NAMES.index(s) for s in STATS]
    kept = np.column_stack([stats[rows][:, at], rot_info[rows]]).astype(np.float32)
    # the rotation rule's vectors, centred on the images it may judge, as its search does
    judged_rows = np.flatnonzero(judged(np.ones(len(rows), bool), kept[:, 2:], kept[:, 1]))
    source = rows[judged_rows]
    judged_retrieval = ondisk.subset(retrieval, source)
    rotation_centring = (Centring.fit(judged_retrieval, COLOUR_DIMS, grayscale_flags[source])
                         if len(source) else None)
    _vectors(folder, "rotation", (len(source), retrieval.shape[1]),
             lambda out: rotation_centring.apply(judged_retrieval, grayscale_flags[source], out=out)
             if rotation_centring else None)
    fits = {"copy": copy_centring, "rotation": rotation_centring}
    info = {"version": VERSION, "grayscale": grayscale, "images": len(rows),
            "colour_dims": {name: [c.colour_dims.start, c.colour_dims.stop]
                            for name, c in fits.items() if c}}
    located = ({} if cache_rows is None else
               {"cache_files": np.array([str(Path(f).relative_to(work_dir)) for f in cache_rows.files]),
                "cache_locs": cache_rows.locs})
    # last: an index whose copy-index.npz exists is whole
    with atomic_path(folder / "copy-index.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, info=np.array(json.dumps(info)), stats=kept,
                 rotation_rows=judged_rows.astype(np.int64), **located,
                 **{f"{name}_{part}": getattr(c, part) for name, c in fits.items() if c
                    for part in ("shift", "grey") if getattr(c, part) is not None})


def extend(folder: Path, saved: "Saved", *, copy: np.ndarray, stats: np.ndarray,
           rot_info: np.ndarray, retrieval: np.ndarray, grayscale_flags: np.ndarray,
           cache_rows: CacheRows, work_dir: Path) -> None:
    """Save into ``folder`` the index ``saved`` with more images after its own (the valid
    images a scan adds, :mod:`vislint.adding`; one row each, in table order): their copy
    vectors ``copy`` (centred by the saved centring), native ``stats``, ``rot_info``, raw
    rotation ``retrieval`` vectors, ``grayscale_flags`` and ``cache_rows`` (where they are in
    the feature cache of ``work_dir``). The centrings stay the saved ones; the IVF indexes
    keep their lists and take the new vectors (one is made when the images first outgrow
    the exact search)."""
    n_old = len(saved.copy)
    _append(folder, "copy", saved.copy, copy, saved.copy_ivf)
    at = [_native.STAT_NAMES.index(s) for s in STATS]
    kept = np.column_stack([stats[:, at], rot_info]).astype(np.float32).reshape(-1, len(STATS) + 2)
    judged_rows = np.flatnonzero(judged(np.ones(len(kept), bool), kept[:, 2:], kept[:, 1]))
    rotation_centring = saved.rotation_centring
    if rotation_centring is None:  # no saved image could be judged: centred on the new ones
        rotation_centring = (Centring.fit(retrieval[judged_rows], COLOUR_DIMS,
                                          grayscale_flags[judged_rows]) if len(judged_rows) else None)
    added = (rotation_centring.apply(retrieval[judged_rows], grayscale_flags[judged_rows])
             if rotation_centring is not None else np.zeros((0, retrieval.shape[1]), np.float32))
    _append(folder, "rotation", saved.rotation, added, saved.rotation_ivf)
    fits = {"copy": saved.copy_centring, "rotation": rotation_centring}
    info = {"version": VERSION, "grayscale": saved.grayscale, "images": n_old + len(copy),
            "colour_dims": {name: [c.colour_dims.start, c.colour_dims.stop]
                            for name, c in fits.items() if c}}
    located = {}
    if saved.cache_locs is not None:  # the saved images' chunk files, then the new ones'
        files = list(saved.cache_files)
        number = {f: i for i, f in enumerate(files)}
        for f in cache_rows.files:
            name = str(Path(f).relative_to(work_dir))
            if name not in number:
                number[name] = len(files)
                files.append(name)
        remap = np.array([number[str(Path(f).relative_to(work_dir))] for f in cache_rows.files]
                         + [-1], np.int32)
        locs = cache_rows.locs.copy()
        locs[:, 0] = remap[locs[:, 0]]
        located = {"cache_files": np.array(files), "cache_locs": np.concatenate([saved.cache_locs, locs])}
    with atomic_path(folder / "copy-index.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, info=np.array(json.dumps(info)), stats=np.concatenate([saved.stats, kept]),
                 rotation_rows=np.concatenate([saved.rotation_rows, n_old + judged_rows]).astype(np.int64),
                 **located,
                 **{f"{name}_{part}": getattr(c, part) for name, c in fits.items() if c
                    for part in ("shift", "grey") if getattr(c, part) is not None})


@dataclass
class Saved:
    """A saved copy index, opened: the centrings, the memory-mapped vectors, the IVF indexes
    (None when the search is exact), the per-image statistics (:data:`STATS`, then the
    rotation info) and the grayscale threshold. ``rotation_rows`` are the rows (of the valid
    images) of the rotation vectors; ``rotation_centring`` is None when there are none.
    ``cache_files`` (relative to the work dir) and ``cache_locs``: where the images are in the
    feature cache, None in an index saved without them."""

    grayscale: float
    copy_centring: Centring
    copy: np.ndarray
    copy_ivf: object
    rotation_centring: Centring | None
    rotation: np.ndarray
    rotation_rows: np.ndarray
    rotation_ivf: object
    stats: np.ndarray
    cache_files: list | None = None
    cache_locs: np.ndarray | None = None

    @classmethod
    def open(cls, folder: Path) -> "Saved | None":
        """The index saved in ``folder``, or None when there is none of this layout."""
        try:
            with np.load(folder / "copy-index.npz", allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except (OSError, ValueError, zipfile.BadZipFile):  # none, or not readable
            return None
        info = json.loads(str(arrays.pop("info")))
        if info.get("version") != VERSION:
            return None
        fits = {name: Centring(arrays[f"{name}_shift"], arrays.get(f"{name}_grey"), slice(*dims))
                for name, dims in info["colour_dims"].items()}
        copy, copy_ivf = _open_vectors(folder, "copy")
        rotation, rotation_ivf = _open_vectors(folder, "rotation")
        return cls(info["grayscale"], fits["copy"], copy, copy_ivf, fits.get("rotation"),
                   rotation, arrays["rotation_rows"], rotation_ivf, arrays["stats"],
                   arrays["cache_files"].tolist() if "cache_files" in arrays else None,
                   arrays.get("cache_locs"))

    def copy_neighbors(self, raw: np.ndarray, grayscale: np.ndarray, k: int, threads: int):
        """The ``k`` indexed images nearest to each of these images (their raw descriptors,
        grayscale flags) in the copy descriptor: as :func:`vislint.knn.cross_neighbors`."""
        return knn.cross_neighbors(self.copy_centring.apply(raw, grayscale), self.copy,
                                   min(k, len(self.copy)), threads=threads, index=self.copy_ivf)

    def rotation_neighbors(self, retrieval: np.ndarray, grayscale: np.ndarray, k: int,
                           threads: int):
        """Likewise in the rotation rule's retrieval vectors; the neighbours are rows of
        :attr:`rotation` (:attr:`rotation_rows` maps them to the index's)."""
        return knn.cross_neighbors(self.rotation_centring.apply(retrieval, grayscale),
                                   self.rotation, min(k, len(self.rotation)), threads=threads,
                                   index=self.rotation_ivf)


def _vectors(folder: Path, name: str, shape: tuple[int, int], fill, same_file=None) -> None:
    """``<name>-vectors.npy``: float32[shape], written by ``fill(out)`` into the file's map
    (never all in memory), or a hard link to ``same_file`` (a ``.npy`` file of the scan that
    holds exactly these vectors: a large scan's) where the file system allows; and, beyond
    :data:`vislint.knn.EXACT_MAX` rows, ``<name>-ivf.faiss``, made from the written file."""
    import faiss

    path = folder / f"{name}-vectors.npy"
    with atomic_path(path) as tmp:
        if not _linked(same_file, tmp):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype="<f4", shape=shape)
            fill(out)
            out.flush()
            del out
    if shape[0] > knn.EXACT_MAX:
        with atomic_path(folder / f"{name}-ivf.faiss") as tmp:
            faiss.write_index(knn.cross_index(np.load(path, mmap_mode="r")), str(tmp))


def _append(folder: Path, name: str, saved, added: np.ndarray, ivf) -> None:
    """The vectors ``saved`` (a saved index's, mapped: one file or :class:`ondisk.Stacked`
    parts) and then ``added``, in ``folder``: the saved files linked there (copied where the
    file system cannot link), ``added`` a part of its own (:func:`_parts` names them); and,
    beyond :data:`vislint.knn.EXACT_MAX` rows, the IVF index: ``ivf`` (the saved one) with the
    added vectors, or one made now over all of them."""
    import faiss

    parts = getattr(saved, "parts", (saved,))
    for k, part in enumerate(parts):
        dest = folder / _part(name, k)
        source = getattr(part, "filename", None)  # (an empty part is not mapped)
        if source is None or not _linked(source, dest):
            with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                np.save(f, np.asarray(part, np.float32))
    if len(added):
        with atomic_path(folder / _part(name, len(parts))) as tmp, open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(added, np.float32))
    total = len(saved) + len(added)
    if total > knn.EXACT_MAX:
        if ivf is not None:
            ivf = faiss.clone_index(ivf)  # (the saved one stays as it was)
            if len(added):
                ivf.add(np.ascontiguousarray(added, np.float32))
        else:
            ivf = knn.cross_index(_open_parts(folder, name))
        with atomic_path(folder / f"{name}-ivf.faiss") as tmp:
            faiss.write_index(ivf, str(tmp))


def _part(name: str, k: int) -> str:
    """The file of part ``k`` of an index's vectors: the scan's, then one per add."""
    return f"{name}-vectors.npy" if k == 0 else f"{name}-vectors-{k}.npy"


def _open_parts(folder: Path, name: str):
    """The vectors ``name`` of an index: one map, or the :class:`ondisk.Stacked` maps of its
    parts."""
    parts = [np.load(folder / _part(name, 0), mmap_mode="r")]
    while (folder / _part(name, len(parts))).exists():
        parts.append(np.load(folder / _part(name, len(parts)), mmap_mode="r"))
    return parts[0] if len(parts) == 1 else ondisk.Stacked(parts)


def _linked(source, path: Path) -> bool:
    """Make ``path`` a hard link to ``source`` (None: nothing to link); False where that
    cannot be done (another file system, one without links)."""
    if source is None:
        return False
    try:
        path.unlink(missing_ok=True)
        os.link(source, path)
        return True
    except OSError:
        return False


def _copy_rows(x, out) -> None:
    """``out[:] = x`` block by block (both may be maps: their pages released as they go)."""
    for start, block in ondisk.blockwise(x, _BLOCK):
        out[start:start + len(block)] = block
        ondisk.release(out)


def _open_vectors(folder: Path, name: str) -> tuple[np.ndarray, object]:
    """(the memory-mapped vectors, their IVF index or None)."""
    import faiss

    ivf = folder / f"{name}-ivf.faiss"
    return _open_parts(folder, name), faiss.read_index(str(ivf)) if ivf.exists() else None

"""Per-image matrices kept in a file of the work dir rather than in memory (large scans).

At a million images the copy descriptor alone is 1.8 GB of float32 and the rotation rule's
vectors 0.6 GB; held in memory with the rest of a scan they made its peak 11 GiB. A large scan
(:data:`vislint.pipeline.ON_DISK_FROM`) therefore writes them to ``.npy`` files and every
stage reads them through a memory map, in file order, block by block.

A memory map's pages stay mapped, and counted in the process's memory, once read: a pass over
a 1.8 GB map would hold 1.8 GB. :func:`release` hands them back to the kernel's page cache
(``madvise(MADV_DONTNEED)``): the data stays cached by the system while it has room, and a
process that reads its vectors again pays at most a disk read, so what the scan holds stays
bounded by the block it is working on. The loops that read such a matrix call it after every
block; on an array in memory it does nothing, so the same code serves small scans.

Rows wanted in scattered order (a sample, the candidates a search re-ranks) are read in file
order too (:func:`take`, :func:`vislint.knn.knn_graph`'s re-ranking): every row read from a
map also maps its neighbourhood (the kernel's fault-around, up to a whole page-cache folio),
so 20,000 rows read in scattered order mapped most of a 1.8 GB file between two releases.
"""
from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

RELEASE_ROWS = 65_536
"""Rows of a map read between two releases (115 MB of copy vectors)."""


def create(path: Path, shape: tuple[int, ...], dtype=np.float32) -> np.memmap:
    """A new ``.npy`` file of zeros at ``path`` (replacing any), mapped for writing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a new file, not the old one truncated: results still mapping the old one keep it
    path.unlink(missing_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def release(x) -> None:
    """Hand the pages of a memory-mapped array that this process has read or written back to
    the page cache (written pages are kept there and reach the file; nothing is lost); no-op
    for arrays in memory and for views that own no map. A :class:`Stacked` releases each part."""
    for part in getattr(x, "parts", (x,)):
        m = getattr(part, "_mmap", None)  # (np.memmap keeps its mmap object there, views too)
        if m is not None and not m.closed:
            m.madvise(mmap.MADV_DONTNEED)


def blockwise(x, block: int = RELEASE_ROWS):
    """(start, x[start:start + block]) for each block of rows of ``x``, the map's pages released
    after each block (:func:`release`)."""
    for start in range(0, len(x), block):
        yield start, x[start:start + block]
        release(x)


def take(x, rows) -> np.ndarray:
    """``x[rows]`` (rows: an int array or a slice) as an array in memory. From a map the rows
    are read in file order, block by block of :data:`RELEASE_ROWS`, its pages released after
    each: rows read in scattered order are not bounded (the kernel maps the neighbourhood of
    every row read, up to a large page-cache folio: 20,000 scattered rows mapped most of a
    1.8 GB file)."""
    if getattr(x, "_mmap", None) is None:
        return np.asarray(x[rows])
    idx = np.arange(len(x))[rows] if isinstance(rows, slice) else np.asarray(rows, np.int64)
    order = np.argsort(idx, kind="stable")
    ordered = idx[order]
    out = np.empty((len(idx),) + tuple(x.shape[1:]), x.dtype)
    bounds = np.searchsorted(ordered, np.arange(0, len(x) + RELEASE_ROWS, RELEASE_ROWS))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if lo < hi:
            out[order[lo:hi]] = x[ordered[lo:hi]]
            release(x)
    return out


class Rows:
    """The rows ``rows`` of a matrix ``x`` (an array or a map), indexed as an array of those
    rows would be (``len``, ``shape``, ``r[i]``, ``r[a:b]``, ``r[int array of any shape]``,
    and assigned to likewise) without copying them: a search over a large scan's valid
    images reads them from its vectors file as it goes."""

    def __init__(self, x, rows: np.ndarray):
        self.x, self.rows = x, np.asarray(rows, np.int64)
        self.shape = (len(self.rows),) + x.shape[1:]
        self.dtype = x.dtype
        self._mmap = getattr(x, "_mmap", None)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        return np.asarray(self.x[self.rows[key]])

    def __setitem__(self, key, value) -> None:
        self.x[self.rows[key]] = value


def subset(x, rows: np.ndarray):
    """``x`` itself when ``rows`` (sorted, distinct) are all its rows, else :class:`Rows` of
    them: reading it reads those rows, writing to it writes them into ``x``."""
    if len(rows) == len(x):
        return x
    return Rows(x, rows)


def all_rows(values: np.ndarray, rows: np.ndarray, n: int, fill) -> np.ndarray:
    """An array of ``n`` rows holding ``values`` at ``rows`` and ``fill`` elsewhere
    (``values`` itself when ``rows`` are all n rows, in order)."""
    if len(rows) == n:
        return values
    out = np.full((n,) + values.shape[1:], fill, values.dtype)
    out[rows] = values
    return out


class Stacked:
    """Matrices with the same columns (maps of ``.npy`` files, one after the other) read as
    one, without copying them into one file: ``len``, ``shape``, ``dtype``, rows by a slice
    or an int array (in memory), :func:`release` and :func:`take`. A saved copy index grows
    this way: the images a scan adds are a new part, and the saved parts are linked, not
    copied (at a million images, 2.4 GB)."""

    def __init__(self, parts: list):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self.starts[-1]),) + tuple(parts[0].shape[1:])
        self.dtype = parts[0].dtype
        self._mmap = getattr(parts[0], "_mmap", None)  # (read as a map: in file order)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("a Stacked matrix is read by slices of consecutive rows")
            pieces = [p[max(start - a, 0):max(min(stop - a, len(p)), 0)]
                      for p, a in zip(self.parts, self.starts[:-1].tolist())
                      if a < stop and a + len(p) > start]
            if not pieces:
                return np.empty((0,) + self.shape[1:], self.dtype)
            return np.concatenate(pieces) if len(pieces) > 1 else np.asarray(pieces[0])
        rows = np.asarray(key, np.int64)
        part = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty(rows.shape + self.shape[1:], self.dtype)
        for k in np.unique(part).tolist():
            at = part == k
            out[at] = self.parts[k][rows[at] - self.starts[k]]
        return out

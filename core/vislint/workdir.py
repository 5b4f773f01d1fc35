"""The work dir: atomic writes and the per-image feature cache that makes scans resumable.

Layout of a work dir (``--out``)::

    manifest.json           format version, parameters, provenance, and which tables
                            folder is current (written last: it commits a scan)
    tables-<id>/            the tables of one saved scan:
        images.parquet      one row per image (see ScanResults)
        groups.parquet      group memberships per check
        pairs.parquet       image pairs per check
        graph-<space>.npz   the kNN graph of each feature space
        copy-*, rotation-*  the copy index that queries search (vislint.copy_index)
    cache/<key>/chunk-*.npz per-image descriptors, statistics and hashes, keyed by
                            the file's content hash (blake2b-128)
    cache/onnx-<sha>-<spec>/ per-image vectors of one ONNX model (its file's SHA-256)
                            and preprocessing, keyed the same way
    .vislint-output         marks the folder as vislint's output (a folder walk skips it)
    .lock                   held by the scan writing here (who holds it, inside)

Every file is written to a temporary name in the same folder and moved into
place with ``os.replace``, so a crash never leaves a half-written file. A scan's
tables go to a new ``tables-<id>`` folder, and the manifest naming it replaces
the old one in one rename, so a work dir always holds one complete scan: the old
one until that rename, the new one after (older tables folders are removed
then). One scan at a time writes a work dir (:func:`open_work_dir`). The
cache is appended chunk by chunk while a scan runs: a scan killed at any point
(Ctrl-C, ``kill -9``) resumes from the last chunk written, and a re-scan of a
folder only decodes files whose bytes are new.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .catalog import WORKDIR_MARKER

LOCK_FILE = ".lock"
"""The file a scan holds locked (``flock``) while it writes a work dir."""


class WorkDirError(RuntimeError):
    """A work dir that cannot be used now: read-only, held by another scan, or whose feature
    cache no longer holds what its saved scan says (changed or damaged since)."""


@contextmanager
def atomic_path(path: str | Path, fsync: bool = True):
    """Yield a temporary path beside ``path``; move it over ``path`` on success.

    fsync: flush the file to disk before the move (default True), so that even a power cut
    leaves the old file or the whole new one; False for files cheap to make again.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def mark_output(folder: str | Path) -> None:
    """Write the marker that makes a folder walk skip ``folder`` (vislint's own output)."""
    marker = Path(folder) / WORKDIR_MARKER
    if not marker.exists():
        marker.write_text("vislint output (work dir or report thumbnails); scans skip this "
                          "folder\n", encoding="utf-8")


@contextmanager
def open_work_dir(out: str | Path):
    """Create the work dir ``out`` if needed, check that it can be written, and hold its lock
    while the block runs (released when it ends, or when the process dies, even by
    ``kill -9``).

    Raises :class:`WorkDirError` when ``out`` cannot be written (read-only, permissions) or
    another scan holds it (the message says which process, since when). Nested calls in one
    process share the lock (a command holds it across the scan and its report).
    """
    import fcntl

    out = Path(out)
    key = os.path.realpath(out)
    if key in _held:
        yield out
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        mark_output(out)
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        raise WorkDirError(f"cannot write to the work dir {out} ({e.strerror or e}); choose a "
                           "writable folder for --out") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise WorkDirError(f"the work dir {out} is in use by another vislint scan ({holder}); "
                           "wait for it to finish, or choose another --out") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)[:500]}"
                     .encode("utf-8", "backslashreplace"))
        _held.add(key)
        yield out
    finally:
        _held.discard(key)
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def reading_work_dir(path: str | Path):
    """Hold the work dir's lock shared while the block reads it (a query, :mod:`vislint.lookup`): a scan, which holds
    it alone, cannot start meanwhile, and a work dir a scan holds raises
    :class:`WorkDirError`. Nothing is written: a work dir without a lock file (saved by
    :meth:`vislint.ScanResults.save` outside a scan) is read without one."""
    import fcntl

    path = Path(path)
    if os.path.realpath(path) in _held:  # this process is writing it
        yield path
        return
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        yield path
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            raise WorkDirError(f"the work dir {path} is in use by a vislint scan ({holder}); "
                               "wait for it to finish") from None
        yield path
    finally:
        os.close(fd)


_held: set[str] = set()
"""Real paths of the work dirs this process holds locked (see :func:`open_work_dir`)."""


FORMAT_VERSION = 2
"""Of a saved scan. 2: tables (and kNN graphs) in the folder the manifest names (1: tables
beside the manifest; still read)."""


def read_manifest(path: str | Path) -> dict:
    """The manifest of the work dir ``path`` ({} when there is none)."""
    try:
        return json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def saved_scan(path: Path) -> tuple[Path, dict]:
    """(the folder holding the tables of the scan saved in the work dir ``path``, the scan's
    info from its manifest without the format keys). Raises FileNotFoundError when ``path``
    holds no saved scan, ValueError for a format this version does not read."""
    info = read_manifest(path)
    if not info:
        raise FileNotFoundError(f"{path} holds no saved scan (no manifest.json); run "
                                f"`vislint scan DATA --out {path}` first")
    version = info.pop("format_version", None)
    if version not in (1, FORMAT_VERSION):
        raise ValueError(f"{path} was written in results format {version}; this vislint reads "
                         f"formats 1 and {FORMAT_VERSION}. Re-run the scan to rewrite it.")
    return (path / info.pop("tables") if version == FORMAT_VERSION else path), info


def write_json(path: str | Path, obj) -> None:
    """Write JSON atomically (UTF-8, indented)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default),
                       encoding="utf-8")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class StageCache:
    """What the long stages after decoding computed (the kNN graphs, the rotation rule's
    candidates, the appearance distances), kept in the work dir so that a scan killed after
    them (by Ctrl-C, ``kill -9``, a full disk while writing its tables) does not compute them
    again when it resumes. Each result is keyed by a digest of everything it was computed
    from; one file per stage (``<stage>-<key>.npz``), the latest only."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(*inputs) -> str:
        """A digest of ``inputs``: arrays (dtype, shape and bytes; in memory or mapped from a
        file), lists of str, and plain values (their repr)."""
        import hashlib

        from . import ondisk

        h = hashlib.blake2b(digest_size=16)
        for x in inputs:
            if isinstance(x, np.ndarray):
                h.update(f"{x.dtype.str}{x.shape}".encode())
                for _, block in ondisk.blockwise(x) if x.ndim else [(0, x)]:  # (mapped: released)
                    h.update(memoryview(np.ascontiguousarray(block)).cast("B"))
            elif isinstance(x, list):
                h.update("\n".join("" if v is None else str(v) for v in x).encode("utf-8", "surrogateescape"))
            else:
                h.update(repr(x).encode())
            h.update(b"|")
        return h.hexdigest()

    def load(self, stage: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays saved for ``stage`` under ``key``, or None (none saved, other inputs,
        or a file that cannot be read: the stage is computed again)."""
        try:
            with np.load(self.root / f"{stage}-{key}.npz", allow_pickle=False) as z:
                return {name: z[name] for name in z.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def save(self, stage: str, key: str, **arrays) -> None:
        """Save ``arrays`` for ``stage`` under ``key`` (atomically), replacing older ones."""
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.root / f"{stage}-{key}.npz", fsync=False) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        for old in self.root.glob(f"{stage}-*.npz"):
            if old.name != f"{stage}-{key}.npz":
                old.unlink(missing_ok=True)


CACHE_FIELDS = ("hash", "raw", "stats", "thumb", "rot", "polar", "rot_info", "width", "height",
                "frames", "format", "mode")
"""Arrays of one cache chunk, aligned by row."""
CACHE_LAYOUT = 3
"""Part of the cache folder's name, raised when :data:`CACHE_FIELDS` change (2: the grey
thumbnails that verify near duplicates replaced the perceptual hashes; 3: five detail
shares in the image statistics)."""


class FeatureCache:
    """Per-image results keyed by content hash, stored as append-only chunks.

    ``root``: the cache folder for one feature extractor (its version is part of
    the folder name, so vectors of different extractors never mix); ``None``
    keeps everything in memory. ``fields``: the arrays of a chunk, "hash" first
    (default :data:`CACHE_FIELDS`). ``on_disk``: fields kept in the chunk files only, not
    in memory (with a root), read back from the files by :meth:`gather`. ``check``: read the
    on-disk fields of every chunk once when opening (a damaged chunk is then left out and its
    images described again); a reader that only gathers a few rows (a query) skips it, and a
    damaged chunk raises when read. ``skip``: chunk files not to open (their images are known
    from elsewhere: a scan adding images to a saved one, whose copy index says where its
    images are, opens only the chunks written since).
    """

    def __init__(self, root: str | Path | None, fields: tuple[str, ...] = CACHE_FIELDS,
                 on_disk: tuple[str, ...] = (), check: bool = True, skip=frozenset()):
        self.root = Path(root) if root is not None else None
        self.fields = fields
        self.on_disk = frozenset(on_disk) if self.root is not None else frozenset()
        self._chunks: list[dict[str, np.ndarray]] = []
        self._files: list[Path | None] = []
        self._index: dict[str, tuple[int, int]] = {}
        self._written = 0  # chunk files found or written: new ones are numbered after them
        if self.root is not None and self.root.is_dir():
            for f in sorted(self.root.glob("chunk-*.npz")):
                self._written += 1
                if f in skip:
                    continue
                try:
                    with np.load(f, allow_pickle=False) as z:
                        chunk = {name: z[name] for name in fields if name not in self.on_disk}
                        if check:  # the on-disk fields read once (zip CRC checked), not kept
                            for name in self.on_disk:
                                z[name]
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                    # damaged (a disk error, a copy cut short): what it held is recomputed
                    warnings.warn(f"vislint: ignoring the damaged cache file {f} ({e}); its "
                                  "images are described again", stacklevel=2)
                    continue
                self._register(chunk, f)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._index

    def hashes(self) -> set[str]:
        return set(self._index)

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        """Store one chunk (arrays named as ``fields``, aligned by row)."""
        if len(chunk["hash"]) == 0:
            return
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            name = f"chunk-{self._written:06d}-{os.getpid()}.npz"
            self._written += 1
            # not flushed to disk: a chunk a power cut damages fails its zip CRC on loading
            # and its images are described again (it is a cache)
            with atomic_path(self.root / name, fsync=False) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, **chunk)
            self._register({k: v for k, v in chunk.items() if k not in self.on_disk},
                           self.root / name)
        else:
            self._register(chunk, None)

    def gather(self, content_hashes: list[str], fields: tuple[str, ...] | None = None,
               drop: bool = False) -> dict[str, np.ndarray]:
        """Arrays for the given hashes, in that order (every hash must be cached): of every
        field but "hash", or of ``fields``. drop: take the fields out of the cache's chunks
        as they are gathered (they are then no longer cached in memory), so that the chunks
        and the gathered copy of all fields are never held at once — at a million images
        that is gigabytes."""
        locs = np.array([self._index[h] for h in content_hashes], dtype=np.int64).reshape(-1, 2)
        sizes = [len(c["hash"]) for c in self._chunks]
        rows = (np.cumsum([0] + sizes)[locs[:, 0]] + locs[:, 1]) if len(locs) else np.zeros(0, np.int64)
        # every cached row once, in cache order (as after a fresh scan): no reordering copy
        in_order = len(rows) == sum(sizes) and bool((rows == np.arange(len(rows))).all())
        out = {}
        for name in fields or self.fields[1:]:
            if name in self.on_disk:
                out[name] = self._read(name, locs)
                continue
            parts = [c[name] for c in self._chunks]
            stacked = np.concatenate(parts) if parts else np.empty(0)
            out[name] = stacked if in_order else stacked[rows]
            if drop:
                del parts, stacked
                for c in self._chunks:
                    del c[name]
        if drop:
            self.fields = tuple(f for f in self.fields if f not in out or f in self.on_disk)
        return out

    def gather_file(self, name: str, content_hashes: list, path: Path) -> np.memmap:
        """Field ``name`` (an on-disk one) of the given hashes, in that order, written to the
        ``.npy`` file ``path`` and returned mapped from it (read and write): row i holds the
        field of ``content_hashes[i]``, zeros where that is None. Read chunk file by chunk
        file, so it is never all in memory (see :mod:`vislint.ondisk`)."""
        from . import ondisk

        at = np.array([i for i, h in enumerate(content_hashes) if h is not None], np.int64)
        locs = np.array([self._index[content_hashes[i]] for i in at.tolist()],
                        np.int64).reshape(-1, 2)
        out = None
        by_chunk = np.argsort(locs[:, 0], kind="stable")
        chunks, starts = np.unique(locs[by_chunk, 0], return_index=True)
        written = 0
        for ci, sel in zip(chunks.tolist(), np.split(by_chunk, starts[1:])):
            values = self._read(name, np.column_stack([np.full(len(sel), ci), locs[sel, 1]]))
            if out is None:
                out = ondisk.create(path, (len(content_hashes),) + values.shape[1:], values.dtype)
            out[at[sel]] = values
            written += len(sel)
            if written >= ondisk.RELEASE_ROWS:
                ondisk.release(out)
                written = 0
        if out is None:  # no row: the field's shape is not known, an empty file stands for it
            out = ondisk.create(path, (len(content_hashes), 0), np.float32)
        ondisk.release(out)
        return out

    def reader(self, content_hashes: list):
        """``read(name, rows)``: field ``name`` of the images ``content_hashes[rows]`` (rows: a
        list or int array; a None hash is an image not cached, never to be read). For the
        on-disk fields it is :meth:`locations`, which holds only the chunk files' names and an
        int32 location per image, not the cache, so that a large scan can let the cache go
        once it has gathered the rest (at a million images its hash index is hundreds of MB)."""
        if self.on_disk:
            return self.locations(content_hashes)
        return lambda name, rows: self.gather([content_hashes[r] for r in rows],
                                              fields=(name,))[name]

    def locations(self, content_hashes: list) -> "CacheRows":
        """Where the images ``content_hashes`` (None: an image not cached) are in the chunk
        files (a cache with a root)."""
        locs = np.array([self._index[h] if h is not None else (-1, -1) for h in content_hashes],
                        np.int32).reshape(-1, 2)
        return CacheRows(list(self._files), locs)

    def _read(self, name: str, locs: np.ndarray) -> np.ndarray:
        """Field ``name`` of the rows at ``locs`` ((chunk, row) pairs), read from the chunk
        files, each file once."""
        return _read_rows(self._files, name, locs)

    def _register(self, chunk: dict[str, np.ndarray], file: Path | None) -> None:
        ci = len(self._chunks)
        self._chunks.append(chunk)
        self._files.append(file)
        for row, h in enumerate(chunk["hash"].tolist()):
            self._index.setdefault(h, (ci, row))


class CacheRows:
    """Where some images are in a cache's chunk files, to read their fields without the cache.

    ``files``: the chunk files (paths); ``locs``: int32[n, 2], each image's chunk (an index
    into ``files``) and row, -1 for an image not cached (never to be read); ``hashes``: the
    images' content hashes, or None. Called as ``rows_in_cache(name, rows)``: field ``name``
    of the images ``rows`` (a list or int array), reading only those rows of each file. With
    ``hashes``, every read also checks the rows' hashes, so that locations kept apart from the
    cache (a saved copy index's) raise rather than give another image's field once the cache
    has changed.
    """

    def __init__(self, files: list, locs: np.ndarray, hashes: list | None = None):
        self.files, self.locs, self.hashes = files, locs, hashes

    def __len__(self) -> int:
        return len(self.locs)

    def take(self, rows) -> "CacheRows":
        """The locations of the images ``rows`` only."""
        rows = np.asarray(rows, np.int64)
        return CacheRows(self.files, self.locs[rows],
                         None if self.hashes is None else [self.hashes[r] for r in rows])

    def __call__(self, name: str, rows) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        locs = self.locs[rows]
        if not len(rows):
            return np.empty(0)
        if (locs < 0).any():
            raise ValueError("an image that is not in the cache cannot be read from it")
        if self.hashes is None:
            return _read_rows(self.files, name, locs)
        values, found = _read_rows(self.files, name, locs, with_hash=True)
        expected = [self.hashes[r] for r in rows.tolist()]
        if found.tolist() != expected:
            folder = Path(self.files[0]).parent
            raise WorkDirError(f"the feature cache {folder} changed after the scan that indexed "
                               "it: scan the images again with the same --out")
        return values


def _read_rows(files: list, name: str, locs: np.ndarray, with_hash: bool = False):
    """Field ``name`` of the rows at ``locs`` ((chunk, row) pairs) of the cache files
    ``files``, each file opened once and only those rows read (:func:`_member_rows`); with
    ``with_hash``, (the field, the rows' content hashes)."""
    out = hashes = None
    by_chunk = np.argsort(locs[:, 0], kind="stable")
    chunks, starts = np.unique(locs[by_chunk, 0], return_index=True)
    names = (name, "hash") if with_hash else (name,)
    for ci, sel in zip(chunks.tolist(), np.split(by_chunk, starts[1:])):
        try:
            values = _member_rows(files[ci], names, locs[sel, 1])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise WorkDirError(f"the cache file {files[ci]} cannot be read ({e}); delete "
                               f"{Path(files[ci]).parent} and scan again") from e
        if out is None:
            out = np.empty((len(locs),) + values[0].shape[1:], values[0].dtype)
            hashes = np.empty(len(locs), object)
        out[sel] = values[0]
        if with_hash:
            hashes[sel] = values[1]
    if out is None:
        out, hashes = np.empty(0), np.empty(0, object)
    return (out, hashes) if with_hash else out


def _member_rows(path, names: tuple[str, ...], rows: np.ndarray) -> list[np.ndarray]:
    """Rows ``rows`` of the arrays ``names`` of the ``.npz`` file ``path``, reading only them.

    The cache writes its chunks with :func:`numpy.savez`, whose members are stored
    uncompressed: a member's array sits at a fixed offset in the file, behind the zip entry's
    local header and the ``.npy`` header, so its rows are mapped from there rather than the
    whole member read (a candidate pair needs one 4 kB thumbnail of a chunk's 2 MB). Such a
    read skips the member's zip CRC: a chunk damaged on disk gives wrong values, not an error
    (a scan opening the cache reads every member once with its CRC: see
    :class:`FeatureCache`). A compressed member is read whole."""
    rows = np.asarray(rows, np.int64)
    out = []
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for name in names:
            info = z.getinfo(f"{name}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with z.open(info) as member:
                    out.append(np.lib.format.read_array(member, allow_pickle=False)[rows])
                continue
            f.seek(info.header_offset)
            local = f.read(30)  # the local file header: name and extra lengths at 26-29
            if local[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"no local header for {name}.npy")
            f.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                   + int.from_bytes(local[28:30], "little"))
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(f))
            if fortran or dtype.hasobject:
                raise ValueError(f"{name}.npy is not a plain C-ordered array")
            data = np.memmap(f, dtype=dtype, mode="r", offset=f.tell(), shape=tuple(shape))
            out.append(np.array(data[rows]))
            del data
    return out

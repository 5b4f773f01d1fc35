"""The work dir: atomic writes and the per-image feature cache that makes scans resumable.

Layout of a work dir (``--out``)::

    manifest.json           format version, parameters, provenance (written last)
    images.parquet          one row per image (see ScanResults)
    groups.parquet          group memberships per check
    pairs.parquet           image pairs per check
    cache/<key>/chunk-*.npz per-image descriptors, statistics and hashes, keyed by
                            the file's content hash (blake2b-128)
    cache/onnx-<sha>-<spec>/ per-image vectors of one ONNX model (its file's SHA-256)
                            and preprocessing, keyed the same way

Every file is written to a temporary name in the same folder and moved into
place with ``os.replace``, so a crash never leaves a half-written file. The
cache is appended chunk by chunk while a scan runs: a scan killed at any point
(Ctrl-C, ``kill -9``) resumes from the last chunk written, and a re-scan of a
folder only decodes files whose bytes are new.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; move it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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


CACHE_FIELDS = ("hash", "raw", "stats", "phash", "rot", "polar", "rot_info", "width", "height",
                "frames", "format", "mode")
"""Arrays of one cache chunk, aligned by row."""


class FeatureCache:
    """Per-image results keyed by content hash, stored as append-only chunks.

    ``root``: the cache folder for one feature extractor (its version is part of
    the folder name, so vectors of different extractors never mix); ``None``
    keeps everything in memory. ``fields``: the arrays of a chunk, "hash" first
    (default :data:`CACHE_FIELDS`).
    """

    def __init__(self, root: str | Path | None, fields: tuple[str, ...] = CACHE_FIELDS):
        self.root = Path(root) if root is not None else None
        self.fields = fields
        self._chunks: list[dict[str, np.ndarray]] = []
        self._index: dict[str, tuple[int, int]] = {}
        if self.root is not None and self.root.is_dir():
            for f in sorted(self.root.glob("chunk-*.npz")):
                try:
                    with np.load(f, allow_pickle=False) as z:
                        chunk = {name: z[name] for name in fields}
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                    # damaged (a disk error, a copy cut short): what it held is recomputed
                    warnings.warn(f"vislint: ignoring the damaged cache file {f} ({e}); its "
                                  "images are described again", stacklevel=2)
                    continue
                self._register(chunk)

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
            name = f"chunk-{len(self._chunks):06d}-{os.getpid()}.npz"
            with atomic_path(self.root / name) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, **chunk)
        self._register(chunk)

    def gather(self, content_hashes: list[str]) -> dict[str, np.ndarray]:
        """Arrays for the given hashes, in that order (every hash must be cached)."""
        locs = np.array([self._index[h] for h in content_hashes], dtype=np.int64).reshape(-1, 2)
        sizes = [len(c["hash"]) for c in self._chunks]
        rows = (np.cumsum([0] + sizes)[locs[:, 0]] + locs[:, 1]) if len(locs) else np.zeros(0, np.int64)
        # every cached row once, in cache order (as after a fresh scan): no reordering copy
        in_order = len(rows) == sum(sizes) and bool((rows == np.arange(len(rows))).all())
        out = {}
        for name in self.fields[1:]:
            parts = [c[name] for c in self._chunks]
            stacked = np.concatenate(parts) if parts else np.empty(0)
            out[name] = stacked if in_order else stacked[rows]
        return out

    def _register(self, chunk: dict[str, np.ndarray]) -> None:
        ci = len(self._chunks)
        self._chunks.append(chunk)
        for row, h in enumerate(chunk["hash"].tolist()):
            self._index.setdefault(h, (ci, row))

"""Before a scan decodes anything: will its work dir and its memory fit on this machine?

A scan of millions of images that runs out of disk or memory after an hour has wasted the
hour. So a scan first estimates what it needs, from per-image costs measured on this engine
(docs/benchmarks.md), and stops with a message saying what is missing, how much, and what to
do — before it has decoded or written anything:

- **disk**: the work dir's feature cache (:data:`CACHE_BYTES` an image not cached yet), its
  tables (:data:`TABLE_BYTES` an image), from 20,000 images its copy index
  (:data:`INDEX_BYTES` an image), and for a large scan its vector files
  (:data:`VECTORS_BYTES` an image);
- **memory**: :data:`MEMORY_BASE` plus a cost per image (:data:`MEMORY_BYTES` for a large scan,
  which keeps what is large per image in its work dir; :data:`MEMORY_BYTES_SMALL` when all of
  it stays in memory: scans of at most :data:`vislint.pipeline.ON_DISK_FROM` images, or without
  a work dir), against a limit: ``memory_limit`` (GiB), by default :data:`AVAILABLE_SHARE` of
  the memory available now.

These are estimates of a peak, not a bound the scan enforces while it runs; the measured
peaks they come from are in docs/benchmarks.md.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

GIB = 2**30

CACHE_BYTES = 8_900
"""Work-dir cache per image (a 200,000-image scan: 1.76 GB, 8.8 kB an image)."""
TABLE_BYTES = 300
"""Result tables per image (the same scan: 55 MB)."""
INDEX_BYTES = 3_000
"""The copy index saved with the tables of a large scan (:mod:`vislint.copy_index`: 1.8 kB of
copy vectors, up to 0.6 kB of rotation vectors, 0.5 kB of IVF lists; a million images: 3.0 GB).
A scan again of a work dir briefly holds the last scan's too, while most of its images are
already cached (their cache costs nothing new)."""
VECTORS_BYTES = 3_100
"""A large scan's vector files in its work dir (:data:`vislint.pipeline.ON_DISK_FROM`): the
copy vectors (1.8 kB an image, kept: its results map them, and its copy index links them) and
the rotation rule's vectors (2 × 0.64 kB, removed when the scan ends)."""
MEMORY_BASE = 0.6 * GIB
"""Peak memory of a scan of a few images: the interpreter, NumPy, faiss, Arrow."""
MEMORY_BYTES = 2_800
"""Peak memory per image of a large scan (a work dir, beyond
:data:`vislint.pipeline.ON_DISK_FROM` images), whose vectors, thumbnails and polar grids stay
in the work dir (measured peak PSS of the process tree, docs/benchmarks.md: 200,000 images
1.21 GiB, 1,000,000 images 2.86 GiB)."""
MEMORY_BYTES_SMALL = 17_300
"""Peak memory per image of a scan that holds every image's vectors (2.4 kB), grey thumbnail
(4 kB) and polar grid (2 kB) in memory: the scans of at most
:data:`vislint.pipeline.ON_DISK_FROM` images, and any scan without a work dir (measured with
all of them in memory: 200,000 images 4.06 GiB; 1,000,000 images killed at 24 GB)."""
AVAILABLE_SHARE = 0.9
"""Share of the memory available at the start that a scan may plan to use by default."""


class BudgetError(ValueError):
    """A scan that would not fit in the disk or memory it has: raised before it starts (the
    command exits with 2, as for any input it cannot use)."""


def check(n: int, uncached: int, out, *, on_disk: bool, saves_index: bool = False,
          memory_limit: float | None = None) -> None:
    """Raise :class:`BudgetError` when a scan of ``n`` images, ``uncached`` of them not in the
    work dir's cache yet, would not fit: in the free space of the work dir ``out`` (None: no
    disk used; ``saves_index``: with a copy index; ``on_disk``: a large scan, see
    :data:`vislint.pipeline.ON_DISK_FROM`) or in ``memory_limit`` GiB (None:
    :data:`AVAILABLE_SHARE` of the memory available now; where the system does not say,
    memory is not checked)."""
    if out is not None:
        need = uncached * CACHE_BYTES + n * (TABLE_BYTES + (INDEX_BYTES if saves_index else 0)
                                             + (VECTORS_BYTES if on_disk else 0))
        free = shutil.disk_usage(_existing(Path(out))).free
        if need > free:
            raise BudgetError(
                f"the work dir {out} needs about {_gib(need)} for {n:,} images "
                f"({uncached:,} not cached yet: ~{CACHE_BYTES / 1000:.1f} kB each) and its disk "
                f"has {_gib(free)} free; free some space or choose another --out")
    need = MEMORY_BASE + n * (MEMORY_BYTES if on_disk else MEMORY_BYTES_SMALL)
    if memory_limit is not None:
        limit, what = memory_limit * GIB, f"the limit of {memory_limit:g} GiB (--memory-limit)"
    else:
        available = available_memory()
        if available is None:
            return
        limit = AVAILABLE_SHARE * available
        what = (f"{AVAILABLE_SHARE:.0%} of the {_gib(available)} available "
                "(--memory-limit GIB sets another limit)")
    if need > limit:
        raise BudgetError(
            f"a scan of {n:,} images needs about {_gib(need)} of memory at its peak, over {what}; "
            "scan fewer images at a time, or on a machine with more memory"
            + ("" if out is not None or on_disk else
               " (a work dir, --out, keeps part of it on disk beyond 100,000 images)"))


def available_memory() -> int | None:
    """Bytes of memory available to new work now (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (a work dir may not exist yet)."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(os.sep)


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"

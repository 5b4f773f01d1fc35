"""Process-level settings a scan makes while it runs, for the Python call and the command
alike (restored when it ends):

- Python's garbage collector runs 100 times less often: a scan makes many small objects and
  little cyclic garbage, and at the default threshold (700 allocations) the collector walks
  every live object over and over (~0.04 s of a 4,000-image scan).
- Arrow allocates with the C library's malloc (unless ``ARROW_DEFAULT_MEMORY_POOL`` is set;
  this one stays for the process): its default (mimalloc) now and then stalled ~30 ms while
  a scan wrote its tables.
- faiss' OpenMP threads sleep when idle (``OMP_WAIT_POLICY=PASSIVE`` unless set): spinning,
  2 threads ran ~2x slower than 1 on 2 cores. OpenMP reads it when it starts, so it applies
  when faiss is first loaded by the scan.
- No transparent huge pages for the process and its decode workers (Linux
  ``prctl(PR_SET_THP_DISABLE)``, undone after): where the kernel compacts memory on a huge-page
  fault and memory is fragmented — right after another program used a few hundred MiB — the
  scan's page faults stalled on compaction (a scan run just after fastdup took 1.5 s instead
  of 1.2 s). The kernel call is made through ctypes: neither Python nor NumPy offers it.

One setting must be made before NumPy loads: :func:`before_numpy`. The command calls it
first; ``vislint``'s lazy loader calls it when the first public name used is what loads NumPy
(a program that imported NumPy before keeps its own setting).
"""
from __future__ import annotations

import ctypes
import gc
import os
import sys
from contextlib import contextmanager

GC_THRESHOLD = 100_000
"""Allocations between collections of the youngest generation while a scan runs."""


@contextmanager
def tuned():
    """Apply the settings above while the block runs; restore the collector's after."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "pyarrow" in sys.modules:
        if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
            sys.modules["pyarrow"].set_memory_pool(sys.modules["pyarrow"].system_memory_pool())
    else:  # read when pyarrow loads (a scan imports it while the decode workers run)
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, thresholds[1], thresholds[2])
    thp_was_on = _set_huge_pages(False)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if thp_was_on:
            _set_huge_pages(True)


_PR_SET_THP_DISABLE, _PR_GET_THP_DISABLE = 41, 42


def _set_huge_pages(on: bool) -> bool:
    """Allow (``on``) or forbid transparent huge pages for this process and the processes it
    forks from now on; returns whether they were allowed before (False where the system
    cannot say, e.g. not Linux: then nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    was_on = prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0
    prctl(_PR_SET_THP_DISABLE, 0 if on else 1, 0, 0, 0)
    return was_on


def before_numpy() -> None:
    """For a program, before it imports NumPy: NumPy's OpenBLAS threads sleep at once after
    work (``OPENBLAS_THREAD_TIMEOUT=4`` unless set) instead of spinning ~0.1 s of CPU, which
    on a small machine takes a core from the decode workers (a scan uses NumPy's BLAS
    little; faiss brings its own)."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

"""How time and memory of the graph stages grow with N (synthetic features).

    .venv/bin/python benchmarks/bench_growth.py [--sizes 10000 100000] [--dim 448]

For each N: random unit vectors with planted near-duplicate pairs (1 %), random
labels and splits; times the kNN graph (the index "auto" picks) and all checks,
and reports the peak RSS of a fresh process per N. Decoding is not involved
(its cost is linear: see bench_scan.py).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np
from vislint.catalog import Catalog
from vislint.pipeline import _graph, _run_checks
from vislint.thresholds import Thresholds
from vislint import _native

n, d = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, d)).astype(np.float32)
dup = rng.choice(n, n // 100, replace=False)
x[dup[: len(dup) // 2]] = x[dup[len(dup) // 2:]] + 0.05 * rng.standard_normal((len(dup) // 2, d))
x /= np.linalg.norm(x, axis=1, keepdims=True)
labels = [f"c{i}" for i in rng.integers(0, 10, n)]
splits = [("train", "valid", "test")[i] for i in rng.choice(3, n, p=[0.8, 0.1, 0.1])]
cat = Catalog(root=None, paths=[f"/x/{i}.jpg" for i in range(n)], relpaths=[f"{i}.jpg" for i in range(n)],
              labels=labels, splits=splits, ids=[f"{i:016x}" for i in range(n)])
meta = {"ok": np.ones(n, bool), "reason": [None] * n, "message": [None] * n,
        "width": (100 + np.arange(n) % 1000).astype(np.int32), "height": np.full(n, 100, np.int32),
        "file_size": np.full(n, 1000, np.int64), "content_hash": [f"h{i}" for i in range(n)], "format": ["JPEG"] * n}
stats = np.abs(rng.standard_normal((n, len(_native.STAT_NAMES)))).astype(np.float32) * 100
t0 = time.perf_counter()
g = _graph(x, meta["ok"], 10, "auto", 0)
t1 = time.perf_counter()
res = _run_checks(cat, meta, meta["ok"], x, stats, g, Thresholds(), semantic=True)
t2 = time.perf_counter()
print(json.dumps({"n": n, "index": g.method, "graph_s": t1 - t0, "checks_s": t2 - t1,
                  "near_dup_images": int(res.images.is_near_duplicate.sum()),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dim", type=int, default=448)
    args = ap.parse_args()
    print(f"{'N':>10} {'index':>6} {'graph s':>9} {'checks s':>9} {'per 1k img s':>13} {'peak RSS MiB':>13}")
    for n in args.sizes:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.dim)], capture_output=True,
                             text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        total = r["graph_s"] + r["checks_s"]
        print(f"{n:>10,} {r['index']:>6} {r['graph_s']:>9.2f} {r['checks_s']:>9.2f} {1000 * total / n:>13.3f} "
              f"{r['peak_rss_mib']:>13.0f}   (wall {time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

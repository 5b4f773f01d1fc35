"""How a whole scan's time and memory grow with N, on real files (issue 18).

    .venv/bin/python benchmarks/bench_growth.py --work /tmp/large \\
        --vislint .venv/bin/vislint --sizes 10000 100000 1000000 [--plot docs/growth.png]

Generates the largest size once (``bench_large.py``'s files: 64 px JPEGs of smooth random
colour fields, every 100th an edited copy of an earlier one, fixed seeds), then scans the
first N of them for each size, from nothing (a fresh work dir), with the command:
``vislint scan LIST.csv --out W --json --no-report``. Prints per size the wall time, the time
per image and its ratio to the smallest size's (issue 18 asks ≤ 1.3 from 10,000 to a
million; the median of ``--runs`` scans up to 100,000 images), the stages, the peak PSS of the scan's process tree (sampled every 0.5 s: the
scan and its decode workers, shared pages counted once) and how many planted copies share a
near-duplicate group with their original. ``--cold`` drops the images from the page cache
before every scan (the system keeps only part of a million files cached, all of 10,000: without
it the sizes are not read alike). ``--plot`` draws time per image and peak memory
against N (needs matplotlib).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_large import copy_recall, generate, image_path  # noqa: E402


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out += process_tree(int(child))
    except OSError:  # gone
        pass
    return out


def pss_kib(pid: int) -> int:
    """Proportional set size of one process (KiB; 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def evict(paths: list[Path]) -> None:
    """Drop these files from the system's page cache (``posix_fadvise(DONTNEED)``), so that the
    next scan reads them from disk, as the first scan of a collection does."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measured(command: list[str]) -> dict:
    """Run a vislint command that prints JSON: its wall time (s), the peak PSS of its process
    tree (GiB) and what it printed."""
    peak = 0
    with tempfile.TemporaryFile() as stdout:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            peak = max(peak, sum(pss_kib(p) for p in process_tree(proc.pid)))
            time.sleep(0.5)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode})")
        stdout.seek(0)
        return {"wall": wall, "peak_pss_gib": peak / 2**20, "info": json.loads(stdout.read())}


def scan(vislint: str, listing: Path, work: Path) -> dict:
    """One scan from nothing: wall time, stage timings, peak PSS (GiB), copy recall."""
    r = measured([vislint, "scan", str(listing), "--out", str(work), "--json", "--no-report"])
    return {"wall": r["wall"], "timings": r["info"]["timings"], "peak_pss_gib": r["peak_pss_gib"],
            **copy_recall(work)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--work", type=Path, required=True, help="where the images are kept")
    ap.add_argument("--vislint", required=True, help="the vislint executable to time")
    ap.add_argument("--runs", type=int, default=3,
                    help="scans of each size up to 100,000 images, the median kept (default 3; "
                         "a first scan of few files is the noisiest); larger sizes are scanned once")
    ap.add_argument("--cold", action="store_true",
                    help="drop the images from the page cache before every scan: every size then "
                         "reads its files from disk (otherwise a small size finds them cached "
                         "by its earlier runs, and a million only partly)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--plot", type=Path, help="draw time per image and peak memory against N")
    args = ap.parse_args()
    images = args.work / "images"
    sizes = sorted(args.sizes)
    generate(images, sizes[-1], 64, os.cpu_count() or 1)
    rows = []
    print(f"{'N':>10} {'wall s':>8} {'ms/img':>7} {'× smallest':>10} {'peak PSS GiB':>12} "
          f"{'copies found':>14}  stages (s)", flush=True)
    for n in sizes:
        runs = []
        for run in range(args.runs if n <= 100_000 else 1):
            with tempfile.TemporaryDirectory(dir=args.work) as tmp:
                listing = Path(tmp) / "list.csv"
                with open(listing, "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["path"])
                    w.writerows([str(image_path(images, i))] for i in range(n))
                if args.cold:
                    evict([image_path(images, i) for i in range(n)])
                runs.append({"n": n, **scan(args.vislint, listing, Path(tmp) / "work")})
        r = sorted(runs, key=lambda x: x["wall"])[len(runs) // 2]
        r["walls"] = [x["wall"] for x in runs]
        r["ms_per_image"] = 1000 * r["wall"] / n
        r["ratio"] = r["ms_per_image"] / (rows[0]["ms_per_image"] if rows else r["ms_per_image"])
        rows.append(r)
        print(f"{n:>10,} {r['wall']:>8.1f} {r['ms_per_image']:>7.3f} {r['ratio']:>10.2f} "
              f"{r['peak_pss_gib']:>12.2f} {r['found']:>6,}/{r['planted']:<7,}  "
              + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"load_average": os.getloadavg(), "runs": rows}, indent=1))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
        ns = [r["n"] for r in rows]
        a.plot(ns, [r["ms_per_image"] for r in rows], "o-")
        a.set(xscale="log", xlabel="images", ylabel="ms per image", title="time per image")
        a.set_ylim(bottom=0)
        b.plot(ns, [r["peak_pss_gib"] for r in rows], "o-")
        b.set(xscale="log", xlabel="images", ylabel="GiB", title="peak memory (PSS)")
        b.set_ylim(bottom=0)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())

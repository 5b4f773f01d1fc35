"""A large scan, A/B: two vislint builds on the same N generated images, alternating.

    .venv/bin/python benchmarks/bench_large.py --n 1000000 --work /tmp/large \\
        --vislint .venv-rel/bin/vislint --baseline old-venv/bin/vislint [--runs 2]

Generates N distinct JPEGs once (``--work``/images, kept for later runs: 64 px smooth random
colour fields from an 8 x 8 grid of random colours; every 100th image is a copy of an earlier
one, edited one of four ways: re-encoded at quality 70, resized to 80 px, cropped by 6 %, or
mirrored), then times ``vislint scan IMAGES --out FRESH --json --no-report`` of each build in
turn (``runs`` times each, A B A B ...), from nothing. Reports per build the median wall time,
the median of each stage, the peak RSS of the largest process (``ru_maxrss`` of the scan's
process; its decode workers are smaller), and how many planted copies share a near-duplicate
group with their original (copy recall) and how many images are in near-duplicate groups at
all (generated fields are all different, so images beyond the planted pairs are false).
Use it to see whether a change costs time at scale (issue 15: a 1M scan must not get more
than 10 % slower).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

COPY_EVERY = 100
"""Every COPY_EVERY-th image is an edited copy of an earlier one."""
EDITS = ("reencode", "resize", "crop", "mirror")


def image_path(root: Path, i: int) -> Path:
    return root / f"{i // 10_000:03d}" / f"{i:07d}.jpg"


def original_of(i: int) -> int:
    """The image the planted copy ``i`` is made from (an earlier, untouched one)."""
    return i - 37


def make_block(root: str, start: int, stop: int, size: int) -> None:
    """Write images start..stop-1 (each its own seed, so any split of the work gives the same
    files)."""
    root_p = Path(root)
    for i in range(start, stop):
        p = image_path(root_p, i)
        p.parent.mkdir(parents=True, exist_ok=True)
        if i % COPY_EVERY == COPY_EVERY - 1:
            save_edited(_field(original_of(i), size), EDITS[(i // COPY_EVERY) % len(EDITS)], p)
        else:
            _field(i, size).save(p, quality=90)


def save_edited(src: Image.Image, edit: str, path: Path) -> None:
    """Save ``src`` to ``path`` edited one of the :data:`EDITS` ways."""
    size = src.width
    if edit == "reencode":
        src.save(path, quality=70)
    elif edit == "resize":
        src.resize((80, 80), Image.Resampling.BILINEAR).save(path, quality=90)
    elif edit == "crop":
        m = size * 6 // 200
        src.crop((m, m, size - m, size - m)).save(path, quality=90)
    else:
        ImageOps.mirror(src).save(path, quality=90)


def _field(i: int, size: int) -> Image.Image:
    rng = np.random.default_rng(i)
    coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)


def generate(root: Path, n: int, size: int, workers: int) -> None:
    done = root / f".complete-{n}-{size}"
    if done.exists():
        print(f"reusing {n:,} images in {root}", file=sys.stderr)
        return
    block = 10_000
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(make_block, str(root), s, min(s + block, n), size)
                for s in range(0, n, block)]
        for k, job in enumerate(jobs, 1):
            job.result()
            print(f"\rgenerated {min(k * block, n):,}/{n:,}", end="", file=sys.stderr)
    print(file=sys.stderr)
    done.touch()


def run_scan(vislint: str, images: Path) -> dict:
    with tempfile.TemporaryDirectory(dir=images.parent) as out:
        start = time.perf_counter()
        proc = subprocess.Popen([vislint, "scan", str(images), "--out", out, "--json", "--no-report"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{vislint} failed ({os.waitstatus_to_exitcode(status)})")
        info = json.loads(stdout)
        found = copy_recall(Path(out))
    return {"wall": wall, "timings": info["timings"], "peak_rss_mib": usage.ru_maxrss / 1024, **found}


def copy_recall(out: Path) -> dict:
    """Planted copies in one near-duplicate group with their original; images in groups."""
    import pyarrow.parquet as pq

    tables = json.loads((out / "manifest.json").read_text())["tables"]
    t = pq.read_table(out / tables / "images.parquet", columns=["path", "duplicate_group"]).to_pydict()
    group = {Path(p).stem: g for p, g in zip(t["path"], t["duplicate_group"])}
    planted = [i for i in range(len(group)) if i % COPY_EVERY == COPY_EVERY - 1]
    hit = sum(1 for i in planted
              if group.get(f"{i:07d}", -1) >= 0 and group.get(f"{i:07d}") == group.get(f"{original_of(i):07d}"))
    in_groups = sum(1 for g in group.values() if g is not None and g >= 0)
    return {"planted": len(planted), "found": hit, "in_groups": in_groups}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=64, help="image side in px (default 64)")
    ap.add_argument("--work", type=Path, required=True, help="where the images are kept")
    ap.add_argument("--vislint", required=True, help="the vislint executable to time")
    ap.add_argument("--baseline", help="another vislint executable, timed alternately")
    ap.add_argument("--runs", type=int, default=2, help="timed scans of each build (default 2)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    images = args.work / "images"
    generate(images, args.n, args.size, os.cpu_count() or 1)
    tools = {"vislint": args.vislint, **({"baseline": args.baseline} if args.baseline else {})}
    runs: dict[str, list[dict]] = {name: [] for name in tools}
    for r in range(args.runs):
        for name, exe in tools.items():
            runs[name].append(run_scan(exe, images))
            print(f"run {r + 1}/{args.runs} {name}: {runs[name][-1]['wall']:.1f} s", file=sys.stderr)
    report = {"n": args.n, "size": args.size, "load_average": os.getloadavg()}
    for name, rs in runs.items():
        stages = {k: statistics.median(r["timings"][k] for r in rs) for k in rs[0]["timings"]}
        report[name] = {"exe": tools[name], "walls": [r["wall"] for r in rs],
                        "median_wall": statistics.median(r["wall"] for r in rs), "stages": stages,
                        "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
                        "planted": rs[0]["planted"], "found": rs[0]["found"], "in_groups": rs[0]["in_groups"]}
        print(f"{name:9s} median {report[name]['median_wall']:.1f} s  stages "
              + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
              + f"; peak RSS {report[name]['peak_rss_mib']:,.0f} MiB"
              + f"; planted copies grouped with their original {rs[0]['found']:,}/{rs[0]['planted']:,}"
              f", images in near-duplicate groups {rs[0]['in_groups']:,}")
    if args.baseline:
        ratio = report["vislint"]["median_wall"] / report["baseline"]["median_wall"]
        report["ratio_to_baseline"] = ratio
        print(f"vislint takes {ratio:.3f}× the baseline's time")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

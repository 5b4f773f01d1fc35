"""Report generation time as a fraction of the scan time (target: < 10 % on the Intel sample).

    .venv/bin/python benchmarks/bench_report.py [--data DIR] [--runs 3] [--max-per-section 200]

Each run scans the folder from nothing (a fresh work dir, so no cache helps), then writes the
HTML report of the results in memory, as ``vislint scan DATA --out DIR`` does: first with no
thumbnails on disk (cold), then again (warm: thumbnails are named by content hash and reused).
It prints the median wall time of the scan and of each report, the ratio, and how many
thumbnails the report made and how large the page is. Numbers from a busy machine are noisy:
compare ratios from one run, on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "intel-scenes-sample"


def one_run(data: Path, max_per_section: int | None) -> dict:
    import vislint

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        out = Path(tmp) / "out"
        start = time.perf_counter()
        res = vislint.scan(data, out=out)
        scan_s = time.perf_counter() - start
        page = out / "report.html"
        start = time.perf_counter()
        res.report(page, max_per_section=max_per_section)
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        res.report(page, max_per_section=max_per_section)
        warm_s = time.perf_counter() - start
        thumbs = list((out / "report_files" / "thumbs").iterdir())
        return {"scan": scan_s, "cold": cold_s, "warm": warm_s, "images": len(res.images),
                "thumbs": len(thumbs), "thumb_kib": sum(t.stat().st_size for t in thumbs) / 1024,
                "page_kib": page.stat().st_size / 1024}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder to scan (default: the "
                                                                     "Intel sample)")
    p.add_argument("--runs", type=int, default=3, help="runs; medians are reported (default 3)")
    p.add_argument("--max-per-section", type=int, default=200,
                   help="findings per gallery, 0 = all (default 200)")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        p.error(f"{args.data} is not a folder; pass --data DIR")
    one_run(args.data, 1)  # warm-up: imports, and the editable install's rebuild check
    runs = [one_run(args.data, args.max_per_section or None) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"{args.data} ({int(med['images']):,} images), {os.cpu_count()} cores, "
          f"{args.runs} run(s), max {args.max_per_section or 'all'} findings per gallery")
    print(f"  scan           {med['scan']:.2f} s")
    print(f"  report (cold)  {med['cold']:.3f} s  = {med['cold'] / med['scan']:.1%} of the scan "
          f"({int(med['thumbs'])} thumbnails, {med['thumb_kib']:.0f} KiB; page {med['page_kib']:.0f} KiB)")
    print(f"  report (warm)  {med['warm']:.3f} s  = {med['warm'] / med['scan']:.1%} of the scan "
          f"(thumbnails reused)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""New images checked against a large saved scan: ``vislint query NEW --index W``.

    .venv/bin/python benchmarks/bench_query.py --index W --images /tmp/large1m/images \\
        --work /tmp/query10k [--n 10000] [--runs 3] [--without-index]

W is a work dir written by ``vislint scan IMAGES --out W`` of the images
``benchmarks/bench_large.py`` generates (64 px fields; kept in --images). This makes --n new
images in --work (once): nine in ten are new fields (seeds beyond the indexed ones), one in ten
an edited copy of an indexed original (re-encoded, resized, cropped by 6 % or mirrored, as in
bench_large). Then it runs the query ``runs`` times and reports, per run, the wall time, the
query's own stages (reading the index, decoding and describing the new images, comparing), the
peak RSS of the process that ran it (its decode workers are smaller), the planted copies found
(an exact or copy match with their original; when the index holds its own copy of that
original made the same way, the best match is that copy, byte for byte the same) and the new
images matched to anything (all false: the fields are all different).

Target (issue 18): the whole query within 2x the time it takes to decode and describe the new
images. ``--without-index`` also times one query with the saved copy index moved aside, i.e.
with every indexed image's features read from the cache and fitted again, as before it
existed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_large import EDITS, _field, save_edited  # noqa: E402

COPY_EVERY = 10
"""One query image in COPY_EVERY is an edited copy of an indexed image."""


def make_queries(folder: Path, n: int, indexed: int, size: int = 64) -> dict[str, int]:
    """Write the query images; returns {file name of a planted copy: indexed original}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(18)
    planted = {}
    for i in range(n):
        p = folder / f"q{i:06d}.jpg"
        if i % COPY_EVERY == COPY_EVERY - 1:
            original = int(rng.integers(0, indexed))
            while original % 100 == 99:  # an untouched original, not a planted copy
                original = int(rng.integers(0, indexed))
            save_edited(_field(original, size), EDITS[(i // COPY_EVERY) % len(EDITS)], p)
            planted[p.name] = original
        elif not p.exists():
            _field(10**8 + i, size).save(p, quality=90)  # seeds no indexed image has
    return planted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="the saved scan (work dir)")
    ap.add_argument("--images", type=Path, required=True, help="bench_large's images")
    ap.add_argument("--work", type=Path, required=True, help="where the query images go")
    ap.add_argument("--n", type=int, default=10_000, help="query images (default 10,000)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--without-index", action="store_true",
                    help="also one query with the saved copy index moved aside")
    args = ap.parse_args()
    indexed = sum(1 for _ in args.images.glob("*/*.jpg"))
    planted = make_queries(args.work / "images", args.n, indexed)
    runs = [("saved index", _query(args, planted)) for _ in range(args.runs)]
    if args.without_index:
        tables = args.index / json.loads((args.index / "manifest.json").read_text())["tables"]
        aside = args.index / "index-aside"
        aside.mkdir(exist_ok=True)
        moved = [f for f in tables.iterdir() if f.name.startswith(("copy-", "rotation-"))]
        for f in moved:
            f.rename(aside / f.name)
        try:
            runs.append(("features from the cache", _query(args, planted)))
        finally:
            for f in moved:
                (aside / f.name).rename(f)
            aside.rmdir()
    for how, r in runs:
        t = r["timings"]
        print(f"{how}: {r['wall']:.1f} s (index {t['index']:.1f} + decode/describe "
              f"{t['decode_describe']:.1f} + compare {t['compare']:.1f}; "
              f"{r['wall'] / t['decode_describe']:.2f}x the decoding), peak RSS "
              f"{r['peak_mib']:,.0f} MiB; planted copies found {r['found']}/{len(planted)}; "
              f"new images matched {r['false']}")
    return 0


def _query(args, planted: dict[str, int]) -> dict:
    """One query, in a fresh process (so that its peak RSS is its own)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_query_here, args.work / "images", args.index, planted).result()


def _query_here(images: Path, index: Path, planted: dict[str, int]) -> dict:
    import resource

    import vislint

    start = time.perf_counter()
    res = vislint.query(images, index)
    wall = time.perf_counter() - start
    m = res.matches
    copies = {(Path(q).name, Path(i).stem) for q, i, kind in
              zip(m["query_path"], m["match_path"], m["kind"]) if kind in ("exact", "copy")}
    found = sum((name, f"{original:07d}") in copies for name, original in planted.items())
    im = res.images
    false = sum(1 for path, status in zip(im["path"], im["status"])
                if Path(path).name not in planted and status != "new")
    return {"wall": wall, "timings": res.info["timings"], "found": found, "false": false,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    sys.exit(main())

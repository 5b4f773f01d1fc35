"""How long writing results into FiftyOne takes, against the scan itself.

    .venv/bin/python benchmarks/bench_fiftyone.py [--n 100000] [--size 64] [--work DIR] [--reuse]

Generates N distinct small JPEGs (smooth random colour fields, every 50th image a re-encoded
copy of another, so duplicate groups, tags and views are not empty), builds a FiftyOne
dataset of them (a private mongod on 127.0.0.1 unless FIFTYONE_DATABASE_URI is set), runs
``vislint.integrations.fiftyone.scan`` and reports its three phases: reading sample ids, paths
and tags from the dataset; the scan (vislint.scan); writing the results (the field, the tags,
the saved views and the run) — and the write time as a share of the scan time. Target
(issue): writing < 10 % of the scan.

``--database-alone`` also applies the same update statements to a copy of the dataset made
before the scan, encoded beforehand, with the writer's threads and batches: the time the
database itself needs for them, which no client code can go under
(docs/benchmarks/fiftyone-write.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[str]:
    """n JPEGs of size x size px: smooth random colour fields; every 50th a copy of another."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i // 1000:04d}" / f"{i:07d}.jpg"
        p.parent.mkdir(exist_ok=True)
        if i % 50 == 49:
            Image.open(paths[i - 17]).save(p, quality=80)
        else:
            coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            im = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
            im.save(p, quality=90)
        paths.append(str(p))
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=64, help="image side in px (default 64)")
    ap.add_argument("--work", type=Path, default=None, help="where images and the DB go")
    ap.add_argument("--reuse", action="store_true",
                    help="use the images an earlier run left in --work (same --n and --size) "
                         "instead of generating them again")
    ap.add_argument("--cache-gb", type=float, default=None,
                    help="WiredTiger cache of the private mongod in GB (default: mongod's own, "
                         "as FiftyOne's database service runs it; the tests use 0.25)")
    ap.add_argument("--out", type=Path, default=None,
                    help="the scan's work dir (default: none). Beyond 100,000 images a work dir "
                         "keeps the scan's thumbnails on disk; one whose cache holds the images "
                         "already makes the scan skip decoding them (a shorter scan, so a "
                         "larger share for the write)")
    ap.add_argument("--database-alone", action="store_true",
                    help="after the scan, time the database applying the same statements, "
                         "encoded beforehand (the write's floor on this machine)")
    args = ap.parse_args()
    if args.reuse and args.work is None:
        ap.error("--reuse needs --work (the folder of an earlier run)")
    work = args.work or Path(tempfile.mkdtemp(prefix="vislint-bench-fo-"))
    if "FIFTYONE_DATABASE_URI" not in os.environ:
        from fo_services import configure_fiftyone_env, start_mongod

        uri, _ = start_mongod(work / "db", cache_gb=args.cache_gb)
        configure_fiftyone_env(uri, work / "plugins")
    t = time.perf_counter()
    if args.reuse:
        paths = sorted(str(p) for p in (work / "images").glob("*/*.jpg"))
        if len(paths) != args.n:
            ap.error(f"--reuse: {work / 'images'} holds {len(paths):,} images, not --n {args.n:,}")
        print(f"reusing {args.n:,} images in {work / 'images'}", flush=True)
    else:
        paths = make_images(work / "images", args.n, args.size)
        print(f"generated {args.n:,} images in {time.perf_counter() - t:.1f} s", flush=True)

    import fiftyone as fo
    import vislint
    import vislint.integrations.fiftyone as vfo

    t = time.perf_counter()
    ds = fo.Dataset(f"bench-{args.n}", overwrite=True)
    ds.add_samples([fo.Sample(filepath=p, tags=["train" if i % 5 else "test"])
                    for i, p in enumerate(paths)], progress=False)
    print(f"dataset built in {time.perf_counter() - t:.1f} s", flush=True)

    clock = {}
    real_scan = vislint.scan

    def timed_scan(*a, **k):
        clock["scan_start"] = time.perf_counter()
        try:
            return real_scan(*a, **k)
        finally:
            clock["scan_end"] = time.perf_counter()

    vislint.scan = timed_scan
    fresh = ds.clone(f"bench-{args.n}-alone") if args.database_alone else None
    t = time.perf_counter()
    run = vfo.scan(ds, split_field="tags", progress=False, out=args.out)
    end = time.perf_counter()
    read = clock["scan_start"] - t
    scan = clock["scan_end"] - clock["scan_start"]
    write = end - clock["scan_end"]
    s = run.summary().set_index("check")
    print(f"N={args.n:,}: vfo.scan {end - t:.1f} s = reading ids/paths/tags {read:.1f} s + "
          f"vislint.scan {scan:.1f} s + writing results (field, tags, views, run) {write:.1f} s "
          f"({100 * write / scan:.1f} % of the scan); near-duplicate images "
          f"{int(s.loc['near_duplicate', 'images']):,}")
    if args.database_alone:
        alone = database_alone(vfo, fresh, run.results)
        fresh.delete()
        print(f"database alone: {alone:.1f} s for the same {args.n:,} update statements, encoded "
              f"beforehand ({100 * alone / scan:.1f} % of the scan)")
    ds.delete()
    return 0


def database_alone(vfo, ds, res) -> float:
    """Seconds the database takes to apply the scan's update statements to ``ds`` (a copy of
    the dataset as it was before the scan), sent as the writer sends them (batches of
    ``vfo.BATCH`` by ``vfo.WRITERS`` threads) but encoded beforehand, so that the client only
    hands over bytes."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime, timezone

    from vislint.integrations.fiftyone_updates import SampleUpdates

    oids, paths, tags = vfo._read_samples(ds)
    row_of_path = {p: i for i, p in enumerate(res.images["path"])}
    updates = SampleUpdates(res, "vislint", [row_of_path[p] for p in paths],
                            [str(o) for o in oids], oids, tags, [], datetime.now(timezone.utc))
    batches = [updates.encoded(a, min(a + vfo.BATCH, len(oids)))
               for a in range(0, len(oids), vfo.BATCH)]
    coll = vfo._samples_collection(ds)
    t = time.perf_counter()
    with ThreadPoolExecutor(vfo.WRITERS) as pool:
        list(pool.map(lambda batch: vfo._send_updates(coll, batch), batches))
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())

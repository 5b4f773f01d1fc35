"""Images added to a large saved scan: ``vislint scan NEW --out W --add`` (issue 18).

    .venv/bin/python benchmarks/bench_add.py --work /tmp/large --vislint .venv/bin/vislint \\
        [--n 1000000] [--add 10000] [--runs 2] [--compare] [--json FILE]

Generates N + M images once (``bench_large.py``'s, in --work/images: 64 px fields, every 100th
an edited copy of an earlier one, so the M added images hold copies of saved images and of
each other), and scans the first N into --work/add-N once (kept for later runs). Then, per run,
it links that work dir into a fresh one (hard links: the saved scan is never changed) and
times ``vislint scan LIST --out W --add --json --no-report`` of the last M there, the files
dropped from the page cache first (as new files are: never read before). It reports the wall
time and the add's stages; its ratio to its own decoding and describing of the M (issue 18:
within 2x); the peak PSS of its process tree (sampled every 0.5 s); and the planted copies that
share a near-duplicate group with their original, over all N + M.

``--compare`` then scans all N + M images from nothing but their features (the cache linked
from the add's work dir: nothing is decoded again) and compares the copy checks' pairs and
groups with the add's: issue 18 asks them identical.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_growth import evict, measured  # noqa: E402
from bench_large import copy_recall, generate, image_path  # noqa: E402

CHECKS = ("exact_duplicate", "near_duplicate", "same_scene", "leak")
"""The pair checks compared with a full scan (``--compare``)."""


def listing(path: Path, images: Path, rows: range) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path"])
        w.writerows([str(image_path(images, i))] for i in rows)
    return path


def linked(source: Path, dest: Path) -> Path:
    """A copy of the work dir ``source`` made of hard links (a scan writes new files and
    renames over old names, never into a file it did not make)."""
    shutil.copytree(source, dest, copy_function=os.link)
    return dest


def pair_sets(work: Path) -> dict:
    """{check: {(path, path): score}} and the groups of the copy checks of a saved scan."""
    import vislint

    res = vislint.load(work)
    out = {}
    for check in CHECKS:
        p = res.pairs(check)
        out[check] = {tuple(sorted((a, b))): round(float(s), 5)
                      for a, b, s in zip(p["path_a"], p["path_b"], p["similarity"])}
    g = res.group_table
    for check in ("exact_duplicate", "near_duplicate", "same_scene"):
        mine = g[g["check"] == check]
        out[f"{check} groups"] = {frozenset(m["path"]) for _, m in mine.groupby("group")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="where images and work dirs are kept")
    ap.add_argument("--vislint", required=True, help="the vislint executable to time")
    ap.add_argument("--n", type=int, default=1_000_000, help="images in the saved scan")
    ap.add_argument("--add", type=int, default=10_000, help="images added to it")
    ap.add_argument("--runs", type=int, default=2, help="timed adds (default 2)")
    ap.add_argument("--compare", action="store_true",
                    help="also scan all the images (features cached) and compare the copy checks")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    images = args.work / "images"
    total = args.n + args.add
    generate(images, total, 64, os.cpu_count() or 1)
    saved = args.work / f"add-{args.n}"
    if not (saved / "manifest.json").exists():
        shutil.rmtree(saved, ignore_errors=True)
        base = measured([args.vislint, "scan", str(listing(args.work / f"list-{args.n}.csv", images,
                                                       range(args.n))),
                    "--out", str(saved), "--json", "--no-report"])
        print(f"saved scan of {args.n:,}: {base['wall']:.1f} s, peak {base['peak_pss_gib']:.2f} GiB",
              flush=True)
    added = listing(args.work / f"list-add-{args.add}.csv", images, range(args.n, total))
    rows = []
    for k in range(args.runs):
        work = args.work / f"add-{args.n}-plus-{args.add}"
        shutil.rmtree(work, ignore_errors=True)
        linked(saved, work)
        evict([image_path(images, i) for i in range(args.n, total)])
        r = measured([args.vislint, "scan", str(added), "--out", str(work), "--add", "--json",
                 "--no-report"])
        t = r["info"]["timings"]
        r.update(timings=t, ratio=r["wall"] / t["decode_describe"], **copy_recall(work))
        rows.append(r)
        print(f"add {args.add:,} to {args.n:,}: {r['wall']:.1f} s = {r['ratio']:.2f}x its decoding "
              f"({t['decode_describe']:.1f} s); peak {r['peak_pss_gib']:.2f} GiB; planted copies "
              f"{r['found']:,}/{r['planted']:,}; stages "
              + ", ".join(f"{s} {v:.1f}" for s, v in t.items()), flush=True)
    result = {"n": args.n, "add": args.add, "runs": [{k: v for k, v in r.items() if k != "info"}
                                                    for r in rows]}
    if args.compare:
        full = args.work / f"full-{total}"
        shutil.rmtree(full, ignore_errors=True)
        full.mkdir()
        linked(work / "cache", full / "cache")
        f = measured([args.vislint, "scan", str(listing(args.work / f"list-{total}.csv", images,
                                                   range(total))),
                 "--out", str(full), "--json", "--no-report"])
        mine, theirs = pair_sets(work), pair_sets(full)
        differ = {name: len(mine[name] ^ theirs[name]) if "groups" in name
                  else len(set(mine[name].items()) ^ set(theirs[name].items())) for name in mine}
        result["full"] = {"wall": f["wall"], "timings": f["info"]["timings"],
                          "sizes": {name: len(v) for name, v in theirs.items()}, "differ": differ}
        print(f"full scan of {total:,} (features cached): {f['wall']:.1f} s; copy checks that "
              f"differ from the add's: {differ} (of {result['full']['sizes']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

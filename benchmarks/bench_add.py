"""Images added to a large saved scan: ``vislint scan NEW --out W --add`` (issue 18).

    .venv/bin/python benchmarks/bench_add.py --work /tmp/large --vislint .venv/bin/vislint \\
        [--n 1000000] [--add 10000] [--runs 2] [--compare] [--json FILE]

Generates N images once (``bench_large.py``'s, in --work/images: 64 px fields, every 100th an
edited copy of an earlier one) and scans them into --work/add-N once (kept for later runs).
The M images to add are ``bench_query.py``'s (in --work/added-M): nine in ten new fields, one
in ten an edited copy of a saved image. Then, per run, it links the saved work dir into a fresh
one (hard links: the saved scan is never changed) and times ``vislint scan LIST --out W --add
--json --no-report`` of the M there, their files dropped from the page cache first (as new
files are: never read before). It reports the wall time and the add's stages; its ratio to its
own decoding and describing of the M (issue 18: within 2x); the peak PSS of its process tree
(sampled every 0.5 s); the planted copies among the added images that share a near-duplicate
group with their saved original; and the added images in any near-duplicate group (the new
fields are all different from everything: beyond the planted copies, a group is false).

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
from bench_large import generate, image_path  # noqa: E402
from bench_query import make_queries  # noqa: E402

CHECKS = ("exact_duplicate", "near_duplicate", "same_scene", "leak")
"""The pair checks compared with a full scan (``--compare``)."""


def listing(path: Path, files: list) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path"])
        w.writerows([str(p)] for p in files)
    return path


def found(work: Path, planted: dict, folder: Path) -> dict:
    """Planted copies (added file: saved original's file) in one near-duplicate group with
    their original, and images of ``folder`` (the added ones) in near-duplicate groups at all."""
    import pyarrow.parquet as pq

    tables = json.loads((work / "manifest.json").read_text())["tables"]
    t = pq.read_table(work / tables / "images.parquet", columns=["path", "duplicate_group"]).to_pydict()
    group = dict(zip(t["path"], t["duplicate_group"]))
    hit = sum(1 for c, o in planted.items() if group[c] >= 0 and group[c] == group[o])
    added = [p for p in group if p.startswith(f"{folder}/")]
    return {"planted": len(planted), "found": hit,
            "added_in_groups": sum(1 for p in added if group[p] >= 0)}


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
    generate(images, args.n, 64, os.cpu_count() or 1)
    saved_files = [image_path(images, i) for i in range(args.n)]
    saved = args.work / f"add-{args.n}"
    if not (saved / "manifest.json").exists():
        shutil.rmtree(saved, ignore_errors=True)
        base = measured([args.vislint, "scan", str(listing(args.work / f"list-{args.n}.csv",
                                                           saved_files)),
                         "--out", str(saved), "--json", "--no-report"])
        print(f"saved scan of {args.n:,}: {base['wall']:.1f} s, peak {base['peak_pss_gib']:.2f} GiB",
              flush=True)
    folder = args.work / f"added-{args.add}"
    planted = {str(folder / name): str(image_path(images, o))
               for name, o in make_queries(folder, args.add, args.n).items()}
    new_files = sorted(folder.glob("*.jpg"))
    added = listing(args.work / f"list-add-{args.add}.csv", new_files)
    rows = []
    for k in range(args.runs):
        work = args.work / f"add-{args.n}-plus-{args.add}"
        shutil.rmtree(work, ignore_errors=True)
        linked(saved, work)
        evict(new_files)
        r = measured([args.vislint, "scan", str(added), "--out", str(work), "--add", "--json",
                 "--no-report"])
        t = r["info"]["timings"]
        r.update(timings=t, ratio=r["wall"] / t["decode_describe"], **found(work, planted, folder))
        rows.append(r)
        print(f"add {args.add:,} to {args.n:,}: {r['wall']:.1f} s = {r['ratio']:.2f}x its decoding "
              f"({t['decode_describe']:.1f} s); peak {r['peak_pss_gib']:.2f} GiB; planted copies "
              f"{r['found']:,}/{r['planted']:,}, added images in groups {r['added_in_groups']:,}; "
              "stages "
              + ", ".join(f"{s} {v:.1f}" for s, v in t.items()), flush=True)
    result = {"n": args.n, "add": args.add, "runs": [{k: v for k, v in r.items() if k != "info"}
                                                    for r in rows]}
    if args.compare:
        total = args.n + args.add
        full = args.work / f"full-{total}"
        shutil.rmtree(full, ignore_errors=True)
        full.mkdir()
        linked(work / "cache", full / "cache")
        f = measured([args.vislint, "scan", str(listing(args.work / f"list-{total}.csv",
                                                        saved_files + new_files)),
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

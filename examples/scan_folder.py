"""Scan a folder of images and read the results.

Run:
    python examples/scan_folder.py                      # the demo data set (built offline)
    python examples/scan_folder.py ./my-images --out ./vislint-out

A folder laid out as train_set/<class>/x.jpg, valid_set/<class>/x.jpg, test_set/x.jpg gives
labels (class folders) and splits (top folders) with no options. With no folder, the demo data
set (about 150 photos with planted problems) is built in ./vislint-demo first.
"""
import argparse
from pathlib import Path

import vislint
from vislint.demo import MARKER, build_demo

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", nargs="?", type=Path, help="images to scan (default: the demo)")
parser.add_argument("--out", type=Path, default=Path("vislint-out"),
                    help="work dir: results, feature cache, report (default ./vislint-out)")
args = parser.parse_args()

folder = args.folder
if folder is None:
    folder = Path("vislint-demo")
    if not (folder / MARKER).exists():
        build_demo(folder)

# One call runs every check. With `out`, features are cached there as the scan goes: an
# interrupted scan resumes, and scanning again only decodes new or changed files.
res = vislint.scan(folder, out=args.out, progress=True)

# One row per check: how many images (and groups) were flagged, at which threshold.
print(res.summary()[["check", "images", "groups", "threshold"]].to_string(index=False))

# One row per image: <check>_score in [0, 1] (higher = worse) and is_<check> for every check.
df = res.to_dataframe()
print("\nbroken files:")
print(df.loc[df.is_invalid, ["relpath", "invalid_reason"]].to_string(index=False))

print("\nmost likely near duplicates, worst first:")
worst = df[df.is_near_duplicate].sort_values("near_duplicate_score", ascending=False)
print(worst[["relpath", "near_duplicate_score", "duplicate_group"]].head(5).to_string(index=False))

# Groups: one row per member; `keep` marks the image the keep policy keeps.
groups = res.groups("near_duplicate")
paths = df.set_index("id")["relpath"]
for group, members in list(groups.groupby("group"))[:3]:
    kept = paths[members.loc[members.keep, "id"]].tolist()
    copies = paths[members.loc[~members.keep, "id"]].tolist()
    print(f"group {group}: keep {kept}, copies {copies}")

# Pairs: a leak is a duplicate whose partner is in another split.
leaks = res.pairs("leak")
print(f"\n{len(leaks)} leaking pairs; by split: {res.leak_table}")

# The quality flags come with the statistic that fired.
print("\ndark images:", df.loc[df.is_dark, "relpath"].tolist())

# The HTML report (scan with `out` writes one too) and a saved scan, loaded again later.
print("\nreport:", res.report(args.out / "report.html"))
again = vislint.load(args.out)
assert len(again.to_dataframe()) == len(df)

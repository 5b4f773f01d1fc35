"""Measure a scan against ground truth: precision, recall and F1 per check.

Run:
    python examples/evaluate.py                                  # the demo and its answers
    python examples/evaluate.py ./my-images my_ground_truth.csv

Ground truth is a CSV (or DataFrame) with a ``path`` column (relative to the scanned folder, or
absolute) and either or both of:
  group  files sharing a value are duplicates of each other (scored as pairs and as groups)
  check  the check a file should be flagged by (dark, outlier, invalid, label_conflict, ...)
With no arguments, the demo data set is built in ./vislint-demo and its answer key
(ground_truth.csv: kind,file,partner,detail) is turned into that format first.
"""
import argparse
from pathlib import Path

import pandas as pd

import vislint
from vislint.demo import MARKER, build_demo


def demo_ground_truth(answers: pd.DataFrame) -> pd.DataFrame:
    """The demo's answer key as evaluate() reads it: a copy and its original share a group;
    a planted quality problem, broken file or outlier names the check that should fire."""
    rows = []
    for a in answers.itertuples():
        if isinstance(a.partner, str):  # exact / near duplicates, leaks, mislabelled copies
            rows += [{"path": a.file, "group": a.partner}, {"path": a.partner, "group": a.partner}]
        if a.kind == "mislabeled_copy":
            rows.append({"path": a.file, "check": "label_conflict"})
        elif a.kind in ("dark", "blurry", "bright", "outlier"):
            rows.append({"path": a.file, "check": a.kind})
        elif a.kind == "corrupt":
            rows.append({"path": a.file, "check": "invalid"})
    return pd.DataFrame(rows).drop_duplicates()


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", nargs="?", type=Path, help="images (default: the demo)")
parser.add_argument("ground_truth", nargs="?", type=Path, help="CSV: path, group and/or check")
args = parser.parse_args()

if args.folder is None:
    folder = Path("vislint-demo")
    if not (folder / MARKER).exists():
        build_demo(folder)
    truth = demo_ground_truth(pd.read_csv(folder / "ground_truth.csv"))
else:
    folder, truth = args.folder, args.ground_truth

res = vislint.scan(folder)
scores = vislint.evaluate(res, truth)  # one row per check and unit (pairs / groups / images)
print(scores.to_string(index=False, float_format="{:.3f}".format))

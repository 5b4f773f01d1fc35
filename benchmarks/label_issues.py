"""Label issues from a model's predictions: vislint against cleanlab on the same inputs.

    .venv/bin/python benchmarks/label_issues.py [--cleanlab-python cl-venv/bin/python]

Inputs: the MNIST test set's out-of-sample predicted probabilities and the 100 published
candidates with people's verdicts (../shared/data/mnist-test-predictions, 15 confirmed
errors), on the given labels and with planted flips (2, 5, 10 % of the labels moved to
another class, seeds 1-3). For each rule: images flagged, confirmed errors among them, and
on the flipped labels the recall of the flips and the flags beyond them.

Rules: vislint's default (confident learning, or a label score ≥ ``label_prediction``),
vislint's label score alone at several thresholds, vislint's confident learning alone, and —
with ``--cleanlab-python`` (a Python with cleanlab installed; it is not a vislint
dependency) — cleanlab's ``find_label_issues`` with its default (prune by noise rate) and
``predicted_neq_given`` filters, run in that Python on the same arrays.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from vislint import Thresholds
from vislint.checks.labels import confident_learning, prediction_scores

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test-predictions"
FLIPS = ((0.02, 1), (0.05, 2), (0.10, 3))

_CLEANLAB = """
import json, sys, numpy as np
from cleanlab.filter import find_label_issues
probs = np.load(sys.argv[1]); labels = np.load(sys.argv[2])
out = {f: [np.flatnonzero(find_label_issues(l, probs, filter_by=f)).tolist() for l in labels]
       for f in ("prune_by_noise_rate", "predicted_neq_given")}
import cleanlab; out["version"] = cleanlab.__version__
print(json.dumps(out))
"""


def label_sets(given: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, labels, planted mask): the given labels, then each planted flip."""
    sets = [("given", given, np.zeros(len(given), bool))]
    for share, seed in FLIPS:
        rng = np.random.default_rng(seed)
        flip = rng.choice(len(given), int(share * len(given)), replace=False)
        labels = given.copy()
        labels[flip] = (labels[flip] + rng.integers(1, 10, len(flip))) % 10
        planted = np.zeros(len(given), bool)
        planted[flip] = True
        sets.append((f"{share:.0%} flipped", labels, planted))
    return sets


def row(name: str, flags: list[np.ndarray], sets, confirmed: np.ndarray) -> str:
    cells = [f"{int(flags[0].sum())}", f"{int((flags[0] & confirmed).sum())}/{int(confirmed.sum())}"]
    for f, (_, _, planted) in zip(flags[1:], sets[1:]):
        cells.append(f"{(f & planted).sum() / planted.sum():.3f} / {int((f & ~planted).sum())}")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cleanlab-python", default=None,
                    help="a Python interpreter with cleanlab installed, to compare with")
    args = ap.parse_args()
    index = pd.read_csv(args.data / "index.csv")
    probs = np.load(args.data / "pred_probs.npy").astype(np.float64)
    candidates = pd.read_csv(args.data / "label_error_candidates.csv")
    confirmed = np.zeros(len(index), bool)
    confirmed[candidates.test_index[candidates.majority_not_given]] = True
    sets = label_sets(index.label.to_numpy())
    default = Thresholds().label_prediction
    print("| rule | flagged (given labels) | confirmed errors flagged | "
          + " | ".join(f"{name}: recall / other flags" for name, _, _ in sets[1:]) + " |")
    print("|---" * (3 + len(sets) - 1) + "|")
    rules = {f"vislint default (label score ≥ {default} or confident learning)":
             lambda g: confident_learning(probs, g) | (prediction_scores(probs, g) >= default)}
    for t in (0.6, 0.7, 0.8, 0.9):
        rules[f"vislint label score ≥ {t}"] = (lambda t: lambda g: prediction_scores(probs, g) >= t)(t)
    rules["vislint confident learning alone"] = lambda g: confident_learning(probs, g)
    for name, rule in rules.items():
        print(row(name, [rule(labels) for _, labels, _ in sets], sets, confirmed))
    if args.cleanlab_python:
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "p.npy", probs.astype(np.float32))
            np.save(Path(tmp) / "l.npy", np.stack([labels for _, labels, _ in sets]))
            out = subprocess.run([args.cleanlab_python, "-c", _CLEANLAB, str(Path(tmp) / "p.npy"),
                                  str(Path(tmp) / "l.npy")], capture_output=True, text=True, check=True)
        got = json.loads(out.stdout)
        for f in ("prune_by_noise_rate", "predicted_neq_given"):
            flags = []
            for found in got[f]:
                mask = np.zeros(len(index), bool)
                mask[found] = True
                flags.append(mask)
            print(row(f"cleanlab {got['version']} find_label_issues({f})", flags, sets, confirmed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

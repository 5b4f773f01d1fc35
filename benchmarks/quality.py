"""Precision and recall of every check against ground truth; the measurements behind the defaults.

    .venv/bin/python benchmarks/quality.py [--shared ../shared/data] [--work DIR]

1. imagededup fixtures: duplicate pairs/groups and invalid files vs their ground truth.
2. Intel sample: the 47 byte-identical pairs; the glacier/mountain copy; every pair the scan
   groups as copies or same-scene shots against the labelled natural pairs (pairs no label
   covers are counted apart and, with --pairs-out, written out to be looked at).
3. Planted copies of Intel photos (re-encode, resize, crop, flip, brightness; and
   harder ones) among untouched photos: recall per kind, precision over every pair the
   scan calls (pairs among the untouched photos judged by the labelled natural pairs),
   vs the candidate threshold (copy_candidate).
   Rotated copies: the verification scores of the rotation rule for true pairs and
   for the other candidates, planted and on the Intel sample.
4. Planted dark / bright / blurry / low-information images among clean photos:
   precision and recall vs each threshold.
5. Planted outliers (other-domain images among Intel photos, alone and in groups of 5 and
   25): recall and the untouched photos flagged (benchmarks/outliers.py).
6. Planted wrong labels (Intel images moved to another class): neighbour-vote
   precision and recall vs the agreement threshold.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import vislint  # noqa: E402
from vislint.thresholds import Thresholds  # noqa: E402
from natural import intel_truth, natural_metrics  # noqa: E402
from planted import EXTRA_KINDS, COPY_KINDS, copy_metrics, plant_copies, plant_quality  # noqa: E402

CANDIDATES = (0.80, 0.85, 0.90)
"""Descriptor similarities from which a pair is verified (``copy_candidate``), compared."""


def intel_sources(shared: Path) -> list[Path]:
    """Intel photos that are not byte-identical to another (so planted truth is clean)."""
    dup = set(pd.read_csv(shared / "intel-scenes-exact-duplicates.csv")["file"])
    root = shared / "intel-scenes-sample"
    return sorted(p for p in root.rglob("*.jpg") if str(p.relative_to(root)) not in dup)


def section(title):
    print(f"\n## {title}")


def fixtures(shared: Path):
    section("imagededup fixtures: duplicate pairs (precision, recall) vs the candidate threshold")
    root = shared / "imagededup-fixtures"
    gt = root / "ground_truth_groups.csv"
    for c in CANDIDATES:
        res = vislint.scan(root, thresholds={"copy_candidate": c})
        p = vislint.evaluate(res, gt).set_index(["check", "unit"]).loc[("duplicate", "pairs")]
        print(f"  copy_candidate={c:.2f}  pairs P={p.precision:.3f} R={p.recall:.3f} "
              f"(tp {p.tp}, fp {p.fp}, fn {p.fn})")
    res = vislint.scan(root)
    inv = vislint.evaluate(res, gt).set_index(["check", "unit"]).loc[("invalid", "images")]
    print(f"  invalid files: P={inv.precision:.2f} R={inv.recall:.2f}; reasons: "
          f"{res.to_dataframe().query('is_invalid')['invalid_reason'].tolist()}")


def intel(shared: Path, pairs_out: Path | None = None):
    section("Intel sample: byte-identical pairs and the glacier/mountain copy")
    root = shared / "intel-scenes-sample"
    res = vislint.scan(root)
    truth = pd.read_csv(shared / "intel-scenes-exact-duplicates.csv")
    gt = truth.rename(columns={"md5": "group"})
    r = vislint.evaluate(res, gt).set_index(["check", "unit"]).loc[("duplicate", "pairs")]
    exact = res.pairs("exact_duplicate")
    print(f"  exact pairs found {len(exact)} (truth {len(truth) // 2}); truth pairs recalled as duplicates: "
          f"{r.tp}/{r.tp + r.fn}")
    df = res.to_dataframe().set_index("relpath")
    for f in ("train_set/glacier/10234.jpg", "train_set/mountain/7654.jpg"):
        row = df.loc[f]
        print(f"  {f}: exact={row.is_exact_duplicate} conflict={row.is_label_conflict} labels={row.conflict_labels}")
    s = res.summary().set_index("check")
    print("  flags on the real sample: " + ", ".join(f"{c} {int(s.loc[c, 'images'])}" for c in s.index))
    _natural("Intel sample, every grouped pair", natural_metrics(res, intel_truth(shared)), pairs_out,
             "intel")
    return res


def _natural(title, metrics, pairs_out, name):
    """Print :func:`natural.natural_metrics`; write its unlabelled pairs to PAIRS_OUT/NAME-KIND.csv."""
    print(f"  {title}:")
    for kind, m in metrics.items():
        print(f"    {kind}: precision {m['precision']:.3f} over labelled pairs, recall {m['recall']:.3f} "
              f"({m['found']}/{m['true']}); called pairs by label {m['by_label']}")
        if pairs_out is not None and m["unlabelled"]:
            pairs_out.mkdir(parents=True, exist_ok=True)
            path = pairs_out / f"{name}-{kind}.csv"
            pd.DataFrame(m["unlabelled"], columns=["a", "b"]).assign(
                pair=lambda d: [f"u{i:03d}" for i in range(len(d))]).to_csv(path, index=False)
            print(f"      {len(m['unlabelled'])} unlabelled pairs: {path} (look at them: pair_sheets.py)")


def copies(shared: Path, sources, work: Path, pairs_out: Path | None = None):
    section("Planted copies of Intel photos: recall by kind and precision over every pair, "
            "vs the candidate threshold")
    dest = work / "copies"
    planted = plant_copies(sources, dest, kinds=COPY_KINDS + EXTRA_KINDS, n_originals=450, n_distractors=600)
    intel_root = shared / "intel-scenes-sample"
    source = {rel: str(src.relative_to(intel_root)) for rel, src in planted["source"].items()}
    truth = intel_truth(shared)
    for c in CANDIDATES:
        clock = time.perf_counter()
        res = vislint.scan(dest, thresholds={"copy_candidate": c})
        took = time.perf_counter() - clock
        m = copy_metrics(res, planted)
        by = " ".join(f"{k} {v:.2f}" for k, v in m["recall_by_kind"].items())
        promised = np.mean([m["recall_by_kind"][k] for k in COPY_KINDS])
        untouched = natural_metrics(res, truth, source.get)
        scene = res.pairs("same_scene")
        print(f"  copy_candidate={c:.2f} P={m['precision']:.3f} (fp {m['fp']}) recall(promised "
              f"kinds)={promised:.3f} | {by} | same-scene pairs {len(scene)} | scan {took:.2f} s")
        print(f"    pairs among the untouched photos called copies, by label: "
              f"{untouched['copy']['by_label']}; same scene: {untouched['same_scene']['by_label']}")
        if c == Thresholds().copy_candidate:
            _natural("pairs among the untouched photos (default thresholds)", untouched, pairs_out,
                     "planted-untouched")


def rotations(shared: Path, sources, work: Path):
    section("Rotation rule: verification correlation of true rotated copies vs other candidates")
    from vislint import _native
    from vislint.checks import rotation as rot
    from vislint.decode import decode_batch
    from vislint.features import fit_centred
    from vislint.knn import knn_graph

    def judged(paths):
        """Decoded images' candidate pairs (i, j) and their verification scores; texture per image."""
        d = decode_batch(paths)
        ok = np.flatnonzero(d.ok)
        ret, polar, info = _native.rotation_features(d.tiles[ok], d.width[ok].astype(np.int32),
                                                     d.height[ok].astype(np.int32))
        tex = info[:, 1] >= rot.TEXTURE_FLOOR
        g = knn_graph(fit_centred(ret, rot.COLOUR_DIMS), rot.CANDIDATES)
        r, c = np.nonzero(g.sims >= rot.CANDIDATE_SIM)
        pairs = np.unique(np.sort(np.stack([r, g.neighbors[r, c]], 1), axis=1), axis=0)
        pairs = pairs[tex[pairs[:, 0]] & tex[pairs[:, 1]]]
        v = _native.rotation_verify(polar, pairs[:, 0], pairs[:, 1])[0]
        return ok, pairs, v, polar, tex, d

    dest = work / "rotations"
    planted = plant_copies(sources, dest, kinds=("rotate_any",), n_originals=300, n_distractors=600, seed=1)
    rels = planted["files"]
    ok, pairs, v, polar, tex, _ = judged([dest / r for r in rels])
    row = {rels[i]: k for k, i in enumerate(ok)}
    truth = {tuple(sorted((row[c], row[o]))) for c, o, _, _ in planted["copies"]}
    is_true = np.array([tuple(p) in truth for p in pairs.tolist()], bool)
    ta = np.array(sorted(truth))
    vt = _native.rotation_verify(polar, ta[:, 0], ta[:, 1])[0]
    found = len({tuple(p) for p in pairs[is_true].tolist()})
    print(f"  planted: {len(truth)} rotated copies (0-360°, half expanded); candidates include {found}; "
          f"verification of all true pairs min {vt.min():.3f} p1 {np.percentile(vt, 1):.3f}; "
          f"other candidates ({(~is_true).sum()}) max {v[~is_true].max() if (~is_true).any() else float('nan'):.3f}")
    intel_paths = sorted((shared / "intel-scenes-sample").rglob("*.jpg"))
    ok, pairs, v, _, _, d = judged(intel_paths)
    h = np.array(d.content_hash, dtype=object)[ok]
    same = h[pairs[:, 0]] == h[pairs[:, 1]]
    from vislint.features import Builtin
    main = Builtin().fit_transform(_native.descriptor(d.tiles[ok]))
    main_sim = np.einsum("ij,ij->i", main[pairs[:, 0]], main[pairs[:, 1]])
    accepted = ~same & (v >= 0.75)
    print(f"  Intel sample: {len(pairs)} textured candidate pairs, {same.sum()} byte-identical "
          f"(verification min {v[same].min() if same.any() else float('nan'):.3f}); the others max "
          f"{v[~same].max():.3f}; accepted (≥ 0.75) {accepted.sum()}, of which already ≥ 0.90 by the "
          f"built-in descriptor: {(main_sim[accepted] >= 0.90).sum()}")


def quality(sources, work: Path):
    section("Planted quality problems: precision/recall vs threshold")
    dest = work / "quality"
    planted = plant_quality(sources, dest, n_each=25, n_clean=600)
    res = vislint.scan(dest)
    df = res.to_dataframe()
    truth = {c: {r for r, k in planted["flags"] if k == c} for c in ("dark", "bright", "blurry", "low_information")}
    sweeps = {
        "blurry": ("sharpness", [0.06, 0.09, 0.12, 0.15, 0.2], "below"),
        "dark": ("lum_p95", [30, 40, 45, 50, 60, 70], "below"),
        "bright": ("lum_p05", [180, 190, 200, 210, 215, 225], "above"),
        "low_information": ("entropy", [1.0, 1.5, 2.0, 2.5, 3.0, 4.0], "below"),
    }
    for check, (stat, values, side) in sweeps.items():
        out = []
        for v in values:
            pred = set(df.loc[(df[stat] < v) if side == "below" else (df[stat] > v), "relpath"])
            tp = len(pred & truth[check])
            out.append(f"{v}: P={tp / len(pred) if pred else 1:.2f} R={tp / len(truth[check]):.2f} (n={len(pred)})")
        print(f"  {check} ({stat} {side}): " + "; ".join(out))


def outliers(work: Path):
    section("Planted outliers: other-domain images, alone and in groups, among Intel photos")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from outliers import measure  # benchmarks/outliers.py

    measure(work / "outliers")


def labels(shared: Path, work: Path):
    section("Planted wrong labels (Intel train images moved to another class): neighbour vote")
    src = shared / "intel-scenes-sample" / "train_set"
    dest = work / "labels" / "train_set"
    shutil.copytree(src, dest)
    rng = np.random.default_rng(0)
    classes = sorted(p.name for p in dest.iterdir())
    moved = set()
    for c in classes:
        files = sorted((dest / c).glob("*.jpg"))
        for f in rng.choice(files, 10, replace=False):
            other = rng.choice([x for x in classes if x != c])
            target = dest / other / f"moved_{f.name}"
            f.rename(target)
            moved.add(f"train_set/{other}/{target.name}")
    res = vislint.scan(work / "labels", thresholds={"label_agreement": 1.0, "label_min_support": 0.0})
    df = res.to_dataframe()
    vote = df[df.conflict_labels.isna()]
    truth = vote.relpath.isin(moved)
    acc = (df.suggested_label.fillna(df.label) == df.label)[~df.relpath.isin(moved)].mean()
    print(f"  neighbour-vote accuracy on unmoved images: {acc:.3f}")
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        pred = (vote.label_agreement <= t) & vote.suggested_label.notna()
        tp = (pred & truth).sum()
        print(f"  agreement≤{t}: P={tp / max(pred.sum(), 1):.2f} R={tp / truth.sum():.2f} (flagged {pred.sum()})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--only", nargs="*", default=None,
                    help="sections: fixtures intel copies rotations quality outliers labels")
    ap.add_argument("--pairs-out", type=Path, default=None,
                    help="write the called pairs no label covers here, as CSV for pair_sheets.py")
    args = ap.parse_args()
    todo = args.only or ["fixtures", "intel", "copies", "rotations", "quality", "outliers", "labels"]
    sources = intel_sources(args.shared)
    with tempfile.TemporaryDirectory() as w:
        work = Path(w)
        if "fixtures" in todo:
            fixtures(args.shared)
        if "intel" in todo:
            intel(args.shared, args.pairs_out)
        if "copies" in todo:
            copies(args.shared, sources, work, args.pairs_out)
        if "rotations" in todo:
            rotations(args.shared, sources, work)
        if "quality" in todo:
            quality(sources, work)
        if "outliers" in todo:
            outliers(work)
        if "labels" in todo:
            labels(args.shared, work)


if __name__ == "__main__":
    main()

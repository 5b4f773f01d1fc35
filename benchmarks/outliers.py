"""Outliers without a model: planted other-domain images among labelled Intel photos.

    .venv/bin/python benchmarks/outliers.py [--work /tmp/vislint-outliers] [--sheets DIR]

Builds four sets, each of the first 300 photos of every class of
``../shared/data/intel-scenes-sample/train_set`` (1,800 photos) plus planted images with random
class labels, in groups of 25, 5 and 1 of one kind each (issue 17: clustered anomalies):

    S1: 25 MNIST digits, 5 noise images, 1 text page
    S2: 25 text pages, 5 medical/microscopy crops, 1 digit
    S3: 25 texture crops, 5 digits, 1 noise image
    S4: 25 medical/microscopy crops, 5 textures, 1 text page

(digits from ``../shared/data/mnist-test-predictions``; textures, microscopy and text-page
crops from scikit-image's sample images, installed with FiftyOne; noise and typed text pages
generated; seed 0). Scans each with the default thresholds and no model, and reports per group
size how many planted images are flagged as outliers (recall) and the share of the untouched
photos flagged, with the neighbour and appearance measures apart. ``--sheets DIR`` saves a
contact sheet of the untouched photos flagged, to look at.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"
INTEL = SHARED / "intel-scenes-sample" / "train_set"
MNIST = SHARED / "mnist-test-predictions" / "test"

SCENARIOS = {"S1": {"digit": 25, "noise": 5, "text": 1}, "S2": {"text": 25, "medical": 5, "digit": 1},
             "S3": {"texture": 25, "digit": 5, "noise": 1}, "S4": {"medical": 25, "texture": 5, "text": 1}}
PER_CLASS = 300


def _skimage_data() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def _crop(im: Image.Image, rng, size: int = 150) -> Image.Image:
    im = im.convert("RGB")
    w, h = im.size
    s = int(min(w, h) * rng.uniform(0.4, 0.9))
    x, y = rng.integers(0, w - s + 1), rng.integers(0, h - s + 1)
    return im.crop((x, y, x + s, y + s)).resize((size, size))


def make(kind: str, rng) -> Image.Image:
    """One planted image of ``kind`` (150 x 150 RGB)."""
    data = _skimage_data()
    if kind == "digit":
        files = sorted(MNIST.glob("*/*.png"))
        return Image.open(files[rng.integers(len(files))]).convert("RGB").resize((150, 150))
    if kind == "noise":
        return Image.fromarray(rng.integers(0, 256, (150, 150, 3), dtype=np.uint8))
    if kind == "text":
        if rng.random() < 0.5:
            return _crop(Image.open(data / rng.choice(["page.png", "text.png"])), rng)
        im = Image.new("RGB", (150, 150), "white")
        draw = ImageDraw.Draw(im)
        for y in range(5, 145, 12):
            draw.text((5, y), "".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz")) for _ in range(24)),
                      fill="black")
        return im
    if kind == "texture":
        return _crop(Image.open(data / rng.choice(["brick.png", "grass.png", "gravel.png"])), rng)
    if kind == "medical":
        return _crop(Image.open(data / rng.choice(["cell.png", "microaneurysms.png", "retina.jpg",
                                                   "ihc.png"])), rng)
    raise ValueError(kind)


def build(dest: Path, planted: dict[str, int], seed: int = 0) -> dict[str, str]:
    """The set at ``dest``; returns {relative path: kind} of the planted images."""
    rng = np.random.default_rng(seed)
    if dest.exists():
        shutil.rmtree(dest)
    classes = sorted(p.name for p in INTEL.iterdir())
    for c in classes:
        (dest / "train_set" / c).mkdir(parents=True)
        for f in sorted((INTEL / c).glob("*.jpg"))[:PER_CLASS]:
            shutil.copy(f, dest / "train_set" / c / f.name)
    truth = {}
    for kind, n in planted.items():
        for i in range(n):
            rel = f"train_set/{classes[rng.integers(len(classes))]}/odd_{kind}_{i:02d}.jpg"
            make(kind, rng).save(dest / rel, quality=90)
            truth[rel] = kind
    return truth


def sheet(paths: list[str], out: Path, side: int = 120, cols: int = 10) -> None:
    rows = max(1, -(-len(paths) // cols))
    canvas = Image.new("RGB", (cols * side, rows * side), "white")
    for i, p in enumerate(paths):
        im = Image.open(p).convert("RGB")
        im.thumbnail((side - 4, side - 4))
        canvas.paste(im, ((i % cols) * side + 2, (i // cols) * side + 2))
    canvas.save(out)


def measure(work: Path, sheets: Path | None = None) -> None:
    """Build the four sets under ``work``, scan them and print the recall and the untouched
    photos flagged (see the module docstring)."""
    import vislint

    t = vislint.Thresholds()
    total = {g: [0, 0] for g in (1, 5, 25)}
    untouched_flagged: dict[str, list[str]] = {}
    print(f"thresholds: outlier_z {t.outlier_z}, outlier_appearance_z {t.outlier_appearance_z}")
    for name, planted in SCENARIOS.items():
        truth = build(work / name, planted)
        res = vislint.scan(work / name, splits=None)
        df = res.images
        kind = df.relpath.map(truth)
        odd = kind.notna().to_numpy()
        flag = df.is_outlier.to_numpy()
        look = (df.outlier_appearance_z >= t.outlier_appearance_z).to_numpy()
        near = (df.outlier_z >= t.outlier_z).to_numpy()
        parts = []
        for k, n in planted.items():
            m = (kind == k).to_numpy()
            total[n][0] += int(flag[m].sum())
            total[n][1] += int(m.sum())
            parts.append(f"{k} ×{n}: {flag[m].sum()}/{m.sum()} (appearance {look[m].sum()}, "
                         f"neighbours {near[m].sum()})")
        untouched_flagged[name] = df.path[~odd & flag].tolist()
        print(f"{name}: " + "; ".join(parts) + f"; untouched photos flagged {(~odd & flag).sum()}/"
              f"{(~odd).sum()} = {(~odd & flag).mean() / (~odd).mean():.2%} (appearance "
              f"{(~odd & look).sum()}, neighbours {(~odd & near).sum()})", flush=True)
    print("recall by group size: " + ", ".join(f"{g}: {a}/{b} = {a / b:.2f}" for g, (a, b) in total.items()))
    if sheets:
        sheets.mkdir(parents=True, exist_ok=True)
        for name, paths in untouched_flagged.items():
            if paths:
                sheet(paths, sheets / f"{name}-untouched-flagged.png")
        print(f"sheets in {sheets}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/vislint-outliers"))
    ap.add_argument("--sheets", type=Path, help="save contact sheets of flagged untouched photos here")
    args = ap.parse_args()
    measure(args.work, args.sheets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

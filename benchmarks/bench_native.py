"""Micro-benchmark of the native core: µs per image, single-threaded.

    .venv/bin/python benchmarks/bench_native.py [--data DIR] [--n 512] [--runs 5]

Decodes ``--n`` real photos (the 150x150 JPEGs of the shared intel-scenes
sample by default) with Pillow once, outside the timing, then times each native
function on them with ``threads=1``: ``tiles_from_images`` (resize to 128x128
tiles), ``image_stats``, ``perceptual_hashes``, ``descriptor`` (on the tiles),
their sum, and the fused ``analyze`` (resize + everything, one pass per image).
Prints the median of ``--runs`` runs (and the best) in µs per image.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vislint import _native as nat

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "intel-scenes-sample"


def load_images(data: Path, n: int) -> list[np.ndarray]:
    paths = sorted(p for p in data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        sys.exit(f"no images under {data}")
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(np.asarray(im.convert("RGB")))
        if len(images) >= n:
            break
    return images


def timed(fn, runs: int, n: int) -> tuple[float, float]:
    """(median, best) µs per image over `runs` calls of fn()."""
    fn()  # warm-up (lookup tables, page faults)
    per = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        per.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(per), min(per)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=512, help="images to time (default 512)")
    ap.add_argument("--runs", type=int, default=5, help="runs per function (default 5)")
    args = ap.parse_args()

    images = load_images(args.data, args.n)
    n = len(images)
    shapes = {im.shape[:2] for im in images}
    size = nat.TILE_SIZE
    tiles = nat.tiles_from_images(images, size=size, threads=1)

    rows = [
        ("tiles_from_images", lambda: nat.tiles_from_images(images, size=size, threads=1)),
        ("image_stats", lambda: nat.image_stats(tiles, threads=1)),
        ("perceptual_hashes", lambda: nat.perceptual_hashes(tiles, threads=1)),
        ("descriptor", lambda: nat.descriptor(tiles, threads=1)),
    ]
    if hasattr(nat, "analyze"):
        rows.append(("analyze", lambda: nat.analyze(images, size=size, threads=1)))

    print(f"{n} images, {len(shapes)} distinct sizes (most common "
          f"{max(shapes, key=lambda s: sum(im.shape[:2] == s for im in images))}), "
          f"threads=1, median of {args.runs} runs")
    print(f"{'function':<22}{'median µs/img':>15}{'best µs/img':>13}")
    total_med = total_best = 0.0
    for name, fn in rows:
        med, best = timed(fn, args.runs, n)
        if name != "analyze":
            total_med += med
            total_best += best
        else:
            print(f"{'sum of the four':<22}{total_med:>15.1f}{total_best:>13.1f}")
        print(f"{name:<22}{med:>15.1f}{best:>13.1f}")
    if not hasattr(nat, "analyze"):
        print(f"{'sum of the four':<22}{total_med:>15.1f}{total_best:>13.1f}")


if __name__ == "__main__":
    main()

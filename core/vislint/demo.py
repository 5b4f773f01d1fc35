"""A small demo image data set with known, planted problems, built offline.

``build_demo(dest)`` writes ~150 JPEGs laid out like the data set of the
fastdup tutorial::

    dest/train_set/<class>/*.jpg
    dest/valid_set/<class>/*.jpg
    dest/test_set/*.jpg          unlabelled
    dest/ground_truth.csv        the answers: kind,file,partner,detail
    dest/README.txt              sources and licences
    dest/.vislint-demo           marker: this folder was made by build_demo

Sources
-------
Every picture is cut from a photo that scikit-image ships inside its wheel
(``skimage/data/`` in site-packages).  The files are opened directly with
Pillow.  ``skimage.data`` is never called, so nothing is fetched from the
network.  If a file is missing, ``FileNotFoundError`` is raised.  Only
images that scikit-image's own notes (the docstrings in
``skimage/data/_fetchers.py``) describe as public domain or CC0 are used:

=========  =============  ===================================================
class      file           licence
=========  =============  ===================================================
astronaut  astronaut.png  public domain (NASA photo of Eileen Collins)
cat        chelsea.png    CC0 (photographer Stefan van der Walt)
coffee     coffee.png     CC0 (photographer Rachel Michetti)
cameraman  camera.png     CC0 (photographer Lav Varshney), grayscale
outlier    text.png       public domain (Wikipedia, File:Corner.png)
outlier    brick.png      CC0 (CC0Textures "Bricks25"), grayscale texture
=========  =============  ===================================================

Originals
---------
Each class photo is tiled at four scales: crops 1/2, 1/3, 1/4 and 1/5 of
its short side.  Crops of one scale do not overlap, and the grid offset
comes from ``seed``.  They are resized to 200x150, 160x160, 120x160 or
128x128.  A crop is kept only if it is a clean picture:

- mean luminance is in [0.2, 0.75];
- contrast (standard deviation) is at least 0.08;
- Laplacian variance is at least 5e-4, so it is not soft;
- its 32x32 grayscale thumbnail differs from that of every crop kept
  earlier by a mean absolute difference of at least 0.08.

So the only problems in the set are the planted ones, and no two distinct
originals are near-duplicates.  In each class, 15 % of the originals go to
valid_set, 15 % to test_set and the rest to train_set.

Planted problems
----------------
Every planted file has one row in ``ground_truth.csv``.  For copies, the
``partner`` column holds the path of the original it was made from.

- ``exact_duplicate``: 2 train images copied byte for byte, each into its
  own class folder.
- ``near_duplicate``: 3 copies of different train images in their class
  folder: re-encoded at JPEG quality 60, resized to 0.6x, mirrored.
- ``leak``: 2 train images copied into valid_set in the same class (one
  byte for byte, one re-encoded at quality 75), and 1 into test_set.
- ``mislabeled_copy``: 1 train image copied byte for byte into another
  class's folder.
- ``corrupt``: 1 train JPEG cut to its first half, and 1 zero-byte valid
  file.
- ``dark`` (brightness x0.15), ``blurry`` (Gaussian blur, radius 4) and
  ``bright`` (80 % blended with white): 1 train image each, changed in
  place.  ``detail`` names the source crop, e.g.
  ``astronaut.png box=(0, 0, 256, 192)``.
- ``outlier``: a crop of text.png dropped into train_set/cat, and a crop of
  the brick wall texture dropped into train_set/coffee.  (The bundled
  microscopy images are smooth by nature and would also read as blurry.)

File names (``0001.jpg``...) are numbered in a seeded random order, so a
name says nothing about the content.  Files are JPEG quality 90 with no
EXIF data.  For the same seed, Pillow and numpy versions, the bytes are
identical from run to run.

Writing
-------
The set is built in ``<dest>.tmp-<pid>`` and then renamed to ``dest``.
The rules when ``dest`` exists:

- If ``dest`` is missing or an empty folder, it is built.
- If it has content and ``overwrite=False``, ``FileExistsError`` is raised.
- With ``overwrite=True``, it is replaced only if it holds the
  ``.vislint-demo`` marker.  Otherwise ``ValueError`` is raised: a folder
  that build_demo did not make is never deleted.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

MARKER = ".vislint-demo"

CLASSES = {
    "astronaut": "astronaut.png",
    "cat": "chelsea.png",
    "coffee": "coffee.png",
    "cameraman": "camera.png",
}
LICENCES = {
    "astronaut.png": "public domain (NASA photo of astronaut Eileen Collins)",
    "chelsea.png": "CC0 (photographer Stefan van der Walt)",
    "coffee.png": "CC0 (photographer Rachel Michetti)",
    "camera.png": "CC0 (photographer Lav Varshney)",
    "text.png": "public domain (Wikipedia, File:Corner.png)",
    "brick.png": "CC0 (brick wall texture from CC0Textures, Bricks25)",
}
# Outliers: (source, crop box, class folder in train_set it is dropped into).
OUTLIERS = [
    ("text.png", (138, 0, 310, 172), "cat"),
    ("brick.png", (0, 0, 256, 256), "coffee"),
]
# Tiling scales: (crop height / short side, crop width / height, output size).
SCALES = [
    (1 / 2, 4 / 3, (200, 150)),
    (1 / 3, 1.0, (160, 160)),
    (1 / 4, 3 / 4, (120, 160)),
    (1 / 5, 1.0, (128, 128)),
]
MIN_THUMB_MAD = 0.08  # how much distinct originals' 32x32 thumbnails differ


@dataclass
class DemoInfo:
    root: Path
    n_images: int
    planted: list[dict]  # {"kind", "files": [file, partner?], "detail"}


@dataclass(eq=False)
class _File:
    split: str  # train_set, valid_set or test_set
    label: str | None  # class folder, None in test_set
    data: bytes
    origin: str  # e.g. "coffee.png box=(0, 0, 200, 150)"
    path: str = ""  # relative POSIX path, given once every file exists


def build_demo(dest: str | Path, *, seed: int = 0, overwrite: bool = False) -> DemoInfo:
    """Build the demo data set in ``dest`` and return what was planted."""
    dest = Path(dest)
    _check_dest(dest, overwrite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    try:
        rng = np.random.default_rng(seed)
        files = _originals(rng)
        planted = _plant(files, rng)
        for f, number in zip(files, rng.permutation(len(files)) + 1):
            f.path = "/".join(filter(None, [f.split, f.label, f"{number:04d}.jpg"]))
        _write(tmp, files, planted, seed)
        _swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DemoInfo(
        root=dest,
        n_images=len(files),
        planted=[
            {"kind": kind, "files": [f.path] + ([p.path] if p else []), "detail": detail}
            for kind, f, p, detail in planted
        ],
    )


def _check_dest(dest: Path, overwrite: bool) -> None:
    if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
        return
    if not overwrite:
        raise FileExistsError(
            f"{dest} exists and is not empty; pass overwrite=True to rebuild a demo "
            "there, or choose another folder"
        )
    if not (dest / MARKER).is_file():
        raise ValueError(
            f"refusing to replace {dest}: it has no {MARKER} marker, so build_demo did not make it"
        )


def _swap_in(tmp: Path, dest: Path) -> None:
    if dest.exists():
        old = dest.with_name(f"{dest.name}.old-{os.getpid()}")
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old)
    else:
        tmp.rename(dest)


def _open_bundled(name: str) -> Image.Image:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("build_demo needs scikit-image: pip install scikit-image")
    path = Path(spec.origin).parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: build_demo only uses images bundled with scikit-image "
            "and never downloads"
        )
    with Image.open(path) as im:
        return im.convert("RGB")


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _scaled(im: Image.Image, factor: float) -> Image.Image:
    size = (round(im.width * factor), round(im.height * factor))
    return im.resize(size, Image.Resampling.LANCZOS)


def _gray(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=float) / 255


def _thumb(im: Image.Image) -> np.ndarray:
    return _gray(im.resize((32, 32), Image.Resampling.BILINEAR))


def _is_clean(im: Image.Image) -> bool:
    g = _gray(im)
    laplacian = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return 0.2 <= g.mean() <= 0.75 and g.std() >= 0.08 and laplacian.var() >= 5e-4


def _tiles(photo: Image.Image, rng: np.random.Generator):
    """Yield (box, resized crop) for non-overlapping grids at every scale."""
    w, h = photo.size
    for frac, aspect, size in SCALES:
        ch = round(min(w, h) * frac)
        cw = round(ch * aspect)
        rows, cols = h // ch, w // cw
        y0 = int(rng.integers(h - rows * ch + 1))
        x0 = int(rng.integers(w - cols * cw + 1))
        for r in range(rows):
            for c in range(cols):
                box = (x0 + c * cw, y0 + r * ch, x0 + (c + 1) * cw, y0 + (r + 1) * ch)
                yield box, photo.crop(box).resize(size, Image.Resampling.LANCZOS)


def _originals(rng: np.random.Generator) -> list[_File]:
    files: list[_File] = []
    kept_thumbs: list[np.ndarray] = []
    for label, source in CLASSES.items():
        kept = []
        for box, im in _tiles(_open_bundled(source), rng):
            thumb = _thumb(im)
            distinct = all(np.abs(thumb - t).mean() >= MIN_THUMB_MAD for t in kept_thumbs)
            if distinct and _is_clean(im):
                kept_thumbs.append(thumb)
                kept.append(_File("train_set", label, _jpeg(im), f"{source} box={box}"))
        n_held_out = round(0.15 * len(kept))
        for rank, i in enumerate(rng.permutation(len(kept))):
            if rank < n_held_out:
                kept[i].split = "valid_set"
            elif rank < 2 * n_held_out:
                kept[i].split, kept[i].label = "test_set", None
        files += kept
    return files


def _plant(files: list[_File], rng: np.random.Generator) -> list[tuple]:
    """Plant the problems; return (kind, file, partner or None, detail) rows."""
    train = [f for f in files if f.split == "train_set"]
    valid = [f for f in files if f.split == "valid_set"]
    picks = iter([train[i] for i in rng.permutation(len(train))])
    planted = []

    def copy(kind, detail, src, **changes):
        new = replace(src, **changes)
        files.append(new)
        planted.append((kind, new, src, detail))

    def edit(kind, detail, f, data):
        f.data = data
        planted.append((kind, f, None, detail))

    for _ in range(2):
        copy("exact_duplicate", "byte-identical copy", next(picks))
    near = [
        ("re-encoded at JPEG quality 60", lambda im: _jpeg(im, 60)),
        ("resized to 0.6x", lambda im: _jpeg(_scaled(im, 0.6))),
        ("mirrored left-right", lambda im: _jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT))),
    ]
    for detail, change in near:
        src = next(picks)
        copy("near_duplicate", detail, src, data=change(_decode(src.data)))

    copy("leak", "train image copied byte for byte into valid_set", next(picks), split="valid_set")
    src = next(picks)
    copy("leak", "train image re-encoded at JPEG quality 75 into valid_set", src,
         split="valid_set", data=_jpeg(_decode(src.data), 75))
    copy("leak", "train image copied byte for byte into test_set", next(picks),
         split="test_set", label=None)

    src = next(picks)
    other = str(rng.choice([c for c in CLASSES if c != src.label]))
    copy("mislabeled_copy", f"{src.label} image copied byte for byte into {other}", src,
         label=other)

    f = next(picks)
    edit("corrupt", "JPEG truncated to its first half", f, f.data[: len(f.data) // 2])
    edit("corrupt", "zero-byte file", valid[int(rng.integers(len(valid)))], b"")
    f = next(picks)
    edit("dark", f"{f.origin}, brightness x0.15", f,
         _jpeg(ImageEnhance.Brightness(_decode(f.data)).enhance(0.15)))
    f = next(picks)
    edit("blurry", f"{f.origin}, Gaussian blur radius 4", f,
         _jpeg(_decode(f.data).filter(ImageFilter.GaussianBlur(4))))
    f = next(picks)
    im = _decode(f.data)
    edit("bright", f"{f.origin}, blended 80 % with white", f,
         _jpeg(Image.blend(im, Image.new("RGB", im.size, "white"), 0.8)))

    for source, box, label in OUTLIERS:
        im = _open_bundled(source).crop(box).resize((160, 160), Image.Resampling.LANCZOS)
        outlier = _File("train_set", label, _jpeg(im), f"{source} box={box}")
        files.append(outlier)
        planted.append(("outlier", outlier, None, f"{outlier.origin}, not a {label} picture"))
    return planted


def _write(root: Path, files: list[_File], planted: list[tuple], seed: int) -> None:
    for f in files:
        path = root / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.data)
    with open(root / "ground_truth.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["kind", "file", "partner", "detail"])
        for kind, f, partner, detail in planted:
            writer.writerow([kind, f.path, partner.path if partner else "", detail])
    sources = "\n".join(f"  {name:<14} {licence}" for name, licence in LICENCES.items())
    (root / "README.txt").write_text(
        f"vislint demo data set, built by vislint.demo.build_demo(seed={seed}).\n\n"
        "Layout: train_set/<class>/*.jpg, valid_set/<class>/*.jpg, test_set/*.jpg (unlabelled).\n"
        f"Classes: {', '.join(CLASSES)}.\n"
        "ground_truth.csv lists every planted problem (kind,file,partner,detail).\n\n"
        "Every picture is a crop of one of these photos bundled with scikit-image\n"
        "(licences as stated in skimage/data/_fetchers.py):\n"
        f"{sources}\n",
        encoding="utf-8",
    )
    (root / MARKER).write_text("built by vislint.demo.build_demo\n", encoding="utf-8")

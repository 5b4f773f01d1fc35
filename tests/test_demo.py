import csv
import importlib.util
import itertools
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislint import demo
from vislint.demo import build_demo

CLASSES = {"astronaut", "cat", "coffee", "cameraman"}
# Thumbnails of distinct originals differ by >= 0.0806 on disk (seed 0); the
# builder keeps crops >= 0.08 apart before JPEG encoding.  Planted near copies
# (except the mirror) are < 0.002 from their partner.
MIN_ORIGINAL_MAD = 0.07


def rel_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def ground_truth(root: Path) -> list[dict]:
    with open(root / "ground_truth.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=float) / 255


def thumb(path: Path) -> np.ndarray:
    im = Image.open(path).convert("L").resize((32, 32), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=float) / 255


def laplacian_var(g: np.ndarray) -> float:
    return (4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]).var()


def source_crop(detail: str) -> np.ndarray:
    """Grayscale pixels of the bundled-photo region named in a ``detail``."""
    name, *box = re.match(r"(\S+) box=\((\d+), (\d+), (\d+), (\d+)\)", detail).groups()
    data_dir = Path(importlib.util.find_spec("skimage").origin).parent / "data"
    crop = Image.open(data_dir / name).convert("RGB").crop(tuple(map(int, box)))
    return np.asarray(crop.convert("L"), dtype=float) / 255


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "data"
    return build_demo(root)


def rows_of(info, kind):
    return [r for r in ground_truth(info.root) if r["kind"] == kind]


def test_build_is_deterministic(tmp_path, built, capsys):
    start = time.perf_counter()
    build_demo(tmp_path / "again")
    with capsys.disabled():
        print(f"\nbuild_demo: {built.n_images} images in {time.perf_counter() - start:.2f} s")
    files = rel_files(built.root)
    assert rel_files(tmp_path / "again") == files
    for f in files:
        assert (tmp_path / "again" / f).read_bytes() == (built.root / f).read_bytes(), f

    other = build_demo(tmp_path / "seed1", seed=1)
    assert [r["file"] for r in ground_truth(other.root)] != [
        r["file"] for r in ground_truth(built.root)
    ]


def test_layout_and_counts(built):
    root = built.root
    jpgs = [p for p in root.rglob("*") if p.is_file() and p.suffix == ".jpg"]
    assert len(jpgs) == built.n_images
    assert 120 <= built.n_images <= 200
    assert {p.name for p in (root / "train_set").iterdir()} == CLASSES
    assert {p.name for p in (root / "valid_set").iterdir()} == CLASSES
    assert all(p.is_file() and p.suffix == ".jpg" for p in (root / "test_set").iterdir())
    assert {p.name for p in root.iterdir()} == {
        "train_set", "valid_set", "test_set", "ground_truth.csv", "README.txt", ".vislint-demo"
    }
    readme = (root / "README.txt").read_text(encoding="utf-8")
    for name, licence in demo.LICENCES.items():
        assert f"{name}" in readme and licence in readme
        assert licence.startswith(("CC0", "public domain"))


def test_ground_truth_matches_disk_and_info(built):
    rows = ground_truth(built.root)
    assert Counter(r["kind"] for r in rows) == {
        "exact_duplicate": 2, "near_duplicate": 3, "leak": 3, "mislabeled_copy": 1,
        "corrupt": 2, "dark": 1, "blurry": 1, "bright": 1, "outlier": 2,
    }
    for r in rows:
        assert (built.root / r["file"]).is_file(), r
        assert not r["partner"] or (built.root / r["partner"]).is_file(), r
    assert built.planted == [
        {"kind": r["kind"], "files": [r["file"]] + [r["partner"]] * bool(r["partner"]),
         "detail": r["detail"]}
        for r in rows
    ]
    assert len({r["file"] for r in rows}) == len(rows)


def test_copies_and_leaks(built):
    root = built.root
    for r in rows_of(built, "exact_duplicate") + rows_of(built, "mislabeled_copy"):
        assert (root / r["file"]).read_bytes() == (root / r["partner"]).read_bytes()
    (mislabeled,) = rows_of(built, "mislabeled_copy")
    assert mislabeled["file"].split("/")[1] != mislabeled["partner"].split("/")[1]

    leaks = rows_of(built, "leak")
    assert sorted(r["file"].split("/")[0] for r in leaks) == ["test_set", "valid_set", "valid_set"]
    for r in leaks:
        assert r["partner"].startswith("train_set/")
        if r["file"].startswith("valid_set/"):  # same class folder
            assert r["file"].split("/")[1] == r["partner"].split("/")[1]
        exact = (root / r["file"]).read_bytes() == (root / r["partner"]).read_bytes()
        assert exact == ("byte for byte" in r["detail"])

    for r in rows_of(built, "near_duplicate") + leaks:
        if "near" in r["kind"]:
            assert (root / r["file"]).read_bytes() != (root / r["partner"]).read_bytes()
        if "mirrored" not in r["detail"]:
            assert np.abs(thumb(root / r["file"]) - thumb(root / r["partner"])).mean() < 0.01


def test_corrupt_files(built):
    root = built.root
    truncated, empty = (root / r["file"] for r in rows_of(built, "corrupt"))
    assert truncated.stat().st_size > 1000
    with pytest.raises(OSError):
        with Image.open(truncated) as im:
            im.load()
    assert empty.stat().st_size == 0
    for p in root.rglob("*.jpg"):
        if p not in (truncated, empty):
            with Image.open(p) as im:
                im.load()


def test_quality_problems_against_their_source(built):
    root = built.root
    (dark,) = rows_of(built, "dark")
    assert gray(root / dark["file"]).mean() < 0.3 * source_crop(dark["detail"]).mean()
    (bright,) = rows_of(built, "bright")
    assert gray(root / bright["file"]).mean() > 0.8
    (blurry,) = rows_of(built, "blurry")
    planted = {r["file"] for r in ground_truth(root)}
    sharpness = [laplacian_var(gray(p)) for p in root.rglob("*.jpg")
                 if p.relative_to(root).as_posix() not in planted]
    assert laplacian_var(gray(root / blurry["file"])) < 0.2 * min(sharpness)


def test_distinct_originals_are_not_near_copies(built, capsys):
    root = built.root
    planted = {r["file"] for r in ground_truth(root)}
    originals = [p for p in sorted(root.rglob("*.jpg"))
                 if p.relative_to(root).as_posix() not in planted]
    assert len(originals) >= 100
    thumbs = np.stack([thumb(p) for p in originals])
    closest = min(np.abs(a - b).mean() for a, b in itertools.combinations(thumbs, 2))
    with capsys.disabled():
        print(f"\n{len(originals)} originals, closest pair: thumbnail MAD {closest:.4f}")
    assert closest > MIN_ORIGINAL_MAD


def test_overwrite_rules(tmp_path, monkeypatch):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        build_demo(foreign)
    with pytest.raises(ValueError, match=".vislint-demo"):
        build_demo(foreign, overwrite=True)
    assert rel_files(foreign) == ["keep.txt"]

    a_file = tmp_path / "file.jpg"
    a_file.write_bytes(b"x")
    with pytest.raises(ValueError):
        build_demo(a_file, overwrite=True)
    assert a_file.read_bytes() == b"x"

    dest = tmp_path / "empty"
    dest.mkdir()
    build_demo(dest)  # an empty folder is fine
    with pytest.raises(FileExistsError):
        build_demo(dest)
    (dest / "stray.txt").write_text("gone after rebuild")
    build_demo(dest, seed=1, overwrite=True)
    assert not (dest / "stray.txt").exists()
    assert "seed=1" in (dest / "README.txt").read_text(encoding="utf-8")

    before = {f: (dest / f).read_bytes() for f in rel_files(dest)}
    monkeypatch.setattr(demo, "_write", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        build_demo(dest, overwrite=True)
    assert {f: (dest / f).read_bytes() for f in rel_files(dest)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file.jpg", "mine"]


def test_builds_offline_without_importing_skimage(tmp_path):
    code = (
        "import socket, sys\n"
        "def no_network(*a, **k): raise AssertionError('network access')\n"
        "socket.socket = socket.create_connection = no_network\n"
        "from vislint.demo import build_demo\n"
        f"build_demo({str(tmp_path / 'd')!r})\n"
        "assert 'skimage' not in sys.modules and 'pooch' not in sys.modules\n"
    )
    core = Path(demo.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(core)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)

"""Shared fixtures. Real data from ../shared/data when present (skipped otherwise);
everything else is generated here, deterministically."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def shared(sub: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED / sub
    if not path.exists():
        pytest.skip(f"{path} is absent (real data lives beside the checkout in CI only)")
    return path


def smooth_image(rng: np.random.Generator, size=(96, 96)) -> Image.Image:
    """A photo-like image: a random low-frequency colour field plus mild noise."""
    h, w = size
    coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
    im = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.int16) + rng.integers(-8, 9, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def write_images(folder: Path, n: int, seed: int = 0, prefix: str = "img") -> list[Path]:
    """n distinct generated JPEGs in folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{prefix}{i:05d}.jpg"
        smooth_image(rng).save(p, quality=90)
        paths.append(p)
    return paths


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """The built-in demo data set (built once per test session)."""
    from vislint.demo import build_demo

    return build_demo(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(scope="session")
def demo_scan(demo_data, tmp_path_factory):
    import vislint

    out = tmp_path_factory.mktemp("demo-out")
    return vislint.scan(demo_data.root, out=out), out


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

"""Shared fixtures. Real data from ../shared/data when present (skipped otherwise);
everything else is generated here, deterministically."""
from __future__ import annotations

import inspect
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


def fingerprint(folder: Path) -> dict:
    """{relative path: (bytes hash, mtime)} of every file under ``folder``: equal before and
    after means nothing there was written."""
    import hashlib

    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


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


# ---------------------------------------------------------------------------------- test tiers
# Every test gets one or more tier markers from what it uses (tests/README.md):
#   services  a fixture or helper that starts mongod, the FiftyOne App or Label Studio
#   browser   the headless chromium helper (browser.chromium_page, *_services.open_in_browser)
#   quality   the real data in ../shared/data (shared(), a path under SHARED, @shared_data)
#   unit      none of these: the fast tier, `pytest -m unit`
# A name counts when a test, one of its fixtures, or a helper function of the tests they call
# (followed through module globals, not into the package) refers to it.

SERVICE_NAMES = frozenset({"fo_db", "fo_app", "ls_server", "ls_client",
                           "start_mongod", "launch_app", "start_label_studio"})
BROWSER_NAMES = frozenset({"chromium_page", "open_in_browser"})
SHARED_NAMES = frozenset({"shared"})
TIERS = ("unit", "services", "browser", "quality")
_TESTS_DIR = str(Path(__file__).resolve().parent)


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            yield from _code_objects(const)


def _names_reached(funcs) -> tuple[set[str], bool]:
    """Global and attribute names the functions' code refers to, following helpers defined in
    tests/; and whether one of them is a path inside the shared data."""
    names: set[str] = set()
    uses_shared_path = False
    todo, seen = list(funcs), set()
    while todo:
        fn = inspect.unwrap(todo.pop())
        code = getattr(fn, "__code__", None)
        if code is None or code in seen:
            continue
        seen.add(code)
        env = getattr(fn, "__globals__", {})
        for c in _code_objects(code):
            for name in c.co_names:
                names.add(name)
                value = env.get(name)
                if isinstance(value, Path) and value.is_relative_to(SHARED):
                    uses_shared_path = True
                elif (inspect.isfunction(value)
                      and value.__code__.co_filename.startswith(_TESTS_DIR)):
                    todo.append(value)
    return names, uses_shared_path


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        funcs = [getattr(item, "obj", None)] + [d.func for fds in defs.values() for d in fds]
        names, uses_shared_path = _names_reached(f for f in funcs if f is not None)
        names |= fixtures
        tiers = set()
        if names & SERVICE_NAMES:
            tiers.add("services")
        if names & BROWSER_NAMES:
            tiers.add("browser")
        if (names & SHARED_NAMES or uses_shared_path
                or item.get_closest_marker("shared_data") is not None):
            tiers.add("quality")
        tiers = {m.name for m in item.iter_markers() if m.name in TIERS} or tiers or {"unit"}
        for tier in sorted(tiers):
            item.add_marker(tier)

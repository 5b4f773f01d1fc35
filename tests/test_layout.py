"""The package layout rules of ARCHITECTURE.md, checked."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_engine_never_imports_integrations():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    r = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], capture_output=True,
                       text=True, cwd=ROOT / "tests")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "KEPT" in r.stdout


def test_no_generic_top_level_names():
    if "_editable_skbc_vislint" in sys.modules:
        pytest.skip("editable install: its path hook exposes the source tree (CI tests a real install)")
    for name in ("core", "integrations", "native"):
        assert importlib.util.find_spec(name) is None, f"'import {name}' must not exist"


def test_import_is_light():
    code = "import sys, vislint; print(sorted(m for m in ('faiss', 'pandas', 'vislint._native') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "tests")
    assert r.stdout.strip() == "[]", r.stdout + r.stderr

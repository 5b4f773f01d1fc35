"""The scripts in examples/ run as a user runs them: `python examples/X.py`, in a fresh folder,
on the demo data set they build themselves, against the real FiftyOne database and Label Studio
server the fixtures start."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fo_fixtures import fo_db  # noqa: F401  (fixtures)
from ls_fixtures import ls_server  # noqa: F401  (fixtures)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args, cwd: Path, env: dict | None = None) -> str:
    """Run examples/<name> in ``cwd``; its stdout (fails with its stderr)."""
    r = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd,
                       env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=600)
    print(r.stdout)  # shown by pytest -s, or when the test fails
    assert r.returncode == 0, f"{name} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """One folder for the examples without services: the first builds ./vislint-demo, the
    others find and reuse it."""
    return tmp_path_factory.mktemp("examples")


def test_every_example_says_how_to_run_it():
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        doc = script.read_text().split('"""')[1]
        assert f"python examples/{script.name}" in doc, script.name
    listed = (EXAMPLES / "README.md").read_text()
    assert all(s.name in listed for s in scripts)


def test_scan_folder(workspace):
    out = run_example("scan_folder.py", cwd=workspace)
    assert "near_duplicate" in out and "train_set/coffee/0059.jpg      truncated" in out
    assert (workspace / "vislint-out" / "report.html").is_file()


def test_evaluate(workspace):
    out = run_example("evaluate.py", cwd=workspace)
    pairs = next(line.split() for line in out.splitlines() if line.split()[:2] == ["duplicate", "pairs"])
    assert pairs[-3:] == ["1.000", "1.000", "1.000"], out  # every planted copy, nothing else


def test_onnx_model(workspace):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = run_example("onnx_model.py", cwd=workspace)
    assert (workspace / "tiny-embedder.onnx").is_file()
    assert "with precomputed vectors:" in out


def test_fiftyone_scan(fo_db, tmp_path):
    out = run_example("fiftyone_scan.py", cwd=tmp_path)  # FiftyOne's settings come from fo_db
    assert "saved views: " in out and "vislint: duplicates, " in out and "vislint: leaks" in out
    assert "a delete would remove" in out and "dry run" in out
    assert "runs: ['vislint']" in out


def test_label_studio_loop(ls_server, tmp_path):
    env = {**os.environ, "LABEL_STUDIO_API_KEY": ls_server.api_key}
    out = run_example("label_studio_loop.py", "--url", ls_server.url, "--document-root",
                      ls_server.document_root, "--project", "examples loop", "--out",
                      tmp_path / "out", "--review-as-script", cwd=tmp_path, env=env)
    assert "reviewed duplicates:" in out and "reviewed dark:" in out
    assert "not_duplicate" in out and "dark:keep by" in out  # pulled, then honoured by the rescan
    assert (tmp_path / "out" / "decisions.csv").is_file()

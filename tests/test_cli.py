"""The command line, run as a user runs it (a subprocess)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import write_images


def vislint(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vislint", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_help_teaches_every_check():
    r = vislint("scan", "--help")
    assert r.returncode == 0
    for check in ("invalid", "exact_duplicate", "near_duplicate", "leak", "label_conflict", "outlier",
                  "blurry", "dark", "bright", "low_information", "odd_size", "grayscale"):
        assert check in r.stdout
    assert "--near-duplicate" in r.stdout and "--out" in r.stdout


def test_scan_json_and_show(tmp_path):
    data = tmp_path / "data"
    paths = write_images(data / "train" / "cats", 8) + write_images(data / "valid" / "cats", 4, seed=1)
    (data / "valid" / "cats" / "leak.jpg").write_bytes(paths[0].read_bytes())
    (data / "train" / "cats" / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    r = vislint("scan", data, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["images"] == 14
    assert summary["invalid_by_reason"] == {"zero_bytes": 1}
    assert summary["checks"]["exact_duplicate"] == {"images": 2, "groups": 1,
                                                     "threshold": "same bytes or same pixels"}
    assert summary["leak_table"] == {"train": {"valid": 1}, "valid": {"train": 1}}
    r = vislint("show", out)
    assert r.returncode == 0
    assert "exact duplicates 1 groups, 2 images" in " ".join(r.stdout.split())
    assert "train images with a copy in valid: 1" in r.stdout
    assert f"vislint show {out}" in r.stdout


def test_bad_input_exits_2_with_a_hint(tmp_path):
    r = vislint("scan", tmp_path / "nope")
    assert r.returncode == 2
    assert "nope" in r.stderr and "Traceback" not in r.stderr
    r = vislint("show", tmp_path)
    assert r.returncode == 2 and "vislint scan" in r.stderr
    r = vislint("scan", tmp_path, "--near-duplicate", "abc")
    assert r.returncode == 2


def test_version_and_module_entry_point():
    r = vislint("--version")
    assert r.returncode == 0 and r.stdout.startswith("vislint ")


def test_demo_command_builds_and_scans(tmp_path):
    r = vislint("demo", "--data", tmp_path / "demo", "--out", tmp_path / "out", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["images"] > 100
    c = summary["checks"]
    assert c["invalid"]["images"] == 2
    assert c["exact_duplicate"]["groups"] >= 4 and c["near_duplicate"]["groups"] >= 3
    assert c["leak"]["groups"] >= 3 and c["label_conflict"]["groups"] >= 1
    assert c["dark"]["images"] >= 1 and c["blurry"]["images"] >= 1
    assert (tmp_path / "out" / "manifest.json").is_file()
    r = vislint("demo", "--data", tmp_path / "demo", "--out", tmp_path / "out")  # again: rebuilt, rescanned
    assert r.returncode == 0 and "vislint scanned" in r.stdout


def test_blas_threads_sleep_in_the_command_unless_told_and_nothing_loads_numpy_first():
    code = ("import sys, os, vislint.cli; loaded = 'numpy' in sys.modules; "
            "vislint.cli.before_numpy(); print(loaded, os.environ['OPENBLAS_THREAD_TIMEOUT'])")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "4"]  # run() sets it before anything loads NumPy
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "OPENBLAS_THREAD_TIMEOUT": "10"}, check=True)
    assert out.stdout.split() == ["False", "10"]  # the user's own setting wins


def test_blas_threads_sleep_when_vislint_is_what_loads_numpy():
    code = ("import sys, os, vislint; vislint.{name}; "
            "print('numpy' in sys.modules, os.environ.get('OPENBLAS_THREAD_TIMEOUT'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    for name, want in (("scan", ["True", "4"]), ("features", ["True", "4"])):
        out = subprocess.run([sys.executable, "-c", code.format(name=name)], capture_output=True,
                             text=True, env=env, check=True)
        assert out.stdout.split() == want
    out = subprocess.run([sys.executable, "-c", "import numpy; " + code.format(name="scan")],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "None"]  # a program that loaded NumPy keeps its own


def test_a_scan_shows_a_bar_with_a_time_estimate_per_stage(tmp_path):
    write_images(tmp_path / "data", 12)
    r = vislint("scan", tmp_path / "data", "--out", tmp_path / "out", "--no-report")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.replace("\r", "\n").splitlines()
    for name, total, unit in (("decode", 12, "img"), ("graph", 12, "img"), ("checks", None, "check")):
        done = [ln for ln in lines if ln.startswith(f"{name}: 100%")]
        assert done, (name, r.stderr)
        assert f"{unit}/s" in done[-1] and "<00:00" in done[-1]  # rate, and the estimate to go
        if total:
            assert f"{total}/{total}" in done[-1]
    r = vislint("scan", tmp_path / "data", "--quiet", "--no-report")
    assert r.returncode == 0 and "100%" not in r.stderr


def test_a_scan_from_python_is_tuned_while_it_runs_and_restores_the_collector(tmp_path):
    import gc

    import pyarrow as pa

    from vislint.pipeline import scan
    from vislint.tuning import GC_THRESHOLD

    paths = [str(p) for p in write_images(tmp_path, 4)]
    seen = []
    before = gc.get_threshold()
    env = {k: os.environ.pop(k, None) for k in ("ARROW_DEFAULT_MEMORY_POOL", "OMP_WAIT_POLICY")}
    try:
        scan(paths, threads=1, progress=lambda done, total: seen.append(
            (gc.get_threshold()[0], pa.default_memory_pool().backend_name,
             os.environ.get("OMP_WAIT_POLICY"))))
    finally:
        for k, v in env.items():
            if v is not None:
                os.environ[k] = v
    assert seen and seen[-1] == (GC_THRESHOLD, "system", "PASSIVE")
    assert gc.get_threshold() == before

"""A scan over a corpus of bad and odd files: every file is classified, the scan
completes with exit code 0, and the invalid count is shown."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

import vislint
from corpus import gradient, write_corpus


def test_bad_input_corpus_scan_completes_and_classifies_every_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cases = write_corpus(data)
    folder = data / "x.jpg"  # a folder with an image name is walked, not read
    folder.mkdir()
    gradient(50, 40).save(folder / "inside.png")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "vislint", "scan", str(data), "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    expected = {}
    for case in cases.values():
        if case.reason:
            expected[case.reason] = expected.get(case.reason, 0) + 1
    assert summary["images"] == len(cases) + 1
    assert summary["invalid_by_reason"] == expected
    assert summary["checks"]["invalid"]["images"] == sum(expected.values())

    df = vislint.load(out).to_dataframe().set_index("relpath")
    for name, case in cases.items():
        row = df.loc[name]
        if case.reason:
            assert row.is_invalid and row.invalid_reason == case.reason, name
            assert isinstance(row.invalid_message, str) and len(row.invalid_message) > 10
        else:
            assert not row.is_invalid, (name, row.invalid_message)
            assert (row.width, row.height) == case.size, name
    assert not df.loc["x.jpg/inside.png"].is_invalid
    r = subprocess.run([sys.executable, "-m", "vislint", "show", str(out)], capture_output=True, text=True)
    assert f"invalid          {sum(expected.values())} (" in r.stdout


def test_same_pixels_in_another_encoding_are_exact_duplicates(tmp_path):
    rng = np.random.default_rng(3)
    base = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).resize((160, 120))
    base.save(tmp_path / "a.png")
    base.save(tmp_path / "b.bmp")
    base.save(tmp_path / "c.jpg", quality=95)  # lossy: a near duplicate, not an exact one
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(tmp_path / f"o{i}.png")
    df = vislint.scan(tmp_path).to_dataframe().set_index("relpath")
    assert df.loc["a.png"].is_exact_duplicate and df.loc["b.bmp"].is_exact_duplicate
    assert df.loc["a.png"].exact_group == df.loc["b.bmp"].exact_group
    assert not df.loc["c.jpg"].is_exact_duplicate and df.loc["c.jpg"].is_near_duplicate
    assert df.loc["c.jpg"].duplicate_group == df.loc["a.png"].duplicate_group

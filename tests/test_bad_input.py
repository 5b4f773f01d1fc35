"""A scan over a corpus of bad and odd files: every file is classified, the scan
completes with exit code 0, and the invalid count is shown."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

import vislint
from corpus import BOMB_SIDE, gradient, png_claiming_size, png_gray16_zeros, write_corpus, write_hostile
from vislint.decode import decode_one


def test_bad_input_corpus_scan_completes_and_classifies_every_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cases = write_corpus(data)
    cases.update(write_hostile(data))  # FIFO, /dev/zero link, symlink loop, non-UTF-8 name, ...
    folder = data / "x.jpg"  # a folder with an image name is walked, not read
    folder.mkdir()
    gradient(50, 40).save(folder / "inside.png")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "vislint", "scan", str(data), "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1 file name is not valid UTF-8 (first: caf\\xe9.jpg)" in r.stderr
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
            assert "root:x" not in row.invalid_message  # a file's content is never echoed
        else:
            assert not row.is_invalid, (name, row.invalid_message)
            assert (row.width, row.height) == case.size, name
    assert not df.loc["x.jpg/inside.png"].is_invalid
    r = subprocess.run([sys.executable, "-m", "vislint", "show", str(out)], capture_output=True, text=True)
    assert f"  invalid files           {sum(expected.values())}\n" in r.stdout
    assert "  invalid files by reason: " + ", ".join(
        f"{k}: {v}" for k, v in sorted(expected.items())) in r.stdout


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


def test_hostile_files_get_reasons_that_say_what_they_are(tmp_path):
    cases = write_hostile(tmp_path)
    for name in ("fifo.jpg", "dev_zero.jpg", "loop_a.jpg", "secret.png"):
        tile, info = decode_one(cases[name].path)
        assert tile is None and info.reason == cases[name].reason, name
    assert "FIFO" in decode_one(cases["fifo.jpg"].path)[1].message
    assert "character device" in decode_one(cases["dev_zero.jpg"].path)[1].message
    assert "symbolic links" in decode_one(cases["loop_a.jpg"].path)[1].message
    assert decode_one(cases["secret.png"].path)[1].message.startswith(
        "the content is not an image: text with no known image signature")


def test_a_16_bit_png_bomb_decodes_in_bounded_memory(tmp_path):
    # 360 kB on disk, 169 M pixels (under max_pixels) of 2 bytes: decoding used to convert it
    # to float64 at full size, 3.1 GB in one worker
    path = tmp_path / "bomb.png"
    path.write_bytes(png_gray16_zeros(BOMB_SIDE, BOMB_SIDE))
    assert path.stat().st_size < 500_000
    code = ("import resource, sys\n"
            "from vislint.decode import decode_one\n"
            "tile, info = decode_one(sys.argv[1])\n"
            "print(info.reason, info.width, info.height, int(tile.max()),\n"
            "      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    reason, width, height, brightest, peak_kib = r.stdout.split()
    assert (reason, int(width), int(height), int(brightest)) == ("None", BOMB_SIDE, BOMB_SIDE, 0)
    raster = BOMB_SIDE ** 2 * 2  # Pillow's own 16-bit raster, unavoidable for a PNG
    assert int(peak_kib) * 1024 < raster + 400 * 2**20, f"peak {int(peak_kib) / 2**20:.2f} GiB"


def test_decoding_memory_is_budgeted_by_depth_and_bands(tmp_path):
    # 12,000 x 12,000 = 144 M pixels, under max_pixels; as RGBA, compositing over white needs
    # ~1.7 GB (4 bytes stored + 8 converting), over the 8 x max_pixels bytes budget
    (tmp_path / "rgba.png").write_bytes(png_claiming_size(12000, 12000, color_type=6))
    tile, info = decode_one(tmp_path / "rgba.png")
    assert tile is None and info.reason == "too_large" and "MiB to decode" in info.message
    # the same size in 8-bit grey needs 5 bytes a pixel: within budget, so it is decoded
    (tmp_path / "gray.png").write_bytes(png_claiming_size(12000, 12000))
    assert decode_one(tmp_path / "gray.png")[1].reason != "too_large"

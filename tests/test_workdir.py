"""The work dir keeps one complete scan whatever happens: a scan killed while it writes its
tables leaves the previous scan readable, two scans never interleave in one work dir, a work
dir inside the scanned folder is not scanned as data, and a read-only or full disk gives a
message, not a traceback (issue 13: D7, D8, D9, D20)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import vislint
from conftest import write_images
from vislint.workdir import open_work_dir


def _vislint(*args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vislint", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    write_images(root / "train" / "cats", 30)
    write_images(root / "valid" / "cats", 10, seed=1)
    return root


def _tables(out: Path):
    res = vislint.load(out)
    return res.to_dataframe(), res.group_table, res.pair_table


# A scan in a child process that dies by SIGKILL right after writing its second table: a real
# kill, at the one point where an old work dir mixed old and new tables.
_KILLED_WHILE_WRITING = """
import os, signal, sys
import pyarrow.parquet as pq
from vislint.cli import main

write, written = pq.write_table, []
def write_then_die(*args, **kwargs):
    write(*args, **kwargs)
    written.append(1)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
pq.write_table = write_then_die
main(["scan", sys.argv[1], "--out", sys.argv[2], "--quiet", "--threads", "1"])
"""


def test_a_scan_killed_while_writing_its_tables_leaves_the_previous_scan_whole(data, tmp_path):
    out = tmp_path / "out"
    assert _vislint("scan", data, "--out", out, "--quiet").returncode == 0
    before = _tables(out)
    assert before[0]["is_exact_duplicate"].sum() == 0
    for i in range(3):  # the re-scan finds new duplicates: its tables differ in every file
        shutil.copy(data / "train" / "cats" / f"img{i:05d}.jpg", data / "valid" / "cats" / f"copy{i}.jpg")
    r = subprocess.run([sys.executable, "-c", _KILLED_WHILE_WRITING, str(data), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    after = _tables(out)  # the previous scan, all three tables, as they were
    for old, new in zip(before, after):
        assert old.equals(new)
    shown = _vislint("show", out)
    assert shown.returncode == 0 and "exact duplicates        0 groups, 0 images" in shown.stdout
    assert _vislint("report", out).returncode == 0

    assert _vislint("scan", data, "--out", out, "--quiet").returncode == 0
    images, groups, _ = _tables(out)
    assert images["is_exact_duplicate"].sum() == 6 and len(images) == 43
    assert len(list(out.glob("tables-*"))) == 1  # the killed scan's tables are gone too


def test_a_second_scan_of_a_work_dir_in_use_says_who_holds_it(data, tmp_path):
    out = tmp_path / "out"
    with open_work_dir(out):  # this process holds the work dir, as a running scan would
        r = _vislint("scan", data, "--out", out, "--quiet")
    assert r.returncode == 2, r.stderr
    assert f"is in use by another vislint scan (pid {os.getpid()} on " in r.stderr
    assert "Traceback" not in r.stderr and not (out / "manifest.json").exists()

    # a holder killed with SIGKILL leaves no stale lock behind
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom vislint.workdir import open_work_dir\n"
                               "with open_work_dir(sys.argv[1]):\n"
                               "    print('held', flush=True); time.sleep(300)\n", str(out)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert _vislint("scan", data, "--out", out, "--quiet").returncode == 2
    holder.kill()
    holder.wait()
    assert _vislint("scan", data, "--out", out, "--quiet").returncode == 0


def test_a_work_dir_or_report_inside_the_scanned_folder_is_not_scanned(data):
    out = data / "vislint-out"
    for _ in range(2):
        r = _vislint("scan", data, "--out", out, "--quiet")
        assert r.returncode == 0, r.stderr
        images = vislint.load(out).to_dataframe()
        assert len(images) == 40 and not images["relpath"].str.startswith("vislint-out").any()
    assert list((out / "report_files" / "thumbs").glob("*.jpg"))  # images a walk would find
    # a report written elsewhere inside the data: its thumbnails are not data either
    assert _vislint("report", out, "--out", data / "train" / "review.html").returncode == 0
    r = _vislint("scan", data, "--out", out, "--quiet", "--json")
    assert r.returncode == 0 and '"images": 40' in r.stdout


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")


@pytest.fixture
def mounts():
    made = []
    yield made
    for m in reversed(made):
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_a_read_only_work_dir_is_refused_before_the_scan_starts(data, tmp_path, mounts):
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "size=1m")
    mounts.append(ro)
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    r = _vislint("scan", data, "--out", ro / "out")
    assert r.returncode == 2
    assert "cannot write to the work dir" in r.stderr and "Read-only file system" in r.stderr
    assert "Traceback" not in r.stderr and "img/s" not in r.stderr  # no image was decoded


def test_a_disk_too_small_for_the_scan_is_refused_before_it_starts(data, tmp_path, mounts):
    small = tmp_path / "small"
    _mount_tmpfs(small, "size=64k")
    mounts.append(small)
    out = small / "out"
    r = _vislint("scan", data, "--out", out, "--quiet")
    assert r.returncode == 2, r.stderr
    assert "needs about" in r.stderr and "free some space or choose another --out" in r.stderr
    assert "Traceback" not in r.stderr and not (out / "cache").exists()


def test_a_full_disk_says_so_and_the_scan_resumes_once_there_is_room(data, tmp_path, mounts):
    from vislint import budget

    small = tmp_path / "small"
    _mount_tmpfs(small, "size=64m")
    mounts.append(small)
    out = small / "out"
    # room for what the scan estimates it needs before it starts, not for all it writes
    need = 40 * (budget.CACHE_BYTES + budget.TABLE_BYTES)
    filler = small / "filler"
    filler.write_bytes(bytes(shutil.disk_usage(small).free - need - 16384))
    r = _vislint("scan", data, "--out", out, "--quiet", "--batch-size", "10")
    assert r.returncode == 2, r.stderr
    assert "No space left on device" in r.stderr and "run the same command again" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "manifest.json").exists()
    filler.unlink()
    r = _vislint("scan", data, "--out", out, "--quiet", "--batch-size", "10")
    assert r.returncode == 0, r.stderr
    reference = vislint.scan(data)
    assert vislint.load(out).to_dataframe()[["relpath", "content_hash", "near_duplicate_score"]].equals(
        reference.to_dataframe()[["relpath", "content_hash", "near_duplicate_score"]])


def test_a_thumbnail_cut_short_is_made_again(data, tmp_path):
    for i in range(2):
        shutil.copy(data / "train" / "cats" / f"img{i:05d}.jpg", data / "valid" / "cats" / f"copy{i}.jpg")
    out = tmp_path / "out"
    assert _vislint("scan", data, "--out", out, "--quiet").returncode == 0
    thumbs = sorted((out / "report_files" / "thumbs").glob("*.jpg"))
    assert thumbs
    whole = thumbs[0].read_bytes()
    thumbs[0].write_bytes(whole[: len(whole) // 2])  # as a full disk or a crash once left it
    assert _vislint("report", out).returncode == 0
    assert thumbs[0].read_bytes() == whole


def test_names_from_the_data_cannot_drive_the_terminal(tmp_path):
    evil = "\x1b]0;pwned\x07\x1b[31mred"  # a class folder that sets the title and the colour
    root = tmp_path / "data"
    paths = write_images(root / "cats", 12)
    write_images(root / evil, 12, seed=3)
    shutil.copy(paths[0], root / evil / "copy.jpg")  # one picture, two labels: a conflict
    out = tmp_path / "out"
    for args in (("scan", root, "--out", out, "--quiet"), ("show", out)):
        r = _vislint(*args)
        assert r.returncode == 0, r.stderr
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout
        assert "\\x1b[31mred" in r.stdout  # shown, escaped, in the confused labels
    r = _vislint("show", out, "--json")
    assert "\x1b" not in r.stdout and vislint.load(out).to_dataframe()["label"].eq(evil).sum() == 13

"""A scan that would not fit in its disk or memory stops before it decodes anything."""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections import namedtuple

import pytest

import vislint
from conftest import write_images
from vislint import budget
from vislint.budget import BudgetError


def test_a_scan_over_its_memory_limit_stops_before_decoding(tmp_path):
    data = write_images(tmp_path / "data", 6)
    out = tmp_path / "out"
    with pytest.raises(BudgetError, match=r"needs about 0\.\d GiB of memory .* over the limit of 0\.01 GiB"):
        vislint.scan(data, out=out, memory_limit=0.01)
    assert not (out / "cache").exists() and not (out / "manifest.json").exists()
    assert len(vislint.scan(data, out=out, memory_limit=4)) == 6


def test_a_scan_without_room_for_its_work_dir_stops_before_decoding(tmp_path, monkeypatch):
    data = write_images(tmp_path / "data", 6)
    out = tmp_path / "out"
    usage = namedtuple("usage", "total used free")
    # a full disk cannot be made here for real: the free space the scan sees is replaced
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 20_000, 20_000))
    with pytest.raises(BudgetError, match="needs about .* for 6 images .* free some space"):
        vislint.scan(data, out=out)
    assert not (out / "cache").exists()
    vislint.scan(data)  # no work dir: no disk needed


def test_the_copy_index_counts_from_the_size_that_saves_one(tmp_path, monkeypatch):
    from vislint import copy_index

    usage = namedtuple("usage", "total used free")
    n = copy_index.SAVED_FROM
    room = n * (budget.CACHE_BYTES + budget.TABLE_BYTES) + n * budget.INDEX_BYTES // 2
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - room, room))
    budget.check(n - 1, n - 1, tmp_path, on_disk=False, memory_limit=10**6)
    with pytest.raises(BudgetError, match="needs about"):
        budget.check(n, n, tmp_path, on_disk=False, saves_index=True,
                     memory_limit=10**6)


def test_a_large_scan_counts_its_vector_files_and_less_memory(tmp_path, monkeypatch):
    """A large scan keeps its vectors in files of the work dir (disk) rather than in memory."""
    usage = namedtuple("usage", "total used free")
    n = 1_000_000
    room = n * (budget.CACHE_BYTES + budget.TABLE_BYTES) + n * budget.VECTORS_BYTES // 2
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**13, 10**13 - room, room))
    budget.check(n, n, tmp_path, on_disk=False, memory_limit=10**6)
    with pytest.raises(BudgetError, match="needs about"):
        budget.check(n, n, tmp_path, on_disk=True, memory_limit=10**6)
    budget.check(n, 0, None, on_disk=True, memory_limit=3.3)  # (measured: 2.86 GiB)
    with pytest.raises(BudgetError, match="of memory"):
        budget.check(n, 0, None, on_disk=False, memory_limit=3.3)


def test_the_default_limit_is_a_share_of_the_available_memory(tmp_path, monkeypatch):
    assert budget.available_memory() > 0
    data = write_images(tmp_path, 3)
    monkeypatch.setattr(budget, "available_memory", lambda: 100 * 2**20)
    with pytest.raises(BudgetError, match=r"90% of the 0\.1 GiB available"):
        vislint.scan(data)
    monkeypatch.setattr(budget, "available_memory", lambda: None)  # a system that does not say
    assert len(vislint.scan(data)) == 3


def test_the_command_says_what_does_not_fit_and_exits_2(tmp_path):
    write_images(tmp_path / "data", 3)
    r = subprocess.run([sys.executable, "-m", "vislint", "scan", str(tmp_path / "data"), "--out",
                        str(tmp_path / "out"), "--memory-limit", "0.01"], capture_output=True, text=True)
    assert r.returncode == 2 and "--memory-limit" in r.stderr and "Traceback" not in r.stderr
    assert "img/s" not in r.stderr  # nothing was decoded

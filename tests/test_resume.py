"""A scan killed midway (kill -9 or Ctrl-C) resumes on the next run and ends with
exactly the results of an uninterrupted scan; a re-scan reuses cached features."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vislint
from conftest import write_images

N, BATCH = 2000, 20
"""(Enough images that the interruption lands midway even when this process is slow to look at
the cache: 600 once saw the whole scan written before the signal took effect.)"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    paths = write_images(root / "train_set" / "a", N // 2) + write_images(root / "valid_set" / "a", N // 2, seed=1)
    (root / "valid_set" / "a" / "dup.jpg").write_bytes(paths[3].read_bytes())
    return root


def _tables(out):
    res = vislint.load(out)
    return res.to_dataframe(), res.pair_table, res.group_table


def _interrupted_run(data, out, sig, threads):
    cmd = [sys.executable, "-m", "vislint", "scan", str(data), "--out", str(out), "--quiet",
           "--batch-size", str(BATCH), "--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_from_a_terminal)
    deadline = time.time() + 120
    cache = out / "cache"
    while time.time() < deadline:
        if len(list(cache.glob("*/chunk-*.npz"))) >= 3:
            break
        if proc.poll() is not None:
            pytest.fail(f"scan ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    chunks = len(list(cache.glob("*/chunk-*.npz")))
    assert 3 <= chunks < N // BATCH + 1, "the kill must land midway"
    assert not (out / "manifest.json").exists()
    assert _processes_running_with(str(out), deadline=time.time() + 10) == [], \
        "decode workers must not outlive the scan"
    return proc.returncode, err, chunks


def _ctrl_c_as_from_a_terminal() -> None:
    """In the scan's process, before it starts: Ctrl-C handled by default and not blocked, as
    a command started from a shell has it, whatever this test process inherited or was set to
    by the libraries of earlier tests. (In one full run both Ctrl-C cases saw the whole scan
    finish after the signal, which no run of this module alone reproduced.)"""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def _processes_running_with(arg: str, deadline: float) -> list[int]:
    """Pids of processes (e.g. orphaned workers) whose command line holds ``arg``, once none
    is left or at ``deadline``; [] where /proc is not available."""
    proc = Path("/proc")
    while True:
        found = []
        for d in proc.glob("[0-9]*") if proc.is_dir() else []:
            try:
                if arg.encode() in (d / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(d.name))
            except OSError:
                pass  # ended meanwhile
        if not found or time.time() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.parametrize("threads", [1, 2], ids=["in-process", "worker-processes"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_scan_resumes_to_identical_results(data, tmp_path, sig, threads):
    reference = tmp_path / "reference"
    vislint.scan(data, out=reference, batch_size=BATCH)
    out = tmp_path / "interrupted"
    code, err, chunks = _interrupted_run(data, out, sig, threads)
    if sig == signal.SIGINT:
        assert code == 130 and "resume" in err
    else:
        assert code == -signal.SIGKILL
    resumed = vislint.scan(data, out=out, batch_size=BATCH)
    for a, b in zip(_tables(reference), _tables(out)):
        pd.testing.assert_frame_equal(a.drop(columns=[c for c in ("path",) if c in a]),
                                      b.drop(columns=[c for c in ("path",) if c in b]))
    # the resumed run described only what the interrupted one had not: no image twice
    import numpy as np
    hashes = []
    for chunk in (out / "cache").glob("*/chunk-*.npz"):
        with np.load(chunk) as z:
            hashes += z["hash"].tolist()
    assert len(hashes) == len(set(hashes)) == resumed.to_dataframe()["content_hash"].nunique()


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte", "empty"])
def test_a_damaged_cache_file_is_described_again(data, tmp_path, damage):
    out = tmp_path / "w"
    reference = vislint.scan(data, out=out, batch_size=BATCH)
    chunk = sorted((out / "cache").glob("*/chunk-*.npz"))[1]
    raw = bytearray(chunk.read_bytes())
    if damage == "flipped-byte":
        raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw[:len(raw) // 2] if damage == "truncated" else
                            b"" if damage == "empty" else raw))
    with pytest.warns(UserWarning, match="damaged cache file"):
        again = vislint.scan(data, out=out, batch_size=BATCH)
    pd.testing.assert_frame_equal(reference.to_dataframe(), again.to_dataframe())


def test_rescan_decodes_only_new_files(data, tmp_path):
    out = tmp_path / "w"
    vislint.scan(data, out=out, batch_size=BATCH)
    chunks_before = sorted((out / "cache").glob("*/chunk-*.npz"))
    extra = write_images(data / "test_set", 3, seed=7)
    try:
        res = vislint.scan(data, out=out, batch_size=BATCH)
        chunks_after = sorted((out / "cache").glob("*/chunk-*.npz"))
        assert len(chunks_after) == len(chunks_before) + 1  # one new chunk with the 3 new images
        import numpy as np
        with np.load(chunks_after[-1]) as z:
            assert len(z["hash"]) == 3
        assert len(res.to_dataframe()) == N + 1 + 3
    finally:
        for p in extra:
            p.unlink()


def test_cache_gather_returns_rows_in_the_order_asked(tmp_path):
    from vislint.workdir import FeatureCache

    cache = FeatureCache(tmp_path / "cache", fields=("hash", "v"))
    cache.add({"hash": np.array(["a", "b"]), "v": np.array([[1, 1], [2, 2]])})
    cache.add({"hash": np.array(["c"]), "v": np.array([[3, 3]])})
    again = FeatureCache(tmp_path / "cache", fields=("hash", "v"))  # read back from disk
    for c in (cache, again):
        assert c.gather(["a", "b", "c"])["v"][:, 0].tolist() == [1, 2, 3]  # all, in cache order
        assert c.gather(["c", "a", "b"])["v"][:, 0].tolist() == [3, 1, 2]
        assert c.gather(["b", "b"])["v"][:, 0].tolist() == [2, 2]
        assert c.gather([])["v"].shape[0] == 0


def test_cache_gather_can_take_fields_out_of_memory(tmp_path):
    """The scan takes each field out of the chunks as it gathers it (so it never holds the
    chunks and the gathered copy at once); the others stay, and the files on disk too."""
    from vislint.workdir import FeatureCache

    cache = FeatureCache(tmp_path / "cache", fields=("hash", "v", "t"))
    cache.add({"hash": np.array(["a", "b"]), "v": np.array([1, 2]), "t": np.array([10, 20])})
    cache.add({"hash": np.array(["c"]), "v": np.array([3]), "t": np.array([30])})
    for order in (["a", "b", "c"], ["c", "a", "b"]):
        copy = FeatureCache(tmp_path / "cache", fields=("hash", "v", "t"))
        assert copy.gather(order, fields=("v",), drop=True)["v"].tolist() == \
            cache.gather(order, fields=("v",))["v"].tolist()
        assert copy.fields == ("hash", "t") and all("v" not in c for c in copy._chunks)
        assert copy.gather(order)["t"].tolist() == cache.gather(order, fields=("t",))["t"].tolist()


def test_cache_fields_kept_on_disk_only_are_read_back_from_the_chunk_files(tmp_path):
    from vislint.workdir import FeatureCache

    def chunk(keys, start):
        return {"hash": np.array(keys), "v": np.arange(start, start + len(keys)),
                "t": np.arange(start, start + len(keys))[:, None] * np.ones((1, 3), int)}

    cache = FeatureCache(tmp_path / "cache", fields=("hash", "v", "t"), on_disk=("t",))
    cache.add(chunk(["a", "b"], 0))
    cache.add(chunk(["c"], 2))
    again = FeatureCache(tmp_path / "cache", fields=("hash", "v", "t"), on_disk=("t",))
    for c in (cache, again):
        assert all("t" not in ch for ch in c._chunks)  # not in memory
        got = c.gather(["c", "a", "b", "a"], drop=True)
        assert got["v"].tolist() == [2, 0, 1, 0] and got["t"][:, 0].tolist() == [2, 0, 1, 0]
        assert c.fields == ("hash", "t") and c.gather(["b"])["t"].tolist() == [[1, 1, 1]]
    # without a work dir there are no files: everything stays in memory
    mem = FeatureCache(None, fields=("hash", "v", "t"), on_disk=("t",))
    mem.add(chunk(["a"], 5))
    assert mem.gather(["a"])["t"].tolist() == [[5, 5, 5]]
    # a file damaged after it was checked stops the scan with what to do
    (tmp_path / "cache").joinpath(again._files[1].name).write_bytes(b"cut short")
    with pytest.raises(RuntimeError, match="scan again"):
        again.gather(["c"], fields=("t",))
    # one whose kept-on-disk field is damaged (its bytes, not the zip's layout) before the
    # scan is left out when the cache is opened: its images are described again, as with
    # any damaged chunk
    import zipfile

    first = again._files[0]
    with zipfile.ZipFile(first) as zf:
        info = zf.getinfo("t.npy")
    raw = bytearray(first.read_bytes())
    raw[info.header_offset + 30 + len("t.npy") + info.compress_size - 1] ^= 0xFF
    first.write_bytes(bytes(raw))
    (tmp_path / "cache").joinpath(again._files[1].name).unlink()
    with pytest.warns(UserWarning, match="damaged cache file"):
        reopened = FeatureCache(tmp_path / "cache", fields=("hash", "v", "t"), on_disk=("t",))
    assert len(reopened) == 0


def test_cache_locations_read_only_the_rows_they_name_and_notice_a_changed_cache(tmp_path):
    """A saved index reads a candidate's thumbnail from its chunk file by location, without
    opening the cache: only the rows asked for are read (bytes of other rows damaged on disk
    do not matter), compressed members too, and locations kept with their hashes refuse a
    cache changed since (another image at that place)."""
    import zipfile

    from vislint.workdir import CacheRows, FeatureCache

    root = tmp_path / "cache"
    cache = FeatureCache(root, fields=("hash", "t"), on_disk=("t",))
    cache.add({"hash": np.array(["a", "b", "c"]), "t": np.arange(9).reshape(3, 3) * 10})
    cache.add({"hash": np.array(["d"]), "t": np.full((1, 3), 99)})
    where = cache.locations(["d", None, "c", "a"])
    assert where("t", [2, 0, 3]).tolist() == [[60, 70, 80], [99, 99, 99], [0, 10, 20]]
    assert where.take([3, 0])("t", [1]).tolist() == [[99, 99, 99]]
    with pytest.raises(ValueError, match="not in the cache"):
        where("t", [1])
    first = cache._files[0]
    with zipfile.ZipFile(first) as zf:
        info = zf.getinfo("t.npy")
    raw = bytearray(first.read_bytes())
    raw[info.header_offset + 30 + len("t.npy") + info.compress_size - 1] ^= 0xFF  # row "c"
    first.write_bytes(bytes(raw))
    assert where("t", [3]).tolist() == [[0, 10, 20]]  # "a" is read, the zip's CRC is not
    kept = CacheRows(where.files, where.locs, ["d", None, "c", "a"])
    assert kept("t", [0]).tolist() == [[99, 99, 99]]
    np.savez_compressed(first, hash=np.array(["a", "b", "c"]), t=np.arange(9).reshape(3, 3))
    assert kept("t", [3]).tolist() == [[0, 1, 2]]  # compressed: read whole, the same rows
    np.savez(first, hash=np.array(["x", "y", "z"]), t=np.zeros((3, 3), int))
    with pytest.raises(RuntimeError, match="changed after the scan"):
        kept("t", [3])


def test_a_large_scan_keeps_its_vectors_thumbnails_and_grids_in_its_work_dir(
        demo_data, demo_scan, tmp_path, monkeypatch):
    """Beyond ON_DISK_FROM images the copy descriptors and rotation vectors are read from the
    cache files into files of the work dir, which the searches read through a memory map, and
    the grey thumbnails and polar grids that verify candidate pairs stay in the cache files:
    the same vectors and findings as in memory, fresh and resumed."""
    from vislint import pipeline, workdir

    monkeypatch.setattr(pipeline, "ON_DISK_FROM", 0)
    read = []
    real_read = workdir._read_rows
    monkeypatch.setattr(workdir, "_read_rows", lambda files, name, locs, **kw: read.append(name)
                        or real_read(files, name, locs, **kw))
    ref = demo_scan[0]
    assert len(ref.pairs("near_duplicate")) > 0  # (verification read thumbnails)
    assert ref.images["is_invalid"].any()  # (invalid images: zero rows in the files)
    for _ in range(2):  # from nothing, then from the cache
        got = vislint.scan(demo_data.root, out=tmp_path / "out")
        assert isinstance(got.features, np.memmap)
        np.testing.assert_array_equal(got.features, ref.features)
        pd.testing.assert_frame_equal(got.images, ref.images)
        for check in ("near_duplicate", "same_scene", "leak"):
            pd.testing.assert_frame_equal(got.pairs(check), ref.pairs(check))
        assert set(read) == {"raw", "rot", "thumb", "polar"}  # from the files
        read.clear()


def test_a_scan_stopped_after_its_searches_resumes_without_searching_again(demo_data, demo_scan,
                                                                           tmp_path, monkeypatch):
    """Beyond ON_DISK_FROM images the graphs, the rotation candidates and the appearance
    distances are kept in the work dir: a scan that stops in its checks (here: interrupted)
    resumes with them, and ends with the same results as a scan that ran through."""
    from vislint import pipeline
    from vislint.checks import outliers

    monkeypatch.setattr(pipeline, "ON_DISK_FROM", 0)
    real = outliers.outlier
    monkeypatch.setattr(outliers, "outlier", lambda ctx: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        vislint.scan(demo_data.root, out=out)
    saved = sorted(p.name.split("-")[0] + ("-" + p.name.split("-")[1] if p.name.startswith("graph") else "")
                   for p in out.glob("cache/*/stages/*.npz"))
    assert saved == ["appearance", "graph-copy", "rotation"], saved
    monkeypatch.setattr(outliers, "outlier", real)

    def searched(*args, **kwargs):
        raise AssertionError("searched again")

    from vislint import knn

    monkeypatch.setattr(knn, "knn_graph", searched)
    monkeypatch.setattr(pipeline, "rotation_candidates", searched)
    monkeypatch.setattr(pipeline, "appearance_distances", searched)
    got = vislint.scan(demo_data.root, out=out)
    ref = demo_scan[0]
    pd.testing.assert_frame_equal(got.images, ref.images)
    for check in ("near_duplicate", "same_scene", "leak"):
        pd.testing.assert_frame_equal(got.pairs(check), ref.pairs(check))
    # other inputs (another k) are searched again, not read from the stage files
    with pytest.raises(AssertionError, match="searched again"):
        vislint.scan(demo_data.root, out=out, k=5)

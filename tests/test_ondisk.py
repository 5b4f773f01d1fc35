"""Matrices read from files of the work dir (vislint.ondisk): what a pass over them holds, and
searches over them giving what they give in memory."""
from __future__ import annotations

import numpy as np

from vislint import knn, ondisk
from vislint.features import Centring


def _rss_file_mib() -> float:
    """File-backed pages mapped by this process (MiB): what a memory map holds."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


def test_a_pass_over_a_mapped_file_holds_only_a_block_of_it(tmp_path):
    rows, dim = 131_072, 448  # 224 MiB
    x = ondisk.create(tmp_path / "x.npy", (rows, dim))
    for start, block in ondisk.blockwise(x, 8192):  # (14 MiB blocks)
        x[start:start + len(block)] = start
        ondisk.release(x)
    del x
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    before = _rss_file_mib()
    peak, total = before, 0.0
    for _, block in ondisk.blockwise(mapped, 8192):
        total += float(block[:, 0].sum())
        peak = max(peak, _rss_file_mib())
    assert total == sum(float(s) * 8192 for s in range(0, rows, 8192))
    assert peak - before < 40, peak - before
    # the same pass without releasing keeps the whole file mapped: the measure sees it
    for start in range(0, rows, 8192):
        mapped[start:start + 8192].sum()
    assert _rss_file_mib() - before > 200


def test_rows_read_and_write_the_rows_they_name():
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    r = ondisk.subset(x, np.array([1, 4, 7]))
    assert len(r) == 3 and r.shape == (3, 4)
    np.testing.assert_array_equal(r[1:], x[[4, 7]])
    np.testing.assert_array_equal(r[np.array([[0, 2], [2, 2]])], x[[[1, 7], [7, 7]]])
    r[0:2] = -1
    assert (x[[1, 4]] == -1).all() and (x[[0, 2, 3, 5, 6, 7, 8, 9]] >= 0).all()
    assert ondisk.subset(x, np.arange(10)) is x


def test_the_graph_and_centring_of_a_mapped_file_are_those_in_memory(tmp_path, monkeypatch):
    """Centring in place in a file and the approximate graph over its rows (a subset: the valid
    images) give exactly what the arrays in memory give."""
    monkeypatch.setattr(knn, "EXACT_MAX", 500)  # the IVF search, in blocks
    monkeypatch.setattr(knn, "SEARCH_BLOCK", 700)
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(3_000, 48)).astype(np.float32)
    raw[1000:1010] = raw[:10] + 0.01  # near copies
    gray = rng.random(3_000) < 0.1
    rows = np.flatnonzero(rng.random(3_000) < 0.9)
    colour = slice(32, 48)

    want_centring = Centring.fit(raw[rows], colour, gray[rows])
    want = want_centring.apply(raw[rows], gray[rows])
    want_graph = knn.knn_graph(want, 10, threads=2)

    mapped = ondisk.create(tmp_path / "raw.npy", raw.shape)
    mapped[:] = raw
    got_centring = Centring.fit(ondisk.subset(mapped, rows), colour, gray[rows])
    np.testing.assert_array_equal(got_centring.shift, want_centring.shift)
    got_centring.apply(ondisk.subset(mapped, rows), gray[rows], out=ondisk.subset(mapped, rows))
    np.testing.assert_array_equal(mapped[rows], want)
    np.testing.assert_array_equal(np.delete(mapped, rows, axis=0), np.delete(raw, rows, axis=0))
    got_graph = knn.knn_graph(ondisk.subset(mapped, rows), 10, threads=1)
    assert got_graph.method == want_graph.method == "ivf"
    np.testing.assert_array_equal(got_graph.neighbors, want_graph.neighbors)
    np.testing.assert_array_equal(got_graph.sims, want_graph.sims)
    local = {int(r): i for i, r in enumerate(rows)}
    pairs = [(local[i], local[1000 + i]) for i in range(10) if i in local and 1000 + i in local]
    assert len(pairs) >= 5
    for a, b in pairs:  # the planted near copies find each other first
        assert got_graph.neighbors[a, 0] == b and got_graph.neighbors[b, 0] == a


def test_take_reads_rows_in_any_order_from_a_map(tmp_path):
    x = ondisk.create(tmp_path / "x.npy", (200_000, 3))
    x[:] = np.arange(600_000, dtype=np.float32).reshape(-1, 3)
    rows = np.random.default_rng(0).integers(0, 200_000, 5_000)  # scattered, some twice
    np.testing.assert_array_equal(ondisk.take(x, rows), x[rows])
    np.testing.assert_array_equal(ondisk.take(x, slice(7, None, 15)), x[7::15])
    np.testing.assert_array_equal(ondisk.take(np.asarray(x), rows), x[rows])  # (in memory)


def test_stacked_parts_read_as_one_matrix(tmp_path):
    """Parts of a matrix in several .npy files read as the matrix itself: slices across parts,
    rows in any order, the block-wise take of a map, and release."""
    from vislint.ondisk import Stacked, release, take

    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    parts = []
    for k, (a, b) in enumerate(((0, 7), (7, 8), (8, 20))):
        np.save(tmp_path / f"p{k}.npy", x[a:b])
        parts.append(np.load(tmp_path / f"p{k}.npy", mmap_mode="r"))
    s = Stacked(parts)
    assert len(s) == 20 and s.shape == (20, 3) and s.dtype == np.float32
    for a, b in ((0, 20), (5, 9), (7, 8), (8, 8), (15, 40)):
        np.testing.assert_array_equal(s[a:b], x[a:b])
    rows = np.array([19, 0, 7, 7, 8, 3])
    np.testing.assert_array_equal(s[rows], x[rows])
    np.testing.assert_array_equal(take(s, rows), x[rows])
    release(s)
    np.testing.assert_array_equal(s[0:20], x)

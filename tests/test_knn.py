"""The shared kNN graph: exact and approximate, self excluded, canonical order,
identical for any thread count."""
from __future__ import annotations

import numpy as np
import pytest

from vislint import _native
from vislint import knn
from vislint.features import l2_normalise
from vislint.knn import knn_graph, kth_distances


def _clustered(n=3000, d=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[1::2] = x[0::2] + 0.1 * rng.standard_normal((n // 2, d)).astype(np.float32)  # twins
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_graph_excludes_self_and_is_sorted():
    x = _clustered(400)
    g = knn_graph(x, 5, method="exact")
    assert g.neighbors.shape == (400, 5) and g.method == "exact"
    assert not (g.neighbors == np.arange(400)[:, None]).any()
    assert (np.diff(g.sims, axis=1) <= 0).all()
    twin = np.arange(400) ^ 1
    assert (g.neighbors[:, 0] == twin).all()
    ref = x @ x.T
    np.fill_diagonal(ref, -np.inf)
    np.testing.assert_allclose(g.sims, -np.sort(-ref, axis=1)[:, :5], atol=1e-5)


def test_exact_copies_keep_self_out():
    x = _clustered(50)
    x[10] = x[11] = x[12]
    g = knn_graph(x, 3, method="exact")
    for i in (10, 11, 12):
        assert i not in g.neighbors[i]
        assert set(g.neighbors[i, :2]) == {10, 11, 12} - {i}


def test_neighbours_tied_at_the_last_place_are_chosen_by_index_for_any_thread_count():
    """Three candidates whose similarities differ only past the 5 decimals kept, the later
    ones slightly higher, compete for the last place: the first by index wins, as if they
    were equal (faiss alone would return the highest; with 1 or 2 threads its last bits,
    and so its pick among near ties, can differ)."""
    rng = np.random.default_rng(5)
    q = rng.standard_normal(32)
    q /= np.linalg.norm(q)
    near = q + 0.1 * rng.standard_normal((4, 32))
    base = q + 0.2 * rng.standard_normal(32)
    tied = [base + j * 3e-6 * q for j in range(3)]  # similarity rising in the 7th decimal
    far = rng.standard_normal((40, 32))
    x = np.vstack([q, near, far[:20], *tied, far[20:]]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims = x[25:28] @ x[0]
    assert sims[0] < sims[1] < sims[2] and len(set(np.round(sims, 5))) == 1, sims
    assert sims[0] > max(x[i] @ x[0] for i in range(5, 25))  # the far ones are farther
    for threads in (1, 2):
        g = knn_graph(x, 5, method="exact", threads=threads)
        assert g.neighbors[0, 4] == 25 and set(g.neighbors[0, :4]) == {1, 2, 3, 4}, g.neighbors[0]


def _candidates(x, k, block, threads):
    """Candidate sets of KnnCandidates fed the upper half of x's distance matrix in blocks."""
    n = len(x)
    found = _native.KnnCandidates(n, k)
    dist = np.maximum(2 - 2 * (x.astype(np.float64) @ x.T.astype(np.float64)), 0).astype(np.float32)
    for start in range(0, n, block):
        found.add_block(dist[start:start + block, start:], start, threads=threads)
    return [set(row.tolist()) for row in found.indices()]


def test_candidates_from_the_upper_half_are_the_k_best_of_every_row():
    """Each value counts for its row and its column: the candidates are each row's k most
    similar rows (itself included), whatever the blocks and threads."""
    x = _clustered(700, d=16, seed=3)
    sims = x.astype(np.float64) @ x.T.astype(np.float64)
    best = [set(np.argsort(-row, kind="stable")[:6].tolist()) for row in sims]
    for block, threads in [(700, 1), (64, 2), (1, 2), (333, 0)]:
        assert _candidates(x, 6, block, threads) == best, (block, threads)


def test_tied_copies_are_chosen_by_index_whatever_the_blocks():
    """Twenty copies of one vector and room for 6 candidates: every copy keeps the 6 copies
    of lowest index, though the products that compare them differ in their last bits."""
    x = _clustered(300, d=16, seed=4)
    copies = np.arange(40, 300, 13)[:20]
    x[copies] = x[7]
    x[copies[::2]] *= np.float32(1 + 1e-7)  # the same vector, up to the last bits
    for block, threads in [(300, 1), (17, 2), (5, 1)]:
        found = _candidates(x, 6, block, threads)
        for r in copies:
            assert found[r] == set(sorted([7, *copies.tolist()])[:6]), (block, threads, r)


def test_candidate_lists_shorter_than_k_are_padded():
    found = _native.KnnCandidates(3, 5)
    found.add_block(np.zeros((3, 3), np.float32), 0)
    assert (np.sort(found.indices(), axis=1) == [-1, -1, 0, 1, 2]).all()
    with pytest.raises(ValueError, match="n - row0"):
        found.add_block(np.zeros((1, 3), np.float32), 1)
    with pytest.raises(ValueError, match="k"):
        _native.KnnCandidates(3, 0)


def test_approximate_graph_finds_the_near_neighbours():
    x = _clustered(6000)
    g = knn_graph(x, 10, method="ivf")
    assert g.method == "ivf"
    twin = np.arange(6000) ^ 1
    assert (g.neighbors[:, 0] == twin).mean() >= 0.99
    exact = knn_graph(x, 10, method="exact")
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(g.neighbors, exact.neighbors)])
    assert overlap >= 0.5


@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_graph_identical_for_any_thread_count(method):
    x = _clustered(3000)
    one, two = knn_graph(x, 10, method=method, threads=1), knn_graph(x, 10, method=method, threads=2)
    np.testing.assert_array_equal(one.neighbors, two.neighbors)
    np.testing.assert_array_equal(one.sims, two.sims)


def _brute_kth(x: np.ndarray, k: int) -> np.ndarray:
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def test_kth_distances_are_exact_whatever_the_scale():
    # unnormalised vectors with a few far away (distances far above 2: the candidate keys
    # of the exact search are made for unit vectors, so the rows are scaled first)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, (700, 17))
    x[:5] += 100
    for k in (1, 30):
        np.testing.assert_allclose(kth_distances(x, k, threads=1), _brute_kth(x, k), rtol=1e-12)
    np.testing.assert_array_equal(kth_distances(x, 30, threads=1), kth_distances(x, 30, threads=2))
    with pytest.raises(ValueError, match="k must be"):
        kth_distances(x[:10], 10)


def test_kth_distances_beyond_the_exact_size_are_close(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (3000, 17))
    monkeypatch.setattr(knn, "EXACT_MAX", 1000)  # the IVF search
    got, want = kth_distances(x, 30, threads=2), _brute_kth(x, 30)
    # (17-d isotropic noise: the hardest case for lists of neighbours) candidates it misses
    # can only make the distance larger; close, and in nearly the same order
    assert (got >= want - 1e-12).all() and np.median(got / want - 1) < 0.05
    assert np.corrcoef(got.argsort().argsort(), want.argsort().argsort())[0, 1] > 0.9
    np.testing.assert_array_equal(got, kth_distances(x, 30, threads=1))


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="2-D"):
        knn_graph(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="method"):
        knn_graph(np.zeros((5, 3), np.float32), method="hnsw")
    tiny = knn_graph(np.eye(1, 4, dtype=np.float32), 3)
    assert (tiny.neighbors == -1).all()


@pytest.mark.parametrize("n", [300, 1200])
def test_cross_neighbours_are_the_most_similar_base_rows_for_any_thread_count(monkeypatch, n):
    from vislint.knn import cross_neighbors

    rng = np.random.default_rng(4)
    base = l2_normalise(rng.standard_normal((n, 24)))
    queries = l2_normalise(np.concatenate([base[:5] + 0.01 * rng.standard_normal((5, 24)),
                                           rng.standard_normal((40, 24))]))
    if n > 1000:  # the approximate index, as for a large index
        monkeypatch.setattr(knn, "EXACT_MAX", 30)
    runs = [cross_neighbors(queries, base, 6, threads=t) for t in (1, 2)]
    assert all((a == b).all() for a, b in zip(runs[0], runs[1]))
    nbr, sims = runs[0]
    exact = queries.astype(np.float64) @ base.astype(np.float64).T
    assert (nbr[:5, 0] == np.arange(5)).all()  # each near copy finds its original first
    np.testing.assert_allclose(sims, np.take_along_axis(exact, nbr, axis=1), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 0).all()
    if n <= 1000:  # exact: nothing more similar was left out
        np.testing.assert_allclose(sims[:, -1], np.sort(exact, axis=1)[:, -6], atol=1e-5)


@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_graph_progress_counts_every_row_once(method):
    x = _clustered(n=1500, d=16)
    done = []
    g = knn_graph(x, 5, method=method, progress=done.append)
    assert sum(done) == len(x) and len(done) >= (3 if method == "exact" else 1)  # by blocks
    assert (g.neighbors == knn_graph(x, 5, method=method).neighbors).all()

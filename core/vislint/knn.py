"""The k-nearest-neighbour graph that every check shares.

Features are L2-normalised, so inner product = cosine similarity. The graph is
computed once, at the largest k any check needs, and never as an N×N matrix:
faiss searches in blocks and keeps k neighbours per image.

Index choice (``method``):

- ``"exact"``: brute force. Exact, and fast while N is moderate (about 3 s for
  20,000 × 448-d on 2 cores; quadratic beyond). Only the upper half of the
  similarity matrix is computed, block by block (faiss' BLAS products), and the
  native core keeps each image's best candidates from each value for its row and its
  column (:class:`vislint._native.KnnCandidates`): half the products of a faiss
  ``IndexFlatIP`` search of every image.
- ``"ivf"``: approximate and sub-quadratic: an ``IndexIVFFlat`` (√N lists, 8
  probed) over a 64-d PCA projection proposes 3k candidates per image, which are
  re-ranked by their exact similarity on the full vectors. Deterministic
  (seeded samples and k-means).
- ``"auto"`` (default): exact up to :data:`EXACT_MAX` images, IVF beyond.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

# faiss' OpenMP threads spin while idle by default; on small machines that makes
# 2 threads slower than 1. Must be set before the OpenMP runtime starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from . import _native  # noqa: E402

DEFAULT_K = 10
"""Neighbours per image. Enough for duplicate groups of up to 10 copies and for a
neighbour-label vote; see docs/defaults.md."""

EXACT_MAX = 20_000
"""Largest N searched exactly by ``method="auto"``."""

EXACT_BLOCK = 512
"""Rows of the distance matrix computed at once by the exact search (4,000 images: 8 MB)."""

TIE_SLACK = 4
"""Candidates fetched beyond k + 1 per image, so that neighbours tied at the k-th place are
ordered by index whatever faiss' thread count (see :func:`knn_graph`)."""

_SIM_DECIMALS = 5
"""Similarities are rounded to this many decimals (their precision in every table)."""


@dataclass(frozen=True)
class KnnGraph:
    """k nearest neighbours of every image (self excluded).

    neighbors: int64[N, k], row indices, -1 where fewer than k exist.
    sims: float32[N, k], cosine similarity in [-1, 1], descending per row; -inf where missing.
    method: the index actually used ("exact" or "ivf").
    """

    neighbors: np.ndarray
    sims: np.ndarray
    method: str

    @property
    def k(self) -> int:
        return self.neighbors.shape[1]

    def without_pairs(self, pairs) -> "KnnGraph":
        """The graph with the edges between the given row pairs removed (both directions)."""
        if not pairs:
            return self
        n = len(self.neighbors)
        a = np.array([min(p) for p in pairs], np.int64)
        b = np.array([max(p) for p in pairs], np.int64)
        rows = np.broadcast_to(np.arange(n)[:, None], self.neighbors.shape)
        lo = np.minimum(rows, self.neighbors)
        hi = np.maximum(rows, self.neighbors)
        drop = (self.neighbors >= 0) & np.isin(lo * n + hi, a * n + b)
        return KnnGraph(np.where(drop, -1, self.neighbors),
                        np.where(drop, -np.inf, self.sims).astype(np.float32), self.method)


def knn_graph(features: np.ndarray, k: int = DEFAULT_K, *, method: str = "auto",
              threads: int = 0, progress: Callable[[int], None] | None = None) -> KnnGraph:
    """Build the kNN graph of L2-normalised ``features`` (float32[N, d]).

    ``k``: neighbours per image (default :data:`DEFAULT_K`), capped at N-1.
    ``method``: "auto", "exact" or "ivf" (see module docstring).
    ``threads``: faiss threads; 0 = all cores.
    ``progress``: called with the number of rows searched, block by block (N in all).
    """
    import faiss

    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (N images × d), got shape {x.shape}")
    if method not in ("auto", "exact", "ivf"):
        raise ValueError(f"method must be 'auto', 'exact' or 'ivf', got {method!r}")
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    n, d = x.shape
    if threads:
        faiss.omp_set_num_threads(int(threads))
    else:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
    kk = min(k, max(n - 1, 0))
    neighbors = np.full((n, k), -1, dtype=np.int64)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    if kk == 0:
        return KnnGraph(neighbors, sims, "exact")
    used = method if method != "auto" else ("exact" if n <= EXACT_MAX else "ivf")
    # faiss' blocked sums depend on its thread count, in the last bits: the similarities of
    # the candidates it finds are computed again in one fixed order, and a few more than
    # needed are fetched, so that candidates tied at the k-th place are all there to be
    # ordered by index (otherwise which of them faiss returns depends on the thread count)
    kc = min(kk + 1 + TIE_SLACK, n)
    if used == "exact":
        idx = _exact_candidates(faiss, x, kc, threads, progress)
        s = _similarities(x, idx)
    else:
        s, idx = _ivf_search(faiss, x, kc, progress)
    s = np.round(s, _SIM_DECIMALS).astype(np.float32)
    # Self out wherever it landed (exact copies tie with it), then the canonical order:
    # similarity descending, then index ascending; the first kk are the neighbours.
    missing = (idx < 0) | (idx == np.arange(n)[:, None])
    s[missing] = -np.inf
    order = np.lexsort((np.where(missing, np.iinfo(np.int64).max, idx), -s), axis=1)[:, :kk]
    idx = np.take_along_axis(idx, order, axis=1)
    s = np.take_along_axis(s, order, axis=1)
    neighbors[:, :kk] = np.where(np.isfinite(s), idx, -1)
    sims[:, :kk] = s
    return KnnGraph(neighbors, sims, used)


IVF_DIM = 64
"""Dimensions of the PCA projection the approximate index searches in."""


def _ivf_search(faiss, x: np.ndarray, k: int, progress=None):
    """Approximate kNN: IVF over a PCA projection finds 3k candidates per image,
    which are then re-ranked by their exact similarity on the full vectors."""
    n, d = x.shape
    rng = np.random.default_rng(0)
    sample = x[np.sort(rng.choice(n, min(n, 20_000), replace=False))]
    pca = faiss.PCAMatrix(d, min(IVF_DIM, d))
    pca.train(sample)
    z = np.ascontiguousarray(pca.apply(x))
    cand = _ivf_candidates(faiss, z, min(3 * k, n), faiss.METRIC_INNER_PRODUCT, progress=progress)
    sims = _similarities(x, cand)  # exact re-ranking
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, top, axis=1), np.take_along_axis(cand, top, axis=1)


def _ivf_candidates(faiss, z: np.ndarray, k: int, metric, progress=None) -> np.ndarray:
    """int64[n, k]: approximate nearest rows of ``z`` to each of its rows (each row then
    included; -1 where fewer were found) from :func:`_ivf_index` of ``z``."""
    return _search(_ivf_index(faiss, z, metric), z, k, progress=progress)[1]


def _ivf_index(faiss, z: np.ndarray, metric):
    """An ``IndexIVFFlat`` of ``z``: √n lists, 8 probed, trained on a fixed sample with a
    fixed seed (so deterministic)."""
    n, d = z.shape
    nlist = int(max(16, np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(d) if metric == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
    index.cp.seed = 1234
    index.cp.niter = 10
    # k-means on a deterministic sample: 64 points per list is plenty for the centroids
    index.train(z[:: max(1, n // (64 * nlist))])
    index.nprobe = min(nlist, 8)
    index.add(z)
    return index


def cross_index(base: np.ndarray):
    """The approximate index :func:`cross_neighbors` searches ``base`` (L2-normalised
    float32[n, d]) with beyond :data:`EXACT_MAX` rows: the IVF of :func:`knn_graph` behind a
    PCA to :data:`IVF_DIM` dimensions trained on a fixed sample (a faiss
    ``IndexPreTransform``, which ``faiss.write_index`` saves whole). Deterministic."""
    import faiss

    x = base
    n, d = x.shape
    pca = faiss.PCAMatrix(d, min(IVF_DIM, d))
    rng = np.random.default_rng(0)
    pca.train(np.ascontiguousarray(x[np.sort(rng.choice(n, min(n, 20_000), replace=False))],
                                   dtype=np.float32))
    z = np.empty((n, pca.d_out), np.float32)
    for start in range(0, n, 65_536):  # (a memory-mapped base is read block by block)
        z[start:start + 65_536] = pca.apply(np.ascontiguousarray(x[start:start + 65_536],
                                                                 dtype=np.float32))
    ivf = _ivf_index(faiss, z, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexPreTransform(pca, ivf)


def cross_neighbors(queries: np.ndarray, base: np.ndarray, k: int, *, threads: int = 0,
                    index=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``base`` most similar to each row of ``queries`` (both
    L2-normalised float32[·, d]; ``base`` may be memory-mapped): (int64[m, k] row indices, -1
    where base has fewer; float32[m, k] cosine similarities rounded as the graph's,
    descending, ties by index).

    Exact (faiss' flat inner-product search, over blocks of ``base``) while m × n ≤
    :data:`EXACT_MAX`² or n ≤ :data:`EXACT_MAX`; beyond, :func:`cross_index` of ``base``
    (``index``: that index made earlier, e.g. saved with a scan; else it is made now), whose
    candidates are re-ranked exactly. As in :func:`knn_graph`, similarities are computed
    again in one fixed order, so the result does not depend on the thread count."""
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = base if isinstance(base, np.memmap) else np.ascontiguousarray(base, dtype=np.float32)
    m, n = len(q), len(x)
    neighbors = np.full((m, k), -1, np.int64)
    sims = np.full((m, k), -np.inf, np.float32)
    if not m or not n:
        return neighbors, sims
    faiss.omp_set_num_threads(int(threads) or os.cpu_count() or 1)
    kc = min(k + TIE_SLACK, n)
    if n <= EXACT_MAX or m * n <= EXACT_MAX ** 2:
        cand = _flat_candidates(faiss, q, x, kc)
    else:
        index = index if index is not None else cross_index(x)
        cand = _search(index, q, min(3 * kc, n))[1]
    s = np.full(cand.shape, -np.inf, np.float32)
    for start in range(0, m, 256):
        c = cand[start:start + 256]
        s[start:start + 256] = np.where(c >= 0, np.einsum("nkd,nd->nk", x[np.maximum(c, 0)],
                                                          q[start:start + 256]), -np.inf)
    s = np.round(s, _SIM_DECIMALS).astype(np.float32)
    order = np.lexsort((np.where(cand < 0, np.iinfo(np.int64).max, cand), -s), axis=1)[:, :k]
    kk = order.shape[1]
    neighbors[:, :kk] = np.take_along_axis(cand, order, axis=1)
    sims[:, :kk] = np.take_along_axis(s, order, axis=1)
    neighbors[~np.isfinite(sims)] = -1
    return neighbors, sims


FLAT_BLOCK = 131_072
"""Rows of ``base`` held by one flat index in :func:`cross_neighbors`' exact search (230 MB
of 448-d vectors): a memory-mapped base is never read whole into memory."""


def _flat_candidates(faiss, q: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """int64[m, k]: the rows of ``x`` with the highest inner products with each row of ``q``
    (ties by row), by flat searches over blocks of :data:`FLAT_BLOCK` rows."""
    best_s = best_i = None
    for start in range(0, len(x), FLAT_BLOCK):
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(np.ascontiguousarray(x[start:start + FLAT_BLOCK], dtype=np.float32))
        s, i = _search(index, q, min(k, index.ntotal))
        i = np.where(i >= 0, i + start, -1)
        if best_s is not None:
            s, i = np.hstack([best_s, s]), np.hstack([best_i, i])
            order = np.lexsort((np.where(i < 0, np.iinfo(np.int64).max, i), -s), axis=1)[:, :k]
            s, i = np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)
        best_s, best_i = s, i
    return best_i


def kth_distances(x: np.ndarray, k: int, *, threads: int = 0) -> np.ndarray:
    """float64[N]: the Euclidean distance from each row of ``x`` (float[N, d], any scale) to
    its k-th nearest other row. Candidates as in :func:`knn_graph` (exact up to
    :data:`EXACT_MAX` rows, IVF beyond, a few more than k), their distances computed again in
    float64 in one fixed order, so the result does not depend on the thread count."""
    import faiss

    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} rows, got {k}")
    faiss.omp_set_num_threads(int(threads) or os.cpu_count() or 1)
    x64 = np.asarray(x, np.float64)
    # within the unit ball, as the exact search's candidate keys expect (squared distances
    # under 4: see _native.KnnCandidates); the order of distances is unchanged
    centred = x64 - x64.mean(axis=0)
    radius = float(np.sqrt((centred ** 2).sum(axis=1).max()))
    z = np.ascontiguousarray(centred / (1.001 * radius) if radius > 0 else centred, dtype=np.float32)
    kc = min(k + 1 + TIE_SLACK, n)
    cand = (_exact_candidates(faiss, z, kc, threads) if n <= EXACT_MAX
            else _ivf_candidates(faiss, z, kc, faiss.METRIC_L2))
    dist = np.full(cand.shape, np.inf)
    for start in range(0, n, 1024):
        c = cand[start:start + 1024]
        diff = x64[np.maximum(c, 0)] - x64[start:start + 1024, None, :]
        d2 = np.einsum("nkd,nkd->nk", diff, diff)
        rows = np.arange(start, start + len(c))[:, None]
        dist[start:start + 1024] = np.where((c >= 0) & (c != rows), d2, np.inf)
    return np.sqrt(np.sort(dist, axis=1)[:, k - 1])


def _exact_candidates(faiss, x: np.ndarray, k: int, threads: int, progress=None) -> np.ndarray:
    """int64[n, k]: the k most similar rows of each row of ``x`` (itself included), in no
    particular order, from the upper half of the distance matrix (see the module docstring)."""
    n, d = x.shape
    candidates = _native.KnnCandidates(n, k)
    for start in range(0, n, EXACT_BLOCK):
        stop = min(start + EXACT_BLOCK, n)
        dist = np.empty((stop - start, n - start), np.float32)
        faiss.pairwise_L2sqr(d, stop - start, faiss.swig_ptr(x[start:stop]), n - start,
                             faiss.swig_ptr(x[start:]), faiss.swig_ptr(dist))
        candidates.add_block(dist, start, threads=threads)
        if progress is not None:
            progress(stop - start)
    return candidates.indices()


def _similarities(x: np.ndarray, cand: np.ndarray, block: int = 256) -> np.ndarray:
    """float32[n, c]: the inner product of each row of ``x`` with its candidates ``cand``
    (int64[n, c], -1 = none: -inf), block by block (a few MB), summed in the same order for
    any thread count (NumPy's einsum, no BLAS)."""
    sims = np.full(cand.shape, -np.inf, np.float32)
    for start in range(0, len(x), block):
        c = cand[start:start + block]
        v = x[np.maximum(c, 0)]
        sims[start:start + block] = np.where(c >= 0, np.einsum("nkd,nd->nk", v, x[start:start + block]),
                                             -np.inf)
    return sims


def _search(index, x: np.ndarray, k: int, block: int = 16384, progress=None):
    """Search in blocks so the distance buffer stays O(block · N) at most; ``progress(rows)``
    after each block."""
    n = x.shape[0]
    out_s = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        s, i = index.search(x[start:start + block], k)
        out_s[start:start + block] = s
        out_i[start:start + block] = i
        if progress is not None:
            progress(len(s))
    return out_s, out_i

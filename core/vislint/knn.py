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

from . import _native, ondisk  # noqa: E402

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
    """Build the kNN graph of L2-normalised ``features`` (float32[N, d]; in memory, or mapped
    from a file and read block by block: see :mod:`vislint.ondisk`).

    ``k``: neighbours per image (default :data:`DEFAULT_K`), capped at N-1.
    ``method``: "auto", "exact" or "ivf" (see module docstring).
    ``threads``: faiss threads; 0 = all cores.
    ``progress``: called with the number of rows searched, block by block (N in all).
    """
    import faiss

    if not isinstance(features, (np.memmap, ondisk.Rows)):
        features = np.ascontiguousarray(features, dtype=np.float32)
    if len(features.shape) != 2:
        raise ValueError(f"features must be a 2-D array (N images × d), got shape {features.shape}")
    if method not in ("auto", "exact", "ivf"):
        raise ValueError(f"method must be 'auto', 'exact' or 'ivf', got {method!r}")
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    n, d = features.shape
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
        x = np.ascontiguousarray(features[:], dtype=np.float32)  # (at most EXACT_MAX rows)
        idx = _exact_candidates(faiss, x, kc, threads, progress)
        blocks = [(0, _similarities(x, idx, threads=threads), idx)]
    else:
        blocks = _ivf_search(faiss, features, kc, threads, progress)
    for start, s, idx in blocks:
        stop = start + len(idx)
        s = np.round(s, _SIM_DECIMALS).astype(np.float32)
        # Self out wherever it landed (exact copies tie with it), then the canonical order:
        # similarity descending, then index ascending; the first kk are the neighbours.
        missing = (idx < 0) | (idx == np.arange(start, stop)[:, None])
        s[missing] = -np.inf
        order = np.lexsort((np.where(missing, np.iinfo(np.int64).max, idx), -s), axis=1)[:, :kk]
        idx = np.take_along_axis(idx, order, axis=1)
        s = np.take_along_axis(s, order, axis=1)
        neighbors[start:stop, :kk] = np.where(np.isfinite(s), idx, -1)
        sims[start:stop, :kk] = s
    return KnnGraph(neighbors, sims, used)


IVF_DIM = 64
"""Dimensions of the PCA projection the approximate index searches in."""


SEARCH_BLOCK = 65_536
"""Rows searched at once by the approximate search, whose candidates are re-ranked before
the next block: the candidates of all rows are never held at once (65,536 rows: 3 million
candidates, 24 MB of row numbers; a mapped file is read through once a block)."""


def valid_graph(feats, valid, k, index: str = "auto", threads: int = 0, progress=None) -> KnnGraph:
    """:func:`knn_graph` over the ``valid`` rows of ``feats`` (bool[N]), mapped back to all N
    rows (-1 / -inf for invalid rows); ``progress(rows)`` as they are searched."""
    n = len(valid)
    vidx = np.flatnonzero(valid)
    g = knn_graph(ondisk.subset(feats, vidx), k, method=index, threads=threads, progress=progress)
    neighbors = np.full((n, k), -1, np.int64)
    sims = np.full((n, k), -np.inf, np.float32)
    mapped = np.where(g.neighbors >= 0, vidx[np.maximum(g.neighbors, 0)], -1)
    neighbors[vidx], sims[vidx] = mapped, g.sims
    return KnnGraph(neighbors, sims, g.method)


def _ivf_search(faiss, x, k: int, threads: int, progress=None):
    """Approximate kNN, block by block of :data:`SEARCH_BLOCK` rows: (start, similarities
    float32[rows, k], indices int64[rows, k]) of each block. An IVF over a PCA projection of
    ``x`` (:func:`cross_index`) finds 3k candidates per row, which are re-ranked by their
    exact similarity on the full vectors."""
    n = len(x)
    index = cross_index(x)
    kc = min(3 * k, n)
    for start, block in ondisk.blockwise(x, SEARCH_BLOCK):
        block = np.ascontiguousarray(block, dtype=np.float32)
        cand = index.search(block, kc)[1]
        sims = _similarities(block, cand, x, threads)  # exact re-ranking
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        yield start, np.take_along_axis(sims, top, axis=1), np.take_along_axis(cand, top, axis=1)
        if progress is not None:
            progress(len(block))


def _ivf_index(faiss, project, n: int, d: int, metric):
    """An ``IndexIVFFlat`` of ``n`` rows of ``d`` dimensions: √n lists, 8 probed, trained on a
    fixed sample with a fixed seed (so deterministic). ``project(rows)``: float32 vectors of
    those rows (a slice or an index array); the rows are added block by block, so that only
    the index holds them all."""
    nlist = int(max(16, np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(d) if metric == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
    index.cp.seed = 1234
    index.cp.niter = 10
    # k-means on a deterministic sample: 64 points per list is plenty for the centroids
    index.train(project(slice(0, n, max(1, n // (64 * nlist)))))
    index.nprobe = min(nlist, 8)
    for start in range(0, n, ondisk.RELEASE_ROWS):
        index.add(project(slice(start, min(start + ondisk.RELEASE_ROWS, n))))
    return index


def cross_index(base):
    """The approximate index :func:`knn_graph` and :func:`cross_neighbors` search ``base``
    (L2-normalised float32[n, d], in memory or mapped) with beyond :data:`EXACT_MAX` rows: an
    IVF (:func:`_ivf_index`) behind a PCA to :data:`IVF_DIM` dimensions trained on a fixed
    sample (a faiss ``IndexPreTransform``, which ``faiss.write_index`` saves whole).
    Deterministic."""
    import faiss

    n, d = base.shape
    pca = faiss.PCAMatrix(d, min(IVF_DIM, d, n))  # (n < IVF_DIM only where a test forces an IVF)
    rng = np.random.default_rng(0)
    pca.train(np.ascontiguousarray(
        ondisk.take(base, np.sort(rng.choice(n, min(n, 20_000), replace=False))), dtype=np.float32))

    def project(rows):
        return pca.apply(np.ascontiguousarray(ondisk.take(base, rows), dtype=np.float32))

    return faiss.IndexPreTransform(pca, _ivf_index(faiss, project, n, pca.d_out,
                                                   faiss.METRIC_INNER_PRODUCT))


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
    x = (base if isinstance(base, (np.memmap, ondisk.Stacked))
         else np.ascontiguousarray(base, dtype=np.float32))
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
    s = np.round(_similarities(q, cand, x, threads), _SIM_DECIMALS).astype(np.float32)
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
        ondisk.release(x)
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
    mean = x64.mean(axis=0)
    radius = float(np.sqrt(max(((x64[s:s + 65_536] - mean) ** 2).sum(axis=1).max()
                               for s in range(0, n, 65_536))))
    scale = 1.001 * radius if radius > 0 else 1.0
    z = np.empty(x64.shape, np.float32)
    for s in range(0, n, 65_536):
        z[s:s + 65_536] = (x64[s:s + 65_536] - mean) / scale
    kc = min(k + 1 + TIE_SLACK, n)
    if n <= EXACT_MAX:
        cand, index = _exact_candidates(faiss, z, kc, threads), None
    else:
        index = _ivf_index(faiss, lambda rows: z[rows], n, z.shape[1], faiss.METRIC_L2)
    kth = np.empty(n)
    for start in range(0, n, SEARCH_BLOCK):  # the candidates of one block at a time
        c = (cand[start:start + SEARCH_BLOCK] if index is None
             else index.search(z[start:start + SEARCH_BLOCK], kc)[1])
        dist = np.full(c.shape, np.inf)
        for sub in range(0, len(c), 1024):
            cs = c[sub:sub + 1024]
            rows = np.arange(start + sub, start + sub + len(cs))[:, None]
            diff = x64[np.maximum(cs, 0)] - x64[rows]
            dist[sub:sub + 1024] = np.where((cs >= 0) & (cs != rows),
                                            np.einsum("nkd,nkd->nk", diff, diff), np.inf)
        kth[start:start + len(c)] = np.sqrt(np.sort(dist, axis=1)[:, k - 1])
    return kth


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


def _similarities(q: np.ndarray, cand: np.ndarray, x=None, threads: int = 0) -> np.ndarray:
    """float32[n, c]: the inner product of each row of ``q`` with its candidates ``cand``
    (int64[n, c] rows of ``x``, -1 = none: -inf; ``x`` defaults to ``q``), each summed in one
    fixed order by the native core (:func:`vislint._native.pair_dots`, ``threads`` threads),
    so that it does not depend on the thread count or on ``x`` being in memory or mapped.

    The pairs are taken in the order of their candidate rows, and ``x`` is read in blocks of
    :data:`vislint.ondisk.RELEASE_ROWS` rows: a mapped ``x`` is read through once, each block's
    pages released before the next (rows read in scattered order from a map are not bounded:
    every read may map a large part of the file around it, see :mod:`vislint.ondisk`)."""
    x = q if x is None else x
    q = np.ascontiguousarray(q, dtype=np.float32)
    sims = np.full(cand.shape, -np.inf, np.float32)
    flat = cand.ravel()
    pos = np.flatnonzero(flat >= 0)
    rows = flat[pos]
    order = np.argsort(rows, kind="stable")
    pos, rows = pos[order], rows[order]
    del order
    found = np.empty(len(pos), np.float32)
    bounds = np.searchsorted(rows, np.arange(0, len(x) + ondisk.RELEASE_ROWS, ondisk.RELEASE_ROWS))
    for b, (lo, hi) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
        if lo == hi:
            continue
        first = b * ondisk.RELEASE_ROWS
        block = np.asarray(x[first:first + ondisk.RELEASE_ROWS])
        found[lo:hi] = _native.pair_dots(block, rows[lo:hi] - first, q, pos[lo:hi] // cand.shape[1],
                                         threads=int(threads))
        ondisk.release(x)
    sims.ravel()[pos] = found
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

"""What every check reads: the catalog, the decoding's metadata, image statistics, the
feature spaces with their kNN graphs, thresholds and reviewer decisions (one shared object,
built once per scan), and the intermediate results several checks share (computed once, on
first use)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from .. import _native
from ..catalog import Catalog
from ..decisions import Decisions
from ..knn import KnnGraph
from ..predictions import Predictions
from ..thresholds import Thresholds


@dataclass
class Space:
    """One feature space: its name ("copy" or "semantic"), the L2-normalised vectors
    (float32[N, d], zero rows for invalid images), their kNN graph (catalog rows) and what
    made the vectors (e.g. ``builtin-v4``, a model's version)."""

    name: str
    vectors: np.ndarray
    graph: KnnGraph
    source: str


@dataclass
class Context:
    """The inputs of every check; see the module docstring.

    catalog: the images. meta: per-image decoding results ("ok", "reason", "message",
    "width", "height", "file_size", "content_hash", "format"). valid: bool[N]. stats:
    float[N, S] image statistics (columns :data:`vislint._native.STAT_NAMES`). spaces:
    {"copy": Space, "semantic": Space (when embeddings were given)}. rotation: the copy
    space's rotation description ("retrieval", "info", "candidates", and "polar":
    ``polar(rows)``, the polar grids of those valid rows). thresholds, reviewed (the
    reviewer decisions resolved on the catalog), threads (faiss and native threads), thumbs.
    """

    catalog: Catalog
    meta: dict
    valid: np.ndarray
    stats: np.ndarray
    spaces: dict
    rotation: dict
    thresholds: Thresholds
    reviewed: Decisions
    threads: int = 1
    predictions: Predictions | None = None
    """A model's class probabilities per image (:mod:`vislint.predictions`), if given."""
    thumbs: Callable[[list[int]], np.ndarray] | None = None
    """``thumbs(rows)``: uint8[len(rows), 64, 64], the grey thumbnails of those valid rows,
    which verify near-duplicate candidates."""
    reference: tuple | None = None
    """The comparison with a reference scan, when the scan was given one: (its
    :class:`vislint.lookup.Index`, the :class:`vislint.lookup.Found` pairs, the catalog row of
    each compared image)."""
    appearance: np.ndarray | None = None
    """The outlier check's appearance distances (:func:`vislint.checks.outliers.appearance_distances`),
    when the scan computed them beside the graphs; None: the check computes them."""
    results: dict = field(default_factory=dict)
    """Results of the checks run so far, by name (checks run in vocabulary order)."""
    shared: dict = field(default_factory=dict)
    """Intermediate results the checks of one module share (the first computes them)."""

    def __len__(self) -> int:
        return len(self.catalog)

    def space(self, name: str) -> Space:
        """The feature space ``name``; the semantic space falls back to the copy space."""
        return self.spaces.get(name) or self.spaces["copy"]

    @property
    def semantic(self) -> bool:
        """Whether a semantic space (a model's or precomputed embeddings) was given."""
        return "semantic" in self.spaces

    def stat(self, name: str) -> np.ndarray:
        """One image statistic, float[N] (NaN for invalid images)."""
        return self.stats[:, _native.STAT_NAMES.index(name)]

    @cached_property
    def keep_order(self) -> np.ndarray:
        """Valid rows, best to keep first (see :func:`vislint.checks.duplicates.keep_order`)."""
        from .duplicates import keep_order

        meta, cat = self.meta, self.catalog
        area = meta["width"].astype(np.int64) * meta["height"].astype(np.int64)
        return keep_order(self.valid, cat.labels, cat.splits, area,
                          np.nan_to_num(self.stat("blur_laplacian_var")), cat.relpaths)

    @cached_property
    def rank(self) -> np.ndarray:
        """int64[N]: each row's place in :attr:`keep_order` (N for invalid rows)."""
        n = len(self)
        rank = np.full(n, n, np.int64)
        rank[self.keep_order] = np.arange(len(self.keep_order))
        return rank

    @cached_property
    def duplicates(self):
        """The copy space's duplicate groups (:class:`vislint.checks.duplicates.Duplicates`),
        shared by the duplicate, leak and label checks."""
        from .duplicates import find_duplicates_in

        return find_duplicates_in(self)

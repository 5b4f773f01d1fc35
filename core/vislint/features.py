"""Feature extractors: what the kNN graph is built on.

- :class:`Builtin` (default, ``features="builtin"``): the descriptor computed by
  the C++ core from a 128×128 tile (luminance layout, gradient orientations,
  chroma layout; exactly invariant to horizontal flips, insensitive to
  brightness/contrast changes, re-encoding and resizing), then fitted to the
  data set: centred on the data set's mean and L2-normalised, so that what
  every image shares (sky at the top, say) does not make unrelated images look
  alike. A grayscale image has no colour to compare: its colour block is set
  to the mean colour block of the data set's colour images before centring, so
  a grayscale copy of a colour photo is compared on luminance alone.
- :class:`Onnx` (``features="onnx:PATH"``, a registry name such as ``"dinov2-small"``, or
  ``features=Onnx(path, ...)``): any ONNX image model through onnxruntime; see
  :mod:`vislint.onnx_features` and :mod:`vislint.models`.
- Precomputed vectors: a float array with one row per catalog image
  (``features=my_array``), or a sequence of 1-d vectors such as a DataFrame column.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _native, ondisk
from .onnx_features import Onnx

BUILTIN_VERSION = "builtin-v4"
"""Changes whenever the built-in descriptor's raw output changes; part of the cache key."""


MEAN_PRIOR = 200
"""Centring uses the data set mean scaled by N / (N + MEAN_PRIOR): the full mean for
large sets, little of it for a few dozen images."""


FIT_BLOCK = 65_536
"""Rows centred and normalised at once by :class:`Centring` (a 235 MB float64 block)."""


class Builtin:
    """The built-in descriptor (no model, no download)."""

    name = "builtin"
    version = BUILTIN_VERSION
    dim = _native.DESCRIPTOR_DIM

    @staticmethod
    def cache_dir(work_dir) -> Path:
        """The work dir's cache folder of the built-in descriptions: its name changes with the
        descriptor, the tile size and the cache's fields, so that no scan reads another
        version's."""
        from .workdir import CACHE_LAYOUT

        return Path(work_dir) / "cache" / f"{BUILTIN_VERSION}-{_native.TILE_SIZE}-{CACHE_LAYOUT}"

    colour_dims = slice(_native.DESCRIPTOR_DIM - 64, _native.DESCRIPTOR_DIM)
    """The colour block ([s, a] of 32 chroma cells), last in the descriptor."""

    def fit_transform(self, raw: np.ndarray, grayscale: np.ndarray | None = None,
                      in_place: bool = False) -> np.ndarray:
        """Centre on the data set's mean and L2-normalise (float32[N, dim]).

        grayscale: bool[N], images without colour (see the module docstring). in_place: write
        the result over ``raw`` (float32), so that the raw and the fitted vectors are never
        held at once (at a million images 1.8 GB each).
        """
        centring = Centring.fit(raw, self.colour_dims, grayscale)
        return centring.apply(raw, grayscale, out=raw if in_place else None)


def fit_centred(raw: np.ndarray, colour_dims: slice, grayscale: np.ndarray | None = None) -> np.ndarray:
    """Centre raw vectors on the data set's mean and L2-normalise (float32[N, dim]): the
    :class:`Centring` fitted on ``raw`` applied to ``raw``."""
    return Centring.fit(raw, colour_dims, grayscale).apply(raw, grayscale)


@dataclass(frozen=True)
class Centring:
    """What centring learns from a data set, so that other vectors (images checked against an
    indexed scan, :mod:`vislint.lookup`) are made comparable with the data set's own.

    The mean is shrunk towards zero for small sets (see :data:`MEAN_PRIOR`), where
    a few copies of one picture would otherwise be most of the "mean" and be
    centred away. Grayscale rows (bool[N]) get the mean ``colour_dims`` of the
    colour rows first, so they are compared on luminance alone.

    shift: float64[dim], subtracted from every vector. grey: float64[colour dims], what a
    grayscale image's colour block becomes (None when the data set was all colour or all
    grayscale: nothing is replaced).
    """

    shift: np.ndarray
    grey: np.ndarray | None
    colour_dims: slice

    @classmethod
    def fit(cls, raw, colour_dims: slice, grayscale: np.ndarray | None = None) -> "Centring":
        """Fit on ``raw`` (float[N, dim], in memory or mapped from a file: read block by block,
        see :mod:`vislint.ondisk`); grayscale: bool[N]."""
        n, dim = raw.shape
        total = np.zeros(dim)
        mixed = grayscale is not None and grayscale.any() and not grayscale.all()
        colour_total = np.zeros(colour_dims.stop - colour_dims.start)
        for start, block in ondisk.blockwise(raw, FIT_BLOCK):
            x = np.asarray(block, np.float64)
            total += x.sum(axis=0)
            if mixed:
                colour_total += x[~grayscale[start:start + len(x)], colour_dims].sum(axis=0)
        mean = total / max(n, 1)
        grey = None
        if mixed:
            colour_rows = int((~grayscale).sum())
            grey = colour_total / colour_rows
            mean[colour_dims] = (colour_total + (n - colour_rows) * grey) / n
        return cls(mean * (n / (n + MEAN_PRIOR)), grey, colour_dims)

    def apply(self, raw, grayscale: np.ndarray | None = None, out=None) -> np.ndarray:
        """float32[N, dim]: ``raw`` centred and L2-normalised (grayscale: bool[N]), into
        ``out`` when given (which may be ``raw`` itself, or a file's map)."""
        # Block by block, so that no float64 copy of all the vectors is made (at a million
        # images: 3.6 GB a copy) and a mapped file's pages are released as they are done; each
        # value goes through the same operations as it would in one piece, so the result is
        # identical. A block is copied before it is overwritten.
        if out is None:
            out = np.empty(raw.shape, np.float32)
        for start, block in ondisk.blockwise(raw, FIT_BLOCK):
            x = np.array(block, np.float64)
            if self.grey is not None and grayscale is not None:
                x[grayscale[start:start + FIT_BLOCK], self.colour_dims] = self.grey
            x -= self.shift
            out[start:start + FIT_BLOCK] = l2_normalise(x)
            ondisk.release(out)
        return out


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def validate_precomputed(features, n_images: int) -> np.ndarray:
    """Check user-supplied vectors (one row per image) and L2-normalise them.

    Raises ValueError for a wrong shape, NaN/inf values or all-zero rows, naming
    the first offending row.
    """
    try:
        x = np.asarray(features)
    except ValueError:  # vectors of different lengths
        x = np.empty(len(features), object)
        x[:] = [np.asarray(v) for v in features]
    if x.dtype == object and x.ndim == 1:  # a column of vectors (a DataFrame column, a list)
        try:
            x = np.stack([np.asarray(v, dtype=np.float64) for v in x])
        except (TypeError, ValueError) as e:
            raise ValueError("precomputed features: a column of vectors must hold equal-length "
                             f"numeric vectors, one per image ({e})") from e
    if x.ndim != 2 or x.shape[0] != n_images:
        raise ValueError(f"precomputed features must have shape ({n_images}, d): one row per "
                         f"image in catalog order; got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"precomputed features must be numeric, got dtype {x.dtype}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(f"precomputed features contain NaN or inf (first at row {int(np.argmax(bad))})")
    zero = ~x.any(axis=1)
    if zero.any():
        raise ValueError(f"precomputed features contain all-zero rows (first at row "
                         f"{int(np.argmax(zero))}); a zero vector has no direction")
    return l2_normalise(x)


def resolve(embeddings, offline: bool | None = None):
    """What a scan's ``embeddings=`` names: a prepared :class:`Onnx` for "onnx:PATH", a
    registry model name or an :class:`Onnx`; anything else is returned as it is (precomputed
    vectors, checked later by :func:`validate_precomputed`).

    offline: for a registry name, never use the network (None: the VISLINT_OFFLINE
        environment variable decides; see :mod:`vislint.models`).
    """
    if isinstance(embeddings, Onnx):
        return embeddings.prepare()
    if not isinstance(embeddings, str):
        return embeddings
    if embeddings.startswith("onnx:"):
        return Onnx.from_path(embeddings[len("onnx:"):]).prepare()
    from . import models

    if embeddings in models.REGISTRY:
        return models.extractor(embeddings, offline=offline).prepare()
    raise ValueError(f"embeddings={embeddings!r} is not known: use 'onnx:PATH/TO/model.onnx', "
                     f"a registry model ({', '.join(sorted(models.REGISTRY))}; see `vislint models`), "
                     "or pass a float array with one row per image")

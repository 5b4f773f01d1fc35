"""Rotated copies: the second near-duplicate rule, and a guard for padded canvases.

The built-in descriptor finds re-encoded, resized, cropped, flipped and
colour-shifted copies, but not copies turned by an arbitrary angle. For those,
every image also has a rotation-invariant description of its content disk
(:func:`vislint._native.rotation_features`, see ``core/native/rotation.hpp``):

1. Candidates: each image's :data:`CANDIDATES` nearest neighbours in the
   rotation-invariant retrieval vectors (centred and L2-normalised like the
   built-in descriptor) with cosine ≥ :data:`CANDIDATE_SIM`.
2. Verification (:func:`vislint._native.rotation_verify`): the correlation of
   the two images' band-pass polar grids at the best rotation angle and mirror,
   v in [-1, 1]. Only images with texture (band-pass std ≥
   :data:`TEXTURE_FLOOR` grey levels) and content (entropy ≥ :data:`MIN_ENTROPY`
   bits) are verified: a flat image, or strokes on a flat ground, correlates
   with anything.
3. The pair's rotation similarity ``0.6 + 0.4 v`` (0.9 at the measured acceptance point
   v = 0.75, 1 at v = 1): :mod:`vislint.checks.verification` takes it as the copy
   probability of a pair turned by a few degrees or more (below that, a burst of one
   scene correlates as well as a copy does, and the verification of the aligned
   images decides).

Padded canvases: two copies rotated with "expand" share black corners, which the built-in
descriptor sees as shared layout. The graph's candidate pairs between two padded images
(content radius < :data:`PADDED` × canvas inradius) that both have texture are judged by
the rotation rule too.

Measured (docs/defaults.md): imagededup fixtures,
planted rotations of Intel photos at ±45° and 0–360°, with and without
expand, with resizing and JPEG; no pair added among the 3,999 Intel photos.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _native, ondisk
from ..features import Centring
from ..knn import KnnGraph, knn_graph

CANDIDATES = 10
"""Nearest neighbours per image in the retrieval vectors that are verified."""

CANDIDATE_SIM = 0.85
"""Retrieval cosine a candidate needs (planted rotated copies: all above 0.9)."""

TEXTURE_FLOOR = 1.5
"""Band-pass std (grey levels) both images need for a verification: smooth fields (generated
test images: 0.6-1.3) matched each other turned by 177°; the 3,999 Intel photos have 1.52 and
more (1 % under 4)."""

MIN_ENTROPY = 3.0
"""Luminance entropy (bits) both images need for the rotation rule. Strokes on a flat ground
(digits, line drawings: MNIST 1-4 bits) correlate under some rotation and mirror whatever
they show: on the MNIST test set the rule called 13 different digits copies (a 2 and a
mirrored, turned 5; a 1 and a 7). Photographs have 5-8 bits. Small turns of such images are
still judged by the aligned residual (:mod:`vislint.checks.verification`)."""

PADDED = 0.95
"""Content radius / canvas inradius below which an image counts as padded."""

COLOUR_DIMS = slice(_native.ROTATION_DIM - 16, _native.ROTATION_DIM)
"""The chroma ring means, last in the retrieval vector."""


def rotation_similarity(v: np.ndarray) -> np.ndarray:
    """Verification correlation → similarity on the descriptor's scale (0.75 → 0.90)."""
    return 0.6 + 0.4 * np.asarray(v, np.float64)


@dataclass
class RotationPairs:
    """Pairs judged by the rotation rule (row indices i < j).

    pairs: int64[P, 2]; similarity: float64[P] (:func:`rotation_similarity`);
    angle: float32[P] rotation of j onto i in degrees; mirrored: bool[P];
    decides: bool[P], pairs of two padded images, where the rotation similarity
    replaces the descriptor's instead of adding to it.
    """

    pairs: np.ndarray
    similarity: np.ndarray
    angle: np.ndarray
    mirrored: np.ndarray
    decides: np.ndarray


def judged(valid, info, entropy) -> np.ndarray:
    """bool[N]: the images the rotation rule may judge: valid, with texture (band-pass std ≥
    :data:`TEXTURE_FLOOR`) and content (entropy ≥ :data:`MIN_ENTROPY`)."""
    return valid & (info[:, 1] >= TEXTURE_FLOOR) & (np.nan_to_num(entropy) >= MIN_ENTROPY)


def rotation_candidates(*, retrieval, info, valid, entropy, grayscale,
                        threads: int = 0, vectors_file=None) -> np.ndarray:
    """Step 1: int64[P, 2] row pairs of :func:`judged` images, each image with those of its
    :data:`CANDIDATES` nearest neighbours in the retrieval vectors at cosine ≥
    :data:`CANDIDATE_SIM` (a pair may appear twice, in either order).

    retrieval: float32[N, 160] raw retrieval vectors (in memory or mapped from a file); info:
    float32[N, 2] (see :func:`vislint._native.rotation_features`); rows that are not ``valid``
    are ignored. entropy: float[N] luminance entropy (bits); grayscale: bool[N]. vectors_file:
    where the centred vectors of the judged images go while they are searched (a file of a
    large scan's work dir, deleted after; None: in memory). Needs no other feature: a scan runs it beside the descriptor's graph.
    """
    textured = judged(valid, info, entropy)
    tidx = np.flatnonzero(textured)
    if len(tidx) < 2:
        return np.empty((0, 2), np.int64)
    source = ondisk.subset(retrieval, tidx)
    centring = Centring.fit(source, COLOUR_DIMS, grayscale[tidx])
    vecs = centring.apply(source, grayscale[tidx], out=None if vectors_file is None else
                          ondisk.create(vectors_file, (len(tidx), retrieval.shape[1])))
    g = knn_graph(vecs, min(CANDIDATES, len(tidx) - 1), threads=threads)
    if vectors_file is not None:  # (only this search reads it)
        del vecs
        Path(vectors_file).unlink(missing_ok=True)
    r, c = np.nonzero((g.neighbors >= 0) & (g.sims >= CANDIDATE_SIM))
    return np.stack([tidx[r], tidx[g.neighbors[r, c]]], axis=1)


def judge_rotations(*, candidates, polar, info, valid, entropy, graph: KnnGraph,
                    near_threshold: float, veto_padded: bool, threads: int = 0) -> RotationPairs:
    """Step 2: verify the :func:`rotation_candidates` and the shared graph's padded pairs.

    polar(rows): the polar grids of those rows (int8[len(rows), 16, 128]); info, valid,
    entropy as in :func:`rotation_candidates`. graph:
    the shared kNN graph; its pairs at or above ``near_threshold`` between two padded
    :func:`judged` images are verified too when ``veto_padded``.
    """
    n = len(valid)
    padded = judged(valid, info, entropy) & (info[:, 0] < PADDED)
    cand = [np.asarray(candidates, np.int64).reshape(-1, 2)]
    if veto_padded:
        nbr = graph.neighbors
        rows = np.repeat(np.arange(n), nbr.shape[1])
        cols = nbr.ravel()
        ok = (cols >= 0) & (graph.sims.ravel() >= near_threshold)
        ok[ok] &= padded[rows[ok]] & padded[cols[ok]]
        cand.append(np.stack([rows[ok], cols[ok]], axis=1))
    pairs = np.concatenate(cand)
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    if not len(pairs):
        return RotationPairs(pairs, np.empty(0), np.empty(0, np.float32), np.empty(0, bool),
                             np.empty(0, bool))
    rows, local = np.unique(pairs, return_inverse=True)
    local = local.reshape(-1, 2)
    score, angle, mirrored = _native.rotation_verify(polar(rows.tolist()), local[:, 0], local[:, 1],
                                                     threads=threads)
    decides = veto_padded & padded[pairs[:, 0]] & padded[pairs[:, 1]]
    return RotationPairs(pairs, np.round(rotation_similarity(score), 5), angle, mirrored, decides)

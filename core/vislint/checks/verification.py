"""Verification of near-duplicate candidates: the same photograph, the same scene, or
different photographs that merely look alike.

The built-in descriptor retrieves candidates well, but photographs that share a layout (a
horizon, a sky band, a forest edge) score as high as real copies. So every candidate pair is
verified before it joins a group:

1. Candidates: the pairs of the copy space's kNN graph with descriptor similarity ≥
   ``copy_candidate`` (default 0.85), and the pairs the rotation rule accepts
   (:mod:`vislint.checks.rotation`).
2. Evidence (:func:`vislint._native.verify_pairs`, ``core/native/verify.hpp``): b is aligned
   onto a (an affine map and a possible mirror, found on 64 x 64 grey thumbnails), its grey
   levels are mapped onto a's by a monotone curve, and the residual is measured per cell of
   a 4 x 4 grid, relative to a's contrast: ``residual_median`` (the median cell),
   ``residual_max`` (the worst) and ``residual_min`` (the best).
3. Kinds:

   - **copy**: the same photograph, edited (resized, cropped, re-encoded, recoloured,
     flipped; rotated: the rotation rule). Its probability comes from the evidence ratio
     ``q = max(residual_median / MEDIAN_SCALE, residual_max / WORST_SCALE)`` (≤ 1: every
     cell matches) through :data:`CALIBRATION`, measured on labelled natural pairs and
     planted copies: of pairs scored p, about p were copies. A pair the rotation rule
     accepts with the image turned by ≥ :data:`TURNED` degrees is a copy with its rotation
     similarity. A pair is a copy when its probability reaches ``near_duplicate`` (0.5).
   - **same_scene**: not a copy, yet part of the frame matches exactly while another part
     changed: the best cell ≤ :data:`SCENE_BEST` and the median ≤ :data:`SCENE_MEDIAN` (a
     burst, a moved subject). Its score maps those two ratios to 0.5 at the boundary (too
     few labelled same-scene pairs exist to calibrate it).
   - different: anything else.

docs/defaults.md has the tables these constants come from, and the cost per pair.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _native

MEDIAN_SCALE = 0.065
"""residual_median of a copy is at most this (planted crops ≤ 0.052, labelled copies ≤ 0.043;
labelled different photographs ≥ 0.083)."""
WORST_SCALE = 0.16
"""residual_max of a copy is at most this (planted crops ≤ 0.146; same-scene bursts ≥ 0.186)."""
CALIBRATION = ((0.0, 1.0), (1.0, 0.98), (1.1, 0.3), (1.3, 0.3), (1.5, 0.02), (2.0, 0.0))
"""(evidence ratio q, share of such pairs that are copies), linear between the knots: of
1,176 labelled pairs (Intel natural pairs, planted copies among untouched photos, the
imagededup fixtures; exact and rotated copies apart), all 357 with q ≤ 1 were copies, 2 of
7 with 1 < q ≤ 1.3 and none of the 812 above (docs/defaults.md)."""
TURNED = 2.5
"""Degrees a copy must be turned for the rotation rule's verdict to count (below, the
residual decides: bursts correlate at angle 0)."""
ROTATION_ACCEPT = 0.75
"""Rotation-rule correlation from which a turned pair is a copy (docs/defaults.md)."""
ROTATION_VERIFIED = 0.6 + 0.4 * ROTATION_ACCEPT
"""The rotation similarity of that correlation (0.9): the rule's pairs below it are not
candidates (unless the descriptor makes them candidates)."""
SCENE_BEST = 0.03
"""A same-scene pair's best cell matches this well (labelled bursts: 9 of 16 ≤ 0.025;
labelled different photographs ≥ 0.037)."""
SCENE_MEDIAN = 0.13
"""... and its median cell this well."""


@dataclass
class Verified:
    """The verified candidate pairs of a scan (P pairs, i < j).

    pairs: int64[P, 2]. similarity: float32[P] descriptor similarity (-inf when only the
    rotation rule proposed the pair). kind: str[P] "copy", "same_scene" or "different".
    copy_probability, scene_score: float64[P]. evidence: {name: array[P]} from
    :func:`vislint._native.verify_pairs` (residual_min/median/max, correlation, coverage,
    mirrored) plus rotation_similarity and rotation_angle (NaN where not judged).
    """

    pairs: np.ndarray
    similarity: np.ndarray
    kind: np.ndarray
    copy_probability: np.ndarray
    scene_score: np.ndarray
    evidence: dict


def copy_probability(q: np.ndarray) -> np.ndarray:
    """Share of pairs with evidence ratio ``q`` that are copies (see :data:`CALIBRATION`)."""
    x, y = zip(*CALIBRATION)
    return np.interp(np.asarray(q, np.float64), x, y)


def verify(*, thumbs, pairs, similarity, rotation, near_threshold: float,
           threads: int = 0) -> Verified:
    """Verify candidate ``pairs`` (int[P, 2], i < j) with descriptor ``similarity`` (float[P]).

    thumbs(rows): the grey thumbnails of those rows (uint8[len(rows), 64, 64]). rotation:
    {(i, j): (similarity, angle)} of the rotation rule's judged pairs (all of them are
    verified too).
    """
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    rows, local = np.unique(pairs, return_inverse=True)
    local = local.reshape(-1, 2)
    ev = _native.verify_pairs(thumbs(rows.tolist()) if len(rows) else np.zeros((0, 64, 64), np.uint8),
                              local[:, 0], local[:, 1], threads=threads)
    affine = ev.pop("affine")
    rot = [rotation.get((int(i), int(j)), (np.nan, np.nan)) for i, j in pairs.tolist()]
    rot_sim = np.array([r[0] for r in rot], np.float64).reshape(-1)
    angle = np.array([r[1] for r in rot], np.float64).reshape(-1)
    q = np.maximum(ev["residual_median"] / MEDIAN_SCALE, ev["residual_max"] / WORST_SCALE)
    p = copy_probability(q)
    turn = np.minimum(angle % 360, 360 - angle % 360)
    turned = np.isfinite(rot_sim) & (turn >= TURNED) & (rot_sim >= ROTATION_VERIFIED)
    p = np.where(turned, np.maximum(p, rot_sim), p)
    copy = p >= near_threshold
    s = np.maximum(ev["residual_min"] / SCENE_BEST, ev["residual_median"] / SCENE_MEDIAN)
    scene_score = np.where(copy, 0.0, 1.0 / (1.0 + s ** 4))
    kind = np.where(copy, "copy", np.where(scene_score >= 0.5, "same_scene", "different"))
    evidence = {**ev, "scale_x": affine[:, 0], "scale_y": affine[:, 3], "shift_x": affine[:, 4],
                "shift_y": affine[:, 5], "rotation_similarity": rot_sim, "rotation_angle": angle}
    return Verified(pairs, np.asarray(similarity, np.float32), kind.astype(object), p,
                    scene_score, evidence)

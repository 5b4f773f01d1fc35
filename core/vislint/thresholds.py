"""Default thresholds of every check, and how each score is scaled.

Every check writes ``<check>_score`` in [0, 1] (higher = worse) and
``is_<check>``. Quality checks map their statistic to a score with
:func:`soft_score`, which is exactly 0.5 at the threshold, so ``is_<check>`` is
``score >= 0.5`` and sorting by score puts the worst first.

The defaults were chosen from measurements on real data (the Intel scenes
sample) and on planted problems; the numbers and the command that reproduces
them are in docs/defaults.md. Change a
default only with a new measurement.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np


@dataclass(frozen=True)
class Thresholds:
    """All thresholds of a scan. Units are given per field.

    near_duplicate: copy probability (calibrated: of pairs scored p, about p are copies)
        at or above which a verified pair is a near duplicate (default 0.5). See
        :mod:`vislint.checks.verification`.
    copy_candidate: cosine similarity of the built-in descriptor at or above which a pair
        is verified (0.85).
    exact_pixels_min_sim: similarity at or above which two same-sized images with
        different bytes are decoded in full and compared pixel by pixel (0.995).
    label_agreement: an image is a label conflict when the weighted share of its
        neighbours carrying its own label is at most this (0.2) and another label
        wins the vote. Applies to semantic features (a model's or precomputed
        vectors) only; see :mod:`vislint.checks.labels`.
    label_min_support: minimum summed neighbour similarity for a vote to count (2.0).
    outlier_z: robust z-score (median/MAD) of the distance to the nearest
        neighbours above which an image is an outlier (6.0).
    similar_content: cosine similarity of the semantic vectors (a model's or precomputed
        embeddings) at or above which images share a similar-content group; None (the
        default) turns the check off, as the cosine meaning "same content" depends on the
        model. See :mod:`vislint.checks.similar`.
    blurry: sharpness below which an image is blurry (0.12). Sharpness is the RMS
        of the Laplacian of luminance at the 128×128 working scale divided by the
        luminance standard deviation + 1 (unitless), so darkening or lowering the
        contrast of an image does not make it "blurry".
    dark: 95th percentile of luminance (0–255) below which an image is dark (40).
    bright: 5th percentile of luminance (0–255) above which an image is bright (200).
    low_information: luminance entropy in bits below which an image is low
        information (2.0).
    grayscale: mean largest channel difference (0–255) below which an image is
        grayscale (2.0).
    odd_aspect: longer side / shorter side above which the size is odd (3.0).
    odd_area_factor: an image whose pixel count is this many times smaller or
        larger than the data set's median is odd (16).
    """

    near_duplicate: float = 0.5
    copy_candidate: float = 0.85
    exact_pixels_min_sim: float = 0.995
    label_agreement: float = 0.2
    label_min_support: float = 2.0
    outlier_z: float = 6.0
    similar_content: float | None = None
    blurry: float = 0.12
    dark: float = 40.0
    bright: float = 200.0
    low_information: float = 2.0
    grayscale: float = 2.0
    odd_aspect: float = 3.0
    odd_area_factor: float = 16.0

    def replace(self, **changes) -> "Thresholds":
        """A copy with some thresholds changed; unknown names raise ValueError."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown threshold(s) {unknown}; known: {sorted(names)}")
        return replace(self, **{k: None if v is None and k in OPTIONAL else float(v)
                                for k, v in changes.items()})

    def to_dict(self) -> dict:
        """{name: value}; an unset optional threshold is None."""
        return asdict(self)


OPTIONAL = frozenset({"similar_content"})
"""Thresholds that may be None (their check is then off)."""


def soft_score(stat: np.ndarray, threshold: float, *, low_is_bad: bool,
               steepness: float = 4.0) -> np.ndarray:
    """Map a positive statistic to a severity in [0, 1] that is 0.5 at ``threshold``.

    score = 1 / (1 + (stat / threshold) ** steepness) when low values are bad,
    and the mirror image when high values are bad. NaN stays NaN.
    """
    stat = np.asarray(stat, dtype=np.float64)
    ratio = np.maximum(stat, 0.0) / threshold if low_is_bad else threshold / np.maximum(stat, 1e-12)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + ratio ** steepness)

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

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np


def _t(default, help: str):
    """A threshold field: its default and what it means, with units (one line; the CLI's
    ``--help`` and the class docstring show it)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Thresholds:
    """All thresholds of a scan (the list below is built from the fields)."""

    near_duplicate: float = _t(0.5, "copy probability of a verified pair (calibrated: of pairs "
                                    "scored p, about p are copies) from which it is a near "
                                    "duplicate; see vislint.checks.verification")
    copy_candidate: float = _t(0.85, "descriptor cosine similarity from which a pair is verified")
    exact_pixels_min_sim: float = _t(0.995, "descriptor similarity from which two same-sized "
                                            "files with different bytes are compared pixel by pixel")
    label_agreement: float = _t(0.2, "weighted share of neighbours carrying an image's own label "
                                     "at or under which it is a label conflict (another label "
                                     "winning; semantic features only)")
    label_min_support: float = _t(2.0, "summed neighbour similarity a label vote needs to count")
    label_prediction: float = _t(0.5, "with predictions: the label score (1 - the given label's "
                                 "probability margin over the likeliest other class) / 2 from "
                                 "which a label is a conflict; 0.5: another class is likelier")
    outlier_z: float = _t(6.0, "robust z-score (median/MAD) of the distance to the nearest "
                               "neighbours from which an image is an outlier")
    outlier_appearance_z: float | None = _t(5.0, "robust z-score of the distance, in image "
                                                 "statistics, to the 30th most alike image from "
                                                 "which an image is an outlier (odd groups of up "
                                                 "to ~30 found); unset = off")
    similar_content: float | None = _t(None, "semantic cosine similarity from which images share "
                                             "a similar-content group; unset = off (the cosine "
                                             "meaning the same content depends on the model)")
    blurry: float = _t(0.12, "sharpness (RMS Laplacian of luminance at 128x128 / (std + 1), "
                             "unitless) under which an image is blurry")
    dark: float = _t(40.0, "95th percentile of luminance (0-255) under which an image is dark")
    bright: float = _t(200.0, "5th percentile of luminance (0-255) over which an image is bright")
    low_information: float = _t(2.0, "luminance entropy (bits) under which an image is low "
                                     "information")
    grayscale: float = _t(2.0, "mean largest channel difference (0-255) under which an image is "
                               "grayscale")
    odd_aspect: float = _t(3.0, "longer side / shorter side over which the size is odd")
    odd_area_factor: float = _t(16.0, "times smaller or larger than the median pixel count at "
                                      "which the size is odd")

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


Thresholds.__doc__ += "\n\n" + "\n".join(
    f"{f.name}: {f.metadata['help']} (default {'unset' if f.default is None else f.default})."
    for f in fields(Thresholds))

OPTIONAL = frozenset({"similar_content", "outlier_appearance_z"})
"""Thresholds that may be None (their check, or its part, is then off)."""


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

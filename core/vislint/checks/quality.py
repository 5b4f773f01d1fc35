"""Image-statistics checks: blurry, dark, bright, low information, odd size, grayscale.

Statistics come from the C++ core on the 128×128 working tile (so every image is
judged at the same scale) and from the original width and height. Each maps to a
score with :func:`vislint.thresholds.soft_score` (0.5 at the threshold).

| check | statistic | bad when |
|---|---|---|
| blurry | sharpness: RMS of the Laplacian of luminance / (luminance std + 1) | below ``blurry`` |
| dark | 95th percentile of luminance | below ``dark`` |
| bright | 5th percentile of luminance | above ``bright`` |
| low_information | entropy of the luminance histogram (bits) | below ``low_information`` |
| grayscale | mean largest channel difference | below ``grayscale`` |
| odd_size | max(log aspect / log ``odd_aspect``, abs log area-vs-median / log ``odd_area_factor``) | above 1 |
"""
from __future__ import annotations

import numpy as np

from .. import _native
from ..thresholds import Thresholds, soft_score

QUALITY_CHECKS = ("blurry", "dark", "bright", "low_information", "odd_size", "grayscale")
_COL = {name: i for i, name in enumerate(_native.STAT_NAMES)}


def quality_scores(stats: np.ndarray, width: np.ndarray, height: np.ndarray,
                   valid: np.ndarray, t: Thresholds, median_area: float | None = None
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{check: (statistic float[N], score float[N])}; NaN for invalid images. median_area:
    the area (px) odd sizes are measured against (None: the median of the valid images')."""
    st = {name: np.where(valid, stats[:, c], np.nan) for name, c in _COL.items()}
    w = np.where(valid, width, 0).astype(np.float64)
    h = np.where(valid, height, 0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.maximum(w, h) / np.minimum(w, h)
        area = w * h
        if median_area is None:
            median_area = np.median(area[valid]) if valid.any() else 1.0
        odd = np.maximum(np.log(aspect) / np.log(t.odd_aspect),
                         np.abs(np.log(area / median_area)) / np.log(t.odd_area_factor))
    odd = np.where(valid, odd, np.nan)
    sharpness = np.sqrt(st["blur_laplacian_var"]) / (st["lum_std"] + 1.0)
    out = {
        "blurry": (sharpness, soft_score(sharpness, t.blurry, low_is_bad=True)),
        "dark": (st["lum_p95"], soft_score(st["lum_p95"], t.dark, low_is_bad=True)),
        # headroom above the 5th percentile: little headroom = washed out
        "bright": (st["lum_p05"], soft_score(255.0 - st["lum_p05"], 255.0 - t.bright, low_is_bad=True)),
        "low_information": (st["entropy"], soft_score(st["entropy"], t.low_information, low_is_bad=True)),
        "grayscale": (st["channel_diff"], soft_score(st["channel_diff"], t.grayscale, low_is_bad=True)),
        "odd_size": (odd, soft_score(odd, 1.0, low_is_bad=False)),
    }
    return {k: (s, np.where(valid, sc, np.nan)) for k, (s, sc) in out.items()}


def _quality_check(name: str):
    def check(ctx):
        from ..vocabulary import CheckResult, check as record

        if "quality" not in ctx.shared:  # the six checks share one computation
            ctx.shared["quality"] = quality_scores(ctx.stats, ctx.meta["width"], ctx.meta["height"],
                                                   ctx.valid, ctx.thresholds)
        stat, score = ctx.shared["quality"][name]
        return CheckResult(flag=np.nan_to_num(score) >= 0.5, score=score,
                           columns={record(name).statistic[0]: stat})
    check.__name__ = name
    check.__doc__ = f"The {name} check (see the module docstring)."
    return check


blurry, dark, bright, low_information, odd_size, grayscale = map(_quality_check, QUALITY_CHECKS)

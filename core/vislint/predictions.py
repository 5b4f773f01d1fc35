"""A model's predicted class probabilities for the scanned images: read, aligned with the
scan's images and checked.

``predictions=`` (:func:`vislint.scan`, ``--predictions`` on the command line) takes, per
image, the probability of each class — ideally out-of-sample (cross-validated), as confident
learning assumes:

- a DataFrame whose columns are the class names, plus optionally a ``path`` or ``relpath``
  column naming each row's image (relative to the scanned folder, or absolute); without one,
  its rows are the scan's images in their order (:attr:`vislint.ScanResults.images`);
- an array ``[N, C]`` with its class names as ``(array, names)``, or alone when its columns are
  the scan's labels in sorted order;
- a ``.npy`` (an array), ``.csv`` or ``.parquet`` (a DataFrame) file.

Every row must be probabilities (finite, in [0, 1], summing to 1 within
:data:`SUM_TOLERANCE`; apply a softmax to logits first); every label of the scan must be one
of the classes. Errors say which row or label is wrong and how to fix it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUM_TOLERANCE = 1e-3
"""How far from 1 a row of probabilities may sum (float32 rounding of 1,000 classes)."""

_NAME_COLUMNS = ("path", "relpath")


@dataclass
class Predictions:
    """probs: float64[N, C], row i for catalog row i; classes: the C class names."""

    probs: np.ndarray
    classes: list[str]

    def predicted(self) -> tuple[list[str], np.ndarray]:
        """(the most probable class of every image, its probability)."""
        top = self.probs.argmax(axis=1)
        return [self.classes[c] for c in top], self.probs[np.arange(len(top)), top]


def read_predictions(source, *, relpaths: list[str], paths: list[str],
                     labels: list[str | None]) -> Predictions:
    """``source`` (see the module docstring) aligned with the catalog (its ``relpaths``,
    absolute ``paths`` and ``labels``). Raises ValueError saying what is wrong."""
    import pandas as pd

    if isinstance(source, (str, Path)):
        source = _read_file(Path(source))
    if isinstance(source, tuple):
        array, classes = source
        frame = pd.DataFrame(np.asarray(array), columns=[str(c) for c in classes])
    elif isinstance(source, pd.DataFrame):
        frame = source
    else:
        array = np.asarray(source)
        classes = sorted({x for x in labels if x is not None})
        if array.ndim != 2 or array.shape[1] != len(classes):
            raise ValueError(
                f"predictions: an array of shape {array.shape} with no class names needs one "
                f"column per label of the scan, in sorted order ({len(classes)}: "
                f"{', '.join(classes[:10])}{' …' if len(classes) > 10 else ''}); pass "
                f"(array, class_names) or a DataFrame whose columns are the class names")
        frame = pd.DataFrame(array, columns=classes)
    name_column = next((c for c in _NAME_COLUMNS if c in frame.columns), None)
    classes = [str(c) for c in frame.columns if c != name_column]
    if not classes:
        raise ValueError("predictions: no class columns (one column per class, named after it)")
    try:
        probs = frame[[c for c in frame.columns if c != name_column]].to_numpy(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"predictions: every class column must hold numbers ({e})") from None
    order = _rows(frame[name_column].astype(str).tolist(), relpaths, paths) if name_column else None
    if order is None and len(probs) != len(relpaths):
        raise ValueError(f"predictions: {len(probs)} rows for {len(relpaths)} images; give one "
                         f"row per image, or a 'path' column naming each row's image")
    if order is not None:
        probs = probs[order]
    _check_probabilities(probs, relpaths)
    missing = sorted({x for x in labels if x is not None} - set(classes))
    if missing:
        raise ValueError(f"predictions: the labels {', '.join(missing[:10])} are not among the "
                         f"predictions' classes ({', '.join(classes[:10])}"
                         f"{' …' if len(classes) > 10 else ''}); name the columns after the labels")
    return Predictions(probs, classes)


def _read_file(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".csv":
        frame = pd.read_csv(path)
    elif suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        raise ValueError(f"predictions: {path} is not .npy, .csv or .parquet")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _rows(names: list[str], relpaths: list[str], paths: list[str]) -> np.ndarray:
    """For each catalog row, the row of ``names`` naming it (relative or absolute path)."""
    import os

    at = {}
    for i, name in enumerate(names):
        at.setdefault(name, i)
        at.setdefault(os.path.normpath(name), i)
    order, missing = [], []
    for rel, path in zip(relpaths, paths):
        i = at.get(rel, at.get(os.path.normpath(os.path.abspath(path))))
        if i is None:
            missing.append(rel)
        order.append(-1 if i is None else i)
    if missing:
        raise ValueError(f"predictions: no row for {len(missing)} of the {len(relpaths)} images "
                         f"(e.g. {', '.join(missing[:3])}); name them in the 'path' column, "
                         f"relative to the scanned folder or absolute")
    return np.array(order, np.int64)


def _check_probabilities(probs: np.ndarray, relpaths: list[str]) -> None:
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(f"predictions: {int(bad.sum())} rows hold NaN or infinity (first: "
                         f"{relpaths[r]}); every image needs a probability for every class")
    outside = ((probs < 0) | (probs > 1)).any(axis=1)
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1) > SUM_TOLERANCE
    if outside.any() or off.any():
        r = int(np.flatnonzero(outside | off)[0])
        raise ValueError(f"predictions: rows must be class probabilities (each in [0, 1], "
                         f"summing to 1); {relpaths[r]}'s sum to {sums[r]:.4g}: apply a "
                         f"softmax to logits first")

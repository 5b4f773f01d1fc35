"""vislint: find what is wrong in an image dataset.

>>> import vislint
>>> res = vislint.scan("data/")          # a folder, list of paths, DataFrame or CSV
>>> res.summary()                        # one row per check
>>> df = res.to_dataframe()              # one row per image
>>> res = vislint.load("vislint-out")    # a saved scan
>>> new = vislint.query("incoming/", "vislint-out")   # which of these already exist?

The public names are imported on first use, so ``import vislint`` (and
``vislint --help``) stays fast and never loads faiss or the native core early. When that
first use is what loads NumPy, NumPy's BLAS threads are first told to sleep as soon as they
are idle (:func:`vislint.tuning.before_numpy`), as the command does.
"""
import sys
from importlib import import_module

from ._version import __version__

_LAZY = {"scan": "pipeline", "load": "results", "ScanResults": "results", "query": "lookup",
         "evaluate": "evaluation", "Thresholds": "thresholds"}
_SUBMODULES = ("features", "models")
"""Modules reachable as attributes (``vislint.features.Onnx``), imported on first use."""

__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name: str):
    if name in _LAZY or name in _SUBMODULES:
        if "numpy" not in sys.modules:
            from .tuning import before_numpy

            before_numpy()
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'vislint' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

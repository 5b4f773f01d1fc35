"""vislint: find what is wrong in an image dataset.

>>> import vislint
>>> res = vislint.scan("data/")          # a folder, list of paths, DataFrame or CSV
>>> res.summary()                        # one row per check
>>> df = res.to_dataframe()              # one row per image
>>> res = vislint.load("vislint-out")    # a saved scan

The public names are imported on first use, so ``import vislint`` (and
``vislint --help``) stays fast and never loads faiss or the native core early.
"""
from importlib import import_module

from ._version import __version__

_LAZY = {"scan": "pipeline", "load": "results", "ScanResults": "results",
         "evaluate": "evaluation", "Thresholds": "thresholds"}
_SUBMODULES = ("features", "models")
"""Modules reachable as attributes (``vislint.features.Onnx``), imported on first use."""

__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'vislint' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

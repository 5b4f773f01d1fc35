"""Turn a source (folder, list of paths, DataFrame or CSV file) into a :class:`Catalog`.

A catalog is the list of images a scan looks at, with an optional label and split per image:

- Folder: walked recursively in sorted order, following directory symlinks (each real directory
  is visited once, so symlink loops end), skipping hidden files and folders (name starts with
  ".") and vislint's own output folders (work dirs and report thumbnails, marked by a
  :data:`WORKDIR_MARKER` file), so a work dir inside the scanned folder is never scanned as
  data. A file is an image if its extension is in :data:`IMAGE_EXTENSIONS` (any case) or, for
  any other extension, if its first bytes carry an image signature (:func:`sniff_format`); a
  file whose type cannot even be checked (a symlink loop) is kept, and decoding says why it
  cannot be used. Splits and labels are inferred from folder names (see :func:`build_catalog`).

File names that are not valid UTF-8 (possible on Linux) are scanned like any other; the
catalog keeps them as Python gives them (so they open), and :func:`printable` shows them with
``\\xNN`` escapes in result tables, which must hold text.
- List or tuple of paths: used as given; no labels or splits.
- pandas DataFrame or ``.csv`` file: column ``path`` (or ``filepath``) required; optional
  ``label`` and ``split`` columns (empty or NaN means None). Relative paths in a CSV file are
  relative to the CSV file's folder, in a DataFrame to the current directory.

Nothing here opens an image beyond reading at most 32 bytes to sniff its signature; whether a
file really decodes is decided later, by :mod:`vislint.decode`.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path


IMAGE_EXTENSIONS = frozenset(
    "jpg jpeg jpe jfif png apng bmp dib gif tif tiff webp ppm pgm pbm pnm pfm ico icns tga dds "
    "jp2 j2k heic heif avif qoi sgi rgb psd pcx svg svgz".split())
"""Lower-case file extensions (without the dot) taken as images without sniffing."""

SNIFF_BYTES = 32
"""Bytes read from a file to recognise its image signature."""

WORKDIR_MARKER = ".vislint-output"
"""A file vislint writes into every folder it fills (work dirs, report thumbnails); a folder
walk skips folders holding it."""

_SPLITS = {"train": "train", "training": "train",
           "valid": "valid", "val": "valid", "validation": "valid", "dev": "valid",
           "test": "test", "testing": "test"}
_SPLIT_SUFFIX = re.compile(r"[-_]?(set|split|data|images|imgs)$")
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"heif"}
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


@dataclass
class Catalog:
    """The images of one source, in a fixed order; all lists have one entry per image.

    root: the folder scanned, or None for lists, DataFrames and CSV files.
    paths: absolute paths as given or found (not resolved through symlinks).
    relpaths: POSIX path relative to ``root``, or the path as given when there is no root.
    labels: class label per image, or None when unknown.
    splits: "train", "valid", "test", the user's own value from a DataFrame/CSV, or None.
    ids: stable id per image: the first 16 hex characters of blake2b(relpath as UTF-8).
    """

    root: Path | None
    paths: list[str]
    relpaths: list[str]
    labels: list[str | None]
    splits: list[str | None]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.paths)


@functools.lru_cache(maxsize=4096)  # folder names repeat along every path
def canonical_split(name: str) -> str | None:
    """The split a folder or split-column name stands for: "train", "valid", "test" or None.

    Case is ignored and one suffix such as "_set", "-set", "_split", "_data", "_images" or "_imgs"
    is stripped first, so "Training", "train_set", "val", "dev_set" and "testing" are all
    recognised; anything else gives None.
    """
    return _SPLITS.get(_SPLIT_SUFFIX.sub("", name.lower()))


def sniff_format(head: bytes) -> str | None:
    """Pillow's name for the image format whose signature starts ``head``, or None.

    Recognises JPEG, PNG, GIF, BMP, TIFF, WEBP, PPM (PNM P1-P6), ICO, HEIF, AVIF and JPEG2000
    from the first :data:`SNIFF_BYTES` bytes of a file.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "PPM"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "ICO"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIF"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    return None


def build_catalog(source, *, labels="auto", splits="auto") -> Catalog:
    """Build the catalog of ``source``.

    source: a folder (str or Path), a list or tuple of image paths, a pandas DataFrame, or the
        path of a ``.csv`` file (see the module docstring for each).
    labels: "auto" (default) infers labels from class folders, or takes a DataFrame/CSV's
        ``label`` column; None leaves every label None.
    splits: "auto" (default) infers splits from folder names, or takes a DataFrame/CSV's
        ``split`` column; None leaves every split None.

    Folder inference: the first folder (from the top) whose name :func:`canonical_split`
    recognises gives the split of everything below it. Within each split folder (or the root,
    for images outside split folders) images get their class folder's name as label only if
    EVERY image there sits exactly one folder below it (``train_set/<class>/x.jpg``);
    otherwise those images get no label, never a guessed one.

    Raises FileNotFoundError for a source path that does not exist, ValueError for an empty
    source, a DataFrame without a path column, or duplicate paths.
    """
    for name, value in (("labels", labels), ("splits", splits)):
        if value not in ("auto", None):
            raise ValueError(f"{name} must be 'auto' or None, got {value!r}")
    pd = sys.modules.get("pandas")  # a DataFrame means pandas is loaded; never load it here
    if pd is not None and isinstance(source, pd.DataFrame):
        catalog = _from_frame(source, base=None, what="the DataFrame")
    elif isinstance(source, (list, tuple)):
        catalog = _from_list(source)
    elif isinstance(source, (str, os.PathLike)):
        catalog = _from_path(Path(source))
    else:
        raise ValueError(f"cannot build a catalog from a {type(source).__name__}; pass a folder, "
                         "a list of image paths, a pandas DataFrame or a .csv file")
    if labels is None:
        catalog.labels = [None] * len(catalog)
    if splits is None:
        catalog.splits = [None] * len(catalog)
    _warn_undecodable(catalog.relpaths)
    return catalog


def printable(paths: list[str]) -> list[str]:
    """``paths`` as valid UTF-8 text: a name that is not valid UTF-8 gets ``\\xNN`` escapes
    for its undecodable bytes (the same list when every name is valid)."""
    try:
        "".join(paths).encode("utf-8")
        return paths
    except UnicodeEncodeError:
        return [_printable(p) for p in paths]


def _printable(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _warn_undecodable(relpaths: list[str]) -> None:
    shown = printable(relpaths)
    if shown is relpaths:
        return
    bad = [s for s, r in zip(shown, relpaths) if s != r]
    warnings.warn(f"{len(bad)} file name{'s are' if len(bad) > 1 else ' is'} not valid UTF-8 "
                  f"(first: {bad[0]}); scanned as usual, and shown with \\xNN escapes in the "
                  "results. Rename them so that other tools can open them too.", stacklevel=3)


def _from_path(path: Path) -> Catalog:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; pass a folder of images, a .csv file "
                                "with a 'path' column, a list of paths or a DataFrame")
    if path.is_dir():
        return _from_folder(path)
    if path.suffix.lower() == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return _from_frame(frame, base=path.parent, what=str(path))
    raise ValueError(f"{path} is a file, not a folder or a .csv file; to scan one image, "
                     f"pass it in a list: [{str(path)!r}]")


def _from_folder(folder: Path) -> Catalog:
    root = Path(os.path.abspath(folder))
    prefix = os.path.join(str(root), "")  # every path _walk finds starts with it
    relpaths = sorted(p[len(prefix):].replace(os.sep, "/") for p in _walk(root))
    if not relpaths:
        raise ValueError(f"no images found under {root}; vislint looks for files with image "
                         "extensions or image signatures")
    labels, splits = _infer_labels_and_splits(relpaths)
    return Catalog(root=root, paths=[os.path.join(root, r) for r in relpaths], relpaths=relpaths,
                   labels=labels, splits=splits, ids=[stable_id(r) for r in relpaths])


def _walk(root: Path) -> list[str]:
    """Paths of the image files under ``root``; each real directory is listed once."""
    found, visited, stack = [], set(), [str(root)]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in visited:
            continue
        visited.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            warnings.warn(f"skipping folder {folder}: {e.strerror or e}", stacklevel=3)
            continue
        if any(e.name == WORKDIR_MARKER for e in entries):
            continue  # vislint's own output (a work dir, report thumbnails), not data
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:  # e.g. a symlink loop: not a folder; decoding gives its reason
                is_dir = False
            if is_dir:
                subfolders.append(entry.path)
            elif _is_image_file(entry):
                found.append(entry.path)
        stack.extend(reversed(subfolders))  # visit in name order, so the same alias always wins
    return found


def _is_image_file(entry: os.DirEntry) -> bool:
    if os.path.splitext(entry.name)[1][1:].lower() in IMAGE_EXTENSIONS:
        return True  # even a broken symlink or a FIFO: decoding gives the reason
    try:
        if not entry.is_file():
            return False  # broken symlink, FIFO, socket: nothing to sniff (a FIFO would block)
        with open(entry.path, "rb") as f:
            return sniff_format(f.read(SNIFF_BYTES)) is not None
    except OSError:
        return False


def _infer_labels_and_splits(relpaths: list[str]) -> tuple[list[str | None], list[str | None]]:
    # For each image: its split and the folders from the root down to its split folder (its
    # "subtree"); then label only subtrees whose images all sit exactly one folder below them.
    splits, tops, parts_of = [], [], []
    for rel in relpaths:
        parts = rel.split("/")
        depth = next((i for i, name in enumerate(parts[:-1]) if canonical_split(name)), -1)
        splits.append(canonical_split(parts[depth]) if depth >= 0 else None)
        tops.append(tuple(parts[:depth + 1]))
        parts_of.append(parts)
    class_layout: dict[tuple, bool] = {}
    for top, parts in zip(tops, parts_of):
        class_layout[top] = class_layout.get(top, True) and len(parts) == len(top) + 2
    labels = [parts[len(top)] if class_layout[top] else None for top, parts in zip(tops, parts_of)]
    return labels, splits


def _from_list(items) -> Catalog:
    if not items:
        raise ValueError("the list of paths is empty; pass at least one image path")
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise ValueError(f"every item of the list must be a path (str or Path), "
                             f"got {type(item).__name__}: {item!r}")
    n = len(items)
    return _catalog_of(items, base=None, labels=[None] * n, splits=[None] * n, what="the list")


def _from_frame(frame, base: Path | None, what: str) -> Catalog:
    """Catalog of a pandas DataFrame (see the module docstring)."""
    column = next((c for c in ("path", "filepath") if c in frame.columns), None)
    if column is None:
        raise ValueError(f"{what} has no 'path' or 'filepath' column (its columns are "
                         f"{list(frame.columns)}); name the column of image paths 'path'")
    if len(frame) == 0:
        raise ValueError(f"{what} has no rows; it must list at least one image path")
    paths = [_text(v) for v in frame[column]]
    if None in paths:
        raise ValueError(f"{what} has an empty path in row {paths.index(None)}; "
                         "every row needs an image path")
    n = len(paths)
    labels = [_text(v) for v in frame["label"]] if "label" in frame.columns else [None] * n
    splits = ([None if v is None else canonical_split(v) or v
               for v in map(_text, frame["split"])] if "split" in frame.columns else [None] * n)
    return _catalog_of(paths, base=base, labels=labels, splits=splits, what=what)


def _text(value) -> str | None:
    """A cell as text; None for NaN, None and the empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is getattr(
            sys.modules.get("pandas"), "NA", None):
        return None
    return str(value) or None


def _catalog_of(items, base: Path | None, labels, splits, what: str) -> Catalog:
    """Catalog of explicit paths; relative ones are taken relative to ``base`` (default: cwd)."""
    given = [os.fspath(p) for p in items]
    paths = [os.path.abspath(os.path.join(base, p) if base else p) for p in given]
    seen: set[str] = set()
    for p in paths:
        if p in seen:
            raise ValueError(f"{what} lists {p} more than once; remove the duplicate rows")
        seen.add(p)
    relpaths = [Path(p).as_posix() for p in given]
    return Catalog(root=None, paths=paths, relpaths=relpaths, labels=list(labels),
                   splits=list(splits), ids=[stable_id(r) for r in relpaths])


def stable_id(relpath: str) -> str:
    """The id of an image: the first 16 hex characters of blake2b(its relative path, UTF-8)."""
    # surrogateescape: a name that is not valid UTF-8 is hashed as its own bytes
    return hashlib.blake2b(relpath.encode("utf-8", "surrogateescape")).hexdigest()[:16]

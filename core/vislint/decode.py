"""Decode images in parallel to fixed-size RGB tiles, with a reason for every failure.

Each file is read once, hashed (blake2b, 16-byte digest, hex) and decoded from memory — plain
JPEGs by libjpeg(-turbo) directly when the C++ core was built with it
(:func:`vislint._native.decode_jpeg`: the same pixels as Pillow, about twice as fast),
everything else by Pillow: first frame only, EXIF orientation applied, converted to 8-bit RGB
(see :func:`_to_rgb`) and
resized to ``tile`` x ``tile`` pixels (default :data:`TILE`) by area averaging in the C++ core
(:func:`vislint._native.tiles_from_images`), ignoring the aspect ratio. JPEGs at least ``tile``
px on both sides are decoded with DCT scaling (Pillow's draft mode), and other images more than
twice the tile size are first shrunk by an integer factor with Pillow's ``reduce`` (a box
filter), so no full-size image is kept in memory.

A file that cannot be used gets one of the :data:`REASONS` codes and a message saying what
happened and how to fix it; a bad file never raises out of :func:`decode_batch`.

Pillow's own decompression-bomb check (``Image.MAX_IMAGE_PIXELS``) is switched off while vislint
decodes, because ``max_pixels`` replaces it: an image with more pixels is reported as
``too_large`` from its header alone, before any pixel is decoded. ``max_pixels`` also bounds
memory by bytes, since a pixel's size depends on its bit depth and bands: a file larger than
:data:`BYTES_PER_PIXEL` x ``max_pixels`` bytes is not read, and an image whose decoding would
hold more than that many bytes (its raster at its own depth, plus the conversion to 8-bit RGB;
see :func:`decode_bytes`) is ``too_large`` too. With the default that is about 1.4 GB per
decoding worker. Only regular files are read (a FIFO would block the reader forever, a link to
``/dev/zero`` never ends): anything else is ``not_a_file``.
"""
from __future__ import annotations

import hashlib
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import stat
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import _native
from .catalog import SNIFF_BYTES, sniff_format
from .progress import Bar

TILE = 128
"""Side of the square tiles, in pixels."""

MAX_PIXELS = 178_956_970
"""Default ``max_pixels``: twice Pillow's default bomb limit, about 13,377 x 13,377 px."""

BYTES_PER_PIXEL = 8
"""Memory budget per ``max_pixels`` pixel, in bytes: a file larger than ``BYTES_PER_PIXEL *
max_pixels`` bytes is not read, and an image needing more memory than that to decode is
``too_large``. 8 bytes admits an 8-bit RGB or a 16-bit grey image of ``max_pixels`` pixels
(and RGBA up to about two thirds of it), and keeps one decoding worker under ~1.4 GB."""

REASONS = {
    "missing": "The file is gone: it vanished during the scan, or it is a broken symlink.",
    "unreadable": "The file exists but cannot be read (permission or I/O error, symlink loop).",
    "not_a_file": "Not a regular file: a FIFO, a device, a socket or a folder with an image name.",
    "zero_bytes": "The file is empty (0 bytes).",
    "not_image": "The content is not an image (for example text in a file named .png).",
    "unsupported_format": "An image format Pillow cannot decode here (for example SVG or HEIC).",
    "truncated": "An image whose data ends early (an interrupted download or copy).",
    "corrupt": "An image whose data is damaged in a way other than being cut short.",
    "too_small": "The image is smaller than min_side pixels on a side.",
    "too_large": "The image has more than max_pixels pixels, or needs more memory to decode than "
                 "max_pixels x 8 bytes (decompression-bomb guard).",
}
"""Failure code -> one-line explanation for users."""

_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
"""EXIF orientation -> the transposition that displays the image upright."""

_EXIF_ORIENTATION = 0x0112
_FAST_JPEG = _native.have_jpeg()
"""Plain JPEGs are decoded by the C++ core's libjpeg (the same pixels, about twice as fast)."""
_ALPHA_MODES = frozenset({"LA", "PA", "RGBA", "RGBa"})
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}
_END_WINDOW = 1024
"""Bytes at the end of a file searched for its format's end marker."""


@dataclass
class Decoded:
    """One decoded batch; every array and list is aligned with the input paths.

    tiles: uint8[n, tile, tile, 3] RGB; zeros where not ok or cached.
    ok: bool[n], True when the image decoded (or was skipped as cached).
    reason, message: a :data:`REASONS` code and a human message per failed image, else None.
    width, height: int32[n] pixels after EXIF orientation (the header's size for images that
        failed after their header was read); 0 when unknown, including cached images.
    file_size: int64[n] bytes; -1 when the file could not be read.
    content_hash: hex blake2b (16-byte digest) of the file's bytes; None when unreadable.
    format, mode: Pillow's format and original mode names; None when unknown.
    frames: int32[n] frames in the file (animations, multi-page TIFF); 0 when unknown.
    cached: bool[n], True for files whose hash was in ``skip_hashes`` (not decoded).
    """

    tiles: np.ndarray
    ok: np.ndarray
    reason: list[str | None]
    message: list[str | None]
    width: np.ndarray
    height: np.ndarray
    file_size: np.ndarray
    content_hash: list[str | None]
    format: list[str | None]
    mode: list[str | None]
    frames: np.ndarray
    cached: np.ndarray

    def __len__(self) -> int:
        return len(self.reason)


@dataclass
class FileInfo:
    """What :func:`decode_one` learnt about one file; fields as in :class:`Decoded`."""

    reason: str | None = None
    message: str | None = None
    width: int = 0
    height: int = 0
    file_size: int = -1
    content_hash: str | None = None
    format: str | None = None
    mode: str | None = None
    frames: int = 0
    cached: bool = False
    orientation: int = 1  # EXIF orientation (1-8) of the decoded pixels


class DecodeError(Exception):
    """An image that cannot be used: ``reason`` is a :data:`REASONS` code."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def decode_batch(paths, *, tile: int = TILE, min_side: int = 10, max_pixels: int = MAX_PIXELS,
                 threads: int = 0, skip_hashes=None) -> Decoded:
    """Decode ``paths`` to tiles and metadata, in parallel; output order is input order.

    tile: side of the output tiles in pixels (default 128).
    min_side: images with a side below this many pixels are ``too_small`` (default 10).
    max_pixels: images with more pixels (width x height) are ``too_large`` and never decoded
        (default 178,956,970).
    threads: worker processes (the scan's, see :func:`describe_all`); 0 (default) uses
        ``os.cpu_count()``, 1 decodes in this process. Results do not depend on it.
    skip_hashes: optional set of content hashes already cached: such files are read and hashed
        but not decoded, and come back ok and ``cached`` with zero tiles and unknown size.
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise ValueError("paths must be a list of paths; for one file pass [path]")
    _check_sizes(tile=tile, min_side=min_side, max_pixels=max_pixels)
    if not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be an int >= 0 (0 = one per CPU), got {threads!r}")
    paths = list(paths)
    tasks = [("tiles", paths[s:s + CHUNK], (tile, min_side, max_pixels))
             for s in range(0, len(paths), CHUNK)]
    infos, tiles = [], []
    with _workers(threads or os.cpu_count() or 1, len(tasks), frozenset(skip_hashes or ())) as run:
        for part, part_tiles in run(tasks):
            infos += part
            tiles.append(part_tiles)
    return Decoded(
        tiles=np.concatenate(tiles) if tiles else np.zeros((0, tile, tile, 3), np.uint8),
        ok=np.array([f.reason is None for f in infos], bool),
        reason=[f.reason for f in infos],
        message=[f.message for f in infos],
        width=np.array([f.width for f in infos], np.int32),
        height=np.array([f.height for f in infos], np.int32),
        file_size=np.array([f.file_size for f in infos], np.int64),
        content_hash=[f.content_hash for f in infos],
        format=[f.format for f in infos],
        mode=[f.mode for f in infos],
        frames=np.array([f.frames for f in infos], np.int32),
        cached=np.array([f.cached for f in infos], bool),
    )


def _tiles_chunk(paths, skip_hashes, tile, min_side, max_pixels):
    """Decode ``paths``: (FileInfo per path, uint8[n, tile, tile, 3] tiles, zero where none)."""
    infos, rows, images = [], [], []
    for i, path in enumerate(paths):
        pixels, info = decode_pixels(path, tile=tile, min_side=min_side, max_pixels=max_pixels,
                                     skip_hashes=skip_hashes)
        if pixels is not None:
            rows.append(i)
            images.append(pixels)
        infos.append(info)
    tiles = np.zeros((len(paths), tile, tile, 3), np.uint8)
    if images:
        for r, t in zip(rows, _native.tiles_from_images(images, size=tile, threads=1)):
            tiles[r] = orient(t, infos[r].orientation)
    return infos, tiles


def decode_one(path, *, tile: int = TILE, min_side: int = 10, max_pixels: int = MAX_PIXELS,
               skip_hashes=None) -> tuple[np.ndarray | None, FileInfo]:
    """Decode one file: (uint8[tile, tile, 3] RGB tile or None, its :class:`FileInfo`).

    The tile is None when the file failed (``info.reason`` says why) or was skipped because its
    hash is in ``skip_hashes``. Arguments as in :func:`decode_batch`; never raises for a bad file.
    """
    pixels, info = decode_pixels(path, tile=tile, min_side=min_side, max_pixels=max_pixels,
                                  skip_hashes=skip_hashes)
    if pixels is None:
        return None, info
    return orient(_native.tiles_from_images([pixels], size=tile, threads=1)[0], info.orientation), info


def decode_pixels(path, *, tile, min_side, max_pixels, skip_hashes):
    """(uint8[H, W, 3] pixels before orientation, at most ~2 tiles a side, or None; FileInfo)."""
    info = FileInfo()
    try:
        data = _read(path, info, BYTES_PER_PIXEL * max_pixels)
        if skip_hashes and info.content_hash in skip_hashes:
            info.cached = True
            return None, info
        fast = _native.decode_jpeg(data, tile, min_side, max_pixels) if _FAST_JPEG else None
        if fast is not None:
            pixels, w, h, info.orientation, info.mode = fast
            info.format, info.frames = "JPEG", 1
            info.width, info.height = (h, w) if info.orientation in (5, 6, 7, 8) else (w, h)
            rgb = Image.fromarray(pixels) if min(pixels.shape[:2]) >= 2 * tile else None
        else:
            with _pillow_bomb_check_off():
                rgb, info.orientation = _load(data, info, min_side=min_side,
                                              max_pixels=max_pixels, draft_to=tile)
        if rgb is None:
            return pixels, info
        factor = min(rgb.width, rgb.height) // tile
        if factor >= 2:
            rgb = rgb.reduce(factor)
        return _pixel_array(rgb), info
    except DecodeError as e:
        info.reason, info.message = e.reason, e.message
        return None, info


def _pixel_array(im: Image.Image) -> np.ndarray:
    """The pixels of an RGB image: uint8[H, W, 4] RGBX sharing Pillow's own buffer (no
    copy; Pillow stores RGB as 4 bytes a pixel and exports it as an Arrow array), or a
    uint8[H, W, 3] copy where that export is not available (older Pillow, large images
    stored in several blocks)."""
    import pyarrow as pa  # imported on first use: a scan of JPEGs alone never needs it here

    w, h = im.size
    try:
        arr = pa.array(im)
        if len(arr) == w * h and arr.type.list_size == 4 and arr.offset == 0:
            return np.frombuffer(arr.buffers()[-1], np.uint8, count=4 * w * h).reshape(h, w, 4)
    except (AttributeError, TypeError, ValueError, pa.ArrowException):
        pass
    return np.asarray(im)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to uint8[H, W, 3 or 4] pixels (or a tile)."""
    if orientation not in _TRANSPOSE:
        return pixels
    return np.asarray(Image.fromarray(pixels).transpose(_TRANSPOSE[orientation]))


def decode_full(path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The whole image as uint8[height, width, 3] RGB, after EXIF orientation.

    The first frame, normalised to RGB exactly as the tiles of :func:`decode_batch` are.
    Raises :class:`DecodeError` (with a :data:`REASONS` code) when the file cannot be used.
    """
    _check_sizes(tile=1, min_side=0, max_pixels=max_pixels)
    info = FileInfo()
    data = _read(path, info, BYTES_PER_PIXEL * max_pixels)
    with _pillow_bomb_check_off():
        rgb, orientation = _load(data, info, min_side=0, max_pixels=max_pixels, draft_to=None)
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    return np.asarray(rgb)


def _check_sizes(*, tile, min_side, max_pixels) -> None:
    for name, value, low in (("tile", tile, 1), ("min_side", min_side, 0),
                             ("max_pixels", max_pixels, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low} (pixels), got {value!r}")


def _read(path, info: FileInfo, max_bytes: int) -> bytes:
    """The file's bytes; sets ``info.file_size`` and ``info.content_hash``."""
    data = read_image_file(path, max_bytes)
    info.file_size = len(data)
    info.content_hash = hashlib.blake2b(data, digest_size=16).hexdigest()
    if not data:
        raise DecodeError("zero_bytes", "the file is empty (0 bytes); re-download or re-export it")
    return data


def read_image_file(path, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), at most its size when
    opened. Raises :class:`DecodeError`: ``not_a_file`` for a FIFO, device, socket or folder
    (opened without blocking, so a FIFO with no writer cannot hang the reader), ``too_large``
    for a file over ``max_bytes``, ``missing`` / ``unreadable`` when it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as e:
        if os.path.islink(path):
            raise DecodeError("missing", f"broken symlink: its target {os.readlink(path)} does "
                                         "not exist; fix or remove the link") from e
        raise DecodeError("missing", "file not found: it was moved or deleted after the scan; "
                                     "scan again") from e
    except PermissionError as e:
        raise DecodeError("unreadable", "Permission denied: check the file's read permission "
                                        "(and its folders')") from e
    except OSError as e:
        raise DecodeError("unreadable", f"cannot open the file: {e.strerror or e}; if it is a "
                                        "symlink, check where it points") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DecodeError("not_a_file", f"this is a {_file_kind(st.st_mode)}, not a regular "
                                            "file; remove it or replace it with the image file")
        if st.st_size > max_bytes:
            raise DecodeError("too_large", f"the file has {st.st_size:,} bytes, more than "
                                           f"{max_bytes:,} ({BYTES_PER_PIXEL} bytes x max_pixels); "
                                           "raise max_pixels if the image is genuine")
        parts, left = [], st.st_size
        while left > 0:  # one read for a regular file; a file shrinking meanwhile ends it early
            part = os.read(fd, left)
            if not part:
                break
            parts.append(part)
            left -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError as e:
        raise DecodeError("unreadable", f"cannot read the file: {e.strerror or e}") from e
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISDIR, "folder")):
        if test(mode):
            return kind
    return "special file"


def _load(data: bytes, info: FileInfo, *, min_side: int, max_pixels: int,
          draft_to: int | None) -> tuple[Image.Image, int]:
    """Decode the first frame of ``data`` as RGB; returns it and its EXIF orientation (1-8).

    Fills in ``info``'s format, mode, frames, width and height. ``draft_to``: let JPEG decode
    at a reduced scale that still covers ``draft_to`` px on both sides, and shrink high-depth
    greyscale (16-bit, 32-bit, float) by an integer factor before widening it to RGB.
    """
    try:
        im = Image.open(io.BytesIO(data))
        info.format, info.mode, info.frames = im.format, im.mode, getattr(im, "n_frames", 1)
        w, h = info.width, info.height = im.size
        if w * h > max_pixels:
            raise DecodeError("too_large", f"{w}x{h} = {w * h:,} pixels, more than max_pixels="
                                           f"{max_pixels:,} (decompression-bomb guard); raise "
                                           "max_pixels if the image is genuine")
        if min(w, h) < min_side:
            raise DecodeError("too_small", f"{w}x{h} pixels: a side is below min_side={min_side}")
        if draft_to and w >= draft_to and h >= draft_to:
            im.draft("RGB", (draft_to, draft_to))
        need = decode_bytes(im.mode, *im.size, "transparency" in im.info)
        if need > BYTES_PER_PIXEL * max_pixels:
            raise DecodeError("too_large", f"{w}x{h} pixels in mode {im.mode} need about "
                                           f"{need / 2**20:,.0f} MiB to decode, more than "
                                           f"{BYTES_PER_PIXEL} bytes x max_pixels; raise "
                                           "max_pixels if the image is genuine")
        im.load()
        rgb = _to_rgb(im, shrink_to=draft_to)
    except DecodeError:
        raise
    except Exception as e:  # Pillow raises many exception types on bad data
        raise _failure(data, info.format, e) from e
    orientation = _orientation(im)
    if orientation in (5, 6, 7, 8):
        info.width, info.height = h, w
    return rgb, orientation


_HIGH_DEPTH = ("I", "F")
"""Mode prefixes of high-depth greyscale (I;16*, I, F): scaled to 8 bits in row bands."""


def decode_bytes(mode: str, width: int, height: int, transparency: bool = False) -> int:
    """Bytes of memory that decoding a ``mode`` image of ``width`` x ``height`` pixels holds
    at its peak in :func:`_load`: Pillow's raster (1 byte a pixel for 1/L/P, 2 for LA/PA and
    16-bit grey, else 4) plus the conversion to 8-bit RGB (none for RGB; an 8-bit grey copy for
    high-depth grey, which is scaled in bands; an RGBA and an RGB copy where alpha or
    transparency is composited over white; an RGB copy otherwise)."""
    pixels = width * height
    stored = 1 if mode in ("1", "L", "P") else 2 if mode in ("LA", "La", "PA") or \
        mode.startswith("I;16") else 4
    if mode == "RGB":
        extra = 0
    elif mode.startswith(_HIGH_DEPTH):
        extra = 1
    elif mode in _ALPHA_MODES or transparency:
        extra = 8
    else:
        extra = 4
    return pixels * (stored + extra)


_BAND_ROWS = 256
"""Rows of a high-depth grey image scaled to 8 bits at a time (bounds the float64 copy)."""


def _to_rgb(im: Image.Image, shrink_to: int | None = None) -> Image.Image:
    """8-bit RGB: alpha and transparency composited over white; 16-bit and float scaled.

    Unsigned I;16*: value / 257. I (32-bit), F (float) and signed I;16S: min-max of the image
    to 0-255 (non-finite values count as 0). Other modes (1, L, P, CMYK, YCbCr, LAB, ...) are converted by Pillow.
    ``shrink_to``: high-depth grey is first reduced by the integer factor that keeps both sides
    at least ``shrink_to`` px (as :func:`decode_pixels` would reduce the RGB image: the same
    pixels, without a full-size RGB copy).
    """
    if im.mode == "RGB":
        return im
    if im.mode.startswith(_HIGH_DEPTH):
        gray = _high_depth_to_gray(im)
        factor = min(gray.size) // shrink_to if shrink_to else 1
        return (gray.reduce(factor) if factor >= 2 else gray).convert("RGB")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        rgb = Image.new("RGB", im.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba)
        return rgb
    return im.convert("RGB")


def _high_depth_to_gray(im: Image.Image) -> Image.Image:
    """An I;16*, I or F image as 8-bit grey (see :func:`_to_rgb`), converted in bands of
    :data:`_BAND_ROWS` rows so that no full-size copy is made."""
    w, h = im.size
    bands = [(y, min(y + _BAND_ROWS, h)) for y in range(0, h, _BAND_ROWS)]
    out = np.empty((h, w), np.uint8)
    if im.mode in _UNSIGNED_16:  # a table of the 65,536 values: no float copy of a band
        for y0, y1 in bands:
            np.take(_SIXTEEN_TO_EIGHT, np.asarray(im.crop((0, y0, w, y1))), out=out[y0:y1])
        return Image.fromarray(out)

    def values(y0, y1):
        band = np.asarray(im.crop((0, y0, w, y1)), dtype=np.float64)
        return np.nan_to_num(band, nan=0.0, posinf=0.0, neginf=0.0)
    lows, highs = zip(*((v.min(), v.max()) for v in (values(*b) for b in bands)))
    low, high = min(lows), max(highs)
    scale = 255.0 / (high - low) if high > low else 0.0
    for y0, y1 in bands:
        out[y0:y1] = np.rint((values(y0, y1) - low) * scale)
    return Image.fromarray(out)


_UNSIGNED_16 = ("I;16", "I;16L", "I;16B", "I;16N")
_SIXTEEN_TO_EIGHT = np.rint(np.arange(65536) / 257.0).astype(np.uint8)
"""A 16-bit value v as 8 bits: round(v / 257), so 0 → 0 and 65535 → 255."""


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8 (1 = upright); 1 when the EXIF data is missing or unreadable."""
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # damaged EXIF does not make the pixels unusable
        return 1


def _failure(data: bytes, fmt: str | None, error: Exception) -> DecodeError:
    """Classify a failed decode from the file's signature and Pillow's error."""
    Image.init()  # registers every plugin, so Image.OPEN lists all decodable formats
    fmt = fmt or sniff_format(data[:SNIFF_BYTES]) or ("SVG" if _is_svg(data) else None)
    if fmt is None:
        # the file's own bytes are never echoed: it may be anything (a link to a secret)
        kind = "text" if _looks_like_text(data[:512]) else "binary data"
        return DecodeError("not_image", f"the content is not an image: {kind} with no known "
                                        "image signature; replace it or remove it")
    if fmt not in Image.OPEN:
        return DecodeError("unsupported_format", f"the file is in {fmt} format, which this Pillow "
                                                 "cannot decode; convert it to PNG or JPEG, or "
                                                 f"install a Pillow plugin for {fmt}")
    # (the text of UnidentifiedImageError names a memory address: not worth showing)
    text = ("Pillow cannot identify it" if isinstance(error, UnidentifiedImageError)
            else str(error))
    marker = _END_MARKERS.get(fmt)
    if ("truncated" in text.lower() or "broken data stream" in text
            or (marker and marker not in data[-_END_WINDOW:])):
        return DecodeError("truncated", f"the {fmt} data ends early ({text}); re-download or "
                                        "re-export the file")
    return DecodeError("corrupt", f"the {fmt} data is damaged ({type(error).__name__}: {text}); "
                                  "re-download or re-export the file")


def _looks_like_text(head: bytes) -> bool:
    """Whether ``head`` reads as UTF-8 text with no control characters but tab and newlines
    (a multi-byte character cut at the end of ``head`` does not count against it)."""
    text = head.decode("utf-8", "replace").rstrip("\ufffd")
    return bool(text) and all((c >= " " and c != "\ufffd") or c in "\t\r\n" for c in text)


def _is_svg(data: bytes) -> bool:
    """SVG text: starts with <svg, or with an XML prolog or SVG doctype followed by <svg."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!DOCTYPE svg"))
                                          and b"<svg" in head)


_bomb_lock = threading.Lock()
_bomb_users = 0
_bomb_saved_limit = Image.MAX_IMAGE_PIXELS


@contextmanager
def _pillow_bomb_check_off():
    """Disable Pillow's global MAX_IMAGE_PIXELS while any thread decodes; max_pixels rules."""
    global _bomb_users, _bomb_saved_limit
    with _bomb_lock:
        if _bomb_users == 0:
            _bomb_saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _bomb_users += 1
    try:
        yield
    finally:
        with _bomb_lock:
            _bomb_users -= 1
            if _bomb_users == 0:
                Image.MAX_IMAGE_PIXELS = _bomb_saved_limit


# ------------------------------------------------------------ many files, in worker processes

CHUNK = 32
"""Files one worker decodes (and describes) in one task: one native call per task. Fewer,
larger tasks cost the parent less to hand out and collect, while the last task still ends
within ~30 ms of the other worker's."""

_START_METHOD = "fork" if sys.platform == "linux" else "spawn"
"""How worker processes start. Fork is cheap (nothing is imported again, and what the parent
imported is shared) and safe here: the workers run only Pillow and the native core,
single-threaded, never OpenMP or BLAS, whatever threads the parent has started."""


def describe_all(paths: list[str], cache, *, threads: int, progress, min_side: int,
                 max_pixels: int, batch_size: int, while_waiting=None, model=None,
                 vectors=None) -> dict:
    """Decode and describe every file not cached yet, batch by batch (a batch is a cache chunk,
    written as soon as it is complete); returns per-file metadata ("ok", "reason", "message",
    "width", "height", "file_size", "content_hash", "format").

    cache: the :class:`vislint.workdir.FeatureCache` of the descriptors, statistics and
    rotation descriptions (:func:`_describe_chunk`), keyed by content hash. threads: worker
    processes (1 = in this process); results do not depend on it. progress: True for a
    progress bar, or a callable ``progress(done, total)`` called after every batch.
    while_waiting: called on a thread of this process while the workers run. model, vectors: an ONNX
    :class:`vislint.features.Onnx` run in the workers too, and the cache of its vectors; a
    file is skipped only when both caches hold it. A file repeating the bytes of another
    file of the scan is described again but cached once.
    """
    n = len(paths)
    infos: list[FileInfo] = []
    report = progress if callable(progress) else None
    skip = frozenset(cache.hashes() & vectors.hashes() if vectors is not None else cache.hashes())
    batches = [range(start, min(start + batch_size, n), CHUNK) for start in range(0, n, batch_size)]
    tasks = [("describe", paths[s:min(s + CHUNK, b.stop)], (min_side, max_pixels))
             for b in batches for s in b]
    bar = waiter = None
    with _workers(threads, len(tasks), skip, model) as run:
        parts = run(tasks)
        try:
            bar = Bar("decode", n, "img", shown=bool(progress) and report is None)
            if while_waiting is not None:  # beside the loop, so each batch is cached as it comes
                waiter = threading.Thread(target=while_waiting, daemon=True)
                waiter.start()
            for batch in batches:
                described = []
                for _ in batch:
                    part, desc = next(parts)
                    infos += part
                    if desc is not None:
                        described.append(desc)
                    bar(len(part))
                if described:
                    chunk = {k: np.concatenate([d[k] for d in described]) for k in described[0]}
                    if vectors is not None:
                        vec = chunk.pop("vec")
                        new = _first_uncached(vectors, chunk["hash"].tolist())
                        vectors.add({"hash": chunk["hash"][new], "vec": vec[new]})
                    new = _first_uncached(cache, chunk["hash"].tolist())
                    cache.add(chunk if new.all() else {k: v[new] for k, v in chunk.items()})
                if report is not None:
                    report(len(infos), n)
        finally:
            if bar is not None:
                bar.close()
            if waiter is not None:
                waiter.join()
    meta = {"ok": np.array([f.reason is None for f in infos], bool),
            "reason": [f.reason for f in infos], "message": [f.message for f in infos],
            "width": np.array([f.width for f in infos], np.int32),
            "height": np.array([f.height for f in infos], np.int32),
            "file_size": np.array([f.file_size for f in infos], np.int64),
            "content_hash": [f.content_hash for f in infos], "format": [f.format for f in infos]}
    # cached images carry no decode metadata in this run: take it from the cache
    cached_rows = np.flatnonzero(meta["ok"] & (meta["width"] == 0)).tolist()
    if cached_rows:
        got = cache.gather([meta["content_hash"][i] for i in cached_rows],
                           fields=("width", "height", "format"))
        meta["width"][cached_rows] = got["width"]
        meta["height"][cached_rows] = got["height"]
        for r, f in zip(cached_rows, got["format"].tolist()):
            meta["format"][r] = f or None
    return meta


def _describe_chunk(paths, skip_hashes, min_side, max_pixels, model=None, model_threads=0):
    """Decode ``paths`` and describe the fresh ones (files whose hash is not in ``skip_hashes``).

    Returns (FileInfo per path, {name: array} for the rows that were described, or None):
    the native core's tile analysis ("raw" descriptor, "stats", "thumb": the grey thumbnail
    that verifies near duplicates) and rotation description ("rot", "polar", "rot_info"),
    with the file's metadata. With an ONNX
    ``model`` the image is decoded again at the model's scale and its vector comes back as
    "vec" (``model_threads`` intra-op threads): the descriptor is made from the same pixels
    with or without a model, so a model never changes what is a copy.
    """
    infos, fresh, images, model_images = [], [], [], []
    for path in paths:
        pixels, info = decode_pixels(path, tile=_native.TILE_SIZE, min_side=min_side,
                                     max_pixels=max_pixels, skip_hashes=skip_hashes)
        infos.append(info)
        if pixels is None:
            continue
        fresh.append(info)
        images.append(orient(pixels, info.orientation))
        if model is not None:
            if model.decode_side > _native.TILE_SIZE:
                pixels, _ = decode_pixels(path, tile=model.decode_side, min_side=min_side,
                                          max_pixels=max_pixels, skip_hashes=None)
            model_images.append(orient(pixels, info.orientation) if pixels is not None
                                else images[-1])
    if not images:
        return infos, None
    tiles, stats, thumbs, raw = _native.analyze(images, size=_native.TILE_SIZE, threads=1)
    dims = np.array([im.shape[:2] for im in images], np.int32)
    rot, polar, rot_info = _native.rotation_features(tiles, dims[:, 1], dims[:, 0], threads=1)
    extra = {"vec": model.embed(model_images, threads=model_threads)} if model is not None else {}
    return infos, {**extra,
        "hash": np.array([f.content_hash for f in fresh]),
        "raw": raw, "stats": stats, "thumb": thumbs, "rot": rot, "polar": polar, "rot_info": rot_info,
        "width": np.array([f.width for f in fresh], np.int32),
        "height": np.array([f.height for f in fresh], np.int32),
        "frames": np.array([f.frames for f in fresh], np.int32),
        "format": np.array([f.format or "" for f in fresh]),
        "mode": np.array([f.mode or "" for f in fresh]),
    }


def _first_uncached(cache, hashes: list[str]) -> np.ndarray:
    """bool mask of the rows whose hash is neither in ``cache`` nor earlier in ``hashes``."""
    seen = set()
    keep = np.zeros(len(hashes), bool)
    for row, h in enumerate(hashes):
        if h not in cache and h not in seen:
            seen.add(h)
            keep[row] = True
    return keep


@contextmanager
def _workers(threads: int, tasks: int, skip: frozenset, model=None):
    """Yield ``run(tasks)``: an iterator over the results of tasks (``(kind, paths, args)``,
    kind "describe" or "tiles"), in order. With ``threads`` > 1 they run in that many worker
    processes (Pillow holds the GIL, so threads would take turns), all queued at once; else
    here, one by one. On an error or Ctrl-C the queued work is dropped (what was cached stays).
    """
    workers = min(threads, tasks)
    if workers <= 1:
        yield lambda todo: (_run_task(t, skip, model, model.threads or threads if model else 0)
                            for t in todo)
        return
    pool = ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(skip, model),
                               mp_context=multiprocessing.get_context(_START_METHOD))
    try:
        yield lambda todo: pool.map(_worker_task, todo)  # forks the workers, queues every task
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _run_task(task, skip, model, model_threads):
    kind, paths, args = task
    if kind == "tiles":
        return _tiles_chunk(paths, skip, *args)
    return _describe_chunk(paths, skip, *args, model=model, model_threads=model_threads)


_worker_skip: frozenset[str] = frozenset()
"""In a worker process: content hashes cached before the work started."""
_worker_model = None
"""In a worker process: the ONNX model of the scan, if any (one session per worker)."""


def _start_worker(skip_hashes: frozenset[str], model=None) -> None:
    """Set up a worker process: remember the cached hashes, leave Ctrl-C to the parent (which
    stops the pool and keeps the cache), and exit as soon as the parent is gone (so a
    ``kill -9`` of the scan leaves no worker behind)."""
    global _worker_skip, _worker_model
    _worker_skip, _worker_model = skip_hashes, model
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sentinel = multiprocessing.parent_process().sentinel
    threading.Thread(target=_exit_with_parent, args=(sentinel,), daemon=True).start()


def _exit_with_parent(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])  # ready when the parent process has ended
    os._exit(1)


def _worker_task(task):
    model = _worker_model
    return _run_task(task, _worker_skip, model, model.threads or 1 if model is not None else 0)

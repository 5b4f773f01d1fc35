"""A generated corpus of bad and awkward image files, for tests and benchmarks.

:func:`write_corpus` writes every case into a folder and returns what decoding each one should
give. Everything is made here in milliseconds (the 30000x30000 PNG is a valid header whose
pixel data is never reached), so the corpus needs no downloads and no shared data.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


@dataclass
class Case:
    """One corpus file: the reason code decoding must give (None: ok) and, if ok, its size."""

    path: Path
    reason: str | None
    size: tuple[int, int] | None = None  # (width, height) after EXIF orientation


def gradient(width: int, height: int) -> Image.Image:
    """A smooth, asymmetric RGB test picture (so flips and rotations change it)."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x * 0.5], -1).astype(np.uint8))


def jpeg_bytes(image: Image.Image, **save_args) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90, **save_args)
    return buf.getvalue()


def png_bytes(image: Image.Image, **save_args) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **save_args)
    return buf.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """An 8-bit grayscale PNG whose header claims width x height but holds only one row."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(width + 1))) + chunk(b"IEND", b""))


def jpeg_with_bad_precision(image: Image.Image) -> bytes:
    """A complete JPEG (end marker present) whose frame header claims 12-bit samples."""
    data = bytearray(jpeg_bytes(image))
    sof = data.index(b"\xff\xc0")
    data[sof + 4] = 12  # sample precision, right after the marker and the 2-byte length
    return bytes(data)


def write_corpus(folder: Path) -> dict[str, Case]:
    """Write the corpus into ``folder`` (which must exist); returns file name -> Case."""
    folder = Path(folder)
    picture = gradient(96, 64)
    full_jpeg = jpeg_bytes(gradient(400, 300))
    full_png = png_bytes(gradient(400, 300))

    cmyk = Image.new("CMYK", (40, 30), (0, 255, 255, 0))  # pure red once converted
    gray16 = Image.fromarray(np.full((20, 30), 128 * 257, np.uint16))  # mode I;16
    palette = Image.new("P", (32, 16), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(1, (16, 0, 32, 16))  # left half index 0 (transparent), right half red
    gray_alpha = Image.new("LA", (24, 24), (0, 0))  # black, fully transparent
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored 96x64, displayed rotated 90 degrees clockwise
    floats = Image.fromarray(np.linspace(-1.0, 3.0, 30 * 20, dtype=np.float32).reshape(20, 30))
    tiff = io.BytesIO()
    floats.save(tiff, "TIFF")
    rng = np.random.default_rng(7)

    files = {
        "zero.jpg": (b"", "zero_bytes", None),
        "truncated.jpg": (full_jpeg[: len(full_jpeg) // 2], "truncated", None),
        "truncated_header.jpg": (full_jpeg[:100], "truncated", None),
        "truncated.png": (full_png[: len(full_png) // 2], "truncated", None),
        "bad_precision.jpg": (jpeg_with_bad_precision(picture), "corrupt", None),
        "random.jpg": (rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not_image", None),
        "text.png": (b"this is a note, not a picture\n" * 10, "not_image", None),
        "error_page.jpg": (b"<!DOCTYPE html><html><body><svg width='9'></svg>Not Found</body>"
                           b"</html>", "not_image", None),
        "drawing.svg": (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                        b'width="10" height="10"><rect width="10" height="10"/></svg>\n',
                        "unsupported_format", None),
        "photo.heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
                       "unsupported_format", None),
        "one_pixel.png": (png_bytes(Image.new("RGB", (1, 1))), "too_small", None),
        "bomb.png": (png_claiming_size(30000, 30000), "too_large", None),
        "picture.jpg": (jpeg_bytes(picture), None, (96, 64)),
        "cmyk.jpg": (jpeg_bytes(cmyk), None, (40, 30)),
        "gray16.png": (png_bytes(gray16), None, (30, 20)),
        "palette_transparent.png": (png_bytes(palette, transparency=0), None, (32, 16)),
        "gray_alpha.png": (png_bytes(gray_alpha), None, (24, 24)),
        "animated.gif": (gif.getvalue(), None, (20, 20)),
        "rotated.jpg": (jpeg_bytes(picture, exif=exif), None, (64, 96)),
        "float.tif": (tiff.getvalue(), None, (30, 20)),
        "café photo ☕ 1.jpg": (jpeg_bytes(picture), None, (96, 64)),
    }
    cases = {}
    for name, (data, reason, size) in files.items():
        (folder / name).write_bytes(data)
        cases[name] = Case(folder / name, reason, size)
    (folder / "broken_link.jpg").symlink_to(folder / "no such target.jpg")
    cases["broken_link.jpg"] = Case(folder / "broken_link.jpg", "missing")
    return cases

"""A generated corpus of bad and awkward image files, for tests and benchmarks.

:func:`write_corpus` writes every case into a folder and returns what decoding each one should
give. Everything is made here in milliseconds (the 30000x30000 PNG is a valid header whose
pixel data is never reached), so the corpus needs no downloads and no shared data.
"""
from __future__ import annotations

import io
import os
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


def png_claiming_size(width: int, height: int, color_type: int = 0) -> bytes:
    """An 8-bit PNG (colour type 0: grey, 6: RGBA) whose header claims width x height but
    holds only one row."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
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


def png_gray16_zeros(width: int, height: int) -> bytes:
    """A complete 16-bit greyscale PNG of width x height black pixels: a few hundred kB that
    decode to 2 bytes a pixel (a decompression bomb under max_pixels)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    z = zlib.compressobj(9)
    row = bytes(2 * width + 1)  # filter byte 0, then the row's samples
    rows = 256
    parts = [z.compress(row * rows) for _ in range(height // rows)]
    parts += [z.compress(row * (height % rows)), z.flush()]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


BOMB_SIDE = 13000
"""Side of the 16-bit PNG bomb: 169 M pixels, under the default max_pixels."""


def write_hostile(folder: Path) -> dict[str, Case]:
    """Files a careful, hostile user tried (issue 13), written into ``folder``; returns the
    printable file name (as in the result tables) -> Case. A FIFO named like an image, a link
    to /dev/zero, a symlink loop, a name that is not UTF-8, a 16-bit PNG bomb, a name that is
    markup, and a link to a text file full of secrets."""
    folder = Path(folder)
    picture = jpeg_bytes(gradient(96, 64))
    cases = {}
    os.mkfifo(folder / "fifo.jpg")
    cases["fifo.jpg"] = Case(folder / "fifo.jpg", "not_a_file")
    (folder / "dev_zero.jpg").symlink_to("/dev/zero")
    cases["dev_zero.jpg"] = Case(folder / "dev_zero.jpg", "not_a_file")
    (folder / "loop_a.jpg").symlink_to(folder / "loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to(folder / "loop_a.jpg")
    cases["loop_a.jpg"] = Case(folder / "loop_a.jpg", "unreadable")
    cases["loop_b.jpg"] = Case(folder / "loop_b.jpg", "unreadable")
    latin1 = os.fsencode(folder) + b"/caf\xe9.jpg"  # Latin-1 bytes: not valid UTF-8
    with open(latin1, "wb") as f:
        f.write(picture)
    cases["caf\\xe9.jpg"] = Case(Path(os.fsdecode(latin1)), None, (96, 64))
    (folder / "gray16_bomb.png").write_bytes(png_gray16_zeros(BOMB_SIDE, BOMB_SIDE))
    cases["gray16_bomb.png"] = Case(folder / "gray16_bomb.png", None, (BOMB_SIDE, BOMB_SIDE))
    (folder / "<!--<script>.jpg").write_bytes(picture)
    cases["<!--<script>.jpg"] = Case(folder / "<!--<script>.jpg", None, (96, 64))
    secret = folder.parent / f"{folder.name}-secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "secret.png").symlink_to(secret)
    cases["secret.png"] = Case(folder / "secret.png", "not_image")
    return cases

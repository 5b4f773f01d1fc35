"""The libjpeg fast path (vislint._native.decode_jpeg) decodes exactly what Pillow decodes,
and hands everything unusual back to Pillow so that failures keep their reasons."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corpus import gradient, jpeg_bytes
from vislint import _native, decode
from vislint.decode import MAX_PIXELS, TILE, FileInfo, _load, decode_batch

pytestmark = pytest.mark.skipif(
    not _native.have_jpeg(),
    reason="the C++ core was built without libjpeg (install libjpeg62-turbo-dev and rebuild)")

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "intel-scenes-sample"


def textured(width: int, height: int, seed: int = 0) -> Image.Image:
    """A gradient with noise, so that every DCT coefficient and the upsampling matter."""
    rng = np.random.default_rng(seed)
    base = np.asarray(gradient(width, height)).astype(int)
    noise = rng.integers(-40, 40, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def pillow(data: bytes, draft_to):
    """What the Pillow path gives: (pixels before orientation, FileInfo, orientation)."""
    info = FileInfo()
    im, orientation = _load(data, info, min_side=0, max_pixels=MAX_PIXELS, draft_to=draft_to)
    return np.asarray(im), info, orientation


PLAIN = {
    "baseline 4:2:0": lambda: jpeg_bytes(textured(150, 150)),
    "4:4:4": lambda: jpeg_bytes(textured(97, 61), subsampling=0),
    "4:2:2": lambda: jpeg_bytes(textured(203, 130), subsampling=1),
    "progressive": lambda: jpeg_bytes(textured(180, 140), progressive=True),
    "grayscale": lambda: jpeg_bytes(textured(160, 120).convert("L")),
    "large, DCT-scaled 1/4": lambda: jpeg_bytes(textured(1100, 700)),
    "large, DCT-scaled 1/8": lambda: jpeg_bytes(textured(2100, 1300)),
    "EXIF rotated (6)": lambda: jpeg_bytes(textured(200, 130), exif=exif_with_orientation(6)),
    "EXIF upside down (3)": lambda: jpeg_bytes(textured(130, 200), exif=exif_with_orientation(3)),
}


@pytest.mark.parametrize("name", sorted(PLAIN))
@pytest.mark.parametrize("draft_to", [TILE, 0])
def test_plain_jpegs_decode_to_pillows_pixels(name, draft_to):
    data = PLAIN[name]()
    fast = _native.decode_jpeg(data, draft_to, 0, MAX_PIXELS)
    assert fast is not None, f"{name}: the fast path declined a plain JPEG"
    pixels, width, height, orientation, mode = fast
    expected, info, expected_orientation = pillow(data, draft_to or None)
    assert pixels.shape == expected.shape and pixels.dtype == np.uint8
    assert np.array_equal(pixels, expected)
    assert orientation == expected_orientation
    assert mode == info.mode
    with Image.open(io.BytesIO(data)) as im:
        assert (width, height) == im.size  # the header's size, before orientation


def mpo_bytes() -> bytes:
    buf = io.BytesIO()
    textured(120, 90).save(buf, "MPO", save_all=True, append_images=[textured(120, 90, seed=1)])
    return buf.getvalue()


DECLINED = {
    "CMYK": lambda: jpeg_bytes(textured(120, 90).convert("CMYK")),
    "truncated": lambda: jpeg_bytes(textured(300, 200))[:4000],
    "damaged entropy data": lambda: _damage(jpeg_bytes(textured(300, 200))),
    "MPO (two images)": mpo_bytes,
    "PNG": lambda: _png(textured(50, 40)),
    "EXIF orientation out of range": lambda: jpeg_bytes(textured(120, 90),
                                                        exif=exif_with_orientation(9)),
}


def _damage(data: bytes) -> bytes:
    cut = len(data) // 2
    return data[:cut] + b"\xff\xd0\x00\x00" + data[cut + 4:]  # a stray restart marker


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_unusual_files_go_to_pillow(name):
    assert _native.decode_jpeg(DECLINED[name](), TILE, 0, MAX_PIXELS) is None


def test_header_bounds_go_to_pillow():
    data = jpeg_bytes(textured(150, 100))
    assert _native.decode_jpeg(data, TILE, 0, MAX_PIXELS) is not None
    assert _native.decode_jpeg(data, TILE, 101, MAX_PIXELS) is None       # too small
    assert _native.decode_jpeg(data, TILE, 0, 150 * 100 - 1) is None     # too large


def test_decode_batch_is_the_same_with_and_without_the_fast_path(tmp_path, monkeypatch):
    """Tiles and metadata of the whole pipeline's decode step do not depend on the path taken,
    for plain JPEGs and for the files the fast path declines."""
    paths = []
    for i, make in enumerate(list(PLAIN.values()) + list(DECLINED.values())):
        path = tmp_path / f"{i:02d}.jpg"
        path.write_bytes(make())
        paths.append(path)
    if SAMPLE.is_dir():
        paths += sorted(SAMPLE.rglob("*.jpg"))[:200]
    fast = decode_batch(paths, threads=2)
    monkeypatch.setattr(decode, "_FAST_JPEG", False)
    slow = decode_batch(paths, threads=2)
    assert np.array_equal(fast.tiles, slow.tiles)
    for field in ("ok", "width", "height", "file_size", "frames"):
        assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
    for field in ("reason", "content_hash", "format", "mode"):
        assert getattr(fast, field) == getattr(slow, field), field
    assert fast.ok.sum() >= len(PLAIN) and not fast.ok.all()

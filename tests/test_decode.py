"""Tests of vislint.decode on a generated bad-input corpus and on the shared real fixtures."""
import hashlib
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image, ImageOps

from corpus import gradient, jpeg_bytes, write_corpus
from vislint.catalog import build_catalog
from vislint.decode import REASONS, TILE, DecodeError, decode_batch, decode_full, decode_one

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = SHARED / "imagededup-fixtures"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(),
                                    reason=f"shared data not found at {FIXTURES}")


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path)


def reference_tile(path) -> np.ndarray:
    """What a tile should look like: full decode, EXIF orientation, RGB, bilinear resize."""
    with Image.open(path) as im:
        upright = ImageOps.exif_transpose(im).convert("RGB")
    return np.asarray(upright.resize((TILE, TILE), Image.Resampling.BILINEAR)).astype(int)


def test_reasons_are_the_documented_codes():
    assert set(REASONS) == {"missing", "unreadable", "zero_bytes", "not_image",
                            "unsupported_format", "truncated", "corrupt", "too_small", "too_large",
                            "not_a_file"}


def test_every_corpus_file_gets_its_reason(corpus):
    cases = list(corpus.values())
    d = decode_batch([c.path for c in cases], threads=2)
    assert d.tiles.shape == (len(cases), TILE, TILE, 3) and d.tiles.dtype == np.uint8
    got = {name: d.reason[i] for i, name in enumerate(corpus)}
    assert got == {name: c.reason for name, c in corpus.items()}
    for i, c in enumerate(cases):
        assert d.ok[i] == (c.reason is None)
        if c.reason is None:
            assert (d.width[i], d.height[i]) == c.size, c.path.name
            assert d.message[i] is None and d.tiles[i].any()
        else:
            assert d.message[i], c.path.name
            assert not d.tiles[i].any()


def test_metadata_of_read_files(corpus):
    names = ["picture.jpg", "zero.jpg", "animated.gif", "cmyk.jpg", "broken_link.jpg"]
    d = decode_batch([corpus[n].path for n in names], threads=1)
    data = corpus["picture.jpg"].path.read_bytes()
    assert d.file_size.tolist() == [len(data), 0, corpus["animated.gif"].path.stat().st_size,
                                    corpus["cmyk.jpg"].path.stat().st_size, -1]
    assert d.content_hash[0] == hashlib.blake2b(data, digest_size=16).hexdigest()
    assert d.content_hash[4] is None
    assert d.format[:4] == ["JPEG", None, "GIF", "JPEG"]
    assert d.mode[3] == "CMYK" and d.frames[2] == 2 and d.frames[0] == 1


def test_mode_normalisation_to_rgb(corpus):
    names = ["cmyk.jpg", "gray16.png", "palette_transparent.png", "gray_alpha.png",
             "animated.gif", "float.tif"]
    d = decode_batch([corpus[n].path for n in names])
    tile = dict(zip(names, d.tiles.astype(int)))
    assert np.abs(tile["cmyk.jpg"] - [255, 0, 0]).max() <= 3  # CMYK red converted to RGB red
    assert (tile["gray16.png"] == 128).all()  # 16-bit 128*257 scaled by 1/257
    left, right = tile["palette_transparent.png"][:, :50], tile["palette_transparent.png"][:, -50:]
    assert (left == 255).all() and (right == [255, 0, 0]).all()  # transparent -> white
    assert (tile["gray_alpha.png"] == 255).all()
    assert (tile["animated.gif"] == [255, 0, 0]).all()  # first frame only
    assert tile["float.tif"].min() == 0 and tile["float.tif"].max() == 255  # min-max scaled


def test_tiles_match_pillow_reference(tmp_path):
    jpeg = tmp_path / "big.jpg"  # large enough for draft mode (DCT scaling) to kick in
    jpeg.write_bytes(jpeg_bytes(gradient(600, 400)))
    png = tmp_path / "big.png"  # large enough for resize's reducing_gap to kick in
    gradient(1000, 800).save(png)
    d = decode_batch([jpeg, png])
    assert d.width.tolist() == [600, 1000] and d.height.tolist() == [400, 800]
    assert np.abs(d.tiles[0].astype(int) - reference_tile(jpeg)).mean() < 1
    assert np.abs(d.tiles[1].astype(int) - reference_tile(png)).mean() < 0.5


def test_exif_rotation_swaps_size_and_rotates_tile(corpus):
    path = corpus["rotated.jpg"].path
    with Image.open(path) as im:
        assert im.size == (96, 64)  # stored landscape
    d = decode_batch([path, corpus["picture.jpg"].path])
    assert (d.width[0], d.height[0]) == (64, 96)
    rotated, upright = d.tiles.astype(int)
    assert np.abs(rotated - reference_tile(path)).mean() < 1
    assert np.abs(rotated - upright).mean() > 20  # the rotation really changed the tile
    full = decode_full(path)
    assert full.shape == (96, 64, 3)


def test_output_does_not_depend_on_threads(corpus):
    paths = [c.path for c in corpus.values()] * 3
    one, two = decode_batch(paths, threads=1), decode_batch(paths, threads=2)
    for name in one.__dataclass_fields__:
        a, b = getattr(one, name), getattr(two, name)
        assert (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b), name


def test_skip_hashes_returns_metadata_only(corpus):
    paths = [corpus["picture.jpg"].path, corpus["cmyk.jpg"].path]
    first = decode_batch(paths)
    again = decode_batch(paths, skip_hashes={first.content_hash[0]})
    assert again.cached.tolist() == [True, False] and again.ok.all()
    assert not again.tiles[0].any() and again.width[0] == 0
    assert again.content_hash == first.content_hash and (again.file_size == first.file_size).all()
    assert np.array_equal(again.tiles[1], first.tiles[1])


def test_file_vanished_after_catalog(tmp_path):
    (tmp_path / "keep.jpg").write_bytes(jpeg_bytes(gradient(30, 20)))
    (tmp_path / "gone.jpg").write_bytes(jpeg_bytes(gradient(30, 20)))
    catalog = build_catalog(tmp_path)
    (tmp_path / "gone.jpg").unlink()
    d = decode_batch(catalog.paths)
    assert catalog.relpaths == ["gone.jpg", "keep.jpg"]
    assert d.reason == ["missing", None]
    assert "not found" in d.message[0]


def test_unreadable_file(corpus):
    # Tests run as root, so a real permission error cannot be caused: inject one.
    locked = str(corpus["picture.jpg"].path)
    real_open = os.open

    def open_denying_one(file, *args, **kwargs):
        if str(file) == locked:
            raise PermissionError(13, "Permission denied", file)
        return real_open(file, *args, **kwargs)

    with mock.patch("os.open", open_denying_one):
        d = decode_batch([locked, corpus["cmyk.jpg"].path])
    assert d.reason == ["unreadable", None]
    assert "read permission" in d.message[0] and d.content_hash[0] is None


def test_min_side_and_max_pixels_are_configurable(corpus):
    path = corpus["picture.jpg"].path  # 96x64
    assert decode_batch([path], min_side=65).reason == ["too_small"]
    assert decode_batch([path], max_pixels=96 * 64 - 1).reason == ["too_large"]
    assert decode_batch([path], min_side=64, max_pixels=96 * 64).ok.all()


def test_pillow_bomb_limit_is_restored(corpus):
    before = Image.MAX_IMAGE_PIXELS
    decode_batch([corpus["bomb.png"].path, corpus["picture.jpg"].path])
    assert Image.MAX_IMAGE_PIXELS == before


def test_decode_one_and_custom_tile(corpus):
    tile, info = decode_one(corpus["picture.jpg"].path, tile=32)
    assert tile.shape == (32, 32, 3) and info.reason is None and info.width == 96
    tile, info = decode_one(corpus["text.png"].path)
    assert tile is None and info.reason == "not_image"
    assert decode_batch([corpus["picture.jpg"].path], tile=32).tiles.shape == (1, 32, 32, 3)


def test_decode_full(corpus):
    full = decode_full(corpus["picture.jpg"].path)
    assert full.shape == (64, 96, 3) and full.dtype == np.uint8
    assert np.array_equal(decode_full(corpus["café photo ☕ 1.jpg"].path), full)
    assert (decode_full(corpus["gray16.png"].path) == 128).all()
    for name, reason in [("truncated.jpg", "truncated"), ("broken_link.jpg", "missing"),
                         ("bomb.png", "too_large")]:
        with pytest.raises(DecodeError) as e:
            decode_full(corpus[name].path)
        assert e.value.reason == reason


@pytest.mark.parametrize("kwargs, match", [
    ({"tile": 0}, "tile must be an int >= 1"),
    ({"min_side": -1}, "min_side must be an int >= 0"),
    ({"max_pixels": 0}, "max_pixels must be an int >= 1"),
    ({"threads": -2}, "threads must be an int >= 0"),
])
def test_bad_arguments(corpus, kwargs, match):
    with pytest.raises(ValueError, match=match):
        decode_batch([corpus["picture.jpg"].path], **kwargs)


def test_single_path_string_is_rejected(corpus):
    with pytest.raises(ValueError, match=r"for one file pass \[path\]"):
        decode_batch(str(corpus["picture.jpg"].path))


@pytest.mark.shared_data
@needs_fixtures
def test_imagededup_fixtures():
    catalog = build_catalog(FIXTURES)
    d = decode_batch(catalog.paths)
    failed = {rel: d.reason[i] for i, rel in enumerate(catalog.relpaths) if not d.ok[i]}
    # The two "corrupt" fixtures are random bytes (no JPEG signature at all, unlike a cut JPEG),
    # so their content is not an image.
    assert failed == {"mixed_images/ukbench09268_corrupt.jpg": "not_image",
                      "mixed_nested_images/ukbench09268_corrupt.jpg": "not_image"}
    assert d.ok.sum() == 32
    i = catalog.relpaths.index("formats_images/giphy.gif")
    assert d.format[i] == "GIF" and d.frames[i] > 1


@pytest.mark.parametrize("mode, fmt", [("I;16", "PNG"), ("I;16B", "TIFF"), ("I;16", "TIFF")])
def test_every_16_bit_value_becomes_its_nearest_8_bit_value(tmp_path, mode, fmt):
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    path = tmp_path / f"ramp.{fmt.lower()}"
    Image.frombytes(mode, (256, 256), values.astype(">u2" if mode.endswith("B") else "<u2")
                    .tobytes()).save(path, format=fmt)
    assert Image.open(path).mode.startswith("I;16")
    full = decode_full(path)
    assert (full == np.rint(values / 257.0).astype(np.uint8)[..., None]).all()

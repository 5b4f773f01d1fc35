"""ONNX features: preprocessing in the C++ core, the onnxruntime backend, scans with a model
(vectors, caching per model, failures, semantic checks), all against NumPy references."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime", reason="ONNX features need onnxruntime: pip install 'vislint[onnx]'")
pytest.importorskip("onnx", reason="the test models are built with the onnx package")

import onnx_models as om  # noqa: E402
import vislint  # noqa: E402
from vislint import _native  # noqa: E402
from vislint.features import Onnx, l2_normalise  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def images(seed=0, shapes=((48, 40), (40, 48), (20, 28), (32, 32), (97, 61))):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


# ---------------------------------------------------------------- native preprocessing

def reference_input(ims, out_h, out_w, *, crop=1.0, mean=MEAN, std=STD, bgr=False):
    """float64[N, 3, out_h, out_w] model input by the NumPy reference (see om.round_levels for
    the only place where vislint's own result is consulted: which way an exact tie rounded)."""
    levels = np.zeros((len(ims), 3, out_h, out_w), np.float32)
    _native.preprocess(ims, levels, crop=crop)  # mean 0, std 1: level / 255
    x = []
    for im, lv in zip(ims, np.rint(levels.astype(np.float64) * 255)):
        px = om.round_levels(om.window_reference(im, out_h, out_w, crop), lv) / 255.0
        px = (px - np.asarray(mean)[:, None, None]) / np.asarray(std)[:, None, None]
        x.append(px[::-1] if bgr else px)
    return np.stack(x)


@pytest.mark.parametrize("crop", [1.0, 0.875, 0.0])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_preprocess_matches_numpy_reference(crop, layout):
    ims = images(1)
    out_h, out_w = 24, 30  # not square: the window keeps the output's aspect ratio
    shape = (len(ims), 3, out_h, out_w) if layout == "NCHW" else (len(ims), out_h, out_w, 3)
    out = np.full(shape, np.nan, np.float32)
    _native.preprocess(ims, out, layout=layout, crop=crop, mean=MEAN, std=STD)
    got = out if layout == "NCHW" else out.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, reference_input(ims, out_h, out_w, crop=crop), atol=1e-5, rtol=0)


def test_preprocess_rgbx_bgr_and_partial_batch():
    rgb = images(2, shapes=((50, 70),))[0]
    rgbx = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 77, np.uint8)], axis=2)
    out = np.full((3, 3, 16, 16), -7.0, np.float32)
    _native.preprocess([rgb, rgbx], out, crop=0.875, mean=MEAN, std=STD)
    np.testing.assert_array_equal(out[0], out[1])  # the 4th byte is ignored
    assert (out[2] == -7.0).all()  # rows past len(images) are left alone
    bgr = np.zeros((1, 3, 16, 16), np.float32)
    _native.preprocess([rgb], bgr, crop=0.875, mean=MEAN, std=STD, bgr=True)  # mean, std: R, G, B
    np.testing.assert_array_equal(bgr[0, ::-1], out[0])


def test_preprocess_rejects_bad_arguments():
    ims = images(3, shapes=((20, 20),))
    with pytest.raises(ValueError, match=r"out: expected writable C-contiguous float32 array of shape \(N, 3, H, W\)"):
        _native.preprocess(ims, np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="N >= 2"):
        _native.preprocess(ims * 2, np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="out: expected"):
        _native.preprocess(ims, np.zeros((1, 3, 16, 16), np.float64))
    with pytest.raises(ValueError, match="layout: expected 'NCHW' or 'NHWC'"):
        _native.preprocess(ims, np.zeros((1, 3, 16, 16), np.float32), layout="CHW")
    with pytest.raises(ValueError, match=r"crop: expected a fraction in \(0, 1\]"):
        _native.preprocess(ims, np.zeros((1, 3, 16, 16), np.float32), crop=1.5)
    with pytest.raises(ValueError, match="std > 0"):
        _native.preprocess(ims, np.zeros((1, 3, 16, 16), np.float32), std=(1, 0, 1))
    with pytest.raises(ValueError, match="3 values each"):
        _native.preprocess(ims, np.zeros((1, 3, 16, 16), np.float32), mean=(0.5, 0.5))


# ---------------------------------------------------------------- the Onnx extractor

def reference_vectors(ims, *, crop=1.0, head="gap", bgr=False, mean=MEAN, std=STD, seed=0):
    x = reference_input(ims, om.SIDE, om.SIDE, crop=crop, mean=mean, std=std, bgr=bgr)
    act = om.conv_forward(x, seed)
    if head == "tokens":
        return act[:, :, 0, 0]  # the first token of the (N, H*W, C) sequence
    return act.mean(axis=(2, 3))


@pytest.mark.parametrize("layout,head,crop", [("NCHW", "gap", 1.0), ("NHWC", "gap", 0.875),
                                              ("NCHW", "spatial", 0.0), ("NCHW", "tokens", 1.0)])
def test_embeddings_match_numpy_forward_pass(tmp_path, layout, head, crop):
    path = om.conv_model(tmp_path / "m.onnx", layout=layout, head=head)
    model = Onnx(path, crop=crop, batch_size=2).prepare()  # batches of 2: several model calls
    assert (model.layout, model.input_hw, model.dim) == (layout, (om.SIDE, om.SIDE), 8)
    ims = images(4)
    got = model.embed(ims)
    ref = reference_vectors(ims, crop=crop, head=head)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(l2_normalise(got), l2_normalise(ref), atol=1e-4, rtol=0)


def test_sidecar_settings_and_dynamic_size(tmp_path):
    path = om.conv_model(tmp_path / "dyn.onnx", side="side")  # height and width not fixed
    with pytest.raises(ValueError, match="no fixed height and width; give size="):
        Onnx(path).prepare()
    (tmp_path / "dyn.onnx.json").write_text(json.dumps(
        {"size": om.SIDE, "crop": 0.875, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "bgr": True}))
    model = Onnx.from_path(path).prepare()
    ims = images(5)
    ref = reference_vectors(ims, crop=0.875, bgr=True, mean=(0.5,) * 3, std=(0.25,) * 3)
    np.testing.assert_allclose(model.embed(ims), ref, atol=1e-4, rtol=0)
    # every axis dynamic (as in many Hugging Face exports): the layout must be given
    anyshape = om.conv_model(tmp_path / "any.onnx", side="side", rgb="channels")
    with pytest.raises(ValueError, match=r"cannot tell the layout of input 'image' of shape "
                                         r"\['batch', 'channels', 'side', 'side'\].*give layout="):
        Onnx(anyshape, size=om.SIDE).prepare()
    np.testing.assert_allclose(Onnx(anyshape, size=om.SIDE, layout="NCHW").prepare().embed(ims),
                               reference_vectors(ims), atol=1e-4, rtol=0)
    (tmp_path / "dyn.onnx.json").write_text(json.dumps({"size": 32, "resize": "bilinear"}))
    with pytest.raises(ValueError, match=r"unknown keys \['resize'\]"):
        Onnx.from_path(path)


@pytest.mark.parametrize("build,message", [
    (om.flat_input_model, r"input 'x' has rank 2 \(shape \['batch', 3072\]\); vislint needs an image "
                          r"model with one float input of shape \(N, 3, H, W\) or \(N, H, W, 3\)"),
    (om.text_model, r"input 'input_ids' is tensor\(int64\) of shape \['batch', 'seq'\] \(integer token "
                    r"ids: this looks like a text model"),
    (om.gray_model, r"cannot tell the layout|has 1 channels"),
    (om.scalar_output_model, r"output 'all' of shape \[\] for a batch of 1 images; expected one row "
                             r"per image"),
])
def test_models_that_do_not_fit_fail_fast(tmp_path, build, message):
    path = build(tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match=message):
        Onnx(path).prepare()
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(images(6)[0]).save(data / "a.png")
    with pytest.raises(ValueError, match=message):  # before anything is decoded
        vislint.scan(data, embeddings=f"onnx:{path}", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_settings_and_files(tmp_path):
    path = om.conv_model(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="size=40 but the model's input 'image' is fixed at 32x32"):
        Onnx(path, size=40).prepare()
    with pytest.raises(ValueError, match=r"no output named 'logits'; the model's outputs are \['embedding'\]"):
        Onnx(path, output="logits").prepare()
    with pytest.raises(ValueError, match="SHA-256 .* does not match the expected 00000"):
        Onnx(path, sha256="0" * 64).prepare()
    with pytest.raises(ValueError, match="crop must be a fraction"):
        Onnx(path, crop=2).prepare()
    with pytest.raises(ValueError, match="mean must be 3 numbers"):
        Onnx(path, mean=(0.5,)).prepare()
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        Onnx(tmp_path / "missing.onnx").prepare()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="onnxruntime cannot load it as an ONNX model"):
        Onnx(tmp_path / "junk.onnx").prepare()
    with pytest.raises(ValueError, match="embeddings='resnet-9000' is not known"):
        vislint.scan([tmp_path / "x.png"], embeddings="resnet-9000")


# ---------------------------------------------------------------- scans with a model

def write_pngs(folder, n, seed, colour=None, size=(40, 48)):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        if colour is None:
            arr = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        else:
            tint = np.array(colour) + rng.integers(-30, 31, 3)  # each image its own shade
            arr = np.clip(tint + rng.integers(-25, 26, size + (3,)), 0, 255).astype(np.uint8)
        p = folder / f"{folder.name}{seed}-{i:03d}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def decoded(paths):
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


@pytest.mark.parametrize("threads", [1, 2])
def test_scan_vectors_match_reference_and_are_cached_per_model(tmp_path, threads):
    data = tmp_path / "data"
    write_pngs(data / "a", 6, seed=1)
    write_pngs(data / "b", 5, seed=2)
    (data / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    m1 = om.conv_model(tmp_path / "m1.onnx", seed=0)
    m2 = om.conv_model(tmp_path / "m2.onnx", seed=1)
    out = tmp_path / "out"

    res = vislint.scan(data, embeddings=f"onnx:{m1}", out=out, threads=threads)
    img = res.images
    broken = img["path"].str.endswith("broken.png").to_numpy()
    assert img.loc[broken, "invalid_reason"].tolist() == ["truncated"]  # the reason is kept
    assert not img.loc[~broken, "is_invalid"].any()
    ok = np.flatnonzero(~broken)
    ref = l2_normalise(reference_vectors(decoded(img["path"].to_numpy()[ok])))
    np.testing.assert_allclose(res.features[ok], ref, atol=1e-4, rtol=0)
    assert not res.features[broken].any()
    model_info = res.info["provenance"]["feature_model"]
    assert model_info["sha256"] == Onnx(m1).prepare().file_sha256 and model_info["dim"] == 8
    sha1 = model_info["sha256"][:12]
    assert [p.name[:17] for p in (out / "cache").iterdir() if p.name.startswith("onnx-")] == [f"onnx-{sha1}"]

    def rows(model_sha):
        folder = next(p for p in (out / "cache").iterdir() if p.name.startswith(f"onnx-{model_sha}"))
        return [len(np.load(f)["hash"]) for f in sorted(folder.glob("chunk-*.npz"))]
    assert rows(sha1) == [11]

    # another model: its own cache, its own vectors; the first model's stay as they were
    res2 = vislint.scan(data, embeddings=f"onnx:{m2}", out=out, threads=threads)
    sha2 = res2.info["provenance"]["feature_model"]["sha256"][:12]
    assert sha2 != sha1 and rows(sha2) == [11] and rows(sha1) == [11]
    ref2 = l2_normalise(reference_vectors(decoded(img["path"].to_numpy()[ok]), seed=1))
    np.testing.assert_allclose(res2.features[ok], ref2, atol=1e-4, rtol=0)

    # back to the first model with one new image: only the new image is computed
    write_pngs(data / "a", 1, seed=9)
    res3 = vislint.scan(data, embeddings=f"onnx:{m1}", out=out, threads=threads)
    assert rows(sha1) == [11, 1]
    same = res3.images["path"].isin(img["path"]).to_numpy()
    np.testing.assert_array_equal(res3.features[same], res.features)


def test_semantic_checks_use_the_model_vectors(tmp_path):
    """Label votes and outliers run on the model's vectors: a blue image filed under "red" is
    voted "blue" by its neighbours, and a green image is an outlier, under a model that sees
    colour; the results equal a scan given the same vectors precomputed."""
    data = tmp_path / "data"
    write_pngs(data / "red", 14, seed=1, colour=(210, 40, 40))
    write_pngs(data / "blue", 14, seed=2, colour=(40, 40, 210))
    wrong = write_pngs(data / "red", 1, seed=3, colour=(40, 40, 210))[0]
    odd = write_pngs(data / "blue", 1, seed=4, colour=(40, 210, 40))[0]
    model = om.mean_colour_model(tmp_path / "colour.onnx")
    # (a colour-only model would have grouped these look-alikes as "near duplicates" before
    # copies were verified by the built-in descriptor alone; no group forms now)
    res = vislint.scan(data, embeddings=vislint.features.Onnx(model, mean=(0, 0, 0), std=(1, 1, 1)))
    img = res.images.set_index("path")
    assert img.loc[str(wrong), "is_label_conflict"] and img.loc[str(wrong), "suggested_label"] == "blue"
    assert img["is_label_conflict"].sum() == 1
    assert img.loc[str(odd), "is_outlier"] and img["is_outlier"].sum() == 1
    assert (img["duplicate_group"] < 0).all()

    pre = vislint.scan(data, embeddings=res.features)
    cols = ["is_label_conflict", "suggested_label", "label_agreement", "is_outlier", "outlier_z"]
    assert pre.images[cols].equals(res.images[cols])
    builtin = vislint.scan(data)  # no semantic votes without a model
    assert not builtin.images.set_index("path").loc[str(wrong), "is_label_conflict"]


def test_precomputed_column_of_vectors(tmp_path):
    import pandas as pd

    data = tmp_path / "data"
    paths = write_pngs(data / "x", 4, seed=5)
    vecs = np.random.default_rng(0).standard_normal((4, 6))
    df = pd.DataFrame({"path": [str(p) for p in paths[::-1]], "emb": list(vecs)})
    res = vislint.scan(df, embeddings=df["emb"])  # a DataFrame column of vectors, row = image
    assert res.images["path"].tolist() == df["path"].tolist()
    np.testing.assert_allclose(res.features, l2_normalise(vecs), atol=1e-6)
    with pytest.raises(ValueError, match="equal-length numeric vectors"):
        vislint.scan(data, embeddings=[vecs[0], vecs[1][:3], vecs[2], vecs[3]])
    bad = vecs.copy()
    bad[2] = 0
    with pytest.raises(ValueError, match=r"all-zero rows \(first at row 2\)"):
        vislint.scan(data, embeddings=bad)

"""Small ONNX models with known weights, built with the onnx package's helpers, and their
NumPy reference (preprocessing + forward pass) for the ONNX tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from references import resize_reference

SIDE = 32
"""Input side of the test models (pixels)."""


def conv_weights(seed: int = 0, channels: int = 8):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((channels, 3, 3, 3)).astype(np.float32) * 0.5,
            rng.standard_normal(channels).astype(np.float32) * 0.1)


def _save(nodes, inputs, outputs, inits, path: Path) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def conv_model(path: Path, *, seed: int = 0, layout: str = "NCHW", head: str = "gap",
               side: int | str = SIDE, channels: int = 8, rgb: int | str = 3) -> Path:
    """Conv 3x3 (3 -> channels, pad 1) + ReLU, then ``head``: "gap" (global average pool,
    output (N, C)), "spatial" (the (N, C, H, W) map itself) or "tokens" (the map as a
    sequence (N, H*W, C)). layout "NHWC": the input is (N, H, W, 3), transposed inside.
    side, rgb: the input's H/W and channel dimensions (a name makes them dynamic)."""
    w, b = conv_weights(seed, channels)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    nodes = []
    x = "image"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
        shape = ["batch", side, side, rgb]
    else:
        shape = ["batch", rgb, side, side]
    nodes += [helper.make_node("Conv", [x, "w", "b"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["conv"], ["act"])]
    if head == "gap":
        nodes += [helper.make_node("GlobalAveragePool", ["act"], ["pooled"]),
                  helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1)]
        out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", channels])
    elif head == "spatial":
        nodes.append(helper.make_node("Identity", ["act"], ["embedding"]))
        out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", channels, side, side])
    else:
        inits.append(numpy_helper.from_array(np.array([0, channels, -1], np.int64), "flat"))
        nodes += [helper.make_node("Reshape", ["act", "flat"], ["seq_cf"]),
                  helper.make_node("Transpose", ["seq_cf"], ["embedding"], perm=[0, 2, 1])]
        out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", "tokens", channels])
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)
    return _save(nodes, [inp], [out], inits, path)


def mean_colour_model(path: Path) -> Path:
    """Output: the mean R, G, B of the (normalised) input, (N, 3)."""
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["colour"], axis=1)]
    return _save(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
                 [helper.make_tensor_value_info("colour", TensorProto.FLOAT, ["batch", 3])], [], path)


def flat_input_model(path: Path) -> Path:
    """A rank-2 float input (N, 3072): not an image model."""
    inits = [numpy_helper.from_array(np.ones((3072, 4), np.float32), "w")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    return _save(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3072])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], inits, path)


def text_model(path: Path) -> Path:
    """A text-like model: int64 token ids (N, T) -> embedding lookup -> mean (N, 8)."""
    inits = [numpy_helper.from_array(np.ones((100, 8), np.float32), "table")]
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["tok"], axis=0),
             helper.make_node("ReduceMean", ["tok"], ["sentence"], axes=[1], keepdims=0)]
    return _save(nodes, [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
                 [helper.make_tensor_value_info("sentence", TensorProto.FLOAT, ["batch", 8])], inits, path)


def gray_model(path: Path) -> Path:
    """A one-channel image input (N, 1, 32, 32)."""
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["out"], axis=1)]
    return _save(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIDE, SIDE])],
                 [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 1])], [], path)


def scalar_output_model(path: Path) -> Path:
    """An image input whose output is one number for the whole batch."""
    nodes = [helper.make_node("ReduceMean", ["image"], ["all"], keepdims=0)]
    return _save(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
                 [helper.make_tensor_value_info("all", TensorProto.FLOAT, [])], [], path)


# ---------------------------------------------------------------------- NumPy reference

def window_reference(image: np.ndarray, out_h: int, out_w: int, crop: float) -> np.ndarray:
    """The centre window (the largest with aspect out_w : out_h, scaled by crop; the whole
    image for crop 0) resampled to out_h x out_w: float64[3, out_h, out_w] before rounding."""
    h, w = image.shape[:2]
    if crop > 0:
        if w * out_h >= h * out_w:
            fh, fw = h, h * out_w / out_h
        else:
            fh, fw = w * out_h / out_w, w
        wh = min(h, max(1, int(np.floor(fh * crop + 0.5))))
        ww = min(w, max(1, int(np.floor(fw * crop + 0.5))))
        y0, x0 = (h - wh) // 2, (w - ww) // 2
        image = image[y0:y0 + wh, x0:x0 + ww]
    return resize_reference(image, out_h, out_w).transpose(2, 0, 1)


def round_levels(exact: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Round the reference's float64 values half up to uint8 levels, checking vislint's
    ``levels`` against them: equal everywhere, except at values within 1e-3 of a .5 tie, where
    float32 arithmetic may round either way (a legitimate result either way); there the level
    vislint chose is kept, after checking that it is one of the two neighbours."""
    ref = np.clip(np.floor(exact + 0.5), 0, 255)
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-3
    assert (levels[~tie] == ref[~tie]).all(), np.abs(levels - ref)[~tie].max()
    assert np.isin(levels[tie] - np.floor(exact[tie]), (0, 1)).all()
    return np.where(tie, levels, ref)


def conv_forward(x: np.ndarray, seed: int = 0, channels: int = 8) -> np.ndarray:
    """The conv + ReLU of :func:`conv_model` on float64[N, 3, H, W] -> [N, C, H, W]."""
    w, b = conv_weights(seed, channels)
    n, _, h, wd = x.shape
    pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, channels, h, wd)) + b.astype(np.float64)[None, :, None, None]
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("nchw,oc->nohw", pad[:, :, ky:ky + h, kx:kx + wd],
                             w[:, :, ky, kx].astype(np.float64))
    return np.maximum(out, 0.0)

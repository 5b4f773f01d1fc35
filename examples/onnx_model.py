"""Scan with an ONNX image model's embeddings: label votes and outliers judged on what the
images show (copies are always judged by the built-in descriptor, whatever the model).

Run:
    pip install 'vislint[onnx]'
    python examples/onnx_model.py --model /models/resnet50.onnx ./my-images
    python examples/onnx_model.py            # the demo, with a tiny model built here (needs `onnx`)

Bring any exported image model (see the README's "Model embeddings" for torchvision, timm and
open_clip exports); preprocessing comes from arguments or a sidecar MODEL.onnx.json. With no
--model, a small random convolutional network is written with onnx.helper, so the script runs
offline: its vectors mean nothing, it only shows the calls.
"""
import argparse
from pathlib import Path

import numpy as np

import vislint
from vislint.demo import MARKER, build_demo
from vislint.features import Onnx


def tiny_model(path: Path) -> Path:
    """Conv 3x3 (3 -> 16 channels) + ReLU + global average pool: 32x32 RGB in, 16-d out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((16, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["conv"], kernel_shape=[3, 3], pads=[1] * 4),
         helper.make_node("Relu", ["conv"], ["act"]),
         helper.make_node("GlobalAveragePool", ["act"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1)],
        "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 16])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.save(model, str(path))
    return path


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", nargs="?", type=Path, help="images to scan (default: the demo)")
parser.add_argument("--model", type=Path, help="an ONNX image model (default: a tiny one)")
parser.add_argument("--out", type=Path, default=Path("vislint-onnx-out"), help="work dir")
args = parser.parse_args()

folder = args.folder
if folder is None:
    folder = Path("vislint-demo")
    if not (folder / MARKER).exists():
        build_demo(folder)
model = args.model or tiny_model(Path("tiny-embedder.onnx"))

# The short form: "onnx:PATH" (preprocessing from PATH.json when present, else defaults).
res = vislint.scan(folder, out=args.out, embeddings=f"onnx:{model}")

# The long form states the preprocessing: input size, normalisation (ImageNet's by default),
# crop (1.0 = shorter side to the input size + centre crop; 0.875 = torchvision's 224-of-256).
m = Onnx(model, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop=0.875)
res = vislint.scan(folder, out=args.out, embeddings=m)  # a new model: its vectors are cached apart

df = res.to_dataframe()
print(res.summary()[["check", "images", "threshold"]].to_string(index=False))
print("\nimages whose neighbours vote for another label:")
print(df.loc[df.is_label_conflict, ["relpath", "label", "suggested_label", "label_agreement"]]
      .to_string(index=False))
print("\nmost unusual images:")
print(df.nlargest(3, "outlier_score")[["relpath", "outlier_z"]].to_string(index=False))

# Vectors you computed yourself work the same way: one row per image, in the scan's order.
vectors = np.random.default_rng(1).standard_normal((len(df), 8)).astype(np.float32)
res = vislint.scan(df["path"].tolist(), embeddings=vectors)
print("\nwith precomputed vectors:", int(res.to_dataframe().is_near_duplicate.sum()),
      "near duplicates (the same as without: copies never depend on embeddings)")

"""Side-by-side benchmark with a model: vislint --embeddings onnx:MODEL vs fastdup, in one run.

    .venv/bin/python benchmarks/bench_onnx.py [--data DIR] [--runs 3] [--fastdup-python PY]
        [--vislint CMD] [--model PATH] [--json OUT]

The model has fastdup's architecture and input size: MobileNetV3-Small (Howard et al. 2019,
table 2: a 3x3 stem, eleven inverted-residual blocks with squeeze-and-excitation and
hard-swish where the paper puts them, a 1x1 conv to 576 channels), 224x224 input, the
576-d global average pool as output; batch norm folded into the conv biases, random weights
(the speed does not depend on them). It is built with the onnx package's helpers (no torch
needed) and written to ``--model`` (default: a temporary file).

Each run scans the folder from nothing (a fresh work dir) as a separate process, vislint with
``--embeddings onnx:MODEL``, then fastdup (when ``--fastdup-python`` points at a Python with
fastdup 2.54), alternating; as in ``bench_scan.py`` it reports the median wall time, images/s,
the ratio, CPU use and the peak PSS of the process tree. It also measures the model-only rate,
the limit of a scan with this model: the same number of images, already preprocessed (random
float32 224x224 batches of vislint's default batch size), through onnxruntime alone — once in one process per core with
one intra-op thread each (as the scan runs it), once in one process with every core — and
reports the better one and the scan's time as a multiple of it.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench_scan import count_images, finish, side_by_side, side_by_side_parser, stage_line, tool_lines

INPUT = 224
FEATURES = 576
BNECK = [  # kernel, expansion, out channels, squeeze-and-excitation, activation, stride
    (3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]
"""MobileNetV3-Small's bottleneck blocks (the paper's table 2)."""


def build_mobilenet_v3_small(path: Path, seed: int = 0) -> Path:
    """Write a MobileNetV3-Small feature extractor (input "input" float32[batch, 3, 224, 224],
    output "features" float32[batch, 576]) with random weights to ``path``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def fresh(prefix: str) -> str:
        return f"{prefix}{len(nodes)}_{len(inits)}"

    def conv(x, cin, cout, k, stride=1, group=1):
        fan_in = cin // group * k * k
        w = (rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.01).astype(np.float32)
        wn, bn, y = fresh("w"), fresh("b"), fresh("conv")
        inits.extend([numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)])
        nodes.append(helper.make_node("Conv", [x, wn, bn], [y], kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4, group=group))
        return y

    def act(x, kind):
        y = fresh("act")
        nodes.append(helper.make_node("Relu" if kind == "RE" else "HardSwish", [x], [y]))
        return y

    def squeeze_excite(x, c):
        mid = max(8, (c // 4 + 4) // 8 * 8)
        pooled = fresh("pool")
        nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled]))
        gate = conv(act(conv(pooled, c, mid, 1), "RE"), mid, c, 1)
        hsig, y = fresh("hsig"), fresh("se")
        nodes.append(helper.make_node("HardSigmoid", [gate], [hsig], alpha=1 / 6, beta=0.5))
        nodes.append(helper.make_node("Mul", [x, hsig], [y]))
        return y

    x, cin = act(conv("input", 3, 16, 3, 2), "HS"), 16
    for k, exp, cout, se, kind, stride in BNECK:
        h = x if exp == cin else act(conv(x, cin, exp, 1), kind)
        h = act(conv(h, exp, exp, k, stride, group=exp), kind)
        if se:
            h = squeeze_excite(h, exp)
        h = conv(h, exp, cout, 1)
        if stride == 1 and cin == cout:
            y = fresh("add")
            nodes.append(helper.make_node("Add", [x, h], [y]))
            h = y
        x, cin = h, cout
    x = act(conv(x, cin, FEATURES, 1), "HS")
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    graph = helper.make_graph(
        nodes, "mobilenet_v3_small_features",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, INPUT, INPUT])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", FEATURES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


_session = None


def _infer(task):
    """Worker: run ``images`` preprocessed images through the model in batches of the size
    vislint uses."""
    global _session
    path, images, threads = task
    import numpy as np
    import onnxruntime as ort
    from vislint.features import Onnx

    size = Onnx(path).batch_size

    if _session is None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        _session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).standard_normal((size, 3, INPUT, INPUT)).astype(np.float32)
    for start in range(0, images, size):
        _session.run(None, {"input": batch[:min(size, images - start)]})
    return images


def model_only_rate(model: Path, n: int, processes: int, threads: int) -> float:
    """Images/s of the model alone on ``n`` preprocessed images: ``processes`` processes
    with ``threads`` intra-op threads each (sessions loaded and warmed up before timing)."""
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        list(pool.map(_infer, [(str(model), 32, threads)] * processes))  # load + warm up
        share = [n // processes + (i < n % processes) for i in range(processes)]
        start = time.perf_counter()
        list(pool.map(_infer, [(str(model), s, threads) for s in share]))
        return n / (time.perf_counter() - start)


def main() -> int:
    ap = side_by_side_parser(__doc__)
    ap.add_argument("--model", type=Path, default=None,
                    help="where to write the MobileNetV3-Small-shaped model (default: a temp file)")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}; pass --data DIR", file=sys.stderr)
        return 2
    n = count_images(args.data)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        model = build_mobilenet_v3_small(args.model or Path(tmp) / "mobilenet_v3_small.onnx")
        have_fd = bool(args.fastdup_python) and Path(args.fastdup_python).exists()
        vislint = [args.vislint] if args.vislint else [sys.executable, "-m", "vislint"]
        results, peaks = side_by_side(vislint, ["--embeddings", f"onnx:{model}"], args.data,
                                      args.runs, args.fastdup_python if have_fd else None)
        rates = {f"{cores} processes x 1 thread": model_only_rate(model, n, cores, 1),
                 f"1 process x {cores} threads": model_only_rate(model, n, 1, cores)}

    report = {"images": n, "cores": cores, "runs": args.runs, "data": str(args.data),
              "model": "MobileNetV3-Small, 224x224, 576-d (random weights)"}
    lines = [f"benchmark with a MobileNetV3-Small-shaped ONNX model (224x224, 576-d): {n:,} images in "
             f"{args.data}, {cores} cores, median of {args.runs} runs (load average at the end: "
             f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"]
    lines += tool_lines(results, peaks, n, report)
    if "ratio" in report:
        lines.append(f"  ratio    vislint is {report['ratio']:.2f}× fastdup's images/s (target ≥ 1.5×)")
    best = max(rates, key=rates.get)
    report["model_only_images_per_s"] = rates
    lines.append("  model only (preprocessed inputs): " +
                 ", ".join(f"{k}: {v:,.0f} images/s" for k, v in rates.items()))
    over = report["vislint"]["wall_s"] / (n / rates[best])
    report["scan_over_model_only"] = over
    lines.append(f"  vislint's scan takes {over:.2f}× the model-only time ({best}; target ≤ 1.15×)")
    lines.append(stage_line(results["vislint"], report))
    return finish(lines, report, args.json)


if __name__ == "__main__":
    sys.exit(main())

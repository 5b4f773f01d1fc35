"""ONNX image models as feature extractors, run by onnxruntime on the CPU.

:class:`Onnx` (also ``vislint.features.Onnx``) wraps one ``.onnx`` file: any image model with
one float input of shape (N, 3, H, W) or (N, H, W, 3) — a CNN, a ViT, CLIP's or DINOv2's image
tower, a network of your own. What the model expects is read from the model where it says so
(layout, input size, dtype); the rest (resize policy, mean/std, channel order, which output)
comes from arguments or from a JSON sidecar next to the model (``MODEL.onnx.json``).

Per image the C++ core (:func:`vislint._native.preprocess`, GIL released) takes the centre
window, resamples it to the input size and normalises it into a float32 batch; the model's
output is pooled when it is spatial (the mean over H and W) or a token sequence (the first,
class token), giving one vector per image; the scan L2-normalises it.

Onnxruntime is imported only when a model is loaded, so ``import vislint`` never loads it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""torchvision / timm normalisation, in units of value / 255 (the default)."""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""OpenAI CLIP / open_clip normalisation."""

SIDECAR_KEYS = ("size", "mean", "std", "layout", "output", "crop", "bgr", "pool", "batch_size")
"""Keys a sidecar JSON (``MODEL.onnx.json``) may set; same meaning as :class:`Onnx`'s arguments."""

POOLS = ("auto", "mean", "cls")


class Onnx:
    """An ONNX image model as the scan's feature extractor.

    path: the ``.onnx`` file.
    size: input side in pixels, an int or (height, width); None (default) reads it from the
        model, which must then have a fixed H and W.
    mean, std: per-channel normalisation (R, G, B) in units of value / 255; default ImageNet's
        (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`). For a model that wants raw 0-255 values
        use mean=(0, 0, 0), std=(1/255, 1/255, 1/255).
    layout: "NCHW" or "NHWC"; None (default) reads it from the model (the axis of size 3).
    output: the name of the output to use; None (default) takes the model's first output.
    crop: fraction of the largest centred window with the input's aspect ratio that is
        resampled to the input size: 1.0 (default) resizes the shorter side and crops the
        centre (CLIP's convention), 0.875 is torchvision's 224-of-256; 0 resizes the whole
        image and ignores its aspect ratio.
    bgr: feed the channels in B, G, R order (default False: R, G, B).
    pool: how a non-vector output becomes one vector per image: "auto" (default: the mean over
        the spatial axes of an (N, C, H, W) / (N, H, W, C) output, the first token of an
        (N, T, D) sequence), "mean" (the mean over every axis but the batch and feature axes)
        or "cls" (the first token of a sequence).
    batch_size: images per model call (default 4: on a CPU, small batches run as fast per
        image as large ones and keep onnxruntime's memory small; MobileNetV3-Small at 224 px
        needs ~15 MiB of activations per image); a model with a fixed batch size uses that.
    threads: onnxruntime intra-op threads per session; 0 (default) = 1 per decode worker
        process in a scan (the workers run one session each, side by side), the scan's
        ``threads`` when a scan runs the model in its own process (``threads=1``), all cores
        in :meth:`embed` called directly.
    sha256: the expected SHA-256 of the file (hex); None (default) accepts any file. A file
        that does not match is refused when the model is loaded.

    The constructor only stores its arguments; :meth:`prepare` loads the model and checks that
    it fits (a scan calls it before decoding anything).
    """

    name = "onnx"

    def __init__(self, path, size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, layout=None,
                 output=None, crop=1.0, bgr=False, pool="auto", batch_size=4, threads=0,
                 sha256=None):
        self.path = Path(path)
        self.size = size
        self.mean = mean
        self.std = std
        self.layout = layout
        self.output = output
        self.crop = crop
        self.bgr = bgr
        self.pool = pool
        self.batch_size = batch_size
        self.threads = threads
        self.sha256 = sha256
        self._prepared = False
        self._session = None
        self._session_pid = None

    @classmethod
    def from_path(cls, path, **overrides) -> Onnx:
        """An :class:`Onnx` for ``path`` with the settings of its sidecar ``path + '.json'``
        (when it exists), then ``overrides`` on top."""
        path = Path(path)
        settings = read_sidecar(path)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(path, **settings)

    def __repr__(self) -> str:
        return (f"Onnx({str(self.path)!r}, size={self.size!r}, layout={self.layout!r}, "
                f"crop={self.crop!r}, output={self.output!r})")

    def __getstate__(self):  # a session never crosses a process boundary
        state = dict(self.__dict__)
        state["_session"] = state["_session_pid"] = None
        return state

    # ------------------------------------------------------------------ loading and checks

    def prepare(self) -> Onnx:
        """Load the model, check that it is an image model vislint can feed, and learn the
        output dimension by running one blank image; returns self.

        Raises FileNotFoundError for a missing file and ValueError, naming what was expected,
        for a model that does not fit (not rank 4, not 3 channels, not float, a text model,
        an unknown output name, an output that is not one vector per image) or bad settings.
        """
        if self._prepared:
            return self
        self._check_settings()
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        self.file_sha256 = file_sha256(self.path)
        if self.sha256 and self.sha256.lower() != self.file_sha256:
            raise ValueError(f"{self.path}: SHA-256 {self.file_sha256} does not match the expected "
                             f"{self.sha256.lower()}: the file is damaged or not the model meant; "
                             "delete it and download it again")
        session = self._new_session(threads=1)
        self._read_input(session)
        names = [o.name for o in session.get_outputs()]
        if self.output is None:
            self.output_name = names[0]
        elif self.output in names:
            self.output_name = self.output
        else:
            raise ValueError(f"{self.path.name}: no output named {self.output!r}; the model's "
                             f"outputs are {names}")
        blank = [np.zeros((self.input_hw[0], self.input_hw[1], 3), np.uint8)]
        self._session, self._session_pid = session, os.getpid()
        vec = self.embed(blank)
        self.dim = int(vec.shape[1])
        self._session = self._session_pid = None  # the scan's workers load their own
        self._prepared = True
        return self

    def _check_settings(self) -> None:
        for name in ("mean", "std"):
            v = getattr(self, name)
            if len(v) != 3 or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
                raise ValueError(f"{name} must be 3 numbers (R, G, B, in units of value / 255), "
                                 f"got {v!r}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be > 0, got {self.std!r}")
        if not isinstance(self.crop, (int, float)) or not 0 <= self.crop <= 1:
            raise ValueError(f"crop must be a fraction in (0, 1], or 0 to resize the whole image "
                             f"ignoring its aspect ratio; got {self.crop!r}")
        if self.layout not in (None, "NCHW", "NHWC"):
            raise ValueError(f"layout must be 'NCHW', 'NHWC' or None (read from the model), "
                             f"got {self.layout!r}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads must be an int >= 0 (0 = automatic), got {self.threads!r}")
        if self.size is not None:
            hw = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
            if len(hw) != 2 or not all(isinstance(s, int) and s >= 1 for s in hw):
                raise ValueError(f"size must be an int or (height, width) in pixels, got {self.size!r}")

    def _new_session(self, threads: int):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError("ONNX features need onnxruntime: pip install 'vislint[onnx]'") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        try:
            return ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ValueError(f"{self.path}: onnxruntime cannot load it as an ONNX model "
                             f"({type(e).__name__}: {str(e).strip()[:300]})") from e

    def _read_input(self, session) -> None:
        """Find the image input; set input_name, layout, input_hw, input_dtype, fixed_batch."""
        expected = ("vislint needs an image model with one float input of shape (N, 3, H, W) "
                    "or (N, H, W, 3)")
        inputs = session.get_inputs()
        described = ", ".join(f"{i.name!r} {i.type} {list(i.shape)}" for i in inputs)
        images = [i for i in inputs if len(i.shape) == 4 and i.type in ("tensor(float)", "tensor(float16)")]
        if len(inputs) != 1 and len(images) != 1:
            raise ValueError(f"{self.path.name}: inputs {described}; {expected}")
        inp = images[0] if images else inputs[0]
        if inp.type not in ("tensor(float)", "tensor(float16)"):
            hint = (" (integer token ids: this looks like a text model; use the image tower)"
                    if "int" in inp.type else "")
            raise ValueError(f"{self.path.name}: input {inp.name!r} is {inp.type} of shape "
                             f"{list(inp.shape)}{hint}; {expected}")
        if len(inp.shape) != 4:
            raise ValueError(f"{self.path.name}: input {inp.name!r} has rank {len(inp.shape)} "
                             f"(shape {list(inp.shape)}); {expected}")
        dims = [d if isinstance(d, int) and d > 0 else None for d in inp.shape]
        layout = self.layout
        if layout is None:
            if dims[1] == 3 and dims[3] != 3:
                layout = "NCHW"
            elif dims[3] == 3 and dims[1] != 3:
                layout = "NHWC"
            else:
                raise ValueError(f"{self.path.name}: cannot tell the layout of input {inp.name!r} "
                                 f"of shape {list(inp.shape)} (no single axis of size 3); give "
                                 "layout='NCHW' or 'NHWC'")
        c, h, w = (dims[1], dims[2], dims[3]) if layout == "NCHW" else (dims[3], dims[1], dims[2])
        if c not in (3, None):
            raise ValueError(f"{self.path.name}: input {inp.name!r} of shape {list(inp.shape)} has "
                             f"{c} channels in layout {layout}; {expected} (3 = RGB)")
        if self.size is not None:
            want = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
            if (h and h != want[0]) or (w and w != want[1]):
                raise ValueError(f"{self.path.name}: size={self.size!r} but the model's input "
                                 f"{inp.name!r} is fixed at {h}x{w} (height x width)")
            h, w = want
        if h is None or w is None:
            raise ValueError(f"{self.path.name}: input {inp.name!r} of shape {list(inp.shape)} has "
                             "no fixed height and width; give size= (e.g. 224) or 'size' in the "
                             "sidecar JSON")
        self.input_name, self.layout, self.input_hw = inp.name, layout, (h, w)
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.fixed_batch = dims[0]

    # ------------------------------------------------------------------ running

    @property
    def decode_side(self) -> int:
        """Pixels the decoder must keep on an image's shorter side (JPEG draft mode and
        integer reduction stop above it) so that the model sees full detail."""
        h, w = self.input_hw
        return math.ceil(max(h, w) / self.crop) if self.crop > 0 else max(h, w)

    @property
    def version(self) -> str:
        """Cache key: the model file's SHA-256 (12 hex digits) and a hash of the preprocessing,
        so vectors of different models or settings never mix."""
        spec = json.dumps([self.input_hw, list(map(float, self.mean)), list(map(float, self.std)),
                           self.layout, self.output_name, float(self.crop), bool(self.bgr),
                           self.pool], sort_keys=True)
        return f"onnx-{self.file_sha256[:12]}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"

    def describe(self) -> dict:
        """What the scan records as provenance: file, checksum and every setting."""
        return {"path": str(self.path), "sha256": self.file_sha256, "input": self.input_name,
                "size": list(self.input_hw), "layout": self.layout, "output": self.output_name,
                "dim": self.dim, "mean": list(self.mean), "std": list(self.std),
                "crop": self.crop, "bgr": self.bgr, "pool": self.pool}

    def embed(self, images, threads: int | None = None) -> np.ndarray:
        """One vector per image, float32[len(images), dim], pooled but not normalised.

        images: uint8[H, W, 3] (RGB) or [H, W, 4] (RGBX) arrays, any sizes, already upright.
        threads: intra-op threads if this call creates the session (default: the
            ``threads`` argument, 0 = all cores).
        """
        if self._session is None or self._session_pid != os.getpid():
            if not hasattr(self, "input_name"):
                self.prepare()
            self._session = self._new_session(self.threads if threads is None else threads)
            self._session_pid = os.getpid()
        from . import _native

        h, w = self.input_hw
        step = self.fixed_batch or self.batch_size
        shape = (step, 3, h, w) if self.layout == "NCHW" else (step, h, w, 3)
        batch = np.zeros(shape, np.float32)
        parts = []
        for start in range(0, len(images), step):
            part = list(images[start:start + step])
            _native.preprocess(part, batch, layout=self.layout, crop=float(self.crop),
                               mean=tuple(map(float, self.mean)), std=tuple(map(float, self.std)),
                               bgr=bool(self.bgr), threads=1)
            feed = batch if self.fixed_batch else batch[:len(part)]
            out = self._session.run([self.output_name],
                                    {self.input_name: feed.astype(self.input_dtype, copy=False)})[0]
            parts.append(self._pool(np.asarray(out), feed.shape[0])[:len(part)])
        if not parts:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        vec = np.concatenate(parts).astype(np.float32, copy=False)
        if not np.isfinite(vec).all():
            raise ValueError(f"{self.path.name}: output {self.output_name!r} holds NaN or inf for "
                             "some images; check the model and its preprocessing (mean/std)")
        return vec

    def _pool(self, out: np.ndarray, n: int) -> np.ndarray:
        """(n, d) from a model output: vectors as they are, spatial maps averaged, sequences
        reduced to their class token (or averaged with pool='mean')."""
        where = f"{self.path.name}: output {self.output_name!r} of shape {list(out.shape)}"
        if out.ndim < 2 or out.shape[0] != n:
            raise ValueError(f"{where} for a batch of {n} images; expected one row per image, "
                             "(N, d), (N, T, d) or a spatial map (N, C, H, W) — is this an "
                             "image model, and is the output the embedding?")
        if out.ndim == 2:
            return out
        if out.ndim == 3:
            return out[:, 0, :] if self.pool in ("auto", "cls") else out.mean(axis=1)
        if out.ndim == 4 and self.pool != "cls":
            return out.mean(axis=(2, 3) if self.layout == "NCHW" else (1, 2))
        raise ValueError(f"{where}: cannot pool it with pool={self.pool!r}; expected (N, d), "
                         "(N, T, d) or (N, C, H, W)")


def read_sidecar(path: Path) -> dict:
    """Settings from ``path + '.json'`` (an empty dict when there is none)."""
    sidecar = Path(str(path) + ".json")
    if not sidecar.is_file():
        return {}
    try:
        settings = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{sidecar}: not readable JSON ({e})") from e
    if not isinstance(settings, dict):
        raise ValueError(f"{sidecar}: expected a JSON object with keys among {SIDECAR_KEYS}")
    unknown = sorted(set(settings) - set(SIDECAR_KEYS))
    if unknown:
        raise ValueError(f"{sidecar}: unknown keys {unknown}; allowed: {list(SIDECAR_KEYS)}")
    if isinstance(settings.get("size"), list):
        settings["size"] = tuple(settings["size"])
    return settings


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file (hex), read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()

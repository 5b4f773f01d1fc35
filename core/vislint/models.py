"""A small registry of public ONNX image models, and the code that downloads them.

Nothing is downloaded unless a model is named (``--features NAME``, ``vislint models fetch
NAME``, :func:`fetch`). A download goes to the cache, ``$VISLINT_CACHE/models/NAME.onnx``
(default ``$XDG_CACHE_HOME/vislint``, else ``~/.cache/vislint``), with a progress bar on
stderr; an interrupted download resumes where it stopped (HTTP Range requests), and the file is
checked against its SHA-256 before it is used:

- where a public source publishes the checksum (the Git LFS pointer of the file in its
  repository), the registry holds it and every download and every use is verified against it;
- where none does, the checksum is recorded at the first download (``NAME.onnx.sha256`` beside
  the file) and every later use is verified against that record. ``vislint models`` says which
  is which. A registry never holds an invented checksum.

Offline mode (``VISLINT_OFFLINE=1``, ``offline=True``, ``vislint scan --offline``) never touches
the network: a model that is not in the cache is an error that says where to put the file.
On a connected machine, ``vislint models fetch NAME --to DIR`` writes ``DIR/NAME.onnx`` (with
its checksum record and its preprocessing as ``NAME.onnx.json``); copy it into the cache's
``models`` folder on the offline machine, or use it directly with ``--features onnx:DIR/NAME.onnx``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .onnx_features import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, Onnx, file_sha256


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry.

    name: what users type (``--features NAME``).
    url: where the ``.onnx`` file is downloaded from (pinned to a commit where the host allows).
    size_bytes: the file's size in bytes (approximate, for display, unless ``sha256`` is set).
    licence: the licence of the weights.
    sha256: the published SHA-256, or None when no public source confirms one (then the
        checksum is recorded at the first download).
    checksum_source: where the published checksum comes from.
    settings: preprocessing, as :class:`vislint.features.Onnx` arguments.
    suits: the checks these vectors serve well.
    notes: one line for ``vislint models``.
    """

    name: str
    url: str
    size_bytes: int
    licence: str
    sha256: str | None = None
    checksum_source: str | None = None
    settings: dict = field(default_factory=dict)
    suits: tuple[str, ...] = ()
    notes: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"


REGISTRY: dict[str, ModelInfo] = {}
"""name -> :class:`ModelInfo`; add entries with :func:`register`."""


def register(info: ModelInfo) -> ModelInfo:
    """Add (or replace) a registry entry, e.g. a model on your organisation's own server."""
    if not info.name or "/" in info.name or info.name.startswith("onnx:") or info.name == "builtin":
        raise ValueError(f"registry name {info.name!r}: use a short name without '/' that is "
                         "not 'builtin' and does not start with 'onnx:'")
    if info.sha256 is not None and (len(info.sha256) != 64 or
                                    any(c not in "0123456789abcdef" for c in info.sha256)):
        raise ValueError(f"{info.name}: sha256 must be 64 lower-case hex digits or None")
    REGISTRY[info.name] = info
    return info


register(ModelInfo(
    name="dinov2-small",
    url="https://huggingface.co/Xenova/dinov2-small/resolve/"
        "bd222e886723524568931e43031f6d9327896fac/onnx/model.onnx",
    size_bytes=88_500_000, licence="Apache-2.0",
    settings={"size": 224, "layout": "NCHW", "crop": 0.875, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
              "pool": "cls"},
    suits=("near_duplicate", "outlier", "label_conflict"),
    notes="DINOv2 ViT-S/14 (self-supervised): visual similarity, near copies, odd images"))
register(ModelInfo(
    name="clip-vit-b32",
    url="https://huggingface.co/Qdrant/clip-ViT-B-32-vision/resolve/"
        "5d56b3ac8126f471346c4c137a2f107d27665f24/model.onnx",
    size_bytes=352_000_000, licence="Apache-2.0 (export); MIT (OpenAI CLIP weights)",
    settings={"size": 224, "layout": "NCHW", "crop": 1.0, "mean": CLIP_MEAN, "std": CLIP_STD},
    suits=("label_conflict", "outlier"),
    notes="CLIP ViT-B/32 image tower: semantic content, wrong labels, other domains"))
register(ModelInfo(
    name="resnet18-v2",
    url="https://github.com/onnx/models/raw/2a67a85e670e61bf9819e9df6dae3771974552ff/"
        "validated/vision/classification/resnet/model/resnet18-v2-7.onnx",
    size_bytes=46_806_737, licence="Apache-2.0",
    sha256="3b4d048057854022232aa20bf68262e31718ab7119a17f920b8a2dc1433f824b",
    checksum_source="Git LFS pointer of the file in github.com/onnx/models",
    settings={"size": 224, "layout": "NCHW", "crop": 0.875, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    suits=("label_conflict",),
    notes="ResNet-18 v2 (ONNX model zoo), 1000 ImageNet class scores: label votes"))


# ---------------------------------------------------------------------- cache and status

def cache_dir() -> Path:
    """The cache root: $VISLINT_CACHE, else $XDG_CACHE_HOME/vislint, else ~/.cache/vislint."""
    if os.environ.get("VISLINT_CACHE"):
        return Path(os.environ["VISLINT_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "vislint"


def model_path(name: str) -> Path:
    """Where the cache keeps registry model ``name``."""
    return cache_dir() / "models" / _info(name).filename


def offline_mode(offline: bool | None = None) -> bool:
    """``offline`` when given, else whether VISLINT_OFFLINE is set to 1/true/yes/on."""
    if offline is not None:
        return bool(offline)
    return os.environ.get("VISLINT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def status(name: str) -> dict:
    """What the cache holds for ``name``: path, cached (bool), bytes on disk, and checksum:
    "published" (the registry's checksum), "recorded" (taken at the first download),
    "recorded at first download" (not downloaded yet, no public checksum)."""
    info = _info(name)
    path = model_path(name)
    record = _record_path(path)
    if info.sha256:
        checksum = "published"
    elif record.is_file():
        checksum = "recorded"
    else:
        checksum = "recorded at first download"
    return {"name": name, "path": path, "cached": path.is_file(),
            "bytes": path.stat().st_size if path.is_file() else None, "checksum": checksum}


def extractor(name: str, offline: bool | None = None, progress: bool = True) -> Onnx:
    """The :class:`Onnx` extractor for registry model ``name``, downloading the file first if
    the cache does not have it (never in offline mode: then a missing file is an error)."""
    info = _info(name)
    path = fetch(name, offline=offline, progress=progress, verify=False)
    expected = info.sha256 or _read_record(path)
    if expected is None:  # a file copied in by hand: record its checksum now
        _verify(info, path)
        expected = _read_record(path)
    return Onnx(path, sha256=expected, **info.settings)  # prepare() verifies it


def fetch(name: str, to: str | Path | None = None, offline: bool | None = None,
          progress: bool = True, retries: int = 3, timeout: float = 30.0,
          verify: bool = True) -> Path:
    """Download registry model ``name`` (if not already there) and return its path.

    to: a folder to write ``NAME.onnx`` to (with ``NAME.onnx.json``, its preprocessing, and
        ``NAME.onnx.sha256``); default: the cache.
    offline: never use the network (default: VISLINT_OFFLINE); a missing file is then an error.
    progress: show a progress bar on stderr.
    retries: how often a dropped connection is resumed before giving up (default 3).
    timeout: seconds without data before a connection counts as dropped (default 30).
    verify: check a file already present against its checksum (default True; a fresh
        download is always checked).

    A file already present is verified (published or recorded SHA-256), never downloaded again.
    Raises ValueError for a checksum mismatch (the bad file is deleted) and ConnectionError
    when the download cannot be completed (what was received is kept and resumed next time).
    """
    info = _info(name)
    folder = Path(to) if to is not None else cache_dir() / "models"
    path = folder / info.filename
    if to is not None:
        _write_sidecar(info, path)
    if path.is_file():
        if verify:
            _verify(info, path)
        return path
    if offline_mode(offline):
        raise FileNotFoundError(
            f"model {name!r} is not in the cache and offline mode is on (VISLINT_OFFLINE / "
            f"--offline), so nothing is downloaded. On a connected machine run "
            f"`vislint models fetch {name} --to DIR`, then copy DIR/{info.filename} to {path} "
            f"(or scan with --features onnx:DIR/{info.filename}).")
    folder.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    _download(info.url, part, progress=progress, retries=retries, timeout=timeout,
              label=info.filename)
    got = file_sha256(part)
    if info.sha256 and got != info.sha256:
        part.unlink()
        raise ValueError(f"{name}: the downloaded file's SHA-256 is {got}, expected {info.sha256} "
                         f"({info.checksum_source}); it was deleted. Try again; if it persists, "
                         f"the file at {info.url} has changed")
    os.replace(part, path)
    if not info.sha256:
        _record_path(path).write_text(got + "\n", encoding="ascii")
    return path


def _download(url: str, part: Path, *, progress: bool, retries: int, timeout: float,
              label: str) -> None:
    """Fetch ``url`` into ``part``, resuming from its current length with a Range request."""
    import urllib.error  # here, not at the top: urllib.request costs ~0.02 s to import, and
    import urllib.request  # every `vislint` command builds the parser from this module

    bar = None
    attempt = 0
    try:
        while True:
            have = part.stat().st_size if part.is_file() else 0
            request = urllib.request.Request(url, headers={"User-Agent": "vislint"})
            if have:
                request.add_header("Range", f"bytes={have}-")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    if have and response.status != 206:  # the server ignored the range
                        have = 0
                    length = response.headers.get("Content-Length")
                    total = have + int(length) if length is not None else None
                    if progress and bar is None:
                        from tqdm import tqdm

                        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                   unit_divisor=1024, desc=label, file=sys.stderr)
                    elif bar is not None:
                        bar.reset(total=total)
                        bar.update(have)
                    with open(part, "ab" if have else "wb") as f:
                        while block := response.read(1 << 16):
                            f.write(block)
                            if bar is not None:
                                bar.update(len(block))
                    if total is not None and part.stat().st_size < total:
                        raise ConnectionError(f"connection closed after {part.stat().st_size:,} "
                                              f"of {total:,} bytes")
                return
            except urllib.error.HTTPError as e:
                if e.code == 416 and have:  # asked beyond the end: what we have is damaged
                    part.unlink()
                    continue
                raise ConnectionError(f"downloading {url}: HTTP {e.code} {e.reason}") from e
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                attempt += 1
                if attempt > retries:
                    size = part.stat().st_size if part.is_file() else 0
                    raise ConnectionError(
                        f"downloading {url} failed ({getattr(e, 'reason', e)}); {size:,} bytes "
                        f"are kept in {part} and the next attempt resumes from there") from e
                time.sleep(min(2.0 ** attempt, 10.0) / 4)
    finally:
        if bar is not None:
            bar.close()


def _verify(info: ModelInfo, path: Path) -> None:
    """Check a cached file against the published or recorded checksum (record one if neither)."""
    expected = info.sha256 or _read_record(path)
    got = file_sha256(path)
    if expected is None:
        _record_path(path).write_text(got + "\n", encoding="ascii")
    elif got != expected:
        raise ValueError(f"{path}: SHA-256 {got} does not match the "
                         f"{'published' if info.sha256 else 'recorded'} {expected}; the file is "
                         f"damaged or was replaced: delete it and run `vislint models fetch "
                         f"{info.name}` again")


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_record(path: Path) -> str | None:
    record = _record_path(path)
    if not record.is_file():
        return None
    return record.read_text(encoding="ascii").strip() or None


def _write_sidecar(info: ModelInfo, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in info.settings.items()}
    Path(str(path) + ".json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _info(name: str) -> ModelInfo:
    if name not in REGISTRY:
        raise ValueError(f"no registry model named {name!r}; known: {', '.join(sorted(REGISTRY))} "
                         "(see `vislint models`)")
    return REGISTRY[name]


# ---------------------------------------------------------------------- command line

def add_command(sub) -> None:
    """``vislint models`` (the table) and ``vislint models fetch NAME [--to DIR]``."""
    m = sub.add_parser("models", help="list the registry's ONNX models; fetch one",
                       description="The models `--features NAME` can use: whether each is in the "
                                   f"cache ({cache_dir() / 'models'}; set VISLINT_CACHE to move "
                                   "it), its size, licence, checksum and the checks it suits.")
    msub = m.add_subparsers(dest="models_command", metavar="COMMAND")
    f = msub.add_parser("fetch", help="download a registry model (to the cache, or --to DIR)")
    f.add_argument("name", help="a registry model name (see `vislint models`)")
    f.add_argument("--to", type=Path, default=None,
                   help="write NAME.onnx (+ .json preprocessing, + .sha256) to this folder "
                        "instead of the cache, e.g. to copy to an offline machine")
    f.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    f.set_defaults(run=_cmd_fetch)
    m.set_defaults(run=_cmd_list)


def table() -> str:
    """The ``vislint models`` table."""
    rows = [("name", "cached", "size", "licence", "checksum", "suits")]
    for name in sorted(REGISTRY):
        info, st = REGISTRY[name], status(name)
        size = st["bytes"] if st["cached"] else info.size_bytes
        rows.append((name, "yes" if st["cached"] else "no",
                     f"{size / 1e6:,.0f} MB" if size else "?", info.licence,
                     st["checksum"], ", ".join(info.suits)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    lines += ["", f"cache: {cache_dir() / 'models'} (VISLINT_CACHE moves it; VISLINT_OFFLINE=1 "
                  "never downloads)",
              "checksum: published = verified against the SHA-256 its source publishes; "
              "recorded = taken at the first download, verified on every use since",
              "use: vislint scan DATA --features NAME    |    vislint models fetch NAME --to DIR"]
    for name in sorted(REGISTRY):
        lines.append(f"  {name}: {REGISTRY[name].notes}")
    return "\n".join(lines)


def _cmd_list(args) -> int:
    print(table())
    return 0


def _cmd_fetch(args) -> int:
    path = fetch(args.name, to=args.to, progress=not args.quiet)
    st = REGISTRY[args.name]
    how = "published" if st.sha256 else "recorded"
    print(f"{path} ({path.stat().st_size:,} bytes, SHA-256 {file_sha256(path)}, {how})")
    if args.to is not None:
        print(f"preprocessing: {path}.json; on an offline machine copy {path.name} to "
              f"{cache_dir() / 'models'}/ (or use --features onnx:{path})")
    return 0


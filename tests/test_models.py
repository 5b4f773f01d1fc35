"""The model registry and its downloader, against a local HTTP server on 127.0.0.1 serving a
model the test builds: verified downloads, checksum failure, interrupted download + resume,
a server that ignores Range, recorded checksums, offline mode, the CLI end to end."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime", reason="ONNX features need onnxruntime: pip install 'vislint[onnx]'")
pytest.importorskip("onnx", reason="the test model is built with the onnx package")

import onnx_models as om  # noqa: E402
from vislint import models  # noqa: E402
from vislint.cli import main  # noqa: E402


class ModelServer:
    """Serves one file at /model.onnx with HTTP Range support. ``cut_after``: the first
    ``cuts`` responses stop after that many bytes and drop the connection; ``ignore_range``:
    always answer 200 with the whole file. Records every request's Range header."""

    def __init__(self, body: bytes):
        self.body, self.cut_after, self.cuts, self.ignore_range = body, None, 0, False
        self.requests: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.headers.get("Range"))
                if self.path != "/model.onnx":
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(server.body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.body) - 1}/{len(server.body)}")
                else:
                    self.send_response(200)
                payload = server.body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.cuts > 0 and server.cut_after is not None:
                    server.cuts -= 1
                    self.wfile.write(payload[:server.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/model.onnx"
        # polling every 0.05 s: shutdown() waits for the next poll (0.5 s by default)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def model_bytes(tmp_path_factory):
    path = om.conv_model(tmp_path_factory.mktemp("model") / "m.onnx", channels=64)
    return path.read_bytes()


@pytest.fixture()
def server(model_bytes):
    s = ModelServer(model_bytes)
    yield s
    s.close()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISLINT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VISLINT_OFFLINE", raising=False)
    yield tmp_path / "cache"
    for name in [n for n in models.REGISTRY if n.startswith("test-")]:
        del models.REGISTRY[name]


def register(server, sha256="auto", name="test-conv"):
    digest = hashlib.sha256(server.body).hexdigest() if sha256 == "auto" else sha256
    return models.register(models.ModelInfo(
        name=name, url=server.url, size_bytes=len(server.body), licence="test", sha256=digest,
        checksum_source="the test" if digest else None,
        settings={"crop": 0.875, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)},
        suits=("outlier",)))


def test_download_verify_and_reuse(server, cache):
    register(server)
    path = models.fetch("test-conv", progress=False)
    assert path == cache / "models" / "test-conv.onnx" and path.read_bytes() == server.body
    assert server.requests == [None]
    assert models.fetch("test-conv", progress=False) == path  # cached: no second request
    assert len(server.requests) == 1
    model = models.extractor("test-conv").prepare()
    assert model.file_sha256 == hashlib.sha256(server.body).hexdigest()
    assert (model.crop, model.dim) == (0.875, 64)
    assert models.status("test-conv")["cached"] and models.status("test-conv")["checksum"] == "published"


def test_checksum_failure_deletes_the_download(server, cache):
    register(server, sha256="0" * 64)
    with pytest.raises(ValueError, match=r"SHA-256 is [0-9a-f]{64}, expected 0{64} \(the test\); it was deleted"):
        models.fetch("test-conv", progress=False)
    assert not list((cache / "models").iterdir())  # neither the file nor a partial download


def test_interrupted_download_resumes_with_a_range_request(server, cache):
    register(server)
    server.cut_after, server.cuts = len(server.body) // 3, 1
    with pytest.raises(ConnectionError, match="bytes are kept in .*test-conv.onnx.part and the next "
                                              "attempt resumes from there"):
        models.fetch("test-conv", progress=False, retries=0)
    part = cache / "models" / "test-conv.onnx.part"
    assert part.stat().st_size == len(server.body) // 3
    path = models.fetch("test-conv", progress=False, retries=0)
    assert server.requests == [None, f"bytes={len(server.body) // 3}-"]
    assert path.read_bytes() == server.body and not part.exists()


def test_dropped_connections_are_resumed_within_one_fetch(server, cache):
    register(server)
    server.cut_after, server.cuts = 1000, 2
    path = models.fetch("test-conv", progress=True, retries=3)  # the progress bar resumes too
    assert server.requests == [None, "bytes=1000-", "bytes=2000-"]
    assert path.read_bytes() == server.body


def test_a_server_that_ignores_range_restarts_from_zero(server, cache):
    register(server)
    server.cut_after, server.cuts, server.ignore_range = 5000, 1, True
    path = models.fetch("test-conv", progress=False, retries=1)
    assert server.requests == [None, "bytes=5000-"]  # asked to resume, got the whole file
    assert path.read_bytes() == server.body


def test_checksum_recorded_at_first_download_then_verified(server, cache):
    register(server, sha256=None)
    assert models.status("test-conv")["checksum"] == "recorded at first download"
    path = models.fetch("test-conv", progress=False)
    record = path.with_name("test-conv.onnx.sha256")
    assert record.read_text().strip() == hashlib.sha256(server.body).hexdigest()
    assert models.status("test-conv")["checksum"] == "recorded"
    models.extractor("test-conv").prepare()
    path.write_bytes(server.body[:-1] + b"\0")  # the file changed since
    with pytest.raises(ValueError, match="does not match the recorded"):
        models.fetch("test-conv", progress=False)
    with pytest.raises(ValueError, match="does not match the expected"):
        models.extractor("test-conv").prepare()


def test_offline_mode_never_touches_the_network(server, cache, monkeypatch, tmp_path):
    register(server)
    monkeypatch.setenv("VISLINT_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"not in the cache and offline mode is on .* "
                                                r"`vislint models fetch test-conv --to DIR`, then copy "
                                                r"DIR/test-conv.onnx to .*cache/models/test-conv.onnx"):
        models.extractor("test-conv")
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(data / "a.png")
    assert main(["scan", str(data), "--embeddings", "test-conv", "-q"]) == 2
    monkeypatch.delenv("VISLINT_OFFLINE")
    assert main(["scan", str(data), "--embeddings", "test-conv", "--offline", "-q"]) == 2
    assert server.requests == []
    # a file fetched elsewhere and copied into the cache is used offline
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "test-conv.onnx").write_bytes(server.body)
    assert models.extractor("test-conv", offline=True).prepare().dim == 64
    assert server.requests == []


def test_cli_models_fetch_and_scan_by_name(server, cache, tmp_path, capsys):
    register(server)
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "test-conv" in table and "published" in table and "outlier" in table
    assert "dinov2-small" in table and "recorded at first download" in table
    to = tmp_path / "fetched"
    assert main(["models", "fetch", "test-conv", "--to", str(to), "-q"]) == 0
    assert (to / "test-conv.onnx").read_bytes() == server.body
    assert json.loads((to / "test-conv.onnx.json").read_text())["crop"] == 0.875
    assert not (cache / "models").exists()  # --to leaves the cache alone

    data = tmp_path / "data"
    for label in ("a", "b"):
        (data / label).mkdir(parents=True)
        for i in range(4):
            rng = np.random.default_rng([ord(label), i])
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(data / label / f"{i}.png")
    out = tmp_path / "out"
    assert main(["scan", str(data), "--embeddings", "test-conv", "--out", str(out), "-q", "--json"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["provenance"]["feature_model"]["sha256"] == hashlib.sha256(server.body).hexdigest()
    assert manifest["params"]["embeddings"].startswith("onnx-" + manifest["provenance"]["feature_model"]["sha256"][:12])
    # the same scan with the fetched copy, by path: its sidecar gives the same preprocessing
    out2 = tmp_path / "out2"
    assert main(["scan", str(data), "--embeddings", f"onnx:{to / 'test-conv.onnx'}", "--out", str(out2),
                 "-q", "--json"]) == 0
    assert json.loads((out2 / "manifest.json").read_text())["params"]["embeddings"] == manifest["params"]["embeddings"]
    assert len(server.requests) == 2  # one for --to, one for the cache

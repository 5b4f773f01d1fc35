"""A real Label Studio server for tests: its own venv, a migrated template data dir, start/stop
by PID on 127.0.0.1, and headless chromium (Playwright) to look at a task as a reviewer would.

* ``ensure_server_venv()`` installs ``label-studio==LS_VERSION`` into a venv of its own (never the
  project venv: it pins Django and friends), ``$LS_VENV`` or ``~/.cache/vislint-ci/ls-venv``, so
  it survives between CI runs outside the repo. ~3.5 min and ~1 GB the first time.
* ``template_data_dir()`` builds once, beside that venv, a data dir that has gone through the
  migrations and holds the preset admin (``EMAIL``/``PASSWORD``) and legacy API token
  (``API_KEY``). Every server starts from a copy of it: ready in seconds instead of ~1 min.
* ``with start_label_studio(workdir, document_root) as ls:`` -> :class:`LabelStudioServer`
  (``url``, ``api_key``, ``pid``, ``data_dir``, ``document_root``, ``log``; ``stop()``,
  ``restart()`` on the same data dir and port).
* ``open_in_browser(url, png, login=(EMAIL, PASSWORD))`` logs in through the UI and opens a page;
  ``log_in(page, url)`` logs a Playwright page of ``browser.chromium_page()`` in, for tests that
  drive the page themselves.

Run ``python tests/ls_services.py install`` to prepare the venv and the template ahead of tests.

Traps handled here (Label Studio 1.23.2):

* Settings are read through ``get_env(NAME)``, which also accepts the *unprefixed* name: ``HOST``,
  ``PORT``, ``USERNAME``, ``PASSWORD``, ``DEBUG``, ``CI``, ``LOG_LEVEL``... The server therefore
  gets a minimal environment (PATH, HOME, locale, certificates) plus its own settings.
* The preset token only works if the organisation was created with legacy tokens enabled, i.e.
  at the first start; the template is built that way and the check is repeated at each start.
* A busy port makes it silently move to the next free one: the port is checked before start and
  the server's own "Starting development server at" line must name it.
* Any ``label-studio`` command, even ``--version``, migrates a database under
  ``~/.local/share/label-studio`` when no data dir is set (and ``--version`` then hung here on
  its PyPI version check): read the version with ``pip show`` / the dist-info instead.
* ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` is read at start, not stored: a copied data dir can
  serve any document root. ``/data/local-files/?d=<relative path>`` answers 404 until the project
  has a local-files import storage whose path contains the file (no sync needed).
"""
from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from browser import chromium_page

LS_VERSION = "1.23.2"  # server, in its own venv
SDK_VERSION = "2.1.2"  # label-studio-sdk in the project venv, as tested
HOST = "127.0.0.1"
EMAIL = "vislint@example.com"
PASSWORD = "vislint-ci-password"
API_KEY = "vislintci" + "0" * 31  # legacy token: 40 characters, the Token key's maximum
# Environment variables passed through to the server; everything else is dropped (see above).
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR",
               "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def default_venv() -> Path:
    """``$LS_VENV`` or ``~/.cache/vislint-ci/ls-venv``."""
    return Path(os.environ.get("LS_VENV") or Path.home() / ".cache" / "vislint-ci" / "ls-venv")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_busy(port: int) -> bool:
    """True if something accepts connections on ``port`` (Label Studio checks ``localhost``)."""
    for host in (HOST, "localhost"):
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((host, port)) == 0:
                return True
    return False


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


@contextmanager
def _locked(path: Path):
    """An exclusive ``flock`` on ``path`` (created if missing): one installer at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_MARK = "vislint-ls-venv"  # written right after ``python -m venv``: this venv may be rebuilt


def _stamp(venv: Path) -> Path:
    return venv / "vislint-installed.json"


def installed_version(venv: Path | None = None) -> str | None:
    """The label-studio version this venv was completely installed with, else ``None``."""
    try:
        return json.loads(_stamp(Path(venv or default_venv())).read_text())["label-studio"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_server_venv(venv: str | os.PathLike | None = None, version: str = LS_VERSION,
                       python: str | None = None, timeout: float = 1800.0) -> Path:
    """Return a venv holding ``label-studio==version``, installing it first if needed.

    ``venv`` defaults to :func:`default_venv`. A venv made here but without the stamp written
    after a successful install (interrupted install, other version) is wiped and rebuilt with
    ``python`` (default ``$LS_PYTHON`` or ``python3``). pip's output goes to
    ``<venv>.install.log``; a failure raises ``RuntimeError`` with its tail. Took 210 s and ~1 GB
    here. Concurrent callers wait on a lock file beside the venv.
    """
    venv = Path(venv or default_venv()).absolute()
    with _locked(venv.parent / (venv.name + ".lock")):
        if installed_version(venv) == version and (venv / "bin" / "label-studio").exists():
            return venv
        if venv.exists():  # incomplete or other version: rebuild, but never delete a stranger
            ours = (venv / _MARK).exists() or _stamp(venv).exists()
            if any(venv.iterdir()) and not ours:
                raise RuntimeError(f"{venv} exists and was not made by ls_services; refusing to "
                                   "replace it (set LS_VENV to another path)")
            shutil.rmtree(venv)
        log = venv.parent / (venv.name + ".install.log")
        python = python or os.environ.get("LS_PYTHON") or shutil.which("python3") or sys.executable
        t0 = time.monotonic()
        with open(log, "wb") as out:
            for cmd in ([python, "-m", "venv", str(venv)],
                        [str(venv / "bin" / "python"), "-m", "pip", "install",
                         "--disable-pip-version-check", f"label-studio=={version}"]):
                out.write(f"$ {' '.join(cmd)}\n".encode())
                out.flush()
                try:
                    code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, timeout=timeout).returncode
                except subprocess.TimeoutExpired:
                    code = "timeout"
                if code == 0 and cmd[1:3] == ["-m", "venv"]:
                    (venv / _MARK).touch()
                if code != 0:
                    raise RuntimeError(f"installing label-studio=={version} into {venv} failed "
                                       f"({code}); {log}:\n{_tail(log)}")
        _stamp(venv).write_text(json.dumps({"label-studio": version,
                                            "seconds": round(time.monotonic() - t0, 1)}))
        return venv


def server_env(data_dir: Path, document_root: Path) -> dict:
    """The whole environment of a server process (nothing else is inherited, see module doc)."""
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env.update(
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USERNAME=EMAIL,
        LABEL_STUDIO_PASSWORD=PASSWORD,
        LABEL_STUDIO_USER_TOKEN=API_KEY,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(document_root),
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
    )
    return env


def _http_status(url: str, headers: dict | None = None) -> int | None:
    """HTTP status of a GET (``None`` when nothing answers)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class LabelStudioServer:
    """One Label Studio process on ``127.0.0.1:port`` over ``data_dir``.

    ``url`` (``http://127.0.0.1:<port>``), ``api_key`` (the preset legacy token; header
    ``Authorization: Token <api_key>``), ``email``/``password`` (the admin, for the UI),
    ``document_root`` (parent of every file served as ``/data/local-files/?d=<relative path>``),
    ``log`` (server output, appended across restarts), ``pid`` while running,
    ``ready_seconds`` of the last start, ``last_exit`` the return code of the last stop
    (``-15``: it exited on SIGTERM, ``-9``: it had to be killed). A context manager: stops on exit; an ``atexit`` hook
    also stops it.
    """
    data_dir: Path
    document_root: Path
    log: Path
    venv: Path
    port: int
    timeout: float = 300.0
    port_wait: float = 30.0
    api_key: str = API_KEY
    email: str = EMAIL
    password: str = PASSWORD
    ready_seconds: float | None = None
    last_exit: int | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _atexit: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "LabelStudioServer":
        """Start the server and wait (up to ``timeout`` s) until ``/health/`` answers 200 on
        *our* port and the preset token is accepted. Raises ``RuntimeError`` with the log tail
        otherwise (and stops what it started). A port still busy (e.g. just after ``stop``) is
        waited for up to ``port_wait`` s, then refused (``RuntimeError``) rather than letting the
        server move elsewhere."""
        if self.running:
            return self
        deadline = time.monotonic() + self.port_wait
        while _port_busy(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} is busy; Label Studio would silently move "
                                   "to another one")
            time.sleep(0.5)
        self.document_root.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with open(self.log, "ab") as out:
            offset = out.tell()
            out.write(f"\n===== vislint: start on port {self.port} =====\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                [str(self.venv / "bin" / "label-studio"), "start", "--no-browser",
                 "--internal-host", HOST, "--port", str(self.port), "--enable-legacy-api-token"],
                env=server_env(self.data_dir, self.document_root), cwd=str(self.data_dir.parent),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the whole tree
            )
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        banner = f"at http://{HOST}:{self.port}/".encode()
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(f"label-studio exited with {code}; {self.log}:\n"
                                   f"{_tail(self.log)}")
            with open(self.log, "rb") as f:
                f.seek(offset)
                out = f.read()
            started = banner in out
            if b" is in use." in out:  # someone took the port after our check: it moved on
                self.stop()
                raise RuntimeError(f"port {self.port} was taken while Label Studio started (it "
                                   f"moved to another port); {self.log}:\n{_tail(self.log)}")
            if started and _http_status(self.url + "/health/") == 200:
                break
            if time.monotonic() - t0 > self.timeout:
                self.stop()
                raise RuntimeError(f"Label Studio not ready on {self.url} after {self.timeout} s;"
                                   f" {self.log}:\n{_tail(self.log)}")
            time.sleep(0.5)
        self.ready_seconds = time.monotonic() - t0
        status = _http_status(self.url + "/api/current-user/whoami",
                              {"Authorization": f"Token {self.api_key}"})
        if status != 200:
            self.stop()
            raise RuntimeError(f"the preset API token gets HTTP {status} on {self.url} (data dir "
                               f"{self.data_dir} not created with legacy tokens enabled?)")
        return self

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` s; wait for the exit.

        ``stop(grace=0)`` is a crash (SIGKILL at once): nothing is shut down cleanly. Label
        Studio exited on SIGTERM at once (< 0.1 s) here."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # stragglers of the group (none seen), then reap
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.last_exit = proc.wait()

    def restart(self) -> "LabelStudioServer":
        """Stop, then start again on the same data dir, document root and port."""
        self.stop()
        return self.start()

    def __enter__(self) -> "LabelStudioServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def template_data_dir(venv: str | os.PathLike | None = None, timeout: float = 600.0) -> Path:
    """A migrated data dir with the preset admin and legacy token, built once per venv.

    Lives at ``<venv>/vislint-template-data``; a JSON stamp records the version and credentials
    it was built with, and a stale or partial one is rebuilt (first start with migrations:
    ~60 s here). Copy it, never start a server on it.
    """
    venv = ensure_server_venv(venv)
    target = venv / "vislint-template-data"
    stamp = venv / "vislint-template.json"
    want = {"label-studio": installed_version(venv), "email": EMAIL, "api_key": API_KEY}
    with _locked(venv.parent / (venv.name + ".lock")):
        try:
            if json.loads(stamp.read_text()) == want and target.is_dir():
                return target
        except (OSError, ValueError):
            pass
        shutil.rmtree(target, ignore_errors=True)
        build = Path(tempfile.mkdtemp(prefix="ls-template-", dir=venv))
        data = build / "data"
        server = LabelStudioServer(data_dir=data, document_root=build / "files",
                                   log=build / "label-studio.log", venv=venv, port=free_port(),
                                   timeout=timeout)
        try:
            with server:
                pass
            (data / "label-studio.log").unlink(missing_ok=True)
            data.rename(target)
        finally:
            shutil.rmtree(build, ignore_errors=True)
        stamp.write_text(json.dumps(want))
        return target


def start_label_studio(workdir: str | os.PathLike, document_root: str | os.PathLike,
                       port: int | None = None, venv: str | os.PathLike | None = None,
                       timeout: float = 300.0, port_wait: float = 30.0) -> LabelStudioServer:
    """Start Label Studio for tests and return the running :class:`LabelStudioServer`.

    The data dir is ``workdir/data``: reused if present (a server stopped earlier), else copied
    from :func:`template_data_dir` (which installs the server venv first when missing). The log
    is ``workdir/label-studio.log``. ``port=None`` picks a free one; a busy ``port`` is waited
    for ``port_wait`` s, then refused. ``timeout``: seconds to get ready. Usable as a context
    manager (``with start_label_studio(...) as ls:``), which stops it on exit.
    """
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    venv = ensure_server_venv(venv)
    data = workdir / "data"
    if not data.exists():
        shutil.copytree(template_data_dir(venv), data)
    server = LabelStudioServer(data_dir=data, document_root=Path(document_root).absolute(),
                               log=workdir / "label-studio.log", venv=venv,
                               port=port or free_port(), timeout=timeout, port_wait=port_wait)
    return server.start()


# Every <img> (or those matching a selector) with its decoded size (0 until decoded).
_IMAGES = """(sel) => Array.from(document.querySelectorAll(sel)).map(i => ({
  src: i.currentSrc, alt: i.alt, width: i.complete ? i.naturalWidth : 0,
  height: i.complete ? i.naturalHeight : 0}))"""


def log_in(page, base_url: str, login: tuple[str, str] = (EMAIL, PASSWORD),
           timeout: float = 60.0) -> None:
    """Log a Playwright ``page`` in to the Label Studio at ``base_url`` as ``login`` (email,
    password) through its form at ``/user/login/``, within ``timeout`` s; ``RuntimeError`` if
    it refuses. For tests that drive a page themselves: ``with chromium_page() as page:
    log_in(page, ls_server.url)``."""
    deadline = time.monotonic() + timeout
    left = lambda: max(1.0, deadline - time.monotonic()) * 1000  # noqa: E731
    page.goto(base_url.rstrip("/") + "/user/login/", wait_until="domcontentloaded", timeout=left())
    page.fill("#email", login[0], timeout=left())
    page.fill("#password", login[1], timeout=left())
    with page.expect_navigation(wait_until="domcontentloaded", timeout=left()):
        page.click("button[type=submit]", timeout=left())
    if "/user/login" in page.url:
        raise RuntimeError(f"login as {login[0]} failed; page says:\n"
                           f"{page.inner_text('body')[:1000]}")


def open_in_browser(url: str, screenshot_path: str | os.PathLike,
                    login: tuple[str, str] | None = (EMAIL, PASSWORD), min_images: int = 1,
                    image_selector: str = "img", wait_for_text: str | None = None,
                    timeout: float = 120.0, settle: float = 1.5,
                    viewport: tuple[int, int] = (1400, 900)) -> dict:
    """Open ``url`` in headless Debian chromium, logged in as ``login`` (email, password).

    Logs in through the form at ``/user/login/`` of the same server (``RuntimeError`` if it
    refuses), opens ``url`` and waits (``timeout`` s in all) until at least ``min_images``
    elements matching ``image_selector`` are decoded (naturalWidth > 0) and, if given,
    ``wait_for_text`` is in the page text; waits ``settle`` s more and saves a PNG of the
    viewport to ``screenshot_path``. On timeout it saves the screenshot anyway and raises
    ``TimeoutError`` with the images and the visible text.

    On a task page (``/projects/<id>/data?task=<task id>``), Label Studio 1.23.2 shows the Data
    Manager list on the left with one thumbnail ``<img alt="Data">`` per task (the task URL
    itself, in ``.lsf-table__cell``) and the labeling editor on the right, whose image is an
    ``<img alt="<Image tag name>">`` inside ``.lsf-image`` with a ``blob:`` source (fetched, then
    shown). So ``image_selector=".lsf-image img"`` waits for the editor's image. Avatars are
    ``<img>`` elements that never decode.

    Returns ``{"text": visible text, "images": number of <img>, "images_loaded": those with
    naturalWidth > 0, "image_list": [{"src", "alt", "width", "height"} for every <img>],
    "selected_loaded": decoded elements matching image_selector, "url": final URL,
    "screenshot": Path, "seconds": wall time}``. Needs only the PyPI ``playwright`` package;
    never ``playwright install``. A fresh profile lives in a temporary directory.
    """
    from playwright.sync_api import Error as PlaywrightError

    screenshot_path = Path(screenshot_path)
    screenshot_path.parent.mkdir(parents=True, exist_ok=True)
    parts = urllib.parse.urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    t0 = time.monotonic()
    left = lambda: max(1.0, timeout - (time.monotonic() - t0)) * 1000  # noqa: E731
    with chromium_page(viewport) as page:
        try:
            if login:
                log_in(page, base, login, timeout=left() / 1000)
            page.goto(url, wait_until="domcontentloaded", timeout=left())
            page.wait_for_function(
                """([sel, n, text]) => Array.from(document.querySelectorAll(sel)).filter(
                       i => i.complete && i.naturalWidth > 0).length >= n
                     && (!text || document.body.innerText.includes(text))""",
                arg=[image_selector, int(min_images), wait_for_text or ""], timeout=left())
        except PlaywrightError as e:
            page.screenshot(path=str(screenshot_path))
            raise TimeoutError(
                f"{url}: not ready within {timeout} s ({e.message.splitlines()[0]}); "
                f"images {page.evaluate(_IMAGES, 'img')}; screenshot {screenshot_path}; "
                f"visible text:\n{page.inner_text('body')[:2000]}") from None
        page.wait_for_timeout(settle * 1000)
        page.screenshot(path=str(screenshot_path))
        images = page.evaluate(_IMAGES, "img")
        selected = page.evaluate(_IMAGES, image_selector)
        return {"text": page.inner_text("body"), "images": len(images),
                "images_loaded": sum(i["width"] > 0 for i in images),
                "image_list": images,
                "selected_loaded": [i for i in selected if i["width"] > 0],
                "url": page.url, "screenshot": screenshot_path,
                "seconds": time.monotonic() - t0}


def main(argv: list[str]) -> int:
    """``install``: make sure the server venv and the template data dir exist; print them."""
    if argv[1:] != ["install"]:
        print(f"usage: {argv[0]} install   (venv: $LS_VENV or {default_venv()})", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    venv = ensure_server_venv()
    t1 = time.monotonic()
    template = template_data_dir(venv)
    print(f"label-studio {installed_version(venv)} in {venv} ({t1 - t0:.0f} s); "
          f"template data dir {template} ({time.monotonic() - t1:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

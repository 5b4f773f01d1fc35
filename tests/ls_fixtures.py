"""Pytest fixtures for tests against a real Label Studio server (see ``ls_services``).

A conftest enables them with ``from ls_fixtures import *``; a test module may also import them
directly (one server per session either way).

* ``ls_server`` (session): a running :class:`ls_services.LabelStudioServer` on 127.0.0.1, its
  data copied from the migrated template. Skips when ``label_studio_sdk`` is not importable;
  otherwise installs the server venv first if it is missing (~3.5 min, up to 30 min allowed) --
  an install failure is an error, not a skip. A test that stops it must start it again
  (``restart()``, or ``stop()`` then ``start()``). ``ls_server.document_root`` is a session
  temp dir: write images into a *subdirectory* of it (Label Studio refuses a local-files storage
  whose path is the document root itself), create the project's local-files import storage on
  that subdirectory, and use ``/data/local-files/?d=<path relative to document_root>`` URLs.
* ``ls_client`` (session): ``label_studio_sdk.LabelStudio`` for that server (legacy token).
"""
from __future__ import annotations

import importlib.util

import pytest

from ls_services import LabelStudioServer, start_label_studio

__all__ = ["ls_server", "ls_client"]

_SERVER: LabelStudioServer | None = None  # one per process, even if imported in two modules


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory) -> LabelStudioServer:
    global _SERVER
    if importlib.util.find_spec("label_studio_sdk") is None:
        pytest.skip("label-studio-sdk is not installed (pip install label-studio-sdk)")
    if _SERVER is None:
        _SERVER = start_label_studio(tmp_path_factory.mktemp("ls-server"),
                                     tmp_path_factory.mktemp("ls-files"))
    yield _SERVER
    _SERVER.stop()  # also registered with atexit


@pytest.fixture(scope="session")
def ls_client(ls_server):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=ls_server.url, api_key=ls_server.api_key)

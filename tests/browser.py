"""Headless Debian chromium through Playwright, for the tests that look at a page.

Needs only the PyPI ``playwright`` package (its driver); never ``playwright install`` — the
browser is Debian's ``/usr/bin/chromium`` (``apt-get install chromium``).
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1400, 900)):
    """A Playwright page of a fresh headless chromium (profile in a temporary directory,
    ``viewport`` in CSS pixels); the browser is closed on exit."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": viewport[0], "height": viewport[1]})
        try:
            yield ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()

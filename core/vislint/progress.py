"""Progress bars for the stages of a scan, each with its rate and a time estimate (tqdm, on
stderr): decoding (:func:`vislint.decode.describe_all`), the copy space's kNN graph and the
checks — at a million images the last two take minutes each, and a user must see them move.
"""
from __future__ import annotations

from contextlib import contextmanager

MIN_INTERVAL = 0.5
"""Seconds between two redraws of a bar."""


class Bar:
    """A stage's bar: ``bar(k)`` advances it by ``k`` units; ``bar.note(text)`` says what it is
    doing now (e.g. which check runs). Without a terminal bar (progress off) both do nothing."""

    def __init__(self, name: str, total: int, unit: str, shown: bool):
        self._bar = None
        if shown:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, desc=name, dynamic_ncols=True,
                             mininterval=MIN_INTERVAL)

    def __call__(self, k: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(k)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def stage(progress, name: str, total: int, unit: str = "img"):
    """Yield the :class:`Bar` of stage ``name`` (``total`` units), shown when ``progress`` is
    True (a callable ``progress`` follows decoding only, see :func:`vislint.scan`)."""
    bar = Bar(name, total, unit, shown=progress is True)
    try:
        yield bar
    finally:
        bar.close()

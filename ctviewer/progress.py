"""Progress reporting and cancellation for long work, with no knowledge of any GUI.

Core functions that take a while accept ``progress`` (a callable taking a fraction in [0, 1]
and an optional message) and ``cancel`` (a :class:`CancelToken`). The GUI's workers pass
callables that emit signals; the CLI passes a text bar; tests pass nothing.
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol

from ctviewer.errors import Cancelled


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> None: ...


def no_progress(fraction: float, message: str = "") -> None:
    """The default progress callable: report nothing."""


class CancelToken:
    """A flag set by whoever started the work and checked by the work between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def step_progress(progress: Progress | None, cancel: CancelToken | None, total: int,
                  message: str = "") -> Callable[[int], None]:
    """Return ``tick(i)`` that reports ``i/total`` and raises :class:`Cancelled` when asked to stop."""
    progress = progress or no_progress

    def tick(i: int) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(min(1.0, i / max(total, 1)), message)

    return tick


def checked_progress(progress: Progress | None, cancel: CancelToken | None) -> Progress:
    """``progress`` that first raises :class:`Cancelled` when asked to stop: one call per step of a
    long computation both reports it and checks the cancel token."""
    progress = progress or no_progress

    def step(fraction: float, message: str = "") -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(fraction, message)

    return step


def sub_progress(progress: Progress | None, start: float, end: float) -> Progress:
    """``progress`` for one part of a longer job: its 0..1 reported as ``start``..``end`` of the whole."""
    progress = progress or no_progress

    def part(fraction: float, message: str = "") -> None:
        progress(start + (end - start) * fraction, message)

    return part

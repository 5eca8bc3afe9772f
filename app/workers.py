"""The one way to run work off the GUI thread.

Core functions take ``progress`` and ``cancel`` keyword arguments and know nothing of Qt
(``ctviewer.progress``). :func:`run_worker` runs such a function on Qt's thread pool and
delivers ``started``, ``progress(fraction, message)``, ``result(value)``, ``error(exc)``,
``cancelled()`` and ``finished()`` as signals, which Qt queues to the GUI thread. Cancel is a
flag the work checks between steps (:class:`ctviewer.progress.CancelToken`).

Every worker's error goes somewhere the user sees it: if the caller gives no ``on_error``,
the error is logged and sent to :data:`WORKER_ERRORS` (the main window shows it in the status
bar).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ctviewer.errors import Cancelled
from ctviewer.progress import CancelToken

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    started = Signal()
    progress = Signal(float, str)
    result = Signal(object)
    error = Signal(object)
    cancelled = Signal()
    finished = Signal()


class _ErrorHub(QObject):
    """Where errors of workers without their own error handler end up."""

    error = Signal(str)


WORKER_ERRORS = _ErrorHub()

# Workers alive now; a Python reference keeps their signals object from being collected
# before the queued signals reach the GUI thread.
_RUNNING: set["Worker"] = set()


class Worker(QRunnable):
    """Runs ``fn(*args, progress=..., cancel=..., **kwargs)`` on a pool thread."""

    def __init__(self, fn: Callable[..., Any], *args, **kwargs):
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = WorkerSignals()
        self.token = CancelToken()
        self.done = False
        # Convenience aliases so callers can write worker.finished.connect(...).
        self.started, self.progress, self.result = self.signals.started, self.signals.progress, self.signals.result
        self.error, self.cancelled, self.finished = self.signals.error, self.signals.cancelled, self.signals.finished
        self.signals.finished.connect(self._forget)

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def is_cancelled(self) -> bool:
        return self.token.cancelled

    def _report(self, fraction: float, message: str = "") -> None:
        self.token.raise_if_cancelled()
        self.signals.progress.emit(float(fraction), str(message))

    def run(self) -> None:  # runs on the pool thread: never touch widgets here
        self.signals.started.emit()
        try:
            value = self.fn(*self.args, progress=self._report, cancel=self.token, **self.kwargs)
        except Cancelled:
            self.signals.cancelled.emit()
        except Exception as exc:  # delivered to the GUI thread, shown to the user
            exc.traceback_text = traceback.format_exc()  # type: ignore[attr-defined]
            self.signals.error.emit(exc)
        else:
            if self.token.cancelled:
                self.signals.cancelled.emit()
            else:
                self.signals.result.emit(value)
        finally:
            self.done = True
            self.signals.finished.emit()

    def _forget(self) -> None:
        _RUNNING.discard(self)


def _default_error_handler(exc: Exception) -> None:
    log.error("background work failed: %s\n%s", exc, getattr(exc, "traceback_text", ""))
    WORKER_ERRORS.error.emit(f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc))


def run_worker(fn: Callable[..., Any], *args, on_result: Callable | None = None,
               on_error: Callable | None = None, on_progress: Callable | None = None,
               on_finished: Callable | None = None, pool: QThreadPool | None = None,
               **kwargs) -> Worker:
    """Start ``fn`` on the thread pool and return its :class:`Worker` (cancel with ``.cancel()``)."""
    worker = Worker(fn, *args, **kwargs)
    if on_result is not None:
        worker.signals.result.connect(on_result)
    worker.signals.error.connect(on_error or _default_error_handler)
    if on_progress is not None:
        worker.signals.progress.connect(on_progress)
    if on_finished is not None:
        worker.signals.finished.connect(on_finished)
    _RUNNING.add(worker)
    (pool or QThreadPool.globalInstance()).start(worker)
    return worker


def wait_for_workers(timeout_ms: int = 10000) -> bool:
    """Block until all pool work is done (shutdown and tests only; never from a slot)."""
    for w in list(_RUNNING):
        w.cancel()
    return QThreadPool.globalInstance().waitForDone(timeout_ms)

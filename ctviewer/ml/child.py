"""Keras work in a child process, for the GUI.

TensorFlow and Mesa's software OpenGL (llvmpipe: what VTK draws with under Xvfb, in virtual
machines and on many Linux desktops) each carry their own copy of LLVM. Loaded into one process
they crash it with a segmentation fault, whichever is loaded first (a 20-line script that renders a
VTK sphere and fits a one-layer Keras model dies either way round). The GUI therefore never imports
Keras: training and inference run in a *spawned* child process (a fresh interpreter, nothing
inherited), and come back through queues as the same values, progress reports and errors as a
direct call. The isolation has other gains: a crash or out-of-memory kill of the child leaves the
user's window, labels and picks alive, and TensorFlow's threads never compete with the GUI thread
for the interpreter lock.

    proc = ModelProcess()
    heatmaps = proc.call("ctviewer.ml.child:locator_heatmaps", model_path, projections)
    result = proc.call("ctviewer.ml.tasks:run_training", config, progress=..., cancel=token,
                       events={"on_batch": show_batch, "on_epoch": show_epoch, "log": print_line})

``call`` blocks, so the GUI calls it from a worker (``app/workers.py``). Cancel sets an event the
child's :class:`~ctviewer.progress.CancelToken` reads between batches.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import pickle
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ctviewer.errors import Cancelled
from ctviewer.progress import CancelToken

#: Seconds a cancelled call may take to stop between batches before the child is terminated.
CANCEL_GRACE_S = 30.0


class ModelProcessDied(RuntimeError):
    """The child stopped without an answer (crashed, killed for memory)."""


class ModelProcess:
    """One child interpreter that runs calls one at a time; started on first use, reused after."""

    def __init__(self, nice: int = 0) -> None:
        #: Niceness added in the child: a training child yields the CPU to the window on a 2-core machine.
        self.nice = int(nice)
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._lock = threading.Lock()
        self._calls = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _start(self) -> None:
        self._requests = self._ctx.Queue()
        self._replies = self._ctx.Queue()
        self._cancel = self._ctx.Event()
        self._proc = self._ctx.Process(target=_serve, args=(self._requests, self._replies, self._cancel, self.nice),
                                       name="ctviewer-models", daemon=True)
        self._proc.start()

    def call(self, target: str, *args, progress: Callable | None = None, cancel: CancelToken | None = None,
             events: dict[str, Callable] | None = None, **kwargs) -> Any:
        """Run ``module:function(*args, **kwargs)`` in the child and return its value (or raise its error).

        ``progress`` and ``cancel`` are passed on when given; each name in ``events`` becomes a keyword
        argument of the function whose calls in the child are replayed here on the caller's callable.
        """
        with self._lock:
            if not self.running:
                self._start()
            self._cancel.clear()
            self._calls += 1
            call_id = self._calls
            self._requests.put((call_id, target, args, kwargs, progress is not None, cancel is not None,
                                tuple(events or ())))
            return self._wait(call_id, progress, cancel, events or {})

    def _wait(self, call_id, progress, cancel, events) -> Any:
        cancelled_at = None
        while True:
            if cancel is not None and cancel.cancelled and cancelled_at is None:
                self._cancel.set()
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                self.close(force=True)
                raise Cancelled()
            try:
                kind, cid, *payload = self._replies.get(timeout=0.1)
            except queue.Empty:
                if not self._proc.is_alive():
                    code = self._proc.exitcode
                    self._proc = None
                    raise ModelProcessDied(f"the model process stopped unexpectedly (exit code {code}); "
                                           "your work in the window is safe") from None
                continue
            if cid != call_id:
                continue  # a late message of an earlier, abandoned call
            try:
                if kind == "progress" and progress is not None:
                    progress(*payload)
                elif kind == "event":
                    name, event_args = payload
                    events[name](*event_args)
            except Cancelled:  # the caller's progress callable says stop: ask the child, await its answer
                if cancelled_at is None:
                    self._cancel.set()
                    cancelled_at = time.monotonic()
            if kind == "result":
                return payload[0]
            elif kind == "error":
                raise pickle.loads(payload[0])

    def close(self, force: bool = False) -> None:
        if self._proc is None:
            return
        if force or not self._proc.is_alive():
            self._proc.terminate()
        else:
            self._requests.put(None)
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
        self._proc = None


class ChildError(RuntimeError):
    """An error of a kind the caller's process should not import (e.g. from a module that loads Keras).

    ``kind`` is the original class name; ``str()`` is its message; ``traceback_text`` the child's traceback.
    """

    def __init__(self, kind: str, message: str, traceback_text: str = ""):
        super().__init__(message)
        self.kind = kind
        self.traceback_text = traceback_text

    def __reduce__(self):
        return (type(self), (self.kind, str(self), self.traceback_text))


#: Modules whose exceptions cross to the caller as themselves: importing them loads no Keras.
_SAFE_ERROR_MODULES = ("builtins", "ctviewer.errors", "ctviewer.ml.training", "ctviewer.ml.child")


def _pickle_error(exc: BaseException) -> bytes:
    import traceback

    if type(exc).__module__ not in _SAFE_ERROR_MODULES:
        exc = ChildError(type(exc).__name__, str(exc), traceback.format_exc())
    try:
        return pickle.dumps(exc)
    except Exception:  # an exception that does not survive pickling: keep its kind and text
        return pickle.dumps(ChildError(type(exc).__name__, str(exc), traceback.format_exc()))


# -- the child's side ------------------------------------------------------------------------------------

def _serve(requests, replies, cancel_event, nice: int = 0) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:  # not allowed here: run at normal priority
            pass
    while True:
        request = requests.get()
        if request is None:
            return
        call_id, target, args, kwargs, wants_progress, wants_cancel, event_names = request
        token = CancelToken()
        token._event = cancel_event  # the parent's event, read between batches
        if wants_progress:
            kwargs["progress"] = lambda f, m="", _id=call_id: _report(replies, _id, token, f, m)
        if wants_cancel:
            kwargs["cancel"] = token
        for name in event_names:
            kwargs[name] = lambda *a, _id=call_id, _n=name: replies.put(("event", _id, _n, a))
        try:
            module, _, function = target.partition(":")
            value = getattr(importlib.import_module(module), function)(*args, **kwargs)
        except BaseException as exc:  # everything goes back to the caller, who decides
            replies.put(("error", call_id, _pickle_error(exc)))
        else:
            replies.put(("result", call_id, value))


def _report(replies, call_id, token, fraction, message) -> None:
    token.raise_if_cancelled()
    replies.put(("progress", call_id, float(fraction), str(message)))


_SHARED: ModelProcess | None = None


def shared_process() -> ModelProcess:
    """The child that runs inference for the whole window (models stay loaded between studies)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = ModelProcess()
    return _SHARED


def train_in_child(config, progress=None, cancel=None, on_batch=None, on_epoch=None, log=None):
    """:func:`ctviewer.ml.tasks.run_training` in a child of its own at lower priority, same arguments."""
    events = {name: fn for name, fn in (("on_batch", on_batch), ("on_epoch", on_epoch), ("log", log)) if fn}
    proc = ModelProcess(nice=10)
    try:
        return proc.call("ctviewer.ml.tasks:run_training", config, progress=progress, cancel=cancel, events=events)
    finally:
        proc.close()


# -- what the GUI runs in the child ----------------------------------------------------------------------

_LOCATORS: dict = {}


def locator_heatmaps(model_path: str, projections) -> dict:
    """Per-level heatmaps of the locator at ``model_path`` (kept loaded between calls)."""
    from ctviewer.ml.locator import Locator

    stamp = (model_path, Path(model_path).stat().st_mtime)
    if stamp not in _LOCATORS:
        _LOCATORS.clear()
        _LOCATORS[stamp] = Locator.load(model_path)
    return _LOCATORS[stamp].heatmaps(projections)


class ChildLocator:
    """A slice locator whose network runs in a :class:`ModelProcess`: what ``locate()`` needs, no Keras here.

    The card is read here (plain JSON), so levels and threshold are known before the child starts.
    """

    def __init__(self, name_or_path: str | Path | None = None, process: ModelProcess | None = None):
        from ctviewer.ml import registry

        entry = registry.find_model(name_or_path or "slice_locator", task="slice_locator")
        self.card = entry.card
        self.path = str(entry.path)
        outputs = self.card.outputs or {}
        self.levels = tuple(outputs.get("levels", ("L3", "T12")))
        self.threshold = float(outputs.get("threshold", 0.3))
        self.process = process or ModelProcess()

    @property
    def name(self) -> str:
        return self.card.name

    def heatmaps(self, projections) -> dict:
        return self.process.call("ctviewer.ml.child:locator_heatmaps", self.path, projections)

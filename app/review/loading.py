"""Studies for review, prepared in workers: read the scan, make its projections, count its vertebrae,
predict missing picks (the network's, cross-checked with the count).

:class:`StudyLoader` keeps the few studies around the current one (the one shown, the one before,
the next one prefetched so that N feels instant), cancels work for studies the user has moved away
from, and reports each study's state: waiting, loading (with progress), ready or failed (the reason).
The locator model is loaded once, on the first study that needs a prediction, and runs one study at a
time (a Keras model is not shared between threads).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.workers import Worker, run_worker
from ctviewer.errors import InputError
from ctviewer.progress import sub_progress


@dataclass
class LoadedStudy:
    exam_id: str
    volume: object            # ctviewer.data.volume.Volume, canonical orientation
    projections: object       # ctviewer.workflows.slice_locator.projections.Projections
    #: Picks the locator made for levels the CSV had none for (to be recorded by the window).
    predicted: list = field(default_factory=list)
    #: Why nothing was predicted, when that is worth telling (no model shipped, ...).
    note: str = ""
    #: The vertebra count (SpineCount, or None where it failed): drawn as ticks, it cross-checks the picks.
    spine: object | None = None
    #: level -> why the predicted pick is what it is (from the count, levels disagree), for the audit.
    notes: dict = field(default_factory=dict)
    #: The count's failure, where it failed (the picks are then the network's alone).
    warnings: list = field(default_factory=list)


#: The shipped locator's name (``ctviewer.ml.locator.SHIPPED_NAME``; importing that module loads Keras).
SHIPPED_LOCATOR = "slice_locator"


class LocatorHolder:
    """Loads the locator once, on first use, and runs it for one study at a time.

    ``locator`` gives one already loaded (anything :func:`locate` accepts); otherwise the model named
    ``name`` (default: the shipped one) is found first, so that without a model no Keras is loaded.
    """

    def __init__(self, name: str | None = None, levels=("L3", "T12"), locator=None):
        self.name, self.levels = name, tuple(levels)
        self._lock = threading.Lock()
        self._locator = locator
        self._error: Exception | None = None

    def _load(self, progress) -> None:
        from ctviewer.ml.registry import find_model

        try:
            entry = find_model(self.name or SHIPPED_LOCATOR, task="slice_locator")
            if progress:
                progress(0.0, f"loading the model {entry.name}")
            # The network runs in the model process (TensorFlow and VTK's OpenGL crash one process).
            from ctviewer.ml.child import ChildLocator, shared_process

            self._locator = ChildLocator(entry.path, process=shared_process())
        except InputError as exc:   # no model, or one of another task: the user places the levels by hand
            self._error = exc

    def locate(self, volume, projections, exam_id: str, spine, progress=None, cancel=None) -> tuple[list, dict]:
        """The network's picks for the levels it has a channel for, combined with the count ``spine``
        (levels it has none for come from the count); (picks, notes)."""
        from ctviewer.workflows.slice_locator.combine import combine
        from ctviewer.workflows.slice_locator.locate import locate

        with self._lock:
            if self._locator is None and self._error is None:
                self._load(progress)
            if self._error is not None:
                raise self._error
            own = [lv for lv in self.levels if lv in tuple(self._locator.levels)]
            network = {p.level: p for p in (locate(volume, self._locator, levels=own, exam_id=exam_id,
                                                   projections=projections, progress=progress, cancel=cancel)
                                            if own else [])}
        combined = combine(network, spine, self.levels, exam_id, projections)
        return [c.pick for c in combined], {c.pick.level: c.note for c in combined if c.note}


def _part(progress, lo: float, hi: float):
    """Report a sub-step's fraction as a part [lo, hi] of the whole (None stays None)."""
    return None if progress is None else sub_progress(progress, lo, hi)


#: Studies are read one at a time, so the one asked for first (the current study) is not slowed down
#: by the prefetch of the next on a two-core machine.
_READING = threading.Lock()


def _wait_for_reading(cancel) -> None:
    """Take :data:`_READING`, giving up when the study is no longer wanted while waiting."""
    while not _READING.acquire(timeout=0.05):
        if cancel is not None:
            cancel.raise_if_cancelled()


def prepare_study(exam_id: str, path: Path, holder: LocatorHolder | None, progress=None, cancel=None) -> LoadedStudy:
    """Read one study, make its projections, count its vertebrae and (when ``holder``) predict its
    picks; runs in a worker (the count too: ~0.4 s for a 512×512×400 scan, never on the GUI thread)."""
    from ctviewer.workflows.slice_locator.locate import count_spine, read_ct
    from ctviewer.workflows.slice_locator.projections import make_projections

    _wait_for_reading(cancel)
    try:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:   # the clock of the time left starts here, not while waiting for the reader
            progress(0.0, "reading the study")
        volume = read_ct(path, progress=_part(progress, 0.0, 0.55), cancel=cancel)
        projections = make_projections(volume, progress=_part(progress, 0.55, 0.75), cancel=cancel)
        if progress is not None:
            progress(0.75, "counting the vertebrae")
        loaded = LoadedStudy(exam_id, volume, projections)
        loaded.spine = count_spine(volume, loaded.warnings, cancel)
    finally:
        _READING.release()
    if holder is not None:
        try:
            loaded.predicted, loaded.notes = holder.locate(volume, projections, exam_id, loaded.spine,
                                                           progress=_part(progress, 0.8, 1.0), cancel=cancel)
        except InputError as exc:   # no model: the count alone places the levels it names
            from ctviewer.workflows.slice_locator.combine import combine

            combined = combine({}, loaded.spine, holder.levels, exam_id, projections)
            loaded.predicted = [c.pick for c in combined if c.pick.in_scan]
            loaded.notes = {c.pick.level: c.note for c in combined if c.note}
            loaded.note = f"not predicted by a model: {exc}" + ("; levels from the spine count"
                                                                if loaded.predicted else "")
    if progress is not None:
        progress(1.0, "ready")
    return loaded


class TimeLeft:
    """How long one study's preparation has left, from how far it got in how long.

    A straight line through the start: the steps' fractions are weighted by their usual share of the
    time (reading ~55 %, projections ~20 %, the count and the network the rest), so the estimate is
    rough early on and good past a quarter. ``clock`` is for tests.
    """

    #: No estimate before this fraction or this many seconds: the first slices say little.
    MIN_FRACTION, MIN_SECONDS = 0.02, 0.3

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.start: float | None = None
        self.fraction = 0.0
        self.message = ""

    def update(self, fraction: float, message: str = "") -> None:
        if self.start is None:
            self.start = self.clock()
        self.fraction = min(1.0, max(self.fraction, float(fraction)))   # a bar never runs backwards
        if message:
            self.message = message

    def seconds_left(self) -> float | None:
        """Seconds left, or None while there is too little to go on."""
        if self.start is None:
            return None
        elapsed = self.clock() - self.start
        if self.fraction >= 1.0:
            return 0.0
        if self.fraction < self.MIN_FRACTION or elapsed < self.MIN_SECONDS:
            return None
        return elapsed * (1.0 - self.fraction) / self.fraction

    def text(self) -> str:
        """``reading DICOM slices — about 40 s left`` (the step, then the time left in words)."""
        left = time_left_text(self.seconds_left())
        return f"{self.message} — {left}" if self.message else left


def time_left_text(seconds: float | None) -> str:
    if seconds is None:
        return "estimating the time left…"
    if seconds < 10:
        return "a few seconds left"
    if seconds < 60:
        return f"about {int(round(seconds / 5.0)) * 5} s left"
    minutes, rest = divmod(int(round(seconds / 10.0)) * 10, 60)
    return f"about {minutes} min {rest:02d} s left" if rest else f"about {minutes} min left"


class StudyLoader(QObject):
    """Prepares studies in workers and keeps the ones near the current study."""

    loaded = Signal(str, object)          # exam_id, LoadedStudy
    failed = Signal(str, str)             # exam_id, the reason in one line
    progress = Signal(str, float, str)    # exam_id, fraction, message

    def __init__(self, holder: LocatorHolder | None, parent=None):
        super().__init__(parent)
        self.holder = holder
        self.cache: dict[str, LoadedStudy] = {}
        self.errors: dict[str, str] = {}
        self.running: dict[str, Worker] = {}
        self._closed = False

    def get(self, exam_id: str) -> LoadedStudy | None:
        return self.cache.get(exam_id)

    def is_loading(self, exam_id: str) -> bool:
        return exam_id in self.running

    def request(self, exam_id: str, path: Path | None, predict: bool) -> bool:
        """Start preparing ``exam_id`` unless it is ready, failed or already on its way (True: started)."""
        if self._closed or exam_id in self.cache or exam_id in self.errors or exam_id in self.running:
            return False
        if path is None:
            self._failed(exam_id, "no path for this study (not in the CSV's studies list)")
            return False
        self.running[exam_id] = run_worker(
            prepare_study, exam_id, Path(path), self.holder if predict else None,
            on_result=lambda loaded, e=exam_id: self._done(e, loaded),
            on_error=lambda exc, e=exam_id: self._failed(e, _one_line(exc)),
            on_progress=lambda f, m, e=exam_id: self._progress(e, f, m),
            on_finished=lambda e=exam_id: self._finished(e))
        return True

    def keep_only(self, exam_ids) -> None:
        """Forget studies outside ``exam_ids`` and cancel their work (memory: scans are big)."""
        keep = set(exam_ids)
        for exam in [e for e in self.cache if e not in keep]:
            del self.cache[exam]
        for exam, worker in self.running.items():
            if exam not in keep:
                worker.cancel()

    def forget_error(self, exam_id: str) -> None:
        self.errors.pop(exam_id, None)

    def close(self) -> None:
        self._closed = True
        for worker in self.running.values():
            worker.cancel()
        self.cache.clear()

    # -- worker callbacks (GUI thread) -----------------------------------------------------------
    def _done(self, exam_id: str, loaded: LoadedStudy) -> None:
        if not self._closed:
            self.cache[exam_id] = loaded
            self.loaded.emit(exam_id, loaded)

    def _failed(self, exam_id: str, reason: str) -> None:
        if not self._closed:
            self.errors[exam_id] = reason
            self.failed.emit(exam_id, reason)

    def _progress(self, exam_id: str, fraction: float, message: str) -> None:
        if not self._closed:
            self.progress.emit(exam_id, fraction, message)

    def _finished(self, exam_id: str) -> None:
        self.running.pop(exam_id, None)


def _one_line(exc: BaseException) -> str:
    # the queue row names the study: the reason is enough (the path is in the row's tooltip)
    text = exc.reason if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__

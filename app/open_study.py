"""Opening studies off the GUI thread: examine, let the user pick a series, load, add label maps."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.workers import Worker, run_worker
from ctviewer.data.layers import LabelLayer
from ctviewer.data.study import Study
from ctviewer.errors import InputError
from ctviewer.io.registry import Loadable, examine
from ctviewer.workflows.open import attach_found_labels, load_labels_for, open_loadable


class StudyOpener(QObject):
    """Runs every step of opening in workers and reports back with signals."""

    opened = Signal(object)        # Study
    failed = Signal(str)           # one line for the user
    progress = Signal(float, str)
    busy = Signal(bool)
    #: (descriptions, reply): the window asks the user and calls reply(index or None).
    choose_series = Signal(list, object)
    labels_added = Signal(object)  # LabelLayer
    #: (path, reply): a label image is in colour; the window asks whether to map colours to ids
    #: and calls reply(True/False)
    ask_map_colours = Signal(object, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker: Worker | None = None
        #: Take the first (largest) series without asking (tests, scripted use).
        self.auto_choose = False

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _run(self, fn, *args, on_result, **kwargs) -> None:
        self.cancel()
        self.busy.emit(True)
        self.worker = run_worker(fn, *args, on_result=on_result, on_error=self._error,
                                 on_progress=self.progress.emit, on_finished=lambda: self.busy.emit(False),
                                 **kwargs)

    def _error(self, exc: Exception) -> None:
        self.failed.emit(str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}")

    # -- images ------------------------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> None:
        if not paths:
            return
        image_path, label_paths = paths[0], paths[1:]
        self._run(_examine, image_path, on_result=lambda items: self._examined(items, label_paths))

    def _examined(self, items: list[Loadable], label_paths: list[Path]) -> None:
        if len(items) == 1 or self.auto_choose:
            self._load(items[0], label_paths)
            return

        def reply(index):
            if index is not None:
                self._load(items[index], label_paths)

        self.choose_series.emit([it.description for it in items], reply)

    def _load(self, item: Loadable, label_paths: list[Path]) -> None:
        self._run(_load_study, item, label_paths, on_result=self.opened.emit)

    def open_demo(self) -> None:
        self._run(_open_demo, on_result=self.opened.emit)

    def open_demo_soil(self) -> None:
        self._run(_open_demo_soil, on_result=self.opened.emit)

    def make_demo_thin_sections(self, on_folder) -> None:
        """The demo thin-section project folder (made on first use) to ``on_folder(path)``: a folder, not a study."""
        self._run(_demo_thin_section_dir, on_result=on_folder)

    # -- label maps --------------------------------------------------------------------------
    def add_labels(self, study: Study, path: Path, map_colours: bool = False) -> None:
        def added(layer: LabelLayer) -> None:
            study.layers.append(layer)
            for warning in getattr(layer.labels, "warnings", []):
                self.failed.emit(warning)
            self.labels_added.emit(layer)

        def failed(exc: Exception) -> None:
            from ctviewer.io.label_files import ColourLabelsError

            if isinstance(exc, ColourLabelsError) and not map_colours:
                self.ask_map_colours.emit(path, lambda yes: yes and self.add_labels(study, path, True))
            else:
                self._error(exc)

        self.cancel()
        self.busy.emit(True)
        self.worker = run_worker(_read_labels, study, path, map_colours, on_result=added, on_error=failed,
                                 on_progress=self.progress.emit, on_finished=lambda: self.busy.emit(False))


# Work functions: run on pool threads, touch no widgets.
def _examine(path: Path, progress=None, cancel=None) -> list[Loadable]:
    if progress:
        progress(0.0, f"Reading {path.name}")
    return examine(path)


def _load_study(item: Loadable, label_paths: list[Path], progress=None, cancel=None) -> Study:
    study = open_loadable(item, progress=progress, cancel=cancel)
    for path in label_paths:
        study.layers.append(load_labels_for(study, path))
    if not label_paths:
        attach_found_labels(study, item.path)
    return study


def _read_labels(study: Study, path: Path, map_colours: bool, progress=None, cancel=None) -> LabelLayer:
    return load_labels_for(study, path, map_colours=map_colours)


def _open_demo(progress=None, cancel=None) -> Study:
    from ctviewer.workflows.open import open_demo

    return open_demo(progress=progress, cancel=cancel)


def _open_demo_soil(progress=None, cancel=None) -> Study:
    from ctviewer.workflows.open import open_demo_soil

    return open_demo_soil(progress=progress, cancel=cancel)


def _demo_thin_section_dir(progress=None, cancel=None) -> Path:
    from ctviewer.synth.demo import demo_thin_section_dir

    return demo_thin_section_dir(progress=progress, cancel=cancel)

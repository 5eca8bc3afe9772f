"""Keeping the user's labels: save, save as, autosave to the recovery folder, restore after a crash.

* Saves write a copy of the labels in a worker (atomic: a temporary file renamed over the
  target); a failed save (read-only folder, full disk) says why and autosaves at once, so the
  labels stay in memory and in the recovery folder.
* Autosave: every edit is noted; ``interval_s`` seconds after the first unsaved edit (30 s by
  default, ``CTVIEWER_AUTOSAVE_S`` overrides) the changed slices are copied on the GUI thread
  (cheap: only chunks a stroke touched) and written by a worker.
* Opening an image that has an autosave offers it back (``ask_restore``; tests replace it).
* A layer's own file is known only when it was read from a label file or saved by the user (or a
  workflow names it, as the thin-section project does). A layer made from the image (a new layer,
  bins, a prediction, density objects) has none: Ctrl+S asks where, proposing a sidecar name, and
  no save ever lands on a file the image was read from.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.workers import run_worker
from ctviewer.data.labels import LabelMap
from ctviewer.data.layers import LabelLayer
from ctviewer.data.study import Study
from ctviewer.errors import InputError
from ctviewer.io.label_files import format_suffix
from ctviewer.io.opened import is_image_file
from ctviewer.io.writers import LABEL_SUFFIXES, write_label_map
from ctviewer.workflows.recovery import (Autosaver, LabelRecovery, RecoveredLabels, find_recoveries,
                                         remove_leftover_files, restore)


def _save_copy(labels: LabelMap, path: Path, image, progress=None, cancel=None) -> Path:
    """Worker: write ``labels`` (a private copy) to ``path`` in the format its suffix names
    (write_label_map itself refuses the files ``image`` was read from)."""
    return write_label_map(labels, path, image=image)


class LabelKeeper(QObject):
    saved = Signal(str)          # the path written
    message = Signal(str)        # status-bar news
    error = Signal(str)          # one line for the user
    autosaved = Signal(str)      # the recovery folder written

    def __init__(self, annotator, parent=None, interval_s: float | None = None):
        super().__init__(parent)
        self.annotator = annotator
        self.study: Study | None = None
        self.paths: dict[int, Path] = {}             # id(layer) -> the file it was opened from / saved to
        self.scratch: set[int] = set()               # id(layer) of layers nobody needs to keep (helpers' views)
        self.unfiled: set[int] = set()               # id(layer) of layers made here holding labels, never saved
        #: where Save As proposes to put a layer that has no file yet; a workflow may know better
        #: (the thin-section project's label folder). (layer) -> Path, or None for the usual sidecar name
        self.propose_path = lambda layer: None
        self._recoveries: dict[int, LabelRecovery] = {}
        self._table_slots: dict[int, object] = {}
        if interval_s is None:
            interval_s = float(os.environ.get("CTVIEWER_AUTOSAVE_S", "30"))
        self.autosaver = Autosaver(interval_s)
        self._writing = 0
        self._timer = QTimer(self, interval=max(50, min(1000, int(interval_s * 500))))
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        annotator.layer_edited.connect(self._on_edited)
        #: replaced by tests: (entries) -> True to restore
        self.ask_restore = lambda entries: False
        remove_leftover_files()   # temporary files of autosaves killed mid-write

    # -- study -----------------------------------------------------------------------------------
    def set_study(self, study: Study | None) -> None:
        if self.study is not None:
            self.study.layers.events.inserted.disconnect(self._on_inserted)
            self.study.layers.events.removed.disconnect(self._on_removed)
            for layer in self.study.layers.by_kind("labels"):
                self._forget(layer)
        self.study = study
        self.paths.clear()
        self.scratch.clear()
        self.unfiled.clear()
        self._recoveries.clear()
        self.autosaver.saved()
        if study is None:
            return
        study.layers.events.inserted.connect(self._on_inserted)
        study.layers.events.removed.connect(self._on_removed)
        for layer in study.layers.by_kind("labels"):
            self._track(layer)
        self.offer_recovery()

    def _on_inserted(self, index: int, layer) -> None:
        if isinstance(layer, LabelLayer):
            self._track(layer)
            if self.path_of(layer) is None and layer.array.any():   # bins, a prediction, objects: no file yet
                self.unfiled.add(id(layer))

    def _on_removed(self, index: int, layer) -> None:
        if isinstance(layer, LabelLayer):
            self._forget(layer)

    def _track(self, layer: LabelLayer) -> None:
        source = layer.labels.volume.source   # the label file it was read from; "" when made here
        if source and Path(source).is_file() and id(layer) not in self.paths \
                and not is_image_file(source, self.study.image):
            self.paths[id(layer)] = Path(source)

        def table_changed(layer=layer):
            self.recovery(layer).note_table_edit()
            self.autosaver.note_edit()

        layer.labels.table.changed.connect(table_changed)
        self._table_slots[id(layer)] = (layer.labels.table, table_changed)

    def mark_scratch(self, layer: LabelLayer) -> None:
        """``layer`` is a helper's view (the live classifier's classes), never asked about on closing."""
        self.scratch.add(id(layer))

    def _forget(self, layer: LabelLayer) -> None:
        self.scratch.discard(id(layer))
        self.unfiled.discard(id(layer))
        table, slot = self._table_slots.pop(id(layer), (None, None))
        if table is not None:
            table.changed.disconnect(slot)

    def recovery(self, layer: LabelLayer) -> LabelRecovery:
        rec = self._recoveries.get(id(layer))
        if rec is None:
            path = self.paths.get(id(layer))
            rec = LabelRecovery(self.study.image, layer.name, str(path) if path else None)
            self._recoveries[id(layer)] = rec
        return rec

    # -- autosave --------------------------------------------------------------------------------
    def _on_edited(self, layer: LabelLayer, bbox) -> None:
        if self.study is None or layer not in self.study.layers:
            return
        self.recovery(layer).note_edit(bbox)
        self.autosaver.note_edit()

    def _tick(self) -> None:
        if self.autosaver.due():
            self.autosave_now()

    def autosave_now(self) -> None:
        """Copy what changed (GUI thread, cheap) and write it in a worker."""
        self.autosaver.saved()
        if self.study is None:
            return
        for layer in self.study.layers.by_kind("labels"):
            rec = self._recoveries.get(id(layer))
            if rec is None or not rec.dirty:
                continue
            snapshot = rec.snapshot(layer.labels)
            self._writing += 1
            run_worker(LabelRecovery.write, snapshot, on_result=lambda p: self.autosaved.emit(str(p.parent)),
                       on_error=self._autosave_failed, on_finished=self._write_done)

    def _write_done(self) -> None:
        self._writing -= 1

    @property
    def busy(self) -> bool:
        return self._writing > 0

    def _autosave_failed(self, exc: Exception) -> None:
        self.autosaver.note_edit()   # the chunks were re-marked; try again next interval
        self.error.emit(f"autosave failed: {exc}")

    # -- saving ----------------------------------------------------------------------------------
    def path_of(self, layer: LabelLayer) -> Path | None:
        """The layer's own label file (Ctrl+S writes there without asking), or None: Save As."""
        path = self.paths.get(id(layer))
        if path is not None and format_suffix(path) in LABEL_SUFFIXES \
                and not is_image_file(path, self.study.image if self.study else None):
            return path
        return None

    def default_path(self, layer: LabelLayer) -> Path:
        """Where Save As proposes to put a layer that has no file yet: a sidecar of the image
        (``NAME_labels.nii.gz``, ``NAME_labels.png``, the seed layout's ``annotations_prepped_*``)."""
        from ctviewer.io.label_files import default_label_path

        image = self.study.image
        proposed = self.propose_path(layer)
        if proposed is not None:
            path = Path(proposed)
        elif image.source and Path(image.source).exists():
            path = default_label_path(Path(image.source), photo=image.is_photo)
            if format_suffix(image.source) in (".nrrd", ".nhdr"):   # a 3D Slicer user: its segmentation file
                path = path.with_name(path.name.replace(".nii.gz", ".seg.nrrd"))
            if layer is not self._first_label_layer():
                path = path.with_name(path.name.replace("_labels", f"_{_safe(layer.name)}", 1))
        else:
            path = Path.home() / (f"{_safe(layer.name)}.png" if image.is_photo else f"{_safe(layer.name)}.nii.gz")
        if is_image_file(path, image):   # an image named like a label file: never propose it
            path = path.with_name(f"{_safe(layer.name)}_{path.name}")
        return path

    def _first_label_layer(self):
        layers = self.study.layers.by_kind("labels") if self.study else []
        return layers[0] if layers else None

    def save(self, layer: LabelLayer, path: Path | str, on_done=None, wait: bool = False) -> None:
        """Write ``layer`` to ``path`` in a worker (``wait``: block until written, for closing)."""
        path = Path(path)
        image = self.study.image
        if is_image_file(path, image):
            self.error.emit(f"{path}: is the image you opened; labels are never saved over it. "
                            "Save them under another name (Labels ▸ Save labels as…).")
            if on_done is not None:
                on_done(False)
            return
        labels = LabelMap(layer.labels.volume.with_array(layer.labels.array.copy()), layer.labels.table)
        editor = self.annotator.editor_for(layer)
        count = editor.edit_count

        def done(written: Path) -> None:
            self.paths[id(layer)] = Path(written)
            self.unfiled.discard(id(layer))
            if editor.edit_count == count:
                editor.mark_saved()
            self.recovery(layer).discard(saved_to=written)
            self.saved.emit(str(written))
            self.message.emit(f"Labels saved to {written}")
            if on_done is not None:
                on_done(True)

        def failed(exc: Exception) -> None:
            reason = exc.reason if isinstance(exc, InputError) else str(exc)
            self.error.emit(f"{path}: labels not saved: {reason}. They are kept in memory and in the "
                            "recovery folder; save them somewhere else (Labels ▸ Save labels as…).")
            self.recovery(layer).note_edit(None)
            self.autosave_now()
            if on_done is not None:
                on_done(False)

        if wait:
            try:
                done(_save_copy(labels, path, image))
            except Exception as exc:  # noqa: BLE001 - every failure is told to the user
                failed(exc)
            return
        run_worker(_save_copy, labels, path, image, on_result=done, on_error=failed)

    def unsaved_layers(self) -> list[LabelLayer]:
        """Layers with edits not in a file, and layers made here (bins, a prediction, objects) that
        hold labels and were never saved."""
        if self.study is None:
            return []
        return [layer for layer in self.study.layers.by_kind("labels")
                if self.annotator.editor_for(layer).modified
                or (id(layer) in self.unfiled and id(layer) not in self.scratch)]

    def discard_all(self) -> None:
        """The user chose to throw the edits away (closing without saving)."""
        for layer in self.unsaved_layers():
            self.recovery(layer).discard()

    # -- recovery --------------------------------------------------------------------------------
    def offer_recovery(self) -> list[LabelLayer]:
        """If this image has autosaved labels, offer them; restored layers are returned."""
        try:
            entries = find_recoveries(self.study.image)
        except OSError as exc:
            self.error.emit(f"could not look for autosaved labels: {exc}")
            return []
        if not entries or not self.ask_restore(entries):
            if entries:
                self.message.emit("Autosaved labels were not restored; they stay in the recovery folder "
                                  "until this image's labels are autosaved again.")
            return []
        return [layer for entry in entries if (layer := self._restore(entry)) is not None]

    def _restore(self, entry: RecoveredLabels) -> LabelLayer | None:
        try:
            labels = restore(entry, self.study.image)
        except InputError as exc:
            self.error.emit(str(exc))
            return None
        for warning in getattr(labels, "warnings", []):
            self.error.emit(f"recovered '{entry.layer_name}': {warning}")
        old = next((lay for lay in self.study.layers.by_kind("labels") if lay.name == entry.layer_name), None)
        if old is not None:
            self.study.layers.remove(old)
        layer = LabelLayer(labels, name=entry.layer_name)
        if entry.base_path and not is_image_file(entry.base_path, self.study.image):
            self.paths[id(layer)] = Path(entry.base_path)
        self.study.layers.append(layer)
        rec = self.recovery(layer)
        rec.resume(entry)
        editor = self.annotator.editor_for(layer)
        editor.modified = True   # restored edits are not in any file yet
        self.annotator.set_layer(layer)
        self.message.emit(f"Restored '{entry.layer_name}' from the autosave of {entry.saved_at}")
        return layer


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "labels"

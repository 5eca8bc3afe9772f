"""The paint state of the window: which label layer is edited, which tool, brush settings.

The :class:`Annotator` owns one :class:`~ctviewer.editing.editor.LabelEditor` per label layer,
so each layer keeps its own undo history across slice, view and layer changes. Tools
(``app/tools``) ask it for the editor and the settings; docks bind to its signals. Saving,
autosave and crash recovery live in :mod:`app.label_saving`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import partial

from PySide6.QtCore import QObject, Signal

from ctviewer.data.labels import LabelMap
from ctviewer.data.layers import LabelLayer
from ctviewer.data.study import Study
from ctviewer.editing.editor import LabelEditor, PaintRules


@dataclass(frozen=True)
class BrushSettings:
    """What the paint tools read; the paint options widget edits it through ``update_settings``."""

    radius: float = 5.0
    unit: str = "px"             # 'px' (voxels of the view) or 'mm'
    sphere: bool = False         # 3D brush: a ball instead of a disc in the slice
    fill_3d: bool = False        # flood fill through slices instead of within one
    over: str = "all"            # 'all' | 'background' | 'label'
    over_label: int = 0
    threshold: bool = False      # threshold paint: only voxels whose value is in value_range change
    value_range: tuple[float, float] = (-100.0, 300.0)

    def rules(self) -> PaintRules:
        return PaintRules(over=self.over, over_label=int(self.over_label),
                          value_range=tuple(self.value_range) if self.threshold else None)


MIN_RADIUS, MAX_RADIUS = 0.5, 200.0


class Annotator(QObject):
    """Which layer, label and tool painting uses; undo and redo go to the edited layer."""

    layer_changed = Signal(object)    # LabelLayer or None
    label_changed = Signal(int)
    tool_changed = Signal(str)
    settings_changed = Signal()
    edited = Signal(object)           # bbox (tuple of 3 slices) or None, after any edit/undo/redo
    layer_edited = Signal(object, object)   # (LabelLayer, bbox): which layer an edit changed
    history_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.study: Study | None = None
        self.layer: LabelLayer | None = None
        self._editors: dict[int, LabelEditor] = {}
        self._edit_slots: dict[int, object] = {}   # id(layer) -> what its editor's `edited` calls
        self._label = 1
        self.tool = "navigate"
        self.settings = BrushSettings()

    # -- study and layers ------------------------------------------------------------------------
    def set_study(self, study: Study | None) -> None:
        if self.study is not None:
            self.study.layers.events.removed.disconnect(self._on_layer_removed)
            self.study.layers.events.inserted.disconnect(self._on_layer_inserted)
        self.study = study
        self._editors.clear()
        self._edit_slots.clear()
        if study is not None:
            study.layers.events.removed.connect(self._on_layer_removed)
            study.layers.events.inserted.connect(self._on_layer_inserted)
            image = study.image
            if image.is_rgb:
                self.update_settings(value_range=(0.0, 255.0))
            else:
                self.update_settings(value_range=(-100.0, 300.0) if image.modality == "CT"
                                     else image.value_range())
        layers = study.layers.by_kind("labels") if study is not None else []
        self.set_layer(layers[-1] if layers else None)

    def _on_layer_inserted(self, index: int, layer) -> None:
        # a preview (gray-level bins being tuned) is shown, not edited
        if isinstance(layer, LabelLayer) and self.layer is None and not layer.name.endswith("(preview)"):
            self.set_layer(layer)

    def _on_layer_removed(self, index: int, layer) -> None:
        editor = self._editors.pop(id(layer), None)
        if editor is not None:
            editor.edited.disconnect(self._edit_slots.pop(id(layer)))
            editor.history.changed.disconnect(self._on_history)
        if layer is self.layer:
            rest = self.study.layers.by_kind("labels") if self.study is not None else []
            self.set_layer(rest[-1] if rest else None)

    def editor_for(self, layer: LabelLayer) -> LabelEditor:
        editor = self._editors.get(id(layer))
        if editor is None:
            editor = LabelEditor(layer, self.study.image)
            editor.rules = self.settings.rules()
            editor.label = self._label
            self._edit_slots[id(layer)] = partial(self._on_edited, layer)
            editor.edited.connect(self._edit_slots[id(layer)])
            editor.history.changed.connect(self._on_history)
            self._editors[id(layer)] = editor
        return editor

    @property
    def editors(self) -> list[LabelEditor]:
        return list(self._editors.values())

    @property
    def editor(self) -> LabelEditor | None:
        return self.editor_for(self.layer) if self.layer is not None else None

    def set_layer(self, layer: LabelLayer | None) -> None:
        if layer is self.layer:
            return
        self.layer = layer
        if layer is not None:
            self.editor_for(layer)
            ids = [i for i in layer.labels.table.ids if i > 0]
            if self._label not in layer.labels.table and ids:
                self.set_label(ids[0])
        self.layer_changed.emit(layer)
        self.history_changed.emit()

    def new_layer(self, name: str | None = None, labels: LabelMap | None = None) -> LabelLayer:
        """A label layer on the study's grid (empty unless ``labels`` is given), now the edited one."""
        if self.study is None:
            raise RuntimeError("no study is open")
        if labels is None:
            labels = LabelMap.empty_like(self.study.image)
            labels.table.add(1)
        existing = {layer.name for layer in self.study.layers}
        base = name or "labels"
        name, n = base, 2
        while name in existing:
            name, n = f"{base} {n}", n + 1
        layer = LabelLayer(labels, name=name)
        self.study.layers.append(layer)
        self.set_layer(layer)
        return layer

    def _on_edited(self, layer: LabelLayer, bbox) -> None:
        self.layer_edited.emit(layer, bbox)
        self.edited.emit(bbox)

    def _on_history(self) -> None:
        self.history_changed.emit()

    # -- label, tool, settings -------------------------------------------------------------------
    @property
    def label(self) -> int:
        return self._label

    def set_label(self, label_id: int) -> None:
        label_id = int(label_id)
        if self.layer is not None and label_id > 0 and label_id not in self.layer.labels.table:
            self.layer.labels.table.add(label_id)
        changed = label_id != self._label
        self._label = label_id
        for editor in self._editors.values():
            editor.label = label_id
        if changed:
            self.label_changed.emit(label_id)

    def set_tool(self, name: str) -> None:
        if name != self.tool:
            self.tool = name
            self.tool_changed.emit(name)

    def update_settings(self, **changes) -> None:
        known = {f.name for f in fields(BrushSettings)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown brush settings: {', '.join(sorted(unknown))}")
        if "radius" in changes:
            changes["radius"] = float(min(max(changes["radius"], MIN_RADIUS), MAX_RADIUS))
        if "value_range" in changes:
            lo, hi = (float(v) for v in changes["value_range"])
            changes["value_range"] = (min(lo, hi), max(lo, hi))
        new = replace(self.settings, **changes)
        if new == self.settings:
            return
        self.settings = new
        for editor in self._editors.values():
            editor.rules = new.rules()
        self.settings_changed.emit()

    def grow_brush(self, factor: float) -> None:
        """[ and ]: bigger or smaller by a step users can feel at every size."""
        self.update_settings(radius=max(MIN_RADIUS, round(self.settings.radius * factor * 2) / 2))

    # -- history ---------------------------------------------------------------------------------
    def undo(self):
        return self.editor.undo() if self.editor is not None else None

    def redo(self):
        return self.editor.redo() if self.editor is not None else None

    @property
    def can_undo(self) -> bool:
        return self.editor is not None and self.editor.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.editor is not None and self.editor.history.can_redo

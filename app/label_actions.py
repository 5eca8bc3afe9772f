"""The Labels menu and the paint toolbar: tools, keys, undo/redo, save, bins.

Keys (those of ITK-SNAP, GIMP and most paint programs): B brush, E eraser, F fill, T threshold
brush, L polygon/lasso, I pick label, Esc back to navigating; [ and ] brush size; 1–9 active
label; Ctrl+Z / Ctrl+Shift+Z undo/redo; Ctrl+S save labels.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMessageBox, QToolBar

from app.tools import TOOLS

LABEL_FILTER = ("Label maps (*.nii.gz *.nii *.seg.nrrd *.nrrd *.png *.npy *.dcm);;"
                "NIfTI (*.nii.gz *.nii);;3D Slicer segmentation (*.seg.nrrd);;PNG index image (*.png);;"
                "DICOM-SEG (*.dcm);;All files (*)")


class LabelActions(QObject):
    """Builds the paint toolbar and the Labels menu of ``window`` and keeps them in step."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.annotator = window.annotator
        self.keeper = window.keeper
        self.tool_actions: dict[str, QAction] = {}
        self._build_toolbar()
        self._build_menu()
        self.annotator.tool_changed.connect(self._sync_tool)
        self.annotator.history_changed.connect(self._sync_history)
        self._sync_history()

    def _action(self, text: str, slot, shortcut=None, parent=None) -> QAction:
        action = QAction(text, parent or self.window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    # -- toolbar ---------------------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = QToolBar("Paint tools", self.window)
        bar.setObjectName("paint_toolbar")
        group = QActionGroup(self)
        navigate = self._action("Navigate", lambda: self.annotator.set_tool("navigate"), "Esc")
        navigate.setToolTip("Navigate (Esc): left click moves the crosshair")
        tools = [("navigate", navigate)] + [
            (cls.name, self._action(cls.title, lambda _=False, n=cls.name: self.annotator.set_tool(n), cls.shortcut))
            for cls in TOOLS]
        for name, action in tools:
            action.setCheckable(True)
            group.addAction(action)
            bar.addAction(action)
            self.tool_actions[name] = action
            cls = next((c for c in TOOLS if c.name == name), None)
            if cls is not None:
                action.setToolTip(f"{cls.title} ({cls.shortcut}): {cls.tip}")
        self.tool_actions["navigate"].setChecked(True)
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar
        # keys that have no button: brush size and the active label
        for key, factor in (("[", 1 / 1.25), ("]", 1.25)):
            self.window.addAction(self._action(f"Brush size {key}", lambda _=False, f=factor:
                                               self.annotator.grow_brush(f), key))
        for n in range(1, 10):
            self.window.addAction(self._action(f"Label {n}", lambda _=False, n=n: self.annotator.set_label(n),
                                               str(n)))

    def _sync_tool(self, name: str) -> None:
        action = self.tool_actions.get(name)
        if action is not None and not action.isChecked():
            action.setChecked(True)

    # -- menu ------------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        m = self.window.menuBar().addMenu("&Labels")
        self.undo_action = self._action("&Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action("&Redo", self.redo, "Ctrl+Shift+Z")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        m.addAction(self.undo_action)
        m.addAction(self.redo_action)
        m.addSeparator()
        m.addAction(self._action("&New label layer", self.new_layer))
        m.addAction(self._action("&Save labels", self.save, QKeySequence.StandardKey.Save))
        m.addAction(self._action("Save labels &as…", self.save_as))
        m.addSeparator()
        m.addAction(self._action("Start from &gray-level bins (photo)…", self.window.show_gray_bins))
        m.addAction(self._action("Start from &intensity bins (volume)…", self.window.show_intensity_bins))
        self.menu = m

    def _sync_history(self) -> None:
        editor = self.annotator.editor
        history = editor.history if editor is not None else None
        can_undo = history is not None and history.can_undo   # (a history is falsy when its undo stack is empty)
        can_redo = history is not None and history.can_redo
        self.undo_action.setEnabled(can_undo)
        self.redo_action.setEnabled(can_redo)
        self.undo_action.setText(f"&Undo {history.undo_text}" if can_undo else "&Undo")
        self.redo_action.setText(f"&Redo {history.redo_text}" if can_redo else "&Redo")

    # -- commands --------------------------------------------------------------------------------
    def undo(self) -> None:
        if self.annotator.undo() is None:
            self.window.statusBar().showMessage("Nothing to undo", 3000)

    def redo(self) -> None:
        if self.annotator.redo() is None:
            self.window.statusBar().showMessage("Nothing to redo", 3000)

    def new_layer(self) -> None:
        if self.window.study is None:
            self.window.show_error("Open an image first, then add a label layer.")
            return
        self.annotator.new_layer()

    def save(self) -> None:
        layer = self.annotator.layer
        if layer is None:
            self.window.show_error("No label layer to save: paint first, or add a label map.")
            return
        path = self.keeper.path_of(layer)
        if path is None:
            self.save_as()
        else:
            self.keeper.save(layer, path)

    def save_as(self) -> None:
        layer = self.annotator.layer
        if layer is None:
            self.window.show_error("No label layer to save: paint first, or add a label map.")
            return
        path = self.window.ask_save_path(self.keeper.path_of(layer) or self.keeper.default_path(layer))
        if path is not None:
            self.keeper.save(layer, path)


def ask_save_path(parent, default: Path) -> Path | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Save labels", str(default), LABEL_FILTER)
    return Path(path) if path else None


def ask_unsaved(parent, names: list[str]) -> str:
    """'save', 'discard' or 'cancel' for closing with unsaved labels."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved labels",
                      "These label layers have changes that are not saved:\n  " + "\n  ".join(names),
                      QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                      | QMessageBox.StandardButton.Cancel, parent)
    answer = box.exec()
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")


def ask_restore(parent, entries) -> bool:
    lines = [f"  {e.layer_name}: {e.edit_count} edits, autosaved {e.saved_at}" for e in entries]
    notes = [m for e in entries for m in e.messages]
    text = ("Labels of this image were autosaved and not saved afterwards (the program was closed "
            "or crashed):\n" + "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")
            + "\n\nRestore them?")
    answer = QMessageBox.question(parent, "Restore autosaved labels?", text)
    return answer == QMessageBox.StandardButton.Yes

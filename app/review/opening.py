"""Opening the review queue from the main window: ask for a folder of studies or a picks CSV."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.review.window import ReviewWindow


def ask_review_paths(parent) -> list[Path] | None:
    """Ask for a folder of studies or a picks CSV (File ▸ Review slice picks…)."""
    box = QMessageBox(parent)
    box.setWindowTitle("Review slice picks")
    box.setText("Review the L3/T12 picks of a folder of studies, or go on with a picks CSV?")
    folder = box.addButton("Folder of studies…", QMessageBox.ButtonRole.AcceptRole)
    csv = box.addButton("Picks CSV…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if box.clickedButton() is folder:
        chosen = QFileDialog.getExistingDirectory(parent, "Folder of studies to review")
    elif box.clickedButton() is csv:
        chosen, _ = QFileDialog.getOpenFileName(parent, "Picks CSV", "", "Picks CSV (*.csv)")
    else:
        return None
    return [Path(chosen)] if chosen else None


def open_review_window(paths, parent=None, csv_path=None, locator_name: str | None = None) -> ReviewWindow:
    """Open and show a review window (InputError when the paths cannot be reviewed)."""
    window = ReviewWindow.open_paths(paths, csv_path=csv_path, locator_name=locator_name, parent=parent)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.show()
    return window

"""The photos of a thin-section project as a list: thumbnail, name, status (text and a coloured dot),
training split. Thumbnails arrive later (made in workers) and are kept in memory by photo file."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem

THUMBNAIL_PX = 64
#: Thumbnails are shown smaller than they are made, so the list shows several photos in a short dock.
SHOWN_PX = 40
#: One colour per status, the order of the work: grey nothing yet, orange a model's guess, blue a
#: person's labels, green checked.
STATUS_COLOURS = {"unlabelled": (150, 150, 150), "predicted": (235, 140, 20), "labelled": (40, 110, 230),
                  "reviewed": (30, 170, 60)}
NAME = Qt.ItemDataRole.UserRole
COLUMNS = ("Photo", "Status", "Training")


def status_icon(status: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(*STATUS_COLOURS.get(status, (0, 0, 0))))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


def thumbnail_icon(rgb: np.ndarray) -> QIcon:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()   # copy: owns its pixels
    return QIcon(QPixmap.fromImage(image))


class PhotoList(QTreeWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderLabels(COLUMNS)
        self.setRootIsDecorated(False)
        self.setIconSize(QSize(SHOWN_PX, SHOWN_PX))
        self.setUniformRowHeights(True)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            self.header().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self._status_icons = {status: status_icon(status) for status in STATUS_COLOURS}
        self._placeholder = QIcon(_blank_pixmap())
        self.thumbnails: dict[str, QIcon] = {}   # photo path -> icon, kept while the app runs

    def set_images(self, images) -> None:
        """One row per ProjectImage, in the project's order; the current photo stays selected."""
        current = self.current_name()
        self.clear()
        for image in images:
            row = QTreeWidgetItem([image.name, "", ""])
            row.setData(0, NAME, image.name)
            row.setToolTip(0, str(image.image_path))
            self.addTopLevelItem(row)
            self._show(row, image)
        if current is not None:
            self.select(current)

    def update_image(self, image) -> None:
        row = self._row(image.name)
        if row is not None:
            self._show(row, image)

    def _show(self, row: QTreeWidgetItem, image) -> None:
        row.setIcon(0, self.thumbnails.get(str(image.image_path), self._placeholder))
        row.setText(1, image.status)
        row.setIcon(1, self._status_icons.get(image.status, QIcon()))
        row.setText(2, image.split)
        row.setToolTip(2, "in the training set" if image.split == "train" else
                       "held out for testing" if image.split == "test" else "not in the training set")

    def set_thumbnail(self, path: str, rgb: np.ndarray, names: list[str]) -> None:
        icon = thumbnail_icon(rgb)
        self.thumbnails[path] = icon
        for name in names:
            row = self._row(name)
            if row is not None:
                row.setIcon(0, icon)

    def mark_unreadable(self, path: str) -> None:
        """A photo whose thumbnail could not be made keeps the grey square (and is not read again)."""
        self.thumbnails[path] = self._placeholder

    def has_thumbnail(self, row_name: str) -> bool:
        row = self._row(row_name)
        return row is not None and row.icon(0).cacheKey() != self._placeholder.cacheKey()

    def names(self) -> list[str]:
        return [self.topLevelItem(n).data(0, NAME) for n in range(self.topLevelItemCount())]

    def current_name(self) -> str | None:
        row = self.currentItem()
        return None if row is None else row.data(0, NAME)

    def select(self, name: str) -> None:
        row = self._row(name)
        if row is not None:
            self.blockSignals(True)
            self.setCurrentItem(row)
            self.blockSignals(False)

    def _row(self, name: str) -> QTreeWidgetItem | None:
        for n in range(self.topLevelItemCount()):
            row = self.topLevelItem(n)
            if row.data(0, NAME) == name:
                return row
        return None


def _blank_pixmap() -> QPixmap:
    pixmap = QPixmap(THUMBNAIL_PX, THUMBNAIL_PX)
    pixmap.fill(QColor(60, 60, 60))
    return pixmap

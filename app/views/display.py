"""Display state the linked views share: the window/level of the image."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ctviewer.imaging.window import levels


class DisplayState(QObject):
    """Window width/level shared by every view of one study (in the image's units, HU for CT)."""

    window_changed = Signal(float, float)

    def __init__(self, width: float = 400.0, level: float = 40.0, parent: QObject | None = None):
        super().__init__(parent)
        self._width, self._level = float(width), float(level)

    @property
    def window(self) -> tuple[float, float]:
        return self._width, self._level

    @property
    def levels(self) -> tuple[float, float]:
        return levels(self._width, self._level)

    def set_window(self, width: float, level: float) -> None:
        width = max(float(width), 1.0)
        if (width, float(level)) != (self._width, self._level):
            self._width, self._level = width, float(level)
            self.window_changed.emit(self._width, self._level)

    def drag(self, dx: float, dy: float) -> None:
        """Window/level drag: right widens the window, up raises the level (Slicer's feel).

        Steps scale with the current width so fine and coarse windows both stay controllable.
        """
        step = max(self._width, 20.0) / 250.0
        self.set_window(self._width + dx * step, self._level - dy * step)

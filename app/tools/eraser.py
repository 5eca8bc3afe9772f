"""Eraser (E): the brush painting background (0). Locked labels stay."""

from __future__ import annotations

from app.tools.brush import BrushTool


class EraserTool(BrushTool):
    name = "eraser"
    title = "Eraser"
    shortcut = "E"
    tip = "Erase to background (drag); locked labels are kept"
    description = "erase"

    def value(self) -> int | None:
        return 0

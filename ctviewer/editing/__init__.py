"""Label editing without a GUI: brush shapes, the editor the paint tools call, sparse undo/redo."""

from ctviewer.editing.editor import LabelEditor, PaintRules
from ctviewer.editing.history import Delta, EditHistory
from ctviewer.editing.shapes import brush_offsets

__all__ = ["Delta", "EditHistory", "LabelEditor", "PaintRules", "brush_offsets"]

"""Paint tools, one file each. ``TOOLS`` lists them in toolbar order; 'navigate' means none."""

from app.tools.brush import BrushTool
from app.tools.eraser import EraserTool
from app.tools.fill import FillTool
from app.tools.lasso import LassoTool
from app.tools.picker import PickerTool
from app.tools.threshold import ThresholdTool

TOOLS = (BrushTool, EraserTool, FillTool, ThresholdTool, LassoTool, PickerTool)

__all__ = ["TOOLS", "BrushTool", "EraserTool", "FillTool", "LassoTool", "PickerTool", "ThresholdTool"]

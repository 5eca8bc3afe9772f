"""Live training curves: loss per batch and per epoch (validation), and one metric the same way.

Reports arrive far faster than a screen can show them (a small model does hundreds of batches a
second), so appending only stores numbers; :meth:`TrainingCurves.redraw` draws what changed and
is called by the owner's ~10 Hz timer. The x axis is in epochs (2.5 = half-way through epoch 3).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

TRAIN_PEN = pg.mkPen((90, 160, 255), width=1)
VAL_PEN = pg.mkPen((255, 150, 40), width=2)


class _Panel:
    """One plot: a training curve (per batch) and a validation curve (per epoch)."""

    def __init__(self, plot: pg.PlotItem, title: str):
        self.plot = plot
        plot.setTitle(title)
        plot.setLabel("bottom", "epoch")
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.addLegend(offset=(-10, 10))
        self.train = plot.plot([], [], pen=TRAIN_PEN, name="training")
        # long runs give tens of thousands of batches: draw only what is in view, peak-downsampled
        self.train.setDownsampling(auto=True, method="peak")
        self.train.setClipToView(True)
        self.val = plot.plot([], [], pen=VAL_PEN, symbol="o", symbolSize=6, symbolBrush=(255, 150, 40),
                             name="validation")
        self.train_xy: tuple[list[float], list[float]] = ([], [])
        self.val_xy: tuple[list[float], list[float]] = ([], [])

    def reset(self) -> None:
        self.train_xy, self.val_xy = ([], []), ([], [])
        self.draw()

    def draw(self) -> None:
        for curve, (x, y) in ((self.train, self.train_xy), (self.val, self.val_xy)):
            curve.setData(np.asarray(x, float), np.asarray(y, float))


class TrainingCurves(pg.GraphicsLayoutWidget):
    """Loss (left) and the first metric the training reports (right, shown once one arrives)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.loss = _Panel(self.addPlot(row=0, col=0), "loss")
        self.metric = _Panel(self.addPlot(row=0, col=1), "")
        self.metric.plot.hide()
        self.metric_name: str | None = None
        self._dirty = False

    def reset(self) -> None:
        """Empty curves for a new training (not ``clear``: pyqtgraph uses that name to remove the plots)."""
        self.metric_name = None
        self.metric.plot.hide()
        for panel in (self.loss, self.metric):
            panel.reset()
        self._dirty = False

    def add_batch(self, x: float, loss: float, metrics: dict) -> None:
        _append(self.loss.train_xy, x, loss)
        if self.metric_name is None:
            names = [k for k in metrics if not k.startswith("val_") and _is_number(metrics[k])]
            if names:
                self.metric_name = names[0]
                self.metric.plot.setTitle(self.metric_name)
                self.metric.plot.show()
        if self.metric_name is not None and _is_number(metrics.get(self.metric_name)):
            _append(self.metric.train_xy, x, metrics[self.metric_name])
        self._dirty = True

    def add_epoch(self, x: float, logs: dict) -> None:
        if _is_number(logs.get("val_loss")):
            _append(self.loss.val_xy, x, logs["val_loss"])
        if self.metric_name is not None and _is_number(logs.get(f"val_{self.metric_name}")):
            _append(self.metric.val_xy, x, logs[f"val_{self.metric_name}"])
        self._dirty = True

    def redraw(self) -> bool:
        """Draw what arrived since the last call; False when nothing had changed."""
        if not self._dirty:
            return False
        self._dirty = False
        for panel in (self.loss, self.metric):
            panel.draw()
        return True

    def curve_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """What a curve shows now: ``loss``, ``val_loss``, ``metric`` or ``val_metric`` (for tests)."""
        panel = self.metric if name.endswith("metric") else self.loss
        curve = panel.val if name.startswith("val_") else panel.train
        x, y = curve.getOriginalDataset()
        return (np.asarray([]), np.asarray([])) if x is None else (x, y)


def _append(xy: tuple[list[float], list[float]], x: float, y) -> None:
    xy[0].append(float(x))
    xy[1].append(float(y))


def _is_number(value) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False

"""``ctviewer snapshot``: render what the GUI shows into a PNG, headless.

Slice views are rendered by the real widgets on Qt's offscreen platform. The 3D panel's pixels
are read back from VTK (``QWidget.grab()`` returns garbage for a VTK widget) and painted into
the grab, for the 3D view alone and for the whole window.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError

VIEWS = ("axial", "coronal", "sagittal", "3d", "window")


def build_parser() -> argparse.ArgumentParser:
    from ctviewer.cli import _Parser

    p = _Parser(prog="ctviewer snapshot", description="render a view of an image to PNG without a display")
    p.add_argument("path", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    p.add_argument("--view", choices=VIEWS, default="axial")
    p.add_argument("--slice", type=int, default=None, help="slice index (0-based) of the view; default: middle")
    p.add_argument("--labels", type=Path, default=None, help="label map to overlay (same grid as the image)")
    p.add_argument("--series", type=int, default=0, help="which series of a DICOM folder (as `info` lists)")
    p.add_argument("--window", type=str, default=None, help="WIDTH/LEVEL or a preset name (abdomen, bone, …)")
    p.add_argument("--size", type=str, default="800x800", help="WIDTHxHEIGHT in pixels")
    p.add_argument("--mode", choices=("volume", "isosurface", "labels"), default=None,
                   help="3D panel mode (default: label surfaces with --labels, else volume rendering)")
    return p


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must look like 800x600, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise InputError(f"--size {text} is outside 16..8192 pixels")
    return w, h


def _parse_window(text: str | None):
    from ctviewer.imaging.window import PRESETS

    if text is None:
        return None
    if text.lower() in PRESETS:
        return PRESETS[text.lower()]
    try:
        width, level = (float(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--window must be WIDTH/LEVEL or one of {', '.join(PRESETS)}; got {text!r}") from None
    return width, level


def save_png(rgb: np.ndarray, path: Path) -> Path:
    """Write an (H, W, 3|4) uint8 image atomically as PNG."""
    from PIL import Image

    from ctviewer.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")
    return path


def qimage_to_array(image) -> np.ndarray:
    """A QImage as an (H, W, 3) uint8 RGB array (a copy)."""
    from PySide6.QtGui import QImage

    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def grab_widget(widget) -> np.ndarray:
    """Pixels of a widget and its children, with every VTK panel's real pixels painted in."""
    from PySide6.QtCore import QPoint

    rgb = qimage_to_array(widget.grab().toImage())
    scale = rgb.shape[1] / max(widget.width(), 1)
    view3d = sys.modules.get("app.views.view3d")  # loaded only if some window built a 3D panel
    panels = widget.findChildren(view3d.View3D) if view3d else []
    for panel in panels:
        if not panel.isVisible():
            continue
        pixels = panel.screenshot()
        target = panel.vtk_widget() if hasattr(panel, "vtk_widget") else panel
        top_left = target.mapTo(widget, QPoint(0, 0))
        y0, x0 = int(top_left.y() * scale), int(top_left.x() * scale)
        h = min(pixels.shape[0], rgb.shape[0] - y0)
        w = min(pixels.shape[1], rgb.shape[1] - x0)
        if h > 0 and w > 0:
            rgb[y0:y0 + h, x0:x0 + w] = pixels[:h, :w, :3]
    return rgb


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def render(args) -> np.ndarray:
    """Render the requested view and return its RGB pixels."""
    from ctviewer.workflows.open import open_study

    size = _parse_size(args.size)
    window = _parse_window(args.window)
    study = open_study(args.path, [args.labels] if args.labels else [], series=args.series)
    if args.view == "3d":
        from app.views.render_offscreen import render_3d

        labels = study.layers.by_kind("labels")
        mode = args.mode or ("labels" if labels else "volume")
        if study.image.is_photo:
            raise InputError("a photo has no 3D view; use --view axial", args.path)
        return render_3d(study.image, labels=labels[0].labels if labels else None, mode=mode, size=size)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["ctviewer-snapshot"])
    if args.view == "window":
        from app.main_window import MainWindow

        widget = MainWindow(with_3d=_has_display())
        widget.resize(*size)
        widget.set_study(study)
    else:
        from app.views.display import DisplayState
        from app.views.slice_view import SliceView
        from ctviewer.imaging import slicing
        from ctviewer.imaging.window import default_window

        display = DisplayState()
        display.set_window(*(window or default_window(study.image)))
        widget = SliceView(args.view)
        widget.resize(*size)
        if args.slice is not None:
            n = slicing.slice_count(study.image.shape, args.view)
            if not 0 <= args.slice < n:
                raise InputError(f"--slice {args.slice} is outside 0..{n - 1} for the {args.view} view", args.path)
            cursor = list(study.cursor)
            cursor[slicing.plane(args.view).normal_axis] = args.slice
            study.cursor = tuple(cursor)
        widget.set_study(study, display)
    if args.view == "window" and window is not None:
        widget.viewer.display.set_window(*window)
    widget.show()
    for _ in range(5):
        app.processEvents()
    if args.view != "window":
        widget.reset_view()
        app.processEvents()
    pixels = grab_widget(widget)
    widget.close()
    widget.deleteLater()
    app.processEvents()
    return pixels


def main(argv: list[str]) -> int:
    from ctviewer.cli import run_guarded

    def run() -> int:
        args = build_parser().parse_args(argv)
        if args.view == "window" and not _has_display() and shutil.which("xvfb-run") \
                and not os.environ.get("CTVIEWER_NO_XVFB"):
            # The whole window includes the VTK panel, which needs an X display: lend it Xvfb.
            cmd = ["xvfb-run", "-a", "-s", "-screen 0 1920x1200x24", sys.executable, "-m", "app.main",
                   "snapshot", *argv]
            return subprocess.call(cmd, env={**os.environ, "CTVIEWER_NO_XVFB": "1"})
        if not _has_display():
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        save_png(render(args), args.output)
        print(f"wrote {args.output}")
        return 0

    return run_guarded(run)

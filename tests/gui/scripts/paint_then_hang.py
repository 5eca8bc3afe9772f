"""Child process of the crash test: open an image, paint with the mouse, wait to be killed.

Usage: paint_then_hang.py IMAGE EXPECTED.npy — prints "saved" once an autosave holding every
stroke is on disk (and EXPECTED.npy holds those labels), then keeps the GUI running until it is
killed (SIGKILL: no clean-up of any kind runs).

The window is the one users get, its 3D panel included (VTK needs an X display: run under Xvfb
and pass the display on; Qt's offscreen platform gives VTK no OpenGL).
"""

import sys
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from ctviewer.io.atomic import atomic_path


def main(image_path: str, expected_path: str) -> None:
    app = QApplication([])
    from app.main_window import MainWindow
    from ctviewer.workflows.open import open_study
    from tests.gui.conftest import send_drag
    from tests.gui.test_painting import widget_pos

    win = MainWindow()   # as the user gets it: the real 3D panel (needs an X display, e.g. Xvfb)
    # a volume that does not say its voxel size (snow.tif) asks in a modal box no one answers here:
    # "keep 1 mm", as tests/gui/conftest.py answers for the test's own windows
    win.ask_spacing = lambda image: None
    win.resize(1000, 800)
    win.show()
    app.processEvents()
    shown_in_3d = []
    win.viewer.view3d.scene_ready.connect(shown_in_3d.append)
    win.set_study(open_study(image_path))
    app.processEvents()
    axial = win.viewer.views["axial"]
    win.annotator.set_tool("brush")
    win.annotator.update_settings(radius=5)   # a photo is shown at half size: strokes stay thick enough
    k = axial.slice_index
    for n, row in enumerate((10, 20, 30)):
        win.annotator.set_label(n + 1)
        send_drag(axial, widget_pos(axial, (k, row, 10)), widget_pos(axial, (k, row, 50)))
    layer = win.annotator.layer
    assert (layer.array > 0).sum() > 100, "the strokes did not paint"
    while not shown_in_3d:   # the 3D panel has drawn the scan (or said why not: a photo, a flat image)
        app.processEvents()
    done = []
    win.keeper.autosaved.connect(done.append)
    while not done or win.keeper.busy or win.keeper.autosaver.pending:
        app.processEvents()
    with atomic_path(Path(expected_path)) as tmp, open(tmp, "wb") as fh:
        np.save(fh, layer.array)
    print("saved", flush=True)
    app.exec()


if __name__ == "__main__":
    main(*sys.argv[1:3])

"""GUI fixtures: real widgets under Xvfb (or Qt's offscreen platform), cleaned up after each test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from ctviewer.data import HeatmapLayer, LabelLayer, LabelMap, SliceLine, SliceLinesLayer, Study, Volume


@pytest.fixture(autouse=True)
def _no_tensorflow_in_the_gui_process():
    """TensorFlow and VTK's software OpenGL crash one process: Keras runs only in ctviewer.ml.child."""
    yield
    import sys

    assert "tensorflow" not in sys.modules, "a test or the GUI imported TensorFlow into the GUI process"


@pytest.fixture(autouse=True)
def _own_recovery_folder(tmp_path, monkeypatch):
    """Autosaves go to the test's folder: never the user's, and no leftover of another run is offered back
    in a restore question nobody answers."""
    monkeypatch.setenv("CTVIEWER_RECOVERY_DIR", str(tmp_path / "recovery"))


@pytest.fixture(autouse=True, scope="session")
def _own_settings_folder(tmp_path_factory):
    """A window built without settings of its own (``QSettings("ctviewer", "ctviewer")``) reads and
    writes the test session's folder, never the user's recent files and layout."""
    from PySide6.QtCore import QSettings

    folder = str(tmp_path_factory.mktemp("settings"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
    yield


@pytest.fixture(autouse=True)
def _unsaved_labels_are_discarded_when_the_test_closes(monkeypatch):
    """pytest-qt closes each window after its test; one left with unsaved labels would wait in the modal
    "Unsaved labels" box forever (seen once). Every main window answers "discard" unless its test gives
    its own answer (``win.ask_unsaved = ...``, as the tests of that question do). The app still asks."""
    from app.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "ask_unsaved", lambda self, names: "discard")


@pytest.fixture(autouse=True)
def _voxel_size_questions_are_not_answered(monkeypatch):
    """A volume that does not say its voxel size (a bare .npy, snow.tif) makes the window ask in a modal
    box that no one would answer. Every main window answers "keep 1 mm" unless its test gives its own
    answer (``win.ask_spacing = ...``, as the tests of that question do). The app still asks."""
    from app.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "ask_spacing", lambda self, image: None)


@pytest.fixture(autouse=True)
def _flush_deleted_widgets():
    """Widgets queued for deletion must go before Xvfb stops (ENVIRONMENT.md: XIO errors)."""
    yield
    app = QApplication.instance()
    if app is not None:
        for w in app.topLevelWidgets():
            w.close()
            w.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app.processEvents()


def make_main_window(qtbot, tmp_path, monkeypatch, with_3d: bool = True, size=(1500, 1000)):
    """The main window as the user gets it, shown: the real 3D panel (VTK on Mesa's software OpenGL under
    Xvfb), settings and a recovery folder of the test's own; unsaved labels are discarded without asking
    when another study opens. ``with_3d=False`` only where a test says why the real panel cannot run."""
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    monkeypatch.setenv("CTVIEWER_RECOVERY_DIR", str(tmp_path / "recovery"))
    win = MainWindow(with_3d=with_3d, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    win.ask_unsaved = lambda names: "discard"
    win.resize(*size)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def stamp_study() -> Study:
    """An asymmetric CT-like study: markers at patient left, anterior and superior; labels and lines."""
    arr = np.full((40, 60, 80), -1000, np.int16)
    arr[:, 10:50, 10:70] = 40                 # body
    arr[:, 20:30, 60:70] = 1000               # bright bar at the patient's LEFT, anterior half
    arr[30:40, 40:50, 10:20] = 600            # block at SUPERIOR, posterior, patient right
    vol = Volume(arr, spacing=(2.5, 1.0, 1.0), modality="CT", name="stamp")
    study = Study(vol)
    labels = np.zeros(arr.shape, np.uint8)
    labels[10:20, 30:45, 30:50] = 5
    study.layers.append(LabelLayer(LabelMap(vol.with_array(labels)), name="liver mask"))
    heat = vol.with_array(np.zeros(arr.shape, np.float32))
    heat.array[:, 10:50, 10:40] = 1.0
    study.layers.append(HeatmapLayer(heat, name="heatmap", value_range=(0, 1), opacity=0.4))
    study.layers.append(SliceLinesLayer([SliceLine(12, "L3", (255, 0, 0))]))
    return study


def send_wheel(widget, steps: int = 1, modifiers=Qt.KeyboardModifier.NoModifier, pos: QPoint | None = None):
    """A real wheel event (one notch per step) at ``pos`` of the widget's viewport."""
    target = widget.viewport()
    p = QPointF(pos if pos is not None else target.rect().center())
    ev = QWheelEvent(p, QPointF(target.mapToGlobal(p.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                     Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(target, ev)


def send_drag(widget, start: QPoint, end: QPoint, button=Qt.MouseButton.LeftButton,
              modifiers=Qt.KeyboardModifier.NoModifier, steps: int = 6):
    """Press, move in steps and release: a real drag on the widget's viewport."""
    target = widget.viewport()

    def send(kind, pos, btn, btns):
        p = QPointF(pos)
        ev = QMouseEvent(kind, p, QPointF(target.mapToGlobal(pos)), btn, btns, modifiers)
        QApplication.sendEvent(target, ev)

    send(QEvent.Type.MouseButtonPress, start, button, button)
    for n in range(1, steps + 1):
        pos = start + (end - start) * (n / steps)
        send(QEvent.Type.MouseMove, QPoint(int(pos.x()), int(pos.y())), Qt.MouseButton.NoButton, button)
        QApplication.processEvents()
    send(QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)
    QApplication.processEvents()


def send_click(widget, pos: QPoint, button=Qt.MouseButton.LeftButton):
    target = widget.viewport()
    for kind, btns in ((QEvent.Type.MouseButtonPress, button), (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton)):
        ev = QMouseEvent(kind, QPointF(pos), QPointF(target.mapToGlobal(pos)), button, btns,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(target, ev)
    QApplication.processEvents()


def paint_autosave_and_kill(image, expected, recovery, timeout_s: float = 120) -> int:
    """Run ``scripts/paint_then_hang.py`` on ``image``: a real app paints strokes (their voxels go to
    ``expected``), autosaves into ``recovery`` and hangs; it is SIGKILLed once it says "saved", as a crash
    would end it. Returns the child's exit status. Its window has the real 3D panel, so the child
    shares this test's X display (Xvfb)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, CTVIEWER_RECOVERY_DIR=str(recovery), CTVIEWER_AUTOSAVE_S="0.3", PYTHONPATH=str(repo))
    child = subprocess.Popen([sys.executable, "tests/gui/scripts/paint_then_hang.py", str(image), str(expected)],
                             cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, line = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline and "saved" not in line:
            line = child.stdout.readline()
            if not line and child.poll() is not None:
                break
        assert "saved" in line, f"the child never autosaved: {child.stderr.read()[-2000:]}"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    return child.returncode

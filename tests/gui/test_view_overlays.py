"""The texts over the slice views stay readable, and the status bar follows the voxel under the mouse.

At 1600x1000 the default layout gives some views only about 200 px of width; there the slice number,
the window and the orientation letters used to run into one another ("130/25P", "W 35I L 40").
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.views.display import DisplayState
from app.views.slice_view import SliceView
from ctviewer.data import Study, Volume
from tests.gui.conftest import make_main_window, send_wheel

pytestmark = pytest.mark.gui

LETTERS = {"A", "P", "R", "L", "S", "I"}


@pytest.fixture
def deep_ct() -> Study:
    """A CT with 300 slices, so the slice text is as long as a real scan's ("Axial 130/300")."""
    arr = np.full((300, 48, 64), -1000, np.int16)
    arr[:, 8:40, 8:56] = 40
    arr[:, 20:28, 30:34] = np.arange(300, dtype=np.int16)[:, None, None]   # each slice its own value
    study = Study(Volume(arr, spacing=(1.0, 0.8, 0.8), modality="CT", name="deep"))
    study.cursor = (129, 24, 32)
    return study


def shown_texts(view: SliceView) -> dict[str, tuple[str, object]]:
    """What the view really draws: each visible label's text and rectangle."""
    return {name: (label.text(), label.geometry()) for name, label in view._labels.items()
            if label.isVisible()}


def assert_readable(view: SliceView) -> dict[str, str]:
    placed = view.overlay_texts()
    shown = shown_texts(view)
    assert {n: (p.text, p.rect) for n, p in placed.items()} == shown   # the labels follow the layout
    for name, (text, rect) in shown.items():
        assert view.rect().contains(rect), f"{name} {text!r} runs past the view {view.size()}"
        # the label is wide enough for its own text: Qt would clip it otherwise
        assert view._labels[name].sizeHint().width() <= rect.width() + 1, (name, text)
    for (a, (ta, ra)), (b, (tb, rb)) in itertools.combinations(shown.items(), 2):
        assert not ra.intersects(rb), f"{a} {ta!r} {ra} overlaps {b} {tb!r} {rb}"
    return {name: text for name, (text, _) in shown.items()}


def test_narrow_views_keep_every_text_whole_and_apart(qtbot, tmp_path, monkeypatch, deep_ct):
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    win.set_study(deep_ct)
    win.viewer.display.set_window(1500, -500)   # the longest window text a user sets ("W 1500 L -500")
    qtbot.wait(50)
    for view in win.viewer.views.values():
        if view.isVisible():
            assert_readable(view)
    # the narrowest views the layouts give, and narrower
    axial = win.viewer.views["axial"]
    texts = {}
    for width, height in [(200, 450), (200, 300), (160, 240), (120, 160)]:
        view = SliceView("axial")
        qtbot.addWidget(view)
        view.resize(width, height)
        view.set_study(deep_ct, win.viewer.display)
        view.show()
        qtbot.waitExposed(view)
        texts[width, height] = assert_readable(view)
    # at 200 px nothing is cut short: all four letters, the whole slice number and window
    for size in [(200, 450), (200, 300)]:
        shown = texts[size]
        assert {shown[e] for e in ("left", "right", "top", "bottom")} == {"R", "L", "A", "P"}
        assert shown["top_left"] == "Axial 130/300"
        assert shown["bottom_left"] == "W 1500 L -500"
    assert axial.slice_index == 129


def test_view_texts_follow_a_resize(qtbot, deep_ct):
    view = SliceView("coronal")
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.set_study(deep_ct, DisplayState(350, 40))
    view.show()
    qtbot.waitExposed(view)
    wide = assert_readable(view)
    assert wide["top_left"].startswith("Coronal") and wide["bottom_left"] == "W 350 L 40"
    top_left_wide = view._labels["top_left"].geometry()
    view.resize(150, 400)
    qtbot.wait(20)
    narrow = assert_readable(view)
    # the slice text moved off the letter's line rather than running into the 'S'
    assert view._labels["top_left"].geometry().top() > top_left_wide.top()
    assert narrow["top"] == "S" and narrow["bottom"] == "I"


def status_after_wheel(win, view, steps: int) -> list[str]:
    seen = []
    for _ in range(steps):
        send_wheel(view, +1, pos=view.viewport().rect().center())
        QApplication.processEvents()
        seen.append(win.position_label.text())
    return seen


def test_status_bar_follows_every_wheel_step(qtbot, tmp_path, monkeypatch, deep_ct):
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    win.set_study(deep_ct)
    qtbot.wait(20)
    axial = win.viewer.views["axial"]
    start = axial.slice_index
    seen = status_after_wheel(win, axial, 4)
    assert axial.slice_index == start + 4
    assert len(set(seen)) == 4, seen   # a new text at each step
    for n, text in enumerate(seen, start=1):
        # the voxel under the mouse is on the slice now shown, and its value (= slice index) with it
        k = start + n
        assert f", {k})" in text.split("   ")[0], text
        _, _, i = (int(v) for v in text[text.index("(") + 1:text.index(")")].split(", ")[::-1])
        if 30 <= i < 34:
            assert f"value {k} HU" in text


def move_mouse(view, pos: QPoint) -> None:
    target = view.viewport()
    ev = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(target.mapToGlobal(pos)),
                     Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, ev)
    QApplication.processEvents()


@pytest.mark.parametrize("colour", [True, False], ids=["rgb", "grey"])
def test_photo_has_no_anatomy_and_no_hu(qtbot, tmp_path, monkeypatch, colour):
    rng = np.random.default_rng(3)
    shape = (1, 120, 160, 3) if colour else (1, 120, 160)
    photo = Volume(rng.integers(30, 255, shape, dtype=np.uint8), modality="XC", name="section")
    assert photo.is_photo
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    win.set_study(Study(photo))
    qtbot.wait(50)
    view = win.viewer.views["axial"]
    shown = assert_readable(view)
    assert not LETTERS & set(shown.values()), shown
    assert shown["top_left"] == "Photo"
    assert not any("HU" in t or "Axial" in t for t in shown.values()), shown
    move_mouse(view, view.viewport().rect().center())
    text = win.position_label.text()
    k, j, i = view._voxel_at(view._hover_pos)
    value = photo.array[k, j, i]
    assert "HU" not in text and "mm" not in text
    expected = f"RGB {tuple(int(c) for c in value)}" if colour else f"grey {int(value)}"
    assert text == f"pixel ({i}, {j})   {expected}"


def test_ct_keeps_its_letters_and_hu(qtbot, tmp_path, monkeypatch, deep_ct):
    """The photo rules must not take anything from CT."""
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    win.set_study(deep_ct)
    qtbot.wait(20)
    for name, view in win.viewer.views.items():
        shown = assert_readable(view)
        assert len(LETTERS & set(shown.values())) == 4, (name, shown)
    assert "HU" in win.describe_voxel((129, 24, 32))

"""The review window around the decisions: a study's preparation shows a bar rising to 100 % with the
time left, Ctrl+Q / Ctrl+W close the window with every decision already in the CSV on disk, and the
projections of a short scan fill their panels at 1 mm = 1 mm."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.review.loading import TimeLeft, time_left_text
from app.review.sources import open_review
from app.review.window import ReviewWindow
from ctviewer.workflows.slice_locator.picks import read_picks_csv

pytestmark = pytest.mark.gui

TIME_LEFT = re.compile(r"about \d+ (s|min)( \d+ s)? left|a few seconds left")


def write_series(folder, volume, slices) -> int:
    """Slices ``slices`` of ``volume`` as an axial CT DICOM series in ``folder`` (real files, read by pydicom)."""
    from tests.dicom_series import write_ct_series

    planes = [volume.array[k].astype(np.int16) for k in slices]
    positions = [volume.index_to_lps((k, 0, 0)) for k in slices]
    names = [f"im{i:03d}.dcm" for i in range(len(planes))]
    write_ct_series(folder, planes, positions, names, per_slice=[{"InstanceNumber": i + 1} for i in range(len(planes))],
                    pixel_spacing=volume.spacing[1:], rescale=(1, 0), StudyInstanceUID="1.2.3",
                    SliceThickness=float(volume.spacing[0]))
    return len(planes)


def torso(matrix: int, pixel: float, spacing: float):
    from ctviewer.synth import TorsoParams, make_torso

    return make_torso(TorsoParams(matrix=(matrix, matrix), pixel_spacing=pixel, slice_spacing=spacing,
                                  field_of_view="abdomen", noise_sd=5.0)).image


def shown(qtbot, win: ReviewWindow, wait: bool = True) -> ReviewWindow:
    qtbot.addWidget(win)
    win.resize(1600, 1000)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    if wait:
        qtbot.waitUntil(lambda: win.loaded is not None, timeout=60000)
    return win


def test_time_left_follows_the_fraction_done_and_never_runs_backwards():
    now = [100.0]
    clock = TimeLeft(clock=lambda: now[0])
    clock.update(0.0, "reading DICOM slices")
    assert clock.seconds_left() is None and clock.text() == "reading DICOM slices — estimating the time left…"
    now[0] += 30.0
    clock.update(0.25)
    assert clock.seconds_left() == pytest.approx(90.0)
    assert clock.text() == "reading DICOM slices — about 1 min 30 s left"
    clock.update(0.1, "projecting")    # a late report of an earlier step does not pull the bar back
    assert clock.fraction == 0.25 and clock.message == "projecting"
    now[0] += 30.0
    clock.update(0.75)
    assert time_left_text(clock.seconds_left()) == "about 20 s left"
    clock.update(1.0, "ready")
    assert clock.seconds_left() == 0.0 and time_left_text(0.0) == "a few seconds left"


def test_a_large_study_shows_its_progress_rising_to_one_and_the_time_left(qtbot, tmp_path):
    volume = torso(192, 2.0, 2.0)
    studies = tmp_path / "studies"
    n = write_series(studies / "big", volume, range(volume.shape[0]))
    assert n >= 120     # enough slices to read for the bar to move many times
    win = ReviewWindow(open_review([studies]), predict=False)
    seen = []           # (bar value, text) after each progress report, as the user saw them
    win.loader.progress.connect(lambda exam, f, m: seen.append((win.load_bar.value(), win.load_text.text(),
                                                                 win.load_row.isVisible())))
    notes = []          # the queue row's note
    win.loader.progress.connect(lambda *_: notes.append(win.table.note_text(0)))
    shown(qtbot, win)
    values = [v for v, _, _ in seen]
    assert len(values) > 20, "the reading reports each slice"
    assert values == sorted(values) and values[-1] == 1000 and values[0] < 100
    texts = [t for _, t, _ in seen]
    assert any("reading DICOM slices" in t for t in texts)
    assert any(TIME_LEFT.search(t) for t in texts), texts[-5:]
    assert all(visible for _, _, visible in seen[1:])
    # loaded: the bar gives its place back to the images, the queue row's "loading …" note is gone
    assert not win.load_row.isVisible() and win.table.note_text(0) == ""
    assert any(note.startswith("loading ") and TIME_LEFT.search(note) for note in notes)


@pytest.mark.parametrize("keys", ["Ctrl+Q", "Ctrl+W"])
def test_ctrl_q_and_ctrl_w_close_the_window_and_the_csv_holds_the_decisions(qtbot, tmp_path, keys):
    volume = torso(96, 4.0, 5.0)
    studies = tmp_path / "studies"
    write_series(studies / "s1", volume, range(volume.shape[0]))
    write_series(studies / "s2", volume, range(volume.shape[0]))
    win = shown(qtbot, ReviewWindow(open_review([studies]), predict=False))
    QTest.keyClick(win, Qt.Key.Key_Up)        # places L3 one slice above the middle: a correction
    placed = win.picks.get("s1", "L3").slice_index
    QTest.keyClick(win, Qt.Key.Key_Tab)       # to T12: it is not in this scan
    QTest.keyClick(win, Qt.Key.Key_X)
    QTest.keyClick(win, Qt.Key.Key_Q if keys == "Ctrl+Q" else Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=3000)
    rows = {(p.exam_id, p.level): p for p in read_picks_csv(studies / "picks.csv")[0]}
    assert rows[("s1", "L3")].slice_index == placed and rows[("s1", "L3")].status == "corrected"
    assert rows[("s1", "T12")].status == "not_in_scan"
    assert ("s2", "L3") not in rows      # never decided, never written


def test_a_short_scan_fills_its_projection_panels_at_one_mm_per_mm(qtbot, tmp_path):
    volume = torso(128, 3.0, 5.0)
    studies = tmp_path / "studies"
    middle = volume.shape[0] // 2
    write_series(studies / "short", volume, range(middle - 8, middle + 8))   # 16 slices, 80 mm
    win = shown(qtbot, ReviewWindow(open_review([studies]), predict=False))
    qtbot.wait(100)
    for view in (win.frontal, win.sagittal):
        rows, cols = view.image_item.image.shape
        assert cols > 2 * rows                # a wide, short image
        rect = view.image_item.mapRectToScene(view.image_item.boundingRect())
        w, h = view.viewport().width(), view.viewport().height()
        assert rect.width() >= w - 4 or rect.height() >= h - 4
        assert rect.width() * rect.height() >= 0.6 * w * h, "the image fills its panel, not a strip in it"
        assert rect.width() / cols == pytest.approx(rect.height() / rows, rel=0.01)   # 1 mm = 1 mm
        assert rect.left() + rect.right() == pytest.approx(w, abs=3)      # centred across
        assert rect.top() + rect.bottom() == pytest.approx(h, abs=3)      # and down

"""The L3/T12 review queue as a clinician uses it: open a picks CSV or a folder of studies, look at
the lines on the projections and the axial slice, decide with single keys or by dragging a line,
and find every decision in the CSV on disk (and its audit trail) at once."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.review.sources import open_review
from app.review.window import ReviewWindow
from ctviewer.io.writers import write_volume
from ctviewer.workflows.slice_locator.picks import Pick, PicksFile, read_picks_csv

pytestmark = pytest.mark.gui

NAMES = ("case0", "case1", "case2")


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Three small synthetic abdomen scans (96×96, 4 mm pixels, 5 mm slices) and their true levels."""
    from ctviewer.synth import TorsoParams, make_torso

    folder = tmp_path_factory.mktemp("scans")
    truth = {}
    for seed, name in enumerate(NAMES):
        torso = make_torso(TorsoParams(seed=seed, matrix=(96, 96), pixel_spacing=4.0, slice_spacing=5.0,
                                       field_of_view="abdomen", noise_sd=5.0))
        write_volume(torso.image, folder / f"{name}.nii.gz")
        truth[name] = {level: torso.levels[level].slice for level in ("L3", "T12")}
        truth[name]["z"] = [float(torso.image.index_to_lps((k, 0, 0))[2]) for k in range(torso.image.shape[0])]
    return folder, truth


@pytest.fixture
def study_dir(scans, tmp_path):
    folder = tmp_path / "studies"
    shutil.copytree(scans[0], folder)
    return folder


def predicted(exam: str, level: str, k: int, z: list[float], confidence: float) -> Pick:
    return Pick(exam, level, k, z[k], None, 5.0, 5.0, "slice_locator v1", confidence, "predicted")


@pytest.fixture
def picks_csv(study_dir, scans, tmp_path):
    """A picks CSV with predictions for every study (L3 two slices off, T12 right) and its sidecar."""
    truth = scans[1]
    picks = PicksFile.create(tmp_path / "picks.csv")
    for name in NAMES:
        picks.set_study_path(name, study_dir / f"{name}.nii.gz")
        z = truth[name]["z"]
        picks.set_many([predicted(name, "L3", truth[name]["L3"] + 2, z, 0.91),
                        predicted(name, "T12", truth[name]["T12"], z, 0.64)], "predict")
    return picks.path


def on_disk(path, exam: str, level: str) -> Pick:
    picks, _ = read_picks_csv(path)
    return next(p for p in picks if p.exam_id == exam and p.level == level)


def audit_lines(csv_path) -> list[dict]:
    path = csv_path.with_name(csv_path.stem + ".audit.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def open_window(qtbot):
    def opened(paths, predict=True, wait=True, locator=None) -> ReviewWindow:
        win = ReviewWindow(open_review(paths), predict=predict, locator=locator)
        assert win.loaded is None     # scans load in workers: the window never waits for one
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        qtbot.waitUntil(win.isActiveWindow, timeout=5000)
        if wait:
            qtbot.waitUntil(lambda: win.loaded is not None, timeout=20000)
        return win
    return opened


def key(win, k, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(win, k, modifier)


def test_csv_opens_and_lines_sit_on_the_picks(open_window, picks_csv, scans):
    truth = scans[1]
    win = open_window([picks_csv])
    assert win.queue.exam_ids == list(NAMES)
    assert win.loaded.exam_id == "case0"
    proj = win.loaded.projections
    for level in ("L3", "T12"):
        pick = on_disk(picks_csv, "case0", level)
        for view in (win.frontal, win.sagittal):
            assert view.line_row(level) == pytest.approx(proj.z_to_row(pick.z_mm), abs=0.05)
    # the active level (L3) is drawn thicker, and the axial slice is its pick
    assert win.frontal.lines["L3"].pen.widthF() > win.frontal.lines["T12"].pen.widthF()
    assert win.axial.slice_index == truth["case0"]["L3"] + 2
    caption = win.axial.caption.text()
    assert f"slice index {truth['case0']['L3'] + 2}" in caption and "z " in caption
    assert win.frontal.lines["L3"].label.toPlainText() == "L3  91%"
    assert win.table.level_text(0, "L3") == f"predicted {truth['case0']['L3'] + 2}"
    assert win.progress_label.text().startswith("0 of 3 reviewed")


def test_enter_accepts_writes_the_csv_at_once_and_moves_on(open_window, picks_csv, scans, qtbot):
    truth = scans[1]
    win = open_window([picks_csv])
    before = len(audit_lines(picks_csv))
    key(win, Qt.Key.Key_Return)
    l3 = on_disk(picks_csv, "case0", "L3")
    assert (l3.status, l3.slice_index, l3.source) == ("accepted", truth["case0"]["L3"] + 2, "slice_locator v1")
    assert l3.reviewed_at and on_disk(picks_csv, "case0", "T12").status == "predicted"
    assert win.active_level == "T12" and win.axial.slice_index == truth["case0"]["T12"]
    with qtbot.waitSignal(win.study_shown, timeout=20000) as shown:
        key(win, Qt.Key.Key_Enter)     # the keypad's Enter does the same
    assert shown.args == ["case1"] and win.active_level == "L3"
    assert on_disk(picks_csv, "case0", "T12").status == "accepted"
    log = audit_lines(picks_csv)[before:]
    assert [(e["exam_id"], e["level"], e["action"]) for e in log] == [("case0", "L3", "accept"),
                                                                       ("case0", "T12", "accept")]
    assert log[0]["old"]["status"] == "predicted" and log[0]["new"]["status"] == "accepted"
    assert win.progress_label.text().startswith("1 of 3 reviewed")
    assert win.table.item(0, 0).text() == "✓ case0" and win.table.item(1, 0).text().startswith("▶")


def test_up_and_shift_down_correct_the_pick_by_one_and_five_slices(open_window, picks_csv, scans):
    truth = scans[1]
    win = open_window([picks_csv])
    k0 = truth["case0"]["L3"] + 2
    proj = win.loaded.projections
    key(win, Qt.Key.Key_Up)
    up = on_disk(picks_csv, "case0", "L3")
    assert (up.slice_index, up.status, up.source, up.confidence) == (k0 + 1, "corrected", "manual", None)
    assert up.z_mm == pytest.approx(truth["case0"]["z"][k0 + 1], abs=1e-3) and up.reviewed_at
    assert win.axial.slice_index == k0 + 1
    assert win.frontal.line_row("L3") == pytest.approx(proj.z_to_row(up.z_mm), abs=0.05)
    key(win, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    down = on_disk(picks_csv, "case0", "L3")
    assert (down.slice_index, down.status) == (k0 - 4, "corrected")
    assert win.sagittal.line_row("L3") == pytest.approx(proj.z_to_row(down.z_mm), abs=0.05)
    assert [e["action"] for e in audit_lines(picks_csv)[-2:]] == ["correct", "correct"]
    assert on_disk(picks_csv, "case0", "T12").status == "predicted"   # only the active level moved
    assert win.table.level_text(0, "L3") == f"corrected {k0 - 4}"


def drag_line(view, level: str, to_row: float) -> None:
    """Press on the level's line, move in small steps (12 ms apart, pyqtgraph's mouse rate), release."""
    def widget_pos(row: float) -> QPoint:
        centre_col = view.image_item.width() / 2
        return view.mapFromScene(view.box.mapViewToScene(QPointF(centre_col, row)))

    target = view.viewport()
    start, end = widget_pos(view.line_row(level)), widget_pos(to_row)
    left = Qt.MouseButton.LeftButton
    QTest.mouseMove(target, start)
    QTest.qWait(12)
    QTest.mousePress(target, left, Qt.KeyboardModifier.NoModifier, start)
    for n in range(1, 11):
        QTest.mouseMove(target, start + (end - start) * (n / 10))
        QTest.qWait(12)
    QTest.mouseRelease(target, left, Qt.KeyboardModifier.NoModifier, end)
    QTest.qWait(12)


def test_dragging_a_line_moves_the_pick_to_the_slice_it_snaps_to(open_window, picks_csv, scans):
    truth = scans[1]
    win = open_window([picks_csv])
    proj = win.loaded.projections
    k0 = truth["case0"]["T12"]
    target_row = proj.z_to_row(truth["case0"]["z"][k0]) - 31.0   # 31 mm up: nearest slice is 6 higher
    drag_line(win.sagittal, "T12", target_row)
    t12 = on_disk(picks_csv, "case0", "T12")
    assert (t12.slice_index, t12.status, t12.source) == (k0 + 6, "corrected", "manual")
    # the line snapped onto that slice in both projections; the axial slice follows the dragged level
    for view in (win.frontal, win.sagittal):
        assert view.line_row("T12") == pytest.approx(proj.z_to_row(t12.z_mm), abs=0.05)
    assert win.active_level == "T12" and win.axial.slice_index == k0 + 6
    assert on_disk(picks_csv, "case0", "L3").status == "predicted"
    assert audit_lines(picks_csv)[-1]["action"] == "correct"


def test_flag_not_in_scan_tab_and_study_navigation(open_window, picks_csv, qtbot):
    win = open_window([picks_csv])
    n = len(audit_lines(picks_csv))
    key(win, Qt.Key.Key_F)
    assert on_disk(picks_csv, "case0", "L3").status == "flagged"
    assert win.active_level == "T12"          # a flag is a decision: on to the next level
    key(win, Qt.Key.Key_Tab)
    assert win.active_level == "L3"
    key(win, Qt.Key.Key_Tab)
    with qtbot.waitSignal(win.study_shown, timeout=20000) as shown:
        key(win, Qt.Key.Key_X)                # both levels decided: on to the next study
    assert shown.args == ["case1"]
    t12 = on_disk(picks_csv, "case0", "T12")
    assert (t12.status, t12.slice_index, t12.z_mm, t12.source) == ("not_in_scan", None, None, "manual")
    assert len(audit_lines(picks_csv)) == n + 2          # one audit line per decision, none for Tab
    assert win.table.level_text(0, "T12") == "not in scan"
    assert win.table.level_text(0, "L3").startswith("flagged")
    assert win.progress_label.text().startswith("1 of 3 reviewed")   # a flag counts: "look again"
    with qtbot.waitSignal(win.study_shown, timeout=20000) as shown:
        key(win, Qt.Key.Key_N)
    assert shown.args == ["case2"] and win.queue.current == 2
    key(win, Qt.Key.Key_P)
    key(win, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: win.loaded is not None and win.loaded.exam_id == "case0", timeout=20000)
    # T12 not in scan: a dashed line mid-scan, to drag where it is after all
    assert win.frontal.lines["T12"].pen.style() == Qt.PenStyle.DashLine
    # Enter on the flagged level after a second look accepts it
    assert win.active_level == "L3"
    key(win, Qt.Key.Key_Return)
    assert on_disk(picks_csv, "case0", "L3").status == "accepted"


def test_next_study_is_prefetched(open_window, picks_csv, qtbot):
    win = open_window([picks_csv])
    qtbot.waitUntil(lambda: win.loader.get("case1") is not None, timeout=20000)
    with qtbot.waitSignal(win.study_shown, timeout=100):   # shown at once, from the prefetched study
        key(win, Qt.Key.Key_N)
    assert win.loaded.exam_id == "case1"


def test_unreadable_study_shows_its_reason_and_the_queue_goes_on(open_window, study_dir, qtbot):
    (study_dir / "broken.nii.gz").write_bytes(b"\x1f\x8bnot really gzip")
    win = open_window([study_dir], predict=False, wait=False)
    assert win.queue.exam_ids == ["broken", *NAMES]
    qtbot.waitUntil(lambda: "broken" in win.queue.errors, timeout=20000)
    assert "gzip" in win.table.note_text(0) or "NIfTI" in win.table.note_text(0)
    assert "cannot be shown" in win.axial.caption.text()
    with qtbot.waitSignal(win.study_shown, timeout=20000) as shown:
        key(win, Qt.Key.Key_Return)      # Enter on a study that cannot be read: go on to the next
    assert shown.args == ["case0"]
    assert win.table.note_text(1) == ""
    # no model was run: the levels are placed by hand, from mid-scan
    key(win, Qt.Key.Key_Up)
    placed = on_disk(study_dir / "picks.csv", "case0", "L3")
    assert (placed.status, placed.slice_index) == ("corrected", win.loaded.volume.shape[0] // 2 + 1)


def test_closing_loses_nothing_and_reopening_resumes_at_the_first_unreviewed(open_window, picks_csv, qtbot,
                                                                               tmp_path):
    win = open_window([picks_csv])
    key(win, Qt.Key.Key_Return)
    with qtbot.waitSignal(win.study_shown, timeout=20000):
        key(win, Qt.Key.Key_Return)
    key(win, Qt.Key.Key_F)             # case1 L3 flagged, T12 still predicted: case1 is not reviewed
    win.close()
    again = open_window([picks_csv])
    assert again.queue.current == 1 and again.loaded.exam_id == "case1"
    assert again.active_level == "T12"
    assert again.progress_label.text().startswith("1 of 3 reviewed")
    # the seed's format, for the thesis's scripts: flagged rows are left out
    out = tmp_path / "seed.csv"
    again.ask_export_path = lambda level: out
    again.export_dialog("L3")
    lines = out.read_text().splitlines()
    assert lines[0] == "exam_id,L3_slice_num" and len(lines) == 3
    assert lines[1].startswith("case0,") and not any(line.startswith("case1,") for line in lines)


def test_opening_a_folder_writes_its_picks_csv_and_studies_sidecar(open_window, study_dir):
    win = open_window([study_dir], predict=False)
    key(win, Qt.Key.Key_Down)
    csv_path = study_dir / "picks.csv"
    assert on_disk(csv_path, "case0", "L3").status == "corrected"
    studies = json.loads((study_dir / "picks.studies.json").read_text())
    assert set(studies) == set(NAMES)
    assert str(study_dir) not in csv_path.read_text()       # paths stay out of the CSV


class StandInLocator:
    """Anything with a card, levels, a threshold and heatmaps can locate: this one is sure of L3 at
    mid-height and finds no T12 (the window's part of predicting, without Keras)."""

    levels, threshold = ("L3", "T12"), 0.3
    card = SimpleNamespace(name="stand-in", version="2")

    def heatmaps(self, projections):
        rows = np.arange(projections.rows)
        peak = np.exp(-0.5 * ((rows - projections.rows // 2) / 4.0) ** 2).astype(np.float32)
        return {"L3": 0.8 * peak, "T12": 0.1 * peak}


def test_studies_without_picks_are_predicted_in_a_worker_then_reviewed(open_window, study_dir, scans, qtbot):
    """The stand-in network puts L3 mid-scan, which the vertebra count (made in the same worker) says is
    L4's body: "levels disagree — check", the network's slice kept. It misses T12, which the count places
    on its true body. Both are written unreviewed; a person's Enter decides each."""
    win = open_window([study_dir], locator=StandInLocator())
    csv_path = study_dir / "picks.csv"
    qtbot.waitUntil(lambda: win.table.level_text(0, "T12").startswith("from the spine count"), timeout=20000)
    proj, truth = win.loaded.projections, scans[1]["case0"]
    l3 = on_disk(csv_path, "case0", "L3")
    assert (l3.status, l3.source, l3.confidence, l3.reviewed_at) == ("levels_disagree", "stand-in v2", 0.8, "")
    assert l3.slice_index == proj.z_to_slice(proj.row_to_z(proj.rows // 2))
    assert win.frontal.line_row("L3") == pytest.approx(proj.z_to_row(l3.z_mm), abs=0.05)
    assert win.table.level_text(0, "L3") == f"levels disagree — check {l3.slice_index}"
    t12 = on_disk(csv_path, "case0", "T12")
    assert (t12.status, t12.source) == ("predicted", "spine count") and abs(t12.slice_index - truth["T12"]) <= 3
    log = audit_lines(csv_path)
    assert [e["action"] for e in log if e["exam_id"] == "case0"] == ["predict", "predict"]
    assert {e["exam_id"] for e in log} <= {"case0", "case1"}     # the next study is prefetched, no more
    key(win, Qt.Key.Key_Return)          # the clinician looked, and takes the network's slice after all
    assert on_disk(csv_path, "case0", "L3").status == "accepted"
    assert win.active_level == "T12"
    with qtbot.waitSignal(win.study_shown, timeout=20000):
        key(win, Qt.Key.Key_Return)      # the count's T12, confirmed by a person
    t12 = on_disk(csv_path, "case0", "T12")
    assert (t12.status, t12.source) == ("accepted", "spine count") and t12.reviewed_at
    assert win.table.level_text(0, "T12") == f"accepted {t12.slice_index}"


def write_dicom_series(folder, volume) -> int:
    """``volume`` as an axial CT series, one file per slice, InstanceNumbers counting from the head
    down (so that they differ from slice index + 1); returns the number of slices."""
    from tests.dicom_series import write_ct_series

    n = volume.shape[0]
    planes = [volume.array[k].astype(np.int16) for k in range(n)]
    positions = [volume.index_to_lps((k, 0, 0)) for k in range(n)]
    names = [f"im{(k * 37) % n:03d}.dcm" for k in range(n)]
    write_ct_series(folder, planes, positions, names, per_slice=[{"InstanceNumber": n - k} for k in range(n)],
                    pixel_spacing=volume.spacing[1:], rescale=(1, 0), StudyInstanceUID="1.2.3", SliceThickness=5.0)
    return n


def test_dicom_series_folder_is_one_study_and_picks_carry_instance_numbers(open_window, tmp_path, qtbot):
    from ctviewer.synth import TorsoParams, make_torso

    torso = make_torso(TorsoParams(matrix=(80, 80), pixel_spacing=5.0, slice_spacing=5.0, field_of_view="abdomen"))
    studies = tmp_path / "studies"
    studies.mkdir()
    n = write_dicom_series(studies / "series1", torso.image)
    win = open_window([studies], predict=False)
    assert win.queue.exam_ids == ["series1"]
    key(win, Qt.Key.Key_Up)
    k = n // 2 + 1
    pick = on_disk(studies / "picks.csv", "series1", "L3")
    assert (pick.slice_index, pick.instance_number) == (k, n - k)
    assert f"instance {n - k}" in win.axial.caption.text()


def test_folder_without_picks_is_predicted_by_the_shipped_model(open_window, study_dir, scans, qtbot):
    """The shipped locator, run in its child process (Keras never enters the GUI process), writes its
    picks to disk; every level lands within one slice of the truth, as its card reports for all of its
    held-out synthetic scans (within_1_slice = 1.0), where the middle slice, a constant guess, does not."""
    from ctviewer.ml.registry import SHIPPED_DIR

    if not (SHIPPED_DIR / "slice_locator.keras").is_file():
        pytest.skip("the shipped locator models/slice_locator.keras is absent")
    card = json.loads((SHIPPED_DIR / "slice_locator.json").read_text())
    win = open_window([study_dir], wait=False)
    qtbot.waitUntil(lambda: win.picks.get("case0", "T12") is not None, timeout=120000)
    qtbot.waitUntil(lambda: win.loaded is not None, timeout=20000)
    truth = scans[1]["case0"]
    for level in ("L3", "T12"):
        pick = on_disk(study_dir / "picks.csv", "case0", level)
        assert pick.source == f"slice_locator v{card['version']}" and not pick.reviewed_at
        assert pick.status == "predicted", pick      # both levels are in this abdomen scan
        assert card["metrics"]["synthetic_test"][level]["within_1_slice"] == 1.0
        assert abs(pick.slice_index - truth[level]) <= 1, (level, pick.slice_index, truth[level])
        assert abs(len(truth["z"]) // 2 - truth[level]) > 1
    assert audit_lines(study_dir / "picks.csv")[-1]["action"] == "predict"


def test_main_window_file_menu_opens_the_review_queue(qtbot, picks_csv, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    import app.review.opening as review_opening
    from app.main_window import MainWindow

    main = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(main)
    monkeypatch.setattr(review_opening, "ask_review_paths", lambda parent: [picks_csv])
    (action,) = [a for a in main.menuBar().actions()[0].menu().actions() if a.text() == "Review slice &picks…"]
    action.trigger()
    win = main.review_window
    assert isinstance(win, ReviewWindow) and win.isVisible() and win.queue.exam_ids == list(NAMES)
    qtbot.waitUntil(lambda: win.loaded is not None, timeout=20000)


def test_review_command_refuses_a_bad_csv_in_one_line(tmp_path, capsys):
    from app.main import main

    bad = tmp_path / "seed.csv"
    bad.write_text("exam_id,L3_slice_num\ncase0,50\n")
    assert main(["review", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "seed.csv" in err and "not a picks CSV" in err and "\n" not in err


# -- the vertebra count on the projections -------------------------------------------------------

@pytest.fixture(scope="module")
def counted_scan(tmp_path_factory):
    """A synthetic abdomen at 2.5 mm pixels (the counter's grid), its file, true levels and vertebra count."""
    from ctviewer.io import read_volume
    from ctviewer.synth import TorsoParams, make_torso
    from ctviewer.workflows.slice_locator.locate import read_ct
    from ctviewer.workflows.slice_locator.vertebrae import count_vertebrae

    folder = tmp_path_factory.mktemp("counted")
    torso = make_torso(TorsoParams.random(11, field_of_view="abdomen", matrix=(160, 160), pixel_spacing=2.5))
    write_volume(torso.image, folder / "abdomen.nii.gz")
    assert read_volume(folder / "abdomen.nii.gz").shape == torso.image.shape
    return folder / "abdomen.nii.gz", torso, count_vertebrae(read_ct(folder / "abdomen.nii.gz"))


def _pixels_of(widget, colour) -> int:
    """How many pixels of the widget as drawn on screen have exactly ``colour``."""
    from PySide6.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    rgb = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)[:, :3 * w].reshape(h, w, 3)
    return int(np.all(rgb == colour, axis=-1).sum())


def test_every_counted_vertebra_is_a_named_tick_and_a_disagreeing_pick_says_so(open_window, counted_scan, tmp_path,
                                                                               qtbot):
    from app.review.projection_view import TICK_COLOUR

    path, torso, count = counted_scan
    assert count.found and len(count.vertebrae) >= 6
    picks = PicksFile.create(tmp_path / "picks.csv")
    picks.set_study_path("abdomen", path)
    z = [float(torso.image.index_to_lps((k, 0, 0))[2]) for k in range(torso.image.shape[0])]
    l3, on_l1 = torso.levels["L3"].slice, torso.levels["L1"].slice
    # as `ctviewer locate` writes it where the network put T12 on L1 and the count put it one body higher
    picks.set_many([predicted("abdomen", "L3", l3, z, 0.9),
                    replace(predicted("abdomen", "T12", on_l1, z, 0.7), status="levels_disagree")], "predict")
    win = open_window([picks.path], predict=False)
    proj = win.loaded.projections
    qtbot.waitUntil(lambda: win.loaded.spine is not None, timeout=5000)
    names = [v.level for v in count.vertebrae]
    assert "T12" in names and "L3" in names
    for view in (win.frontal, win.sagittal):
        assert view.tick_texts() == names                      # one named tick per counted vertebra
        _, ys = view.ticks.getData()
        centres = ys[0::6]                                     # each vertebra: its tick, then its two discs
        assert np.allclose(centres, [proj.z_to_row(v.centre_mm) for v in count.vertebrae])
        label = view.tick_labels[names.index("T12")]
        assert label.pos().y() == pytest.approx(proj.z_to_row(count.find("T12").centre_mm))
        assert _pixels_of(view, TICK_COLOUR) > 20 * len(names)  # drawn on screen, in the ticks' green
    # the disagreeing pick: in the study's status, the queue and on its line; never shown as a plain pick
    t12 = count.find("T12")
    assert f"T12: levels disagree — check (the count: slices {t12.bottom_slice}–{t12.top_slice})" in \
        win.study_status.text()
    assert "L3:" not in win.study_status.text()
    assert win.table.level_text(0, "T12") == f"levels disagree — check {on_l1}"
    assert "levels disagree — check" in win.frontal.lines["T12"].label.toPlainText()
    # a prediction written without the count (an older CSV) is cross-checked when shown
    win.picks.set(predicted("abdomen", "L3", torso.levels["L5"].slice, z, 0.9), "predict")
    win.go_to(0)
    assert "L3: levels disagree — check (the count: slices" in win.study_status.text()
    # without the count there is nothing green on the projection (the ticks are what put it there)
    win.frontal.set_ticks(None)
    assert win.frontal.tick_texts() == [] and _pixels_of(win.frontal, TICK_COLOUR) == 0


def test_a_level_the_network_misses_comes_from_the_count_in_the_worker(open_window, counted_scan, tmp_path, qtbot):
    """The stand-in network finds no T12: the count, made in the loading worker, places it on its true
    body; the pick on disk says where it came from, its audit line why, and the study's status tells the
    clinician."""
    import shutil as sh

    path, torso, _ = counted_scan
    folder = tmp_path / "studies"
    folder.mkdir()
    sh.copy(path, folder / path.name)
    win = open_window([folder], locator=StandInLocator())
    csv_path = folder / "picks.csv"
    qtbot.waitUntil(lambda: win.picks.get("abdomen", "T12") is not None, timeout=20000)
    t12, truth = on_disk(csv_path, "abdomen", "T12"), torso.levels["T12"]
    assert (t12.source, t12.status, t12.reviewed_at) == ("spine count", "predicted", "")
    assert truth.bottom_slice <= t12.slice_index <= truth.top_slice
    note = next(e for e in audit_lines(csv_path) if e["level"] == "T12")["note"]
    assert note.startswith("from the spine count: the locator says not in scan")
    qtbot.waitUntil(lambda: "T12: from the spine count" in win.study_status.text(), timeout=5000)
    assert win.table.level_text(0, "T12") == f"from the spine count {t12.slice_index}"


def test_a_csv_with_other_levels_reviews_them_too(open_window, counted_scan, tmp_path):
    """A CSV from ``ctviewer locate --levels L1,T12`` opens with a column and a line for L1 beside L3 and
    T12; Tab reaches it and its decision is written like any other."""
    path, torso, _ = counted_scan
    picks = PicksFile.create(tmp_path / "picks.csv")
    picks.set_study_path("abdomen", path)
    z = [float(torso.image.index_to_lps((k, 0, 0))[2]) for k in range(torso.image.shape[0])]
    l1 = torso.levels["L1"].slice
    picks.set_many([replace(predicted("abdomen", "L1", l1, z, 0.6), source="spine count"),
                    predicted("abdomen", "T12", torso.levels["T12"].slice, z, 0.8)], "predict")
    win = open_window([picks.path], predict=False)
    assert win.queue.levels == ("L3", "T12", "L1")
    assert win.table.horizontalHeaderItem(3).text() == "L1"
    assert win.table.level_text(0, "L1") == f"from the spine count {l1}"
    assert win.frontal.line_row("L1") == pytest.approx(win.loaded.projections.z_to_row(z[l1]), abs=0.05)
    win.set_active_level("L1")
    key(win, Qt.Key.Key_Return)
    assert (on_disk(picks.path, "abdomen", "L1").status, on_disk(picks.path, "abdomen", "L1").source) == \
        ("accepted", "spine count")


def test_a_level_in_view_that_nobody_found_needs_a_look_never_reads_not_in_scan(open_window, counted_scan, tmp_path,
                                                                                qtbot):
    """A row ``ctviewer locate`` wrote as ``not_found`` (the scan covers the level, neither the network nor the
    count placed it): the queue says "in view, not found — check" in the colour of a pick to look at, the
    study's status says where the count expects it, Enter cannot accept it as "not in scan", and placing it
    by hand writes a correction to the CSV on disk."""
    from app.review.queue import STATE_LOOK
    from ctviewer.workflows.slice_locator.combine import expected_centre
    from ctviewer.workflows.slice_locator.picks import KNOWN_LEVELS, level_order

    path, torso, count = counted_scan
    above = KNOWN_LEVELS[level_order(count.vertebrae[0].level) - 1]    # the level above the highest counted
    picks = PicksFile.create(tmp_path / "picks.csv")
    picks.set_study_path("abdomen", path)
    z = [float(torso.image.index_to_lps((k, 0, 0))[2]) for k in range(torso.image.shape[0])]
    missed = Pick("abdomen", above, None, None, None, 5.0, 5.0, "spine count", None, "not_found")
    picks.set_many([predicted("abdomen", "L3", torso.levels["L3"].slice, z, 0.9),
                    predicted("abdomen", "T12", torso.levels["T12"].slice, z, 0.8), missed], "predict")
    win = open_window([picks.path], predict=False)
    qtbot.waitUntil(lambda: win.loaded.spine is not None, timeout=5000)
    assert win.queue.levels == ("L3", "T12", above)
    text, colour = STATE_LOOK["not_found"]
    assert win.table.level_text(0, above) == text == "in view, not found — check"
    cell = win.table.item(0, 1 + win.queue.levels.index(above))
    assert cell.background().color().getRgb()[:3] == colour != STATE_LOOK["not_in_scan"][1]
    assert not win.queue.is_reviewed("abdomen")
    k = int(np.abs(np.asarray(z) - expected_centre(above, win.loaded.spine)[0]).argmin())
    assert f"{above}: in view, not found — check (expected near slice {k})" in win.study_status.text()
    # Enter has nothing to accept: the row on disk and its audit trail stay as they are
    win.set_active_level(above)
    n = len(audit_lines(picks.path))
    key(win, Qt.Key.Key_Return)
    assert on_disk(picks.path, "abdomen", above) == missed and len(audit_lines(picks.path)) == n
    assert win.statusBar().currentMessage().startswith(f"{above} is in view but was not found")
    # placed by hand (one slice up from mid-scan): a correction with a slice, reviewed
    key(win, Qt.Key.Key_Up)
    placed = on_disk(picks.path, "abdomen", above)
    assert (placed.status, placed.source, placed.slice_index) == ("corrected", "manual", len(z) // 2 + 1)
    assert win.table.level_text(0, above) == f"corrected {len(z) // 2 + 1}"

"""The model dock: the model list and cards, training in a worker (progress, curves, log, Cancel, errors,
one at a time, closing the app mid-training), the Train… dialog, and running the shipped locator on a
study (skipped until models/slice_locator.keras exists).

Training uses the ML tests' tiny task (8 numbers in, one out): a training of a few epochs takes about a
second once TensorFlow is imported (once per session, a few seconds)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt, QTimer

from app.docks.model_dock import ModelDock
from app.main_window import MainWindow
from ctviewer.ml import registry
from ctviewer.ml.training import TrainConfig
from ctviewer.workflows.slice_locator.picks import Pick
from tests.conftest import REPO

pytestmark = pytest.mark.gui
SHIPPED_LOCATOR = REPO / "models" / "slice_locator.keras"


#: The tiny test tasks (tests/gui/dock_tasks.py), found by the training child through this variable.
#: That module imports Keras, so this process never imports it (TensorFlow here would crash VTK).
DOCK_TASK_MODULES = "dock_tiny=tests.gui.dock_tasks:DOCK_TINY,dock_broken=tests.gui.dock_tasks:DOCK_BROKEN"


@pytest.fixture(scope="session")
def tiny_tasks():
    """The tiny task under names of our own; one variant fails to load its data (a bug in a task)."""
    os.environ["CTVIEWER_TASK_MODULES"] = DOCK_TASK_MODULES
    yield "dock_tiny"
    os.environ.pop("CTVIEWER_TASK_MODULES", None)


@pytest.fixture(scope="session")
def trained_tiny(tiny_tasks, tmp_path_factory):
    """One saved tiny model with its card (trained once per session, in a child process like the GUI's:
    TensorFlow in this process would crash the VTK tests that follow)."""
    from ctviewer.ml.child import train_in_child

    folder = tmp_path_factory.mktemp("trained")
    train_in_child(TrainConfig(task="dock_tiny", name="tiny-model", epochs=2, batch_size=32, out_dir=folder,
                             data={"samples": 256}))
    return folder


@pytest.fixture
def models(trained_tiny, tmp_path, monkeypatch):
    """The user's models folder with the tiny model and a broken entry; no shipped models."""
    user = tmp_path / "models"
    user.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copy(trained_tiny / f"tiny-model{suffix}", user)
    (user / "orphan.keras").write_bytes(b"not a model")   # no card beside it
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(user))
    monkeypatch.setattr(registry, "SHIPPED_DIR", shipped)
    return user


@pytest.fixture
def dock(qtbot, models):
    d = ModelDock()
    qtbot.addWidget(d)
    d.show()
    yield d
    d.shutdown()


@pytest.fixture
def window(qtbot, tmp_path, models):
    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))   # 3D panel too
    win.ask_unsaved = lambda names: "discard"   # a prediction never saved is asked about on closing
    qtbot.addWidget(win)
    win.show()
    yield win
    win.model_dock.shutdown()


def config(name="tiny-new", epochs=3, **extra):
    return TrainConfig(task="dock_tiny", name=name, epochs=epochs, batch_size=16, data={"samples": 512},
                       patience=0, extra=extra)


def log_text(dock) -> str:
    return dock.log_view.toPlainText()


_METERS: list["GapMeter"] = []


@pytest.fixture(autouse=True)
def _stop_meters():
    """A test that fails while a meter runs must not leave its timer ticking into the next tests."""
    yield
    while _METERS:
        _METERS.pop().timer.stop()


def open_and_draw(window, qtbot, study) -> None:
    """Open ``study`` and wait for the 3D panel's first picture of it (seconds on software OpenGL, a cost of
    opening a study rather than of running a model)."""
    with qtbot.waitSignal(window.viewer.view3d.scene_ready, timeout=60000):
        window.set_study(study)


#: (start, end) of every frame the 3D panel drew on the GUI thread in this test.
_DRAWING_3D: list[tuple[float, float]] = []


@pytest.fixture(autouse=True)
def _time_3d_frames(monkeypatch):
    """Each frame of the 3D panel is drawn on the GUI thread, and under Xvfb that is Mesa's llvmpipe:
    0.4-1 s per frame of volume rendering on this 2-core CPU, whenever the panel repaints (a resize when a
    dock's row appears is enough). That is the 3D panel's known cost on software OpenGL (reported, not this
    dock's doing): the gap meters leave those frames out and hold the model run to 0.25 s."""
    from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor

    from app.views.view3d import View3D

    def timed(method):
        def frame(self, *args):
            start = time.perf_counter()
            try:
                return method(self, *args)
            finally:
                _DRAWING_3D.append((start, time.perf_counter()))
        return frame

    _DRAWING_3D.clear()
    monkeypatch.setattr(QVTKRenderWindowInteractor, "paintEvent", timed(QVTKRenderWindowInteractor.paintEvent))
    monkeypatch.setattr(View3D, "_render", timed(View3D._render))


class GapMeter:
    """A 10 ms timer: the longest gap between its ticks, less the 3D panel's frames drawn meanwhile, is how
    long the event loop was blocked."""

    def __init__(self, on_tick=None):
        _METERS.append(self)
        self.timer = QTimer(interval=10)
        self.ticks: list[float] = [time.perf_counter()]
        self.on_tick = on_tick
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self):
        self.ticks.append(time.perf_counter())
        if self.on_tick:
            self.on_tick()

    def stop(self, since: float = 0.0) -> float:
        """The longest gap after ``since`` (a perf_counter time)."""
        self.timer.stop()
        ticks = self.ticks + [time.perf_counter()]
        return max(b - a - _drawing_3d(a, b) for a, b in zip(ticks, ticks[1:]) if b > since)


def _drawing_3d(a: float, b: float) -> float:
    return sum(max(0.0, min(b, end) - max(a, start)) for start, end in _DRAWING_3D)


def test_list_shows_models_and_cards_broken_entries_greyed_with_reason(dock):
    names = [dock.model_list.topLevelItem(n).text(0) for n in range(dock.model_list.topLevelItemCount())]
    assert names == ["tiny-model", "orphan"]
    assert dock.select_model("tiny-model")
    card = dock.card_view.toPlainText()
    for text in ("tiny-model", "tiny test model", "dock_tiny", "Metrics on held-out data", "accuracy",
                 "held out", "samples", "epochs", "batch size", "classes: negative, positive"):
        assert text in card, text
    # a task without a run action: the button says why
    assert not dock.run_button.isEnabled()
    assert "dock_tiny models cannot be run on a study yet" in dock.run_button.toolTip()
    dock.select_model("orphan")
    item = dock.model_list.currentItem()
    assert item.foreground(0).color().red() == 140 and item.text(3) == "cannot be used"
    assert "no model card beside the model" in dock.card_view.toPlainText()
    assert "cannot be used" in dock.run_button.toolTip()


def test_card_shows_real_data_per_case_and_what_not_to_trust_before_the_held_out_metrics(dock, models):
    """What a user reads first about a model: how it did on real scans or photos, one row each, the
    data's credits, and where not to trust it; the synthetic held-out metrics come after."""
    import json

    path = models / "tiny-model.json"
    card = json.loads(path.read_text())
    card["real_data"] = {"summary": "real photos: 0.86 on unseen ones", "sources": ["Craig Phillips (MIT)"],
                         "cases": [{"case": "photo 9", "role": "held out", "figures": {"mean_iou": 0.8612}},
                                   {"case": "photo 2", "role": "trained on (not held out)",
                                    "figures": {"mean_iou": 0.91}, "remark": "seen in training"}]}
    card["do_not_trust"] = ["photos of another rock type"]
    path.write_text(json.dumps(card))
    dock.refresh_models(select="tiny-model")
    text = dock.card_view.toPlainText()
    order = [text.index(t) for t in ("On real data", "real photos: 0.86 on unseen ones", "photo 9", "held out",
                                     "mean iou: 0.8612", "photo 2", "trained on (not held out)", "seen in training",
                                     "Craig Phillips (MIT)", "Do not trust it", "photos of another rock type",
                                     "Metrics on held-out data")]
    assert order == sorted(order), text


def test_train_from_the_dialog_reports_progress_and_curves_and_adds_the_model(dock, qtbot):
    def fill(dialog):
        dialog.task.setCurrentText("dock_tiny")
        qtbot.waitUntil(lambda: dialog._loading is None, timeout=30000)
        dialog.name.setText("tiny-new")
        dialog.epochs.setValue(3)
        dialog.batch_size.setValue(16)
        dialog.patience.setValue(0)
        return True

    seen = {"bar": set(), "train_disabled": False, "first_batch": None}

    def watch():   # what the user sees while the training runs
        if dock.training:
            if seen["first_batch"] is None and dock._last_batch is not None:
                seen["first_batch"] = time.perf_counter()
            seen["bar"].add(dock.train_bar.value())
            seen["train_disabled"] |= not dock.train_button.isEnabled() and "one training" in \
                dock.train_button.toolTip().lower()

    dock.exec_dialog = fill
    meter = GapMeter(watch)
    with qtbot.waitSignal(dock.training_finished, timeout=180000) as done:
        dock.open_train_dialog()
        assert dock.training
    # TensorFlow's tracing of a new model's first batch holds the GIL a few hundred ms (the benchmark
    # reports it apart); from then on the event loop must keep running
    gap = meter.stop(since=seen["first_batch"])
    result = done.args[0]
    assert result is not None and result.entry.name == "tiny-new"
    assert gap < 0.25, f"the event loop stalled {gap * 1000:.0f} ms during training"
    assert len(seen["bar"]) >= 3 and seen["train_disabled"]   # progress moved while training
    x, loss = dock.curves.curve_data("loss")
    assert len(loss) == 3 * dock._last_batch.batches and x[-1] == pytest.approx(3.0)   # a point per batch
    assert list(dock.curves.curve_data("val_loss")[0]) == [1, 2, 3]
    assert dock.curves.metric_name == "accuracy" and len(dock.curves.curve_data("val_metric")[1]) == 3
    text = log_text(dock)
    for line in ("epoch 1/3: loss", "epoch 3/3: loss", "saved", "tiny-new.keras"):
        assert line in text
    assert dock.model_list.currentItem().text(0) == "tiny-new"
    assert "tiny-new" in dock.card_view.toPlainText()
    assert dock.train_button.isEnabled() and not dock.training


def test_cancel_stops_training_and_says_where_the_best_checkpoint_is(dock, qtbot, models):
    dock.start_training(config("tiny-cancelled", epochs=500))
    assert not dock.start_training(config("second"))   # one training at a time
    # wait for a first epoch to end (a checkpoint exists), then Cancel
    qtbot.waitUntil(lambda: len(dock.curves.curve_data("val_loss")[0]) >= 1, timeout=90000)
    with qtbot.waitSignal(dock.training_finished, timeout=60000) as done:
        qtbot.mouseClick(dock.train_cancel, Qt.MouseButton.LeftButton)
    assert done.args[0] is None
    text = log_text(dock)
    assert "training cancelled; best checkpoint kept at" in text and "best.keras" in text
    assert dock.train_status.text() == "training cancelled"
    assert len(dock.curves.curve_data("val_loss")[0]) < 500
    assert not (models / "tiny-cancelled.keras").exists() and not dock.select_model("tiny-cancelled")
    qtbot.waitUntil(lambda: not dock.training)
    assert dock.train_button.isEnabled()


def test_errors_go_to_the_log_and_the_status_bar_and_the_app_goes_on(window, qtbot):
    dock = window.model_dock
    with qtbot.waitSignal(dock.training_finished, timeout=90000):
        dock.start_training(config("oom", oom=True))
    message = "Training failed: out of memory with batch size 16; try a smaller batch (8)"
    assert message in log_text(dock) and message in window.statusBar().currentMessage()
    assert dock.tabs.currentWidget() is dock.log_view
    with qtbot.waitSignal(dock.training_finished, timeout=90000):
        dock.start_training(dataclasses.replace(config("buggy"), task="dock_broken"))
    assert "Training failed: TaskBug: the data loader of this task is broken" in log_text(dock)
    # still usable: the next training runs to its end
    with qtbot.waitSignal(dock.training_finished, timeout=90000) as done:
        dock.start_training(config("after-errors", epochs=1))
    assert done.args[0] is not None and dock.select_model("after-errors")


def test_closing_during_training_asks_then_cancels(window, qtbot, models):
    dock = window.model_dock
    answers = []
    dock.ask_stop_training = lambda: answers.pop(0)
    dock.start_training(config("long", epochs=500))
    qtbot.waitUntil(lambda: len(dock.curves.curve_data("loss")[0]) > 0, timeout=90000)
    answers.append(False)
    window.close()
    assert window.isVisible() and dock.training     # the user chose to keep training
    answers.append(True)
    window.close()
    assert not window.isVisible()
    assert dock._pool.activeThreadCount() == 0       # the training thread has stopped
    assert "training cancelled" in log_text(dock) and not (models / "long.keras").exists()


def test_train_dialog_builds_the_config_and_loads_toml(dock, qtbot, tmp_path, tiny_tasks):
    from app.dialogs.train_dialog import TrainDialog

    dialog = TrainDialog(["dock_tiny", "dock_broken"], task="dock_tiny")
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog._loading is None, timeout=30000)
    assert "no default settings" in dialog.message.text() and not dialog.data.fields
    dialog.learning_rate.setValue(0.01)
    dialog.augmentation.setChecked(False)
    dialog.validation.setValue(0.3)
    dialog.name.setText("my model")
    dialog.accept()   # a name that cannot be a file name: refused with the reason, dialog stays
    assert dialog.result() == 0 and "key 'name'" in dialog.message.text()
    dialog.name.setText("my-model")
    cfg = dialog.config()
    assert (cfg.task, cfg.name, cfg.data, cfg.learning_rate, cfg.augmentation, cfg.validation_fraction) == \
        ("dock_tiny", "my-model", {}, 0.01, False, 0.3)
    toml = tmp_path / "train.toml"
    toml.write_text('task = "dock_tiny"\nname = "from-file"\nepochs = 7\nseed = 5\n'
                    '[data]\nsynthetic = 40\npicks_csv = "reviewed.csv"\nsources = ["synthetic", "npz"]\n'
                    'augment_thickness = true\nreal_test = [{ name = "slab", image = "ct.nii.gz" }]\n')
    assert dialog.load_config(toml)
    assert dialog.data.editor("picks_csv").text() == str(tmp_path / "reviewed.csv")   # relative to the file
    assert dialog.data.editor("real_test").text() == "name: slab, image: ct.nii.gz"   # shown, kept as it is
    dialog.data.editor("synthetic").setValue(12)
    dialog.data.editor("sources").setText("synthetic")
    cfg = dialog.config()
    assert cfg.epochs == 7 and cfg.seed == 5 and cfg.name == "from-file"   # seed: kept from the file
    assert cfg.data == {"synthetic": 12, "picks_csv": str(tmp_path / "reviewed.csv"), "sources": ["synthetic"],
                        "augment_thickness": True, "real_test": [{"name": "slab", "image": "ct.nii.gz"}]}
    (tmp_path / "bad.toml").write_text('task = "dock_tiny"\nname = "x"\nepochs = "many"\n')
    assert not dialog.load_config(tmp_path / "bad.toml")
    assert "bad.toml" in dialog.message.text() and "epochs" in dialog.message.text()


@pytest.mark.skipif(not (REPO / "models" / "configs" / "slice_locator.toml").exists(),
                    reason="no shipped slice_locator config")
def test_train_dialog_starts_from_the_shipped_models_settings(qtbot):
    """The default of a task is its shipped model's config, saved to the user's folder, not models/."""
    from app.dialogs.train_dialog import TrainDialog

    dialog = TrainDialog(["dock_tiny", "slice_locator"], task="slice_locator")
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog._loading is None, timeout=60000)
    assert dialog.data.editor("synthetic").value() > 0 and "abdomen_slab" in dialog.data.editor("real_test").text()
    cfg = dialog.config()
    assert cfg.task == "slice_locator" and cfg.name.startswith("slice_locator-")
    assert cfg.out_dir is None and cfg.log_dir is None and cfg.extra.get("levels") == ["L3", "T12"]


def test_picks_table_and_go_to(dock, stamp_study, qtbot):
    dock.set_study(stamp_study)
    common = dict(exam_id="stamp", instance_number=None, slice_thickness_mm=2.5, spacing_mm=2.5, source="m v1")
    picks = [Pick(level="L3", slice_index=17, z_mm=42.5, confidence=0.91, status="predicted", **common),
             Pick(level="T12", slice_index=None, z_mm=None, confidence=0.05, status="not_in_scan", **common)]
    dock.show_picks(picks)
    rows = [[dock.picks_table.item(r, c).text() for c in range(5)] for r in range(2)]
    assert rows == [["L3", "17", "42.5", "91%", "predicted"], ["T12", "", "", "5%", "not in scan"]]
    _, y, x = stamp_study.cursor
    dock.picks_table.selectRow(0)
    qtbot.mouseClick(dock.go_button, Qt.MouseButton.LeftButton)
    assert stamp_study.cursor == (17, y, x)
    (layer,) = [ly for ly in stamp_study.layers.by_kind("lines") if ly.name == "model picks"]
    assert [(ln.index, ln.name) for ln in layer.lines] == [(17, "L3")]
    dock.picks_table.selectRow(1)
    assert not dock.go_button.isEnabled() and "T12 is not in this scan" in dock.go_button.toolTip()
    with qtbot.waitSignal(dock.error) as err:
        dock.go_to_pick(1)
    assert err.args[0] == "T12 is not in this scan" and stamp_study.cursor == (17, y, x)


@pytest.fixture
def torso():
    from ctviewer.synth import TorsoParams, make_torso

    return make_torso(TorsoParams(seed=3, matrix=(96, 96), pixel_spacing=4.0, slice_spacing=5.0))


def test_run_on_this_study_in_a_worker_fills_the_picks_and_go_to_moves_the_cursor(window, qtbot, models, torso):
    """The wiring, with an untrained small locator whose threshold 0 places every level in the scan."""
    from ctviewer.data import Study
    from ctviewer.ml.child import ModelProcess

    maker = ModelProcess()   # Keras only in child processes, as in the app
    maker.call("tests.gui.dock_tasks:save_small_locator", str(models))
    maker.close()
    dock = window.model_dock
    dock.refresh_models()
    dock.select_model("small-locator")
    assert not dock.run_button.isEnabled() and dock.run_button.toolTip() == "Open a study first"
    open_and_draw(window, qtbot, Study(torso.image))
    assert dock.run_button.isEnabled()
    meter = GapMeter()
    with qtbot.waitSignal(dock.picks_found, timeout=90000) as found:
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
        assert not dock.run_button.isEnabled()   # one run at a time; the rest of the window works
    assert meter.stop() < 0.25
    picks = found.args[0]
    assert [p.level for p in picks] == ["L3", "T12"] and all(p.in_scan for p in picks)
    # an untrained network's picks, cross-checked with the vertebra count: the table says where they disagree
    assert dock.picks_table.rowCount() == 2
    assert [dock.picks_table.item(r, 4).text() for r in range(2)] == \
        ["levels disagree — check" if p.status == "levels_disagree" else "predicted" for p in picks]
    assert "L3: slice" in log_text(dock)
    dock.picks_table.cellDoubleClicked.emit(1, 0)
    assert window.study.cursor[0] == picks[1].slice_index
    assert window.viewer.views["axial"].slice_index == picks[1].slice_index
    (layer,) = [ly for ly in window.study.layers.by_kind("lines") if ly.name == "model picks"]
    assert sorted(ln.name for ln in layer.lines) == ["L3", "T12"]
    assert not dock.review_button.isEnabled() and "from a file" in dock.review_button.toolTip()
    # a photo is no CT: the reason goes to the log and the status bar
    from ctviewer.data import Volume

    window.set_study(Study(Volume(np.zeros((1, 8, 8, 3), np.uint8), name="photo")))
    assert dock.picks_table.rowCount() == 0   # the picks belonged to the study that went away
    with qtbot.waitSignal(dock.error, timeout=90000) as err:
        dock.run_selected()
    message = "Running the model failed: photo: is a photo, not a CT scan"
    assert err.args[0] == message and message in window.statusBar().currentMessage() and message in log_text(dock)


@pytest.mark.skipif(not SHIPPED_LOCATOR.exists(), reason="models/slice_locator.keras is not trained yet")
def test_run_shipped_locator_on_a_synthetic_torso(window, qtbot, monkeypatch):
    from ctviewer.data import Study
    from ctviewer.synth import TorsoParams, make_torso

    monkeypatch.setattr(registry, "SHIPPED_DIR", SHIPPED_LOCATOR.parent)
    dock = window.model_dock
    dock.refresh_models()
    torso = make_torso(TorsoParams(seed=3, matrix=(160, 160), pixel_spacing=2.5, slice_spacing=5.0))
    open_and_draw(window, qtbot, Study(torso.image))
    assert dock.select_model("slice_locator") and dock.run_button.isEnabled()
    meter = GapMeter()
    with qtbot.waitSignal(dock.picks_found, timeout=180000) as found:
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
    assert meter.stop() < 0.25
    picks = {p.level: p for p in found.args[0]}
    assert dock.picks_table.rowCount() == len(picks) >= 2
    truth = torso.levels["L3"].slice
    assert picks["L3"].in_scan and abs(picks["L3"].slice_index - truth) <= 2
    row = [p.level for p in dock.picks].index("L3")
    dock.picks_table.cellDoubleClicked.emit(row, 0)
    assert window.study.cursor[0] == picks["L3"].slice_index
    assert window.viewer.views["axial"].slice_index == picks["L3"].slice_index


def test_review_reuses_the_docks_picks_instead_of_predicting_again(window, qtbot, models, torso, tmp_path):
    from ctviewer.io.writers import write_volume
    from ctviewer.ml.child import ModelProcess
    from ctviewer.workflows.slice_locator.picks import PicksFile

    maker = ModelProcess()
    maker.call("tests.gui.dock_tasks:save_small_locator", str(models))
    maker.close()
    path = write_volume(torso.image, tmp_path / "case7.nii.gz")
    with qtbot.waitSignal(window.opener.opened, timeout=60000):
        window.open_paths([path])
    dock = window.model_dock
    dock.refresh_models()
    dock.select_model("small-locator")
    with qtbot.waitSignal(dock.picks_found, timeout=90000):
        dock.run_selected()
    assert dock.review_button.isEnabled()
    dock.open_review()
    review = dock._review_window
    try:
        stored = PicksFile.open(tmp_path / "picks.csv")
        for pick in dock.picks:   # the dock's picks are the review's rows, under the file's exam id
            row = stored.get("case7", pick.level)
            assert row is not None and row.slice_index == pick.slice_index and row.status == pick.status
        qtbot.waitUntil(lambda: review.loaded is not None, timeout=90000)
        assert review.loaded.predicted == []   # nothing was predicted a second time
    finally:
        review.close()


def _small_unet_on(window, qtbot, models, torso, change_card=None):
    """The small segmentation model "small-liver" (its card changed by ``change_card``) selected in the
    dock, and ``torso``'s scan open with its true labels as the "reference" layer: (dock, study)."""
    from ctviewer.data import Study
    from ctviewer.data.layers import LabelLayer
    from ctviewer.ml.child import ModelProcess

    maker = ModelProcess()
    maker.call("tests.gui.dock_tasks:save_small_unet", str(models))
    maker.close()
    if change_card is not None:
        _set_card(models, "small-liver", change_card)
    dock = window.model_dock
    dock.refresh_models()
    assert dock.select_model("small-liver")
    study = Study(torso.image)
    study.layers.append(LabelLayer(torso.labels, name="reference"))
    open_and_draw(window, qtbot, study)
    return dock, study


def test_a_segmentation_model_adds_an_editable_label_layer_scored_against_the_reference(window, qtbot, models,
                                                                                        torso, tmp_path):
    """Run → a label layer on the study's grid that the annotator edits, in 3D, scored in the Scores tab."""
    dock, study = _small_unet_on(window, qtbot, models, torso)
    assert dock.run_button.isEnabled() and "label layer" in dock.run_button.toolTip()
    # the labels dock's statistics of the 86 reference labels arrive meanwhile: filling them mustn't stall
    meter = GapMeter()
    with qtbot.waitSignal(dock.segmentation_added, timeout=180000) as added:
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
    assert meter.stop() < 0.25
    layer = added.args[0]
    assert layer in study.layers and layer.name == "small-liver prediction"
    assert layer.array.shape == torso.image.shape and set(np.unique(layer.array)) == {5}   # threshold 0: all
    assert layer.labels.table[5].name == "liver"
    assert window.annotator.layer is layer                 # the brush corrects the prediction
    # scored against the reference layer: Dice of "everything" against the true liver
    truth = torso.labels.array == 5
    expected = 2 * truth.sum() / (truth.sum() + truth.size)
    (row,) = dock.scores.rows
    assert row["label"] == "liver" and row["model"] == "small-liver" and abs(row["dice"] - expected) < 1e-6
    assert dock.scores.summary.rowCount() == 1 and dock.scores.save_table.isEnabled()
    saved = dock.scores.save(tmp_path / "compare.csv", comparison=True)
    assert saved.read_text().splitlines()[0].startswith("model,label,mean_dice")
    assert "Dice" in log_text(dock)


# -- the locator cross-checked with the vertebra count; vertebrae by level -------------------------------

@pytest.fixture
def abdomen():
    """T10 to the hips: the count names T10–S1 from the ribs and from the sacrum."""
    from ctviewer.synth import TorsoParams, make_torso

    return make_torso(TorsoParams.random(11, field_of_view="abdomen", matrix=(160, 160), pixel_spacing=2.5))


def _set_card(models, name: str, change) -> None:
    import json

    path = models / f"{name}.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def test_run_locator_gives_locates_combined_answer_and_draws_every_counted_vertebra(window, qtbot, models,
                                                                                    abdomen):
    """A network that finds nothing (threshold above any peak) on a scan whose vertebrae the count names:
    as `ctviewer locate`, L3 and T12 come from the count, and the table says so; every counted vertebra
    is a named line in the other views."""
    from ctviewer.data import Study
    from ctviewer.ml.child import ModelProcess
    from ctviewer.workflows.slice_locator.vertebrae import count_vertebrae

    maker = ModelProcess()
    maker.call("tests.gui.dock_tasks:save_small_locator", str(models))
    maker.close()
    _set_card(models, "small-locator", lambda card: card["outputs"].update(threshold=1.01))
    dock = window.model_dock
    dock.refresh_models()
    assert dock.select_model("small-locator")
    open_and_draw(window, qtbot, Study(abdomen.image))
    meter = GapMeter()
    with qtbot.waitSignal(dock.picks_found, timeout=90000) as found:
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
    assert meter.stop() < 0.25   # the count ran in the worker, not on the GUI thread
    count = count_vertebrae(abdomen.image)
    assert [v.level for v in count.vertebrae] == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    picks = {p.level: p for p in found.args[0]}
    for level in ("L3", "T12"):
        truth = abdomen.levels[level]
        assert picks[level].slice_index == count.find(level).centre_slice
        assert truth.bottom_slice <= picks[level].slice_index <= truth.top_slice
        row = [p.level for p in dock.picks].index(level)
        texts = [dock.picks_table.item(row, c).text() for c in range(dock.picks_table.columnCount())]
        assert texts[4:] == ["from the spine count", "spine count"], texts
    assert dock.picks_table.horizontalHeaderItem(5).text() == "Source"
    lines = {ly.name: ly for ly in window.study.layers.by_kind("lines")}
    assert [(ln.index, ln.name) for ln in lines["vertebra count"].lines] == \
        [(v.centre_slice, v.level) for v in count.vertebrae]
    assert sorted(ln.name for ln in lines["model picks"].lines) == ["L3", "T12"]
    assert "L3: slice" in log_text(dock) and "from the spine count" in log_text(dock)
    assert "count: T12 slice" in log_text(dock)


def test_a_vertebrae_model_gives_a_label_per_level_scored_per_level(window, qtbot, models, abdomen):
    """A model whose card paints "vertebrae" (ids 26–50, one label 100; here everything, threshold 0): the
    layer holds the levels' labels (26 S1 … 31 L1 …) with their names and colours, and is scored both
    as the model was trained (all vertebrae) and per level against the reference."""
    vertebrae = {"name": "vertebrae", "ids": list(range(26, 51)), "label_id": 100}
    dock, _ = _small_unet_on(window, qtbot, models, abdomen,
                             lambda card: card["outputs"].update(groups=[vertebrae]))
    with qtbot.waitSignal(dock.segmentation_added, timeout=180000) as added:
        dock.run_selected()
    layer = added.args[0]
    table = layer.labels.table
    assert {26, 27, 28, 29, 30, 31, 32, 33, 34} <= set(np.unique(layer.array).tolist())
    assert table[31].name == "vertebrae L1" and table[26].name == "vertebrae S1"
    assert len({table[i].colour for i in table.ids}) == len(table)
    assert "levels T10–S1 from the spine count (9 vertebrae)" in log_text(dock)
    labels = [row["label"] for row in dock.scores.rows]
    assert labels[0] == "vertebrae" and "vertebrae L1" in labels and "vertebrae S1" in labels
    truth = (abdomen.labels.array >= 26) & (abdomen.labels.array <= 50)
    expected = 2 * truth.sum() / (truth.sum() + truth.size)   # "everything" against all true vertebrae
    assert abs(dock.scores.rows[0]["dice"] - expected) < 1e-6

"""Training a segmentation model on the study open in the app: the Train… dialog lists it with its label
layers, the dock writes it as NIfTI pairs in the user's models folder and the training gets that folder in
``data.sources``; unchecked, nothing changes; a study with empty labels is refused in the dock's log.

The training worker's function is replaced by one that records its config: what is checked here is
what reaches it, not a model (the segmentation tasks' own tests train those)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.dialogs.train_dialog import TrainDialog
from app.docks import model_dock
from app.docks.model_dock import ModelDock
from ctviewer.data import LabelLayer, LabelMap
from ctviewer.ml import registry
from ctviewer.workflows.segmentation.cases import find_cases

pytestmark = pytest.mark.gui


@pytest.fixture
def trainings(monkeypatch):
    """The configs that reach the training worker (no model is trained: 2 shared cores and CI time allow no
    training; the config the dock builds from the open studies is what these tests check)."""
    seen = []

    def record(config, events, progress=None, cancel=None):
        seen.append(config)
        return SimpleNamespace(entry=None, best_epoch=1, stopped_early=False)

    monkeypatch.setattr(model_dock, "train_model", record)
    return seen


@pytest.fixture
def dock(qtbot, tmp_path, monkeypatch, stamp_study):
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path / "shipped")
    stamp_study.layers.append(LabelLayer(LabelMap.empty_like(stamp_study.image), name="empty layer"))
    d = ModelDock()
    qtbot.addWidget(d)
    d.set_study(stamp_study)
    yield d
    d.shutdown()


def train_with(dock, qtbot, choose):
    """Open Train…, let ``choose(dialog)`` fill it, press Train; the finished training's result."""
    def fill(dialog):
        dialog.task.setCurrentText("segmentation_2d")
        qtbot.waitUntil(lambda: dialog._loading is None, timeout=10000)
        dialog.name.setText("liver-from-study")
        choose(dialog)
        return True

    dock.exec_dialog = fill
    with qtbot.waitSignal(dock.training_finished, timeout=20000) as done:
        dock.open_train_dialog()
    return done.args[0]


def test_the_open_study_is_written_and_added_to_the_training_sources(dock, qtbot, trainings, stamp_study, tmp_path):
    shown = {}

    def look(dialog):
        box = dialog.studies
        shown["visible"] = not box.isHidden()
        shown["rows"] = [(check.text(), check.isChecked(), combo.currentText(),
                          [combo.itemText(i) for i in range(combo.count())]) for _, check, combo in box.rows]

    result = train_with(dock, qtbot, look)

    assert result is not None and shown["visible"]
    # checked, with the layer that holds labels chosen (not the newer, empty one)
    assert shown["rows"] == [("stamp", True, "liver mask", ["liver mask", "empty layer"])]
    (config,) = trainings
    folder = tmp_path / "models" / "training_studies" / "liver-from-study"
    assert config.data["sources"] == [str(folder)]
    (ref,) = find_cases(folder)
    case = ref.load()
    assert case.image.same_grid(stamp_study.image) and np.array_equal(case.image.array, stamp_study.image.array)
    assert np.array_equal(case.labels, stamp_study.layers.by_kind("labels")[0].array)
    assert set(np.unique(case.labels)) == {0, 5}
    assert "writing 1 open study" in dock.log_view.toPlainText() and not dock.training


def test_unchecked_nothing_changes_and_other_tasks_do_not_list_studies(dock, qtbot, trainings, stamp_study,
                                                                       tmp_path):
    result = train_with(dock, qtbot, lambda dialog: dialog.studies.rows[0][1].setChecked(False))

    assert result is not None and trainings[0].data.get("sources") is None
    assert not (tmp_path / "models" / "training_studies").exists()
    dialog = TrainDialog(["slice_locator", "segmentation_3d"], task="slice_locator", studies=[stamp_study])
    qtbot.addWidget(dialog)
    assert dialog.studies.isHidden() and dialog.chosen_studies() == []
    dialog.task.setCurrentText("segmentation_3d")
    assert not dialog.studies.isHidden() and [name for name, _, _ in dialog.chosen_studies()] == ["stamp"]
    qtbot.waitUntil(lambda: dialog._loading is None, timeout=10000)


def test_empty_labels_are_refused_in_the_dock_and_no_training_starts(dock, qtbot, trainings):
    def choose_empty(dialog):
        dialog.studies.rows[0][2].setCurrentText("empty layer")

    with qtbot.waitSignal(dock.error, timeout=20000) as error:
        result = train_with(dock, qtbot, choose_empty)

    assert result is None and trainings == []
    assert "study 'stamp' has an empty label map" in error.args[0]
    assert "Cannot train on the open studies" in dock.log_view.toPlainText()
    assert dock.train_button.isEnabled() and not dock.training


def test_segmentation_tasks_start_from_the_shipped_configs_data(qtbot):
    """No ``segmentation_2d.toml`` ships, so the form comes from the config of a model training that task
    (liver_unet2d.toml): the user edits its target and window instead of facing an empty data form."""
    from ctviewer.ml.tasks import task_names

    dialog = TrainDialog(task_names(), task="segmentation_3d")
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.task_loaded, timeout=10000):
        pass
    assert dialog.data.values()["target"] == "vertebrae=26-50"
    dialog.task.setCurrentText("segmentation_2d")
    qtbot.waitUntil(lambda: dialog._loading is None, timeout=10000)
    assert dialog.data.values()["target"] == "liver=5"
    assert dialog.config().out_dir is None   # never writes into the shipped models folder

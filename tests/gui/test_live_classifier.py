"""The live classifier panel: scribble two classes, the photo is classified in a worker, Accept, Undo."""

from __future__ import annotations

import numpy as np
import pytest

from app.annotation import Annotator
from app.thin_section.live_classifier import CLASSIFIER_NAME, SCRIBBLES_NAME, LiveClassifierPanel
from app.workers import wait_for_workers
from ctviewer.data import LabelLayer, LabelMap, Study, Volume

SHAPE = (80, 120)


def blue_and_beige(seed: int = 0) -> np.ndarray:
    """Left half blue epoxy, right half beige grain, with sensor noise: [1, y, x, 3] like an opened photo."""
    rng = np.random.default_rng(seed)
    rgb = np.empty(SHAPE + (3,), float)
    rgb[:, : SHAPE[1] // 2] = (40, 90, 200)
    rgb[:, SHAPE[1] // 2:] = (200, 180, 140)
    rgb += rng.normal(0, 12, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)[None]


@pytest.fixture(autouse=True)
def _workers_done():
    """A stopped session's worker may still be finishing: let it end before Qt goes away."""
    yield
    assert wait_for_workers(20000)


@pytest.fixture
def annotator():
    rgb = blue_and_beige()
    image = Volume(rgb, modality="XC", name="thin section")
    a = Annotator()
    a.set_study(Study(image))
    labels = np.zeros((1,) + SHAPE, np.uint8)
    labels[0, 5:10, 5:10] = 1   # what the user painted before scribbling
    a.study.layers.append(LabelLayer(LabelMap(image.with_array(labels)), name="labels"))
    return a


def open_panel(qtbot, annotator) -> LiveClassifierPanel:
    panel = LiveClassifierPanel(annotator)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.start()
    qtbot.waitUntil(lambda: panel.features_ready, timeout=10000)
    return panel


def stroke(annotator, label: int, x: int, rows=(20, 60)) -> None:
    """One brush stroke down the photo, through the editor the brush tool uses."""
    annotator.set_label(label)
    annotator.editor.line((0, rows[0], x), (0, rows[1], x), 3)


def halves() -> np.ndarray:
    return np.broadcast_to(np.where(np.arange(SHAPE[1]) < SHAPE[1] // 2, 3, 5), SHAPE)


def test_two_strokes_classify_the_photo_and_accept_is_one_undo_step(qtbot, annotator):
    labels = annotator.study.layers[0]
    before = labels.array.copy()
    panel = open_panel(qtbot, annotator)
    assert annotator.layer.name == SCRIBBLES_NAME and annotator.tool == "brush"
    assert [ly.name for ly in annotator.study.layers] == ["labels", CLASSIFIER_NAME, SCRIBBLES_NAME]
    stroke(annotator, 3, 15)
    stroke(annotator, 5, 100)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=10000)
    classifier = next(ly for ly in annotator.study.layers if ly.name == CLASSIFIER_NAME)
    assert np.mean(classifier.array[0] == halves()) > 0.95
    assert classifier.opacity < labels.opacity and "2 classes" in panel.status.text()
    assert panel.error.text() == ""

    assert panel.accept() is labels and annotator.layer is labels
    np.testing.assert_array_equal(labels.array[0], panel.result)
    assert labels.labels.table[3].name == "blue-dye epoxy (visual porosity)"
    annotator.undo()
    np.testing.assert_array_equal(labels.array, before)


def test_the_newest_stroke_wins_over_a_running_update(qtbot, annotator):
    panel = open_panel(qtbot, annotator)
    stroke(annotator, 3, 15)
    stroke(annotator, 5, 100)
    panel.update_now()                       # an update runs on two classes ...
    stroke(annotator, 1, 60, rows=(0, 79))   # ... while a third class is scribbled
    panel.update_now()
    qtbot.waitUntil(lambda: panel.result is not None and not panel.busy, timeout=15000)
    assert set(np.unique(panel.result)) == {1, 3, 5} and "3 classes" in panel.status.text()


def test_one_class_only_says_so_in_the_panel(qtbot, annotator):
    panel = open_panel(qtbot, annotator)
    stroke(annotator, 3, 15)
    qtbot.waitUntil(lambda: "only class 3" in panel.error.text(), timeout=10000)
    assert panel.result is None and not panel.accept_button.isEnabled()


def test_stop_removes_the_session_layers(qtbot, annotator):
    panel = open_panel(qtbot, annotator)
    stroke(annotator, 3, 15)
    panel.stop()
    assert [ly.name for ly in annotator.study.layers] == ["labels"] and annotator.layer.name == "labels"
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    panel.start()
    annotator.study.layers.remove(panel.scribbles)   # deleted in the layers dock: the session ends
    assert [ly.name for ly in annotator.study.layers] == ["labels"] and not panel.active


def test_a_ct_volume_is_refused_with_a_line(qtbot):
    a = Annotator()
    a.set_study(Study(Volume(np.zeros((4, 20, 20), np.int16), modality="CT")))
    panel = LiveClassifierPanel(a)
    qtbot.addWidget(panel)
    assert not panel.start()
    assert "colour photos" in panel.error.text() and len(a.study.layers) == 0

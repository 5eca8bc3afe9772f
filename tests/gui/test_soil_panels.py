"""The soil dock's analysis tabs: the Pores panel (numbers, depth profile, pore sizes, clusters, JSON,
density objects first) and the Explain panel (model and layer choosers, Grad-CAM over the views, the
activation grid window, the Grad-CAM volume in 3D, the core's refusal of a model of another size).

Cubes are small and synthetic. One test runs a real tiny soil_fraction model in the model process. The
Grad-CAM and activation tests replace the worker functions with known answers: how the panel turns a
heatmap into a layer (ReLU or signed range, unexplained slices transparent, the 3D cloud) can only be
checked against a known heatmap, an untrained model's is arbitrary, and nothing may be trained here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from app.soil import explain_work
from app.soil.explain_panel import NO_MODEL_TIP, ExplainPanel
from app.soil.pores_panel import PoresPanel
from ctviewer.data import HeatmapLayer, LabelLayer, Study, Volume
from ctviewer.data.labels import present_ids
from ctviewer.errors import InputError
from tests.gui.conftest import make_main_window, send_click
from tests.gui.soil_models import card_fields

pytestmark = pytest.mark.gui
Z, Y, X = 10, 32, 32
SPACING = (0.5, 0.1, 0.1)


def soil_cube() -> Volume:
    """Matrix of values 2000..3000, dark pores (~100) in a top-to-bottom tube and a few blobs, dense stones."""
    rng = np.random.default_rng(3)
    arr = rng.integers(2000, 3000, (Z, Y, X)).astype(np.int16)
    arr[:, 10:14, 10:14] = 100                  # a tube through every slice: percolates
    arr[2:4, 20:24, 3:7] = 150                  # an isolated pore
    arr[6:9, 25:30, 25:30] = 4000               # a stone
    return Volume(arr, spacing=SPACING, modality="CT", name="soil cube")


def pores_study(with_labels: bool = True) -> Study:
    image = soil_cube()
    study = Study(image)
    if with_labels:
        from ctviewer.workflows.soil.objects import density_objects

        study.layers.append(LabelLayer(density_objects(image), name="density objects"))
    return study


@pytest.fixture
def models(user_models):
    return user_models


@pytest.fixture
def with_3d() -> bool:
    return True   # the window as the user gets it, 3D panel included


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, models, with_3d):
    win = make_main_window(qtbot, tmp_path, monkeypatch, with_3d=with_3d)
    yield win
    win.model_dock.shutdown()


def panel_in(window, qtbot, cls):
    panel = cls(window)
    qtbot.addWidget(panel)
    panel.show()
    return panel


# -- pores ---------------------------------------------------------------------------------------

def test_pores_panel_shows_the_numbers_profile_sizes_and_clusters_of_pore_stats(window, qtbot, tmp_path):
    from ctviewer.workflows.soil.pores import pore_stats

    study = pores_study()
    window.set_study(study)
    panel = panel_in(window, qtbot, PoresPanel)
    panel.set_study(study)
    assert panel.current_choice().label == 1 and "pores" in panel.label_box.currentText()
    panel.connectivity.setCurrentIndex(panel.connectivity.findData(26))
    with qtbot.waitSignal(panel.measured, timeout=20000):
        assert panel.measure()
    expected = pore_stats(study.layers[0].array, SPACING, label=1, connectivity=26)
    shown = {name: label.text() for name, label in panel.values.items()}
    assert shown["Porosity"] == f"{100 * expected.porosity:.2f} %"
    assert shown["Pore clusters"] == str(expected.clusters)
    assert shown["Euler number"] == str(expected.euler_number)
    assert shown["Percolates top to bottom"] == ("yes" if expected.percolates else "no") == "yes"
    assert shown["Mean pore size"] == f"{expected.mean_thickness_mm:.3g} mm"
    porosity, depth = panel.profile_curve.getData()
    assert len(depth) == Z and np.allclose(depth, np.arange(Z) * SPACING[0])
    assert np.allclose(porosity, 100 * np.asarray(expected.porosity_by_slice))
    assert panel.clusters.count() == min(expected.clusters, 20) and panel.clusters.item(0).text().startswith("1.")
    bars = panel.size_bars.opts            # the pore-size histogram drawn is pore_stats' local thickness
    assert panel.size_bars in panel.sizes.getPlotItem().items
    np.testing.assert_array_equal(bars["height"], expected.thickness_counts)
    np.testing.assert_allclose(bars["x0"], expected.thickness_edges_mm[:-1])
    assert np.sum(bars["height"]) == expected.pore_voxels

    saved = panel.save_json(tmp_path / "pores.json")
    assert json.loads(saved.read_text()) == json.loads(json.dumps(expected.to_dict()))
    tables = panel.save_csv(tmp_path / "pores.csv")
    assert [t.name for t in tables] == ["pores_profile.csv", "pores_clusters.csv", "pores_sizes.csv"]
    assert len(tables[0].read_text().splitlines()) == 1 + len(expected.porosity_by_slice)

    # a click on the depth profile at 3 mm moves the views to slice 6
    panel.plots.setCurrentWidget(panel.profile)
    qtbot.waitUntil(lambda: panel.profile.isVisible() and panel.profile.width() > 50)
    qtbot.wait(50)   # the plot ranges itself to the new data when it is drawn
    box = panel.profile.getPlotItem().getViewBox()
    scene = box.mapViewToScene(QPointF(float(porosity.mean()), 3.0))
    send_click(panel.profile, panel.profile.mapFromScene(scene))
    qtbot.waitUntil(lambda: study.cursor[0] == 6, timeout=3000)


def test_a_study_without_labels_is_split_into_density_objects_first(window, qtbot):
    study = pores_study(with_labels=False)
    window.set_study(study)
    panel = panel_in(window, qtbot, PoresPanel)
    panel.set_study(study)
    assert not panel.measure_button.isEnabled() and panel.split_button.isVisible()
    assert "density objects" in panel.row.status.text()
    with qtbot.waitSignal(panel.objects_added, timeout=20000):
        qtbot.mouseClick(panel.split_button, Qt.MouseButton.LeftButton)
    assert [layer.name for layer in study.layers.by_kind("labels")] == ["density objects"]
    assert panel.current_choice().label == 1 and panel.measure_button.isEnabled()
    assert not panel.split_button.isVisible()


# -- explain -------------------------------------------------------------------------------------

def write_soil_card(folder, name: str = "soil-a", conv_layers=("block1_conv1", "block3_conv1")) -> None:
    """A registry entry (card only, no network): enough for the choosers when the workers are replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = card_fields(name, Y)
    fields["inputs"]["conv_layers"] = list(conv_layers)
    (folder / f"{name}.json").write_text(json.dumps(fields))
    (folder / f"{name}.keras").write_bytes(b"not a network")


def test_without_soil_models_the_explain_panel_says_to_train_one(window, qtbot):
    window.set_study(pores_study())
    panel = panel_in(window, qtbot, ExplainPanel)
    assert not panel.model_box.isEnabled() and panel.model_box.toolTip() == NO_MODEL_TIP
    assert "train" in NO_MODEL_TIP.lower() and not panel.slice_button.isEnabled()


def test_grad_cam_of_the_slice_is_a_float_heatmap_layer_with_the_predicted_fraction(window, qtbot, models,
                                                                                      monkeypatch):
    write_soil_card(models)
    study = pores_study()
    window.set_study(study)
    study.cursor = (4, 5, 5)
    calls = []
    heat = np.linspace(-2.0, 3.0, Y * X, dtype=np.float32).reshape(Y, X)

    def fake(volume, index, entry, layer, method, relu, thresh, progress=None, cancel=None):   # a known answer
        calls.append((index, layer, method, relu))
        return {"method": method, "layer": layer, "index": index, "fraction": 0.875,
                "heatmap": np.maximum(heat, 0) if relu else heat}

    monkeypatch.setattr(explain_work, "explain_slice", fake)
    panel = panel_in(window, qtbot, ExplainPanel)
    panel.set_study(study)
    assert panel.layer_box.currentText() == "block3_conv1"
    with qtbot.waitSignal(panel.explained, timeout=5000):
        assert panel.explain_slice()
    assert calls == [(4, "block3_conv1", "gradcam", True)]
    layer = study.layers[-1]
    assert isinstance(layer, HeatmapLayer) and layer.array.dtype == np.float32
    assert np.array_equal(layer.array[4], np.maximum(heat, 0)) and np.isnan(layer.array[3]).all()   # unexplained: drawn transparent
    assert layer.value_range == (0.0, 3.0) and layer.colormap == "inferno"
    assert "0.875" in panel.row.status.text() and "1 - fraction" in panel.row.status.text()
    assert window.layers_dock.current_layer() is layer   # colour map and opacity are one click away

    panel.relu.setChecked(False)                         # the signed map: a diverging map about 0
    with qtbot.waitSignal(panel.explained, timeout=5000):
        panel.explain_slice()
    signed = study.layers[-1]
    assert signed is not layer and layer not in study.layers
    assert signed.value_range == (-3.0, 3.0) and signed.colormap == "CET-D1" and signed.array[4].min() < 0


def test_activation_maps_open_a_grid_window_and_errors_show_in_the_panel(window, qtbot, models, monkeypatch):
    write_soil_card(models)
    study = pores_study()
    window.set_study(study)
    grid = np.full((17, 26), np.nan, np.float32)
    grid[:8, :8] = 0.5
    answers = [{"method": "activation", "layer": "block1_conv1", "index": 5, "fraction": 0.5,
                "channels": [0, 3, 4], "grid": grid},
               {"method": "activation", "layer": "block1_conv1", "index": 5, "fraction": 0.5, "channels": [],
                "grid": None}]

    def fake(volume, index, entry, layer, method, relu, thresh, progress=None, cancel=None):   # known answers
        if not answers:
            raise InputError("the model takes 200x200 slices with 3 channels but the input is 32x32 with 3 "
                             "channels; build the cube at the model's size")
        return answers.pop(0)

    monkeypatch.setattr(explain_work, "explain_slice", fake)
    panel = panel_in(window, qtbot, ExplainPanel)
    panel.set_study(study)
    panel.method.setCurrentIndex(panel.method.findData("activation"))
    assert panel.thresh.isEnabled() and not panel.relu.isEnabled() and not panel.volume_button.isEnabled()
    with qtbot.waitSignal(panel.explained, timeout=5000):
        panel.explain_slice()
    assert panel.activations.isVisible() and "3 channel(s)" in panel.activations.caption.text()
    assert panel.activations.image.image.shape == grid.shape
    with qtbot.waitSignal(panel.explained, timeout=5000):
        panel.explain_slice()
    assert "lower the threshold" in panel.row.status.text()
    panel.explain_slice()
    qtbot.waitUntil(lambda: "build the cube at the model's size" in panel.row.status.text(), timeout=5000)
    assert panel.row.status.property("error")
    assert not study.layers.by_kind("heatmap")


@pytest.mark.parametrize("with_3d", [True], ids=["with 3D"])
def test_grad_cam_volume_becomes_a_heatmap_drawn_in_3d_over_the_pores(window, qtbot, models, monkeypatch):
    write_soil_card(models)
    study = pores_study()
    window.set_study(study)
    heat = np.zeros((Z, Y, X), np.float32)
    heat[:, 18:30, 2:14] = np.arange(1, Z + 1, dtype=np.float32)[:, None, None]  # hot beside the pore tube
    seen = []

    def fake(volume, model_path, layer, relu, progress=None, cancel=None):   # a known Grad-CAM volume
        seen.append((volume.shape, layer, relu))
        progress(0.5, "half")
        return heat

    monkeypatch.setattr(explain_work, "explain_volume", fake)
    panel = panel_in(window, qtbot, ExplainPanel)
    panel.set_study(study)
    objects = study.layers[0].labels.table
    for label in objects:                  # the pores alone, as the Objects tab can show them
        objects.update(label.id, visible=label.id == 1)
    view3d = window.viewer.view3d
    view3d.set_mode("labels")
    qtbot.waitUntil(lambda: bool(view3d.scene.label_actors), timeout=20000)
    without = view3d.screenshot()
    with qtbot.waitSignal(panel.volume_explained, timeout=5000):
        assert panel.explain_volume()
    qtbot.waitUntil(lambda: view3d.heat_shown, timeout=20000)
    assert seen == [((Z, Y, X), "block3_conv1", True)]
    heat_layer = study.layers.by_kind("heatmap")[-1]
    assert heat_layer.array is heat and heat_layer.value_range == (0.0, float(Z)) and heat_layer.in_3d
    assert set(view3d.scene.label_actors) == set(present_ids(study.layers[0].array))   # the objects stay
    assert "cloud over the object surfaces" in panel.row.status.text()
    warm = lambda px: int(((px[..., 0].astype(int) - px[..., 2]) > 60).sum())   # inferno's hot end: red over blue
    assert warm(view3d.screenshot()) > warm(without) + 50
    cloud = view3d.scene.heat_prop.GetProperty()
    assert cloud.GetScalarOpacity().GetValue(0.0) == 0.0 < cloud.GetScalarOpacity().GetValue(float(Z))

    heat_layer.visible = False                                      # the layers dock's check box hides it
    assert not view3d.heat_shown
    heat_layer.visible = True
    prop = view3d.scene.heat_prop
    heat_layer.opacity = 0.2                                        # and its opacity slider thins it
    assert view3d.scene.heat_prop.GetProperty().GetScalarOpacity().GetValue(float(Z)) == pytest.approx(0.2)
    assert view3d.scene.heat_prop is prop                           # restyled, not uploaded again
    with qtbot.waitSignal(panel.volume_explained, timeout=5000):   # a second volume replaces the first
        panel.explain_volume()
    assert len(study.layers.by_kind("heatmap")) == 1 and len(study.layers.by_kind("labels")) == 1
    study.layers.remove(study.layers.by_kind("heatmap")[0])
    qtbot.waitUntil(lambda: not view3d.heat_shown, timeout=5000)


def test_a_real_tiny_model_explains_the_slice_in_the_model_process(window, qtbot, models):
    """The one real run: tiny untrained regressors built and run in the model process (never here)."""
    from ctviewer.ml.child import shared_process

    shared_process().call("tests.gui.soil_models:save_small_soil_model", str(models), "small-soil", Y)
    shared_process().call("tests.gui.soil_models:save_small_soil_model", str(models), "wrong-size", 48)
    study = pores_study()
    window.set_study(study)
    panel = panel_in(window, qtbot, ExplainPanel)
    panel.set_study(study)
    qtbot.waitUntil(lambda: panel.layer_box.count() == 13, timeout=60000)   # asked the model itself
    panel.model_box.setCurrentText("small-soil")
    qtbot.waitUntil(lambda: panel.layer_box.currentText() == "block3_conv1", timeout=30000)
    with qtbot.waitSignal(panel.explained, timeout=60000, raising=False) as blocker:
        assert panel.explain_slice()
    assert blocker.signal_triggered, panel.row.status.text()
    result = blocker.args[0]
    assert 0.0 <= result["fraction"] <= 1.0 and f"{result['fraction']:.3f}" in panel.row.status.text()
    heat = study.layers[-1]
    assert isinstance(heat, HeatmapLayer) and heat.array[study.cursor[0]].shape == (Y, X)
    assert heat.array.dtype == np.float32 and heat.array[study.cursor[0]].min() >= 0

    panel.model_box.setCurrentText("wrong-size")
    qtbot.waitUntil(lambda: panel.layer_box.currentText() == "block3_conv1", timeout=30000)
    panel.explain_slice()
    qtbot.waitUntil(lambda: "48x48" in panel.row.status.text(), timeout=30000)
    assert "build the cube at the model's size" in panel.row.status.text()


def test_opening_the_window_with_a_soil_model_does_not_start_the_model_process(qtbot, tmp_path, monkeypatch,
                                                                               user_models):
    """The layer chooser reads the model file's architecture: TensorFlow (seconds, hundreds of MB) starts
    only when the user asks for an explanation, not whenever the app opens with a soil model around."""
    from ctviewer.ml import child

    maker = child.ModelProcess()   # Keras only ever in a child; this one only writes the model file
    try:
        maker.call("tests.gui.soil_models:save_small_soil_model", str(user_models), "tiny-soil", 32)
    finally:
        maker.close()
    monkeypatch.setattr(child, "_SHARED", None)   # as in an app just started: no model process yet
    window = make_main_window(qtbot, tmp_path, monkeypatch)
    panel = window.soil_dock.explain
    window.soil_dock.show_tab(title="Explain")
    try:
        qtbot.waitUntil(lambda: panel.layer_box.count() > 0, timeout=10000)
        assert panel.layer_box.currentText() == "block3_conv1" and child._SHARED is None
    finally:
        if child._SHARED is not None:
            child._SHARED.close()
        window.model_dock.shutdown()


def test_the_slice_sent_to_the_model_is_made_from_the_channels_of_its_card(monkeypatch):
    """A model trained on other density-bin groups gets its own channels, as `ctviewer soil explain` does."""
    from types import SimpleNamespace

    from ctviewer.ml import child
    from ctviewer.workflows.soil.explain import slice_input

    sent = []

    class Process:   # the model process answers with the explanation, never with what it was sent
        def call(self, target, model_path, image, *args, **kwargs):
            sent.append(image)
            return {"fraction": 0.5}

    monkeypatch.setattr(child, "shared_process", lambda: Process())
    image = soil_cube()
    groups = [[1], [2, 3], [4, 5, 6]]
    entry = SimpleNamespace(path="m.keras", card=SimpleNamespace(inputs={"channels": groups}))
    explain_work.explain_slice(image, 3, entry, "block1_conv1", "gradcam", True, 0.0)
    assert np.array_equal(sent[0], slice_input(image, 3, tuple(map(tuple, groups))))
    assert not np.array_equal(sent[0], slice_input(image, 3))


def test_a_few_hot_voxels_do_not_darken_the_rest_of_a_grad_cam_volume():
    heat = np.linspace(0.0, 1.0, 10_000, dtype=np.float32).reshape(10, 10, 100)
    heat.flat[:5] = 50.0                               # five outliers at 50x the rest
    study = Study(Volume(np.zeros(heat.shape, np.int16)))
    layer = explain_work.volume_heatmap(study, heat, "Grad-CAM volume", signed=False)
    assert layer.value_range[1] == pytest.approx(1.0, abs=0.01) and layer.in_3d
    assert explain_work.volume_heatmap(study, -heat, "signed", signed=True).value_range[0] == pytest.approx(-1.0, abs=0.01)
    assert explain_work.heat_range(heat, signed=False) == (0.0, 50.0)   # one slice: its maximum, as the seed
    assert explain_work.volume_heatmap(study, np.zeros_like(heat), "none", False).value_range == (0.0, 1.0)

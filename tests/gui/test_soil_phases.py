"""The soil dock's Phases tab: a threshold dragged on the live histogram, the porosity and the pore phase on
the slice views following the drag, the method box, denoising, Measure (outline, profiles, REV) and what
Save writes.

The real snow sample (../shared/data/microct/snow.tif, 100³ uint16, bimodal) is used where the data folder
is present; the other cubes are small synthetic ones whose porosities are known by counting the voxels."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.soil import phases_work as work
from ctviewer.data import Study, Volume
from ctviewer.imaging import slicing
from tests.gui.conftest import make_main_window

pytestmark = pytest.mark.gui
SNOW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "microct" / "snow.tif"


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    win = make_main_window(qtbot, tmp_path, monkeypatch, with_3d=True)
    win.ask_spacing = lambda image: None   # keep 1 mm and write no sidecar beside the shared data
    yield win
    win.soil_dock.phases.shutdown()


def bimodal_cube(shape=(24, 40, 40), seed=1) -> np.ndarray:
    """Dark round pores (about 1500) in a bright solid (about 9000), with noise: two clear peaks."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    pores = np.zeros(shape, bool)
    for cz, cy, cx, r in rng.uniform((0, 0, 0, 3), (*shape, 7), (30, 4)):
        pores |= (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    arr = np.where(pores, 1500, 9000) + rng.normal(0, 400, shape)
    return np.clip(arr, 0, 65535).astype(np.uint16)


def core_in_air(shape=(24, 48, 48)) -> np.ndarray:
    """A cylinder of the bimodal cube standing in air (as dark as its pores) that fills 40 % of each slice."""
    arr = bimodal_cube(shape)
    _, y, x = np.indices(shape)
    outside = (y - 24) ** 2 + (x - 24) ** 2 > 17 ** 2
    arr[outside] = np.random.default_rng(2).normal(1500, 400, int(outside.sum())).clip(0).astype(np.uint16)
    return arr


def open_phases(window, qtbot, array=None, spacing=(0.5, 0.1, 0.1)):
    """The study (the snow sample when ``array`` is None) on screen, the Phases tab shown, its histogram counted."""
    if array is None:
        if not SNOW.exists():
            pytest.skip(f"the real micro-CT data is not here ({SNOW})")
        window.open_paths([SNOW])
        qtbot.waitUntil(lambda: window.study is not None and window.study.image.shape == (100, 100, 100),
                        timeout=20000)
    else:
        window.set_study(Study(Volume(array, spacing=spacing, modality="CT", name="cube")))
    window.soil_dock.show_tab(title="Phases")
    panel = window.soil_dock.phases
    qtbot.waitUntil(lambda: panel.found is not None, timeout=20000)
    return panel


def axial_overlay(window, layer) -> np.ndarray:
    """Where the axial view paints the pore phase now (the pixels of its label item with any alpha)."""
    view = window.viewer.views["axial"]
    return view.overlays._items[id(layer)].rgba[..., 3] > 0


def shown_pores(window, values, t) -> np.ndarray:
    k = window.study.cursor[0]
    return slicing.extract(values, "axial", k) <= t


def drag(qtbot, plot, start: float, stop: float, steps: int = 6, before_release=None):
    """A left-button drag on the histogram from grey value ``start`` to ``stop`` (real mouse events)."""
    box = plot.getPlotItem().getViewBox()
    mid = sum(box.viewRange()[1]) / 2

    def at(value):
        return plot.mapFromScene(box.mapViewToScene(QPointF(value, mid)))

    target = plot.viewport()

    def send(kind, value, button, buttons):
        pos = at(value)
        QApplication.sendEvent(target, QMouseEvent(kind, QPointF(pos), QPointF(target.mapToGlobal(pos)), button,
                                                   buttons, Qt.KeyboardModifier.NoModifier))

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    send(QEvent.Type.MouseButtonPress, start, left, left)
    for n in range(1, steps + 1):
        qtbot.wait(10)
        send(QEvent.Type.MouseMove, start + (stop - start) * n / steps, none, left)
    if before_release is not None:
        before_release()
    send(QEvent.Type.MouseButtonRelease, stop, left, none)
    qtbot.wait(20)


def test_dragging_the_threshold_on_the_snow_histogram_updates_porosity_slices_and_the_pore_layer(
        window, qtbot, monkeypatch):
    from skimage.filters import threshold_otsu

    panel = open_phases(window, qtbot)
    values = window.study.image.array
    # the valley by default, as `ctviewer soil pores`; pores at or below it
    from ctviewer.workflows.soil import phases

    t0 = panel.threshold
    assert panel.method.currentData() == "valley"
    assert t0 == phases.choose_threshold(phases.histogram(values), "valley").value
    assert panel.porosity.text().startswith(f"Porosity {100 * np.mean(values <= t0):.2f} %")
    assert 0.39 < np.mean(values <= t0) < 0.43      # the 41 %, not the seed's 14.5 %
    qtbot.waitUntil(lambda: panel.layer is not None and not panel.layers.stale, timeout=20000)
    layer = panel.layer
    assert layer is window.study.layers.by_kind("labels")[-1]   # topmost: the 3D panel shows its surface
    np.testing.assert_array_equal(layer.array, values <= t0)
    np.testing.assert_array_equal(axial_overlay(window, layer), shown_pores(window, values, t0))

    # the user drags the red line 3000 grey values up: during the drag the number and the slices follow,
    # the 3D surface (slow to extract) only once the line is let go
    view3d = window.viewer.view3d
    qtbot.waitUntil(lambda: view3d._worker is None, timeout=30000)
    handed = []
    real_set_labels = view3d.set_labels
    monkeypatch.setattr(view3d, "set_labels", lambda labels: handed.append(labels) or real_set_labels(labels))
    seen = {}

    def during():
        t = panel.threshold
        seen.update(t=t, text=panel.porosity.text(), overlay=axial_overlay(window, layer), handed=len(handed),
                    method=panel.method.currentText(), expected=shown_pores(window, values, t))

    with qtbot.waitSignal(view3d.scene_ready, timeout=60000):
        drag(qtbot, panel.histogram, t0, t0 + 3000, before_release=during)
    assert seen["t"] > t0 + 2000 and seen["method"] == "Threshold (yours)" and seen["handed"] == 0
    assert handed == [layer.labels] and view3d.scene.label_actors
    assert seen["text"].startswith(f"Porosity {100 * np.mean(values <= seen['t']):.2f} %")
    np.testing.assert_array_equal(seen["overlay"], seen["expected"])
    # let go: the whole pore phase follows in a worker (and the 3D panel is handed the new labels)
    t1 = panel.threshold
    qtbot.waitUntil(lambda: not panel.layers.stale, timeout=20000)
    np.testing.assert_array_equal(layer.array, values <= t1)
    assert f"grey <= {t1:g}" in layer.labels.table.name(1)

    # Otsu's in the method box is scikit-image's threshold on the voxels themselves; the valley's comes back
    panel.method.setCurrentIndex(panel.method.findData("otsu"))
    assert abs(panel.threshold - threshold_otsu(values)) <= 1
    panel.method.setCurrentIndex(panel.method.findData("valley"))
    assert panel.threshold == t0 and panel.histogram.line.value() == t0


def test_the_line_set_as_a_drag_sets_it_and_the_methods_give_their_thresholds(window, qtbot):
    from ctviewer.workflows.soil import phases

    cube = bimodal_cube()
    panel = open_phases(window, qtbot, cube)
    hist = phases.histogram(cube)
    for method in ("otsu", "multiotsu", "valley", "equal-bins"):
        panel.method.setCurrentIndex(panel.method.findData(method))
        assert panel.threshold == phases.choose_threshold(hist, method).value
    qtbot.waitUntil(lambda: panel.layer is not None, timeout=20000)
    # what a drag does to the line: its value set, sigPositionChanged, then sigPositionChangeFinished
    line = panel.histogram.line
    line.setValue(1500.6)                # the middle of the pore peak: half the pores' voxels
    assert panel.threshold == 1500 and panel.value.value() == 1500
    assert panel.porosity.text().startswith(f"Porosity {100 * np.mean(cube <= 1500):.2f} %")
    np.testing.assert_array_equal(axial_overlay(window, panel.layer), shown_pores(window, cube, 1500))
    line.sigPositionChangeFinished.emit(line)
    qtbot.waitUntil(lambda: not panel.layers.stale, timeout=20000)
    np.testing.assert_array_equal(panel.layer.array, cube <= 1500)
    # moving to another slice while a drag is not yet committed shows that slice at the new threshold
    line.setValue(1200)
    window.study.cursor = (5, 20, 20)
    np.testing.assert_array_equal(axial_overlay(window, panel.layer), shown_pores(window, cube, 1200))


def test_measure_outlines_a_core_in_air_plots_profiles_and_rev_and_saves_the_settings(window, qtbot, tmp_path):
    cube = core_in_air()
    panel = open_phases(window, qtbot, cube)
    whole = float(np.mean(cube <= panel.threshold))
    with qtbot.waitSignal(panel.measured, timeout=60000):
        assert panel.measure()
    found = panel.result
    assert found.sample.mask is not None and "sample outline detected" in panel.outline_note.text()
    inside = found.sample.mask
    t = panel.threshold
    # the air around the core is not pore space: the porosity is the sample's, shown as such
    porosity = np.count_nonzero((cube <= t) & inside) / np.count_nonzero(inside)
    assert found.porosity == pytest.approx(porosity) and porosity < whole - 0.2
    assert panel.porosity.text().startswith(f"Porosity {100 * porosity:.2f} %")
    assert "of the sample" in panel.detail.text()
    # the outline drawn under the pore phase (outline style), the pores only inside it
    outline = window.study.layers.by_kind("labels")
    assert [la.name for la in outline[-2:]] == [work.OUTLINE_LAYER, work.PORE_LAYER] and outline[-2].outline
    np.testing.assert_array_equal(panel.layer.array, (cube <= t) & inside)
    # profiles along z, y, x and the REV curve on screen
    z_pos, z_values = panel.plots.profile_curves["z"].getData()
    np.testing.assert_allclose(z_pos, np.arange(cube.shape[0]) * 0.5)
    np.testing.assert_allclose(z_values, 100 * found.profiles["z"])
    sides, rev = panel.plots.rev_curve.getData()
    np.testing.assert_allclose(sides, found.rev.sides_mm)

    written = panel.save(tmp_path / "core.json")
    assert [p.name for p in written] == ["core.json", "core_profiles.csv", "core_rev.csv"]
    data = json.loads((tmp_path / "core.json").read_text())
    assert data["settings"]["method"] == "valley" and data["settings"]["threshold"] == t
    assert data["settings"]["denoise"] == "none" and data["porosity"] == pytest.approx(porosity)
    assert data["phases"]["threshold"] == t and data["sample"]["detected"] is True
    with open(tmp_path / "core_profiles.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(cube.shape)
    assert {(r["method"], float(r["threshold"]), r["denoise"]) for r in rows} == {("valley", t, "none")}
    z0 = [r for r in rows if r["axis"] == "z" and r["plane"] == "0"][0]
    assert float(z0["porosity_percent"]) == pytest.approx(100 * found.profiles["z"][0], abs=1e-4)
    with open(tmp_path / "core_rev.csv", newline="") as f:
        rev_rows = list(csv.DictReader(f))
    assert len(rev_rows) == len(found.rev.sides_mm) and rev_rows[0]["method"] == "valley"
    # the pore phase saved as a label map keeps the settings in its label's name, and its voxels
    from ctviewer.io.label_files import read_label_map
    from ctviewer.io.writers import write_label_map

    saved = read_label_map(write_label_map(panel.layer.labels, tmp_path / "pores.nii.gz"))
    assert saved.table.name(1) == f"pores (valley, grey <= {t:g})"
    assert np.count_nonzero(saved.array == 1) == np.count_nonzero((cube <= t) & inside)

    # the Pores tab measures that phase; its saved statistics say how the pores were told from the solid
    pores = window.soil_dock.pores
    window.soil_dock.show_tab(title="Pores")
    assert pores.current_choice().layer is panel.layer
    with qtbot.waitSignal(pores.measured, timeout=60000):
        assert pores.measure()
    stats = json.loads(pores.save_json(tmp_path / "stats.json").read_text())
    assert stats["phases"]["method"] == "valley" and stats["phases"]["threshold"] == t
    assert stats["phases"]["sample_outline"] is True and stats["pore_voxels"] == np.count_nonzero((cube <= t) & inside)
    # the porosity of the sample, as the Phases tab and `ctviewer soil pores` say, not of the field of view
    assert stats["porosity"] == pytest.approx(porosity) and stats["phases"]["sample_voxels"] == inside.sum()
    assert pores.values["Porosity"].text() == f"{100 * porosity:.2f} %"
    by_slice = ((cube <= t) & inside).sum(axis=(1, 2)) / inside.sum(axis=(1, 2))
    assert stats["porosity_by_slice"] == pytest.approx(list(by_slice))
    tables = pores.save_csv(tmp_path / "stats.csv")
    assert [p.name for p in tables][-1] == "stats_phases.json"
    assert json.loads(tables[-1].read_text())["threshold"] == t


def test_a_sample_filling_the_view_is_said_so_and_a_median_denoised_volume_is_thresholded(window, qtbot, tmp_path):
    cube = bimodal_cube()
    panel = open_phases(window, qtbot, cube)
    panel.value.setValue(1500)           # the user's threshold, in the middle of the pore peak
    panel.denoise.setCurrentIndex(panel.denoise.findData("median"))
    qtbot.waitUntil(lambda: panel.denoised is not None and not panel.row.running, timeout=60000)
    before, after = panel.denoised.sigma_before, panel.denoised.sigma_after
    assert after < before and f"{before:.4g} -> {after:.4g}" in panel.noise.text()
    assert len(panel.histogram.cleaned.getData()[0]) > 0       # the denoised histogram drawn over the raw one
    from scipy.ndimage import median_filter

    smooth = median_filter(cube, size=3, mode="nearest")
    t = panel.threshold
    assert t == 1500 and panel.method.currentText() == "Threshold (yours)"
    assert panel.porosity.text().startswith(f"Porosity {100 * np.mean(smooth <= t):.2f} %")
    assert np.mean(smooth <= t) != np.mean(cube <= t)
    qtbot.waitUntil(lambda: not panel.layers.stale and np.array_equal(panel.layer.array, smooth <= t), timeout=20000)
    with qtbot.waitSignal(panel.measured, timeout=60000):
        panel.measure()
    assert "fills the field of view" in panel.outline_note.text()
    assert "median" in panel.layer.labels.table.name(1)
    panel.save(tmp_path / "snow")
    data = json.loads((tmp_path / "snow.json").read_text())
    assert data["settings"]["denoise"] == "median" and data["phases"]["denoise"]["noise_sigma_after"] == after


def test_denoising_can_be_cancelled_and_the_raw_volume_stays(window, qtbot, monkeypatch):
    from ctviewer.workflows.soil import phases

    # one slice per slab: Cancel is heard between slabs, so a loaded machine cannot finish the whole
    # small cube before the click arrives (with one slab the test raced the worker)
    monkeypatch.setattr(phases, "NLM_SLAB_VOXELS", 40 * 40)
    panel = open_phases(window, qtbot, bimodal_cube())
    t = panel.threshold
    panel.denoise.setCurrentIndex(panel.denoise.findData("nlm"))
    assert panel.row.running and panel.row.cancel_button.isVisible()
    qtbot.mouseClick(panel.row.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.row.running, timeout=60000)
    assert "cancelled" in panel.row.status.text()
    assert panel.denoised is None and panel.denoise.currentData() == "none" and panel.threshold == t


def test_a_unimodal_volume_asks_for_a_threshold_instead_of_a_number(window, qtbot):
    rng = np.random.default_rng(0)
    cube = rng.normal(5000, 300, (16, 32, 32)).astype(np.uint16)
    panel = open_phases(window, qtbot, cube)
    assert "cannot be separated by the histogram — give a threshold" in panel.porosity.text()
    assert "%" not in panel.porosity.text() and not panel.measure_button.isEnabled()
    panel.value.setValue(4800)           # the user types a threshold
    assert panel.method.currentText() == "Threshold (yours)"
    assert panel.porosity.text().startswith(f"Porosity {100 * np.mean(cube <= 4800):.2f} %")
    assert panel.measure_button.isEnabled()


def test_a_tiff_whose_nan_voxels_the_reader_filled_in_is_refused_in_one_line(window, qtbot, tmp_path):
    import tifffile

    values = bimodal_cube().astype(np.float32)
    values[0, 0, :5] = np.nan
    tifffile.imwrite(tmp_path / "holes.tif", values)
    window.open_paths([tmp_path / "holes.tif"])
    qtbot.waitUntil(lambda: window.study is not None and window.study.image.shape == values.shape, timeout=20000)
    assert window.study.image.meta.get("nonfinite_voxels") == 5     # the reader filled them in
    window.soil_dock.show_tab(title="Phases")
    panel = window.soil_dock.phases
    qtbot.waitUntil(lambda: "NaN or infinite" in panel.row.status.text(), timeout=20000)
    assert len(panel.row.status.text().splitlines()) == 1 and panel.row.status.property("error")
    assert panel.found is None and panel.porosity.text() == "–" and not panel.measure_button.isEnabled()


def test_a_float_threshold_at_the_smallest_value_shows_and_commits_the_same_pores(window, qtbot):
    cube = bimodal_cube().astype(np.float32) / 9000
    cube[:, :4] = 0.0                                   # a band at the smallest value
    panel = open_phases(window, qtbot, cube)
    qtbot.waitUntil(lambda: panel.layer is not None, timeout=20000)
    panel.value.setValue(0.0)
    assert panel.threshold == 0.0
    assert panel.porosity.text().startswith(f"Porosity {100 * np.mean(cube <= 0):.2f} %")
    np.testing.assert_array_equal(axial_overlay(window, panel.layer), shown_pores(window, cube, 0.0))
    qtbot.waitUntil(lambda: not panel.layers.stale, timeout=20000)
    np.testing.assert_array_equal(panel.layer.array, cube <= 0)


def test_save_proposes_a_name_beside_the_volume_and_never_overwrites_its_sidecar(window, qtbot, tmp_path):
    from ctviewer.errors import InputError
    from ctviewer.io.writers import write_volume

    path = write_volume(Volume(bimodal_cube(), spacing=(0.5, 0.1, 0.1)), tmp_path / "scan.npy")
    sidecar = json.loads((tmp_path / "scan.json").read_text())
    window.open_paths([path])
    qtbot.waitUntil(lambda: window.study is not None and window.study.image.shape == (24, 40, 40), timeout=20000)
    window.soil_dock.show_tab(title="Phases")
    panel = window.soil_dock.phases
    qtbot.waitUntil(lambda: panel.found is not None, timeout=20000)
    with qtbot.waitSignal(panel.measured, timeout=60000):
        assert panel.measure()
    assert work.default_save_name(window.study.image.source) == str(tmp_path / "scan_porosity.json")
    for name in ("scan.json", "scan.npy.json", "scan"):
        with pytest.raises(InputError, match="is the voxel-size sidecar of scan.npy"):
            panel.save(tmp_path / name)
    assert json.loads((tmp_path / "scan.json").read_text()) == sidecar     # the voxel size is still there
    written = panel.save(tmp_path / "scan_porosity.json")
    assert [p.name for p in written] == ["scan_porosity.json", "scan_porosity_profiles.csv", "scan_porosity_rev.csv"]


def test_profiles_are_saved_in_the_files_slice_order_as_the_cli_writes_them(window, qtbot, tmp_path):
    from ctviewer.imaging.orientation import to_canonical
    from ctviewer.workflows.soil import porosity

    stored = bimodal_cube()
    stored[:8] = np.where(stored[:8] < 5000, 9000, stored[:8])     # no pores in the first stored slices
    # a volume stored bottom-up (as some DICOM and NIfTI files are): the views show it reversed
    direction = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0.0]])
    shown = to_canonical(Volume(stored, spacing=(0.5, 0.1, 0.1), direction=direction, modality="CT", name="cube"))
    np.testing.assert_array_equal(shown.array, stored[::-1])
    window.set_study(Study(shown))
    window.soil_dock.show_tab(title="Phases")
    panel = window.soil_dock.phases
    qtbot.waitUntil(lambda: panel.found is not None, timeout=20000)
    with qtbot.waitSignal(panel.measured, timeout=60000):
        assert panel.measure()
    panel.save(tmp_path / "cube.json")
    cli, _ = porosity.measure(stored, "valley")                      # what `ctviewer soil pores` counts
    with open(tmp_path / "cube_profiles.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    z = [float(r["porosity_percent"]) / 100 for r in rows if r["axis"] == "z"]
    assert z[:8] == [0.0] * 8
    for axis in "zyx":
        on_disk = [float(r["porosity_percent"]) / 100 for r in rows if r["axis"] == axis]
        assert on_disk == pytest.approx(list(cli.profiles[axis]), abs=1e-6)
    data = json.loads((tmp_path / "cube.json").read_text())
    assert data["profiles"]["z"] == pytest.approx(z, abs=1e-6) and "plane 0 is its first slice" in data["settings"]["planes"]

"""The 3D panel under a real X display (Xvfb): modes, workers, orientation, screenshots, shutdown.

Run with ``xvfb-run -a .venv/bin/pytest -p no:xvfb tests/gui``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("vtkmodules.qt.QVTKRenderWindowInteractor")

from PySide6.QtCore import QCoreApplication, QEvent  # noqa: E402

from app.views.view3d import View3D  # noqa: E402
from app.workers import wait_for_workers  # noqa: E402
from tests.gui.test_scene3d import assert_anterior_view, foreground_quadrants, stamp_phantom  # noqa: E402

pytestmark = pytest.mark.gui
WAIT_MS = 20000


def _dispose(widget) -> None:
    widget.close()
    widget.deleteLater()
    wait_for_workers()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def make_view(qtbot):
    views = []

    def make(**kwargs) -> View3D:
        view = View3D(**kwargs)
        view.resize(420, 360)
        view.show()
        qtbot.waitExposed(view)
        views.append(view)
        return view

    yield make
    for view in views:
        _dispose(view)


def _load(qtbot, view: View3D, mode: str, flip_x: bool = False):
    vol, labels = stamp_phantom(flip_x=flip_x)
    view.set_volume(vol)
    view.set_labels(labels)
    with qtbot.waitSignal(view.scene_ready, timeout=WAIT_MS, check_params_cb=lambda m: m == mode):
        view.set_mode(mode)
    return vol, labels


@pytest.mark.parametrize("mode", ["volume", "isosurface", "labels"])
@pytest.mark.parametrize("flip_x", [False, True])
def test_anterior_view_shows_patient_left_on_screen_right(qtbot, make_view, mode, flip_x):
    view = make_view(orientation_marker=False)  # the corner cube would count as foreground
    _load(qtbot, view, mode, flip_x)
    assert_anterior_view(foreground_quadrants(view.screenshot()))


def test_label_surfaces_one_actor_per_label_in_table_colours(qtbot, make_view):
    view = make_view()
    _, labels = _load(qtbot, view, "labels")
    actors = view.scene.label_actors
    assert sorted(actors) == [1, 2]
    assert actors[1].GetProperty().GetColor() == (1.0, 0.0, 0.0)
    assert actors[2].GetProperty().GetColor() == (0.0, 1.0, 0.0)
    labels.table.update(1, colour=(0, 0, 255))  # the table's signal recolours without recomputing
    labels.table.update(2, visible=False)
    assert actors[1].GetProperty().GetColor() == (0.0, 0.0, 1.0)
    assert not actors[2].GetVisibility()
    pixels = view.screenshot()
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 80)
    green = (pixels[..., 1] > 150) & (pixels[..., 0] < 80) & (pixels[..., 2] < 80)
    assert blue.sum() > 100 and green.sum() == 0


def test_isosurface_follows_the_value(qtbot, make_view):
    view = make_view()
    _load(qtbot, view, "isosurface")
    assert view.scene.surface_actor is not None
    assert view.scene.surface_actor.GetMapper().GetInput().GetNumberOfCells() > 0
    with qtbot.waitSignal(view.scene_ready, timeout=WAIT_MS):
        view.set_iso_value(2000.0)  # above every voxel: an empty surface, said in the toolbar
    assert view.scene.surface_actor.GetMapper().GetInput().GetNumberOfCells() == 0
    assert "2000" in view.toolbar.status.text()
    with qtbot.waitSignal(view.scene_ready, timeout=WAIT_MS):
        view.toolbar.iso.setValue(500.0)  # the spin box is debounced, then rebuilds
    assert view.scene.surface_actor.GetMapper().GetInput().GetNumberOfCells() > 0


def test_toolbar_switches_modes_and_presets(qtbot, make_view):
    view = make_view()
    _load(qtbot, view, "volume")
    assert view.scene.volume_prop is not None and view.toolbar.preset.isEnabled()
    view.toolbar.preset.setCurrentText("MIP")
    assert view.scene.volume_prop.GetMapper().GetBlendMode() == 1  # maximum intensity
    with qtbot.waitSignal(view.scene_ready, timeout=WAIT_MS):
        view.toolbar.mode.setCurrentIndex(view.toolbar.mode.findData("labels"))
    assert view.mode == "labels" and len(view.scene.label_actors) == 2
    assert not view.toolbar.preset.isEnabled()


def test_reset_view_returns_to_the_anterior_view(qtbot, make_view):
    view = make_view()
    _load(qtbot, view, "isosurface")
    camera = view.scene.renderer.GetActiveCamera()
    camera.Azimuth(120)
    camera.Elevation(30)
    view.reset_view()
    np.testing.assert_allclose(camera.GetDirectionOfProjection(), (0, 1, 0), atol=1e-6)
    np.testing.assert_allclose(camera.GetViewUp(), (0, 0, 1), atol=1e-6)


def test_screenshot_is_the_render_windows_pixels_and_saves_as_png(qtbot, make_view, tmp_path):
    from PIL import Image

    view = make_view()
    _load(qtbot, view, "labels")
    pixels = view.screenshot()
    ratio = view._vtk.devicePixelRatioF()
    assert pixels.dtype == np.uint8
    assert pixels.shape == (round(view._vtk.height() * ratio), round(view._vtk.width() * ratio), 3)
    assert pixels.reshape(-1, 3).std(axis=0).max() > 5  # not a blank grab
    target = tmp_path / "shot.png"
    view.save_screenshot(target)
    np.testing.assert_array_equal(np.asarray(Image.open(target).convert("RGB")), pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]  # no temporary left behind


def test_closing_while_surfaces_are_built_is_clean(qtbot):
    """Closing while a worker builds surfaces cancels it and nothing is shown afterwards; no error reaches
    the user (pytest-qt fails the test on an exception in any slot)."""
    from app.workers import _RUNNING

    vol, labels = stamp_phantom()
    big = labels.volume.with_array(np.tile(labels.array, (3, 3, 3)))
    view = View3D()
    view.show()
    qtbot.waitExposed(view)
    view.set_volume(vol.with_array(np.tile(vol.array, (3, 3, 3))))
    view.set_labels(type(labels)(big, labels.table))
    scene = view.scene
    view.set_mode("labels")  # a worker starts; close before it delivers
    assert view._worker is not None
    _dispose(view)
    qtbot.wait(50)  # any late signal must find nothing to render into
    assert not _RUNNING and view._worker is None
    assert scene.label_actors == {} and scene.renderer.GetViewProps().GetNumberOfItems() == 0

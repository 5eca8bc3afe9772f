"""The 3D scene without Qt: geometry of the VTK image, surfaces, presets, headless rendering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.views import scene3d
from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken

REPO = Path(__file__).resolve().parents[2]

# Orientation stamp: a big block at the patient's left and low (inferior), a small block at the
# patient's right and high (superior). From the anterior view the big one must be bottom-right
# and the small one top-left; any flip of x or z, or a 180° turn, puts them elsewhere.
BIG = (slice(6, 18), slice(14, 26), slice(26, 38))  # label 1
SMALL = (slice(32, 38), slice(17, 23), slice(4, 10))  # label 2


def stamp_phantom(flip_x: bool = False) -> tuple[Volume, LabelMap]:
    """A CT volume (-1000 HU air, 1500 HU blocks) in canonical order, or stored right-to-left."""
    ct = np.full((40, 40, 40), -1000, dtype=np.int16)
    labels = np.zeros(ct.shape, dtype=np.uint8)
    for label_id, box in ((1, BIG), (2, SMALL)):
        ct[box] = 1500
        labels[box] = label_id
    direction, origin = np.array(Volume(ct).direction), (0.0, 0.0, 0.0)
    if flip_x:  # same patient, columns stored from the patient's left to right
        ct, labels = ct[:, :, ::-1].copy(), labels[:, :, ::-1].copy()
        direction[:, 2] = -direction[:, 2]
        origin = (39.0, 0.0, 0.0)
    vol = Volume(ct, spacing=(1.5, 1.0, 1.0), origin=origin, direction=direction, modality="CT")
    table = LabelTable.for_ids([1, 2])
    table.update(1, colour=(255, 0, 0))
    table.update(2, colour=(0, 255, 0))
    return vol, LabelMap(vol.with_array(labels), table)


def foreground_quadrants(pixels: np.ndarray, background=scene3d.BACKGROUND) -> dict[str, float]:
    """Fraction of non-background pixels in each screen quadrant (TL, TR, BL, BR)."""
    bg = np.asarray(background) * 255
    fg = np.abs(pixels.astype(float) - bg).max(axis=-1) > 30
    h, w = fg.shape
    return {"TL": fg[: h // 2, : w // 2].mean(), "TR": fg[: h // 2, w // 2:].mean(),
            "BL": fg[h // 2:, : w // 2].mean(), "BR": fg[h // 2:, w // 2:].mean()}


def assert_anterior_view(q: dict[str, float]) -> None:
    """Big (left, inferior) block bottom-right, small (right, superior) block top-left."""
    assert q["BR"] > 0.01 and q["TL"] > 0.002, q
    assert q["BR"] > q["TL"], q
    assert q["TR"] < 0.2 * q["TL"] and q["BL"] < 0.2 * q["TL"], q


# -- geometry ----------------------------------------------------------------------------------------
def test_image_data_places_voxels_in_lps_and_shares_memory():
    rng = np.random.default_rng(0)
    direction = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    vol = Volume(np.zeros((4, 5, 6), np.int16), spacing=(2.0, 0.5, 0.7), origin=(10, -20, 30), direction=direction)
    image = scene3d.to_image_data(vol)
    assert image.GetDimensions() == (6, 5, 4)
    for k, j, i in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:
        point = [0.0, 0.0, 0.0]
        image.TransformIndexToPhysicalPoint(i, j, k, point)
        np.testing.assert_allclose(point, vol.index_to_lps((k, j, i)), atol=1e-9)
    vol.array[1, 2, 3] = 77  # no copy: VTK sees the edit, at VTK index (x=3, y=2, z=1)
    assert image.GetScalarComponentAsDouble(3, 2, 1, 0) == 77


def test_isosurface_bounds_follow_direction():
    vol, _ = stamp_phantom(flip_x=True)
    poly = scene3d.isosurface(vol, 500.0)
    assert poly.GetNumberOfCells() > 0
    x0, x1, y0, y1, z0, z1 = poly.GetBounds()
    # both blocks, in patient mm: x 4..37, y 14..25, z (6..37) * 1.5, within half a voxel
    np.testing.assert_allclose([x0, x1, y0, y1], [4, 37, 14, 25], atol=0.6)
    np.testing.assert_allclose([z0, z1], [6 * 1.5, 37 * 1.5], atol=0.8)


# -- label surfaces ------------------------------------------------------------------------------------
def test_label_surfaces_one_closed_surface_per_present_label():
    from vtkmodules.vtkFiltersCore import vtkFeatureEdges

    vol, labels = stamp_phantom()
    labels.array[:, :, :3] = 5  # a slab touching the volume's edge must still be closed
    fractions = []
    surfaces = scene3d.label_surfaces(labels, progress=lambda f, m="": fractions.append(f))
    assert sorted(surfaces) == [1, 2, 5]
    assert fractions and fractions[-1] == 1.0
    np.testing.assert_allclose(surfaces[1].GetBounds()[:2], [26, 37], atol=0.6)
    edges = vtkFeatureEdges()
    edges.SetInputData(surfaces[5])
    edges.BoundaryEdgesOn()
    edges.FeatureEdgesOff()
    edges.NonManifoldEdgesOff()
    edges.ManifoldEdgesOff()
    edges.Update()
    assert edges.GetOutput().GetNumberOfCells() == 0
    assert sorted(scene3d.label_surfaces(labels, ids=[2, 9])) == [2]  # absent ids are skipped


def test_label_surfaces_cancel():
    _, labels = stamp_phantom()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        scene3d.label_surfaces(labels, cancel=token)


def test_flat_volume_is_refused():
    with pytest.raises(InputError):
        scene3d.isosurface(Volume(np.zeros((1, 8, 8), np.uint8)), 1)


# -- presets -------------------------------------------------------------------------------------------
def test_presets_in_hu_for_ct_and_scaled_for_other_data():
    vol, _ = stamp_phantom()
    assert scene3d.preset_mapping(vol, "CT bone")(641) == 641
    soil = Volume(np.linspace(0, 255, 20 * 20 * 20).reshape(20, 20, 20).astype(np.uint8))
    x = scene3d.preset_mapping(soil, "CT bone")
    assert 0 <= x(scene3d.HU_SPAN[0]) < x(641) < x(scene3d.HU_SPAN[1]) <= 255
    assert scene3d.default_preset(soil) == "MIP" and scene3d.default_preset(vol) == "CT bone"


def test_scene_objects_and_label_colours():
    vol, labels = stamp_phantom()
    scene = scene3d.Scene3D()
    scene.set_label_surfaces(scene3d.label_surfaces(labels), labels.table)
    assert len(scene.label_actors) == 2
    assert scene.label_actors[1].GetProperty().GetColor() == (1.0, 0.0, 0.0)
    labels.table.update(2, visible=False)
    scene.update_label_colours(labels.table)
    assert not scene.label_actors[2].GetVisibility()
    scene.set_volume_rendering(vol, "CT lung")
    volumes, shown = scene.renderer.GetVolumes(), scene.volume_prop
    assert volumes.GetNumberOfItems() == 1 and volumes.GetItemAsObject(0) is shown
    assert shown.GetMapper().GetInput().GetDimensions() == (40, 40, 40)
    opacity = shown.GetProperty().GetScalarOpacity()   # the lung preset: lung tissue shows, soft tissue is clear
    assert opacity.GetValue(-700) > 0.05 and opacity.GetValue(0) == 0 and opacity.GetValue(-1000) == 0
    with pytest.raises(InputError):
        scene.set_volume_rendering(vol, "no such preset")
    scene.clear()
    assert scene.renderer.GetViewProps().GetNumberOfItems() == 0


# -- a heatmap cloud (Grad-CAM volume) ---------------------------------------------------------------
def test_heat_image_is_a_strided_copy_with_unexplained_voxels_transparent():
    from vtkmodules.util.numpy_support import vtk_to_numpy

    from app.views import heat3d

    heat = np.linspace(0.0, 2.0, 20 * 30 * 40, dtype=np.float32).reshape(20, 30, 40)
    heat[3] = np.nan                                   # a slice never explained
    image, stride = heat3d.heat_image(Volume(heat, spacing=(2.0, 1.0, 1.0)), max_voxels=2000)
    assert stride == 3 and image.GetDimensions() == (14, 10, 7) and image.GetSpacing() == (3.0, 3.0, 6.0)
    values = vtk_to_numpy(image.GetPointData().GetScalars())
    assert np.isfinite(values).all() and values.min() == pytest.approx(np.nanmin(heat[::3, ::3, ::3]))
    values[:] = -5.0                                   # VTK's copy, not the layer's voxels
    assert np.nanmin(heat) == 0.0


def test_heat_cloud_is_clear_at_the_low_end_and_at_zero_when_signed():
    from app.views import heat3d

    values, weights = heat3d.heat_weights((0.0, 4.0), stops=5)
    assert list(values) == [0, 1, 2, 3, 4] and weights[0] == weights[1] == 0 and weights[-1] == 1  # low third clear
    assert np.all(np.diff(weights[1:]) > 0)
    values, weights = heat3d.heat_weights((-2.0, 2.0), stops=5)
    assert weights[0] == weights[-1] == 1 and weights[2] == 0 and weights[1] == weights[3] < 1   # both ends show
    image, _ = heat3d.heat_image(Volume(np.ones((4, 4, 4), np.float32)))
    lut = np.zeros((256, 4), np.uint8)
    lut[:, 0], lut[:, 3] = np.arange(256), 255          # black to red
    prop = heat3d.heat_volume(image, lut, (0.0, 4.0), opacity=0.5).GetProperty()
    assert prop.GetScalarOpacity().GetValue(0.0) == 0.0 and prop.GetScalarOpacity().GetValue(4.0) == 0.5
    assert prop.GetRGBTransferFunction().GetColor(4.0) == pytest.approx((1.0, 0.0, 0.0))
    scene = scene3d.Scene3D()
    scene.set_heat(heat3d.heat_volume(image, lut, (0.0, 4.0), 0.5))
    scene.set_heat(heat3d.heat_volume(image, lut, (0.0, 4.0), 0.5))   # replaces, never piles up
    assert scene.renderer.GetVolumes().GetNumberOfItems() == 1
    scene.clear()
    assert scene.heat_prop is None


# -- headless rendering (no Qt, no DISPLAY) ------------------------------------------------------------
_HEADLESS = """
import json, sys
from tests.gui.test_scene3d import stamp_phantom, foreground_quadrants
from app.views.render_offscreen import render_3d
out = {}
for flip in (False, True):
    vol, labels = stamp_phantom(flip_x=flip)
    for mode in ("volume", "isosurface", "labels"):
        px = render_3d(vol, labels if mode == "labels" else None, mode=mode, size=(320, 240))
        out[f"{mode}-{flip}"] = {"shape": list(px.shape), "q": foreground_quadrants(px),
                                 "red_right": bool(mode != "labels" or
                                     ((px[..., 0] > 150) & (px[..., 1] < 80))[:, 160:].sum() > 50)}
print(json.dumps(out))
"""


def test_render_3d_without_display_keeps_patient_orientation():
    """``ctviewer snapshot --view 3d`` path: a fresh process with no DISPLAY (EGL offscreen)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _HEADLESS], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, r in results.items():
        assert r["shape"] == [240, 320, 3], name
        assert_anterior_view(r["q"])
        assert r["red_right"], name


def test_render_3d_refuses_bad_requests():
    from app.views.render_offscreen import render_3d

    vol, _ = stamp_phantom()
    with pytest.raises(InputError):
        render_3d(vol, mode="labels")
    with pytest.raises(InputError):
        render_3d(vol, mode="sideways")

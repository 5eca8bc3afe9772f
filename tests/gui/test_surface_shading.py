"""Label surfaces are lit, not black: a rendered surface's near-black share inside its silhouette.

A pore (label 1) inside a matrix (label 2, hidden) is the soil case, and an organ against a neighbour
with a higher id is the torso's: before the surfaces were contoured from one label's 0/1 mask, the
normals followed the ids' gradient, pointed inwards around such a label and half to three quarters of the
pore's pixels came out black (51–75 % measured). Run under Xvfb like the other GUI tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

from app.views import scene3d
from app.views.render_offscreen import offscreen_window
from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.volume import Volume

pytestmark = pytest.mark.gui
NEAR_BLACK = 40   # brightest channel below this (0..255): the face is lit black


def pore_in_matrix() -> LabelMap:
    """A ball of label 1 in a block of label 2, a smaller ball of label 3 touching the pore."""
    z, y, x = np.mgrid[:48, :48, :48]
    ids = np.full((48, 48, 48), 2, dtype=np.uint8)
    ids[(z - 24) ** 2 + (y - 24) ** 2 + (x - 20) ** 2 < 14 ** 2] = 1
    ids[(z - 24) ** 2 + (y - 14) ** 2 + (x - 34) ** 2 < 8 ** 2] = 3
    table = LabelTable.for_ids([1, 2, 3])
    table.update(1, colour=(40, 120, 255))
    table.update(2, visible=False)   # the matrix hidden, as the Objects tab shows pores
    table.update(3, colour=(200, 200, 200))
    return LabelMap(Volume(ids, spacing=(0.5, 0.5, 0.5)), table)


def render_with_silhouette(scene: scene3d.Scene3D, azimuth: float, size=(360, 360)):
    """(pixels, mask of what the surfaces cover), from the depth buffer: background is at depth 1."""
    window = offscreen_window(size)
    window.AddRenderer(scene.renderer)
    try:
        scene.reset_camera()
        scene.renderer.GetActiveCamera().Azimuth(azimuth)
        scene.renderer.ResetCameraClippingRange()
        window.Render()
        pixels = scene3d.read_pixels(window)
        grab = vtkWindowToImageFilter()
        grab.SetInput(window)
        grab.SetInputBufferTypeToZBuffer()
        grab.ReadFrontBufferOff()
        grab.ShouldRerenderOff()
        grab.Update()
        image = grab.GetOutput()
        w, h, _ = image.GetDimensions()
        depth = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w)[::-1]
        return pixels, depth < 1.0
    finally:
        window.Finalize()


@pytest.mark.parametrize("azimuth", [0, 90, 200])
def test_label_surfaces_have_almost_no_black_pixels(azimuth):
    labels = pore_in_matrix()
    scene = scene3d.Scene3D()
    scene.set_label_surfaces(scene3d.label_surfaces(labels), labels.table)
    pixels, covered = render_with_silhouette(scene, azimuth)
    assert covered.mean() > 0.1, "the surfaces should fill a good part of the picture"
    black = (pixels.max(axis=-1) < NEAR_BLACK) & covered
    assert black.sum() / covered.sum() < 0.02, f"{100 * black.sum() / covered.sum():.1f} % near-black"


def test_heat_cloud_inside_a_surface_is_seen_through_it():
    """A Grad-CAM cloud inside an opaque object used to be hidden entirely (the same pixels with
    and without it); surfaces are now faded while a cloud is shown, and opaque again without one."""
    from app.views import heat3d

    labels = pore_in_matrix()
    z, y, x = np.mgrid[:48, :48, :48]
    heat = np.exp(-((z - 24) ** 2 + (y - 24) ** 2 + (x - 20) ** 2) / 60.0).astype(np.float32)
    image, _ = heat3d.heat_image(labels.volume.with_array(heat))
    red = np.zeros((256, 4), dtype=np.uint8)
    red[:, 0], red[:, 3] = 255, 255
    cloud = heat3d.heat_volume(image, red, (0.0, 1.0), 1.0)

    scene = scene3d.Scene3D()
    scene.set_label_surfaces(scene3d.label_surfaces(labels), labels.table)
    plain, covered = render_with_silhouette(scene, 0)
    scene.set_heat(cloud)
    clouded, _ = render_with_silhouette(scene, 0)

    h, w = covered.shape
    centre = (slice(h // 2 - 20, h // 2 + 20), slice(w // 2 - 40, w // 2))   # the pore's middle, where the cloud peaks
    redder = clouded[centre][..., 0].astype(float) - clouded[centre][..., 2]
    before = plain[centre][..., 0].astype(float) - plain[centre][..., 2]
    gain = (redder - before).mean()
    assert gain > 60, f"the cloud should turn the pore's middle red (red - blue rose by {gain:.0f})"
    pore = labels.table[1]
    assert scene.label_actors[1].GetProperty().GetOpacity() < pore.opacity

    scene.set_heat(None)
    assert scene.label_actors[1].GetProperty().GetOpacity() == pore.opacity
    again, _ = render_with_silhouette(scene, 0)
    assert np.abs(again.astype(int) - plain).max() <= 2

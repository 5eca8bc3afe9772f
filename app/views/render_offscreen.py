"""The 3D panel's picture without Qt or a display, for ``ctviewer snapshot --view 3d``.

Offscreen windows: VTK's default ``vtkRenderWindow`` is an X window on Linux and only falls back
to EGL after a failed X connection (with a warning on stderr). Asking for ``vtkEGLRenderWindow``
directly works with and without ``DISPLAY`` (Mesa's EGL renders through llvmpipe on a machine
without a GPU; libegl1 is enough). Where EGL cannot make a context, VTK's default offscreen
window is used instead (X, or OSMesa where ``VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow``).
"""

from __future__ import annotations

import numpy as np

from app.views import scene3d
from app.views.scene3d import Scene3D
from ctviewer.data.labels import LabelMap
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError


def offscreen_window(size=(800, 600)):
    """A render window that draws into memory, never on a screen."""
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    try:
        from vtkmodules.vtkRenderingOpenGL2 import vtkEGLRenderWindow

        window = vtkEGLRenderWindow()
        window.SetOffScreenRendering(1)
        if not window.SupportsOpenGL():  # makes a throwaway context to find out
            raise RuntimeError("EGL has no OpenGL here")
    except (ImportError, RuntimeError):
        window = vtkRenderWindow()
        window.SetOffScreenRendering(1)
    window.SetSize(int(size[0]), int(size[1]))
    window.SetMultiSamples(0)  # multisampled buffers cannot be read back directly
    return window


def render_3d(volume: Volume, labels: LabelMap | None = None, mode: str | None = None,
              preset: str | None = None, iso_value: float | None = None,
              size=(800, 600)) -> np.ndarray:
    """What the 3D panel shows from its default (anterior) view, as (H, W, 3) uint8 pixels.

    ``mode`` is "volume", "isosurface" or "labels" (default: "labels" when labels are given,
    else "volume"); ``preset`` names a volume rendering preset (default: CT bone for CT, MIP
    otherwise); ``iso_value`` defaults to bone (300 HU) for CT.
    """
    mode = mode or ("labels" if labels is not None else "volume")
    if mode not in scene3d.MODES:
        raise InputError(f"unknown 3D mode {mode!r}; choose from {', '.join(scene3d.MODES)}")
    scene = Scene3D()
    if mode == "volume":
        scene.set_volume_rendering(volume, preset or scene3d.default_preset(volume))
    elif mode == "isosurface":
        value = scene3d.default_iso_value(volume) if iso_value is None else iso_value
        scene.set_surface(scene3d.isosurface(volume, value))
    else:
        if labels is None:
            raise InputError("the 'labels' 3D mode needs a label map (--labels FILE)")
        scene.set_label_surfaces(scene3d.label_surfaces(labels), labels.table)
    scene.reset_camera()
    window = offscreen_window(size)
    window.AddRenderer(scene.renderer)
    try:
        window.Render()
        return scene3d.read_pixels(window)
    finally:
        window.Finalize()  # no Qt here: releasing the GL context ourselves is safe

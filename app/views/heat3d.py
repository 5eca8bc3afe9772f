"""A heatmap volume (a Grad-CAM volume) drawn as a translucent cloud in the 3D panel, over its surfaces.

:func:`heat_image` is pure computation (a strided float copy with unexplained NaN voxels made
transparent), so the panel runs it in a worker; :func:`heat_volume` wraps it in a VTK prop once, and
:func:`heat_property` restyles that prop from the layer's colour map, range and opacity on every change
(the volume itself is not uploaded again).

Values in the lower third of the range are clear and opacity grows with the 1.5th power of the rest, so
the surfaces stay visible through the cloud and only what the network weighs shows; a signed map
(range across 0) shows at both ends and is clear about 0, as its diverging colour map is. The cloud's
thickness is set by the volume's size, not its voxels: a ray through the whole cube at the top of
the range is nearly opaque, whatever the cube's resolution.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction
from vtkmodules.vtkRenderingCore import vtkColorTransferFunction, vtkVolume, vtkVolumeProperty

from app.views.scene3d import render_stride, right_handed, to_image_data
from ctviewer.data.volume import Volume
from ctviewer.progress import CancelToken

import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  isort: skip  (registers the mappers)
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper  # isort: skip

#: Grad-CAM is as coarse as its convolution layer's grid (block3: 1/4 of the slice), so a copy this
#: small loses nothing a user can see, and a CPU renderer still turns it smoothly.
HEAT_MAX_VOXELS = 2_000_000
#: Share of the range (from its low end, or from 0 for a signed map) drawn fully clear.
CLEAR_SHARE = 1 / 3
#: One opacity unit per this share of the volume's longest side, at the top of the range.
OPACITY_UNIT_SHARE = 1 / 20
_STOPS = 16


def heat_image(values: Volume, max_voxels: int = HEAT_MAX_VOXELS, progress=None,
               cancel: CancelToken | None = None) -> tuple[vtkImageData, int]:
    """The ``vtkImageData`` of a heatmap volume and the stride used; never shares the layer's buffer.

    A worker body (``progress``/``cancel`` as ``app.workers`` passes them; the copy is one step)."""
    vol = right_handed(values)
    stride = render_stride(vol.shape, max_voxels)
    arr = np.array(vol.array[::stride, ::stride, ::stride], dtype=np.float32)   # a copy: the layer may change
    finite = np.isfinite(arr)
    if not finite.all():   # slices never explained: the range's low end, drawn transparent
        arr[~finite] = arr[finite].min() if finite.any() else 0.0
    if cancel is not None:
        cancel.raise_if_cancelled()
    vol = vol.with_array(arr, spacing=tuple(s * stride for s in vol.spacing))
    return to_image_data(vol, arr), stride


def heat_weights(value_range: tuple[float, float], stops: int = _STOPS) -> tuple[np.ndarray, np.ndarray]:
    """Values along the range and their opacity weights in 0..1 (see the module docstring)."""
    lo, hi = (float(v) for v in value_range)
    values = np.linspace(lo, hi, stops)
    if lo < 0.0 < hi:
        share = np.abs(values) / max(abs(lo), abs(hi))
    else:
        share = (values - lo) / ((hi - lo) or 1.0)
    return values, np.clip((share - CLEAR_SHARE) / (1 - CLEAR_SHARE), 0.0, 1.0) ** 1.5


def heat_property(image: vtkImageData, lut: np.ndarray, value_range: tuple[float, float],
                  opacity: float) -> vtkVolumeProperty:
    """The cloud's colours and opacity: ``lut`` is a 256-entry RGBA colour map, ``opacity`` the layer's (0..1)."""
    values, weights = heat_weights(value_range)
    colour, alpha = vtkColorTransferFunction(), vtkPiecewiseFunction()
    for i, (value, weight) in enumerate(zip(values, weights)):
        r, g, b = lut[round(i * (len(lut) - 1) / (len(values) - 1)), :3] / 255.0
        colour.AddRGBPoint(float(value), float(r), float(g), float(b))
        alpha.AddPoint(float(value), float(opacity * weight))
    prop = vtkVolumeProperty()
    prop.SetColor(colour)
    prop.SetScalarOpacity(alpha)
    prop.SetInterpolationTypeToLinear()
    extent = max((n - 1) * s for n, s in zip(image.GetDimensions(), image.GetSpacing()))
    prop.SetScalarOpacityUnitDistance(max(extent * OPACITY_UNIT_SHARE, min(image.GetSpacing())))
    return prop


def heat_volume(image: vtkImageData, lut: np.ndarray, value_range: tuple[float, float],
                opacity: float) -> vtkVolume:
    """A translucent volume prop over ``image`` styled by :func:`heat_property`."""
    mapper = vtkSmartVolumeMapper()
    mapper.SetInputData(image)
    volume = vtkVolume()
    volume.SetMapper(mapper)
    volume.SetProperty(heat_property(image, lut, value_range, opacity))
    return volume

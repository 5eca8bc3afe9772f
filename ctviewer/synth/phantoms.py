"""Small test phantoms whose appearance tells a flipped or transposed view at a glance.

:func:`orientation_stamp` is asymmetric along every axis, in canonical orientation (axis 0 towards
Superior, axis 1 Posterior, axis 2 patient Left; ``CANONICAL_DIRECTION``). Its markers and their
documented centres let tests probe rendered pixels:

==================  ============================================================  ======
marker              where (canonical index ranges)                                 value
==================  ============================================================  ======
``left_bar``        a bar along axis 0 near the patient's Left side (high i),       1000
                    mid-depth in j, spanning the middle 60 % of the slices
``posterior_block`` a wide block at the Posterior side (high j), centred in i,       500
                    in the lower (inferior) half of the slices
``superior_cube``   a small cube near the Superior–Left–Anterior corner             2000
                    (high k, high i, low j)
==================  ============================================================  ======

Background is −1000 (air) and the body of the phantom, a centred box, is 0 (water). Marker sizes
differ along each axis, so a transposed view changes their shape as well as their place.
"""

from __future__ import annotations

import numpy as np

from ctviewer.data.volume import CANONICAL_DIRECTION, Volume

MARKER_VALUES = {"left_bar": 1000, "posterior_block": 500, "superior_cube": 2000}


def _marker_boxes(shape) -> dict[str, tuple[slice, slice, slice]]:
    nz, ny, nx = shape
    return {
        "left_bar": (slice(int(0.2 * nz), int(0.8 * nz)), slice(int(0.4 * ny), int(0.55 * ny)),
                     slice(int(0.78 * nx), int(0.86 * nx))),
        "posterior_block": (slice(int(0.1 * nz), int(0.45 * nz)), slice(int(0.78 * ny), int(0.9 * ny)),
                            slice(int(0.3 * nx), int(0.6 * nx))),
        "superior_cube": (slice(int(0.82 * nz), int(0.82 * nz) + 4), slice(int(0.12 * ny), int(0.12 * ny) + 4),
                          slice(int(0.7 * nx), int(0.7 * nx) + 4)),
    }


def orientation_markers(shape=(40, 48, 56)) -> dict[str, dict]:
    """Marker name -> {"centre": (k, j, i) index at its middle, "value": HU, "box": index slices}."""
    out = {}
    for name, box in _marker_boxes(shape).items():
        centre = tuple(int((s.start + s.stop - 1) // 2) for s in box)
        out[name] = {"centre": centre, "value": MARKER_VALUES[name], "box": box}
    return out


def orientation_stamp(shape=(40, 48, 56), spacing=(2.0, 1.5, 1.0)) -> Volume:
    """An asymmetric int16 phantom in canonical orientation; see the module docstring for its markers."""
    shape = tuple(int(n) for n in shape)
    if any(n < 16 for n in shape):
        raise ValueError(f"the orientation stamp needs at least 16 voxels per axis, got {shape}")
    arr = np.full(shape, -1000, dtype=np.int16)
    nz, ny, nx = shape
    arr[int(0.05 * nz):int(0.95 * nz), int(0.08 * ny):int(0.94 * ny), int(0.1 * nx):int(0.9 * nx)] = 0
    for name, box in _marker_boxes(shape).items():
        arr[box] = MARKER_VALUES[name]
    vol = Volume(arr, spacing=spacing, origin=(0.0, 0.0, 0.0), direction=CANONICAL_DIRECTION.copy(),
                 modality="CT", name="orientation stamp", window=(2000.0, 500.0))
    vol.meta["markers"] = {k: {"centre": v["centre"], "value": v["value"]}
                           for k, v in orientation_markers(shape).items()}
    return vol


def gradient_volume(shape=(16, 20, 24), spacing=(1.0, 1.0, 1.0)) -> Volume:
    """A volume whose value is ``100·k + 10·j + i``: steps of 100, 10 and 1 along axes 0, 1 and 2,
    so a flip or a transpose changes the gradients a test reads back."""
    nz, ny, nx = (int(n) for n in shape)
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    arr = (100 * k + 10 * j + i).astype(np.int32)
    if arr.max() > 32767:
        raise ValueError(f"gradient_volume shape {shape} is too large for int16 values")
    return Volume(arr.astype(np.int16), spacing=spacing, direction=CANONICAL_DIRECTION.copy(), modality="CT",
                  name="gradient")

"""Brush shapes: which voxels around the centre a round brush covers.

A brush is a boolean mask, odd-sized along every axis and centred, always 3-D ``(dz, dy, dx)``
so the editor places it the same way whatever the view. In millimetres a round brush is an
ellipse (ellipsoid) in voxels when the spacing is anisotropic, so it stays round on screen and
in the patient.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ctviewer.imaging.slicing import plane as plane_info

UNITS = ("px", "mm")


def brush_radii(radius: float, unit: str, spacing, plane: str | None) -> tuple[float, float, float]:
    """The brush radius in voxels along each array axis (0 along a 2-D brush's normal axis)."""
    if unit not in UNITS:
        raise ValueError(f"unknown brush unit {unit!r}; choose 'px' or 'mm'")
    radius = max(float(radius), 0.0)
    radii = [radius / float(s) if unit == "mm" else radius for s in spacing]
    if plane is not None:
        radii[plane_info(plane).normal_axis] = 0.0
    return tuple(radii)  # type: ignore[return-value]


def brush_offsets(radius: float, unit: str, spacing, plane: str | None) -> np.ndarray:
    """Boolean mask (odd-sized, centred) of a round brush.

    ``unit`` 'px': ``radius`` in voxels along each in-plane axis; 'mm': in millimetres (an
    ellipse/ellipsoid in voxels for anisotropic spacing). ``plane`` 'axial' | 'coronal' |
    'sagittal' gives a 2-D disc one voxel thick along that plane's normal axis; ``None`` a 3-D
    sphere/ellipsoid. Always holds at least the centre voxel. The mask is shared between calls
    (cached), so it is read-only.
    """
    radii = brush_radii(radius, unit, tuple(float(s) for s in spacing), plane)
    return _ellipsoid(radii)


@lru_cache(maxsize=64)
def _ellipsoid(radii: tuple[float, float, float]) -> np.ndarray:
    # a voxel is in when its centre lies inside the ellipsoid; the epsilon keeps voxels exactly
    # on the rim (radius 1 -> a plus sign, radius 10 -> 21 voxels across) despite rounding
    half = [int(np.floor(r + 1e-9)) for r in radii]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    dist = np.zeros([2 * h + 1 for h in half], dtype=np.float64)
    for g, r in zip(grids, radii):
        if r > 0:
            dist = dist + (g / r) ** 2
    mask = dist <= 1.0 + 1e-9
    mask.flags.writeable = False
    return mask

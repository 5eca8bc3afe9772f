"""Which 2-D plane each view shows, which way up, and how screen pixels map back to voxels.

Volumes arrive in canonical orientation (axis 0 → Superior, 1 → Posterior, 2 → Left), so the
conventions of the field come out of plain indexing plus one vertical flip:

* axial ``[k]``: rows anterior→posterior, columns right→left (radiological: patient's right on
  the screen's left, anterior at the top);
* coronal ``[:, j]``: rows superior→inferior (flipped), columns right→left;
* sagittal ``[:, :, i]``: rows superior→inferior (flipped), columns anterior→posterior.

The edge letters are computed from the volume's real direction, so a volume that could not be
brought to canonical orientation still gets honest letters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctviewer.imaging.orientation import direction_letter

ORIENTATIONS = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class Plane:
    """How one orientation maps the [z, y, x] volume to screen rows and columns."""

    name: str
    #: The array axis a slice is taken across (the axis the wheel moves along).
    normal_axis: int
    #: Array axis shown along screen rows (down) and along screen columns (right).
    row_axis: int
    col_axis: int
    #: True where screen row 0 is the *last* index of ``row_axis`` (superior at the top).
    flip_rows: bool


PLANES = {
    "axial": Plane("axial", 0, 1, 2, False),
    "coronal": Plane("coronal", 1, 0, 2, True),
    "sagittal": Plane("sagittal", 2, 0, 1, True),
}


def plane(name: str) -> Plane:
    try:
        return PLANES[name]
    except KeyError:
        raise ValueError(f"unknown view {name!r}; choose one of {', '.join(ORIENTATIONS)}") from None


def slice_count(shape, name: str) -> int:
    return int(shape[plane(name).normal_axis])


def extract(array: np.ndarray, name: str, index: int) -> np.ndarray:
    """The 2-D image a view shows at slice ``index`` (a view, not a copy, where possible).

    Works for [z, y, x] and for [z, y, x, C] arrays (colour stays the last axis).
    """
    p = plane(name)
    index = int(np.clip(index, 0, array.shape[p.normal_axis] - 1))
    # plain indexing gives a view (np.take would copy the plane); the remaining spatial axes keep
    # their order, which is (row_axis, col_axis) by construction
    img = array[(slice(None),) * p.normal_axis + (index,)]
    return img[::-1] if p.flip_rows else img


def pixel_size(spacing, name: str) -> tuple[float, float]:
    """(row height, column width) in mm of a screen pixel of this view."""
    p = plane(name)
    return float(spacing[p.row_axis]), float(spacing[p.col_axis])


def to_voxel(name: str, shape, slice_index: int, row: float, col: float) -> tuple[int, int, int]:
    """The (k, j, i) voxel under screen (row, col) of a view showing ``slice_index``."""
    p = plane(name)
    idx = [0, 0, 0]
    idx[p.normal_axis] = int(slice_index)
    r = int(np.floor(row))
    idx[p.row_axis] = shape[p.row_axis] - 1 - r if p.flip_rows else r
    idx[p.col_axis] = int(np.floor(col))
    return tuple(int(np.clip(v, 0, shape[a] - 1)) for a, v in enumerate(idx))  # type: ignore[return-value]


def to_screen(name: str, shape, voxel) -> tuple[float, float, int]:
    """(row, col) pixel centre of a voxel in this view, and the slice it lies on."""
    p = plane(name)
    row = voxel[p.row_axis]
    if p.flip_rows:
        row = shape[p.row_axis] - 1 - row
    return float(row) + 0.5, float(voxel[p.col_axis]) + 0.5, int(voxel[p.normal_axis])


def edge_letters(direction: np.ndarray, name: str) -> dict[str, str]:
    """Patient-direction letters at the left, right, top and bottom edges of a view."""
    p = plane(name)
    d = np.asarray(direction, dtype=float)
    right = d[:, p.col_axis]
    down = -d[:, p.row_axis] if p.flip_rows else d[:, p.row_axis]
    return {
        "right": direction_letter(right), "left": direction_letter(-right),
        "bottom": direction_letter(down), "top": direction_letter(-down),
    }

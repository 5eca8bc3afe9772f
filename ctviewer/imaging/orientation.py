"""Orientation: which patient direction each array axis points to, and reorienting to the
axis order the views expect, without resampling.

Readers return volumes as stored (with exact geometry); :func:`to_canonical` permutes and flips
axes so that axis 0 runs towards Superior, axis 1 Posterior and axis 2 Left (for an axial scan:
slices feet to head, rows anterior to posterior, columns right to left — the radiological
display). The geometry stays exact; what is left over (a tilted or oblique series) is reported.

The canonical order is a view, never a file's: :func:`to_canonical` remembers the stored grid
(``volume.meta["stored_grid"]``, a :class:`StoredGrid`, kept by ``Volume.with_array``), and
:func:`to_stored` / :func:`on_image_grid` put anything made on the canonical grid (labels, masks,
predictions) back into the array order and geometry of the file it was made from, as
TotalSegmentator, nnU-Net and ITK-SNAP expect of a derived mask.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ctviewer.data.volume import CANONICAL_DIRECTION, Volume

#: Letter of the patient direction a +LPS unit vector points to, and of its opposite.
_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))


def direction_letter(vector) -> str:
    """The patient direction ('L', 'R', 'P', 'A', 'S', 'I') closest to an LPS vector."""
    v = np.asarray(vector, dtype=float)
    axis = int(np.argmax(np.abs(v)))
    return _LETTERS[axis][0 if v[axis] >= 0 else 1]


def orientation_code(direction: np.ndarray) -> str:
    """Three letters naming where array axes 0, 1, 2 point, e.g. 'SPL' for canonical."""
    return "".join(direction_letter(direction[:, c]) for c in range(3))


def obliquity_deg(direction: np.ndarray) -> float:
    """Largest angle (degrees) between an array axis and its nearest patient axis."""
    cosines = np.max(np.abs(np.asarray(direction, dtype=float)), axis=0)
    return float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))


def canonical_permutation(direction: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Axis order and flips that bring ``direction`` closest to :data:`CANONICAL_DIRECTION`.

    Returns ``(perm, flips)``: new axis ``a`` is old axis ``perm[a]``, reversed where ``flips[a]``.
    """
    d = np.asarray(direction, dtype=float)
    best, best_score = None, -np.inf
    for perm in itertools.permutations(range(3)):
        # new axis a should point along canonical column a
        cos = [float(np.dot(d[:, perm[a]], CANONICAL_DIRECTION[:, a])) for a in range(3)]
        score = sum(abs(c) for c in cos)
        if score > best_score + 1e-9:
            best, best_score = (perm, tuple(c < 0 for c in cos)), score
    return best  # type: ignore[return-value]


#: Key of ``Volume.meta`` holding the :class:`StoredGrid` of a reoriented volume.
STORED_GRID = "stored_grid"
#: Key of ``Volume.meta`` where a reader keeps its header's geometry exactly as written in the file
#: (a dict with "format"), so that a writer can give a result of that image the very same header.
FILE_GEOMETRY = "file_geometry"
#: The orientation code the file was stored in, for `ctviewer info`.
STORED_ORIENTATION = "stored_orientation"


@dataclass(frozen=True)
class StoredGrid:
    """How a volume lay on disk before :func:`to_canonical`: canonical axis ``a`` is stored axis
    ``perm[a]``, reversed where ``flips[a]``; and the stored shape and geometry, exactly as read."""

    perm: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[tuple[float, float, float], ...]
    instance_numbers: tuple | None = None


def _reorient(volume: Volume, perm, flips) -> Volume:
    """``volume`` with new axis ``a`` = old axis ``perm[a]``, reversed where ``flips[a]``; every voxel
    keeps its position in the patient."""
    arr = volume.array
    extra = tuple(range(3, arr.ndim))
    arr = np.transpose(arr, tuple(perm) + extra)
    spacing = tuple(volume.spacing[p] for p in perm)
    direction = volume.direction[:, list(perm)].copy()
    origin_index = np.zeros(3)
    for a in range(3):
        if flips[a]:
            arr = np.flip(arr, axis=a)
            origin_index[a] = arr.shape[a] - 1
            direction[:, a] = -direction[:, a]
    # new origin = position of the new [0,0,0] voxel, found through the old geometry
    old_index = np.zeros(3)
    for a in range(3):
        old_index[perm[a]] = origin_index[a]
    origin = volume.index_to_lps(old_index)
    instance_numbers = volume.instance_numbers
    if instance_numbers is not None:
        if perm[0] != 0:
            instance_numbers = None  # slices are no longer the stored slices
        elif flips[0]:
            instance_numbers = list(reversed(instance_numbers))
    # Flips alone stay a view (no copy of a big scan: axial slices of it are still cheap);
    # a permutation is copied once so that slicing along the new axis 0 reads contiguous memory.
    if tuple(perm) != (0, 1, 2):
        arr = np.ascontiguousarray(arr)
    return volume.with_array(arr, spacing=spacing, origin=tuple(origin), direction=direction,
                             instance_numbers=instance_numbers, source=volume.source)


def to_canonical(volume: Volume) -> Volume:
    """The same voxels with axes permuted/flipped to the views' order; geometry kept exact.

    The stored grid is remembered in ``meta["stored_grid"]`` for :func:`to_stored`.
    """
    perm, flips = canonical_permutation(volume.direction)
    if perm == (0, 1, 2) and not any(flips):
        return volume
    out = _reorient(volume, perm, flips)
    out.meta[STORED_ORIENTATION] = orientation_code(volume.direction)
    out.meta[STORED_GRID] = StoredGrid(
        tuple(perm), tuple(bool(f) for f in flips), volume.shape, volume.spacing, volume.origin,
        tuple(tuple(float(v) for v in row) for row in volume.direction),
        None if volume.instance_numbers is None else tuple(volume.instance_numbers))
    return out


def stored_grid(volume: Volume) -> StoredGrid | None:
    """The grid ``volume`` was stored on, where :func:`to_canonical` reoriented it (else None)."""
    grid = volume.meta.get(STORED_GRID)
    return grid if isinstance(grid, StoredGrid) else None


def to_stored(volume: Volume, grid: StoredGrid | None = None) -> Volume:
    """``volume`` (on a canonical grid) back in the array order of the stored grid ``grid`` — by
    default its own (:func:`stored_grid`). The inverse of :func:`to_canonical`, voxel for voxel.

    On exactly the canonical version of ``grid``, the geometry is the stored one as read (no
    rounding creeps into the file). A volume cropped from it goes back to the stored axis order with
    its own extent. A volume whose axes no longer point where ``grid`` says is left as it is when
    ``grid`` is its own (a record that no longer fits), and refused with ``ValueError`` when given.
    """
    own = grid is None
    grid = stored_grid(volume) if own else grid
    if grid is None:
        return volume
    stored_direction = np.asarray(grid.direction, dtype=float)
    expected = stored_direction[:, list(grid.perm)] * np.where(grid.flips, -1.0, 1.0)[None, :]
    # as loose as Volume.same_grid: a label file's float32 header may round the image's direction
    if not np.allclose(volume.direction, expected, atol=1e-3):
        if own:
            return _without_record(volume)
        raise ValueError(f"the volume's axes point {orientation_code(volume.direction)}, not "
                         f"{orientation_code(expected)} as the image's do")
    inverse = tuple(int(i) for i in np.argsort(grid.perm))
    out = _reorient(volume, inverse, tuple(grid.flips[inverse[b]] for b in range(3)))
    out = _without_record(out)
    if out.shape == tuple(grid.shape) and np.allclose(out.origin, grid.origin, atol=1e-4) \
            and np.allclose(out.spacing, grid.spacing, rtol=1e-9, atol=1e-9):
        out.spacing, out.origin, out.direction = tuple(grid.spacing), tuple(grid.origin), stored_direction
        out.instance_numbers = None if grid.instance_numbers is None else list(grid.instance_numbers)
    return out


def on_image_grid(result: Volume, image: Volume) -> Volume:
    """``result`` (labels, a mask, a heatmap made on ``image`` as opened) on the grid of the file
    ``image`` was read from: its array order, its geometry and its header's geometry, ready to write.

    A result that does not lie on ``image``'s grid goes back to its own stored grid instead.
    """
    if result.shape != image.shape or not image.same_grid(result):
        return to_stored(result)
    grid = stored_grid(image)
    if grid is None:  # the image is stored as shown: the result's voxels are already in its order
        out = _without_record(result)
        spacing, origin, direction = image.spacing, image.origin, image.direction.copy()
    else:
        out = to_stored(result, grid)
        spacing, origin, direction = grid.spacing, grid.origin, np.asarray(grid.direction, dtype=float)
    # exactly the image's geometry (a label file read over it may differ by rounding)
    out = out.with_array(out.array, spacing=spacing, origin=origin, direction=direction, source=out.source)
    out.meta.pop(FILE_GEOMETRY, None)
    if FILE_GEOMETRY in image.meta:
        out.meta[FILE_GEOMETRY] = image.meta[FILE_GEOMETRY]
    return out


def _without_record(volume: Volume) -> Volume:
    if STORED_GRID not in volume.meta and STORED_ORIENTATION not in volume.meta:
        return volume
    out = volume.with_array(volume.array, source=volume.source)
    out.meta.pop(STORED_GRID, None)
    out.meta.pop(STORED_ORIENTATION, None)
    return out

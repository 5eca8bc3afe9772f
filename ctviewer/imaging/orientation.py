"""Orientation: which patient direction each array axis points to, and reorienting to the
axis order the views expect, without resampling.

Readers return volumes as stored (with exact geometry); :func:`to_canonical` permutes and flips
axes so that axis 0 runs towards Superior, axis 1 Posterior and axis 2 Left (for an axial scan:
slices feet to head, rows anterior to posterior, columns right to left — the radiological
display). The geometry stays exact; what is left over (a tilted or oblique series) is reported.
"""

from __future__ import annotations

import itertools

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


def to_canonical(volume: Volume) -> Volume:
    """The same voxels with axes permuted/flipped to the views' order; geometry kept exact."""
    perm, flips = canonical_permutation(volume.direction)
    if perm == (0, 1, 2) and not any(flips):
        return volume
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
    if perm != (0, 1, 2):
        arr = np.ascontiguousarray(arr)
    out = volume.with_array(arr, spacing=spacing,
                            origin=tuple(origin), direction=direction,
                            instance_numbers=instance_numbers)
    out.meta["stored_orientation"] = orientation_code(volume.direction)
    return out

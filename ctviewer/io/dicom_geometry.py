"""Where each slice of a DICOM series goes: order, spacing, gaps, uneven steps, gantry tilt.

Pure numpy on the header values, so every rule is easy to test on its own. Slices are ordered by
their ImagePositionPatient projected on the slice normal (row cosines x column cosines), never by
file name or InstanceNumber, and the spacing comes from those positions, not from SliceThickness.
Whatever is not a regular stack is said in a warning, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Steps within this fraction of the usual step count as equal ("steps differ by > ~1%").
STEP_TOLERANCE = 0.01
#: Slices closer than this (mm) along the normal are at the same place.
SAME_PLACE_MM = 0.01
#: A step direction further than this (degrees) from the normal is a gantry tilt.
TILT_MIN_DEG = 0.1


@dataclass
class SliceLayout:
    """How sorted frames fill the output volume, and the volume's geometry."""

    #: For each output slice: the index (into the frames given) of the frame stored there,
    #: or None for a blank slice standing in for a missing one.
    slots: list[int | None]
    spacing_z: float
    origin: np.ndarray
    #: 3x3, column c = LPS unit vector of array axis c (axis 0 may be tilted, see tilt_deg).
    direction: np.ndarray
    warnings: list[str] = field(default_factory=list)
    #: Where uneven slices were resampled: positions (mm along axis 0 from the origin) of the
    #: loaded slices, and of the regular grid they must be interpolated onto.
    resample_from: np.ndarray | None = None
    resample_to: np.ndarray | None = None


def in_plane_axes(orientation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row direction, column direction, normal) from the six ImageOrientationPatient cosines.

    The row direction is where the column index grows (array axis 2), the column direction
    where the row index grows (array axis 1).
    """
    cos = np.asarray(orientation, dtype=float).reshape(2, 3)
    row = cos[0] / (np.linalg.norm(cos[0]) or 1.0)
    col = cos[1] / (np.linalg.norm(cos[1]) or 1.0)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal) or 1.0
    return row, col, normal


def plan_layout(positions: np.ndarray | None, orientation, fallback_spacing: float,
                instance_numbers: list[int | None] | None = None) -> SliceLayout:
    """Order ``positions`` (N x 3, LPS mm; None where the frames carry none) into a regular stack.

    ``fallback_spacing`` is used only where positions cannot give one (a single slice, or
    frames without positions).
    """
    orientation = orientation if orientation is not None else (1, 0, 0, 0, 1, 0)
    row, col, normal = in_plane_axes(orientation)
    direction = np.column_stack([normal, col, row])
    if positions is None:
        return _unpositioned_layout(instance_numbers, direction, fallback_spacing)
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    along = positions @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    warnings: list[str] = []
    order = _drop_repeated_places(order, along, warnings)
    first, last = positions[order[0]], positions[order[-1]]
    if len(order) == 1:
        return SliceLayout([order[0]], fallback_spacing, first, direction, warnings)

    step_direction, cos_tilt = _step_direction(first, last, normal, warnings)
    direction[:, 0] = step_direction
    # distance of each slice from the first, measured along the true step direction
    t = (along[order] - along[order[0]]) / cos_tilt
    steps = np.diff(t)
    usual = float(np.median(steps))
    multiples = np.maximum(np.rint(steps / usual), 1)
    if np.all(np.abs(steps - multiples * usual) <= STEP_TOLERANCE * usual):
        slots = _fill_gaps(order, multiples, along, warnings)
        spacing = float(t[-1] / (len(slots) - 1))
        return SliceLayout(slots, spacing, first, direction, warnings)

    count = int(round(t[-1] / usual)) + 1
    grid = np.linspace(0.0, t[-1], count)
    warnings.append(f"uneven slice spacing (steps from {steps.min():.3g} to {steps.max():.3g} mm); "
                    f"resampled onto a regular {grid[1]:.4g} mm grid of {count} slices")
    return SliceLayout(order, float(grid[1]), first, direction, warnings,
                       resample_from=t, resample_to=grid)


def _unpositioned_layout(instance_numbers, direction, spacing) -> SliceLayout:
    count = len(instance_numbers or [None])
    if count == 1:
        return SliceLayout([0], spacing, np.zeros(3), direction)
    # nothing else to go by: InstanceNumber, then the order found; say so
    keys = [(n is None, n or 0, i) for i, n in enumerate(instance_numbers or [])]
    order = [k[2] for k in sorted(keys)]
    warning = (f"slices carry no position (ImagePositionPatient); stacked by InstanceNumber, "
               f"{spacing:g} mm apart — distances along the stack are not known")
    return SliceLayout(order, spacing, np.zeros(3), direction, [warning])


def _drop_repeated_places(order: list[int], along: np.ndarray, warnings: list[str]) -> list[int]:
    """Keep one slice per place: several acquisitions or echoes at one place cannot stack."""
    kept = [order[0]]
    for i in order[1:]:
        if along[i] - along[kept[-1]] > SAME_PLACE_MM:
            kept.append(i)
    if len(kept) < len(order):
        warnings.append(f"{len(order) - len(kept)} slice(s) repeat the position of another "
                        f"(several acquisitions or echoes?); kept the first at each position")
    return kept


def _step_direction(first, last, normal, warnings) -> tuple[np.ndarray, float]:
    """The true direction from slice to slice, and its cosine with the normal."""
    span = last - first
    length = float(np.linalg.norm(span))
    cos_tilt = float(np.dot(span, normal)) / length
    tilt = float(np.degrees(np.arccos(np.clip(cos_tilt, -1.0, 1.0))))
    if tilt <= TILT_MIN_DEG:
        return normal, 1.0
    warnings.append(f"gantry tilt of {tilt:.2f}° (slices are sheared, not stacked straight); "
                    "kept exact in the geometry, so positions are right but axes are not square")
    return span / length, cos_tilt


def _fill_gaps(order, multiples, along, warnings) -> list[int | None]:
    slots: list[int | None] = [order[0]]
    for k, m in enumerate(multiples):
        missing = int(m) - 1
        if missing:
            low, high = along[order[k]], along[order[k + 1]]
            at = ", ".join(f"{low + (high - low) * j / m:.2f}" for j in range(1, min(missing, 3) + 1))
            warnings.append(f"{missing} slice(s) missing at {at}{' ...' if missing > 3 else ''} mm "
                            f"(between slices at {low:.2f} and {high:.2f} mm); filled with blank slices")
            slots.extend([None] * missing)
        slots.append(order[k + 1])
    return slots

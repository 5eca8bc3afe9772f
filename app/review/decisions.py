"""What each review key does to a pick, as plain functions (no Qt): the window records the result.

Each returns ``(new pick, audit action)``. A person's decision always stamps ``reviewed_at``; a moved
pick becomes ``corrected`` with source ``manual`` and no confidence (the model's confidence was for the
slice it chose, not for this one).
"""

from __future__ import annotations

import numpy as np

from ctviewer.workflows.slice_locator.combine import SPINE_COUNT
from ctviewer.workflows.slice_locator.picks import MANUAL, NOT_FOUND, Pick


def empty_pick(exam_id: str, level: str, projections=None) -> Pick:
    """A placeholder for a level nobody has placed yet (no model, or the model was not run)."""
    return Pick(exam_id=exam_id, level=level, slice_index=None, z_mm=None, instance_number=None,
                slice_thickness_mm=getattr(projections, "slice_thickness_mm", None),
                spacing_mm=getattr(projections, "slice_spacing_mm", None),
                source="", confidence=None, status="not_in_scan")


def accept(pick: Pick) -> tuple[Pick, str] | None:
    """Accept the pick as it is; None where there is nothing new to write (already decided: a
    correction stays a correction) or nothing to accept (a level never placed, or one in view that
    nobody found: accepting must not turn it into "not in scan"; place it, or say X)."""
    if (pick.slice_index is None and not pick.source) or pick.status in ("corrected", NOT_FOUND):
        return None
    if pick.is_reviewed and pick.status != "flagged":   # a flag is cleared by accepting after the second look
        return None
    return pick.reviewed("accepted" if pick.slice_index is not None else "not_in_scan"), "accept"


def move_to(pick: Pick, slice_index: int, projections) -> tuple[Pick, str]:
    """Put the pick on ``slice_index`` (clipped to the scan): a manual correction."""
    n = len(projections.slice_z_mm)
    k = int(np.clip(slice_index, 0, n - 1))
    numbers = projections.instance_numbers
    instance = numbers[k] if numbers is not None and k < len(numbers) else None
    new = pick.reviewed("corrected", slice_index=k, z_mm=float(projections.slice_z_mm[k]),
                        instance_number=None if instance is None else int(instance),
                        slice_thickness_mm=pick.slice_thickness_mm or projections.slice_thickness_mm,
                        spacing_mm=pick.spacing_mm or projections.slice_spacing_mm,
                        source=MANUAL, confidence=None)
    return new, "correct"


def step(pick: Pick, steps: int, projections) -> tuple[Pick, str]:
    """Move ``steps`` slices towards the head (negative: towards the feet); from mid-scan if unplaced."""
    start = pick.slice_index if pick.slice_index is not None else len(projections.slice_z_mm) // 2
    return move_to(pick, start + steps, projections)


def flag(pick: Pick) -> tuple[Pick, str]:
    """Ask for a second look; the slice stays where it is."""
    return pick.reviewed("flagged", source=pick.source or MANUAL), "flag"


def not_in_scan(pick: Pick) -> tuple[Pick, str]:
    """The level is not in this scan (a person says so)."""
    new = pick.reviewed("not_in_scan", slice_index=None, z_mm=None, instance_number=None, source=MANUAL,
                        confidence=None)
    return new, "not_in_scan"


def is_decided(pick: Pick | None) -> bool:
    return pick is not None and pick.is_reviewed


def state_of(pick: Pick | None) -> str:
    """What the queue shows for one level: a status, or 'none' where no pick exists yet."""
    if pick is None or (pick.slice_index is None and not pick.source):
        return "none"
    if pick.status == "not_in_scan" and not pick.reviewed_at:
        return "not_in_scan?"   # the model says absent; nobody has confirmed it
    if pick.status == NOT_FOUND:
        return NOT_FOUND        # in view, but nothing placed it: a person must
    if pick.status == "predicted" and pick.source == SPINE_COUNT:
        return "from_count"     # the network missed it; the vertebra count placed it
    return pick.status

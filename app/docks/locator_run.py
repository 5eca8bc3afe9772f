"""What the model dock does with slice_locator models: the same answer as ``ctviewer locate``.

The network's picks are cross-checked with the classical vertebra count by the rules of
:mod:`ctviewer.workflows.slice_locator.combine` (through ``locate_and_count``, as the CLI and the review
queue do): a level the network misses comes from the count ("from the spine count"), one placed apart
from the count reads "levels disagree — check". The network runs in the shared model process
(TensorFlow and VTK's OpenGL crash one process); the count is numpy and scipy and runs in the worker
thread. Every counted vertebra becomes a named line in the study's other views, so the count can be
checked at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Columns of the dock's picks table.
PICK_COLUMNS = ("Level", "Slice", "z (mm)", "Confidence", "Status", "Source")
#: The lines layer of the picks, and the one of the counted vertebrae.
LINES_LAYER = "model picks"
COUNT_LAYER = "vertebra count"


@dataclass
class Located:
    """One run of a locator on a study: the final picks, why each is what it is, and the count."""

    picks: list
    notes: dict[str, str] = field(default_factory=dict)
    spine: object | None = None            # SpineCount, or None where the count failed (see warnings)
    warnings: list[str] = field(default_factory=list)


def locate_study(volume, model_path: Path, progress=None, cancel=None) -> Located:
    """Worker body: the locator's levels in ``volume``, cross-checked with the vertebra count."""
    from ctviewer.ml.child import ChildLocator, shared_process
    from ctviewer.workflows.slice_locator.locate import check_ct, locate_and_count
    from ctviewer.workflows.slice_locator.picks import LEVELS

    check_ct(volume, volume.source or volume.name or "the study")
    progress(0.0, "running the model")
    locator = ChildLocator(model_path, process=shared_process())
    levels = [level for level in locator.levels if level in LEVELS]
    warnings: list[str] = []
    picks, notes, spine = locate_and_count(volume, locator, levels=levels, warnings=warnings,
                                           progress=progress, cancel=cancel)
    return Located(picks, notes, spine, warnings)


def pick_texts(pick) -> tuple[str, ...]:
    """A pick's row: the status in the reader's words ("levels disagree — check", "from the spine
    count") and where it came from."""
    from ctviewer.workflows.slice_locator.combine import level_remark

    return (pick.level, "" if pick.slice_index is None else str(pick.slice_index),
            "" if pick.z_mm is None else f"{pick.z_mm:.1f}",
            "" if pick.confidence is None else f"{pick.confidence:.0%}",
            level_remark(pick) or pick.status.replace("_", " "), pick.source)


def pick_lines(picks) -> list:
    from app.review.projection_view import level_colour
    from ctviewer.data.layers import SliceLine

    return [SliceLine(p.slice_index, p.level, level_colour(p.level),
                      note="" if p.confidence is None else f"{p.confidence:.0%}")
            for p in picks if p.in_scan]


def count_lines(spine) -> list:
    """A line named by its level at the middle of every counted vertebra (green, as the review's ticks)."""
    from app.review.projection_view import TICK_COLOUR
    from ctviewer.data.layers import SliceLine

    if spine is None or not spine.found:
        return []
    return [SliceLine(v.centre_slice, v.level or "?", TICK_COLOUR, note=f"spine count {v.confidence:.0%}")
            for v in spine.vertebrae]


def set_lines(study, name: str, lines: list) -> None:
    """The study's lines layer ``name`` holds ``lines`` (made when missing; removed when there are none)."""
    from ctviewer.data.layers import SliceLinesLayer

    layer = next((ly for ly in study.layers.by_kind("lines") if ly.name == name), None)
    if layer is None and lines:
        study.layers.append(SliceLinesLayer(lines, name=name))
    elif layer is not None and lines:
        layer.lines = lines
    elif layer is not None:
        study.layers.remove(layer)

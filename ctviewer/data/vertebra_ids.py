"""TotalSegmentator's label ids of the vertebrae: the one table ctviewer paints and reads them by.

The synthetic torso's label maps (:mod:`ctviewer.synth`), the spine model's per-level labels
(:mod:`ctviewer.workflows.segmentation.vertebra_levels`) and the locator's truth read from a labelled
CT (:mod:`ctviewer.workflows.slice_locator.dataset`) all take their ids from here, so a vertebra one of
them paints is the same vertebra for the others, and for TotalSegmentator's own label maps.
"""

from __future__ import annotations

#: TotalSegmentator v2's label id of each vertebra: 26 S1, 27 L5 … 31 L1, 32 T12 … 43 T1, 44 C7 … 50 C1.
VERTEBRA_IDS: dict[str, int] = {"S1": 26}
VERTEBRA_IDS.update({f"L{n}": 32 - n for n in range(1, 6)})
VERTEBRA_IDS.update({f"T{n}": 44 - n for n in range(1, 13)})
VERTEBRA_IDS.update({f"C{n}": 51 - n for n in range(1, 8)})
#: The sacrum below S1 (TotalSegmentator v2).
SACRUM_ID = 25
#: A sixth lumbar vertebra has no TotalSegmentator id: ctviewer gives it 210, outside their range.
L6_ID = 210


def vertebra_id(level: str) -> int:
    """The label id of a vertebra named ``level`` (``"L3"`` -> 29; ``"L6"`` -> :data:`L6_ID`)."""
    return L6_ID if level == "L6" else VERTEBRA_IDS[level]

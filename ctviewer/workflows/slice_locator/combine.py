"""The answer a clinician gets: the locator network's pick and the vertebra count, cross-checked per level.

:func:`combine` is a pure function: per level, the network's pick (None where the network has no
channel for that level) and the count (:class:`~ctviewer.workflows.slice_locator.vertebrae.SpineCount`)
give one final pick and a note saying why it is what it is. The rules:

1. **Both agree** — the network's slice lies within the counted vertebra's z range (its body, disc to
   disc, half a slice either side): the network's pick, its confidence and source kept.
2. **The network says "not in scan", the count names the level** (a whole body between two discs): the
   count's centre slice, source ``spine count``, status ``predicted`` (that is: nobody has reviewed it),
   the vertebra's confidence, and a note saying it came from the count.
3. **Both place the level, in different places**: status ``levels_disagree`` ("levels disagree — check"),
   never a confident answer; the slice stays the network's, the count's slices are in the note.
4. **The count's own two namings disagree** (from the ribs down and from the sacrum up: 11 or 13 rib
   pairs, an L6, a sacralised L5): every level the network or the count places gets ``levels_disagree``,
   whatever the network says.
5. **No spine found** (a head, a limb, a phantom): where the network says "not in scan" too, that is the
   answer (no note: the study's count line gives the reason); where it places the level anyway,
   ``levels_disagree``, the count's reason in the note.
6. **A vertebra cut by the scan's edge**: where the network places a level the count does not name, above
   the highest disc the count found (or below the lowest) with less room to the scan's edge than a
   vertebra needs, the level is on a body the scan cuts: ``levels_disagree``, never a confident answer.
7. **Otherwise the count cannot check** (it failed, or it names no vertebra of this level without rule 6
   applying): the network's answer stands, with why in the note.
8. **Levels the network has no channel for** come from the count alone (rule 2, or ``not_in_scan`` with
   source ``spine count`` and the reason where the count does not name them).

Notes are written to the audit trail (``NAME.audit.jsonl``) and printed; the CSV's columns stay as they
are. Only ``slice_z_mm``, ``instance_numbers``, ``slice_thickness_mm`` and ``slice_spacing_mm`` of the
projections are used (the scan's slices).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ctviewer.workflows.slice_locator.picks import LEVELS_DISAGREE, Pick

#: ``source`` of a pick that came from the vertebra count.
SPINE_COUNT = "spine count"
#: What ``levels_disagree`` reads as, wherever a person sees it.
DISAGREE_TEXT = "levels disagree — check"
FROM_COUNT_TEXT = "from the spine count"
#: How the count's reason starts where it finds no spine (vertebrae.NO_SPINE; not imported: this module
#: stays free of the count's imports).
NO_SPINE = "no spine found"


@dataclass(frozen=True)
class Combined:
    """One level's final pick and why (empty where network and count simply agree)."""

    pick: Pick
    note: str = ""


def combine(network: dict[str, Pick], count, levels, exam_id: str, projections) -> list[Combined]:
    """The final pick of each of ``levels`` (see the module docstring for the rules).

    ``network``: level -> the network's pick, for the levels it has a channel for. ``count``: the
    scan's SpineCount, or None where it was not made (then the network's picks stand as they are).
    """
    variant = count is not None and count.found and _variant_flag(count)
    out = []
    for level in levels:
        pick = network.get(level)
        vertebra = count.find(level) if count is not None and count.found else None
        if pick is None:
            pick = _empty(exam_id, level, projections)
        if vertebra is None:
            doubt = _doubt_without_vertebra(pick, count, projections) if pick.in_scan else ""
            if doubt:
                out.append(Combined(replace(pick, status=LEVELS_DISAGREE),
                                    f"{DISAGREE_TEXT}: the locator picked slice {pick.slice_index}, {doubt}"))
            else:
                out.append(Combined(pick, _why_not_counted(count, level, pick)))
            continue
        where = f"the vertebra count puts {level} at slices {vertebra.bottom_slice}–{vertebra.top_slice} " \
                f"(centre {vertebra.centre_slice})"
        if not pick.in_scan:
            said = "the locator says not in scan" if pick.source != SPINE_COUNT else "the locator has no " \
                                                                                     f"{level} channel"
            found = _from_count(pick, vertebra, projections)
            if variant:
                out.append(Combined(replace(found, status=LEVELS_DISAGREE), f"{said}; {where}; {variant}"))
            else:
                out.append(Combined(found, f"{FROM_COUNT_TEXT}: {said}; {where}"))
        elif not _agrees(pick, vertebra, projections):
            out.append(Combined(replace(pick, status=LEVELS_DISAGREE),
                                f"{DISAGREE_TEXT}: the locator picked slice {pick.slice_index}, {where}"
                                + (f"; {variant}" if variant else "")))
        elif variant:
            out.append(Combined(replace(pick, status=LEVELS_DISAGREE), f"{DISAGREE_TEXT}: {variant}"))
        else:
            out.append(Combined(pick, ""))
    return out


def _variant_flag(count) -> str:
    """The count's own disagreement (ribs vs sacrum) in words, or ''."""
    if count.levels_agree is False or DISAGREE_TEXT in count.flags:
        others = [f for f in count.flags if f != DISAGREE_TEXT]
        return "the counts from the ribs and from the sacrum disagree" + (f" ({'; '.join(others)})" if others else "")
    return ""


def _agrees(pick: Pick, vertebra, projections) -> bool:
    """The network's slice lies on the counted body (disc to disc), half a slice either side."""
    z = pick.z_mm if pick.z_mm is not None else float(projections.slice_z_mm[pick.slice_index])
    half = float(projections.slice_spacing_mm) / 2
    return vertebra.bottom_mm - half <= z <= vertebra.top_mm + half


def _from_count(pick: Pick, vertebra, projections) -> Pick:
    k = int(vertebra.centre_slice)
    numbers = projections.instance_numbers
    number = numbers[k] if numbers is not None and 0 <= k < len(numbers) else None
    return replace(pick, slice_index=k, z_mm=round(float(projections.slice_z_mm[k]), 3),
                   instance_number=None if number is None else int(number), source=SPINE_COUNT,
                   confidence=round(float(vertebra.confidence), 4), status="predicted", reviewed_at="")


def _empty(exam_id: str, level: str, projections) -> Pick:
    """A level the network has no channel for, before the count is asked."""
    return Pick(exam_id=exam_id, level=level, slice_index=None, z_mm=None, instance_number=None,
                slice_thickness_mm=projections.slice_thickness_mm,
                spacing_mm=round(float(projections.slice_spacing_mm), 4), source=SPINE_COUNT, confidence=None,
                status="not_in_scan")


def _why_not_counted(count, level: str, pick: Pick) -> str:
    """Why the count says nothing about this level (the words do not name it: the caller does)."""
    if count is None:
        return "" if pick.source != SPINE_COUNT else "no locator channel, and the vertebrae were not counted"
    if not count.found:
        if count.reason.startswith(NO_SPINE) and not pick.in_scan:
            return ""          # nothing there, say both; the study's count line says why
        return f"not cross-checked with the vertebra count: {count.reason}"
    return "not cross-checked: the vertebra count names no whole vertebra of this level in the scan"


def _doubt_without_vertebra(pick: Pick, count, projections) -> str:
    """Why a level the network places, and the count does not name, is no answer (rules 5 and 6); ''
    where the count has nothing against it."""
    if count is None:
        return ""
    if not count.found:
        return f"but the vertebra count says {count.reason}" if count.reason.startswith(NO_SPINE) else ""
    if len(count.discs_mm) < 2 or not count.vertebrae:
        return ""
    z = pick.z_mm if pick.z_mm is not None else float(projections.slice_z_mm[pick.slice_index])
    top_edge, bottom_edge = float(max(projections.slice_z_mm)), float(min(projections.slice_z_mm))
    top_disc, bottom_disc = max(count.discs_mm), min(count.discs_mm)
    # a whole vertebra needs about the height of its neighbour (the nearest counted body) beside the disc
    ends = [(z > top_disc, top_edge - top_disc, count.vertebrae[0].height_mm, "top", "highest", "below"),
            (z < bottom_disc, bottom_disc - bottom_edge, count.vertebrae[-1].height_mm, "bottom", "lowest", "above")]
    for beyond, room, height, edge, disc, side in ends:
        if beyond and room < 0.8 * height:
            return (f"on a vertebra the scan's {edge} edge cuts: the vertebra count's {disc} disc lies "
                    f"{room:.0f} mm {side} the edge, a whole vertebra there is ~{height:.0f} mm")
    return ""


def level_remark(pick: Pick | None) -> str:
    """What a person must know about a pick beyond its slice: "levels disagree — check", "from the
    spine count", or ''."""
    if pick is None:
        return ""
    if pick.status == LEVELS_DISAGREE:
        return DISAGREE_TEXT
    if pick.source == SPINE_COUNT and pick.in_scan and not pick.is_reviewed:
        return FROM_COUNT_TEXT
    return ""

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
8. **Levels the network has no channel for** come from the count alone (rule 2, or rule 9 where the count
   does not name them; source ``spine count``).
9. **Neither names the level** (the network says "not in scan" or has no channel, the count names no
   vertebra of it): where the level should lie is reckoned from the nearest vertebra the count named, one
   typical height (:data:`TYPICAL_HEIGHT_MM`, scaled by that vertebra's own) per level in between. Where
   that middle lies within the scan, the level is in view and nobody found it: ``not_found`` ("in view,
   not found — check"), never a confident "not in scan". Beyond the scan's edge it is ``not_in_scan``,
   with how far. Where the count named no vertebra (no last rib, no sacrum in view) nothing says where a
   level lies: the network's "not in scan" stands, and a level only the count could have placed is
   ``not_found`` (the count's unnamed vertebrae may be it).

Notes are written to the audit trail (``NAME.audit.jsonl``) and printed; the CSV's columns stay as they
are. Only ``slice_z_mm``, ``instance_numbers``, ``slice_thickness_mm`` and ``slice_spacing_mm`` of the
projections are used (the scan's slices).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ctviewer.workflows.slice_locator.picks import KNOWN_LEVELS, LEVELS_DISAGREE, NOT_FOUND, Pick, level_order

#: ``source`` of a pick that came from the vertebra count.
SPINE_COUNT = "spine count"
#: What ``levels_disagree`` reads as, wherever a person sees it.
DISAGREE_TEXT = "levels disagree — check"
FROM_COUNT_TEXT = "from the spine count"
#: What ``not_found`` reads as: the scan covers the level's height, but neither the network nor the count
#: named it.
NOT_FOUND_TEXT = "in view, not found — check"
#: Typical height (mm) of each vertebral body with the disc below it, adult spine, from the head down:
#: thoracic bodies grow from ~15 to ~24 mm, lumbar ones are ~27 mm with ~9 mm discs. Only their ratios
#: matter: they are scaled by the height the count measured on the nearest vertebra it named.
TYPICAL_HEIGHT_MM = dict(zip(KNOWN_LEVELS, (19, 20, 20, 21, 21, 22, 23, 24, 25, 26, 27, 29,
                                            31, 33, 34, 35, 34, 30)))
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
            elif not pick.in_scan and count is not None and count.found:
                out.append(_unnamed(pick, count, projections))
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


def nearest_slice(z_mm: float, slice_z_mm) -> int:
    """The index of the slice whose z lies nearest ``z_mm`` (slices in any order)."""
    return int(np.abs(np.asarray(slice_z_mm, dtype=float) - z_mm).argmin())


def expected_centre(level: str, count):
    """(z in mm, the named vertebra it was reckoned from) of where ``level``'s middle should lie, from the
    nearest vertebra the count named (rule 9); None where the count named none."""
    named = [v for v in count.vertebrae if v.level in TYPICAL_HEIGHT_MM]
    if not named or level not in TYPICAL_HEIGHT_MM:
        return None
    target = level_order(level)
    v = min(named, key=lambda v: abs(level_order(v.level) - target))
    here = level_order(v.level)
    if here == target:
        return v.centre_mm, v
    # a body a third shorter or twice as tall as is typical is more likely a count's mistake than a spine
    scale = min(max(v.height_mm / TYPICAL_HEIGHT_MM[v.level], 0.6), 1.6)
    between = KNOWN_LEVELS[min(here, target) + 1:max(here, target)]
    reach = scale * (sum(TYPICAL_HEIGHT_MM[lv] for lv in between) + TYPICAL_HEIGHT_MM[level] / 2)
    return (v.top_mm + reach if target < here else v.bottom_mm - reach), v


def _unnamed(pick: Pick, count, projections) -> Combined:
    """A level nobody placed, with a spine in view: in view but not found, or not in scan (rule 9)."""
    level = pick.level
    own = pick.source != SPINE_COUNT           # the network has a channel for it, and said "not in scan"
    who = "neither the locator nor the vertebra count names it" if own else \
        "the locator has no channel for it and the vertebra count names no whole vertebra of it"
    expected = expected_centre(level, count)
    if expected is None:
        if own:    # nothing says where the level lies: the network's answer stands (rule 7)
            return Combined(pick, f"not cross-checked with the vertebra count: {count.summary()}")
        return Combined(replace(pick, status=NOT_FOUND),
                        f"{NOT_FOUND_TEXT}: the vertebra count found {len(count.vertebrae)} whole vertebrae but "
                        f"could name none ({'; '.join(count.flags) or 'no last rib or sacrum in view'}), and "
                        f"{level} may be among them")
    z, v = expected
    z_all = projections.slice_z_mm
    top, bottom = float(max(z_all)), float(min(z_all))
    steps = abs(level_order(level) - level_order(v.level))
    side = "above" if level_order(level) < level_order(v.level) else "below"
    counted = f"{steps} vertebra{'e' if steps > 1 else ''} {side} {v.level} as counted"
    if bottom <= z <= top:
        k = nearest_slice(z, z_all)
        return Combined(replace(pick, status=NOT_FOUND),
                        f"{NOT_FOUND_TEXT}: the scan covers {level}'s height (its middle expected near slice {k}, "
                        f"z {z:.0f} mm, {counted}), but {who}")
    edge, gap = ("top", z - top) if z > top else ("bottom", bottom - z)
    return Combined(replace(pick, status="not_in_scan"),
                    f"not in scan: {level}'s middle would lie near z {z:.0f} mm ({counted}), {gap:.0f} mm "
                    f"beyond the scan's {edge} edge")


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
    """What a person must know about a pick beyond its slice: "levels disagree — check", "in view, not
    found — check", "from the spine count", or ''."""
    if pick is None:
        return ""
    if pick.status == LEVELS_DISAGREE:
        return DISAGREE_TEXT
    if pick.status == NOT_FOUND:
        return NOT_FOUND_TEXT
    if pick.source == SPINE_COUNT and pick.in_scan and not pick.is_reviewed:
        return FROM_COUNT_TEXT
    return ""

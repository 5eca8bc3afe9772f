"""The answer a clinician gets: the locator network's pick cross-checked with the vertebra count, per level.

The rules (``ctviewer.workflows.slice_locator.combine``) first on a hand-made count over a scan of known
geometry (exact slices, z, instance numbers), then on synthetic torsos whose label maps give every
vertebra's true slices, counted for real and located by a stand-in network that is right, silent or
one vertebra off.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest

from ctviewer.synth import TorsoParams, make_torso
from ctviewer.workflows.slice_locator.combine import SPINE_COUNT, combine, level_remark
from ctviewer.workflows.slice_locator.locate import locate_and_count
from ctviewer.workflows.slice_locator.picks import Pick
from ctviewer.workflows.slice_locator.projections import make_projections
from ctviewer.workflows.slice_locator.vertebrae import DISAGREE, SpineCount, Vertebra
from tests.unit.test_locate import SLICE_Z, _projections


def _vertebra(level: str, bottom: int, top: int, confidence: float = 0.9) -> Vertebra:
    """A counted body from slice ``bottom`` to ``top`` of the 2.5 mm scan of ``_projections``."""
    centre = (bottom + top) // 2
    return Vertebra(level, top, bottom, centre, float(SLICE_Z[top]), float(SLICE_Z[bottom]), float(SLICE_Z[centre]),
                    level.startswith("T"), confidence, level if level != "S1" else "", level)


#: T12 on slices 60–70 (z −150 … −125 mm), L1 50–60, L2 40–50, L3 30–40 (centre 35, z −212.5).
COUNT = SpineCount(vertebrae=[_vertebra("T12", 60, 70), _vertebra("L1", 50, 60), _vertebra("L2", 40, 50),
                              _vertebra("L3", 30, 40, 0.75)], counts=("ribs", "sacrum"), lumbar_type=5)


def _net(level: str, k: int | None, confidence: float = 0.8) -> Pick:
    """The network's pick on slice ``k`` (None: not in scan)."""
    return Pick("case1", level, k, None if k is None else float(SLICE_Z[k]), None if k is None else 81 - k, 3.0,
                2.5, "slice_locator v4", confidence, "predicted" if k is not None else "not_in_scan")


def _combine(network, count=COUNT, levels=("L3", "T12")):
    return {c.pick.level: c for c in combine({p.level: p for p in network}, count, levels, "case1", _projections())}


def test_where_both_agree_the_networks_pick_stands():
    l3 = _net("L3", 36, 0.91)
    t12 = _net("T12", 60)                      # on the counted body's lower disc: still that vertebra
    out = _combine([l3, t12])
    assert out["L3"].pick == l3 and out["L3"].note == ""
    assert out["T12"].pick == t12 and level_remark(out["T12"].pick) == ""


def test_network_says_not_in_scan_and_the_count_names_it_the_count_places_it():
    out = _combine([_net("L3", 35), _net("T12", None, 0.04)])
    t12 = out["T12"].pick
    # the counted body's centre slice 65: z −137.5 mm, instance 81 − 65; nobody has reviewed it
    assert (t12.slice_index, t12.z_mm, t12.instance_number) == (65, -137.5, 16)
    assert (t12.source, t12.status, t12.confidence, t12.reviewed_at) == (SPINE_COUNT, "predicted", 0.9, "")
    assert (t12.slice_thickness_mm, t12.spacing_mm) == (3.0, 2.5)
    assert "the locator says not in scan" in out["T12"].note and "slices 60–70 (centre 65)" in out["T12"].note
    assert level_remark(t12) == "from the spine count"


def test_both_place_the_level_apart_levels_disagree_never_a_confident_answer():
    below = _net("T12", 59)                    # 2.5 mm under the T12 body: in L1, one vertebra off
    out = _combine([_net("L3", 35), below])
    t12 = out["T12"].pick
    assert t12.status == "levels_disagree" and t12.slice_index == 59 and t12.source == "slice_locator v4"
    assert out["T12"].note == ("levels disagree — check: the locator picked slice 59, the vertebra count puts "
                               "T12 at slices 60–70 (centre 65)")
    assert level_remark(t12) == "levels disagree — check" and not t12.is_reviewed
    assert out["L3"].pick.status == "predicted"


def test_a_variant_count_marks_every_level_it_places_as_disagreeing():
    """13 rib pairs or a sacralised L5: the ribs' and the sacrum's names differ, so even a pick the count
    confirms is not an answer."""
    variant = replace(COUNT, flags=[DISAGREE, "4 lumbar-type vertebrae between the last rib and the sacrum: "
                                              "a sacralised L5, or 13 rib pairs"], lumbar_type=4,
                      vertebrae=[replace(v, level_from_sacrum="X") for v in COUNT.vertebrae])
    out = _combine([_net("L3", 35), _net("T12", None)], count=variant)
    assert out["L3"].pick.status == "levels_disagree" and out["L3"].pick.slice_index == 35
    assert "a sacralised L5, or 13 rib pairs" in out["L3"].note
    assert (out["T12"].pick.status, out["T12"].pick.slice_index, out["T12"].pick.source) == \
        ("levels_disagree", 65, SPINE_COUNT)


def test_no_spine_found_a_level_the_network_places_is_no_answer():
    """A head, a limb or a phantom: the count finds no spine. The network's "not in scan" is then the
    answer (no note: the count's line says why); a level it places anyway is marked levels disagree."""
    network = [_net("L3", 35), _net("T12", None)]
    out = _combine(network, count=SpineCount(reason="no spine found: no bone in the scan"))
    assert out["T12"].pick == network[1] and out["T12"].note == ""
    l3 = out["L3"].pick
    assert (l3.status, l3.slice_index, l3.source) == ("levels_disagree", 35, "slice_locator v4")
    assert out["L3"].note == ("levels disagree — check: the locator picked slice 35, but the vertebra count says "
                              "no spine found: no bone in the scan")
    # a count that could not be made at all (it failed: the warning says so) changes nothing
    assert [c.pick for c in _combine(network, count=None).values()] == network
    # nor does one that found a spine but no whole vertebra (a thin slab): the network stands, with why
    slab = _combine(network, count=SpineCount(reason="no whole vertebra in view: one disc found"))
    assert slab["L3"].pick == network[0] and slab["L3"].note.startswith("not cross-checked")


def test_no_spine_text_is_the_counts():
    from ctviewer.workflows.slice_locator import combine as combine_module, vertebrae

    assert combine_module.NO_SPINE == vertebrae.NO_SPINE


def test_a_level_on_a_vertebra_the_scans_edge_cuts_is_no_answer():
    """The count found L1 (slices 66–76) and L2 whole and no disc above slice 76; the scan ends at slice 80,
    10 mm above it, where no whole vertebra fits: T12 placed there lies on a body the scan cuts."""
    discs = [float(SLICE_Z[k]) for k in (76, 66, 56)]
    cut = SpineCount(vertebrae=[_vertebra("L1", 66, 76), _vertebra("L2", 56, 66)], counts=("sacrum",),
                     discs_mm=discs)
    out = _combine([_net("T12", 78), _net("L3", None)], count=cut)
    assert out["T12"].pick.status == "levels_disagree" and out["T12"].pick.slice_index == 78
    assert out["T12"].note == ("levels disagree — check: the locator picked slice 78, on a vertebra the scan's "
                               "top edge cuts: the vertebra count's highest disc lies 10 mm below the edge, a "
                               "whole vertebra there is ~25 mm")
    # with room for a whole vertebra above the highest disc (the count missed discs higher up) it stands
    roomy = replace(cut, vertebrae=[_vertebra("L1", 40, 50), _vertebra("L2", 30, 40)],
                    discs_mm=[float(SLICE_Z[k]) for k in (50, 40, 30)])
    out = _combine([_net("T12", 60), _net("L3", None)], count=roomy)
    assert out["T12"].pick == _net("T12", 60) and out["T12"].note.startswith("not cross-checked")
    # and the same at the bottom edge: below the lowest disc, 5 mm above the scan's first slice
    low = replace(cut, vertebrae=[_vertebra("L4", 12, 22), _vertebra("L5", 2, 12)],
                  discs_mm=[float(SLICE_Z[k]) for k in (22, 12, 2)])
    out = _combine([_net("L3", None), _net("T12", None)], count=low, levels=("L3", "T12", "S1"))
    assert out["S1"].pick.status == "not_in_scan"
    out = _combine([_net("L3", 1)], count=low, levels=("L3",))
    assert out["L3"].pick.status == "levels_disagree" and "bottom edge cuts" in out["L3"].note


def test_levels_the_network_has_no_channel_for_come_from_the_count():
    out = _combine([_net("L3", 35)], levels=("L1", "L3", "S1"))
    l1, s1 = out["L1"].pick, out["S1"].pick
    assert (l1.slice_index, l1.source, l1.status) == (55, SPINE_COUNT, "predicted")
    assert "no L1 channel" in out["L1"].note
    # the count names no S1, but the scan reaches 75 mm below L3's lower disc: L4, L5 and S1's middle lie in
    # view, so S1 is "in view, not found", never "not in scan"
    assert (s1.slice_index, s1.source, s1.status, s1.confidence) == (None, SPINE_COUNT, "not_found", None)
    assert "names no whole vertebra" in out["S1"].note and "3 vertebrae below L3" in out["S1"].note
    assert level_remark(s1) == "in view, not found — check" and not s1.in_scan
    assert out["L3"].pick == _net("L3", 35)


def test_a_level_in_view_that_nobody_named_is_not_found_and_one_beyond_the_edge_not_in_scan():
    """The count named L1–L3 (25 mm each) and the scan reaches 50 mm above L1: T12 and T11 lie in view
    although the network says "not in scan" for T12 and the count named neither; T1, some 250 mm higher,
    is really not in the scan."""
    count = SpineCount(vertebrae=[_vertebra("L1", 50, 60), _vertebra("L2", 40, 50), _vertebra("L3", 30, 40)],
                       counts=("sacrum",))
    out = _combine([_net("T12", None, 0.04), _net("L3", 35)], count=count, levels=("T1", "T11", "T12", "L3"))
    t12, t11, t1 = out["T12"].pick, out["T11"].pick, out["T1"].pick
    # the network's row, with the count's verdict: no slice, its low confidence and its source kept
    assert (t12.status, t12.slice_index, t12.confidence, t12.source) == ("not_found", None, 0.04,
                                                                         "slice_locator v4")
    # T12's middle: L1's upper disc (z −150) + 29 mm × (25 / 31) / 2 = z −138, slice 65
    assert out["T12"].note == ("in view, not found — check: the scan covers T12's height (its middle expected "
                               "near slice 65, z -138 mm, 1 vertebra above L1 as counted), but neither the "
                               "locator nor the vertebra count names it")
    assert (t11.status, t11.source) == ("not_found", SPINE_COUNT) and "2 vertebrae above L1" in out["T11"].note
    assert (t1.status, t1.slice_index) == ("not_in_scan", None)
    assert out["T1"].note.startswith("not in scan: T1's middle would lie near z ") and "top edge" in out["T1"].note
    assert out["L3"].pick == _net("L3", 35)


def test_a_level_just_above_the_scans_top_is_not_in_scan():
    """L1's upper disc is the scan's top slice: T12's middle would lie ~12 mm above it."""
    count = SpineCount(vertebrae=[_vertebra("L1", 70, 80), _vertebra("L2", 60, 70)], counts=("sacrum",))
    out = _combine([_net("T12", None), _net("L3", None)], count=count, levels=("T12", "T11"))
    assert out["T12"].pick.status == out["T11"].pick.status == "not_in_scan"
    assert out["T12"].note == ("not in scan: T12's middle would lie near z -88 mm (1 vertebra above L1 as "
                               "counted), 12 mm beyond the scan's top edge")


def test_with_no_vertebra_named_the_networks_not_in_scan_stands_and_count_only_levels_are_not_found():
    """A chest crop: the count sees whole vertebrae but neither the last rib nor the sacrum, so nothing says
    where a level lies: the network's "not in scan" for L3 stands; T5, which only the count could place,
    may be any of the unnamed vertebrae."""
    unnamed = SpineCount(vertebrae=[replace(_vertebra("", 50, 60), level_from_sacrum=""),
                                    replace(_vertebra("", 40, 50), level_from_sacrum="")],
                         flags=["neither the last rib nor the sacrum in view to count from"])
    l3 = _net("L3", None, 0.02)
    out = _combine([l3], count=unnamed, levels=("L3", "T5"))
    assert out["L3"].pick == l3 and out["L3"].note.startswith("not cross-checked with the vertebra count")
    assert out["T5"].pick.status == "not_found"
    assert out["T5"].note == ("in view, not found — check: the vertebra count found 2 whole vertebrae but could "
                              "name none (neither the last rib nor the sacrum in view to count from), and T5 may "
                              "be among them")


# -- on synthetic torsos, counted for real ----------------------------------------------------------

@lru_cache(maxsize=None)
def _torso(seed: int):
    return make_torso(TorsoParams.random(seed, field_of_view="abdomen", matrix=(160, 160), pixel_spacing=2.5))


class AtLevels:
    """A locator-compatible stand-in: a peak at the z given per level, nothing for the others."""

    levels, threshold = ("L3", "T12"), 0.3

    class card:
        name, version = "stand_in", "1"

    def __init__(self, z_by_level: dict[str, float]):
        self.z = z_by_level

    def heatmaps(self, projections):
        rows = np.arange(projections.rows)
        return {lv: (np.exp(-0.5 * ((rows - projections.z_to_row(self.z[lv])) / 2.0) ** 2) if lv in self.z
                     else np.zeros(projections.rows)) for lv in self.levels}


def _within_body(torso, level: str, k: int) -> bool:
    truth = torso.levels[level]
    return truth.bottom_slice <= k <= truth.top_slice


@pytest.mark.parametrize("seed", [11, 13])
def test_torso_t12_missed_by_the_network_is_found_by_the_count_and_l3_agrees(seed):
    t = _torso(seed)
    proj = make_projections(t.image)
    z = proj.slice_z_mm
    network = AtLevels({"L3": float(z[t.levels["L3"].slice])})      # right on L3, silent on T12
    picks, notes, spine = locate_and_count(t.image, network, ("L3", "T12", "L1"), exam_id="t",
                                           projections=proj)
    by = {p.level: p for p in picks}
    assert spine.found and by["L3"].source == "stand_in v1" and by["L3"].status == "predicted"
    assert by["T12"].source == SPINE_COUNT and by["T12"].status == "predicted"
    assert by["L1"].source == SPINE_COUNT
    for level in ("L3", "T12", "L1"):
        assert _within_body(t, level, by[level].slice_index), (level, by[level].slice_index, t.levels[level])
    assert "L3" not in notes and "from the spine count" in notes["T12"]


def test_torso_network_one_vertebra_off_is_marked_levels_disagree():
    t = _torso(11)
    proj = make_projections(t.image)
    z = proj.slice_z_mm
    # the network puts T12 on L1: the count, which finds the lowest rib-bearing vertebra, says otherwise
    network = AtLevels({"L3": float(z[t.levels["L3"].slice]), "T12": float(z[t.levels["L1"].slice])})
    picks, notes, _ = locate_and_count(t.image, network, ("L3", "T12"), exam_id="t", projections=proj)
    t12 = {p.level: p for p in picks}["T12"]
    assert t12.status == "levels_disagree" and _within_body(t, "L1", t12.slice_index)
    assert notes["T12"].startswith("levels disagree — check: the locator picked slice")

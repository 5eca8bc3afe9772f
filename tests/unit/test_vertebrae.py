"""Counting every vertebra: bodies and discs along the spine, ribs, sacrum, levels and their z ranges.

The truth comes from the synthetic torsos' label maps (``SynthTorso.levels``: every vertebral body's
centre and extent in slices). "Right" means the counted vertebra's centre lies within half of that body's
height of its truth — the brief's bar for every vertebra. The upper thoracic spine (T1–T8) is left out of
the per-vertebra check: its thin discs blur away at 2–3 mm slices and a missed one shifts the names above
it. Measured on 42 scans not used while building the counter (seeds 40–51, 60–71, 80–85, 90–95 at 160²,
100–105 at 256²): with normal anatomy T12 right in 25 of 26, L3 in 22 of 22, T9–L5 207 of 209, all
levels 355 of 379; the L6, 4-lumbar, sacralised-L5 and rudimentary-12th-rib scans with ribs and sacrum
in view all flagged.

Re-measured when the synthetic bones changed (commits 1448289, ed9d80d: thinner brighter ribs hanging
steeper, brighter cortex, a fused sacrum) on 42 held-out torsos (seeds 40–51 and 90–95 chest to hips,
60–71 abdomen, 80–85 chest at 160², 100–105 chest to hips at 256²), normal anatomy: T12 right in 27 of
28 before and after, L3 24 of 24 before and 22 of 24 after, T9–L5 221 of 223 before and 205 of 224
after, every named level 385 of 409 before and 293 of 400 after (the upper thoracic names shift by one
where a thin disc between bright endplates is missed), 2 normal scans flagged after (0 before). With the
discs found as dips below the bone either side (a 12 mm top-hat, chosen on seeds 200–223): T12 28 of 28,
L3 24 of 24, T9–L5 225 of 225 on both generators; every named level 416 of 422 (old bones) and 410 of 422
(new bones); no normal scan flagged.

Those figures were measured on generator 3. Generator 4 (ribs sloping down from the spine as on real CT)
with ``scripts/measure_vertebra_count.py`` (the same 42 seeds; its T9–L5 counts every level held whole):
T12 28 of 28, L3 24 of 24, T9–L5 225 of 229, every named level 403 of 421, no normal scan flagged. The
count before it was made robust to such ribs scored 25 of 28, 21 of 24, 198 of 229 there (3 normal scans
flagged); on generator 3 the script gives 28, 24, 225 of 229 and 409 of 422 before and after.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from ctviewer.data.volume import CANONICAL_DIRECTION, Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken
from ctviewer.synth import TorsoParams, make_torso
from ctviewer.workflows.slice_locator.vertebrae import DISAGREE, NO_SPINE, count_vertebrae

#: A coarse grid keeps each scan to a second or two; the counter works on ~2 mm anyway.
GRID = dict(matrix=(160, 160), pixel_spacing=2.5)
#: Levels whose position is checked on every scan that holds them whole.
CHECKED = {f"T{n}" for n in range(9, 13)} | {f"L{n}" for n in range(1, 6)}


@lru_cache(maxsize=None)
def torso(seed: int, field_of_view: str = "both", **changes):
    params = TorsoParams.random(seed, field_of_view=field_of_view, **GRID).with_changes(**changes)
    return make_torso(params)


def _whole(t, level: str) -> bool:
    lv = t.levels.get(level)
    return lv is not None and lv.bottom_slice > 0 and lv.top_slice < t.image.shape[0] - 1


def _right(t, vertebra) -> bool:
    truth = t.levels[vertebra.level]
    return abs(vertebra.centre_slice - truth.slice) <= (truth.top_slice - truth.bottom_slice) / 2


def _check_positions(t, count) -> None:
    for vertebra in count.vertebrae:
        if vertebra.level in CHECKED:
            truth = t.levels[vertebra.level]
            assert _right(t, vertebra), (f"{vertebra.level} centre at slice {vertebra.centre_slice}, truth "
                                         f"{truth.slice} ({truth.bottom_slice}–{truth.top_slice})")


@pytest.mark.parametrize("seed", [1, 3])
def test_chest_to_hips_every_vertebra_counted_from_ribs_and_sacrum(seed):
    t = torso(seed)
    count = count_vertebrae(t.image)
    assert count.counts == ("ribs", "sacrum") and count.levels_agree and count.flags == []
    assert count.lumbar_type == 5
    names = [v.level for v in count.vertebrae]
    # head to feet, no name twice, ending on the sacrum
    assert names[-6:] == ["L1", "L2", "L3", "L4", "L5", "S1"] and names[-7] == "T12"
    assert len(set(names)) == len(names)
    assert [v.centre_slice for v in count.vertebrae] == sorted((v.centre_slice for v in count.vertebrae),
                                                              reverse=True)
    _check_positions(t, count)
    t12, l1 = count.find("T12"), count.find("L1")
    assert t12.rib_bearing and not l1.rib_bearing
    assert _right(t, t12) and _right(t, count.find("L3"))


@pytest.mark.parametrize("seed", [11, 13])
def test_abdomen_only_t12_and_l3(seed):
    t = torso(seed, "abdomen")
    count = count_vertebrae(t.image)
    assert count.counts == ("ribs", "sacrum") and count.levels_agree
    _check_positions(t, count)
    assert _right(t, count.find("T12")) and _right(t, count.find("L3"))
    # the summary a report line shows
    assert count.summary().startswith(f"{count.vertebrae[0].level}–S1 (")


def test_chest_only_counts_down_from_the_ribs_and_has_no_lumbar_spine():
    t = torso(21, "chest")
    count = count_vertebrae(t.image)
    assert count.counts == ("ribs",) and count.levels_agree is None
    assert _right(t, count.find("T12"))
    _check_positions(t, count)
    # the scan ends in L1: cut by the edge, it gets no level; L3 is not in the scan at all
    assert count.find("L1") is None and count.find("L3") is None


def test_pelvis_only_counts_up_from_the_sacrum():
    t = torso(31, fov_mm=(-150.0, 100.0))
    count = count_vertebrae(t.image)
    assert count.counts == ("sacrum",)
    assert [v.level for v in count.vertebrae] == ["L4", "L5", "S1"]
    _check_positions(t, count)
    assert count.find("T12") is None and count.find("L3") is None     # L3 is cut by the top edge


def test_a_scan_cut_through_a_vertebra_names_only_the_whole_ones():
    t = torso(13, "abdomen")
    t12 = t.levels["T12"]
    cut = t.image.with_array(t.image.array[:t12.slice + 1].copy())   # the top slice halves T12
    count = count_vertebrae(cut)
    assert count.find("T12") is None
    assert all(v.top_slice < cut.shape[0] - 1 for v in count.vertebrae)
    assert count.vertebrae[0].level == "L1" and _right(t, count.vertebrae[0])
    assert _right(t, count.find("L3"))
    # and cut from below, through L4: no sacrum, named down from the ribs
    l4 = t.levels["L4"]
    low = t.image.with_array(t.image.array[l4.slice:].copy(), origin=_shifted(t.image, l4.slice))
    count = count_vertebrae(low)
    assert count.counts == ("ribs",) and count.find("L4") is None and count.find("S1") is None
    l3 = count.find("L3")
    assert abs(l3.centre_slice + l4.slice - t.levels["L3"].slice) <= 4


def _shifted(volume: Volume, k: int) -> tuple[float, float, float]:
    x, y, z = volume.origin
    return (x, y, z + k * volume.spacing[0])


def test_z_ranges_in_mm_follow_the_slices():
    t = torso(11, "abdomen")
    count = count_vertebrae(t.image)
    z = t.image.origin[2] + t.image.spacing[0] * np.arange(t.image.shape[0])
    for v in count.vertebrae:
        assert v.bottom_slice < v.centre_slice < v.top_slice
        assert v.top_mm > v.centre_mm > v.bottom_mm
        assert v.centre_mm == pytest.approx(z[v.centre_slice], abs=t.image.spacing[0])
        assert 0 < v.confidence <= 1
    truth = t.levels["L3"]
    assert count.find("L3").centre_mm == pytest.approx(truth.z_mm, abs=(truth.top_mm - truth.bottom_mm) / 2)


@pytest.mark.parametrize("changes, lumbar_type", [
    (dict(lumbar_count=6), 6),                  # an L6: one lumbar vertebra too many
    (dict(rudimentary_12th_rib=True), 6),       # a 12th rib too short to see: T12 looks lumbar
    (dict(sacralised_l5=True), 4),              # L5 fused to the sacrum
])
def test_variants_make_the_counts_disagree_and_are_named(changes, lumbar_type):
    t = torso(13, "abdomen", **changes)
    count = count_vertebrae(t.image)
    assert count.counts == ("ribs", "sacrum")
    assert count.lumbar_type == lumbar_type and count.levels_agree is False
    assert DISAGREE in count.flags
    assert any(f"{lumbar_type} lumbar-type vertebrae" in flag for flag in count.flags)
    assert any(v.level_from_ribs != v.level_from_sacrum for v in count.vertebrae)


def test_normal_anatomy_is_not_flagged():
    count = count_vertebrae(torso(13, "abdomen").image)
    assert count.flags == [] and count.lumbar_type == 5 and count.levels_agree


def _phantom(inside) -> Volume:
    """A 60-slice scan (3 mm) on a 2 mm grid: air around a cylinder of soft tissue, ``inside`` painted in."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:128, :128]
    r = np.hypot(yy - 64, xx - 64) * 2.0
    plane = np.where(r < 90, 40.0, -1000.0)
    plane = inside(plane, r)
    array = np.repeat(plane[None], 60, axis=0) + rng.normal(0, 15, (60, 128, 128))
    return Volume(array.astype(np.int16), spacing=(3.0, 2.0, 2.0), origin=(-128.0, -128.0, -90.0),
                  direction=CANONICAL_DIRECTION.copy(), modality="CT")


def test_no_spine_found_in_a_water_phantom():
    count = count_vertebrae(_phantom(lambda plane, r: np.where(r < 90, 0.0, plane)))
    assert not count.found and count.reason.startswith(NO_SPINE) and count.vertebrae == []
    assert count.find("L3") is None and count.summary() == count.reason


def test_no_spine_found_in_a_limb():
    # a long bone: cortex round marrow, the same all along (no discs)
    def bone(plane, r):
        plane = np.where(r < 14, 1200.0, plane)
        return np.where(r < 8, 20.0, plane)

    count = count_vertebrae(_phantom(bone))
    assert not count.found and count.reason.startswith(NO_SPINE)


def test_a_photo_is_refused_and_cancel_stops():
    photo = Volume(np.zeros((1, 20, 20, 3), np.uint8), modality="XC")
    with pytest.raises(InputError, match="photo"):
        count_vertebrae(photo)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        count_vertebrae(torso(11, "abdomen").image, cancel=token)


def test_progress_is_reported_to_the_end():
    seen = []
    count_vertebrae(torso(11, "abdomen").image, progress=lambda f, m="": seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_count_text_names_t12_and_l3_for_the_studys_line():
    """(The cross-check of picks against the count is combine.combine: tests/unit/test_combine.py.)"""
    from ctviewer.workflows.slice_locator.vertebrae import count_text

    t = torso(11, "abdomen")
    count = count_vertebrae(t.image)
    t12, l3 = count.find("T12"), count.find("L3")
    assert count_text(count).startswith(f"count: T12 slice {t12.centre_slice}, L3 slice {l3.centre_slice}; T")
    assert count_text(None) == ""


def test_two_dips_along_a_bright_tube_are_no_spine():
    # a vessel full of contrast behind the body's middle, narrowed twice: two disc-like dips, no sacrum
    volume = _phantom(lambda plane, r: plane)
    yy, xx = np.mgrid[:128, :128]
    tube = np.hypot(yy - 90, xx - 64) * 2.0 < 12
    array = volume.array.copy()
    array[:, tube] = 300
    array[18:21, tube] = 60
    array[33:36, tube] = 60
    count = count_vertebrae(volume.with_array(array))
    assert not count.found and count.reason.startswith(NO_SPINE)


def test_a_scan_stored_head_first_gives_the_same_levels():
    image = torso(11, "abdomen").image
    a, b = count_vertebrae(image), count_vertebrae(stored_head_first(image))
    assert [(v.level, v.centre_slice, v.centre_mm) for v in a.vertebrae] == \
        [(v.level, v.centre_slice, v.centre_mm) for v in b.vertebrae]


def stored_head_first(image: Volume) -> Volume:
    """The same voxels stored from the head down: axis 0 flipped, origin at the top slice, z direction −1."""
    direction = image.direction.copy()
    direction[:, 0] *= -1
    top = image.index_to_lps(np.array([[image.shape[0] - 1, 0, 0]]))[0]
    return Volume(image.array[::-1].copy(), spacing=image.spacing, origin=tuple(top), direction=direction,
                  modality="CT")


def test_real_series_counted_t11_to_s1(shared_data):
    """ACRIN 001 (real, 5 mm slices every 4.25 mm; T12 centre slice 75 and L3 51 read by eye, data README):
    the count names T11–S1 from the ribs and the sacrum, both agreeing. A regression check: the series was
    looked at while the count was built."""
    from ctviewer.io import read_volume

    series = shared_data / "ct" / "acrin_001_dicom"
    if not series.is_dir():
        pytest.skip(f"{series} is absent")
    count = count_vertebrae(read_volume(series))
    assert count.summary() == "T11–S1 (8 vertebrae, counted from ribs and sacrum)"
    assert (count.find("T12").centre_slice, count.find("L3").centre_slice) == (75, 51)
    assert count.find("T12").rib_bearing and not count.find("L1").rib_bearing

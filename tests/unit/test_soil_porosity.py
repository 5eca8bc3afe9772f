"""Porosity of the sample, not of the field of view: a core in air is outlined and the air left out;
a sample that fills the view says so; profiles along z, y, x; the REV curve and where it settles;
the uncertainty's numbers are the histogram's at the thresholds it names."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ctviewer.data.volume import Volume
from ctviewer.workflows.soil import porosity
from ctviewer.workflows.soil.phases import histogram
from ctviewer.workflows.soil.porosity import FILLS_NOTE, measure, profiles, rev_curve, sample_outline

AIR, SOLID = 9000, 30000


def core_in_air(shape=(40, 80, 80), radius=33, solid_fraction=0.7, seed=1):
    """A cylindrical core (axis along z) of grains and pores, in air: the truth inside the core is known."""
    rng = np.random.default_rng(seed)
    _, y, x = np.indices(shape)
    core = (y - shape[1] // 2) ** 2 + (x - shape[2] // 2) ** 2 <= radius ** 2
    field = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    solid = core & (field > np.quantile(field, 1 - solid_fraction))
    grey = np.where(solid, SOLID, AIR) + rng.normal(0, 1200, shape)
    return np.clip(np.rint(grey), 0, 65535).astype(np.uint16), core, solid


def test_the_air_around_a_core_is_not_counted_as_pore():
    values, core, solid = core_in_air()
    truth = 1 - solid[core].mean()
    found, pores = measure(Volume(values))
    assert found.sample.mask is not None and "outline detected" in found.sample.note
    inside = found.sample.mask
    assert not np.any(inside & ~core)                     # the outline is inside the core ...
    rim = core & ~ndi.binary_erosion(core, np.ones((1, 3, 3)), iterations=porosity.OUTLINE_MARGIN + 1)
    assert np.all(inside[core & ~rim])                    # ... and leaves out only its surface voxels
    assert found.porosity == pytest.approx(truth, abs=0.01)
    assert not pores[~inside].any()                                     # no pore outside the sample
    whole, _ = measure(Volume(values), sample="none")                   # counting the air: far too porous
    assert whole.porosity > truth + 0.2 and whole.sample.mask is None


def test_a_sample_that_fills_the_field_of_view_is_used_whole_and_says_so():
    rng = np.random.default_rng(2)
    field = ndi.gaussian_filter(rng.standard_normal((32, 48, 48)), 1.5)
    values = np.where(field > 0, SOLID, AIR).astype(np.uint16) + rng.integers(0, 900, field.shape).astype(np.uint16)
    found, pores = measure(values)
    assert found.sample.mask is None and found.sample.note == FILLS_NOTE
    assert FILLS_NOTE in found.notes
    assert found.porosity == pytest.approx(np.mean(field <= 0), abs=0.002)
    assert pores.sum() == found.pore_voxels


def test_a_core_shorter_than_the_scan_leaves_the_empty_slices_out():
    values, core, solid = core_in_air(shape=(48, 64, 64), radius=26)
    values[:16] = AIR                                  # air above the top of the core
    outline = sample_outline(values, (AIR + SOLID) / 2)
    top = 16 + porosity.OUTLINE_MARGIN                  # the top face's voxels are part air too
    assert not outline.mask[:top].any() and outline.mask[top:].any()
    found, _ = measure(values)
    assert np.all(np.isnan(found.profiles["z"][:top])) and np.all(np.isfinite(found.profiles["z"][top:]))
    assert found.to_dict()["profiles"]["z"][0] is None          # JSON null, not NaN


def test_profiles_follow_the_pores_along_each_axis():
    pores = np.zeros((10, 20, 30), bool)
    pores[:5] = True                       # the top half is all pore
    pores[:, :, :3] = True                 # and a wall of pores at the first three columns
    p = profiles(pores)
    assert p["z"][:5] == pytest.approx(1.0) and p["z"][5:] == pytest.approx(3 / 30)
    assert p["x"][:3] == pytest.approx(1.0) and p["x"][3:] == pytest.approx(0.5)
    assert p["y"] == pytest.approx(np.full(20, pores.mean()))
    sample = np.zeros_like(pores)
    sample[:, :, 3:] = True                # the same, counted only where the sample is
    q = profiles(pores & sample, sample)
    assert np.all(np.isnan(q["x"][:3])) and q["z"][5:] == pytest.approx(0.0)


def test_the_rev_settles_on_a_fine_homogeneous_medium_and_not_on_a_graded_one():
    rng = np.random.default_rng(3)
    fine = ndi.gaussian_filter(rng.standard_normal((64, 64, 64)), 1.0) > 0      # half pore, grains ~3 voxels
    rev = rev_curve(fine, spacing=(0.05, 0.05, 0.05))
    assert rev.sides_mm[-1] == pytest.approx(64 * 0.05) and len(rev.sides_mm) == len(rev.porosity)
    assert rev.rev_mm is not None and rev.rev_mm < rev.sides_mm[-1]
    later = rev.porosity[rev.sides_mm >= rev.rev_mm]
    assert np.all(np.abs(later - rev.whole) <= rev.tolerance * rev.whole)      # stays within from then on
    earlier = rev.porosity[rev.sides_mm < rev.rev_mm]
    assert earlier.size == 0 or abs(earlier[-1] - rev.whole) > rev.tolerance * rev.whole
    # a loose top layer over a dense core, taller than wide: the centred cubes see only the dense
    # middle and never reach the whole's porosity
    layered = rng.random((128, 32, 32)) < np.where(np.arange(128) < 32, 0.4, 0.1)[:, None, None]
    rev = rev_curve(layered)
    assert rev.rev_mm is None and "smaller than its REV" in rev.note


def test_the_uncertainty_names_its_thresholds_and_their_porosities():
    values, core, _ = core_in_air(seed=4)
    found, _ = measure(values, sample="none")
    u, hist = found.uncertainty, found.histogram
    assert u["grey_step"] == pytest.approx((values.max() - values.min()) / 256)
    for side in ("minus_step", "plus_step"):
        assert u[side]["porosity"] == np.mean(values <= u[side]["threshold"])
    assert u["methods"]["valley"]["threshold"] == found.threshold.value      # the default
    assert u["methods"]["otsu"]["porosity"] == np.mean(values <= u["methods"]["otsu"]["threshold"])
    assert u["range"][0] <= found.porosity <= u["range"][1]
    assert hist.total == values.size


def test_a_dense_core_in_air_takes_its_threshold_from_the_air_around_it():
    values, core, solid = core_in_air(solid_fraction=0.995, seed=5)
    assert not porosity.phases.histogram_peaks(histogram(values, mask=core)).bimodal   # no pore peak inside
    found, _ = measure(values)
    whole = histogram(values)
    assert found.threshold == porosity.phases.choose_threshold(whole, "valley")
    assert any("the air around the sample is the pore phase's own peak" in note for note in found.notes)
    assert found.porosity == pytest.approx(1 - solid[core].mean(), abs=0.005)
    assert found.histogram.total == np.count_nonzero(found.sample.mask)


def test_denoising_is_recorded_with_the_result():
    values, _, _ = core_in_air(seed=6)
    found, _ = measure(values, denoise="median", sample="none")
    data = found.to_dict()
    assert data["phases"]["denoise"]["method"] == "median"
    assert data["phases"]["denoise"]["noise_sigma_after"] < data["phases"]["denoise"]["noise_sigma_before"]
    assert data["phases"]["method"] == "valley" and data["phases"]["threshold"] == found.threshold.value

"""Pore/solid phases from a volume's histogram: the histogram counted once and looked up at any
threshold, the thresholds by name (Otsu, multi-Otsu, valley, the seed's equal bins, a user value),
what is refused (one peak, NaN) and denoising that keeps the volume's dtype."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.workflows.soil import phases
from ctviewer.workflows.soil.objects import density_objects, object_counts
from ctviewer.workflows.soil.phases import UNIMODAL, choose_threshold, denoise, histogram, noise_sigma


def bimodal(shape=(48, 48, 48), porosity=0.3, seed=0, blur=0.7, noise=1500.0, dtype=np.uint16):
    """A two-phase medium (smooth random pores) scanned with blur and noise: its true porosity is known."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal(shape), 2.0)
    pores = field <= np.quantile(field, porosity)
    grey = ndi.gaussian_filter(np.where(pores, 12000.0, 36000.0), blur) + rng.normal(0, noise, shape)
    if np.dtype(dtype).kind == "f":
        return grey.astype(dtype), pores
    info = np.iinfo(dtype)
    return np.clip(np.rint(grey), info.min, info.max).astype(dtype), pores


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16])
def test_the_cumulated_lookup_equals_a_recount_at_every_threshold(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -3000), min(info.max, 3000)
    values = rng.integers(lo, hi, (20, 30, 30), endpoint=True).astype(dtype)
    hist = histogram(values)
    assert hist.exact and hist.total == values.size
    for t in np.linspace(lo - 5, hi + 5, 97):
        assert hist.pore_voxels_at(t) == np.count_nonzero(values <= t), t
    # an array of thresholds at once (a GUI's porosity curve)
    ts = np.array([lo, 0, hi])
    assert list(hist.porosity_at(ts)) == [np.mean(values <= t) for t in ts]


def test_a_float_volume_is_counted_in_bins_and_looked_up_exactly_at_their_edges():
    rng = np.random.default_rng(2)
    values = rng.normal(0.4, 0.2, (16, 40, 40)).astype(np.float32)
    hist = histogram(values)
    assert not hist.exact and hist.counts.size == phases.FLOAT_BINS and hist.total == values.size
    for edge in hist.edges[1::97]:   # bin tops; the lowest bin also holds its lower edge (the minimum)
        assert hist.pore_voxels_at(edge) == np.count_nonzero(values <= edge)
    t = 0.4123
    assert hist.snap(t) <= t and hist.porosity_at(t) == np.mean(values <= hist.snap(t))


def test_a_sample_mask_counts_only_the_sample_on_the_whole_volumes_bins():
    values, _ = bimodal(seed=4)
    mask = np.zeros(values.shape, bool)
    mask[:, 10:40, 5:30] = True
    whole, inside = histogram(values), histogram(values, mask=mask)
    assert inside.total == mask.sum() and inside.lo == whole.lo and inside.hi == whole.hi
    assert inside.pore_voxels_at(20000) == np.count_nonzero(values[mask] <= 20000)


def test_otsu_uses_our_histogram_and_finds_what_scikit_image_finds_on_the_voxels():
    from skimage.filters import threshold_otsu

    for dtype in (np.uint8, np.uint16):
        values, _ = bimodal(dtype=np.uint16, seed=5)
        values = (values // 257).astype(np.uint8) if dtype == np.uint8 else values
        t = choose_threshold(histogram(values), "otsu")
        assert t.method == "otsu" and t.value == threshold_otsu(values)


@pytest.mark.parametrize("porosity", [0.1, 0.3, 0.45])
@pytest.mark.parametrize("seed", [0, 1])
def test_otsu_and_the_valley_recover_a_known_porosity(porosity, seed):
    from ctviewer.workflows.soil.porosity import uncertainty

    values, pores = bimodal(porosity=porosity, seed=seed)
    hist = histogram(values)
    found = {m: hist.porosity_at(choose_threshold(hist, m).value) for m in ("otsu", "valley", "multiotsu")}
    assert abs(found["otsu"] - porosity) < 0.005 and abs(found["valley"] - porosity) < 0.01
    low, high = uncertainty(hist, choose_threshold(hist, "otsu").value)["range"]
    # the range is the threshold's sensitivity, not a guarantee: blurred curved pore walls move every
    # histogram threshold alike, here by under a tenth of a percentage point
    assert low - 0.001 <= pores.mean() <= high + 0.001
    assert found["multiotsu"] < found["otsu"]   # three classes: the pores end earlier


def test_equal_bins_is_the_seeds_object_1_exactly():
    for values in (bimodal(dtype=np.uint16, seed=6)[0], bimodal(dtype=np.int16, seed=7)[0] - 9000,
                   np.random.default_rng(8).integers(0, 4096, (10, 12, 12)).astype(np.int16)):
        volume = Volume(values)
        object_1 = object_counts(density_objects(volume))[0]
        hist = histogram(volume)
        t = choose_threshold(hist, "equal-bins")
        assert t.method == "equal-bins"
        assert hist.pore_voxels_at(t.value) == object_1["voxels"]
        assert choose_threshold(hist, "equal") == t   # the name `soil objects --method` uses


def test_a_user_threshold_is_taken_as_given():
    values, _ = bimodal(seed=9)
    hist = histogram(values)
    t = choose_threshold(hist, "threshold:20000.7")
    assert t.method == "threshold" and t.value == 20000
    assert hist.porosity_at(t.value) == np.mean(values <= 20000.7)
    assert "no pores" in choose_threshold(hist, "threshold:-5").note
    for bad in ("threshold:", "threshold:abc", "threshold:nan", "kmeans"):
        with pytest.raises(InputError):
            choose_threshold(hist, bad)


def test_a_histogram_with_one_peak_is_refused_by_every_histogram_method():
    rng = np.random.default_rng(10)
    values = rng.normal(20000, 2000, (30, 30, 30)).astype(np.uint16)
    hist = histogram(values)
    assert not phases.histogram_peaks(hist).bimodal
    for method in ("otsu", "multiotsu", "valley"):
        with pytest.raises(InputError) as err:
            choose_threshold(hist, method)
        assert str(err.value) == UNIMODAL
    assert choose_threshold(hist, "threshold:20000").value == 20000       # the user's way out
    assert choose_threshold(hist, "equal-bins").method == "equal-bins"     # no histogram shape needed


def test_two_peaks_that_barely_dip_are_one_peak():
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.normal(20000, 2000, 40000), rng.normal(24500, 2000, 40000)])
    hist = histogram(values.astype(np.uint16).reshape(20, 40, 100))
    with pytest.raises(InputError, match="one peak"):
        choose_threshold(hist, "valley")
    apart = np.concatenate([rng.normal(20000, 2000, 40000), rng.normal(32000, 2000, 40000)])
    assert phases.histogram_peaks(histogram(apart.astype(np.uint16).reshape(20, 40, 100))).bimodal


def test_nan_and_infinite_voxels_are_refused_with_their_count():
    values = np.random.default_rng(12).random((5, 10, 10)).astype(np.float32)
    values[0, 0, :7] = np.nan
    values[4, 9, 9] = np.inf
    with pytest.raises(InputError, match=r"^8 of 500 voxels are NaN or infinite"):
        histogram(values)


def test_a_flat_volume_has_nothing_to_separate():
    hist = histogram(np.full((3, 4, 5), 7, np.uint16))
    with pytest.raises(InputError, match="all voxels have the value 7"):
        choose_threshold(hist, "otsu")


@pytest.mark.parametrize("method", ["median", "nlm"])
def test_denoising_keeps_the_dtype_and_takes_noise_off(method):
    values, _ = bimodal(shape=(24, 48, 48), noise=3000.0, blur=1.5, seed=13)
    done = denoise(Volume(values), method)
    assert done.array.dtype == values.dtype and done.array.shape == values.shape
    assert done.sigma_after < 0.7 * done.sigma_before
    assert done.sigma_before == pytest.approx(noise_sigma(values))
    assert done.to_dict()["method"] == method and "less" in done.note and done.to_dict()["note"] == done.note


def test_non_local_means_by_slabs_equals_one_call_on_the_whole(monkeypatch):
    values, _ = bimodal(shape=(20, 24, 24), noise=3000.0, seed=14)
    whole = denoise(values, "nlm").array
    monkeypatch.setattr(phases, "NLM_SLAB_VOXELS", 24 * 24 * 3)   # seven slabs, each with its halo
    assert np.array_equal(denoise(values, "nlm").array, whole)


def test_noise_sigma_measures_added_noise():
    rng = np.random.default_rng(15)
    flat = np.full((8, 64, 64), 1000.0) + rng.normal(0, 25, (8, 64, 64))
    assert noise_sigma(flat) == pytest.approx(25, rel=0.1)


def test_a_float_threshold_at_the_smallest_value_counts_its_voxels_as_the_pore_mask_does():
    from ctviewer.workflows.soil.porosity import pore_mask

    rng = np.random.default_rng(16)
    values = rng.uniform(0.5, 3.0, (10, 20, 20)).astype(np.float32)
    values.ravel()[rng.permutation(values.size)[:1200]] = 0.0      # 30 % at the minimum
    hist = histogram(values)
    t = choose_threshold(hist, "threshold:0")
    assert t.value == 0.0
    assert hist.pore_voxels_at(t.value) == 1200 == np.count_nonzero(pore_mask(values, t.value))
    # anywhere below the first bin's top the snapped threshold is the minimum, with the same count
    assert hist.snap(hist.upper[0] / 2) == 0.0 and hist.pore_voxels_at(hist.upper[0] / 2) == 1200
    below = choose_threshold(hist, "threshold:-1")
    assert hist.pore_voxels_at(below.value) == 0 == np.count_nonzero(pore_mask(values, below.value))


def test_a_float32_voxel_at_a_bin_edge_counts_the_same_in_the_lookup_and_the_mask():
    from ctviewer.workflows.soil.porosity import pore_mask

    rng = np.random.default_rng(17)
    values = rng.uniform(0.0, 1.0, (6, 20, 20)).astype(np.float32)
    values[0, 0, 0], values[-1, -1, -1] = 0.0, 1.0
    hist = histogram(values)
    edge = float(hist.edges[1000])     # thresholds travel as Python floats (Threshold.value, JSON)
    near = np.float32(edge)
    assert float(near) > edge          # float32 rounds this edge up: above it in float64
    values[2, :5, :] = near
    hist = histogram(values)
    assert hist.pore_voxels_at(edge) == np.count_nonzero(pore_mask(values, edge))


def test_a_wide_integer_volume_far_from_zero_is_counted_without_a_count_per_level_below_it():
    rng = np.random.default_rng(18)
    values = (3_000_000_000 + rng.integers(0, 5000, (8, 20, 20))).astype(np.uint32)
    hist = histogram(values)
    assert hist.exact and hist.counts.size == int(values.max() - values.min()) + 1
    t = 3_000_002_000
    assert hist.pore_voxels_at(t) == np.count_nonzero(values <= t)


def test_the_median_filter_by_slabs_equals_one_filter_over_the_whole_volume(monkeypatch):
    from scipy.ndimage import median_filter

    values, _ = bimodal(shape=(20, 24, 24), noise=3000.0, seed=19)
    monkeypatch.setattr(phases, "MEDIAN_SLAB_VOXELS", 24 * 24 * 3)   # seven slabs, each with its halo
    seen = []
    done = denoise(values, "median", progress=lambda f, m="": seen.append(m))
    assert np.array_equal(done.array, median_filter(values, size=3, mode="nearest"))
    assert seen.count("Median filter") == 7


def test_the_median_filter_is_cancelled_between_slabs(monkeypatch):
    from ctviewer.errors import Cancelled
    from ctviewer.progress import CancelToken

    values, _ = bimodal(shape=(20, 24, 24), seed=20)
    monkeypatch.setattr(phases, "MEDIAN_SLAB_VOXELS", 24 * 24 * 3)
    token, slabs = CancelToken(), []

    def progress(f, message=""):
        if message == "Median filter":
            slabs.append(f)
            if len(slabs) == 2:
                token.cancel()

    with pytest.raises(Cancelled):
        denoise(values, "median", progress=progress, cancel=token)
    assert len(slabs) == 2

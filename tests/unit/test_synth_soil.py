"""The synthetic soil cube (ctviewer.synth.soil) and the cached demo soil study built from it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken
from ctviewer.synth.soil import (BIOPORES, MATRIX, POROSITY_RANGE, PORES, ROOT_CHANNELS, ROOTS, SOIL_LABELS,
                                 STONES, SoilParams, make_soil_cube)

SMALL = dict(shape=(48, 40, 40), voxel_mm=0.4)     # a 19 x 16 x 16 mm core in a few hundredths of a second


@pytest.fixture(scope="module")
def fine_cube():
    """At the default 0.1 mm voxels, where pores are several voxels wide (as in micro-CT)."""
    return make_soil_cube(SoilParams(shape=(96, 96, 96), seed=3, roots=8, stones=8, live_roots=0.5))


def test_cube_is_int16_on_the_seeds_scale_with_its_truth(fine_cube):
    img, truth = fine_cube.image, fine_cube.truth
    assert img.array.dtype == np.int16 and img.shape == (96, 96, 96)
    assert img.spacing == (0.1, 0.1, 0.1) and img.modality == "CT"
    assert 0 <= img.array.min() and img.array.max() <= 4096
    assert truth.array.dtype == np.uint8 and truth.volume.same_grid(img)
    assert [lab.name for lab in truth.table] == [name for name, _ in SOIL_LABELS.values()]
    assert set(np.unique(truth.array)) <= set(SOIL_LABELS)
    assert fine_cube.params.porosity is not None and fine_cube.params.biopores >= 1


def test_grey_values_follow_the_truth(fine_cube):
    img, lab = fine_cube.image.array, fine_cube.truth.array
    median = {i: float(np.median(img[lab == i])) for i in SOIL_LABELS if np.any(lab == i)}
    assert median[PORES] < 400 and median[BIOPORES] < 150           # air, 0 on the seed's scale
    assert 1800 <= median[MATRIX] <= 2400
    assert median[STONES] > 2800
    assert 600 <= median[ROOTS] <= 1200                                 # root tissue: below the matrix
    assert median[PORES] < median[ROOTS] < median[MATRIX] < median[STONES]
    # the heart of a wide channel is air whatever the blur: it is not just a label
    core = ndi.binary_erosion(lab == BIOPORES, iterations=3)
    assert np.percentile(img[core], 99) < 300


def test_same_seed_same_cube_other_seed_other_cube():
    a, b = make_soil_cube(SoilParams(seed=7, **SMALL)), make_soil_cube(SoilParams(seed=7, **SMALL))
    assert np.array_equal(a.image.array, b.image.array) and np.array_equal(a.truth.array, b.truth.array)
    c = make_soil_cube(SoilParams(seed=8, **SMALL))
    assert not np.array_equal(a.truth.array, c.truth.array)
    assert a.params.porosity != c.params.porosity


def test_porosity_varies_between_seeds_within_the_range():
    porosities = [make_soil_cube(SoilParams(seed=s, **SMALL)).stats["porosity"] for s in range(6)]
    lo, hi = POROSITY_RANGE
    assert all(lo - 0.01 <= p <= hi + 0.01 for p in porosities), porosities
    assert max(porosities) - min(porosities) > 0.02     # a real spread to learn from


def test_given_porosity_is_met_and_changes_only_the_pores():
    drawn = make_soil_cube(SoilParams(seed=4, **SMALL))
    fixed = make_soil_cube(SoilParams(seed=4, porosity=0.2, **SMALL))
    assert fixed.stats["porosity"] == pytest.approx(0.2, abs=0.01)
    for label in (BIOPORES, STONES, ROOTS, ROOT_CHANNELS):
        assert np.array_equal(drawn.truth.array == label, fixed.truth.array == label)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_earthworm_channel_runs_from_top_to_bottom(seed):
    lab = make_soil_cube(SoilParams(seed=seed, stones=30, **SMALL)).truth.array
    clusters, _ = ndi.label(lab == BIOPORES)
    top, bottom = set(np.unique(clusters[0])) - {0}, set(np.unique(clusters[-1])) - {0}
    assert top & bottom


def test_counts_can_be_set_and_a_plain_cube_has_only_matrix_and_pores():
    cube = make_soil_cube(SoilParams(seed=1, biopores=0, roots=0, stones=0, porosity=0.1, **SMALL))
    assert set(np.unique(cube.truth.array)) == {PORES, MATRIX}
    assert cube.params.biopores == 0 and cube.stats["stones"] == 0


@pytest.mark.parametrize("bad", [dict(shape=(4, 40, 40)), dict(voxel_mm=0), dict(porosity=0.9),
                                 dict(stones=-1)])
def test_impossible_parameters_are_refused(bad):
    with pytest.raises(InputError):
        make_soil_cube(SoilParams(**{**SMALL, **bad}))


def test_progress_reaches_the_end_and_cancel_stops():
    seen = []
    make_soil_cube(SoilParams(**SMALL), progress=lambda f, m="": seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        make_soil_cube(SoilParams(**SMALL), cancel=token)


# -- the demo soil study ------------------------------------------------------------------------------

@pytest.fixture
def small_demo(monkeypatch):
    from ctviewer.synth import demo, soil

    calls = []
    monkeypatch.setattr(demo, "soil_demo_params", lambda: SoilParams(seed=0, name="demo soil", **SMALL))
    real = soil.make_soil_cube
    monkeypatch.setattr(soil, "make_soil_cube", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_demo_soil_cube_is_generated_once_and_cached(tmp_path, small_demo):
    from ctviewer.synth import demo

    image, labels = demo.demo_soil_paths(tmp_path)
    assert image.suffix == ".npy" and image.with_suffix(".json").is_file() and labels.is_file()
    assert image.parent.name == f"demo-soil-v{demo.SOIL_GENERATOR_VERSION}" and len(small_demo) == 1
    mtime = image.stat().st_mtime_ns
    assert demo.demo_soil_paths(tmp_path) == (image, labels)
    assert len(small_demo) == 1 and image.stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folder left behind"


def test_demo_soil_study_opens_as_generated_with_its_truth(tmp_path, small_demo):
    from ctviewer.synth.demo import soil_demo_params
    from ctviewer.synth.soil import SOIL_WINDOW
    from ctviewer.workflows.open import open_demo_soil

    study = open_demo_soil(cache_dir=tmp_path)
    cube = make_soil_cube(soil_demo_params())
    assert np.array_equal(study.image.array, cube.image.array)          # slice 0 stays the top
    assert study.image.spacing == (0.4, 0.4, 0.4) and study.image.window == SOIL_WINDOW
    (layer,) = study.layers.by_kind("labels")
    assert np.array_equal(layer.array, cube.truth.array)
    assert not layer.labels.table[MATRIX].visible and layer.labels.table[BIOPORES].visible
    assert layer.labels.table.name(STONES) == "stones"


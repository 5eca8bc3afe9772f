"""Density objects of a soil cube: the seed's six equal-width bins (the maximum included), multi-Otsu,
names and colours users know them by, and the refusal of a cube with nothing to split."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.workflows.soil.objects import (OBJECT_NAMES, density_objects, object_counts,
                                             seed_fraction_target)


def _cube(array, spacing=(0.1, 0.1, 0.1)):
    return Volume(np.asarray(array), spacing=spacing, name="cube")


def test_six_equal_bins_put_the_maximum_in_the_densest_object():
    values = np.arange(0, 6001, dtype=np.int16).reshape(1, 1, -1)  # 0..6000: edges every 1000
    objects = density_objects(_cube(values))
    ids = objects.array[0, 0]
    assert objects.array.dtype == np.uint8 and objects.volume.spacing == (0.1, 0.1, 0.1)
    assert ids[0] == 1 and ids[999] == 1 and ids[1000] == 2      # an edge value goes up
    assert ids[5999] == 6 and ids[6000] == 6                     # the seed lost the maximum
    assert np.bincount(ids, minlength=7)[1:].sum() == values.size  # every voxel has an object


def test_objects_are_named_and_coloured_pores_first_stones_last():
    objects = density_objects(_cube(np.arange(60, dtype=np.int16).reshape(3, 4, 5)))
    table = objects.table
    assert table.ids == [1, 2, 3, 4, 5, 6]
    assert table.name(1) == "pores" and table.name(6) == "stones" == OBJECT_NAMES[6]
    assert len({lab.colour for lab in table}) == 6


def test_counts_per_object_add_up_to_the_cube():
    objects = density_objects(_cube(np.repeat(np.arange(6, dtype=np.int16), 10).reshape(2, 5, 6)))
    rows = object_counts(objects)
    assert [r["voxels"] for r in rows] == [10] * 6
    assert sum(r["fraction"] for r in rows) == pytest.approx(1.0)


def test_an_all_one_value_cube_is_refused_naming_the_value():
    with pytest.raises(InputError, match="all voxels have the value 7: the six bins are degenerate"):
        density_objects(_cube(np.full((4, 4, 4), 7, dtype=np.int16)))


def test_multi_otsu_finds_three_density_levels():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (8, 16, 16))
    values = (np.array([100, 1500, 3500])[truth] + rng.normal(0, 60, truth.shape)).astype(np.int16)
    objects = density_objects(_cube(values), n=3, method="otsu")
    assert np.array_equal(objects.array, truth + 1)
    assert objects.table.name(1) == "pores" and objects.table.name(3) == "densest (stones)"


def test_bad_choices_are_refused_in_one_line():
    cube = _cube(np.arange(64, dtype=np.int16).reshape(4, 4, 4))
    with pytest.raises(InputError, match="from 2 to 5"):
        density_objects(cube, n=6, method="otsu")
    with pytest.raises(InputError, match="unknown object method"):
        density_objects(cube, method="kmeans")


def test_seed_target_object_5_means_5_and_6_together():
    ids = np.array([[1, 1, 2, 5], [6, 6, 3, 4]])
    assert seed_fraction_target(ids, 1) == pytest.approx(2 / 8)
    assert seed_fraction_target(ids, 5) == pytest.approx(3 / 8)
    with pytest.raises(InputError):
        seed_fraction_target(ids, 6)

"""Pore statistics on small hand-made shapes whose answers are known: porosity and its depth
profile, clusters under 6- and 26-connectivity, Euler numbers, percolation, local thickness."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken
from ctviewer.workflows.soil.pores import euler_number, local_thickness, pore_stats


def _ball(shape, centre, radius):
    z, y, x = np.indices(shape)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius ** 2


def test_porosity_overall_and_by_slice_with_volumes_in_mm3():
    labels = np.full((4, 10, 10), 4, dtype=np.uint8)
    labels[1, :5, :] = 1          # half of slice 1
    labels[3] = 1                 # all of slice 3
    stats = pore_stats(labels, spacing=(0.5, 0.1, 0.1))
    assert stats.porosity == pytest.approx(150 / 400)
    assert stats.porosity_by_slice == pytest.approx([0, 0.5, 0, 1.0])
    assert stats.clusters == 2
    assert stats.cluster_volumes_mm3 == pytest.approx([100 * 0.005, 50 * 0.005])  # largest first
    assert stats.largest_cluster_fraction == pytest.approx(100 / 150)


def test_cubes_touching_at_a_corner_are_two_clusters_in_6_and_one_in_26():
    mask = np.zeros((8, 8, 8), dtype=bool)
    mask[0:2, 0:2, 0:2] = True        # 8 voxels
    mask[2:5, 2:5, 2:5] = True        # 27 voxels, touching the first only at a corner
    six = pore_stats(mask, spacing=(1, 1, 1), connectivity=6)
    assert six.clusters == 2 and list(six.cluster_volumes_mm3) == [27, 8]
    twenty_six = pore_stats(mask, spacing=(1, 1, 1), connectivity=26)
    assert twenty_six.clusters == 1 and list(twenty_six.cluster_volumes_mm3) == [35]
    assert twenty_six.largest_cluster_fraction == 1.0


def test_euler_numbers_of_a_ball_a_hollow_ball_and_a_torus():
    ball = _ball((15, 15, 15), (7, 7, 7), 5)
    hollow = ball & ~_ball((15, 15, 15), (7, 7, 7), 3)
    z, y, x = np.indices((9, 25, 25))
    torus = (np.hypot(y - 12, x - 12) - 8) ** 2 + (z - 4) ** 2 <= 3 ** 2
    for connectivity in (6, 26):
        assert euler_number(ball, connectivity) == 1
        assert euler_number(hollow, connectivity) == 2      # one piece, one cavity
        assert euler_number(torus, connectivity) == 0       # one piece, one tunnel


def test_euler_number_summed_over_slabs_equals_one_whole_call():
    from skimage.measure import euler_number as whole

    rng = np.random.default_rng(3)
    mask = ndi.gaussian_filter(rng.random((40, 20, 20)), 1.2) > 0.5   # 40 slices: three slabs
    assert euler_number(mask, 6) == whole(mask, connectivity=1)
    assert euler_number(mask, 26) == whole(mask, connectivity=3)


def test_a_tube_from_top_to_bottom_percolates_a_stopped_one_does_not():
    mask = np.zeros((20, 9, 9), dtype=bool)
    mask[:, 3:6, 3:6] = True
    through = pore_stats(mask, spacing=(1, 1, 1))
    assert through.percolates and through.percolating_clusters == 1 and through.euler_number == 1
    mask[10] = False
    stopped = pore_stats(mask, spacing=(1, 1, 1))
    assert not stopped.percolates and stopped.clusters == 2


def test_thickness_of_a_ball_a_cylinder_and_a_slab():
    radius = 6   # digitised as |x| < r + 1/2: a ball of radius r in the voxel-cube picture
    ball = _ball((17, 17, 17), (8, 8, 8), radius + 0.5)
    t = local_thickness(ball)
    assert np.all(np.abs(t[ball] - 2 * radius) <= 1.0) and np.all(t[~ball] == 0)
    z, y, x = np.indices((6, 21, 21))
    cylinder = np.hypot(y - 10, x - 10) < 4.5          # diameter 8 voxels, along axis 0 through the cube
    t = local_thickness(cylinder, spacing=(0.2, 0.2, 0.2))
    assert np.all(np.abs(t[cylinder] - 8 * 0.2) <= 0.2)  # within a voxel, also at the cube's faces
    slab = np.zeros((20, 12, 12), dtype=bool)
    slab[5:12] = True                                   # 7 voxels of 0.5 mm: 3.5 mm everywhere
    assert np.all(local_thickness(slab, spacing=(0.5, 1, 1))[slab] == pytest.approx(3.5))
    slab[12] = True                                     # an even thickness comes out one voxel short
    assert np.all(np.abs(local_thickness(slab, spacing=(0.5, 1, 1))[slab] - 4.0) <= 0.5)


def test_thickness_is_the_largest_covering_ball_everywhere():
    """Against a brute-force Hildebrand-Rüegsegger: every voxel's largest covering ball."""
    rng = np.random.default_rng(1)
    mask = ndi.gaussian_filter(rng.random((12, 14, 13)), 1.5) > 0.5
    spacing = (0.3, 0.2, 0.2)
    dist = ndi.distance_transform_edt(mask, sampling=spacing)
    zz, yy, xx = np.indices(mask.shape)
    expected = np.zeros(mask.shape)
    for c in zip(*np.nonzero(mask)):
        d2 = ((zz - c[0]) * spacing[0]) ** 2 + ((yy - c[1]) * spacing[1]) ** 2 + ((xx - c[2]) * spacing[2]) ** 2
        inside = d2 < dist[c] ** 2 * (1 - 1e-9)
        expected[inside] = np.maximum(expected[inside], max(2 * dist[c] - min(spacing), min(spacing)))
    assert local_thickness(mask, spacing) == pytest.approx(expected, abs=1e-5)


def test_pore_size_histogram_counts_every_pore_voxel_at_its_thickness():
    slab = np.zeros((20, 10, 10), dtype=np.uint8)
    slab[2:7] = 1      # 5 voxels thick
    slab[10] = 1       # 1 voxel thick
    stats = pore_stats(slab, spacing=(0.1, 0.1, 0.1))
    edges, counts = stats.thickness_mm
    assert counts.sum() == stats.pore_voxels == 600
    assert counts[np.searchsorted(edges, 0.5) - 1] == 500 and counts[np.searchsorted(edges, 0.1) - 1] == 100
    assert stats.mean_thickness_mm == pytest.approx((500 * 0.5 + 100 * 0.1) / 600)
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["porosity"] == pytest.approx(0.3) and data["thickness_mm"]["counts"] == list(counts)


def test_any_label_can_be_measured_and_a_missing_one_is_refused():
    labels = np.ones((6, 6, 6), dtype=np.uint8)
    labels[:, :, :2] = 3
    assert pore_stats(labels, spacing=(1, 1, 1), label=3).porosity == pytest.approx(1 / 3)
    with pytest.raises(InputError, match="label 5 does not occur"):
        pore_stats(labels, spacing=(1, 1, 1), label=5)
    with pytest.raises(InputError, match="connectivity"):
        pore_stats(labels, spacing=(1, 1, 1), connectivity=8)


def test_cancel_stops_the_analysis():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        pore_stats(np.ones((4, 4, 4), dtype=np.uint8), spacing=(1, 1, 1), cancel=token)


def test_no_pores_and_all_pores_give_plain_answers():
    none = pore_stats(np.zeros((5, 6, 7), dtype=bool), spacing=(1, 1, 1))
    assert (none.porosity, none.clusters, none.percolates, none.euler_number) == (0.0, 0, False, 0)
    assert none.mean_thickness_mm == 0.0 and none.thickness_counts.sum() == 0
    full = pore_stats(np.ones((5, 7, 9), dtype=bool), spacing=(1, 1, 1))
    assert full.porosity == 1.0 and full.percolates and full.euler_number == 1
    assert full.max_thickness_mm == 5.0     # no wall anywhere: the cube's faces bound the balls

"""Whole-scan inference: slice and sliding-window predictors, patch stitching, padding, cancel.

The "network" is a per-voxel threshold of its input: stitched correctly, with the padding
removed, the result must equal the threshold of the whole image exactly, anywhere.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken
from ctviewer.workflows.segmentation.inference import (
    drop_islands,
    fill_holes,
    grow_into,
    largest_component,
    predict_sliding_window,
    predict_slices,
)


def threshold_net(*levels, calls=None):
    """A predict_fn giving one channel per level: input > level, as float probabilities."""
    def predict(batch):
        if calls is not None:
            calls.append(batch.shape)
        return np.concatenate([(batch > lv).astype(np.float32) for lv in levels], axis=-1)
    return predict


@pytest.fixture
def image():
    # Odd sizes, none a multiple of 16, and no symmetry: a flip or a shift shows.
    return np.random.default_rng(5).random((21, 37, 50)).astype(np.float32)


def test_slices_equal_the_threshold_of_the_whole_image(image):
    calls = []
    out = predict_slices(image, threshold_net(0.3, 0.7, calls=calls), multiple=16, batch_size=8)
    assert out.shape == (21, 37, 50, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], image > 0.3)
    np.testing.assert_array_equal(out[..., 1], image > 0.7)
    # batches of 8, 8 and the 5 left; each slice padded to 48 x 64
    assert calls == [(8, 48, 64, 1), (8, 48, 64, 1), (5, 48, 64, 1)]


def test_slices_report_progress_up_to_one_and_stop_when_cancelled(image):
    seen = []
    predict_slices(image, threshold_net(0.5), batch_size=4, progress=lambda f, m="": seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 6

    token, calls = CancelToken(), []

    def cancelling(batch):
        calls.append(batch.shape)
        token.cancel()  # the user presses Cancel while the first batch runs
        return batch

    with pytest.raises(Cancelled):
        predict_slices(image, cancelling, batch_size=4, cancel=token)
    assert len(calls) == 1


def test_sliding_window_equals_the_threshold_of_the_whole_image(image):
    calls = []
    out = predict_sliding_window(image, threshold_net(0.4, calls=calls), patch=(16, 32, 32),
                                 overlap=0.5, batch_size=3)
    assert out.shape == (21, 37, 50, 1) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], image > 0.4)
    assert all(s[1:] == (16, 32, 32, 1) and 1 <= s[0] <= 3 for s in calls)
    # half-overlapping: z 2 patches (21 = 16 + 5), y 2 (37 = 32 + 5), x 3 (50 = 32 + 18) -> 12
    # patches, in 4 batches of 3
    assert [s[0] for s in calls] == [3, 3, 3, 3]


def test_volume_smaller_than_a_patch_is_padded_not_a_crash():
    small = np.random.default_rng(1).random((3, 20, 9)).astype(np.float32)
    calls = []
    # patch 20 is rounded up to the network's multiple (32); every side is shorter than that
    out = predict_sliding_window(small, threshold_net(0.5, calls=calls), patch=20, multiple=32)
    assert calls == [(1, 32, 32, 32, 1)]
    np.testing.assert_array_equal(out[..., 0], small > 0.5)


def test_overlapping_patches_are_blended_by_a_gaussian_centred_on_each():
    # Two patches along x (starts 0 and 16): the first says 0 everywhere, the second 1.
    answers = iter([0.0, 1.0])
    vol = np.zeros((32, 32, 48), np.float32)
    out = predict_sliding_window(vol, lambda b: np.full(b.shape, next(answers), np.float32),
                                 patch=32, overlap=0.5, batch_size=1)[0, 0, :, 0]
    assert np.all(out[:16] == 0) and np.all(out[32:] == 1)
    # At the first patch's centre its own answer wins (a plain average would give 0.5 there),
    # at the second's the other way round; half-way between, half each.
    assert out[16] < 0.01 and out[31] > 0.99
    assert out[23] + out[24] == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.diff(out[16:32]) > 0)


def test_sliding_window_stops_when_cancelled_and_rejects_bad_settings(image):
    token, calls = CancelToken(), []

    def cancelling(batch):
        calls.append(batch.shape)
        token.cancel()
        return batch

    with pytest.raises(Cancelled):
        predict_sliding_window(image, cancelling, patch=16, batch_size=2, cancel=token)
    assert len(calls) == 1
    with pytest.raises(InputError, match="overlap"):
        predict_sliding_window(image, threshold_net(0.5), overlap=1.0)
    for bad in (image[0], image[:0]):  # a single slice, an empty volume: said, not a crash
        with pytest.raises(InputError, match="3-D volume"):
            predict_slices(bad, threshold_net(0.5))
    with pytest.raises(ValueError, match="returned shape"):
        predict_sliding_window(image, lambda b: b[:, :8], patch=16)


def test_memory_is_the_output_and_one_weight_map():
    vol = np.random.default_rng(2).random((64, 64, 64)).astype(np.float32)  # 1 MiB
    net = threshold_net(0.5)
    tracemalloc.start()
    try:
        predict_sliding_window(vol, net, patch=16, overlap=0.5, batch_size=2)
        window_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        predict_slices(vol, net, multiple=16, batch_size=8)
        slices_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # float32 output + float32 weight map (2 MiB) and a few patches; no padded copy, no float64
    assert window_peak < 2.5 * vol.nbytes
    assert slices_peak < 1.5 * vol.nbytes


def test_largest_component_keeps_the_biggest_piece_per_channel():
    mask = np.zeros((10, 10, 10), np.uint8)
    mask[1:4, 1:4, 1:4] = 5        # 27 voxels
    mask[4, 4, 4] = 5              # touches the cube at a corner only: same piece
    mask[6:9, 6:9, 6:8] = 5        # 18 voxels, apart
    kept = largest_component(mask)
    assert kept.dtype == np.uint8 and np.count_nonzero(kept) == 28 and kept[4, 4, 4] == 5
    assert not kept[6:9, 6:9, 6:8].any()

    two = np.stack([mask, np.zeros_like(mask)], axis=-1)
    two[7:9, 0:2, 0:2, 1] = 1      # the second channel's only piece
    kept2 = largest_component(two)
    np.testing.assert_array_equal(kept2[..., 0], kept)
    np.testing.assert_array_equal(kept2[..., 1], two[..., 1])
    assert not largest_component(np.zeros((4, 4, 4), bool)).any()


def test_drop_islands_keeps_both_halves_of_a_cut_organ_and_drops_specks():
    mask = np.zeros((20, 12, 12), np.uint8)
    mask[0:8, 2:10, 2:10] = 5      # upper half: 512 voxels
    mask[11:16, 2:10, 2:10] = 5    # lower half, cut off by missed slices: 320 voxels (62 %)
    mask[18, 0, 0] = 5             # a speck: 1 voxel
    kept = drop_islands(mask, 0.1)
    assert kept.dtype == np.uint8 and np.count_nonzero(kept) == 512 + 320
    assert kept[18, 0, 0] == 0 and kept[13, 5, 5] == 5
    # at 1.0 only the largest piece is left: the lower half goes too
    assert np.count_nonzero(drop_islands(mask, 1.0)) == 512
    assert not drop_islands(np.zeros((3, 3, 3), bool), 0.1).any()


def test_fill_holes_fills_enclosed_cavities_only():
    mask = np.zeros((9, 9, 9), bool)
    mask[1:8, 1:8, 1:8] = True
    mask[3:6, 3:6, 3:6] = False    # a vessel inside the organ: enclosed on every side
    mask[6, 6, 0:3] = False        # a groove open to the outside, apart from the cavity
    filled = fill_holes(mask)
    assert filled[4, 4, 5] and filled[4, 5, 4]     # the cavity is filled
    assert not filled[6, 6, 2]                     # the open groove stays
    with pytest.raises(InputError, match="3-D mask"):
        fill_holes(np.zeros((4, 4), bool))


def test_grow_into_reaches_the_bone_edge_and_no_further():
    """A network mask a voxel inside a vertebra grows out to the bone's edge (HU from 100), never more
    than the distance asked, never into bone it does not touch (a rib a gap away), never into muscle."""
    hu = np.full((12, 40, 40), 50.0)            # muscle
    hu[2:10, 10:30, 10:30] = 250.0               # a vertebral body, 20 voxels across
    hu[2:10, 10:30, 32:36] = 900.0               # a rib 2 voxels from it
    mask = np.zeros(hu.shape, bool)
    mask[3:9, 11:29, 11:29] = True               # the network: one voxel short on every side
    grown = grow_into(mask, hu, (1.0, 1.0, 1.0), mm=3, low=100)
    assert grown[2:10, 10:30, 10:30].all()
    assert not grown[:, :, 30:].any() and not grown[hu == 50.0].any()
    short = grow_into(mask, hu, (1.0, 3.0, 3.0), mm=1.5, low=100)   # 1.5 mm: only along z (1 mm voxels)
    assert short[2, 15, 15] and not short[5, 10, 15]
    assert np.array_equal(grow_into(np.zeros_like(mask), hu, (1, 1, 1), 3, low=100), np.zeros_like(mask))


def test_grow_into_its_own_band_follows_the_organ_not_the_neighbour():
    """With band_sd the band is the mask's own HU: a liver grows into liver voxels, not into the
    brighter kidney it touches."""
    rng = np.random.default_rng(0)
    hu = rng.normal(40, 10, (10, 40, 40))        # soft tissue
    hu[:, 5:25, 5:25] = rng.normal(110, 5, (10, 20, 20))   # liver, enhanced
    hu[:, 25:35, 5:25] = rng.normal(200, 5, (10, 10, 20))  # kidney touching it
    mask = np.zeros(hu.shape, bool)
    mask[:, 7:23, 7:23] = True
    grown = grow_into(mask, hu, (1.0, 1.0, 1.0), mm=3, band_sd=3)
    assert grown[:, 5:25, 5:25].mean() > 0.99
    assert not grown[:, 25:, :].any() and not grown[:, :, 25:].any()
    with pytest.raises(InputError, match="same shape"):
        grow_into(mask, hu[:5], (1, 1, 1), 3, low=100)

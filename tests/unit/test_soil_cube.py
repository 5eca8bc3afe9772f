"""Soil cubes from small DICOM stacks: the box, the seed's density scale, rescale applied, slice order
by position, geometry of the crop, and the stacks that must be refused (gaps, uneven steps, mixed sizes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctviewer.data.volume import Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.io.registry import read_volume
from ctviewer.progress import CancelToken
from ctviewer.workflows.soil.cube import CubeSpec, build_cube, write_cube
from tests.dicom_series import write_ct_series

BOX = CubeSpec(slices=(2, 10), rows=(5, 30), cols=(3, 33))


def stored_planes(n=12, size=40, seed=0):
    """Stored values spanning below -1000 HU and above the cap once rescaled (slope 2, intercept -1024)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 3200, (size, size)).astype(np.int16) for _ in range(n)]


def write_stack(folder, planes, z_positions, names=None, **common):
    names = names or [f"IM{k:04d}.dcm" for k in range(len(planes))]
    write_ct_series(folder, planes, [(-10.0, -20.0, z) for z in z_positions], names, **common)
    return folder


def expected(planes, order, box=BOX, slope=2, intercept=-1024):
    """The seed's scale by hand: HU = slope * stored + intercept, clip at -1000, +1000, cap 4096."""
    hu = np.stack([planes[k] for k in order]).astype(np.float64) * slope + intercept
    cut = hu[box.slices[0]:box.slices[1], box.rows[0]:box.rows[1], box.cols[0]:box.cols[1]]
    return np.minimum(np.maximum(cut, -1000) + 1000, 4096)


def test_cube_applies_rescale_and_the_seeds_scale_in_position_order(tmp_path):
    planes = stored_planes()
    # files named against the slice order: the seed's file order would put the last slice first
    names = [f"IM{11 - k:04d}.dcm" for k in range(12)]
    folder = write_stack(tmp_path / "stack", planes, [1.5 * k for k in range(12)], names, rescale=(2, -1024))
    cube = build_cube(folder, BOX)
    assert cube.array.dtype == np.int16 and cube.shape == (8, 25, 30)
    np.testing.assert_array_equal(cube.array, expected(planes, range(12)))
    assert cube.value_range() == (0.0, 4096.0)   # both ends of the scale reached: clip and cap happened
    assert cube.spacing == pytest.approx((1.5, 0.7, 0.8))
    # the cube's first voxel sits where the box starts in the patient
    assert cube.origin == pytest.approx((-10.0 + 3 * 0.8, -20.0 + 5 * 0.7, 2 * 1.5))


def test_fractional_rescale_is_applied_and_rounded(tmp_path):
    planes = stored_planes(seed=1)
    folder = write_stack(tmp_path / "stack", planes, range(12), rescale=(0.5, -1100.5))
    cube = build_cube(folder, BOX)
    assert cube.array.dtype == np.int16
    hand = np.rint(expected(planes, range(12), slope=0.5, intercept=-1100.5))
    np.testing.assert_array_equal(cube.array, hand)


def test_reading_only_the_box_equals_cutting_the_whole_volume_for_any_stack_direction(tmp_path):
    planes = stored_planes(seed=2)
    # column cosines pointing anterior make the slice normal point inferior: the viewer flips the stack
    folder = write_stack(tmp_path / "flipped", planes, [2.0 * k for k in range(12)],
                         orientation=(1, 0, 0, 0, -1, 0), rescale=(1, -1024))
    box = CubeSpec(slices=(1, 7), rows=(5, 30), cols=(3, 33))   # not symmetric in the stack
    from_folder = build_cube(folder, box)
    whole = read_volume(folder)
    from_volume = build_cube(whole, box)
    np.testing.assert_array_equal(from_folder.array, from_volume.array)
    assert from_folder.origin == pytest.approx(from_volume.origin)
    assert from_folder.origin == pytest.approx(whole.index_to_lps((1, 5, 3)))
    # index 0 = the first slice the viewer shows: the lowest position (axis 0 towards superior)
    assert from_folder.origin[2] == pytest.approx(1 * 2.0)


def test_no_clip_keeps_hounsfield_units(tmp_path):
    planes = stored_planes(seed=3)
    folder = write_stack(tmp_path / "stack", planes, range(12), rescale=(1, -1024))
    cube = build_cube(folder, CubeSpec(slices=(2, 10), rows=(5, 30), cols=(3, 33), clip=False))
    hu = np.stack(planes)[2:10, 5:30, 3:33].astype(np.int32) - 1024
    np.testing.assert_array_equal(cube.array, hu)
    assert cube.array.min() < -1000


def test_open_ranges_run_to_the_end(tmp_path):
    folder = write_stack(tmp_path / "stack", stored_planes(), range(12))
    cube = build_cube(folder, CubeSpec(slices=(4, None), rows=(0, None), cols=(10, None)))
    assert cube.shape == (8, 40, 30)
    assert cube.meta["cube"]["slices"] == [4, 12]


def test_stack_smaller_than_the_default_box_says_both_sizes(tmp_path):
    folder = write_stack(tmp_path / "stack", stored_planes(), range(12))
    with pytest.raises(InputError) as caught:
        build_cube(folder)   # the seed's box: slices 100:500 of a 12-slice stack
    message = str(caught.value)
    assert str(folder) in message and "12 slices of 40 x 40" in message and "slices 100:500" in message


@pytest.mark.parametrize("box", [CubeSpec(slices=(0, 12), rows=(30, 41), cols=(0, 40)),
                                 CubeSpec(slices=(0, 12), rows=(0, 40), cols=(-1, 40)),
                                 CubeSpec(slices=(8, 8), rows=(0, 40), cols=(0, 40))])
def test_crop_outside_the_image_or_empty_is_refused(tmp_path, box):
    folder = write_stack(tmp_path / "stack", stored_planes(), range(12))
    with pytest.raises(InputError, match="stack is 12 slices of 40 x 40|is empty"):
        build_cube(folder, box)


def test_missing_slice_is_refused_naming_the_neighbours(tmp_path):
    z = [float(k) for k in range(12) if k != 6]       # slice at 6 mm lost
    folder = write_stack(tmp_path / "stack", stored_planes(11), z)
    with pytest.raises(InputError) as caught:
        build_cube(folder, CubeSpec(slices=(0, 4), rows=(0, 40), cols=(0, 40)))
    message = str(caught.value)
    assert message.startswith(str(folder))
    assert "slices 5 and 6" in message and "2 mm apart where the others are 1 mm" in message
    assert "a slice is missing" in message


def test_uneven_steps_are_refused(tmp_path):
    z = [0, 1, 2, 3, 4, 5.4, 6.4, 7.4, 8.4, 9.4]
    folder = write_stack(tmp_path / "stack", stored_planes(10), z)
    with pytest.raises(InputError, match="slices 4 and 5 .* 1.4 mm apart .*uneven"):
        build_cube(folder, CubeSpec(slices=(0, 4), rows=(0, 40), cols=(0, 40)))


def test_mixed_sizes_are_refused(tmp_path):
    planes = stored_planes(10) + stored_planes(2, size=32)
    folder = write_stack(tmp_path / "stack", planes, range(12))
    with pytest.raises(InputError, match="mixes image sizes .*10 slices of 40x40, 2 slices of 32x32"):
        build_cube(folder, CubeSpec(slices=(0, 4), rows=(0, 30), cols=(0, 30)))


def test_a_volume_read_with_a_gap_is_refused_too(tmp_path):
    """The viewer's study: the reader filled the gap with a blank slice; the cube must not use it."""
    z = [float(k) for k in range(12) if k != 3]
    volume = read_volume(write_stack(tmp_path / "stack", stored_planes(11), z))
    assert volume.shape[0] == 12   # the blank slice is there
    with pytest.raises(InputError, match="slices 2 and 3 .*a slice is missing"):
        build_cube(volume, CubeSpec(slices=(0, 12), rows=(0, 40), cols=(0, 40)))


def test_volume_without_files_is_cut_as_it_is():
    array = np.arange(6 * 8 * 8, dtype=np.int16).reshape(6, 8, 8) - 1500
    cube = build_cube(Volume(array, spacing=(2, 1, 1)), CubeSpec(slices=(1, 5), rows=(2, 6), cols=(0, 8)))
    np.testing.assert_array_equal(cube.array, np.clip(array[1:5, 2:6], -1000, 3096) + 1000)


def test_progress_reaches_one_and_cancel_stops(tmp_path):
    folder = write_stack(tmp_path / "stack", stored_planes(), range(12))
    seen = []
    build_cube(folder, BOX, progress=lambda f, m="": seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        build_cube(folder, BOX, cancel=token)


def test_write_npy_with_spacing_sidecar_and_nifti_round_trip(tmp_path):
    folder = write_stack(tmp_path / "stack", stored_planes(), [1.5 * k for k in range(12)])
    cube = build_cube(folder, BOX)
    npy = write_cube(cube, tmp_path / "cube.npy")
    np.testing.assert_array_equal(np.load(npy), cube.array)
    assert json.loads((tmp_path / "cube.json").read_text())["spacing"] == pytest.approx([1.5, 0.7, 0.8])
    again = read_volume(write_cube(cube, tmp_path / "cube.nii.gz"))
    np.testing.assert_array_equal(again.array, cube.array)
    assert again.spacing == pytest.approx(cube.spacing) and again.origin == pytest.approx(cube.origin)
    with pytest.raises(InputError, match="cannot save a cube as '.png'"):
        write_cube(cube, tmp_path / "cube.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.json", "cube.nii.gz", "cube.npy", "stack"]

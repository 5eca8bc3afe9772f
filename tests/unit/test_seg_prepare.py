"""Preparing segmentation cases: target text, windowing, anti-aliased resampling, labels kept as ids,
masks aligned with the image after resampling, and nothing of the mask leaking into the input."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.synth import TorsoParams, make_torso
from ctviewer.workflows.segmentation.cases import Case, case_from_study
from ctviewer.workflows.segmentation.prepare import (Target, prepare, resample, resample_to_shape,
                                                     window01)


# -- Target --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, groups", [
    ("5", [("liver", (5,))]),
    ("liver=5", [("liver", (5,))]),
    ("vertebrae=26-50", [("vertebrae", tuple(range(26, 51)))]),
    ("nonzero", [("foreground", None)]),
    ("all non-zero", [("foreground", None)]),
    ("5;spine=26-50", [("liver", (5,)), ("spine", tuple(range(26, 51)))]),
    ("kidneys = 2, 3", [("kidneys", (2, 3))]),
    ("77", [("label_77", (77,))]),
])
def test_target_text_forms(text, groups):
    target = Target.parse(text)
    assert target.groups == groups
    assert Target.parse(target.text()).groups == groups
    assert Target.from_dict(target.to_dict()).groups == groups


@pytest.mark.parametrize("text, message", [
    ("", "empty"), (" ; ", "empty"), ("liver", "not a label id"), ("5-", "not a label id"),
    ("50-26", "low to high"), ("0", "from 1 to 65535"), ("=5", "not a group name"),
    ("a=5;a=6", "names a group twice"), ("liver=5.5", "not a label id"),
])
def test_bad_target_text_is_refused(text, message):
    with pytest.raises(InputError, match=message):
        Target.parse(text)


def test_target_masks_one_channel_per_group():
    labels = np.array([[0, 5, 27], [31, 5, 2]], np.uint8)
    masks = Target.parse("5;spine=26-50;nonzero").masks(labels)
    assert masks.dtype == np.uint8 and masks.shape == (2, 3, 3)
    assert masks[..., 0].tolist() == [[0, 1, 0], [0, 1, 0]]
    assert masks[..., 1].tolist() == [[0, 0, 1], [1, 0, 0]]
    assert masks[..., 2].tolist() == [[0, 1, 1], [1, 1, 1]]


def _case(labels: np.ndarray, hu: np.ndarray | None = None) -> Case:
    from ctviewer.data.volume import Volume

    hu = np.zeros(labels.shape, np.int16) if hu is None else hu
    return case_from_study("c", Volume(hu, spacing=(2.0, 1.0, 1.0), modality="CT"), labels)


def test_target_check_names_the_missing_label_and_refuses_empty_studies():
    cases = [_case(np.array([[[0, 1, 2]]], np.uint8)), _case(np.array([[[5, 0, 0]]], np.uint8))]
    Target.parse("liver=5;spleen=1").check(cases)
    with pytest.raises(InputError, match=r"label 7 is in no study \(found: 1, 2, 5\)"):
        Target.parse("5;7").check(cases)
    with pytest.raises(InputError, match="labels 26-50 .* in no study"):
        Target.parse("vertebrae=26-50").check(cases)
    empty = [_case(np.zeros((1, 2, 2), np.uint8)) for _ in range(2)]
    for text in ("nonzero", "5"):
        with pytest.raises(InputError, match="nothing to learn"):
            Target.parse(text).check(empty)


# -- windowing and resampling ---------------------------------------------------------------------
def test_window01_clips_and_scales():
    out = window01(np.array([-2000, -1000, -300, 400, 3000], np.int16))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(window01(np.array([0, 100]), window=(-100, 100)), [0.5, 1.0])
    with pytest.raises(InputError, match="upper end"):
        window01(np.zeros(3), window=(100, -100))


def test_shrinking_is_anti_aliased_not_strided():
    z, y, x = np.indices((8, 64, 64))
    stripes = (x % 3 == 0).astype(np.float32)          # period 3: striding by 4 aliases it into a pattern
    checker = ((x + y) % 2).astype(np.float32)          # striding by 4 turns it all black or all white
    for image in (stripes, checker):
        small = resample(image, (1, 1, 1), (1, 4, 4))
        strided = image[:, ::4, ::4]
        assert small.shape == strided.shape == (8, 16, 16)
        inner = small[:, 2:-2, 2:-2]                    # the borders see the pattern cut off
        assert abs(inner.mean() - image.mean()) < 0.02 and inner.std() < 0.02
        assert strided.std() > 0.3 or abs(strided.mean() - image.mean()) > 0.3


def test_label_resampling_keeps_integer_ids():
    labels = np.zeros((6, 40, 40), np.uint16)
    labels[:, 5:20, 5:20], labels[:, 22:35, 10:30], labels[2:4, 0:3, 0:3] = 5, 300, 31
    small = resample(labels, (2, 1, 1), (2, 2.5, 2.5), order=0)
    assert small.dtype == np.uint16 and small.shape == (6, 16, 16)
    assert set(np.unique(small)) <= {0, 5, 300, 31}
    assert {5, 300} <= set(np.unique(small))
    back = resample_to_shape(small, labels.shape, order=0)
    assert back.shape == labels.shape and (back == labels).mean() > 0.9


def test_resampling_keeps_trailing_channels_and_leaves_equal_grids_alone():
    masks = np.zeros((4, 10, 10, 2), np.uint8)
    assert resample(masks, (1, 1, 1), (1, 2, 2), order=0).shape == (4, 5, 5, 2)
    image = np.random.default_rng(0).random((4, 10, 10)).astype(np.float32)
    assert resample(image, (1, 1, 1), (1, None, 1)) is image


# -- prepare ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torso_case() -> Case:
    torso = make_torso(TorsoParams(matrix=(96, 96), pixel_spacing=4.0, slice_spacing=6.0,
                                   field_of_view="abdomen", noise_sd=0))
    return case_from_study("torso", torso.image, torso.labels.volume.array)


def test_prepare_keeps_the_image_in_range_and_the_liver_mask_on_liver(torso_case):
    prepared = prepare(torso_case, Target.parse("liver=5"), (-1000, 400), spacing_mm=(6.0, 8.0, 8.0))
    assert prepared.image.dtype == np.float32 and prepared.image.shape == (73, 48, 48)
    assert 0.0 <= prepared.image.min() and prepared.image.max() <= 1.0
    assert prepared.masks.shape == prepared.image.shape + (1,) and prepared.masks.dtype == np.uint8
    assert prepared.spacing == pytest.approx((6.0, 8.0, 8.0))
    liver = prepared.masks[..., 0].astype(bool)
    # liver is 48..62 HU (0.748..0.759 in this window); the edge voxels mix with neighbours
    on_liver = np.abs(prepared.image[liver] - (1000 + 55) / 1400) < 0.03
    assert liver.sum() > 100 and on_liver.mean() > 0.85
    assert np.abs(prepared.image[~liver] - (1000 + 55) / 1400).mean() > 0.1


def test_prepare_uses_no_statistics_from_the_mask(torso_case):
    other = Case("torso", torso_case.image, np.roll(torso_case.labels, 10, axis=2), "")
    target = Target.parse("liver=5")
    a = prepare(torso_case, target, (-1000, 400), spacing_mm=(6.0, 8.0, 8.0))
    b = prepare(other, target, (-1000, 400), spacing_mm=(6.0, 8.0, 8.0))
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.masks, b.masks)


def test_prepare_without_spacing_keeps_the_grid(torso_case):
    prepared = prepare(torso_case, Target.parse("nonzero"), (-1000, 400), None)
    assert prepared.image.shape == torso_case.image.shape
    assert prepared.spacing == torso_case.image.spacing

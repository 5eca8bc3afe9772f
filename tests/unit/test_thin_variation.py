"""Training crops that vary as photomicrographs do: the published thin-section labels are exactly the
gray-bin rule of their photos, so a varied crop's labels are the rule applied to the varied image;
colour changes that should keep the luma keep it; magnification keeps hand labels on their pixels;
bad settings and a rule that does not make the labels are refused naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ctviewer.errors import InputError
from ctviewer.imaging.bins import gray_level_bins, luminance
from ctviewer.ml.training import TrainConfig
from ctviewer.workflows.thin_section import task
from ctviewer.workflows.thin_section.photos import read_photo_rgb
from ctviewer.workflows.thin_section.variation import (LUMA, LabelRule, PhotoVariation, UNLABELLED, saturate,
                                                       white_balance_gains)

RULE = LabelRule((0.25, 0.40, 0.60, 0.80), sigma=1.0)
NONE = PhotoVariation.from_config({})          # every change 0


def _photo(seed: int, shape=(96, 120)) -> np.ndarray:
    """Grains of several grays and blue pores on a mid-grey ground, slightly noisy (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rgb = np.full((*shape, 3), 150.0)
    for _ in range(40):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(4, 14)
        rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = rng.choice(
            [(25, 25, 25), (110, 100, 90), (40, 90, 230), (235, 235, 225), (190, 185, 175)])
    return np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)


def _interior(a, reach):
    return a[reach:-reach, reach:-reach]


def test_the_shared_labels_are_the_gray_bin_rule_of_their_photos(shared_data):
    """Rec. 709 luma of the stored RGB (alpha ignored), Gaussian sigma 1 px, absolute thresholds
    0.25/0.4/0.6/0.8: every pixel of all nine label files. The 0.75 the data README states, or
    thresholds on each photo's own min..max, do not make them."""
    folder = shared_data / "thin_sections"
    for n in range(1, 10):
        rgb = read_photo_rgb(folder / "images" / f"{n}.png")
        ids = np.asarray(Image.open(folder / "labels" / f"{n}.png"))
        assert RULE.agreement(rgb, ids) == 1.0, n
        assert LabelRule((0.25, 0.40, 0.60, 0.75), 1.0).agreement(rgb, ids) < 0.97
    gray = luminance(rgb)
    normalised = (gray - gray.min()) / (gray.max() - gray.min())
    assert np.mean(gray_level_bins(normalised, RULE.thresholds, 1.0) == ids) < 0.9


def test_without_changes_the_relabelled_crop_is_the_label_file_even_at_the_photo_border():
    rgb = _photo(0, shape=(60, 80))
    target = task.class_index(task.Photo("p", None, None, rgb, RULE.ids(rgb)), [1, 2, 3, 4, 5])
    places = set()
    for seed in range(60):
        image, labels = NONE.crop(rgb, target, (48, 64), np.random.default_rng(seed), RULE, [1, 2, 3, 4, 5])
        found = [(y, x) for y in range(60 - 48 + 1) for x in range(80 - 64 + 1)
                 if np.allclose(rgb[y:y + 48, x:x + 64] / np.float32(255), image, atol=1e-5)]
        assert len(found) == 1, "an unchanged crop is pixels of the photo"
        (y, x), = found
        np.testing.assert_array_equal(labels, target[y:y + 48, x:x + 64])
        places.add((y, x))
    # crops reach every border (the rule's smoothing repeats the photo's edge pixels there)
    assert {0, 12} <= {y for y, _ in places} and {0, 16} <= {x for _, x in places}


def test_a_varied_crop_is_labelled_by_the_rule_applied_to_what_the_network_sees():
    rgb = _photo(1)
    target = task.class_index(task.Photo("p", None, None, rgb, RULE.ids(rgb)), [1, 2, 3, 4, 5])
    strong = PhotoVariation(exposure=0.3, uneven_light=0.3, white_balance=0.2, saturation=0.6, focus=2.0,
                            magnification=0.4, noise=0.02)
    moved = 0
    for seed in range(12):
        image, labels = strong.crop(rgb, target, (48, 64), np.random.default_rng(seed), RULE, [1, 2, 3, 4, 5])
        assert image.shape == (48, 64, 3) and image.dtype == np.float32 and 0 <= image.min() <= image.max() <= 1
        again = RULE.ids(image) - 1          # the rule on the crop itself: equal wherever it sees the same pixels
        np.testing.assert_array_equal(_interior(labels, RULE.reach), _interior(again, RULE.reach))
        plain, plain_labels = NONE.crop(rgb, target, (48, 64), np.random.default_rng(seed), RULE, [1, 2, 3, 4, 5])
        moved += np.mean(plain_labels != labels)
    assert moved / 12 > 0.05   # the changes are big enough to move the truth: keeping the old labels would lie


def test_saturation_keeps_luma_and_white_balance_keeps_a_neutral_grey():
    rng = np.random.default_rng(3)
    image = rng.uniform(0.1, 0.9, (16, 16, 3)).astype(np.float32)
    for factor in (0.4, 1.6):
        changed = saturate(image, factor)
        assert not np.allclose(changed, image, atol=1e-2)
        np.testing.assert_allclose(changed @ LUMA, image @ LUMA, atol=1e-5)
    grey = np.full(3, 0.5, np.float32)
    gains = white_balance_gains(1.1, 0.9)
    assert gains[0] > gains[1] > gains[2] and (grey * gains) @ LUMA == pytest.approx(0.5, abs=1e-6)
    only_colour = PhotoVariation.from_config({"saturation": 0.5})
    for seed in range(4):
        out = only_colour.change_colours(image, np.random.default_rng(seed))
        np.testing.assert_allclose(np.clip(out, 0, 1) @ LUMA, image @ LUMA, atol=2e-2)   # clipping aside


def test_magnification_keeps_hand_labels_on_their_pixels_and_changes_the_scale():
    """No rule (hand-drawn labels): labels follow the geometry only, whatever the colours do."""
    yy, xx = np.mgrid[:200, :200]
    stripes = ((xx // 10) % 2).astype(np.uint8)                 # 10 px wide stripes
    rgb = np.repeat((stripes * 200 + 30)[..., None], 3, axis=2).astype(np.uint8)
    zoom = PhotoVariation.from_config({"magnification": 0.5, "exposure": 0.3, "white_balance": 0.2})
    widths = []
    for seed in range(8):
        image, labels = zoom.crop(rgb, stripes, (64, 64), np.random.default_rng(seed))
        bright = (image @ LUMA) > 0.45   # what the image shows, however lit
        assert np.mean(bright == (labels == 1)) > 0.95
        widths.append(64 / max(1, np.count_nonzero(np.diff(labels[32].astype(int)))))
    assert max(widths) / min(widths) > 1.3     # stripes 10 px wide at x1.0 come out at other widths


def test_photos_smaller_than_the_crop_leave_the_outside_unlabelled():
    rgb = _photo(2, shape=(20, 24))
    target = task.class_index(task.Photo("p", None, None, rgb, RULE.ids(rgb)), [1, 2, 3, 4, 5])
    image, labels = PhotoVariation().crop(rgb, target, (32, 32), np.random.default_rng(0), RULE, [1, 2, 3, 4, 5])
    assert image.shape == (32, 32, 3)
    assert 0 < np.mean(labels == UNLABELLED) < 1


def test_bad_settings_are_one_line_input_errors():
    with pytest.raises(InputError, match="photo_variation focus should be a number in 0..5"):
        PhotoVariation.from_config({"focus": 9})
    with pytest.raises(InputError, match="unknown photo_variation key.*gamma"):
        PhotoVariation.from_config({"gamma": 0.1})
    with pytest.raises(InputError, match="label_rule should be a table"):
        LabelRule.from_config({"thresholds": [0.3], "smoothing": 1})
    with pytest.raises(InputError, match="strictly increasing"):
        LabelRule.from_config({"thresholds": [0.5, 0.3]})
    assert PhotoVariation.from_config(True) == PhotoVariation() and PhotoVariation.from_config(False) is None


def _folder(tmp_path, labels_by_rule=True):
    folder = tmp_path / "sections"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i, name in enumerate("abc"):
        rgb = _photo(i, shape=(48, 64))
        ids = RULE.ids(rgb) if labels_by_rule else gray_level_bins(luminance(rgb), (0.2, 0.3, 0.5, 0.7), 0)
        Image.fromarray(rgb).save(folder / "images" / f"{name}.png")
        Image.fromarray(ids).save(folder / "labels" / f"{name}.png")
    return folder


def _config(folder, tmp_path, **extra):
    return TrainConfig(task="thin_section", name="thin_vary", epochs=1, batch_size=2, patience=0,
                       out_dir=tmp_path / "models", log_dir=tmp_path / "logs",
                       data={"sources": [str(folder)], "crop": [32, 32], "test": ["c"], "validation": ["b"],
                             "classes": [1, 2, 3, 4, 5],
                             "label_rule": {"thresholds": [0.25, 0.4, 0.6, 0.8], "sigma": 1.0}},
                       extra={"base_filters": 2, "samples_per_epoch": 8, "val_samples": 2, "tile": 32,
                              "photo_variation": True, **extra})


def test_training_batches_are_relabelled_and_a_rule_that_does_not_make_the_labels_is_refused(tmp_path):
    folder = _folder(tmp_path)
    train, val, info = task.load_data(_config(folder, tmp_path))
    x, y = train[0]
    assert x.shape == (2, 32, 32, 3) and y.shape == (2, 32, 32)
    for image, labels in zip(x, y):   # turned and flipped after relabelling: the rule still holds inside
        assert np.mean(_interior(labels, 4) == _interior(RULE.ids(image) - 1, 4)) > 0.999
    other = _folder(tmp_path / "other", labels_by_rule=False)
    with pytest.raises(InputError, match=r"gives only .* % of these labels") as caught:
        task.load_data(_config(other, tmp_path))
    assert Path(caught.value.path) == other / "labels" / "a.png"
    with pytest.raises(InputError, match="not both"):
        task.ThinData.from_config(_config(folder, tmp_path, colour_jitter=0.1))


def test_validation_false_trains_on_all_but_the_test_photos(tmp_path):
    folder = _folder(tmp_path)
    config = _config(folder, tmp_path)
    config.data.update(test=[], validation=False)
    plan = task.plan(config)
    assert sorted(p.name for p in plan.train) == ["a", "b", "c"] and not plan.validation and not plan.test
    train, val, info = task.load_data(config)
    assert val is None and info["val_studies"] == 0
    config.data.update(validation=[])   # an empty list still means "a fraction of them" (the GUI's Train sends it)
    assert len(task.plan(config).validation) == 1

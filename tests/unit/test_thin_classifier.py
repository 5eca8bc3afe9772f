"""The live pixel classifier: features, fitting on scribbles, predicting the photo, bad scribbles."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.errors import Cancelled, InputError
from ctviewer.imaging.bins import luminance
from ctviewer.progress import CancelToken
from ctviewer.workflows.thin_section.classifier import PixelClassifier, pixel_features

BLUE_EPOXY = (40, 90, 200)
BEIGE_GRAIN = (116, 82, 60)   # the same Rec. 709 luminance as the epoxy (87.6 against 87.3)


def two_colour_photo(shape=(60, 80), seed=0) -> np.ndarray:
    """Left half blue epoxy, right half beige grain, equal brightness, with sensor noise."""
    rng = np.random.default_rng(seed)
    rgb = np.empty(shape + (3,), np.float64)
    rgb[:, : shape[1] // 2] = BLUE_EPOXY
    rgb[:, shape[1] // 2:] = BEIGE_GRAIN
    rgb += rng.normal(0, 12, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def strokes(shape=(60, 80)) -> np.ndarray:
    """One short vertical stroke of class 3 in the left half and one of class 5 in the right half."""
    s = np.zeros(shape, np.uint8)
    s[20:40, 8:11] = 3
    s[25:45, 66:69] = 5
    return s


def test_features_are_float32_per_pixel_and_ignore_alpha():
    rgb = two_colour_photo((30, 40))
    f = pixel_features(rgb)
    assert f.dtype == np.float32 and f.shape == (30, 40, 4 * 4 * 4 + 3)  # 4 sigmas x 4 channels x 4, hue, sat
    assert pixel_features(rgb, sigmas=(1, 3)).shape[-1] == 2 * 16 + 3
    rgba = np.concatenate([rgb, np.zeros((30, 40, 1), np.uint8)], axis=-1)
    np.testing.assert_array_equal(pixel_features(rgba), f)
    with pytest.raises(InputError, match="colour photo"):
        pixel_features(rgb[..., 0])


def test_hue_tells_apart_two_colours_of_equal_brightness():
    rgb = two_colour_photo()
    gray = luminance(rgb)
    assert abs(gray[:, :40].mean() - gray[:, 40:].mean()) < 0.01  # no gray-level bin can split them
    clf = PixelClassifier()
    clf.set_image(rgb)
    ids = clf.fit(strokes()).predict()
    assert ids.dtype == np.uint8 and ids.shape == (60, 80) and clf.classes == [3, 5]
    truth = np.where(np.arange(80) < 40, 3, 5)[None, :]
    assert np.mean(ids == truth) > 0.97


def test_fewer_than_two_classes_scribbled_is_refused():
    clf = PixelClassifier()
    clf.set_image(two_colour_photo())
    only_one = strokes()
    only_one[only_one == 5] = 0
    with pytest.raises(InputError, match="only class 3 is scribbled"):
        clf.fit(only_one)
    with pytest.raises(InputError, match="nothing is scribbled"):
        clf.fit(np.zeros((60, 80), np.uint8))


def test_scribbles_of_another_size_are_refused():
    clf = PixelClassifier()
    clf.set_image(two_colour_photo())
    with pytest.raises(InputError, match=r"scribbles \(60x79\) are not the size of the photo \(60x80\)"):
        clf.fit(strokes()[:, :79])
    clf.fit(strokes()[None])  # a photo study's [1, y, x] label layer is fine


def test_a_heavy_scribble_is_subsampled_per_class():
    clf = PixelClassifier(max_per_class=100)
    clf.set_image(two_colour_photo())
    heavy = np.zeros((60, 80), np.uint8)
    heavy[:, :30] = 3          # 1800 pixels
    heavy[10:12, 60:70] = 5    # 20 pixels: all kept
    index = clf.training_pixels(heavy)
    values = heavy.reshape(-1)[index]
    assert np.count_nonzero(values == 3) == 100 and np.count_nonzero(values == 5) == 20
    np.testing.assert_array_equal(index, clf.training_pixels(heavy))  # same seed, same pixels


def test_features_and_prediction_stop_when_cancelled():
    clf = PixelClassifier(n_estimators=4)
    clf.set_image(two_colour_photo())
    clf.fit(strokes())
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        pixel_features(two_colour_photo(), cancel=token)
    with pytest.raises(Cancelled):
        clf.predict(cancel=token)
    seen = []
    clf.predict(progress=lambda f, m="": seen.append(f))
    assert seen and seen[-1] == 1.0


def test_a_few_strokes_per_class_reproduce_real_labels(shared_data):
    """Small disks at random places of each class of a real photo, as a user would scribble them."""
    from PIL import Image

    folder = shared_data / "thin_sections"
    rgb = np.asarray(Image.open(folder / "images" / "1.png"))[..., :3]
    truth = np.asarray(Image.open(folder / "labels" / "1.png"))
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[: truth.shape[0], : truth.shape[1]]
    scribbles = np.zeros_like(truth)
    for c in range(1, 6):
        ys, xs = np.nonzero(truth == c)
        for k in rng.choice(ys.size, 6, replace=False):
            disk = (yy - ys[k]) ** 2 + (xx - xs[k]) ** 2 <= 16
            scribbles[disk & (truth == c)] = c
    clf = PixelClassifier()
    clf.set_image(rgb)
    agreement = np.mean(clf.fit(scribbles).predict() == truth)
    assert agreement > 0.93, f"{agreement:.3f} of the pixels agree with the label image"  # measured 0.967


def test_a_big_photo_is_classified_on_a_shrunk_grid_at_its_own_size():
    """Features of a 2000x3000 photo would take 1.6 GB: over max_pixels the grid shrinks by a whole
    factor, thin scribbles still train (each on its cell) and the answer comes back at the photo's size."""
    rng = np.random.default_rng(1)
    rgb = np.empty((301, 403, 3), np.uint8)
    rgb[:, :200] = (40, 90, 220)       # blue epoxy
    rgb[:, 200:] = (220, 200, 150)     # beige grain
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    classifier = PixelClassifier(max_pixels=20_000)
    classifier.set_image(rgb)
    assert classifier.factor == 3 and classifier.features.shape[:2] == (101, 135)
    scribbles = np.zeros(rgb.shape[:2], np.uint8)
    scribbles[150, 20:180] = 3          # one-pixel-thin strokes
    scribbles[150, 230:390] = 5
    ids = classifier.fit(scribbles).predict()
    assert ids.shape == (301, 403)
    assert (ids[:, :196] == 3).mean() > 0.98 and (ids[:, 204:] == 5).mean() > 0.98

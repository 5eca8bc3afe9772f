"""Training crops that vary as real photomicrographs do, with labels that stay true.

Photos of thin sections differ from one microscope session to the next in illumination (exposure,
light falling off towards the edges), white balance, focus, magnification, the saturation of the
blue epoxy stain and camera noise. :class:`PhotoVariation` draws such a change per training crop.
The nine shared photos span roughly: mean luma 0.47-0.76, red/green 0.85-1.02 and blue/green
0.91-1.09, blue-stain chroma 0.14-0.37, up to 9 % less light at the edges, sharpness within a
factor of four; the defaults cover that.

What happens to the labels depends on how they were made:

* **Gray-bin labels** (a :class:`LabelRule`: Gaussian-smoothed luma cut at fixed thresholds, as the
  shared thin-section labels are; the rule reproduces them pixel for pixel). Any change that moves a
  pixel's luma (exposure, uneven light, white balance, blur, noise, rescaling) moves its true class
  too, so the labels are **recomputed by the rule from the changed image**, as they would have been
  made from a photo taken that way. Unlabelled pixels stay unlabelled.
* **Hand-drawn labels** (no rule): a grain is the same mineral however it was lit, so the labels
  only follow the geometry (magnification, nearest neighbour) and every colour change keeps them.

A crop is cut from a window with a margin around it, so the smoothing and blur near the crop's
edges see the real neighbours, and the photo's own border is extended as the rule's smoothing does
(``mode="nearest"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ctviewer.errors import InputError
from ctviewer.imaging.bins import PUBLISHED_THRESHOLDS
from ctviewer.workflows.thin_section.jitter import _FROM_YCC, _TO_YCC, LUMA, check_settings

UNLABELLED = 255    # ctviewer.workflows.thin_section.task.UNLABELLED (the target of unlabelled pixels)

#: Largest value each change may be given, and what it means (messages quote these).
_LIMITS = {"exposure": (0.9, "a fraction: light x [1 - e, 1 + e]"),
           "uneven_light": (0.9, "a fraction: up to this much less light at the far edge"),
           "white_balance": (0.5, "a fraction: red and blue gains x [1 - w, 1 + w]"),
           "saturation": (0.9, "a fraction: colour x [1 - s, 1 + s] at the same luma"),
           "focus": (5.0, "pixels: blur sigma up to this"),
           "magnification": (1.0, "a fraction: scale x [1 / (1 + m), 1 + m]"),
           "noise": (0.2, "camera noise standard deviation, 0..1 scale")}


@dataclass
class LabelRule:
    """Labels made from the photo itself: Rec. 709 luma, Gaussian ``sigma`` (px), ``thresholds`` on
    the absolute 0..1 scale (ids 1..n+1; a value on a threshold goes to the lower class)."""

    thresholds: tuple = PUBLISHED_THRESHOLDS     # what made the shared labels (all nine, every pixel)
    sigma: float = 1.0

    def __post_init__(self):
        from ctviewer.imaging.bins import _check_thresholds

        self.thresholds = tuple(float(t) for t in _check_thresholds(self.thresholds))
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float)) or not 0 <= self.sigma <= 10:
            raise InputError(f"label_rule sigma should be a number of pixels in 0..10, not {self.sigma!r}")
        self.sigma = float(self.sigma)

    @classmethod
    def from_config(cls, value) -> "LabelRule | None":
        if value is None or isinstance(value, cls):
            return value
        if not isinstance(value, dict) or set(value) - {"thresholds", "sigma"}:
            raise InputError(f"label_rule should be a table of thresholds and sigma, like "
                             f"{{ thresholds = [0.25, 0.4, 0.6, 0.8], sigma = 1.0 }}, not {value!r}")
        return cls(**value)

    @property
    def reach(self) -> int:
        """Pixels the smoothing reaches (scipy's radius at truncate=4)."""
        return int(4.0 * self.sigma + 0.5)

    def ids(self, image: np.ndarray) -> np.ndarray:
        """Label ids (uint8, 1..n+1) of ``[y, x, 3]`` RGB, uint8 or float 0..1."""
        from ctviewer.imaging.bins import gray_level_bins, luminance

        return gray_level_bins(luminance(image), self.thresholds, self.sigma)

    def agreement(self, rgb: np.ndarray, ids: np.ndarray) -> float:
        """Fraction of the labelled pixels of ``ids`` the rule gives the same id."""
        labelled = ids != 0
        if not labelled.any():
            return 1.0
        return float(np.mean(self.ids(rgb)[labelled] == ids[labelled]))


@dataclass
class PhotoVariation:
    """The largest change of each kind a crop may get (0: none); see ``_LIMITS`` for the units."""

    exposure: float = 0.2
    uneven_light: float = 0.1
    white_balance: float = 0.1
    saturation: float = 0.4
    focus: float = 1.0
    magnification: float = 0.2
    noise: float = 0.01

    def __post_init__(self):
        check_settings(self, "photo_variation", lambda name, value: 0 <= value <= _LIMITS[name][0],
                       lambda name: f"a number in 0..{_LIMITS[name][0]:g} ({_LIMITS[name][1]})")

    @classmethod
    def from_config(cls, value) -> "PhotoVariation | None":
        """``true`` (the defaults), ``false`` (none), or a table of some of the changes (the rest 0)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(_LIMITS))
            if unknown:
                raise InputError(f"unknown photo_variation key(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(_LIMITS)})")
            return cls(**{k: value.get(k, 0.0) for k in _LIMITS})
        raise InputError(f"photo_variation should be true, false or a table ({', '.join(_LIMITS)}), not {value!r}")

    # -- one crop -----------------------------------------------------------------------------------

    def crop(self, rgb: np.ndarray, target: np.ndarray, size, rng: np.random.Generator,
             rule: LabelRule | None = None, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """A ``size`` crop (float32 RGB 0..1, uint8 target) of photo ``rgb`` (uint8) and ``target``
        (class indices, UNLABELLED where unlabelled).

        With a ``rule`` the target is recomputed from the changed image (rule ids mapped to their
        index in ``classes``); without one it follows the geometry only.
        """
        scale = math.exp(rng.uniform(-1, 1) * math.log1p(self.magnification))
        blur = rng.uniform(0, self.focus)
        margin = 2 + int(4 * blur + 0.5) + (rule.reach if rule is not None else 0)
        image, labels = _window(rgb, target, (size[0] + 2 * margin, size[1] + 2 * margin), margin, scale, rng)
        image = self.change_colours(image, rng, blur)
        if rule is not None:
            index = class_lookup(classes or range(1, len(rule.thresholds) + 2))
            labels = np.where(labels == UNLABELLED, UNLABELLED, index[rule.ids(image)]).astype(np.uint8)
        inner = (slice(margin, margin + size[0]), slice(margin, margin + size[1]))
        return np.ascontiguousarray(image[inner]), np.ascontiguousarray(labels[inner])

    def change_colours(self, image: np.ndarray, rng: np.random.Generator, blur: float = 0.0) -> np.ndarray:
        """Stain saturation, focus, illumination, white balance and noise on ``[y, x, 3]`` float 0..1,
        in the order they happen (the stain is in the rock, noise in the camera)."""
        from scipy.ndimage import gaussian_filter

        image = saturate(image, 1.0 + rng.uniform(-self.saturation, self.saturation))
        if blur > 0.05:
            image = gaussian_filter(image, (blur, blur, 0), mode="nearest", truncate=4.0)
        light = (1.0 + rng.uniform(-self.exposure, self.exposure)) * uneven_light(
            image.shape[:2], rng.uniform(0, self.uneven_light), rng)
        gains = white_balance_gains(*(1.0 + rng.uniform(-self.white_balance, self.white_balance, 2)))
        image = image * light[..., None] * gains
        if self.noise:
            image = image + rng.normal(0.0, rng.uniform(0, self.noise), image.shape)
        return np.clip(image, 0.0, 1.0).astype(np.float32)


def _window(rgb, target, out_shape, margin, scale, rng):
    """A random window of the photo showing ``out_shape`` pixels at ``scale`` (float image 0..1 and
    target), placed so that the crop inside its ``margin`` may reach the photo's border. The photo's
    edge pixels repeat beyond the border (as the labels' smoothing assumed); the target is
    unlabelled there."""
    from skimage.transform import resize

    need_h, need_w = (max(1, math.ceil(n / scale)) for n in out_shape)
    pad = math.ceil(margin / scale)
    h, w = target.shape
    y = int(rng.integers(min(-pad, h - need_h + pad), max(-pad, h - need_h + pad) + 1))
    x = int(rng.integers(min(-pad, w - need_w + pad), max(-pad, w - need_w + pad) + 1))
    rows = np.clip(np.arange(y, y + need_h), 0, h - 1)
    cols = np.clip(np.arange(x, x + need_w), 0, w - 1)
    image = rgb[np.ix_(rows, cols)].astype(np.float32) / 255.0
    labels = target[np.ix_(rows, cols)]
    outside = ((np.arange(y, y + need_h) < 0) | (np.arange(y, y + need_h) >= h))[:, None] | \
              ((np.arange(x, x + need_w) < 0) | (np.arange(x, x + need_w) >= w))[None, :]
    if not (need_h, need_w) == tuple(out_shape):
        image = resize(image, out_shape, order=1, mode="edge", anti_aliasing=scale < 1).astype(np.float32)
        labels = resize(labels, out_shape, order=0, mode="edge", anti_aliasing=False,
                        preserve_range=True).astype(np.uint8)
        outside = resize(outside, out_shape, order=0, mode="edge", anti_aliasing=False)
    return image, np.where(outside, UNLABELLED, labels).astype(np.uint8)


def class_lookup(classes) -> np.ndarray:
    """id -> class index (uint8), UNLABELLED for ids not among ``classes``."""
    index = np.full(256, UNLABELLED, dtype=np.uint8)
    index[list(classes)] = np.arange(len(classes))
    return index


def saturate(image: np.ndarray, factor: float) -> np.ndarray:
    """Colour scaled by ``factor`` about each pixel's luma (the luma itself unchanged)."""
    matrix = (_FROM_YCC @ np.diag([1.0, factor, factor]) @ _TO_YCC).astype(np.float32)
    return image @ matrix.T


def white_balance_gains(red: float, blue: float) -> np.ndarray:
    """Per-channel gains for a colour cast (red and blue against green), scaled so that a neutral
    gray keeps its luma: white balance tints, exposure brightens."""
    gains = np.array([red, 1.0, blue])
    return (gains / float(gains @ LUMA)).astype(np.float32)


def uneven_light(shape, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Light falling off from a random centre (in or near the window), 1 there down to 1 - strength
    at the window's farthest corner: a vignette or an off-centre lamp seen through a crop."""
    h, w = shape
    cy, cx = rng.uniform(-0.5, 1.5) * h, rng.uniform(-0.5, 1.5) * w
    yy, xx = np.ogrid[:h, :w]
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    return (1.0 - strength * d2 / max(float(d2.max()), 1.0)).astype(np.float32)

"""Training samples for the locator: a crop of a scan's projections and its blurred row targets.

One sample is a window ``crop_rows`` tall (at 1 mm) cut from a scan's frontal and sagittal projections,
stacked as the network's two channels, with one target row profile per level: a Gaussian of
``sigma_mm`` around the level's centre row, or all zeros where the level is not in the window. Windows
that leave a level out (or lie partly beyond the scan, as zeros) teach the network "not in scan".

With augmentation on, each sample is also changed the ways real scans differ from each other:

* vertical scale ±10 % (patient height; the targets move with the rows);
* slice thickness: rows averaged over and resampled from a coarser slice spacing (1–6 mm);
* in-plane resolution: columns blurred (coarse pixels make thin ribs faint);
* left–right flip of the frontal image, a shift of the body centre across the width;
* intensity gain, offset and gamma, and noise;
* short scans: only part of the window holds the scan, the rest is zero (a slab of a few cm).

Every geometric change is applied to the target through the same row mapping as to the image, which
``tests/unit/test_locator_dataset.py`` checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ctviewer.ml.locator import centre_crop


@dataclass(frozen=True)
class AugmentSettings:
    """How samples are cut and varied; recorded in the model card's ``training.augmentation``."""

    crop_rows: int = 384
    width_px: int = 256
    sigma_mm: float = 4.0
    scale: tuple[float, float] = (0.9, 1.1)
    flip: float = 0.5
    centre_shift_px: float = 20.0
    thickness_mm: tuple[float, float] = (1.0, 6.0)
    p_thickness: float = 0.6
    column_blur_px: tuple[float, float] = (0.0, 1.5)
    gain: tuple[float, float] = (0.8, 1.25)
    offset: tuple[float, float] = (-0.04, 0.04)
    gamma: tuple[float, float] = (0.7, 1.4)
    noise: tuple[float, float] = (0.0, 0.03)
    p_short: float = 0.25
    short_rows: tuple[int, int] = (80, 260)
    #: Share of windows placed anywhere in the scan (the rest are centred near a level, jittered).
    p_anywhere: float = 0.4

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def row_targets(rows: int, level_rows, sigma: float) -> np.ndarray:
    """``[rows, levels]`` Gaussian row profiles (peak 1) around each level row; NaN = level absent."""
    r = np.arange(rows, dtype=np.float32)[:, None]
    centres = np.asarray(level_rows, dtype=np.float32)[None, :]
    present = np.isfinite(centres) & (centres >= -0.5) & (centres <= rows - 0.5)
    out = np.exp(-0.5 * ((r - np.where(present, centres, 0.0)) / sigma) ** 2)
    return np.where(present, out, 0.0).astype(np.float32)


def _sample_rows(image: np.ndarray, source_rows: np.ndarray) -> np.ndarray:
    """Rows of ``image`` at fractional positions (linear); zeros (no scan) outside it."""
    n = image.shape[0]
    r0 = np.floor(source_rows).astype(int)
    f = (source_rows - r0).astype(np.float32).reshape((-1,) + (1,) * (image.ndim - 1))
    a = np.clip(r0, 0, n - 1)
    b = np.clip(r0 + 1, 0, n - 1)
    out = image[a] * (1 - f) + image[b] * f
    inside = (source_rows >= -0.5) & (source_rows <= n - 0.5)
    out[~inside] = 0.0
    return out


def _thicker_slices(image: np.ndarray, thickness: float) -> np.ndarray:
    """What a scan of this slice thickness (and spacing) shows, back on the 1 mm grid: the rows
    averaged over the thickness (partial volume), then sampled every ``thickness`` mm and interpolated."""
    if thickness <= 1.0:
        return image
    smooth = ndimage.uniform_filter1d(image, size=max(1, int(round(thickness))), axis=0, mode="nearest")
    coarse_at = np.arange(0.0, image.shape[0] - 1 + 1e-6, thickness)
    coarse = smooth[np.round(coarse_at).astype(int)]
    rows = np.arange(image.shape[0], dtype=np.float64)
    k = np.clip(np.searchsorted(coarse_at, rows, side="right") - 1, 0, len(coarse_at) - 1)
    k1 = np.minimum(k + 1, len(coarse_at) - 1)
    span = np.where(k1 > k, coarse_at[k1] - coarse_at[k], 1.0)
    f = np.clip((rows - coarse_at[k]) / span, 0, 1).astype(np.float32).reshape((-1,) + (1,) * (image.ndim - 1))
    return coarse[k] * (1 - f) + coarse[k1] * f


def _intensity(image: np.ndarray, rng: np.random.Generator, s: AugmentSettings) -> np.ndarray:
    gain, offset, gamma = rng.uniform(*s.gain), rng.uniform(*s.offset), rng.uniform(*s.gamma)
    body = image > 0
    out = np.clip(image * gain + offset * body, 0, 1) ** gamma
    sd = rng.uniform(*s.noise)
    if sd > 0:
        out = out + rng.normal(0, sd, out.shape).astype(np.float32) * body
    return np.clip(out, 0, 1).astype(np.float32)


def _window_start(rows: int, level_rows, crop: int, rng: np.random.Generator, s: AugmentSettings) -> float:
    """Top row of the window: anywhere that keeps some scan in view, or around a level (jittered)."""
    present = [r for r in level_rows if np.isfinite(r)]
    if present and rng.random() >= s.p_anywhere:
        centre = float(rng.choice(present)) + rng.uniform(-0.4, 0.4) * crop
        return centre - crop / 2
    return rng.uniform(-crop * 0.3, max(rows - crop * 0.7, -crop * 0.3 + 1))


def make_sample(frontal: np.ndarray, sagittal: np.ndarray, centre_cols, level_rows,
                rng: np.random.Generator, settings: AugmentSettings = AugmentSettings(),
                augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One training window: ``x [crop_rows, width_px, 2]`` and ``y [crop_rows, levels]``.

    ``level_rows`` holds each level's centre as a (fractional) projection row, NaN where absent.
    Without ``augment`` only the window is drawn (for validation: same rng seed, same window).
    """
    s = settings
    level_rows = np.asarray(level_rows, dtype=np.float64)
    crop = s.crop_rows
    scale = rng.uniform(*s.scale) if augment else 1.0
    fc, sc = float(centre_cols[0]), float(centre_cols[1])
    if augment:
        fc += rng.uniform(-s.centre_shift_px, s.centre_shift_px)
        sc += rng.uniform(-s.centre_shift_px, s.centre_shift_px) / 2
        if rng.random() < s.flip:  # the patient's left-right only exists in the frontal image
            frontal = frontal[:, ::-1]
            fc = frontal.shape[1] - 1 - fc
    image = np.stack([centre_crop(frontal, fc, s.width_px), centre_crop(sagittal, sc, s.width_px)], axis=-1)

    # Rows of the scaled scan: scaled row q shows original row q / scale; a level at row r moves to r * scale.
    scaled_levels = level_rows * scale
    start = _window_start(int(round(frontal.shape[0] * scale)), scaled_levels, crop, rng, s)
    start = float(np.round(start))
    source = (start + np.arange(crop)) / scale
    if augment and rng.random() < s.p_thickness:
        image = _thicker_slices(image, rng.uniform(*s.thickness_mm))
    x = _sample_rows(image, source)
    out_levels = scaled_levels - start

    visible = (source >= -0.5) & (source <= frontal.shape[0] - 0.5)
    if augment and rng.random() < s.p_short:  # a short scan: keep only a band of the window
        height = int(rng.integers(s.short_rows[0], s.short_rows[1] + 1))
        top = int(rng.integers(0, max(1, crop - height)))
        band = np.zeros(crop, bool)
        band[top:top + height] = True
        visible &= band
    x[~visible] = 0.0
    if visible.any():
        first, last = np.flatnonzero(visible)[[0, -1]]
        out_levels = np.where((out_levels >= first - 0.5) & (out_levels <= last + 0.5), out_levels, np.nan)
    else:
        out_levels = np.full_like(out_levels, np.nan)

    if augment:
        blur = rng.uniform(*s.column_blur_px)
        if blur > 0.2:
            x = ndimage.gaussian_filter1d(x, blur, axis=1)
        for c in range(x.shape[-1]):
            x[..., c] = _intensity(x[..., c], rng, s)
    y = row_targets(crop, out_levels, s.sigma_mm * scale)
    return x.astype(np.float32), y

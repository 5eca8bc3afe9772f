"""Window/level: which values map to black and white on screen.

Width/level in the image's units (HU for CT). Presets follow common radiology practice.
"""

from __future__ import annotations

import numpy as np

#: name -> (width, level)
PRESETS: dict[str, tuple[float, float]] = {
    "abdomen": (350.0, 40.0),
    "liver": (160.0, 60.0),
    "lung": (1400.0, -500.0),
    "bone": (1800.0, 400.0),
    "brain": (80.0, 40.0),
}


def levels(width: float, level: float) -> tuple[float, float]:
    """(low, high) values shown as black and white."""
    width = max(float(width), 1e-6)
    return level - width / 2.0, level + width / 2.0


def from_levels(low: float, high: float) -> tuple[float, float]:
    """(width, level) from (low, high)."""
    return float(high - low), float((high + low) / 2.0)


def auto_window(array: np.ndarray, lower_pct: float = 1.0, upper_pct: float = 99.0,
                max_samples: int = 200_000) -> tuple[float, float]:
    """A (width, level) showing the bulk of the values, from a subsample (cheap on big volumes)."""
    flat = array.reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: flat.size // max_samples + 1]
    if flat.size == 0:
        return 1.0, 0.0
    lo, hi = np.percentile(flat, [lower_pct, upper_pct])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        hi = lo + 1.0
    return from_levels(float(lo), float(hi))


def default_window(volume) -> tuple[float, float]:
    """The window a volume opens with: its stored one, the abdomen preset for CT, else automatic."""
    if volume.window is not None:
        return volume.window
    if volume.modality == "CT":
        return PRESETS["abdomen"]
    return auto_window(volume.array)


def apply_window(values: np.ndarray, width: float, level: float) -> np.ndarray:
    """Values mapped to uint8 grey (0 black .. 255 white) through the window."""
    lo, hi = levels(width, level)
    scaled = (values.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(scaled, 0, 255).astype(np.uint8)

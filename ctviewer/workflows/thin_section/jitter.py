"""Small random colour changes of thin-section photos for training: brightness, contrast, saturation, hue.

Photos of the same rock differ in exposure, white balance and stain intensity from one microscope
session to the next; a network trained on a few photos should not depend on the exact shade. The
changes are one 3x3 colour matrix plus an offset per crop, in a luma / colour-difference space
(Rec. 709 luma, the ``luminance`` the gray-bin labels are made from): saturation and hue change only
the colour, so a pixel's luma, and with it its gray-bin class, stays the same (up to clipping);
brightness and contrast do change it, which is why they should stay small.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ctviewer.errors import InputError

#: Rec. 709 luma weights (skimage.color.rgb2gray, ctviewer.imaging.bins.luminance).
LUMA = np.array([0.2125, 0.7154, 0.0721])
# rgb -> (luma, blue - luma, red - luma), and back
_TO_YCC = np.array([LUMA, [0.0, 0.0, 1.0] - LUMA, [1.0, 0.0, 0.0] - LUMA])
_FROM_YCC = np.linalg.inv(_TO_YCC)


def check_settings(settings, what: str, fits, expected) -> None:
    """Every field of a settings dataclass a plain number that ``fits(name, value)``, else one line naming
    ``what`` and the field; stored as float. Shared by colour_jitter and photo_variation."""
    for name, value in asdict(settings).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not fits(name, value):
            raise InputError(f"{what} {name} should be {expected(name)}, not {value!r}")
        setattr(settings, name, float(value))


@dataclass
class ColourJitter:
    """Largest change of each kind: brightness and contrast as factors in [1 - b, 1 + b], saturation
    likewise, hue as a turn of the colour plane of up to +-``hue`` of a full circle."""

    brightness: float = 0.05
    contrast: float = 0.05
    saturation: float = 0.1
    hue: float = 0.02

    def __post_init__(self):
        check_settings(self, "colour_jitter", lambda name, value: 0 <= value < 1, lambda name: "a number in [0, 1)")

    @classmethod
    def from_config(cls, value) -> "ColourJitter":
        """A number (the same for all four), a table of some of them, or a ColourJitter."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(asdict(cls())))
            if unknown:
                raise InputError(f"unknown colour_jitter key(s) {', '.join(unknown)} "
                                 f"(known: brightness, contrast, saturation, hue)")
            return cls(**{k: value.get(k, 0.0) for k in asdict(cls())})
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(value, value, value, value)
        raise InputError(f"colour_jitter should be a number or a table (brightness, contrast, saturation, hue), "
                         f"not {value!r}")

    @property
    def active(self) -> bool:
        return any(asdict(self).values())

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A changed copy of ``image`` (``[y, x, 3]`` float32 RGB in 0..1), clipped to 0..1."""
        b, c, s = (1.0 + rng.uniform(-v, v) for v in (self.brightness, self.contrast, self.saturation))
        angle = 2 * np.pi * rng.uniform(-self.hue, self.hue)
        cos, sin = np.cos(angle), np.sin(angle)
        change = np.diag([b * c, s, s])
        change[1:, 1:] = s * np.array([[cos, -sin], [sin, cos]])
        matrix = _FROM_YCC @ change @ _TO_YCC
        # contrast about the crop's mean luma, so it spreads the tones without shifting them
        mean_luma = float(np.mean(image @ LUMA))
        offset = _FROM_YCC @ np.array([b * (1.0 - c) * mean_luma, 0.0, 0.0])
        out = image @ matrix.T.astype(np.float32) + offset.astype(np.float32)
        return np.clip(out, 0.0, 1.0, out=out)

"""What a geologist reads off a classified thin section: class fractions and recoloured images.

Fractions are % of the *labelled* pixels (0 = unlabelled is left out), so a photo with an
unlabelled border gives the same porosity as its cropped interior. Recolouring paints each class
in a fixed colour, by default the class's mean colour in the photo (blue epoxy stays blue), never
the class id read as an intensity.
"""

from __future__ import annotations

import numpy as np

from ctviewer.data.labels import LabelTable, default_colour

#: The class that is blue-dye epoxy in the thin-section table: its fraction is the visual porosity.
POROSITY_CLASS = 3


def class_fractions(ids, class_ids) -> dict[int, float]:
    """% of the labelled (non-zero) pixels in each class; 0.0 for absent classes or no labels."""
    counts = np.bincount(np.asarray(ids).ravel(), minlength=256)
    labelled = counts[1:].sum()
    return {int(c): (100.0 * counts[c] / labelled if labelled else 0.0) for c in class_ids}


def class_mean_colours(rgb, ids, class_ids, table: LabelTable | None = None) -> dict[int, tuple[int, int, int]]:
    """The mean photo colour of each class's pixels; a class absent from the photo gets its colour
    in ``table`` (the thin-section table by default)."""
    if table is None:
        from ctviewer.imaging.bins import thin_section_table

        table = thin_section_table()
    flat = np.asarray(ids).ravel()
    counts = np.bincount(flat, minlength=256)
    pixels = np.asarray(rgb)[..., :3].reshape(-1, 3).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=pixels[:, c], minlength=256) for c in range(3)], axis=1)
    colours = {}
    for c in class_ids:
        if counts[c]:
            colours[int(c)] = tuple(int(v) for v in np.round(sums[c] / counts[c]))
        else:
            colours[int(c)] = tuple(table[c].colour) if c in table else default_colour(int(c))
    return colours


def recolour(ids, colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """``[y, x, 3]`` uint8 with each class in its colour; 0 and classes without a colour are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for c, colour in colours.items():
        lut[int(c)] = colour
    return lut[np.asarray(ids, dtype=np.uint8)]

"""Class fractions, mean colours and recolouring of classified thin sections, on arrays small enough to count by hand."""

from __future__ import annotations

import numpy as np

from ctviewer.imaging.bins import thin_section_table
from ctviewer.workflows.thin_section.classes import (
    POROSITY_CLASS, class_fractions, class_mean_colours, recolour)

# 8 pixels: 2 unlabelled, then class 1 ×3, class 3 ×2, class 5 ×1 (6 labelled)
IDS = np.array([[0, 1, 1, 1], [3, 3, 5, 0]], np.uint8)
RGB = np.array([[[9, 9, 9], [10, 20, 30], [20, 40, 60], [30, 60, 91]],
                [[0, 0, 250], [10, 10, 240], [200, 200, 200], [255, 255, 255]]], np.uint8)


def test_fractions_are_percent_of_labelled_pixels():
    fractions = class_fractions(IDS, [1, 2, 3, 4, 5])
    assert fractions == {1: 50.0, 2: 0.0, 3: 100 * 2 / 6, 4: 0.0, 5: 100 * 1 / 6}
    assert POROSITY_CLASS == 3 and thin_section_table().name(POROSITY_CLASS).startswith("blue-dye epoxy")


def test_fractions_of_an_unlabelled_image_are_zero():
    assert class_fractions(np.zeros((3, 3), np.uint8), [1, 2]) == {1: 0.0, 2: 0.0}


def test_mean_colours_and_absent_classes_get_the_table_colour():
    colours = class_mean_colours(RGB, IDS, [1, 2, 3, 5])
    # class 1: mean of (10,20,30), (20,40,60), (30,60,91) = (20, 40, 60.33); class 3: (5, 5, 245)
    assert colours[1] == (20, 40, 60) and colours[3] == (5, 5, 245) and colours[5] == (200, 200, 200)
    assert colours[2] == thin_section_table()[2].colour  # no class-2 pixel in this photo


def test_recolour_paints_classes_and_leaves_unlabelled_black():
    out = recolour(IDS, {1: (255, 0, 0), 3: (0, 0, 255)})
    assert out.shape == (2, 4, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (0, 0, 0) and tuple(out[0, 1]) == (255, 0, 0)
    assert tuple(out[1, 0]) == (0, 0, 255) and tuple(out[1, 2]) == (0, 0, 0)  # class 5 has no colour given

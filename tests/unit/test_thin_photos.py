"""Thin-section photos become [y, x, 3] uint8 whatever the file holds; label images become class ids."""

from __future__ import annotations

import os

import numpy as np
import png
import pytest
import tifffile
from PIL import Image

from ctviewer.data.labels import Label, LabelTable
from ctviewer.errors import InputError
from ctviewer.imaging.bins import thin_section_table
from ctviewer.workflows.thin_section.photos import (
    image_size, read_label_image, read_photo_rgb, write_label_image, write_rgb_png)


def _rgb(h=5, w=7) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


# -- photos ------------------------------------------------------------------------------------
def test_rgb_png_reads_as_stored(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    rgb = read_photo_rgb(tmp_path / "a.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 7, 3) and np.array_equal(rgb, _rgb())


def test_transparent_pixels_keep_their_colours_or_are_composited_on_a_background(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (100, 0, 200)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0      # invisible: white
    rgba[0, 1, 3] = 128    # half: halfway to white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = read_photo_rgb(tmp_path / "a.png", background=(255, 255, 255))
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert np.abs(rgb[0, 1].astype(int) - (177, 127, 227)).max() <= 1
    assert tuple(rgb[1, 2]) == (100, 0, 200)
    # by default the stored colours (what the viewer shows and the published labels were made from)
    assert tuple(read_photo_rgb(tmp_path / "a.png")[0, 0]) == (100, 0, 200)


def test_cmyk_jpeg_and_tiff_become_rgb(tmp_path):
    flat = np.full((8, 8, 3), (200, 40, 40), np.uint8)  # flat colour: JPEG keeps it nearly exact
    for name in ("cmyk.jpg", "cmyk.tif"):
        Image.fromarray(flat).convert("CMYK").save(tmp_path / name)
        rgb = read_photo_rgb(tmp_path / name)
        assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
        assert np.abs(rgb.astype(int) - flat).max() <= 8, name


def test_16_bit_grey_and_colour_are_scaled_by_the_dtype_range(tmp_path):
    grey = np.array([[0, 257 * 100], [65535, 257 * 10]], np.uint16)  # dim photo: not stretched
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    rgb = read_photo_rgb(tmp_path / "grey16.png")
    assert rgb.shape == (2, 2, 3) and np.array_equal(rgb[..., 0], [[0, 100], [255, 10]])
    assert np.array_equal(rgb[..., 0], rgb[..., 2])

    colour = np.array([[[0, 257 * 50, 65535], [257 * 200, 0, 0]]], np.uint16)
    with open(tmp_path / "colour16.png", "wb") as fh:
        png.Writer(2, 1, bitdepth=16, greyscale=False).write(fh, colour.reshape(1, -1).tolist())
    assert np.array_equal(read_photo_rgb(tmp_path / "colour16.png"), [[[0, 50, 255], [200, 0, 0]]])
    tifffile.imwrite(tmp_path / "colour16.tif", colour, photometric="rgb")
    assert np.array_equal(read_photo_rgb(tmp_path / "colour16.tif"), [[[0, 50, 255], [200, 0, 0]]])


def test_8_bit_grey_and_palette(tmp_path):
    grey = np.array([[0, 90], [180, 255]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.array_equal(read_photo_rgb(tmp_path / "grey.png"), np.repeat(grey[..., None], 3, axis=2))
    palette = Image.fromarray(_rgb()).quantize(colors=8)
    palette.save(tmp_path / "palette.png")
    assert np.array_equal(read_photo_rgb(tmp_path / "palette.png"), np.asarray(palette.convert("RGB")))


def test_a_tiff_stack_and_a_text_file_are_refused_naming_the_file(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="stack of 3 pages") as err:
        read_photo_rgb(tmp_path / "stack.tif")
    assert "stack.tif" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "notes.png").write_text("these are my notes, not a photo\n")
    with pytest.raises(InputError) as err:
        read_photo_rgb(tmp_path / "notes.png")
    assert "notes.png" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="stack of 3 pages"):
        image_size(tmp_path / "stack.tif")


def test_real_thin_section_photos(shared_data):
    folder = shared_data / "thin_sections"
    for n in range(1, 10):
        rgb = read_photo_rgb(folder / "images" / f"{n}.png")
        labels = read_label_image(folder / "labels" / f"{n}.png", thin_section_table())
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert labels.shape == rgb.shape[:2] and set(np.unique(labels)) <= {1, 2, 3, 4, 5}
        assert image_size(folder / "images" / f"{n}.png") == (rgb.shape[1], rgb.shape[0])


# -- label images ------------------------------------------------------------------------------
IDS = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)


def test_grey_palette_and_equal_channel_labels(tmp_path):
    Image.fromarray(IDS).save(tmp_path / "grey.png")
    palette = Image.fromarray(IDS, "P")
    palette.putpalette([v for i in range(256) for v in (i * 40 % 256, 0, 255 - i)])
    palette.save(tmp_path / "palette.png")
    Image.fromarray(np.repeat(IDS[..., None], 3, axis=2)).save(tmp_path / "rgb_equal.png")
    for name in ("grey.png", "palette.png", "rgb_equal.png"):
        ids = read_label_image(tmp_path / name, thin_section_table())
        assert ids.dtype == np.uint8 and np.array_equal(ids, IDS), name


def test_colour_labels_are_matched_to_the_table_colours(tmp_path):
    table = thin_section_table()
    lut = np.zeros((256, 3), np.uint8)
    for lab in table:
        lut[lab.id] = lab.colour
    Image.fromarray(lut[IDS]).save(tmp_path / "colour.png")
    assert np.array_equal(read_label_image(tmp_path / "colour.png", table), IDS)
    other = lut[IDS].copy()
    other[0, 0] = (1, 2, 3)
    Image.fromarray(other).save(tmp_path / "odd.png")
    with pytest.raises(InputError, match=r"colours #010203 are not colours of the class table \(1-5\)"):
        read_label_image(tmp_path / "odd.png", table)


def test_values_outside_the_table_name_file_values_and_range(tmp_path):
    ids = IDS.copy()
    ids[0, 0], ids[1, 1] = 7, 9
    os.mkdir(tmp_path / "labels")
    Image.fromarray(ids).save(tmp_path / "labels" / "3.png")
    with pytest.raises(InputError) as err:
        read_label_image(tmp_path / "labels" / "3.png", thin_section_table())
    assert str(err.value) == f"{tmp_path / 'labels' / '3.png'}: values 7, 9 are not classes of the table (1-5)"
    gappy = LabelTable([Label(1, "a", (1, 1, 1)), Label(2, "b", (2, 2, 2)), Label(4, "c", (4, 4, 4))])
    with pytest.raises(InputError, match=r"values 3, 5, 7, 9 are not classes of the table \(1-2, 4\)"):
        read_label_image(tmp_path / "labels" / "3.png", gappy)
    assert read_label_image(tmp_path / "labels" / "3.png")[0, 0] == 7  # no table: any 8-bit id
    Image.fromarray(np.where(ids == 7, 1, ids).astype(np.uint8)).save(tmp_path / "labels" / "3.png")
    with pytest.raises(InputError, match=r"value 9 is not a class of the table \(1-5\)"):
        read_label_image(tmp_path / "labels" / "3.png", thin_section_table())


def test_16_bit_label_values_that_do_not_fit_8_bits_are_refused(tmp_path):
    Image.fromarray(np.array([[0, 300]], np.uint16)).save(tmp_path / "wide.png")
    with pytest.raises(InputError, match=r"wide.png: value 300 does not fit an 8-bit class id \(0-255\)"):
        read_label_image(tmp_path / "wide.png")


def test_label_and_rgb_round_trip_atomically(tmp_path):
    path = write_label_image(IDS, tmp_path / "ids.png")
    assert np.array_equal(read_label_image(path), IDS)
    assert Image.open(path).mode == "L"
    rgb = write_rgb_png(_rgb(), tmp_path / "colour.png")
    assert np.array_equal(read_photo_rgb(rgb), _rgb())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colour.png", "ids.png"]  # no temporaries left
    with pytest.raises(InputError, match="0-255"):
        write_label_image(np.array([[256]]), tmp_path / "ids.png")
    assert np.array_equal(read_label_image(path), IDS)  # a refused save leaves the old file whole

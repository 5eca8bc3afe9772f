"""Thin-section photos and their label images as plain arrays.

A photo is ``[y, x, 3]`` uint8 RGB whatever the file holds (grey, 16-bit, CMYK, palette, alpha),
so colours mean the same in every photo of a project. A label image is ``[y, x]`` uint8 class
ids (0 = unlabelled), read from grey, palette or RGB PNGs as the seed's tools write them
(keras-segmentation annotations are grey or three equal channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctviewer.data.labels import LabelTable, id_ranges
from ctviewer.errors import InputError
from ctviewer.io.atomic import atomic_path

# -- photos ------------------------------------------------------------------------------------
def read_photo_rgb(path, background: tuple[int, int, int] | None = None) -> np.ndarray:
    """``[y, x, 3]`` uint8 RGB of a photo file.

    Grey becomes three equal channels; 16-bit and other integer images are scaled by their
    dtype's range (not each photo's min/max, so photos stay comparable). Where the photo is
    not opaque it is composited on ``background`` (e.g. white); by default the stored colours under
    the alpha are kept: the viewer shows those (it drops alpha), and the published thin-section
    labels were made from them (their transparent rounded corners are black, class 1), so training,
    prediction and what the user sees agree.
    """
    from ctviewer.io.photo import load_photo

    path = Path(path)
    try:
        volume = load_photo(path)
    except OSError as exc:
        raise InputError(f"cannot read photo: {exc.strerror or exc}", path) from None
    if volume.shape[0] != 1:
        raise InputError(f"holds a stack of {volume.shape[0]} pages; a thin-section photo is one image", path)
    rgb = _to_uint8(volume.array[0], path)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if background is not None and any("transparency" in w for w in volume.warnings):
        alpha = _alpha(path)
        if alpha is not None and alpha.shape == rgb.shape[:2]:
            a = alpha[..., None]
            rgb = (rgb * a + np.asarray(background, np.float32) * (1 - a) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def _to_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "ui":
        top = float(np.iinfo(array.dtype).max)
        return (np.clip(array, 0, None) * (255.0 / top) + 0.5).astype(np.uint8)
    if array.dtype.kind == "f" and np.nanmin(array) >= 0 and np.nanmax(array) <= 1:
        return (np.nan_to_num(array) * 255 + 0.5).astype(np.uint8)
    raise InputError(f"holds {array.dtype} values outside 0..1; save the photo as 8- or 16-bit", path)


def _alpha(path: Path) -> np.ndarray | None:
    """Opacity 0..1 (float32) of a photo with transparency; 8 bits of it are plenty to composite."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
    except (OSError, ValueError):  # e.g. a 16-bit RGBA TIFF Pillow cannot decode: tifffile can
        import tifffile

        array = tifffile.imread(path)
        if array.ndim == 3 and array.shape[-1] in (2, 4):
            return array[..., -1].astype(np.float32) / float(np.iinfo(array.dtype).max)
        return None


def image_size(path) -> tuple[int, int]:
    """(width, height) of a photo or label image from its header, without decoding the pixels."""
    from ctviewer.io.photo import PhotoReader

    path = Path(path)
    try:
        items = PhotoReader().examine(path)
    except OSError as exc:
        raise InputError(f"cannot read image: {exc.strerror or exc}", path) from None
    if not items:
        raise InputError("not an image (PNG, JPEG, TIFF, BMP)", path)
    if items[0].n_slices > 1:
        raise InputError(f"holds a stack of {items[0].n_slices} pages; a thin-section photo is one image", path)
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except OSError:  # a TIFF only tifffile reads
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)


def write_rgb_png(rgb, path) -> Path:
    """Save ``[y, x, 3]`` uint8 RGB as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"an RGB PNG needs [y, x, 3] uint8, got {rgb.dtype} {rgb.shape}", path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(tmp, format="PNG")
    return path


# -- label images ------------------------------------------------------------------------------
def read_label_image(path, table: LabelTable | None = None) -> np.ndarray:
    """``[y, x]`` uint8 class ids of a label image.

    Grey: the values; palette: the palette indices; RGB with equal channels: the value; RGB in
    colour: each colour matched exactly to a colour of ``table`` (the thin-section table when
    none is given). With a table, values that are not its classes (0 = unlabelled is always
    allowed) are refused, naming them.
    """
    from PIL import Image

    from ctviewer.io.photo import _pillow_errors, _why

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if getattr(im, "n_frames", 1) > 1:
                raise InputError(f"holds {im.n_frames} pages; a label image is one image", path)
            ids_as_stored = im.mode in ("L", "P", "RGB", "I", "1") or im.mode.startswith("I;16")
            array = np.asarray(im if ids_as_stored else im.convert("RGB"))
    except _pillow_errors() as exc:
        raise InputError(f"cannot read label image: {_why(exc)}", path) from None
    if array.ndim == 3:
        array = _ids_from_rgb(array[..., :3], table, path)
    _check_values(array, table, path)
    return array.astype(np.uint8)


def _ids_from_rgb(rgb: np.ndarray, table: LabelTable | None, path: Path) -> np.ndarray:
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    if table is None:
        from ctviewer.imaging.bins import thin_section_table

        table = thin_section_table()
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    colours, inverse = np.unique(packed, return_inverse=True)
    by_colour = {(c[0] << 16) | (c[1] << 8) | c[2]: lab.id for lab in table for c in [lab.colour]}
    by_colour[0] = 0  # black = unlabelled
    unknown = [int(c) for c in colours if int(c) not in by_colour]
    if unknown:
        shown = ", ".join(f"#{c:06x}" for c in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InputError(f"colours {shown} are not colours of the class table "
                         f"({id_ranges(table.ids) or 'none'}); save labels as grey class ids", path)
    ids = np.array([by_colour[int(c)] for c in colours], dtype=np.int64)
    return ids[inverse].reshape(packed.shape)


def _check_values(array: np.ndarray, table: LabelTable | None, path: Path) -> None:
    present = np.unique(array)
    if table is None:
        bad, allowed = [int(v) for v in present if not 0 <= v <= 255], "0-255"
        what = ("do not fit 8-bit class ids", "does not fit an 8-bit class id")
    else:
        known = set(table.ids) | {0}
        bad, allowed = [int(v) for v in present if int(v) not in known], id_ranges(table.ids) or "none"
        what = ("are not classes of the table", "is not a class of the table")
    if bad:
        shown = ", ".join(str(v) for v in bad[:8]) + (" ..." if len(bad) > 8 else "")
        many = len(bad) > 1
        raise InputError(f"value{'s' if many else ''} {shown} {what[0] if many else what[1]} ({allowed})", path)


def write_label_image(array, path) -> Path:
    """Save ``[y, x]`` class ids as a grey 8-bit PNG, atomically."""
    from PIL import Image

    path = Path(path)
    ids = np.asarray(array)
    if ids.ndim != 2 or ids.dtype.kind not in "uib" or (ids.size and (ids.min() < 0 or ids.max() > 255)):
        raise InputError(f"a label image needs [y, x] class ids 0-255, got {ids.dtype} {ids.shape}", path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(ids.astype(np.uint8)), "L").save(tmp, format="PNG")
    return path

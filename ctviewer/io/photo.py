"""Photos (PNG, JPEG, TIFF, BMP) as one-slice studies, read with Pillow (and tifffile, pypng).

Colour images become RGB ``[1, y, x, 3]`` (uint8, or uint16 for 16-bit colour); grey images
become ``[1, y, x]`` in their own dtype, so a 16-bit micrograph or a label PNG stays a grey image
with its values. Pixels are the unit (spacing 1, ``meta['pixel_units']``). Pillow truncates
16-bit colour to 8 bits, so those PNGs are read with pypng and those TIFFs with tifffile,
which also reads multi-page stacks as volumes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io import guards
from ctviewer.io.label_files import format_suffix
from ctviewer.io.registry import Loadable

_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"II*\x00", "tiff"),
          (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"), (b"BM", "bmp"))


def sniff(path: Path) -> str | None:
    """The image format by its first bytes ('png', 'jpeg', 'tiff', 'bmp'), or None.

    A DICOM file's 128-byte preamble may hold a TIFF header (dual-personality files): the
    'DICM' marker after it wins, so the DICOM reader gets those files.
    """
    with open(path, "rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return None
    return next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)


class PhotoReader:
    name = "photo"

    def examine(self, path: Path) -> list[Loadable]:
        path = Path(path)
        if path.is_dir():
            return []
        claimed = format_suffix(path) in _SUFFIXES
        if path.stat().st_size == 0:
            if claimed:
                raise InputError("cannot read image: file is empty", path)
            return []
        fmt = sniff(path)
        if fmt is None:
            if claimed:
                raise InputError(f"cannot read image: not a {format_suffix(path)[1:].upper()} file "
                                 "(its first bytes are not an image signature)", path)
            return []
        try:
            size = _size(path)
        except InputError:
            if claimed:
                raise
            return []  # a signature by chance ("BM..." text) in a file not named as an image
        _check_claimed_size(path, fmt, size)
        pages = _tiff_pages(path) if fmt == "tiff" else 1
        what = f"{pages} pages of {size[0]}×{size[1]}" if pages > 1 else f"{size[0]}×{size[1]} {fmt.upper()}"
        return [Loadable(path, f"{path.name} — {what}", "photo", 0.9 if claimed else 0.6,
                         lambda progress=None, cancel=None: load_photo(path), n_slices=pages)]


# -- reading -----------------------------------------------------------------------------------
def _pillow_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error,
            Image.DecompressionBombError, zlib.error)


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except _pillow_errors() as exc:
        if sniff(path) == "tiff":  # tifffile may still read what Pillow cannot
            return _tiff_size(path)
        raise InputError(f"cannot read image: {_why(exc)}", path) from exc


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _check_claimed_size(path: Path, fmt: str, size: tuple[int, int]) -> None:
    """Before decoding: the pixels the header claims must fit in memory, and a PNG's must fit in
    what its deflate data can inflate to (a 100-byte PNG cannot hold 20000 x 20000 pixels)."""
    width, height = size
    guards.check_memory(width * height * 4, path, "the photo")  # RGBA 8-bit: the widest Pillow gives
    if fmt != "png":
        return
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[12:16] != b"IHDR":
        return  # Pillow says what is wrong
    bit_depth, colour_type = head[24], head[25]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type, 1)
    raw = height * (1 + -(-width * channels * bit_depth // 8))  # a filter byte per row
    if raw > path.stat().st_size * guards.DEFLATE_MAX_RATIO:
        raise InputError(f"PNG header claims {width}x{height} pixels but the file is too small to hold "
                         "them (truncated or corrupt)", path)
    _check_png_chunks(path)


def _check_png_chunks(path: Path) -> None:
    """Every chunk's length must end inside the file: Pillow reads a chunk by its claimed length,
    so one byte changed in a length makes it ask for a gigabyte before finding the file short."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        position = 8
        while position + 8 <= size:
            fh.seek(position)
            length, kind = struct.unpack(">I4s", fh.read(8))
            end = position + 12 + length  # length, type, data, CRC
            if end > size:
                name = kind.decode("latin-1") if kind.isalpha() else repr(kind)
                raise InputError(f"PNG chunk {name} claims {length:,} bytes, past the end of the file "
                                 "(truncated or corrupt)", path)
            if kind == b"IEND":
                return
            position = end


def load_photo(path: Path) -> Volume:
    path = Path(path)
    fmt = sniff(path)
    warnings: list[str] = []
    if fmt == "tiff" and _needs_tifffile(path):
        array = _read_tiff(path, warnings)  # already [pages, y, x(, 3)]
    elif fmt == "png" and _is_png16_colour(path):
        array = _drop_alpha(_read_png16(path), warnings, 65535)[None]
    else:
        array = _read_pillow(path, warnings)[None]
    stack = array.shape[0] > 1
    if stack:
        warnings.append("spacing unknown: pages of a TIFF stack taken as 1 pixel apart")
    return Volume(np.ascontiguousarray(array), modality="" if stack else "XC", name=path.name,
                  source=str(path), warnings=warnings, meta={"format": "photo", "pixel_units": True})


def _drop_alpha(array: np.ndarray, warnings: list[str], opaque: int) -> np.ndarray:
    """Colour without alpha (grey + alpha -> grey); tell the user when transparency was lost."""
    if array.ndim == 3 and array.shape[-1] in (2, 4):
        if not np.all(array[..., -1] == opaque):
            warnings.append("the image's transparency (alpha) was dropped")
        array = array[..., :-1]
        if array.shape[-1] == 1:
            array = array[..., 0]
    return array


def _read_pillow(path: Path, warnings: list[str]) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # decodes now, so a truncated file fails here and not later
            return _pillow_array(im, warnings)
    except _pillow_errors() as exc:
        raise InputError(f"cannot read image: {_why(exc)}", path) from exc


def _pillow_array(im, warnings: list[str]) -> np.ndarray:
    mode = im.mode
    if mode == "P" and "transparency" in im.info or mode == "PA":
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "RGBa", "LA", "La"):
        return _drop_alpha(np.asarray(im), warnings, 255)
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode in ("L", "F", "RGB") or mode.startswith("I;16"):
        array = np.asarray(im)
        return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))
    if mode == "I":  # older Pillow gives 16-bit PNG/TIFF as 32-bit "I"; keep it 16-bit when it fits
        array = np.asarray(im)
        return array.astype(np.uint16) if array.size and array.min() >= 0 and array.max() <= 65535 else array
    return np.asarray(im.convert("RGB"))  # palette, CMYK, YCbCr, LAB, HSV


# -- 16-bit colour PNG (Pillow would cut it to 8 bits), read with pypng ------------------------
def _png_errors() -> tuple[type[BaseException], ...]:
    import png

    # pypng's own errors, plus what a damaged stream raises from below it (zlib, short or
    # missing data in an interlace pass)
    return (png.Error, zlib.error, EOFError, struct.error, ValueError, IndexError, OSError)


def _is_png16_colour(path: Path) -> bool:
    """A 16-bit PNG with colour or with alpha: the ones Pillow would cut to 8 bits.

    A header pypng cannot read is left to Pillow, which reads it or says why not.
    """
    import png

    try:
        with open(path, "rb") as fh:
            reader = png.Reader(file=fh)
            reader.preamble()
            return reader.bitdepth == 16 and (not reader.greyscale or reader.alpha)
    except _png_errors():
        return False


def _read_png16(path: Path) -> np.ndarray:
    """[y, x, samples] uint16 with the stored values (no sBIT rescaling, no tRNS applied)."""
    import png

    try:
        with open(path, "rb") as fh:
            width, height, rows, info = png.Reader(file=fh).read()
            # each row is an array('H') of native-order values; join them without a Python loop per pixel
            values = np.frombuffer(b"".join(rows), dtype=np.uint16)
    except _png_errors() as exc:
        raise InputError(f"cannot read image: corrupt PNG data ({_why(exc)})", path) from exc
    planes = info["planes"]
    if values.size != width * height * planes:
        raise InputError("cannot read image: PNG data is truncated", path)
    return values.reshape(height, width, planes)


# -- TIFF --------------------------------------------------------------------------------------
def _tiff_pages(path: Path) -> int:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.series[0].pages) if tif.series else 1
    except Exception:  # tifffile raises many kinds (ZeroDivisionError, KeyError...) on a broken file
        return 1  # Pillow gets its chance to read it or to say why not


def _tiff_size(path: Path) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception as exc:  # tifffile raises many kinds on a broken file: all mean 'cannot read'
        raise InputError(f"cannot read image: {_why(exc)}", path) from exc


def _needs_tifffile(path: Path) -> bool:
    """Pillow reads ordinary TIFFs; stacks and 16-bit colour need tifffile."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            many = bool(tif.series) and len(tif.series[0].pages) > 1
            return many or (page.bitspersample > 8 and page.samplesperpixel > 1)
    except Exception:  # tifffile raises many kinds (ZeroDivisionError, KeyError...) on a broken file
        return False


def _read_tiff(path: Path, warnings: list[str]) -> np.ndarray:
    """[pages, y, x] or [pages, y, x, 3] from the first series of a TIFF."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            guards.check_memory(int(series.size) * np.dtype(series.dtype).itemsize, path)
            array, axes = series.asarray(), series.axes
            page = tif.pages[0]
            photometric, colormap = page.photometric, page.colormap
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many kinds on a broken file: all mean 'cannot read'
        raise InputError(f"cannot read image: {_why(exc)}", path) from exc
    if "S" in axes:
        array = np.moveaxis(array, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    spatial = axes.index("Y")
    array = array.reshape((-1,) + array.shape[spatial:])  # every leading axis (pages, ...) -> one
    if photometric == tifffile.PHOTOMETRIC.PALETTE and colormap is not None:
        array = (np.asarray(colormap)[:, array] >> 8).astype(np.uint8)
        array = np.moveaxis(array, 0, -1)
    elif photometric == tifffile.PHOTOMETRIC.SEPARATED and array.shape[-1] >= 4:  # CMYK
        cmyk = array[..., :4].astype(np.float32) / np.iinfo(array.dtype).max
        array = (255 * (1 - cmyk[..., :3]) * (1 - cmyk[..., 3:4]) + 0.5).astype(np.uint8)
    elif array.ndim == 4:
        top = np.iinfo(array.dtype).max if np.issubdtype(array.dtype, np.integer) else 1.0
        array = _drop_alpha(array, warnings, top)
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


# -- writing -----------------------------------------------------------------------------------
def write_png(volume: Volume, path: Path) -> None:
    """A one-slice photo (RGB uint8) or an index/grey image (uint8, uint16) as PNG."""
    from PIL import Image

    array = volume.array
    if volume.shape[0] != 1:
        raise InputError(f"PNG holds one slice; this volume has {volume.shape[0]} (save it as NIfTI or NRRD)",
                         path)
    image = array[0]
    if image.dtype == np.bool_:
        image = image.astype(np.uint8)
    if volume.is_rgb and image.dtype == np.uint8:
        Image.fromarray(np.ascontiguousarray(image[..., :3]), "RGB").save(path, format="PNG")
    elif image.ndim == 2 and image.dtype == np.uint8:
        Image.fromarray(np.ascontiguousarray(image), "L").save(path, format="PNG")
    elif image.ndim == 2 and image.dtype == np.uint16:
        Image.fromarray(np.ascontiguousarray(image)).save(path, format="PNG")
    else:
        raise InputError(f"PNG holds 8-bit colour or 8/16-bit grey images, not {image.dtype} "
                         f"{'colour' if volume.is_rgb else 'grey'} (save it as NIfTI, NRRD or .npy)", path)

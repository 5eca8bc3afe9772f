"""Reading DICOM pixels into one preallocated array, slice by slice.

Memory: the output is allocated once in its final dtype and each slice is written into its
place; nothing the size of the volume is ever made twice (no float64, no stacked list of
slices). Speed: uncompressed little-endian slices are read straight from the file into the
output (``readinto``), from byte offsets noted while reading the headers; everything else goes
through pydicom's pixel API (JPEG, JPEG-LS, JPEG 2000, RLE via the pylibjpeg plugins).

Values are ``slope * stored + intercept``. Integral rescales are done in the output's integer
type: modular arithmetic is exact whenever the true result fits, and each slice is checked to
fit before it is written (if one does not, the read starts again with int32).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pydicom

from ctviewer.errors import Cancelled, InputError
from ctviewer.io.dicom_headers import PLAIN_LITTLE_ENDIAN, Header, _reason, first_item, number, value
from ctviewer.progress import CancelToken, Progress, step_progress


@dataclass
class Frame:
    """One 2-D image: a single-frame file, or one frame of a multi-frame file."""

    header: Header
    index: int              # frame index inside its file (0 for single-frame files)
    rows: int
    columns: int
    samples: int
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int | None = None


class _DoesNotFit(Exception):
    """A slice's rescaled values do not fit the output dtype chosen."""


# -- choosing the output dtype -------------------------------------------------------------------

def stored_dtype(dataset) -> np.dtype:
    bits = int(value(dataset, "BitsAllocated", 16) or 16)
    signed = int(value(dataset, "PixelRepresentation", 0) or 0) == 1
    size = {1: 1, 8: 1, 16: 2, 32: 4}.get(bits, 2)
    return np.dtype(f"{'i' if signed and bits != 1 else 'u'}{size}")


def is_colour(dataset) -> bool:
    photometric = str(value(dataset, "PhotometricInterpretation", "") or "").upper()
    return int(value(dataset, "SamplesPerPixel", 1) or 1) > 1 or photometric == "PALETTE COLOR"


def output_dtype(frames: list[Frame]) -> np.dtype:
    """uint8 for colour, float32 for float data or a fractional rescale, else int16 / stored."""
    dataset = frames[0].header.dataset
    if is_colour(dataset):
        return np.dtype(np.uint8)
    if frames[0].header.pixels is not None and frames[0].header.pixels.keyword != "PixelData":
        return np.dtype(np.float32)
    rescales = {(f.slope, f.intercept) for f in frames}
    if any(not float(v).is_integer() for pair in rescales for v in pair):
        return np.dtype(np.float32)
    if rescales == {(1.0, 0.0)}:
        return stored_dtype(dataset)
    return np.dtype(np.int16)


# -- reading -------------------------------------------------------------------------------------

def read_into(out: np.ndarray, slots: list[Frame | None], progress: Progress | None = None,
              cancel: CancelToken | None = None) -> np.ndarray:
    """Fill ``out[k]`` with the pixels of ``slots[k]`` (None: left for the caller to blank).

    Returns ``out``, or a new int32 array where int16 was too small.
    """
    tick = step_progress(progress, cancel, len(slots), "reading DICOM slices")
    try:
        _read_all(out, slots, tick, cancel)
    except _DoesNotFit:
        out = np.empty(out.shape, np.int32)
        try:
            _read_all(out, slots, tick, cancel)
        except _DoesNotFit:  # not even int32: the rescale is nonsense (no scanner stores 2^31 HU)
            worst = max((f for f in slots if f is not None), key=lambda f: abs(f.slope) + abs(f.intercept))
            raise InputError(f"RescaleSlope {worst.slope:g} and RescaleIntercept {worst.intercept:g} give "
                             "values beyond what an image holds (+-2^31)", worst.header.path) from None
    tick(len(slots))
    return out


def _read_all(out, slots, tick, cancel) -> None:
    plain: list[int] = []
    others: dict[str, list[int]] = {}  # slots to decode, by file (a multi-frame file is read once)
    for k, f in enumerate(slots):
        if f is not None and _plain(f):
            plain.append(k)
        elif f is not None:
            others.setdefault(str(f.header.path), []).append(k)
    done = 0
    # Plain slices: file reads and numpy release the GIL, so a few threads overlap the waits.
    workers = min(4, os.cpu_count() or 1, max(1, len(plain)))
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda k: _read_plain(out[k], slots[k], cancel), plain):
            done += 1
            tick(done)
    for ks in others.values():
        for _ in _read_decoded(out, ks, slots):
            done += 1
            tick(done)


def _plain(frame: Frame) -> bool:
    """True where the frame's bytes are a plain little-endian greyscale array in the file."""
    h, ds = frame.header, frame.header.dataset
    return (h.pixels is not None and h.pixels.keyword == "PixelData" and not h.pixels.encapsulated
            and h.pixels.offset >= 0 and h.transfer_syntax in PLAIN_LITTLE_ENDIAN
            and frame.samples == 1 and int(value(ds, "BitsAllocated", 0) or 0) in (8, 16, 32)
            and str(value(ds, "PhotometricInterpretation", "")).upper() in ("MONOCHROME1", "MONOCHROME2"))


def _read_plain(dest: np.ndarray, frame: Frame, cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
    stored = stored_dtype(frame.header.dataset)
    frame_bytes = frame.rows * frame.columns * stored.itemsize
    pixels = frame.header.pixels
    start = pixels.offset + frame.index * frame_bytes
    if (frame.index + 1) * frame_bytes > pixels.length or start + frame_bytes > pixels.file_size:
        have = max(0, min(pixels.length, pixels.file_size - pixels.offset))
        raise InputError(f"pixel data is truncated ({have} of {frame_bytes * frame.header.frame_count} "
                         "bytes)", frame.header.path)
    # read straight into the output where the bytes are the same size; else via a slice buffer
    target = dest.view(stored) if stored.itemsize == dest.dtype.itemsize else np.empty(dest.shape, stored)
    with open(frame.header.path, "rb") as fp:
        fp.seek(start)
        fp.readinto(memoryview(target).cast("B"))
    _fix_unused_bits(target, frame.header.dataset)
    rescale_into(target, frame.slope, frame.intercept, dest)


def _read_decoded(out: np.ndarray, ks: list[int], slots: list[Frame | None]):
    """Decode the frames of one file through pydicom, yielding once per slice written."""
    from pydicom.pixels import iter_pixels

    header = slots[ks[0]].header
    wanted = {slots[k].index: k for k in ks}
    try:
        # a file without preamble must be parsed on trust (force) before pydicom decodes it
        source = _full_dataset(header) if header.needs_full_read else header.path
        for index, arr in enumerate(iter_pixels(source, indices=sorted(wanted))):
            k = wanted[sorted(wanted)[index]]
            _store_decoded(arr, slots[k], out[k])
            yield k
    except (InputError, Cancelled, _DoesNotFit):
        raise
    except Exception as exc:  # decoders raise many kinds; the user needs to know which file
        raise InputError(f"cannot decode pixel data ({_transfer_syntax_name(header)}): {_reason(exc)}",
                         header.path) from exc


def _full_dataset(header: Header):
    """The whole data set, with the transfer syntax it was read with where the file named none."""
    dataset = pydicom.dcmread(header.path, force=True)
    if not getattr(dataset.file_meta, "TransferSyntaxUID", None):
        dataset.file_meta.TransferSyntaxUID = header.transfer_syntax
    return dataset


def _store_decoded(arr: np.ndarray, frame: Frame, dest: np.ndarray) -> None:
    dataset = frame.header.dataset
    if is_colour(dataset):
        dest[...] = _to_rgb8(arr, dataset)
        return
    if arr.ndim != 2 or arr.shape != dest.shape:
        raise InputError(f"frame {frame.index} has shape {arr.shape}, expected {dest.shape}",
                         frame.header.path)
    rescale_into(arr, frame.slope, frame.intercept, dest)


def _to_rgb8(arr: np.ndarray, dataset) -> np.ndarray:
    """Colour as uint8 RGB: palette colour looked up, deeper samples scaled down."""
    from pydicom.pixels import apply_color_lut

    bits = int(value(dataset, "BitsStored", 8) or 8)
    if str(value(dataset, "PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
        arr = apply_color_lut(arr, dataset)
        descriptor = dataset.get("RedPaletteColorLookupTableDescriptor", [0, 0, 8])
        bits = int(descriptor[2]) if len(descriptor) > 2 else 8
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.dtype.itemsize > 1 or bits > 8:
        arr = np.right_shift(arr, max(0, bits - 8))
    return arr[..., :3].astype(np.uint8, copy=False)


def _fix_unused_bits(stored: np.ndarray, dataset) -> None:
    """Clear (or sign-extend) bits above BitsStored where a file left them set, as pydicom does."""
    bits_stored = int(value(dataset, "BitsStored", 0) or 0)
    bits = stored.dtype.itemsize * 8
    if not 0 < bits_stored < bits:
        return
    if stored.dtype.kind == "u":
        if int(stored.max()) >> bits_stored:
            np.bitwise_and(stored, (1 << bits_stored) - 1, out=stored)
        return
    low, high = -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    if int(stored.min()) < low or int(stored.max()) > high:
        shift = bits - bits_stored
        np.left_shift(stored, shift, out=stored)
        np.right_shift(stored, shift, out=stored)


def rescale_into(stored: np.ndarray, slope: float, intercept: float, dest: np.ndarray) -> None:
    """``dest = slope * stored + intercept`` without any float64 or volume-sized temporary.

    ``stored`` may share memory with ``dest`` (same item size): done in place.
    """
    if dest.dtype.kind == "f":
        np.multiply(stored, np.float32(slope), out=dest, dtype=np.float32, casting="unsafe")
        if intercept:
            np.add(dest, np.float32(intercept), out=dest)
        return
    if slope == 1 and intercept == 0 and stored.dtype == dest.dtype:
        if not np.shares_memory(stored, dest):
            np.copyto(dest, stored)
        return
    low, high = sorted((int(stored.min()) * slope + intercept, int(stored.max()) * slope + intercept))
    limits = np.iinfo(dest.dtype)
    if low < limits.min or high > limits.max:
        raise _DoesNotFit()
    # modular integer arithmetic is exact because the true result is known to fit
    kind = dest.dtype.type
    slope_i = np.array(int(slope)).astype(dest.dtype)
    intercept_i = np.array(int(intercept)).astype(dest.dtype)
    if slope == 1:
        np.copyto(dest, stored, casting="unsafe")
    else:
        np.multiply(stored, kind(slope_i), out=dest, dtype=dest.dtype, casting="unsafe")
    if intercept:
        np.add(dest, kind(intercept_i), out=dest)


def _transfer_syntax_name(header: Header) -> str:
    from pydicom.uid import UID

    uid = header.transfer_syntax
    return UID(uid).name if uid else "unknown transfer syntax"


# -- values of a frame ---------------------------------------------------------------------------

def rescale_of(dataset, per_frame=None, shared=None) -> tuple[float, float]:
    """(slope, intercept) from the frame's functional groups or the top level."""
    for group in (per_frame, shared):
        item = first_item(group, "PixelValueTransformationSequence")
        if item is not None:
            return number(item.get("RescaleSlope"), 1.0) or 1.0, number(item.get("RescaleIntercept"), 0.0)
    return number(value(dataset, "RescaleSlope"), 1.0) or 1.0, number(value(dataset, "RescaleIntercept"), 0.0)


def resample_z(array: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 from slices at ``source`` mm onto ``target`` mm.

    Works slice by slice in float32 and keeps the input dtype (rounded for integers).
    """
    out = np.empty((len(target),) + array.shape[1:], array.dtype)
    upper = np.clip(np.searchsorted(source, target, side="right"), 1, len(source) - 1)
    for k, (t, hi) in enumerate(zip(target, upper)):
        lo = hi - 1
        w = float(np.clip((t - source[lo]) / (source[hi] - source[lo]), 0.0, 1.0))
        mixed = array[lo].astype(np.float32) * np.float32(1 - w) + array[hi].astype(np.float32) * np.float32(w)
        out[k] = np.rint(mixed) if array.dtype.kind in "iu" else mixed
    return out

"""Reading DICOM headers once, cheaply, and keeping what loading needs.

A header is read up to the pixel data and no further; where the pixel data element starts is
noted, so that uncompressed slices can later be read straight into the output array without
parsing the header again.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from ctviewer.errors import InputError

#: Transfer syntaxes whose pixel bytes are plain little-endian arrays we can read ourselves.
PLAIN_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_TAGS = {(0x7FE0, 0x0010): "PixelData", (0x7FE0, 0x0008): "FloatPixelData",
               (0x7FE0, 0x0009): "DoubleFloatPixelData"}
_LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}
_VRS_BEFORE_PIXELS = _LONG_LENGTH_VRS | {b"US", b"SS", b"FL", b"FD"}
#: Uncompressed transfer syntaxes (little and big endian): their pixel length is known.
NATIVE = PLAIN_LITTLE_ENDIAN | {"1.2.840.10008.1.2.2"}


@dataclass
class PixelElement:
    """Where the pixel data of a file lies and how it is stored."""

    keyword: str       # PixelData, FloatPixelData, ...
    offset: int        # byte offset of the value in the file
    length: int        # bytes; 0xFFFFFFFF for compressed (encapsulated) data
    file_size: int

    @property
    def encapsulated(self) -> bool:
        return self.length == 0xFFFFFFFF

    @property
    def truncated(self) -> bool:
        return not self.encapsulated and self.offset + self.length > self.file_size


@dataclass
class Header:
    """One file's header, read up to its pixel data."""

    path: Path
    dataset: Dataset
    pixels: PixelElement | None
    #: True where the file had no 'DICM' preamble and was read on trust.
    forced: bool = False

    @property
    def transfer_syntax(self) -> str:
        """The file's transfer syntax; where the meta header lacks one, the encoding read."""
        meta = getattr(self.dataset, "file_meta", None)
        uid = str(getattr(meta, "TransferSyntaxUID", "") or "")
        if uid:
            return uid
        implicit, little = getattr(self.dataset, "original_encoding", (None, None))
        if implicit is None:
            return ""
        return "1.2.840.10008.1.2" if implicit else ("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")

    @property
    def needs_full_read(self) -> bool:
        """True where pydicom cannot decode from the path alone (no preamble, no or deflated
        transfer syntax): the whole data set is read first."""
        meta = getattr(self.dataset, "file_meta", None)
        declared = str(getattr(meta, "TransferSyntaxUID", "") or "")
        return self.forced or not declared or declared == "1.2.840.10008.1.2.1.99"

    @property
    def truncated(self) -> bool:
        """Uncompressed pixel data that runs past the end of the file."""
        return self.pixels is not None and self.transfer_syntax in NATIVE and self.pixels.truncated

    @property
    def sop_class(self) -> str:
        meta = getattr(self.dataset, "file_meta", None)
        return str(value(self.dataset, "SOPClassUID", "") or getattr(meta, "MediaStorageSOPClassUID", "") or "")

    @property
    def is_dicomdir(self) -> bool:
        return self.path.name.upper() == "DICOMDIR" or self.sop_class == DICOMDIR_CLASS

    @property
    def has_image(self) -> bool:
        return self.pixels is not None and "Rows" in self.dataset and "Columns" in self.dataset

    @property
    def frame_count(self) -> int:
        try:
            return max(1, int(number(value(self.dataset, "NumberOfFrames"), 1) or 1))
        except (TypeError, ValueError):
            return 1


def read_header(path: Path) -> Header | None:
    """Read ``path`` up to its pixel data: None where it is clearly not DICOM (judged from the
    first bytes, so other files cost nothing), InputError where it is DICOM but unreadable."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(132)
            preamble = len(head) == 132 and head[128:132] == b"DICM"
            # without preamble, a bare data set starts with a group 0002 or 0008 tag
            if not preamble and head[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x08"):
                return None
            fp.seek(0)
            dataset = pydicom.dcmread(fp, stop_before_pixels=True, force=not preamble)
            pixels = _pixel_element_at(fp, dataset)
    except Exception as exc:  # pydicom raises many kinds on broken files; the user needs one
        raise InputError(f"not a readable DICOM file ({_reason(exc)})", path) from exc
    return Header(path, dataset, pixels, forced=not preamble)


def _pixel_element_at(fp, dataset: Dataset) -> PixelElement | None:
    """Parse the element header where dcmread stopped: is it pixel data, where, how long?"""
    little = getattr(dataset, "original_encoding", (None, True))[1] is not False
    meta = getattr(dataset, "file_meta", None)
    if str(getattr(meta, "TransferSyntaxUID", "")) == "1.2.840.10008.1.2.1.99":
        # deflated: the file position means nothing; let pydicom find the pixels at load time
        return PixelElement("PixelData", -1, 0, 0) if "Rows" in dataset else None
    start = fp.tell()
    head = fp.read(8)
    if len(head) < 8:
        return None
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", head[:4])
    keyword = _PIXEL_TAGS.get((group, element))
    if keyword is None:
        return None
    # trust the bytes over the header's claim: some files say explicit VR and are implicit
    if head[4:6] not in _VRS_BEFORE_PIXELS:
        (length,) = struct.unpack(order + "I", head[4:8])
        offset = start + 8
    elif head[4:6] in _LONG_LENGTH_VRS:
        extra = fp.read(4)
        if len(extra) < 4:
            return PixelElement(keyword, start + 12, 1, start + len(head) + len(extra))
        (length,) = struct.unpack(order + "I", extra)
        offset = start + 12
    else:
        (length,) = struct.unpack(order + "H", head[6:8])
        offset = start + 8
    return PixelElement(keyword, offset, length, os.fstat(fp.fileno()).st_size)


def check_claims(header: Header) -> None:
    """InputError where the header claims more pixels than its file can hold, or than memory can:
    a 3 KB file saying NumberOfFrames 2147483647 is refused here, before a frame list is made."""
    from ctviewer.io import guards

    frames = header.frame_count
    # One frame is one Frame object, its size checked against the pixel data when read, and the
    # series' memory before it is allocated: only a multi-frame claim needs judging here (and the
    # check stays off the path of a 300-file series, where each value read costs microseconds).
    if frames <= 1 or not header.has_image:
        return
    ds, pixels = header.dataset, header.pixels
    rows, columns = int(value(ds, "Rows", 0) or 0), int(value(ds, "Columns", 0) or 0)
    samples = int(value(ds, "SamplesPerPixel", 1) or 1)
    bits = int(value(ds, "BitsAllocated", 16) or 16)
    pixel_count = frames * rows * columns * samples
    stored = (pixel_count + 7) // 8 if bits == 1 else pixel_count * max(1, bits // 8)
    if pixels.offset < 0:  # deflated: only the file's size bounds what it inflates to
        room = pixels.file_size * guards.DEFLATE_MAX_RATIO if pixels.file_size else None
    elif pixels.encapsulated:  # every compressed frame needs at least an 8-byte item header
        room = None
        if frames > max(0, pixels.file_size - pixels.offset) // 8:
            raise InputError(f"NumberOfFrames {frames} cannot fit in the file's "
                             f"{max(0, pixels.file_size - pixels.offset):,} bytes of compressed pixel data",
                             header.path)
    else:
        room = pixels.length if header.transfer_syntax in NATIVE else None
    if room is not None and stored > room:
        raise InputError(f"header claims {frames} frame(s) of {columns}x{rows} ({stored:,} bytes) but the pixel "
                         f"data holds {room:,} bytes", header.path)
    guards.check_memory(pixel_count * max(2, bits // 8), header.path)


def sop_class_name(uid: str) -> str:
    """'RT Plan' for the RT Plan Storage UID; the UID itself where pydicom does not know it."""
    if not uid:
        return "file"
    name = UID(uid).name
    return name.removesuffix(" Storage") if name != uid else f"object of class {uid}"


def _reason(exc: Exception) -> str:
    """The exception's message on one line (decoders explain on several)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text or type(exc).__name__)[:300]


# -- values from a header ------------------------------------------------------------------------

#: Values read for every file of a series, decoded here from their raw bytes: pydicom's general
#: conversion costs ~30 us an element, which made examining a 300-slice folder 3x slower.
_FAST = {
    "Rows": (0x00280010, "US"), "Columns": (0x00280011, "US"), "SamplesPerPixel": (0x00280002, "US"),
    "BitsAllocated": (0x00280100, "US"), "BitsStored": (0x00280101, "US"),
    "PixelRepresentation": (0x00280103, "US"), "NumberOfFrames": (0x00280008, "IS"),
    "InstanceNumber": (0x00200013, "IS"), "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"), "PixelSpacing": (0x00280030, "DS"),
    "RescaleSlope": (0x00281053, "DS"), "RescaleIntercept": (0x00281052, "DS"),
    "SeriesInstanceUID": (0x0020000E, "UI"), "SOPClassUID": (0x00080016, "UI"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    # what groups files that lost their SeriesInstanceUID (dicom_grouping)
    "StudyInstanceUID": (0x0020000D, "UI"), "FrameOfReferenceUID": (0x00200052, "UI"),
    "SeriesNumber": (0x00200011, "IS"), "AcquisitionNumber": (0x00200012, "IS"),
}


def value(dataset: Dataset, keyword: str, default=None):
    """``dataset.get(keyword)``, fast for the per-file values above: numbers come back as a
    list of floats (DS, IS), an int (US) or a stripped string (UI, CS)."""
    if keyword not in _FAST:
        return dataset.get(keyword, default)
    tag, kind = _FAST[keyword]
    elem = dataset.get_item(tag)
    if elem is None:
        return default
    raw = elem.value
    if not isinstance(raw, bytes):  # already converted by pydicom (or set by hand)
        return default if raw is None or raw == "" else raw
    try:
        if kind == "US":
            return struct.unpack(("<" if elem.is_little_endian else ">") + "H", raw[:2])[0] if len(raw) >= 2 else default
        text = raw.decode("latin-1").strip(" \x00")
        if kind in ("DS", "IS"):
            return [float(part) for part in text.split("\\")] if text else default
        return text or default
    except (ValueError, struct.error):
        return dataset.get(keyword, default)  # let pydicom judge what we could not read


def number(value, default: float | None = None) -> float | None:
    """The first number of a DICOM value (DS/IS/multi-valued), or ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None
        if value is None:
            return default
    try:
        result = float(value)
    except (TypeError, ValueError):
        return default
    return result if np.isfinite(result) else default


def vector(value, size: int) -> np.ndarray | None:
    """``size`` floats from a multi-valued element, or None where absent or malformed."""
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (size,) and np.all(np.isfinite(arr)) else None


def first_item(dataset: Dataset | None, keyword: str) -> Dataset | None:
    seq = dataset.get(keyword) if dataset is not None else None
    try:
        return seq[0] if seq else None
    except (TypeError, IndexError):
        return None

"""A DICOM image series: its frames (from classic or enhanced multi-frame headers) and how
they become one :class:`Volume`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.dicom_geometry import plan_layout
from ctviewer.io.dicom_headers import Header, first_item, number, value, vector
from ctviewer.io.dicom_pixels import Frame, is_colour, output_dtype, read_into, resample_z, rescale_of
from ctviewer.progress import CancelToken, Progress


# -- frames from headers -------------------------------------------------------------------------

def frames_of(header: Header) -> list[Frame]:
    """The 2-D images a file holds, each with its own position and rescale."""
    ds = header.dataset
    rows, columns = int(value(ds, "Rows", 0) or 0), int(value(ds, "Columns", 0) or 0)
    samples = int(value(ds, "SamplesPerPixel", 1) or 1)
    instance = _int_or_none(number(value(ds, "InstanceNumber")))
    if rows <= 0 or columns <= 0:
        raise InputError("image has no size (Rows/Columns missing or zero)", header.path)
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    frames = []
    for index in range(header.frame_count):
        group = per_frame[index] if per_frame is not None and index < len(per_frame) else None
        if per_frame is not None:  # enhanced multi-frame: every value may be per frame or shared
            position = _from_groups(group, shared, "PlanePositionSequence", "ImagePositionPatient", 3)
            orientation = _from_groups(group, shared, "PlaneOrientationSequence", "ImageOrientationPatient", 6)
            spacing = _from_groups(group, shared, "PixelMeasuresSequence", "PixelSpacing", 2)
        else:
            single = header.frame_count == 1
            position = vector(value(ds, "ImagePositionPatient"), 3) if single else None
            orientation = vector(value(ds, "ImageOrientationPatient"), 6)
            spacing = _pixel_spacing(ds)
        slope, intercept = rescale_of(ds, group, shared)
        frames.append(Frame(header, index, rows, columns, samples, position, orientation,
                            None if spacing is None else (float(spacing[0]), float(spacing[1])),
                            slope, intercept, instance if header.frame_count == 1 else None))
    if header.frame_count > 1 and per_frame is None:
        _positions_from_offsets(frames, ds)
    return frames


def _from_groups(group, shared, sequence: str, keyword: str, size: int):
    for source in (group, shared):
        item = first_item(source, sequence)
        if item is not None and keyword in item:
            return vector(item.get(keyword), size)
    return None


def _pixel_spacing(ds):
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        spacing = vector(value(ds, keyword), 2)
        if spacing is not None and np.all(spacing > 0):
            return spacing
    return None


def _positions_from_offsets(frames: list[Frame], ds) -> None:
    """RT Dose grids place their frames by GridFrameOffsetVector along the normal."""
    from ctviewer.io.dicom_geometry import in_plane_axes

    origin = vector(value(ds, "ImagePositionPatient"), 3)
    offsets = ds.get("GridFrameOffsetVector")
    if origin is None or offsets is None or len(offsets) != len(frames):
        return
    normal = in_plane_axes(frames[0].orientation if frames[0].orientation is not None else (1, 0, 0, 0, 1, 0))[2]
    for frame, offset in zip(frames, offsets):
        frame.position = origin + float(offset) * normal


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- consistency ----------------------------------------------------------------------------------

def consistent_frames(frames: list[Frame], where: Path) -> tuple[list[Frame], list[str]]:
    """The largest group of frames that share size, samples and orientation (and say so)."""
    def key(f: Frame):
        orientation = None if f.orientation is None else tuple(np.round(f.orientation, 3) + 0.0)
        return (f.rows, f.columns, f.samples, orientation, f.position is not None)

    counts = Counter(key(f) for f in frames)
    if len(counts) == 1:
        return frames, []
    (best, n_best), *rest = counts.most_common()
    if n_best == 1:
        raise InputError(f"series has {len(frames)} images of different sizes or orientations; "
                         "no two can be stacked", where)
    others = ", ".join(f"{n} of {k[0]}x{k[1]}" for k, n in rest)
    warning = (f"series mixes image sizes or orientations; kept the {n_best} slices of "
               f"{best[0]}x{best[1]} that agree, left out {others}")
    return [f for f in frames if key(f) == best], [warning]


# -- the volume -----------------------------------------------------------------------------------

def load_series(frames: list[Frame], name: str, source: Path, warnings: list[str],
                meta: dict, progress: Progress | None = None,
                cancel: CancelToken | None = None) -> Volume:
    """Read ``frames`` (already consistent) into a Volume with exact geometry."""
    first = frames[0].header.dataset
    positioned = all(f.position is not None for f in frames)
    layout = plan_layout(np.array([f.position for f in frames]) if positioned else None,
                         frames[0].orientation, _fallback_spacing(frames[0]),
                         [f.instance_number for f in frames])
    slots = [None if i is None else frames[i] for i in layout.slots]
    shape = (len(slots), frames[0].rows, frames[0].columns) + ((3,) if is_colour(first) else ())
    array = read_into(np.empty(shape, output_dtype(frames)), slots, progress, cancel)
    if any(f is None for f in slots):
        # slice by slice: fancy indexing would copy the whole volume
        blank = min(array[k].min() for k, f in enumerate(slots) if f is not None)
        for k in (k for k, f in enumerate(slots) if f is None):
            array[k] = blank
    instance_numbers = [None if f is None else f.instance_number for f in slots]
    if layout.resample_to is not None:
        array = resample_z(array, layout.resample_from, layout.resample_to)
        instance_numbers = _nearest_instances(instance_numbers, layout.resample_from, layout.resample_to)
    origin = layout.origin if positioned else _unpositioned_origin(frames[0])
    row_spacing, column_spacing = frames[0].pixel_spacing or (1.0, 1.0)
    if "ModalityLUTSequence" in first and "RescaleSlope" not in first:
        warnings = warnings + ["the Modality LUT (a lookup table instead of slope/intercept) is not "
                               "applied; values are as stored"]
    if frames[0].pixel_spacing is None and not _is_photo(first):
        warnings = warnings + ["no pixel spacing in the header; 1 mm assumed"]
    return Volume(array, spacing=(layout.spacing_z, row_spacing, column_spacing), origin=tuple(origin),
                  direction=layout.direction, modality=str(first.get("Modality", "") or ""),
                  name=name, source=str(source), window=_window(first),
                  instance_numbers=instance_numbers if any(n is not None for n in instance_numbers) else None,
                  slice_thickness=_slice_thickness(first), warnings=list(warnings) + layout.warnings,
                  meta=meta)


def _fallback_spacing(frame: Frame) -> float:
    ds = frame.header.dataset
    measures = first_item(first_item(ds, "SharedFunctionalGroupsSequence"), "PixelMeasuresSequence")
    for source in (ds, measures):
        if source is None:
            continue
        for keyword in ("SpacingBetweenSlices", "SliceThickness"):
            value = number(source.get(keyword))
            if value is not None and value > 0:
                return abs(value)
    return 1.0


def _unpositioned_origin(frame: Frame) -> np.ndarray:
    position = vector(value(frame.header.dataset, "ImagePositionPatient"), 3)
    return position if position is not None else np.zeros(3)


def _is_photo(ds) -> bool:
    return is_colour(ds) or str(ds.get("Modality", "")) in ("OT", "XC", "SC", "US", "")


def _window(ds) -> tuple[float, float] | None:
    sources = [ds, first_item(first_item(ds, "SharedFunctionalGroupsSequence"), "FrameVOILUTSequence")]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame:
        sources.append(first_item(per_frame[0], "FrameVOILUTSequence"))
    for source in sources:
        if source is None:
            continue
        width, centre = number(source.get("WindowWidth")), number(source.get("WindowCenter"))
        if width is not None and centre is not None and width > 0:
            return (width, centre)
    return None


def _slice_thickness(ds) -> float | None:
    value = number(ds.get("SliceThickness"))
    if value is None:
        measures = first_item(first_item(ds, "SharedFunctionalGroupsSequence"), "PixelMeasuresSequence")
        value = number(measures.get("SliceThickness")) if measures is not None else None
    return value


def _nearest_instances(numbers, source, target) -> list[int | None]:
    step = float(target[1] - target[0]) if len(target) > 1 else 1.0
    out: list[int | None] = []
    for t in target:
        k = int(np.argmin(np.abs(source - t)))
        out.append(numbers[k] if abs(source[k] - t) < 0.1 * step else None)
    return out

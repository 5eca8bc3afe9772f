"""DICOM-SEG: a label map saved as a DICOM Segmentation over the series it was drawn on (highdicom).

Writing needs the DICOM files the image was read from (``volume.meta["dicom_files"]``, recorded by
:mod:`ctviewer.io.dicom`). Each source frame is matched to voxels of the label map through
geometry (its LPS position and in-plane axes -> label indices), so it does not matter how
:func:`ctviewer.imaging.orientation.to_canonical` flipped or permuted the axes for display; a
label map that is not exactly on the grid of the source frames is refused, never resampled.

What is kept, and where:

* one segment per label present; DICOM numbers segments 1..N in order of our ids;
* our id in the segment's Tracking ID, as ``label <id>`` (with a new Tracking UID). Reading takes
  the ids from there; a SEG from another program keeps its segment numbers as ids;
* the name as Segment Label, the colour as Recommended Display CIELab Value; the coded category
  and type are "Tissue" (SNOMED CT 85756007), as 3D Slicer uses for segments it knows nothing of;
* every source frame gets a frame, empty or not, so the SEG covers its image's whole grid and
  opens over it again (BINARY frames hold one bit a pixel per segment: 300 slices of 512 x 512
  with 3 labels make ~30 MB; LABELMAP, one RLE frame per slice, ~2 MB).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ctviewer.data.labels import Label, LabelMap, LabelTable, default_colour, present_ids
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, step_progress

#: Segmentation Storage and Label Map Segmentation Storage.
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
NEEDS_DICOM = "DICOM-SEG needs the image to come from DICOM files; save as .nii.gz or .seg.nrrd"
_TRACKING_ID = re.compile(r"^label (\d+)$")
#: Type 2 attributes highdicom copies from the source; empty where a source file lacks them.
_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
           "StudyDate", "StudyTime", "ReferringPhysicianName")
_TOLERANCE = 1e-2  # voxels: source frames and label voxels must coincide this closely
ExplicitVRLittleEndian, RLELossless = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5"


def is_dicom_seg(path: str | Path) -> bool:
    """True where ``path`` is a DICOM Segmentation (judged from its header, not its name)."""
    from ctviewer.io.label_files import FORMAT_SUFFIXES, format_suffix

    path = Path(path)
    if format_suffix(path) in FORMAT_SUFFIXES and format_suffix(path) != ".dcm":
        return False
    from ctviewer.io.dicom_headers import read_header

    header = read_header(path)  # None where the first bytes say it is not DICOM
    return header is not None and header.sop_class in SEG_SOP_CLASSES


# -- writing -------------------------------------------------------------------------------------
def write_dicom_seg(labels: LabelMap, image: Volume, path: str | Path, series_description: str = "ctviewer labels",
                    segmentation_type: str = "BINARY", progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> Path:
    """Save ``labels`` (on the grid of ``image``) as a DICOM-SEG referencing ``image``'s DICOM files.

    ``segmentation_type`` is "BINARY" (read by every DICOM-SEG consumer) or "LABELMAP" (one
    frame per slice, RLE compressed; DICOM 2024 and later).
    """
    import highdicom as hd

    from ctviewer.io.atomic import atomic_path
    from ctviewer.io.dicom_headers import read_header

    path = Path(path)
    files = image.meta.get("dicom_files")
    if not files:
        raise InputError(NEEDS_DICOM, path)
    if labels.volume.shape != image.shape:
        raise InputError(f"label map is {labels.volume.shape[::-1]} voxels (x, y, z) but the image is "
                         f"{image.shape[::-1]}", path)
    ids = [i for i in present_ids(labels.array) if i != 0]
    if not ids:
        raise InputError("the label map is empty: there is nothing to save as DICOM-SEG", path)
    headers = [read_header(Path(f)) for f in files]
    if len(headers) > 1 and any(h.frame_count > 1 for h in headers):
        raise InputError("the image's DICOM files mix multi-frame and single-frame files; "
                         "DICOM-SEG needs one or the other", path)
    tick = step_progress(progress, cancel, 2, "Saving DICOM-SEG")
    tick(0)
    pixels, normal = _segment_numbers_per_frame(labels, headers, ids, path)
    sources = [_source_dataset(h, slice_spacing=image.spacing[normal]) for h in headers]
    descriptions = [_description(n, _label(labels.table, i)) for n, i in enumerate(ids, start=1)]
    try:
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixels, segmentation_type=segmentation_type,
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=100,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="ctviewer",
            manufacturer_model_name="ctviewer", software_versions=_version(), device_serial_number="0",
            series_description=series_description[:64], omit_empty_frames=False,
            transfer_syntax_uid=RLELossless if segmentation_type == "LABELMAP" else ExplicitVRLittleEndian)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InputError(f"cannot make a DICOM-SEG of these labels: {_why(exc)}", path) from exc
    tick(1)
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    tick(2)
    return path


def _segment_numbers_per_frame(labels: LabelMap, headers, ids: list[int], path: Path) -> tuple[np.ndarray, int]:
    """One 2-D array of segment numbers (1..N for ``ids``) per source frame, in the order of the
    frames of ``headers``; and the label axis those frames are slices of."""
    from ctviewer.io.dicom_series import frames_of

    frames = [frame for header in headers for frame in frames_of(header)]
    lut = np.zeros(max(ids) + 1, dtype=np.uint8 if len(ids) < 256 else np.uint16)
    lut[ids] = np.arange(1, len(ids) + 1)
    pixels = np.empty((len(frames), frames[0].rows, frames[0].columns), dtype=lut.dtype)
    covered: set[tuple[int, int]] = set()
    for n, frame in enumerate(frames):
        under, plane = _labels_under(labels.volume, frame, path)
        pixels[n] = lut[under]
        covered.add(plane)
    return pixels, _check_all_labels_covered(labels.array, covered, path)


def _labels_under(labels: Volume, frame, path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """The label ids under every pixel of one source frame, and (axis, index) of the label slice."""
    from ctviewer.io.dicom_geometry import in_plane_axes

    if frame.position is None or frame.orientation is None:
        raise InputError(f"{frame.header.path.name} has no position or orientation, so labels cannot "
                         "be placed on it; save as .nii.gz or .seg.nrrd", path)
    row_dir, col_dir, _ = in_plane_axes(frame.orientation)
    row_spacing, column_spacing = frame.pixel_spacing or (1.0, 1.0)
    start = labels.lps_to_index(frame.position)
    to_index = labels.direction * np.asarray(labels.spacing)
    # one row down and one column right of the frame, as steps in label indices
    steps = [np.linalg.solve(to_index, vec) for vec in (col_dir * row_spacing, row_dir * column_spacing)]
    axes = []
    for step in steps:
        axis = int(np.argmax(np.abs(step)))
        if abs(abs(step[axis]) - 1) > _TOLERANCE or np.abs(np.delete(step, axis)).max() > _TOLERANCE:
            raise _off_grid(path)
        axes.append((axis, int(round(step[axis]))))
    (row_axis, row_step), (col_axis, col_step) = axes
    normal = ({0, 1, 2} - {row_axis, col_axis}).pop() if row_axis != col_axis else None
    corner = np.round(start).astype(int)
    if normal is None or np.abs(start - corner).max() > _TOLERANCE:
        raise _off_grid(path)
    index: list = [None, None, None]
    index[normal] = corner[normal]
    index[row_axis] = (corner[row_axis] + row_step * np.arange(frame.rows))[:, None]
    index[col_axis] = (corner[col_axis] + col_step * np.arange(frame.columns))[None, :]
    shape = labels.shape
    if not 0 <= corner[normal] < shape[normal] or any(
            int(ix.min()) < 0 or int(ix.max()) >= shape[a] for a, ix in ((row_axis, index[row_axis]),
                                                                       (col_axis, index[col_axis]))):
        raise _off_grid(path)
    return labels.array[tuple(index)], (normal, int(corner[normal]))


def _off_grid(path: Path) -> InputError:
    return InputError("the label map does not lie exactly on the slices of its DICOM image (was the "
                      "image resampled when read?); save as .nii.gz or .seg.nrrd", path)


def _check_all_labels_covered(array: np.ndarray, covered: set[tuple[int, int]], path: Path) -> int:
    """Labels on a slice no DICOM file holds (a gap the reader filled) would be lost: refuse.
    Returns the label axis the source frames are slices of."""
    normals = {axis for axis, _ in covered}
    if len(normals) != 1:
        raise _off_grid(path)
    axis = normals.pop()
    done = {k for _, k in covered}
    lost = [k for k in range(array.shape[axis]) if k not in done and np.any(np.take(array, k, axis=axis))]
    if lost:
        raise InputError(f"{len(lost)} slice(s) with labels (first: {lost[0]}) have no DICOM file of their "
                         "own (a gap filled when reading); save as .nii.gz or .seg.nrrd", path)
    return axis


def _source_dataset(header, slice_spacing: float):
    """The header as highdicom wants it: type 2 attributes it copies present (empty if the file
    lacks them), and a slice thickness for the SEG's pixel measures (the slice spacing if none)."""
    ds = header.dataset
    for keyword in _COPIED:
        if keyword not in ds:
            setattr(ds, keyword, None)
    shared = ds.get("SharedFunctionalGroupsSequence")
    if not shared and ds.get("SliceThickness") in (None, ""):
        ds.SliceThickness = round(float(slice_spacing), 6)
    return ds


def _label(table: LabelTable, label_id: int) -> Label:
    return table[label_id] if label_id in table else Label(label_id, f"Label {label_id}", default_colour(label_id))


def _description(number: int, label: Label):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    name = label.name.replace("\\", "/")[:64] or f"Label {label.id}"
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=name, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        tracking_uid=hd.UID(), tracking_id=f"label {label.id}",
        display_color=hd.color.CIELabColor.from_rgb(*label.colour))


def _version() -> str:
    from ctviewer import __version__

    return __version__


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:200]


# -- reading -------------------------------------------------------------------------------------
def read_dicom_seg(path: str | Path) -> LabelMap:
    """The label map of a DICOM-SEG on the SEG's own grid, with names, colours and ids as written."""
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(path)
        numbers = [int(n) for n in seg.get_segment_numbers()]
        volume = seg.get_volume(combine_segments=True, relabel=False)
    except InputError:
        raise
    except Exception as exc:  # highdicom and pydicom raise many kinds on files they cannot use
        raise InputError(f"cannot read DICOM-SEG: {_why(exc)}", path) from exc
    descriptions = [seg.get_segment_description(n) for n in numbers]
    ids = _ids(descriptions, numbers)
    lut = np.zeros(max(numbers, default=0) + 1, dtype=np.uint8 if max(ids, default=0) < 256 else np.uint16)
    lut[numbers] = ids
    array = lut[np.asarray(volume.array).astype(np.intp, copy=False)]
    table = LabelTable([Label(i, str(d.segment_label), _colour(d, i)) for i, d in zip(ids, descriptions)])
    affine = np.asarray(volume.affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    spacing[spacing == 0] = 1.0
    name = str(seg.get("SeriesDescription", "") or "") or path.stem
    labels_volume = Volume(np.ascontiguousarray(array), spacing=tuple(spacing), origin=tuple(affine[:3, 3]),
                           direction=affine[:3, :3] / spacing, name=name, source=str(path),
                           meta={"format": "dicom-seg", "label_table": table,
                                 "series_uid": str(seg.get("SeriesInstanceUID", ""))})
    return LabelMap(labels_volume, table)


def _ids(descriptions, numbers: list[int]) -> list[int]:
    """Our ids from the tracking ids where every segment has one ('label <id>'), else the numbers."""
    found = [_TRACKING_ID.match(str(d.get("TrackingID", "") or "")) for d in descriptions]
    ids = [int(m.group(1)) for m in found if m]
    if len(ids) == len(numbers) and len(set(ids)) == len(ids) and all(0 < i <= 65535 for i in ids):
        return ids
    return numbers


def _colour(description, label_id: int) -> tuple[int, int, int]:
    import highdicom as hd

    value = description.get("RecommendedDisplayCIELabValue")
    if value is None:
        return default_colour(label_id)
    return tuple(int(c) for c in hd.color.CIELabColor.from_dicom_value(list(value)).to_rgb(clip=True))


def read_dicom_seg_over(path: str | Path, image: Volume) -> LabelMap:
    """The label map of a DICOM-SEG on ``image``'s grid, each frame put where its position says.

    This is how SEGs written by other tools open over their series: frames may come in any order,
    empty frames may be left out (dcmqi, highdicom ``omit_empty_frames``), BINARY, FRACTIONAL (a
    pixel belongs to its segment from half the maximum fraction on, as dcmqi and Slicer binarise)
    and LABELMAP frames alike. Where segments overlap, a voxel shows the segment of the last frame
    that holds it, and a warning says how many voxels that was.
    """
    import highdicom as hd
    from pydicom.pixels import iter_pixels

    from ctviewer.io.dicom_headers import Header
    from ctviewer.io.dicom_series import frames_of
    from ctviewer.io.label_grid import on_grid_of

    path = Path(path)
    try:
        seg = hd.seg.segread(path)
        numbers = [int(n) for n in seg.get_segment_numbers()]
        frames = frames_of(Header(path, seg, None))
        kind = str(seg.get("SegmentationType", "BINARY")).upper()
        descriptions = [seg.get_segment_description(n) for n in numbers]
        ids = _ids(descriptions, numbers)
        lut = np.zeros(max(numbers, default=0) + 1, dtype=np.uint8 if max(ids, default=0) < 256 else np.uint16)
        lut[numbers] = ids
        out = np.zeros(image.shape, dtype=lut.dtype)
        placed = _FramePlacer(image, out, path)
        half = float(seg.get("MaximumFractionalValue", 255) or 255) / 2
        for n, (frame, plane) in enumerate(zip(frames, iter_pixels(path)), start=1):
            if kind == "LABELMAP":
                values = lut[np.clip(plane, 0, lut.size - 1).astype(np.intp)]
            else:
                number = _segment_number(seg, n - 1)
                inside = plane >= half if kind == "FRACTIONAL" else plane != 0
                values = np.where(inside, lut[number] if 0 < number < lut.size else 0, 0).astype(lut.dtype)
            placed.add(frame, values, n)
    except InputError:
        raise
    except Exception as exc:  # highdicom and pydicom raise many kinds on files they cannot use
        raise InputError(f"cannot read DICOM-SEG: {_why(exc)}", path) from exc
    table = LabelTable([Label(i, str(d.segment_label), _colour(d, i)) for i, d in zip(ids, descriptions)])
    name = str(seg.get("SeriesDescription", "") or "") or path.stem
    volume = Volume(out, name=name, source=str(path),
                    meta={"format": "dicom-seg", "label_table": table,
                          "series_uid": str(seg.get("SeriesInstanceUID", ""))})
    labels = LabelMap(on_grid_of(image, out, volume), table)
    if placed.overlapping:
        labels.warnings.append(f"{path.name}: {placed.overlapping} voxel(s) belong to more than one segment; "
                               "each shows the segment of the last frame that holds it")
    return labels


def _segment_number(seg, index: int) -> int:
    """The segment a BINARY / FRACTIONAL frame belongs to (per frame, or shared by all frames)."""
    from ctviewer.io.dicom_headers import first_item

    per_frame = seg.get("PerFrameFunctionalGroupsSequence")
    groups = [per_frame[index] if per_frame is not None and index < len(per_frame) else None,
              first_item(seg, "SharedFunctionalGroupsSequence")]
    for group in groups:
        item = first_item(group, "SegmentIdentificationSequence")
        if item is not None and "ReferencedSegmentNumber" in item:
            return int(item.ReferencedSegmentNumber)
    return 1 if len(seg.get("SegmentSequence", [])) == 1 else 0


class _FramePlacer:
    """Puts the label ids of one SEG frame after another onto the image's voxels."""

    def __init__(self, image: Volume, out: np.ndarray, path: Path):
        self.image, self.out, self.path = image, out, path
        self.overlapping = 0

    def add(self, frame, values: np.ndarray, number: int) -> None:
        from ctviewer.io.label_grid import plane_on_grid

        if not values.any():
            return  # an empty frame places nothing, wherever it lies
        where = plane_on_grid(self.image, frame.position, frame.orientation, frame.pixel_spacing,
                              frame.rows, frame.columns)
        if where is None:
            raise InputError(f"frame {number} does not lie on the image's voxels (another pixel spacing, "
                             "orientation or slice position): is the SEG made on another series?", self.path)
        normal, k, rows, columns, row_axis, column_axis = where
        shape = self.out.shape
        row_in, column_in = (rows >= 0) & (rows < shape[row_axis]), (columns >= 0) & (columns < shape[column_axis])
        if not 0 <= k < shape[normal] or values[~row_in].any() or values[:, ~column_in].any():
            raise InputError(f"frame {number} has labels outside the image (is the SEG made on another series, "
                             "or on more slices than were opened?)", self.path)
        index: list = [None, None, None]
        index[normal] = k
        index[row_axis] = rows[row_in][:, None]
        index[column_axis] = columns[column_in][None, :]
        values = values[np.ix_(row_in, column_in)]
        before = self.out[tuple(index)]
        self.overlapping += int(np.count_nonzero((before != 0) & (values != 0) & (before != values)))
        self.out[tuple(index)] = np.where(values != 0, values, before)

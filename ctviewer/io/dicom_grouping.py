"""Which files of a DICOM folder make one series.

Files that carry a SeriesInstanceUID are grouped by it, as every DICOM reader does. Anonymisers
often remove it (and StudyInstanceUID with it); such files are grouped the way dcm2niix
(``isSameSet``) and 3D Slicer (``DICOMScalarVolumePlugin`` and its sub-series) decide what can be
stacked: the same patient, study and frame of reference where those are left, the same modality,
series number and description, image size, pixel spacing and orientation. A different
AcquisitionNumber splits a group only where the acquisitions cover the same places (a repeated
scan, as Slicer splits by acquisition); one scan made of several acquisitions (GE's axial mode
numbers each rotation) stays one series, as dcm2niix stacks it. Every group found this way says
so in a warning, since a user who trusts the UID-less grouping should know it was a guess.
"""

from __future__ import annotations

import numpy as np

from ctviewer.io.dicom_geometry import in_plane_axes
from ctviewer.io.dicom_headers import Header, number, value, vector

#: What the grouping compares, in the user's words (for the warning).
GROUPED_BY = ("patient, study and frame of reference (where left), modality, series number and "
              "description, image size, pixel spacing and orientation")
#: Acquisitions whose spans along the slice normal overlap by more than this (mm) are repeats.
OVERLAP_MM = 0.01


def series_key(header: Header) -> tuple:
    """The key files of one series share: the series UID, or what stands in for it."""
    ds = header.dataset
    if header.frame_count > 1:
        return ("file", str(header.path))  # a multi-frame file is a series of its own
    uid = str(value(ds, "SeriesInstanceUID", "") or "").strip()
    if uid:
        return ("uid", uid)
    orientation = vector(value(ds, "ImageOrientationPatient"), 6)
    spacing = vector(value(ds, "PixelSpacing"), 2)
    return ("no uid", _text(ds, "PatientID"), _text(ds, "StudyInstanceUID"), _text(ds, "FrameOfReferenceUID"),
            _text(ds, "Modality"), number(value(ds, "SeriesNumber")), _text(ds, "SeriesDescription"),
            value(ds, "Rows"), value(ds, "Columns"), value(ds, "SamplesPerPixel", 1),
            None if orientation is None else tuple(np.round(orientation, 3) + 0.0),
            None if spacing is None else tuple(np.round(spacing, 3) + 0.0))


def split_series(key: tuple, headers: list[Header]) -> list[tuple[list[Header], list[str], str]]:
    """The series a group of files with one ``key`` holds, each with what the user must know and
    what tells it from the others ('' or 'acquisition 2')."""
    if key[0] != "no uid":
        return [(headers, [], "")]
    acquisitions: dict = {}
    for header in headers:
        acquisitions.setdefault(number(value(header.dataset, "AcquisitionNumber")), []).append(header)
    note = (f"{{n}} file(s) carry no SeriesInstanceUID (removed by an anonymiser?): grouped as one series by "
            f"{GROUPED_BY}{{extra}}, as dcm2niix and 3D Slicer do; check that they belong together")
    if len(acquisitions) > 1 and _repeat_places(list(acquisitions.values())):
        return [(group, [note.format(n=len(group), extra=f" and acquisition number ({_number_text(acq)})")],
                 f"acquisition {_number_text(acq)}")
                for acq, group in sorted(acquisitions.items(), key=lambda item: (item[0] is None, item[0] or 0))]
    return [(headers, [note.format(n=len(headers), extra="")], "")]


def _repeat_places(groups: list[list[Header]]) -> bool:
    """True where two acquisitions span overlapping places along the slice normal."""
    spans = []
    for group in groups:
        along = [_along_normal(h) for h in group]
        if any(a is None for a in along):
            return False  # without positions, nothing says they repeat
        spans.append((min(along), max(along)))
    spans.sort()
    return any(spans[k + 1][0] < spans[k][1] + OVERLAP_MM for k in range(len(spans) - 1))


def _along_normal(header: Header) -> float | None:
    ds = header.dataset
    position = vector(value(ds, "ImagePositionPatient"), 3)
    orientation = vector(value(ds, "ImageOrientationPatient"), 6)
    if position is None or orientation is None:
        return None
    return float(position @ in_plane_axes(orientation)[2])


def _text(ds, keyword: str) -> str:
    return str(value(ds, keyword, "") or "").strip()


def _number_text(acquisition: float | None) -> str:
    if acquisition is None:
        return "none"
    return f"{acquisition:g}"

"""DICOM: a file or a folder of files becomes one loadable per image series.

``examine`` reads headers only (up to the pixel data) and keeps them, so ``load`` does not parse
them again. The pieces: :mod:`dicom_headers` (reading a header once), :mod:`dicom_grouping` (which
files make one series, also where an anonymiser removed the series UID), :mod:`dicom_geometry`
(order, spacing, gaps, tilt), :mod:`dicom_pixels` (voxels into one preallocated array) and
:mod:`dicom_series` (frames and the Volume). pydicom is imported only when a file looks like
DICOM, so examining a photo costs nothing here.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

from ctviewer.data.volume import Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.io import guards
from ctviewer.io.dicom_seg import SEG_SOP_CLASSES
from ctviewer.io.registry import Loadable
from ctviewer.progress import CancelToken, Progress

#: How sure a file that carries the 'DICM' preamble (or a folder of them) is DICOM.
CONFIDENCE = 0.9
#: A file without the preamble that still parsed as DICOM.
CONFIDENCE_NO_PREAMBLE = 0.6


class DicomReader:
    name = "dicom"

    def examine(self, path: Path) -> list[Loadable]:
        path = Path(path)
        if path.is_dir():
            return self._examine_folder(path)
        if not path.is_file() or not _might_be_dicom(path):
            return []
        from ctviewer.io.dicom_headers import read_header

        header = read_header(path)
        if header is None:
            return []
        with broken_values_refused(path):
            if header.is_dicomdir:
                raise InputError("this is a DICOMDIR (the index of a DICOM disc); open the folder "
                                 "that holds the images instead", path)
            if header.sop_class in SEG_SOP_CLASSES:
                return [_segmentation_loadable(path)]
            _check_image(header)
        return [_loadable(path, [header], name=path.name)]

    def _examine_folder(self, folder: Path) -> list[Loadable]:
        candidates = [path for path in files_under(folder) if _might_be_dicom(path)]
        if not candidates:
            return []
        from ctviewer.io.dicom_grouping import series_key, split_series
        from ctviewer.io.dicom_headers import check_claims, read_header, sop_class_name

        series: dict[tuple, list] = {}
        no_image: list = []
        broken: list[InputError] = []
        for path in candidates:
            try:
                header = read_header(path)
                with broken_values_refused(path):  # one broken file is reported, the others still open
                    if header is None or header.is_dicomdir:
                        continue
                    if not header.has_image or header.sop_class in SEG_SOP_CLASSES:
                        no_image.append(header)  # a DICOM-SEG is labels over a series, not a series to view
                        continue
                    check_claims(header)  # before its frames are listed: a header may claim 2^31 of them
                    key = series_key(header)
            except InputError as exc:
                broken.append(exc)
                continue
            series.setdefault(key, []).append(header)
        found = []
        segmentations = [h for h in no_image if h.sop_class in SEG_SOP_CLASSES]
        for key, headers in series.items():
            for group, notes, part in split_series(key, headers):
                try:
                    found.append(_loadable(folder, group, name=folder.name, notes=notes, part=part,
                                           segmentations=_segmentations_of(group, segmentations)))
                except InputError as exc:
                    broken.append(exc)
        if found:
            return sorted(found, key=lambda item: -(item.n_slices or 0))
        if broken:
            raise broken[0]
        if no_image:
            kinds = sorted({sop_class_name(h.sop_class) for h in no_image})
            raise InputError(f"the folder's {len(no_image)} DICOM file(s) hold no image "
                             f"({', '.join(kinds)})", folder)
        return []


def _might_be_dicom(path: Path) -> bool:
    """Cheap refusal of files that are surely another reader's, before importing pydicom."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or head[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x08")


def files_under(folder: Path):
    """Every file of a folder tree in a stable order, leaving out hidden files and DICOMDIR indexes."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.upper() != "DICOMDIR":
                yield Path(root) / name


def _check_image(header) -> None:
    """InputError where a DICOM file cannot give an image: say what it is instead."""
    from ctviewer.io.dicom_headers import check_claims, sop_class_name

    if not header.has_image:
        raise InputError(f"DICOM {sop_class_name(header.sop_class)} has no image", header.path)
    if header.truncated:
        have = max(0, header.pixels.file_size - header.pixels.offset)
        raise InputError(f"pixel data is truncated ({have} of {header.pixels.length} bytes)", header.path)
    check_claims(header)


@contextlib.contextmanager
def broken_values_refused(path: Path):
    """pydicom converts a value when it is first asked for: a file whose header bytes are broken
    (an unknown VR, a number that is text) fails only then, with whatever error the conversion
    raises. That is a bad file, reported as one, not a fault of ours."""
    try:
        yield
    except (InputError, Cancelled):
        raise
    except (NotImplementedError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            struct.error) as exc:
        from ctviewer.io.dicom_headers import _reason

        raise InputError(f"DICOM header holds a value that cannot be read ({_reason(exc)})", path) from exc


def _loadable(path: Path, headers: list, name: str, notes: list[str] = (), part: str = "",
              segmentations: list[str] = ()) -> Loadable:
    """One Loadable for the headers of one series, loading from the frames noted now; ``notes``
    are what grouping the files had to guess, ``part`` what tells this series from another that
    shares its description ('acquisition 2'), ``segmentations`` the DICOM-SEG files beside it that
    reference it (opened over it as labels)."""
    from ctviewer.io.dicom_series import consistent_frames, frames_of, load_series

    with broken_values_refused(path):
        frames = [frame for header in headers for frame in frames_of(header)]
        frames, warnings = consistent_frames(frames, path)
        warnings = list(notes) + warnings
        meta = _meta(frames, headers)
    if segmentations:
        meta["segmentations"] = list(segmentations)
    title = (meta["series_description"] or name) + (f" ({part})" if part else "")
    n = len(frames)
    description = f"{meta['modality']} {title}".strip() + f" — {n} {'slice' if n == 1 else 'slices'}"

    def load(progress: Progress | None = None, cancel: CancelToken | None = None) -> Volume:
        used = list({id(f.header): f.header for f in frames}.values())
        for header in used:
            _check_image(header)
        # the files the voxels came from: a DICOM-SEG of labels drawn on them references them
        volume_meta = dict(meta, dicom_files=[str(h.path) for h in used])
        first = frames[0]
        guards.check_memory(len(frames) * first.rows * first.columns * first.samples * 4, path, "the series")
        with broken_values_refused(path):
            return load_series(frames, title, path, warnings, volume_meta, progress, cancel)

    confident = not any(h.forced for h in headers)
    return Loadable(path=path, description=description, format="dicom",
                    confidence=CONFIDENCE if confident else CONFIDENCE_NO_PREAMBLE, load=load,
                    n_slices=n, warnings=list(warnings), meta=meta)


def _segmentations_of(headers: list, segmentations: list) -> list[str]:
    """The DICOM-SEG files (of ``segmentations``) drawn on the series of ``headers``: those that
    reference its SeriesInstanceUID; for a series that lost its UID, those on its frame of reference."""
    from ctviewer.io.dicom_headers import value

    ds = headers[0].dataset
    uid = str(value(ds, "SeriesInstanceUID", "") or "")
    frame_of_reference = str(value(ds, "FrameOfReferenceUID", "") or "")
    found = []
    for seg in segmentations:
        references = seg.dataset.get("ReferencedSeriesSequence", [])
        referenced = {str(item.get("SeriesInstanceUID", "")) for item in references}
        same_frame = str(value(seg.dataset, "FrameOfReferenceUID", "") or "") == frame_of_reference
        if (uid and uid in referenced) or (not uid and frame_of_reference and same_frame):
            found.append(str(seg.path))
    return found


def _segmentation_loadable(path: Path) -> Loadable:
    """A DICOM-SEG opened on its own: its label map, shown as a volume of ids."""
    from ctviewer.io.dicom_seg import read_dicom_seg

    return Loadable(path=path, description=f"{path.name} — DICOM segmentation", format="dicom-seg",
                    confidence=CONFIDENCE, load=lambda progress=None, cancel=None: read_dicom_seg(path).volume,
                    meta={"label_map": True})


def _meta(frames, headers) -> dict:
    """Facts worth showing in ``ctviewer info`` (and the series UID the registry selects by)."""
    from ctviewer.io.dicom_headers import sop_class_name

    header = frames[0].header
    ds = header.dataset

    def text(keyword: str) -> str:
        return str(ds.get(keyword, "") or "").strip()

    return {
        "series_uid": text("SeriesInstanceUID"), "study_uid": text("StudyInstanceUID"),
        "modality": text("Modality"), "series_description": text("SeriesDescription"),
        "patient_id": text("PatientID"), "study_date": text("StudyDate"),
        "series_number": text("SeriesNumber"), "body_part": text("BodyPartExamined"),
        "manufacturer": text("Manufacturer"), "sop_class": sop_class_name(header.sop_class),
        "transfer_syntax": _transfer_syntax_name(header.transfer_syntax),
        "photometric": text("PhotometricInterpretation"), "n_files": len(headers),
    }


def _transfer_syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name if uid else ""

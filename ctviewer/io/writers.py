"""Save a volume or a label map; the format follows the file name's suffix.

===============================  ==========================================================
suffix                           what is written
===============================  ==========================================================
``.nii``, ``.nii.gz``            NIfTI-1, sform and qform set (code 1, scanner), RAS on disk;
                                 a result of a NIfTI image gets that image's sform, qform
                                 and codes unchanged
``.nrrd``                        gzip NRRD, space left-posterior-superior; a result of a
                                 NRRD image gets that image's space, directions and origin
``.seg.nrrd``                    3D Slicer segmentation (``Segment{N}_*`` fields)
``.npy``                         the array, plus ``NAME.json`` (spacing, origin, direction,
                                 modality) beside it
``.png``                         one-slice photo (RGB uint8) or grey / index image (uint8,
                                 uint16)
``.dcm`` (label maps only)       DICOM-SEG referencing the DICOM series the image came from
                                 (:mod:`ctviewer.io.dicom_seg`)
===============================  ==========================================================

Label names and colours: a ``.nrrd`` / ``.seg.nrrd`` holds them in its header (any ``.nrrd``
written with a ``label_table`` becomes a segmentation), a DICOM-SEG in its segment descriptions.
Every other format gets ctviewer's JSON label table beside it, ``NAME.labels.json``
(``liver.nii.gz`` -> ``liver.labels.json``), which :func:`read_label_map` reads back (it also
reads an ITK-SNAP ``NAME.label.txt`` there, as older ctviewer versions wrote).

A label map is written on the grid of its image's file (shape, array order, geometry), never in
the order the views show it: see :func:`write_label_map`.

Every file is written to a temporary name and renamed over the target when complete
(:func:`ctviewer.io.atomic.atomic_paths`), so a crash never leaves half a file; a file and its
sidecars (the table, the ``.npy`` geometry) are renamed into place together, all or nothing.
"""

from __future__ import annotations

from pathlib import Path

from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.atomic import atomic_paths
from ctviewer.io.label_files import base_name, format_suffix, read_label_map, table_sidecar

SUPPORTED_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".seg.nrrd", ".npy", ".png")
#: What a label map can be saved as: the above, and DICOM-SEG when its image came from DICOM.
LABEL_SUFFIXES = SUPPORTED_SUFFIXES + (".dcm",)

__all__ = ["LABEL_SUFFIXES", "SUPPORTED_SUFFIXES", "read_label_map", "write_label_map", "write_volume"]


def write_volume(volume: Volume, path: str | Path, label_table: LabelTable | None = None) -> Path:
    """Write ``volume`` to ``path`` in the format its suffix names; returns the path written.

    With ``label_table`` the volume is a label map: NRRD keeps the table inside, the other formats
    get ``NAME.labels.json`` beside the file.
    """
    from ctviewer.io import nifti, nrrd_io, numpy_io, photo

    path = Path(path)
    suffix = format_suffix(path)
    if suffix == ".dcm":
        raise InputError("only a label map can be saved as DICOM (a DICOM-SEG); save an image as "
                         ".nii.gz or .nrrd", path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"cannot save as '{suffix or path.name}': use one of "
                         f"{', '.join(SUPPORTED_SUFFIXES)}", path)
    if label_table is not None:  # a label map is no CT: its ids must not be windowed or called HU
        volume = volume.with_array(volume.array, modality="", window=None)
    # the file, its geometry (.npy) and its table are renamed into place together, or none is
    table = table_sidecar(path) if label_table is not None and suffix not in (".nrrd", ".seg.nrrd") else None
    geometry = path.with_name(f"{base_name(path)}.json") if suffix == ".npy" else None
    with atomic_paths(path, *filter(None, (geometry, table))) as (tmp, *sidecars):
        if suffix in (".nii", ".nii.gz"):
            nifti.write_nifti(volume, tmp)
        elif suffix in (".nrrd", ".seg.nrrd"):
            nrrd_io.write_nrrd(volume, tmp, label_table)
        elif suffix == ".npy":
            numpy_io.write_npy(volume, tmp, sidecars[0])
        else:
            photo.write_png(volume, tmp)
        if table is not None:
            sidecars[-1].write_text(label_table.to_json(), encoding="utf-8")
    return path


def write_label_map(labels: LabelMap, path: str | Path, image: Volume | None = None) -> Path:
    """Write a label map and its table (see the module docstring for where the table goes).

    The file is on the grid of the image the labels belong to (DESIGN.md, "Data conventions"): the
    array order and geometry of ``image``'s file when the labels lie on ``image``, else of the file
    the labels were read from — never the canonical order they are shown in
    (:func:`ctviewer.imaging.orientation.on_image_grid`).

    ``.dcm`` writes a DICOM-SEG and needs ``image``, the DICOM image the labels were drawn on; its
    frames follow the DICOM files themselves.
    """
    from ctviewer.imaging.orientation import on_image_grid, to_stored

    from ctviewer.io.opened import refuse_image_file

    path = Path(path)
    refuse_image_file(path, image)   # `segment scan.nii.gz -o scan.nii.gz` must not destroy the scan
    if format_suffix(path) == ".dcm":
        from ctviewer.io.dicom_seg import NEEDS_DICOM, write_dicom_seg

        if image is None:
            raise InputError(NEEDS_DICOM, path)
        return write_dicom_seg(labels, image, path)
    volume = on_image_grid(labels.volume, image) if image is not None else to_stored(labels.volume)
    return write_volume(volume, path, label_table=labels.table)

"""Small CT DICOM series written with pydicom, for tests of every tier (no Qt here).

One file per slice with the modules a CT reader needs: file meta, SOP class and instance, the
series, the plane's position and orientation, the pixel module (bits and sign from the array's
dtype) and the rescale. Anything else a test needs (patient, study, instance numbers, description)
it passes by keyword, so each test writes exactly the attributes it depends on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

AXIAL = (1, 0, 0, 0, 1, 0)


def ct_slice(stored: np.ndarray, position, *, series_uid: str, orientation=AXIAL, pixel_spacing=(0.7, 0.8),
             rescale: tuple[float, float] | None = (1, -1024), **attributes) -> Dataset:
    """One CT image of ``stored`` values (rows x columns; int16, uint16 or uint8 as they go on disk)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID = "CT", series_uid
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [float(v) for v in position], list(orientation)
    ds.PixelSpacing = list(pixel_spacing)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = stored.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = int(stored.dtype.kind == "i")
    if rescale is not None:   # scanners store HU + 1024 and say so; readers must apply it
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    for key, value in attributes.items():
        setattr(ds, key, value)
    return ds


def write_ct_series(folder, planes, positions, names, *, series_uid: str | None = None,
                    per_slice: list[dict] | None = None, **common) -> list[Path]:
    """``planes[k]`` at ``positions[k]`` into ``folder / names[k]``, one series; ``per_slice[k]`` adds
    that slice's own attributes (e.g. InstanceNumber), ``common`` goes to :func:`ct_slice`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    paths = []
    for k, (plane, position, name) in enumerate(zip(planes, positions, names, strict=True)):
        extra = per_slice[k] if per_slice else {}
        ds = ct_slice(plane, position, series_uid=series_uid, **common, **extra)
        pydicom.dcmwrite(folder / name, ds, enforce_file_format=True)
        paths.append(folder / name)
    return paths


def anonymised_copy(source, folder, *, count: int | None = None, start: int = 0, compress: str | None = None,
                    remove=("SeriesInstanceUID", "StudyInstanceUID"), prefix: str = "", **changes) -> list[Path]:
    """Copy the files of the real series ``source`` into ``folder`` as an anonymiser leaves them:
    ``remove`` deleted (the series and study UIDs by default), ``changes`` set on every file, the
    pixels re-encoded with the transfer syntax ``compress`` (e.g. JPEG 2000 lossless) where given.
    ``count`` files from ``start``, taken in position order; the copies are named by ``prefix`` and
    a number, against the position order, so nothing can lean on the names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    datasets = [pydicom.dcmread(path) for path in sorted(Path(source).iterdir()) if path.is_file()]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    datasets = datasets[start:None if count is None else start + count]
    paths = []
    for n, ds in enumerate(reversed(datasets)):
        for keyword in remove:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        if compress is not None:
            ds.compress(compress)
        path = folder / f"{prefix}{n:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths

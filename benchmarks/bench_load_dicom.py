"""Benchmark: load a 512x512x300 uncompressed CT series, ctviewer against SimpleITK.

Targets (from the DICOM reader's issue):
  * time: ctviewer's read at most SimpleITK's ImageSeriesReader on the same files (goal: half);
  * memory: ctviewer's peak allocation under 1.5x the volume's bytes.

The series is generated once (deterministic) into a cache folder outside the repository
(``$CTVIEWER_BENCH_CACHE`` or the system temp folder). Both readers run best of 3 in the same
process, interleaved, on warm files. SimpleITK is a reference only; it is skipped where absent.

    .venv/bin/python benchmarks/bench_load_dicom.py [--slices 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from results import Report  # benchmarks/, the script's own folder

ROWS = COLUMNS = 512
SPACING = 0.7
STEP = 1.25


def series_folder(slices: int) -> Path:
    root = Path(os.environ.get("CTVIEWER_BENCH_CACHE", Path(tempfile.gettempdir()) / "ctviewer-bench"))
    return root / f"dicom_ct_{ROWS}x{COLUMNS}x{slices}"


def make_series(folder: Path, slices: int) -> None:
    """A CT series with the headers a scanner writes (implicit VR, int16, slope/intercept)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ImplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:ROWS, :COLUMNS]
    body = ((yy - 256) / 200.0) ** 2 + ((xx - 256) / 240.0) ** 2 < 1
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(slices):
        hu = np.where(body, 40, -1000) + rng.normal(0, 15, (ROWS, COLUMNS))
        stored = np.clip(hu + 1024, 0, 4095).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240102"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
        ds.AccessionNumber, ds.Modality, ds.Manufacturer = "A123", "CT", "BENCH"
        ds.InstitutionName, ds.ReferringPhysicianName = "Bench Hospital", "Doe^John"
        ds.StudyDescription, ds.SeriesDescription = "ABDOMEN", "CT ABDOMEN 1.25mm"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Bench^Patient", "BENCH01", "19700101", "O"
        ds.SliceThickness, ds.KVP, ds.SpacingBetweenSlices = STEP, 120, STEP
        ds.DataCollectionDiameter, ds.ReconstructionDiameter = 500, 360
        ds.GantryDetectorTilt, ds.TableHeight, ds.RotationDirection = 0, 150, "CW"
        ds.ExposureTime, ds.XRayTubeCurrent, ds.Exposure = 500, 300, 150
        ds.ConvolutionKernel, ds.PatientPosition = "STANDARD", "FFS"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyID, ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = "1", 3, 1, k + 1
        ds.ImagePositionPatient = [-179.3, -179.3, round(-400.0 + k * STEP, 4)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PositionReferenceIndicator, ds.SliceLocation = "XY", round(-400.0 + k * STEP, 4)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns, ds.PixelSpacing = ROWS, COLUMNS, [SPACING, SPACING]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = stored.tobytes()
        # file names that do not sort like the slices, as on many exports
        pydicom.dcmwrite(folder / f"IM{(k * 7919) % 100003:06d}.dcm", ds, enforce_file_format=True)


def read_ctviewer(folder: Path):
    from ctviewer.io.dicom import DicomReader

    return DicomReader().examine(folder)[0].load()


def read_simpleitk(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def best_of(fn, folder: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn(folder)
        times.append(time.perf_counter() - start)
        del result
    return min(times)


def peak_ratio(folder: Path) -> tuple[float, int]:
    gc.collect()
    tracemalloc.start()
    volume = read_ctviewer(folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / volume.nbytes, volume.nbytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    folder = series_folder(args.slices)
    if len(list(folder.glob("*.dcm"))) != args.slices:
        print(f"generating {args.slices} slices into {folder} ...")
        make_series(folder, args.slices)
    volume = read_ctviewer(folder)  # also warms the page cache
    assert volume.array.dtype == np.int16 and volume.shape == (args.slices, ROWS, COLUMNS), volume.array.shape
    assert abs(volume.spacing[0] - STEP) < 1e-6, volume.spacing

    ours = best_of(read_ctviewer, folder, args.repeat)
    try:
        import SimpleITK  # noqa: F401

        read_simpleitk(folder)  # warm-up, as for ours
        theirs = best_of(read_simpleitk, folder, args.repeat)
    except ImportError:
        theirs = float("nan")
    ratio, nbytes = peak_ratio(folder)

    out = Report(__file__, "DICOM series load")
    out(f"series: {folder} ({args.slices} x {ROWS} x {COLUMNS} int16, {nbytes / 2**20:.0f} MiB)")
    out(f"ctviewer   best of {args.repeat}: {ours:.3f} s")
    out(f"SimpleITK  best of {args.repeat}: {theirs:.3f} s")
    out(f"time ratio ctviewer / SimpleITK: {ours / theirs:.2f}  (goal <= 0.5)")
    out.verdict("time <= SimpleITK's", ours <= theirs, f"ratio {ours / theirs:.2f}")
    out.verdict("peak memory under 1.5x the volume's bytes", ratio < 1.5, f"{ratio:.2f}x")
    return 0 if out.save(not args.no_record) else 1


if __name__ == "__main__":
    raise SystemExit(main())

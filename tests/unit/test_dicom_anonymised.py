"""DICOM series whose anonymiser removed SeriesInstanceUID and StudyInstanceUID open as one series,
grouped the way dcm2niix and 3D Slicer group them, with a warning that says so.

Built from the real ACRIN series in ../shared/data (skipped where absent) and from pydicom's own
files: copied into a temporary folder, the UIDs deleted with pydicom, opened through the same
entries the app and the command line use (``ctviewer info --json`` and the registry).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, generate_uid

from ctviewer.io.registry import examine, read_volume
from tests.conftest import REPO
from tests.dicom_series import anonymised_copy, write_ct_series

ACRIN_STEP_MM = 4.25  # 5 mm slices every 4.25 mm (data README)
PYDICOM_SERIES = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"


@pytest.fixture(scope="module")
def acrin() -> Path:
    folder = REPO.parent / "shared" / "data" / "ct" / "acrin_001_dicom"
    if not folder.is_dir():
        pytest.skip(f"real DICOM series {folder} is absent (only in the team's checkout)")
    return folder


def ctviewer_info(path: Path) -> dict:
    """What the real command line says about ``path`` (``ctviewer info PATH --json``)."""
    res = subprocess.run([sys.executable, "-m", "app.main", "info", str(path), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def no_uid_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "no SeriesInstanceUID" in w]


def test_anonymised_real_series_opens_as_one_series(acrin, tmp_path):
    anonymised_copy(acrin, tmp_path / "anon")
    assert not any("SeriesInstanceUID" in pydicom.dcmread(p, stop_before_pixels=True)
                   for p in (tmp_path / "anon").iterdir())
    info = ctviewer_info(tmp_path / "anon")
    assert len(info["series"]) == 1 and info["series"][0]["slices"] == 99
    assert info["shape_zyx"] == [99, 512, 512]
    # spacing from the positions, not the 5 mm SliceThickness a one-slice series falls back to
    assert info["spacing_zyx_mm"][0] == pytest.approx(ACRIN_STEP_MM)
    (warning,) = no_uid_warnings(info["warnings"])
    assert "99 file(s)" in warning and "series number and description" in warning and "orientation" in warning

    volume = read_volume(tmp_path / "anon")
    original = read_volume(acrin)
    assert volume.same_grid(original) and np.array_equal(volume.array, original.array)
    assert no_uid_warnings(volume.warnings) and not no_uid_warnings(original.warnings)


def test_anonymised_jpeg2000_series_opens_as_one_series(acrin, tmp_path):
    """The case of the issue: 20 JPEG 2000 slices without series or study UID."""
    anonymised_copy(acrin, tmp_path / "j2k", count=20, start=40, compress=JPEG2000Lossless)
    assert pydicom.dcmread(next((tmp_path / "j2k").iterdir())).file_meta.TransferSyntaxUID == JPEG2000Lossless
    info = ctviewer_info(tmp_path / "j2k")
    assert len(info["series"]) == 1 and info["shape_zyx"] == [20, 512, 512]
    assert info["spacing_zyx_mm"][0] == pytest.approx(ACRIN_STEP_MM)
    assert "JPEG 2000" in info["meta"]["transfer_syntax"] and no_uid_warnings(info["warnings"])
    # lossless: the voxels are those of the original slices 40..59, in position order
    original = read_volume(acrin)
    assert np.array_equal(read_volume(tmp_path / "j2k").array, original.array[40:60])


@pytest.mark.parametrize("change", [
    {"SeriesNumber": 3},
    {"SeriesDescription": "PET-CT SERIES 2"},
    {"PixelSpacing": [0.7, 0.7]},
    {"ImageOrientationPatient": [1, 0, 0, 0, 0, -1]},
    {"FrameOfReferenceUID": generate_uid()},
    {"Modality": "PT"},
], ids=lambda change: next(iter(change)))
def test_two_anonymised_series_in_one_folder_are_kept_apart(acrin, tmp_path, change):
    anonymised_copy(acrin, tmp_path / "mixed", count=10, start=30, prefix="a")
    anonymised_copy(acrin, tmp_path / "mixed", count=10, start=30, prefix="b", **change)
    items = examine(tmp_path / "mixed")
    assert len(items) == 2
    unchanged = read_volume(tmp_path / "mixed", series=_index_of_unchanged(items))
    assert unchanged.shape == (10, 512, 512) and unchanged.spacing[0] == pytest.approx(ACRIN_STEP_MM)
    assert not any("repeat the position" in w for w in unchanged.warnings)


@pytest.mark.parametrize("change", [
    {"SeriesNumber": 3}, {"PixelSpacing": [0.5, 0.5]}, {"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]},
    {"FrameOfReferenceUID": generate_uid()}, {"PatientID": "P2"},
], ids=lambda change: next(iter(change)))
def test_two_synthetic_anonymised_series_are_kept_apart(tmp_path, change):
    """The same rule without the real data: a small series written with pydicom, copied twice."""
    planes = [np.full((8, 6), 10 * k, np.int16) for k in range(5)]
    write_ct_series(tmp_path / "src", planes, [(0.0, 0.0, 3.0 * k) for k in range(5)], [f"{k}.dcm" for k in range(5)],
                    PatientID="P1", FrameOfReferenceUID="1.2.3.9", SeriesNumber=2, SeriesDescription="CT")
    anonymised_copy(tmp_path / "src", tmp_path / "mixed", prefix="a")
    anonymised_copy(tmp_path / "src", tmp_path / "mixed", prefix="b", **change)
    items = examine(tmp_path / "mixed")
    assert len(items) == 2
    unchanged = read_volume(tmp_path / "mixed", series=_index_of_unchanged(items))
    assert unchanged.shape == (5, 8, 6) and unchanged.spacing[0] == pytest.approx(3.0)
    assert no_uid_warnings(unchanged.warnings)


def _index_of_unchanged(items) -> int:
    """Which series holds the copies named 'a…' (the files its voxels came from say so)."""
    return next(n for n, item in enumerate(items)
                if all(Path(f).name.startswith("a") for f in item.load().meta["dicom_files"]))


def test_repeated_acquisition_of_the_same_places_is_split(acrin, tmp_path):
    """Two scans of the same slices (before and after contrast) that differ only in AcquisitionNumber."""
    anonymised_copy(acrin, tmp_path / "two", count=8, start=30, prefix="a", AcquisitionNumber=1)
    anonymised_copy(acrin, tmp_path / "two", count=8, start=30, prefix="b", AcquisitionNumber=2)
    items = examine(tmp_path / "two")
    assert sorted(item.description for item in items) == [
        "CT PET-CT SERIES (acquisition 1) — 8 slices", "CT PET-CT SERIES (acquisition 2) — 8 slices"]
    assert all("acquisition number" in no_uid_warnings(item.warnings)[0] for item in items)


def test_one_scan_made_of_several_acquisitions_stays_one_series(acrin, tmp_path):
    """GE's axial mode numbers each tube rotation: acquisitions side by side are one scan (dcm2niix)."""
    anonymised_copy(acrin, tmp_path / "axial", count=6, start=30, prefix="a", AcquisitionNumber=1)
    anonymised_copy(acrin, tmp_path / "axial", count=6, start=36, prefix="b", AcquisitionNumber=2)
    (item,) = examine(tmp_path / "axial")
    volume = read_volume(tmp_path / "axial")
    assert volume.shape[0] == 12 and volume.spacing[0] == pytest.approx(ACRIN_STEP_MM)
    assert np.array_equal(volume.array, read_volume(acrin).array[30:42])


def test_series_with_uids_are_still_grouped_by_uid(acrin, tmp_path):
    """Two copies that differ only in SeriesInstanceUID are two series; one UID with files that
    disagree on their description is one series, and neither warns about grouping."""
    anonymised_copy(acrin, tmp_path / "uids", count=5, start=30, prefix="a", remove=(), SeriesInstanceUID="1.2.3.1")
    anonymised_copy(acrin, tmp_path / "uids", count=5, start=30, prefix="b", remove=(), SeriesInstanceUID="1.2.3.2")
    items = examine(tmp_path / "uids")
    assert sorted(item.meta["series_uid"] for item in items) == ["1.2.3.1", "1.2.3.2"]
    assert not any(no_uid_warnings(item.warnings) for item in items)

    anonymised_copy(acrin, tmp_path / "one", count=5, start=30, prefix="a", remove=())
    anonymised_copy(acrin, tmp_path / "one", count=5, start=35, prefix="b", remove=(), SeriesDescription="other")
    (item,) = examine(tmp_path / "one")
    assert item.n_slices == 10 and not no_uid_warnings(item.warnings)


# -- pydicom's own files ---------------------------------------------------------------------------

def _pydicom_series(name: str) -> Path:
    folder = PYDICOM_SERIES / name
    if not folder.is_dir():
        pytest.skip(f"pydicom's test series {name} is not installed")
    return folder


def test_pydicom_ct_series_anonymised_opens_as_one_series(tmp_path):
    anonymised_copy(_pydicom_series("98892001/CT5N"), tmp_path / "ct5n")
    info = ctviewer_info(tmp_path / "ct5n")
    assert len(info["series"]) == 1 and info["shape_zyx"][0] == 5
    assert info["spacing_zyx_mm"][0] == pytest.approx(2.5) and no_uid_warnings(info["warnings"])
    assert np.array_equal(read_volume(tmp_path / "ct5n").array, read_volume(PYDICOM_SERIES / "98892001/CT5N").array)


def test_pydicom_series_of_two_patients_stay_apart(tmp_path):
    """Two real CT series of another patient and frame of reference, both anonymised into one folder."""
    anonymised_copy(_pydicom_series("98892001/CT5N"), tmp_path / "both", prefix="a")
    anonymised_copy(_pydicom_series("77654033/CT2"), tmp_path / "both", prefix="b")
    items = examine(tmp_path / "both")
    assert sorted(item.n_slices for item in items) == [4, 5]
    five = next(item for item in items if item.n_slices == 5)
    assert five.load().spacing[0] == pytest.approx(2.5)

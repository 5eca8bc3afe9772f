"""Malformed files through the real command line: exit 2, one line naming the file, fast, small.

Each case builds its bad file in ``tmp_path`` the way a broken exporter, a cut download or a
hostile sender would, then runs ``python -m app.main`` (the console script's entry point) in a
subprocess. The contract: exit code 2, exactly one line on stderr that names the file and what is
wrong, under 5 s, and a peak memory under 500 MB above what the same command uses on a good file
(measured with ``os.wait4`` for that one child).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import REPO

SECONDS = 5.0
EXTRA_MEMORY_MB = 500


def run_cli(args, env=None) -> tuple[int, str, str, float, float]:
    """(exit code, stdout, stderr, wall seconds, peak resident MB) of one run of the command."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})}
    env.pop("CTVIEWER_DEBUG", None)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "app.main", *map(str, args)], cwd=REPO,
                                 stdout=out, stderr=err, env=env)
        try:
            _, status, usage = _wait4(child, timeout=60)
        finally:
            if child.returncode is None and child.poll() is None:
                child.kill()
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return (os.waitstatus_to_exitcode(status), out.read().decode(errors="replace"),
                err.read().decode(errors="replace"), wall, usage.ru_maxrss / 1024)


def _wait4(child: subprocess.Popen, timeout: float):
    """``os.wait4`` on this child only (RUSAGE_CHILDREN would mix in every earlier child)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        if time.monotonic() > deadline:
            child.kill()
            pid, status, usage = os.wait4(child.pid, 0)
            child.returncode = -9
            raise AssertionError(f"still running after {timeout} s: killed")
        time.sleep(0.02)


# -- good and bad files -----------------------------------------------------------------------------
def good_nifti(path: Path, shape=(6, 5, 4), dtype=np.int16) -> Path:
    arr = (np.arange(np.prod(shape)) % 100).astype(dtype).reshape(shape)
    nib.save(nib.Nifti1Image(arr, np.diag([0.7, 0.8, 2.5, 1.0])), path)
    return path


def ct_nifti(path: Path) -> Path:
    """A small int16 scan in HU with air and bone, so that `locate` reads it and turns to the model."""
    arr = np.full((32, 32, 24), -1000, np.int16)
    arr[8:24, 8:24, :] = 40
    arr[14:18, 20:24, :] = 700
    nib.save(nib.Nifti1Image(arr, np.diag([1.5, 1.5, 3.0, 1.0])), path)
    return path


def patch(path: Path, offset: int, fmt: str, *values) -> Path:
    """Overwrite header bytes of an uncompressed file in place."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(struct.pack(fmt, *values))
    return path


def nifti_negative_dim(tmp: Path):
    path = patch(good_nifti(tmp / "negative_dim.nii"), 42, "<h", -5)  # dim[1]
    return ["info", path], path


def nifti_nan_sform(tmp: Path):
    path = good_nifti(tmp / "nan_sform.nii")
    patch(path, 252, "<hh", 0, 1)                                       # qform off, sform on
    patch(path, 280, "<4f", float("nan"), 0, 0, 0)                      # srow_x
    return ["info", path], path


def nifti_nan_pixdim(tmp: Path):
    path = good_nifti(tmp / "nan_pixdim.nii")
    patch(path, 252, "<hh", 0, 0)                                       # no qform, no sform: pixdim rules
    patch(path, 80, "<f", float("nan"))                                 # pixdim[1]
    return ["info", path], path


def nifti_zero_axis(tmp: Path):
    path = tmp / "zero_axis.nii"
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 0), np.int16), np.eye(4)), path)
    return ["snapshot", path, "-o", tmp / "out.png"], path


def nifti_complex(tmp: Path):
    path = tmp / "complex.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 5, 4), np.complex64), np.eye(4)), path)
    return ["snapshot", path, "-o", tmp / "out.png"], path


def _huge_header(path: Path) -> bytes:
    """The header of a 2048 x 2048 x 512 int16 image (4 GiB of voxels) with no voxels after it."""
    img = nib.Nifti1Image(np.zeros((1, 1, 1), np.int16), np.eye(4))
    img.header.set_data_shape((2048, 2048, 512))
    return img.header.binaryblock + b"\0" * 4


def nifti_huge_claim(tmp: Path):
    path = tmp / "huge_claim.nii"
    path.write_bytes(_huge_header(path) + b"\x01" * 64)                 # 416 bytes on disk
    return ["info", path], path


def nifti_gz_huge_claim(tmp: Path):
    path = tmp / "huge_claim.nii.gz"
    path.write_bytes(gzip.compress(_huge_header(path)))                 # ~66 bytes on disk
    return ["info", path], path


def nifti_beyond_memory(tmp: Path):
    """A sparse .nii whose bytes are all there (1 TiB of zeros the disk does not store): only the
    machine's free memory can refuse it, and must before reading."""
    path = tmp / "terabyte.nii"
    img = nib.Nifti1Image(np.zeros((1, 1, 1), np.int16), np.eye(4))
    img.header.set_data_shape((32000, 32000, 540))
    path.write_bytes(img.header.binaryblock + b"\0" * 4)
    try:
        os.truncate(path, 352 + 32000 * 32000 * 540 * 2)
    except OSError as exc:
        pytest.skip(f"this file system cannot hold a sparse 1 TiB file: {exc}")
    return ["info", path], path


def good_nrrd(path: Path) -> Path:
    import nrrd

    nrrd.write(str(path), np.arange(60, dtype=np.int16).reshape(3, 4, 5), index_order="C")
    return path


def nrrd_cut_header(tmp: Path):
    path = good_nrrd(tmp / "cut.nrrd")
    path.write_bytes(path.read_bytes()[:20])
    return ["info", path], path


def nrrd_sizes_vs_dimension(tmp: Path):
    path = tmp / "sizes.nrrd"
    path.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 5\nencoding: raw\n\n" + b"\0" * 40)
    return ["info", path], path


def nrrd_gz_huge_claim(tmp: Path):
    """A gzip NRRD whose header claims 2048 x 2048 x 512 shorts over a few bytes of data."""
    path = tmp / "huge.nrrd"
    path.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 2048 2048 512\nencoding: gzip\n\n"
                     + gzip.compress(b"\0" * 1000))
    return ["info", path], path


def nhdr_detached_short(tmp: Path):
    """A detached header whose raw data file holds a fraction of what the header claims."""
    (tmp / "scan.raw").write_bytes(b"\0" * 1000)
    path = tmp / "scan.nhdr"
    path.write_text("NRRD0004\ntype: short\ndimension: 3\nsizes: 512 512 300\nencoding: raw\n"
                    "data file: scan.raw\n\n")
    return ["info", path], path


def npz_bomb(tmp: Path):
    """A .npz whose one array inflates 1000-fold (numpy would unpack it whole to read it)."""
    path = tmp / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("scan.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<i2", "fortran_order": False,
                                                          "shape": (1024, 1024, 192)})
            for _ in range(24):
                member.write(b"\0" * (1 << 24))
    return ["info", path], path


def zero_byte(suffix: str):
    def build(tmp: Path):
        path = tmp / f"empty{suffix}"
        path.write_bytes(b"")
        return ["labels", "convert", path, tmp / "out.nii.gz"], path
    return build


def seg_label_value_abc(tmp: Path):
    import nrrd

    path = tmp / "bad_value.seg.nrrd"
    nrrd.write(str(path), np.ones((3, 4, 5), np.uint8), {"Segment0_Name": "liver", "Segment0_LabelValue": "abc",
                                                         "Segment0_Layer": "0"}, index_order="C")
    return ["labels", "convert", path, tmp / "out.nii.gz"], path


def npy_version(major: int, path: Path, array: np.ndarray) -> Path:
    """``array`` saved as a .npy of format version ``major`` (3 is real: numpy writes it for utf-8
    field names; 9 does not exist)."""
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, array, version=(3 if major == 3 else 1, 0))
    if major != 3:
        data = bytearray(path.read_bytes())
        data[6] = major
        path.write_bytes(bytes(data))
    return path


def npy_version_9(tmp: Path):
    path = npy_version(9, tmp / "version9.npy", np.zeros((3, 4, 5), np.int16))
    return ["info", path], path


def npy_version_3_cut(tmp: Path):
    path = npy_version(3, tmp / "version3.npy", np.zeros((30, 40, 50), np.int16))
    path.write_bytes(path.read_bytes()[:2000])
    return ["info", path], path


def dicom_file(path: Path, **attributes) -> Path:
    import pydicom
    from pydicom.uid import generate_uid

    from tests.dicom_series import ct_slice

    ds = ct_slice(np.arange(16 * 16, dtype=np.int16).reshape(16, 16), (0, 0, 0), series_uid=generate_uid())
    for key, value in attributes.items():
        setattr(ds, key, value)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def dicom_rescale_1e30(tmp: Path):
    path = dicom_file(tmp / "slope.dcm", RescaleSlope="1e30", RescaleIntercept="0")
    return ["info", path], path


def dicom_huge_frame_count(tmp: Path):
    path = dicom_file(tmp / "frames.dcm", NumberOfFrames=str(2**31 - 1))
    return ["info", path], path


def card_with(folder: Path, name: str, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    card = {"name": name, "task": "slice_locator", "format_version": 1,
            "outputs": {"levels": ["L3", "T12"], "threshold": 0.3}, **fields}
    (folder / f"{name}.json").write_text(json.dumps(card))
    return folder / f"{name}.keras"


def card_threshold_text(tmp: Path):
    model = card_with(tmp / "models", "loc", outputs={"levels": ["L3"], "threshold": "high"})
    model.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    scan = ct_nifti(tmp / "scan.nii.gz")
    return ["locate", scan, "--model", model, "-o", tmp / "picks.csv"], model.with_suffix(".json")


def keras_zip_bomb(tmp: Path):
    model = card_with(tmp / "models", "bomb")
    with zipfile.ZipFile(model, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 24)
            for _ in range(24):              # 384 MB of zeros in ~400 KB
                member.write(block)
    scan = ct_nifti(tmp / "scan.nii.gz")
    return ["locate", scan, "--model", model, "-o", tmp / "picks.csv"], model


def nifti_library_warning(tmp: Path):
    """nibabel logs 'data code 3 not recognized; not attempting fix' on its own logger before it
    fails: that must not reach stderr before (or beside) our one line."""
    path = patch(good_nifti(tmp / "warns.nii"), 70, "<h", 3)          # datatype 3: no such code
    return ["info", path], path


CASES = {
    "nifti negative dim": nifti_negative_dim,
    "nifti NaN sform": nifti_nan_sform,
    "nifti NaN pixdim": nifti_nan_pixdim,
    "nifti zero-length axis (snapshot)": nifti_zero_axis,
    "nifti complex dtype (snapshot)": nifti_complex,
    "nii claiming 4 GiB in 416 bytes": nifti_huge_claim,
    "nii.gz claiming 4 GiB in 66 bytes": nifti_gz_huge_claim,
    "sparse .nii beyond free memory": nifti_beyond_memory,
    "nifti library warning, then refusal": nifti_library_warning,
    "nrrd header cut at 20 bytes": nrrd_cut_header,
    "nrrd sizes not matching dimension": nrrd_sizes_vs_dimension,
    "gzip nrrd claiming 4 GiB": nrrd_gz_huge_claim,
    "nhdr with a short data file": nhdr_detached_short,
    ".npz zip bomb": npz_bomb,
    "zero-byte .nrrd (convert)": zero_byte(".nrrd"),
    "zero-byte .seg.nrrd (convert)": zero_byte(".seg.nrrd"),
    "zero-byte .nhdr (convert)": zero_byte(".nhdr"),
    "Segment0_LabelValue abc": seg_label_value_abc,
    "npy header version 3, data cut": npy_version_3_cut,
    "npy header version 9": npy_version_9,
    "DICOM RescaleSlope 1e30": dicom_rescale_1e30,
    "DICOM NumberOfFrames 2^31-1": dicom_huge_frame_count,
    "card with a non-numeric threshold": card_threshold_text,
    ".keras zip bomb": keras_zip_bomb,
}


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory) -> float:
    """Peak memory of ``ctviewer info`` on a good file: what a bad one is compared with."""
    path = good_nifti(tmp_path_factory.mktemp("good") / "good.nii.gz")
    code, _, err, _, peak = run_cli(["info", path])
    assert code == 0, err
    return peak


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_file_exits_2_with_one_line_naming_it(case, tmp_path, baseline_mb, monkeypatch):
    args, named = CASES[case](tmp_path)
    code, _, err, wall, peak = run_cli(args, env={"CTVIEWER_MODELS_DIR": str(tmp_path / "models")})
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert str(named) in lines[0] or named.name in lines[0], lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in err
    assert wall < SECONDS, f"{wall:.1f} s"
    assert peak < baseline_mb + EXTRA_MEMORY_MB, f"peak {peak:.0f} MB vs baseline {baseline_mb:.0f} MB"


def test_zip_bomb_refused_without_tensorflow(tmp_path, user_models):
    """The archive is judged before Keras (and TensorFlow, seconds to import) is touched."""
    from ctviewer.errors import InputError
    from ctviewer.ml.registry import load_model

    model = keras_zip_bomb(tmp_path)[1]
    already = "tensorflow" in sys.modules
    with pytest.raises(InputError, match="uncompress"):
        load_model(model)
    assert already or "tensorflow" not in sys.modules


def test_card_with_unknown_task_is_listed_unusable(tmp_path):
    folder = tmp_path / "models"
    card_with(folder, "mystery", task="teleportation").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    code, out, err, _, _ = run_cli(["models", "--json"], env={"CTVIEWER_MODELS_DIR": str(folder)})
    assert code == 0, err
    listing = json.loads(out)
    assert "mystery" not in [m["name"] for m in listing["models"]]
    assert any("mystery" in p and "teleportation" in p for p in listing["problems"])


def test_library_warnings_go_into_the_volume_warnings(tmp_path):
    """A file nibabel fixes on the fly opens, and what nibabel said is one of its warnings, not a
    stray stderr line before the output."""
    path = patch(good_nifti(tmp_path / "negative_pixdim.nii"), 80, "<f", -0.7)   # pixdim[1] < 0
    code, out, err, _, _ = run_cli(["info", path, "--json"])
    assert code == 0, err
    assert err.strip() == ""
    assert any("pixdim" in w for w in json.loads(out)["warnings"])


def test_npy_version_3_opens(tmp_path):
    """Format 3.0 is numpy's own (utf-8 headers): it opens with its values, in process and from the CLI."""
    from ctviewer.io.registry import read_volume

    array = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    path = npy_version(3, tmp_path / "version3.npy", array)
    assert path.read_bytes()[6] == 3
    np.testing.assert_array_equal(read_volume(path, canonical=False).array, array)
    code, out, err, _, _ = run_cli(["info", path, "--json"])
    assert code == 0, err
    assert json.loads(out)["shape_zyx"] == [3, 4, 5]


@pytest.mark.parametrize("member", ["../outside.json", "/etc/evil", "C:/evil.h5"])
def test_model_archive_members_must_stay_inside(tmp_path, user_models, member):
    """A .keras member named to land outside the folder it is unpacked to is refused from the
    archive's directory, with the model file named."""
    from ctviewer.errors import InputError
    from ctviewer.ml.registry import find_model

    model = card_with(user_models, "sneaky")
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr(member, "x")
    with pytest.raises(InputError, match="outside its folder") as caught:
        find_model("sneaky")
    assert caught.value.path == str(model)

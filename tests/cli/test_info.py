"""`ctviewer info` end to end, through the installed command's entry point in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import REPO


def ctviewer(*args, timeout=120):
    """Run the real command line (the console script's entry point) and capture what it prints."""
    return subprocess.run([sys.executable, "-m", "app.main", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def ras_nifti(tmp_path):
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(6, 5, 4) - 1000  # nibabel order (i, j, k)
    affine = np.diag([0.7, 0.8, 2.5, 1.0])
    affine[:3, 3] = (-10, 20, 30)
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(arr, affine), path)
    return path


def test_info_json_reports_geometry_in_lps(ras_nifti):
    res = ctviewer("info", ras_nifti, "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["format"] == "nifti" and info["dtype"] == "int16"
    assert info["shape_zyx"] == [4, 5, 6]
    assert info["spacing_zyx_mm"] == pytest.approx([2.5, 0.8, 0.7])
    # RAS (-10, 20, 30) is LPS (10, -20, 30)
    assert info["origin_lps_mm"] == pytest.approx([10, -20, 30])
    assert info["value_range"] == [-1000, -1000 + 119]
    assert info["orientation"] == "SAR"


def test_info_text_is_readable(ras_nifti):
    res = ctviewer("info", ras_nifti)
    assert res.returncode == 0
    assert "6 x 5 x 4 voxels" in res.stdout and "0.7 x 0.8 x 2.5 mm" in res.stdout


def test_missing_file_is_bad_input_in_one_line(tmp_path):
    res = ctviewer("info", tmp_path / "nope.nii")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "nope.nii" in res.stderr and "no such file" in res.stderr
    assert "Traceback" not in res.stderr


def test_garbage_file_is_refused_with_reason(tmp_path):
    bad = tmp_path / "scan.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage that is not gzip data")
    res = ctviewer("info", bad)
    assert res.returncode == 2, res.stdout
    assert "scan.nii.gz" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_empty_folder_is_refused(tmp_path):
    res = ctviewer("info", tmp_path)
    assert res.returncode == 2
    assert "no image" in res.stderr


def test_usage_error_is_exit_2():
    res = ctviewer("info")
    assert res.returncode == 2 and "ctviewer" in res.stderr and "Traceback" not in res.stderr


def test_real_ct_slab(shared_data):
    res = ctviewer("info", shared_data / "ct" / "abdomen_slab_ct.nii.gz", "--json")
    info = json.loads(res.stdout)
    assert info["modality"] == "CT" and info["dtype"] == "int16"
    assert sorted(info["shape_zyx"]) == [30, 101, 122]
    assert info["spacing_zyx_mm"] == pytest.approx([3, 3, 3])


def test_headless_verbs_do_not_import_qt(ras_nifti):
    code = ("import sys, app.main as m; m.main(['info', %r]); "
            "print('QT' if any(k.startswith(('PySide6', 'pyqtgraph', 'vtk')) for k in sys.modules) else 'NOQT')"
            % str(ras_nifti))
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip().endswith("NOQT"), res.stdout + res.stderr


def test_gui_without_display_says_so_in_one_line(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    res = subprocess.run([sys.executable, "-m", "app.main", "demo"], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env=env)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "no display" in res.stderr and "ctviewer snapshot" in res.stderr and "xvfb-run" in res.stderr

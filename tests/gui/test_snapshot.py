"""`ctviewer snapshot` renders what the GUI shows, headless, with correct orientation."""

from __future__ import annotations

import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

pytestmark = pytest.mark.gui


def run_snapshot(*args, display=False, timeout=180):
    env = dict(os.environ)
    if not display:
        for key in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
            env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "app.main", "snapshot", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def stamp_nifti(tmp_path_factory):
    """Stored in RAS order (as most NIfTI files): the reader must flip it to radiological display."""
    # With this diagonal affine nibabel's axes run along RAS+: i to the patient's Right, j to
    # Anterior, k to Superior -- the opposite of the radiological screen in both i and j.
    arr = np.full((80, 60, 40), -1000, np.int16)
    arr[10:70, 10:50, :] = 40
    arr[60:70, 30:40, :] = 1200      # bright bar at the patient's RIGHT (high i), anterior half (high j)
    arr[10:20, 10:20, 30:40] = 700   # block at the patient's LEFT (low i), posterior (low j), SUPERIOR (high k)
    path = tmp_path_factory.mktemp("snap") / "stamp.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.diag([1.0, 1.0, 2.0, 1.0])), path)
    return path


def brightness(path):
    return np.asarray(Image.open(path).convert("L"), dtype=float)


def test_axial_snapshot_without_display(stamp_nifti, tmp_path):
    out = tmp_path / "axial.png"
    res = run_snapshot(stamp_nifti, "-o", out, "--view", "axial", "--slice", "5", "--window", "2000/0",
                       "--size", "400x400")
    assert res.returncode == 0, res.stderr
    img = brightness(out)
    assert img.shape == (400, 400)
    bright = np.argwhere(img > 230)
    # radiological display: the patient's right on the screen's left, anterior at the top
    assert bright[:, 1].mean() < 200 and bright[:, 0].mean() < 200


def test_coronal_snapshot_puts_superior_up(stamp_nifti, tmp_path):
    out = tmp_path / "coronal.png"
    # coronal slice through the superior block: it lies at RAS j 10..20 -> posterior rows of the display
    res = run_snapshot(stamp_nifti, "-o", out, "--view", "coronal", "--slice", "45", "--window", "2000/0",
                       "--size", "400x400")
    assert res.returncode == 0, res.stderr
    img = brightness(out)
    block = np.argwhere((img > 150) & (img < 240))
    assert block.size and block[:, 0].mean() < 200     # superior: top half
    assert block[:, 1].mean() > 200                    # patient left: screen right


def test_snapshot_with_labels_and_bad_slice(stamp_nifti, tmp_path):
    lab = np.zeros((80, 60, 40), np.uint8)
    lab[20:40, 20:40, :] = 1
    lab_path = tmp_path / "lab.nii.gz"
    nib.save(nib.Nifti1Image(lab, np.diag([1.0, 1.0, 2.0, 1.0])), lab_path)
    out = tmp_path / "lab.png"
    res = run_snapshot(stamp_nifti, "-o", out, "--labels", lab_path, "--size", "300x300")
    assert res.returncode == 0, res.stderr
    rgb = np.asarray(Image.open(out).convert("RGB"), dtype=int)
    colour = rgb[..., 0] - rgb[..., 2]
    assert (colour > 60).sum() > 100     # the label's red-ish default colour is drawn
    res = run_snapshot(stamp_nifti, "-o", tmp_path / "x.png", "--slice", "999")
    assert res.returncode == 2 and "--slice 999" in res.stderr and "Traceback" not in res.stderr

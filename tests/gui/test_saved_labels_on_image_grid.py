"""Labels painted in the app and saved land on the opened file's grid (DESIGN.md, "Data conventions").

The views show a RAS-stored NIfTI flipped to the display order; a stroke painted there and saved
with Ctrl+S must sit, in the saved file's raw array, on the voxels at the same place in the patient,
with the image's affine — checked with nibabel alone, as an nnU-Net or TotalSegmentator user reads it.
"""

from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np

from tests.gui.conftest import make_main_window, send_drag
from tests.gui.test_painting import key, widget_pos

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def test_a_stroke_saved_from_a_ras_image_sits_on_the_files_voxels(qtbot, tmp_path, monkeypatch):
    window = make_main_window(qtbot, tmp_path, monkeypatch, with_3d=True)   # as users get it
    values = np.full((60, 50, 12), -1000, np.int16)        # nibabel (i, j, k): stored RAS
    values[5:25, 10:40, :] = 300                            # asymmetric: a block on the patient's right
    affine = np.diag([0.9, 0.8, 2.5, 1.0])
    affine[:3, 3] = (-20.0, 15.0, 40.0)
    image = nib.Nifti1Image(values, affine)
    image.set_sform(affine, code=2)
    nib.save(image, str(tmp_path / "ct.nii.gz"))
    before = hashlib.sha256((tmp_path / "ct.nii.gz").read_bytes()).hexdigest()

    window.open_paths([tmp_path / "ct.nii.gz"])
    qtbot.waitUntil(lambda: window.study is not None, timeout=20000)
    shown = window.study.image
    assert shown.meta.get("stored_grid") is not None      # the display did reorder this file
    axial = window.viewer.views["axial"]
    key(window, "B")
    window.annotator.update_settings(radius=2, unit="px")
    k = axial.slice_index
    send_drag(axial, widget_pos(axial, (k, 10, 8)), widget_pos(axial, (k, 10, 30)))   # starts a layer
    layer = window.study.layers.by_kind("labels")[0]
    painted = np.argwhere(layer.array > 0)
    assert len(painted) > 10

    target = tmp_path / "ct_labels.nii.gz"
    window.ask_save_path = lambda default: target
    key(window, "Ctrl+S")
    qtbot.waitUntil(lambda: target.exists() and not window.annotator.editor.modified, timeout=10000)

    saved = nib.load(str(target))
    raw = np.asarray(saved.dataobj)
    assert raw.shape == values.shape and np.array_equal(saved.affine, nib.load(str(tmp_path / "ct.nii.gz")).affine)
    # each painted voxel of the view, found in the file through the patient position alone
    ras = (RAS_TO_LPS @ shown.index_to_lps(painted).T).T
    ijk = np.rint(np.linalg.solve(saved.affine[:3, :3], (ras - saved.affine[:3, 3]).T).T).astype(int)
    assert np.all(raw[tuple(ijk.T)] == layer.array[tuple(painted.T)])
    assert np.count_nonzero(raw) == len(painted)
    assert hashlib.sha256((tmp_path / "ct.nii.gz").read_bytes()).hexdigest() == before   # the scan untouched

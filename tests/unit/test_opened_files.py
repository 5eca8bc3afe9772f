"""The files an image was read from are recognised under any name, so no save lands on them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.io.opened import image_files, is_image_file, refuse_image_file
from ctviewer.io.registry import read_volume


def test_a_nifti_is_its_own_file_under_a_link_or_a_relative_name(tmp_path, shared_data, monkeypatch):
    ct = Path(shutil.copy2(shared_data / "ct" / "abdomen_slab_ct.nii.gz", tmp_path / "scan.nii.gz"))
    image = read_volume(ct)
    os.link(ct, tmp_path / "again.nii.gz")
    monkeypatch.chdir(tmp_path)
    assert is_image_file(ct, image) and is_image_file("scan.nii.gz", image)
    assert is_image_file(tmp_path / "again.nii.gz", image)
    assert not is_image_file(tmp_path / "scan_labels.nii.gz", image)
    labels = image.with_array(np.zeros(image.shape, np.uint8))
    assert labels.source == "" and not is_image_file(ct, labels)   # a label map has no file of its own
    with pytest.raises(InputError, match="is the image you opened") as refused:
        refuse_image_file(tmp_path / "again.nii.gz", image)
    assert "again.nii.gz" in str(refused.value) and "\n" not in str(refused.value)


def test_every_file_of_a_dicom_series_is_the_image(tmp_path, shared_data):
    folder = tmp_path / "series"
    folder.mkdir()
    for path in sorted((shared_data / "ct" / "acrin_001_dicom").glob("*.dcm"))[:6]:
        shutil.copy2(path, folder)
    image = read_volume(folder)
    files = image_files(image)
    assert len(files) == 6 and all(is_image_file(f, image) for f in folder.iterdir())
    assert not is_image_file(folder / "labels.dcm", image)   # a DICOM-SEG beside the series is fine
    assert not is_image_file(folder, image)

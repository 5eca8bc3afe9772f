"""`ctviewer labels stats|convert`: run in-process through ctviewer.cli.main, and once through the
installed command for its exit code."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from ctviewer.cli import main
from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.io.label_files import read_label_map
from ctviewer.io.writers import write_label_map, write_volume
from tests.conftest import REPO
from tests.unit.test_label_formats import write_ct_series


def _table() -> LabelTable:
    table = LabelTable()
    table.add(1, "pore", (0, 0, 255))
    table.add(3, "quartz", (250, 250, 250))
    return table


@pytest.fixture
def ct_and_labels(tmp_path):
    image = Volume(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 100, spacing=(2.0, 1.0, 0.5),
                   origin=(3.0, -4.0, 5.0), modality="CT")
    ids = np.zeros(image.shape, np.uint8)
    ids[1:3, 1:4, 2:5], ids[0, 0, :2] = 3, 1
    write_volume(image, tmp_path / "ct.nii.gz")
    write_label_map(LabelMap(image.with_array(ids), _table()), tmp_path / "labels.nii.gz")
    return tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz", image, ids


def test_stats_text(ct_and_labels, capsys):
    image_path, labels_path, image, ids = ct_and_labels
    assert main(["labels", "stats", str(image_path), str(labels_path)]) == 0
    rows = {line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"unlabelled", "pore", "quartz"}
    quartz = image.array[ids == 3]
    assert rows["quartz"][2] == str(quartz.size) and rows["quartz"][3] == f"{quartz.size * 1e-3:.3f}"
    assert rows["quartz"][4] == f"{quartz.mean():.2f}" and rows["quartz"][5] == f"{quartz.std():.2f}"


def test_stats_json(ct_and_labels, capsys):
    image_path, labels_path, _, ids = ct_and_labels
    assert main(["labels", "stats", str(image_path), str(labels_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_id = {s["id"]: s for s in data["statistics"]}
    assert by_id[1]["name"] == "pore" and by_id[1]["voxels"] == 2
    assert by_id[3]["fraction_pct"] == pytest.approx(100 * np.mean(ids == 3)) and data["warnings"] == []


def test_stats_names_ids_missing_from_the_table(ct_and_labels, capsys):
    image_path, labels_path, image, ids = ct_and_labels
    ids = ids.copy()
    ids[3, 4, 5] = 9
    write_volume(image.with_array(ids), labels_path)  # the old labels.labels.json stays beside
    assert main(["labels", "stats", str(image_path), str(labels_path)]) == 0
    out, err = capsys.readouterr()
    assert "Label 9" in out and "warning" in err and "labels.nii.gz" in err and "id 9" in err


def test_stats_refuses_labels_of_another_grid(ct_and_labels, tmp_path, capsys):
    image_path, _, image, _ = ct_and_labels
    write_label_map(LabelMap(image.with_array(np.zeros((4, 5, 7), np.uint8))), tmp_path / "other.nii.gz")
    assert main(["labels", "stats", str(image_path), str(tmp_path / "other.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other.nii.gz" in err and "refusing to resample" in err


@pytest.mark.parametrize("name", ["out.seg.nrrd", "out.nrrd", "out.npy", "out.nii"])
def test_convert_keeps_names_colours_and_geometry(ct_and_labels, tmp_path, capsys, name):
    image_path, labels_path, image, ids = ct_and_labels
    out = tmp_path / name
    assert main(["labels", "convert", str(labels_path), str(out), "--reference", str(image_path)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 2 labels on 6 x 5 x 4 voxels")
    back = read_label_map(out, canonical=False)
    assert np.array_equal(back.array, ids) and back.volume.same_grid(image)
    assert [(lab.id, lab.name, lab.colour) for lab in back.table] == [(1, "pore", (0, 0, 255)),
                                                                      (3, "quartz", (250, 250, 250))]


def test_convert_colour_png_needs_map_colours(tmp_path, capsys):
    rgb = np.zeros((1, 3, 4, 3), np.uint8)
    rgb[0, 0] = (0, 0, 255)
    rgb[0, 1:, 1:] = (250, 250, 250)
    write_volume(Volume(rgb, modality="XC"), tmp_path / "colours.png")
    assert main(["labels", "convert", str(tmp_path / "colours.png"), str(tmp_path / "ids.png")]) == 2
    assert "--map-colours" in capsys.readouterr().err
    _table().write(tmp_path / "colours.labels.json")
    assert main(["labels", "convert", str(tmp_path / "colours.png"), str(tmp_path / "ids.png"),
                 "--map-colours"]) == 0
    back = read_label_map(tmp_path / "ids.png")
    assert back.array[0, 0, 0] == 1 and back.array[0, 2, 3] == 3 and back.array[0, 1, 0] == 0
    assert back.table[3].name == "quartz"


def test_convert_to_dicom_seg_and_back(tmp_path, capsys):
    write_ct_series(tmp_path / "ct")
    from ctviewer.io.registry import read_volume

    image = read_volume(tmp_path / "ct")
    ids = np.zeros(image.shape, np.uint8)
    ids[1:3, 2:5, 1:4] = 3
    write_label_map(LabelMap(image.with_array(ids), _table()), tmp_path / "labels.nii.gz")
    seg = tmp_path / "labels.dcm"
    assert main(["labels", "convert", str(tmp_path / "labels.nii.gz"), str(seg)]) == 2
    assert "--reference" in capsys.readouterr().err
    assert main(["labels", "convert", str(tmp_path / "labels.nii.gz"), str(seg),
                 "--reference", str(tmp_path / "ct")]) == 0
    assert "DICOM-SEG" in capsys.readouterr().out
    assert main(["labels", "stats", str(tmp_path / "ct"), str(seg), "--json"]) == 0
    stats = {s["id"]: s for s in json.loads(capsys.readouterr().out)["statistics"]}
    assert stats[3]["name"] == "quartz" and stats[3]["voxels"] == int(np.sum(ids == 3))


def test_dicom_seg_of_a_nifti_image_is_refused(ct_and_labels, tmp_path, capsys):
    image_path, labels_path, _, _ = ct_and_labels
    assert main(["labels", "convert", str(labels_path), str(tmp_path / "x.dcm"), "--reference",
                 str(image_path)]) == 2
    assert "DICOM-SEG needs the image to come from DICOM files" in capsys.readouterr().err


def test_installed_command_exit_codes(ct_and_labels, tmp_path):
    image_path, labels_path, _, _ = ct_and_labels
    command = REPO / ".venv" / "bin" / "ctviewer"
    if not command.exists():
        pytest.skip(f"{command} is not installed")
    ok = subprocess.run([str(command), "labels", "stats", str(image_path), str(labels_path)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "quartz" in ok.stdout
    bad = subprocess.run([str(command), "labels", "convert", str(labels_path), str(tmp_path / "x.mha")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "x.mha" in bad.stderr and "Traceback" not in bad.stderr


# -- round trips keep the image's grid on disk (arrays and headers read back raw) ---------------------
@pytest.mark.parametrize("kind", ["ras", "lps", "oblique"])
@pytest.mark.parametrize("reference", [False, True])
def test_convert_nifti_seg_nrrd_nifti_gives_back_the_same_array_and_affine(tmp_path, capsys, kind, reference):
    import nibabel as nib
    import nrrd

    from tests.unit.test_written_on_image_grid import affine_of, ct_values, label_values, save_nifti

    img = save_nifti(tmp_path / "ct.nii.gz", ct_values(), affine_of(kind))
    save_nifti(tmp_path / "labels.nii.gz", label_values(), img.affine)
    ref = ["--reference", str(tmp_path / "ct.nii.gz")] if reference else []
    assert main(["labels", "convert", str(tmp_path / "labels.nii.gz"), str(tmp_path / "mid.seg.nrrd"), *ref]) == 0
    data, _ = nrrd.read(str(tmp_path / "mid.seg.nrrd"))
    assert np.array_equal(data, label_values())                        # the middle file too
    assert main(["labels", "convert", str(tmp_path / "mid.seg.nrrd"), str(tmp_path / "back.nii.gz"), *ref]) == 0
    back = nib.load(str(tmp_path / "back.nii.gz"))
    assert np.array_equal(np.asarray(back.dataobj), label_values())
    if reference:   # the reference's own header: the very same affine and codes
        assert np.array_equal(back.affine, img.affine) and int(back.header["sform_code"]) == 2
    else:
        assert np.allclose(back.affine, img.affine, rtol=0, atol=1e-6)


@pytest.mark.parametrize("orientation, step", [
    ((1, 0, 0, 0, 1, 0), (0, 0, -2.5)),       # axial, head to feet
    ((-1, 0, 0, 0, -1, 0), (0, 0, 2.5)),      # axial turned 180 degrees in plane
    ((1, 0, 0, 0, 0, -1), (0, 3.0, 0)),       # coronal
])
def test_convert_nifti_dicom_seg_nifti_gives_back_the_same_array_and_affine(tmp_path, capsys, orientation, step):
    """Labels on the DICOM series' grid (as dcm2niix writes it) -> DICOM-SEG -> NIfTI: identical."""
    import nibabel as nib

    from ctviewer.io.nifti import geometry_to_affine
    from ctviewer.io.registry import read_volume

    write_ct_series(tmp_path / "ct", orientation, step)
    stored = read_volume(tmp_path / "ct", canonical=False)          # the files' own slice and pixel order
    ids = np.random.default_rng(5).choice([0, 1, 3], size=stored.shape).astype(np.uint8)
    ids[0, 0, 0] = 3
    nib.save(nib.Nifti1Image(ids.T.copy(), geometry_to_affine(stored)), str(tmp_path / "labels.nii.gz"))
    _table().write(tmp_path / "labels.labels.json")
    ref = ["--reference", str(tmp_path / "ct")]
    assert main(["labels", "convert", str(tmp_path / "labels.nii.gz"), str(tmp_path / "seg.dcm"), *ref]) == 0
    assert main(["labels", "convert", str(tmp_path / "seg.dcm"), str(tmp_path / "back.nii.gz"), *ref]) == 0
    first, back = nib.load(str(tmp_path / "labels.nii.gz")), nib.load(str(tmp_path / "back.nii.gz"))
    assert np.array_equal(np.asarray(back.dataobj), np.asarray(first.dataobj))
    assert np.allclose(back.affine, first.affine, rtol=0, atol=1e-6)

"""NIfTI and NRRD readers: nibabel's own test images, the real CT, seg.nrrd, and bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from ctviewer.data.labels import LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.label_files import read_label_map
from ctviewer.io.nifti import NiftiReader, apply_scaling
from ctviewer.io.nrrd_io import NrrdReader
from ctviewer.io.nrrd_io import read_label_map as read_nrrd_labels
from ctviewer.io.registry import read_volume
from ctviewer.io.writers import write_volume

NIBABEL_IMAGES = ["example4d.nii.gz", "example_nifti2.nii.gz", "anatomical.nii", "functional.nii",
                  "standard.nii.gz", "reoriented_anat_moved.nii", "resampled_anat_moved.nii",
                  "row_major.dconn.nii", "analyze.hdr"]


def load_one(path: Path, reader=None) -> Volume:
    items = (reader or NiftiReader()).examine(path)
    assert items, f"{path} not recognised"
    return items[0].load()


# -- nibabel's test images ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NIBABEL_IMAGES)
def test_nibabel_images_load_or_refuse_clearly(name):
    from nibabel.testing import data_path

    path = Path(data_path) / name
    try:
        items = NiftiReader().examine(path)
        for item in items[:2]:
            volume = item.load()
            assert volume.array.dtype != np.float64 or nib.load(path).get_data_dtype() == np.float64
            assert np.all(np.isfinite(volume.affine))
    except InputError as exc:
        assert str(path) in str(exc)


def test_4d_nifti_gives_one_loadable_per_volume():
    from nibabel.testing import data_path

    path = Path(data_path) / "example4d.nii.gz"
    items = NiftiReader().examine(path)
    img = nib.load(path)
    assert len(items) == img.shape[3] and "volume 2 of 2" in items[1].description
    second = items[1].load()
    expected = np.asanyarray(img.dataobj.get_unscaled())[..., 1].T
    assert second.array.dtype == np.int16 and np.array_equal(second.array, expected)


# -- real CT -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, shape, spacing", [
    ("abdomen_slab_ct.nii.gz", (30, 101, 122), (3.0, 3.0, 3.0)),
    ("chest_ct.nii.gz", (112, 102, 122), (1.5, 1.5, 1.5)),
])
def test_real_ct_geometry_matches_nibabel(shared_data, name, shape, spacing):
    path = shared_data / "ct" / name
    volume = load_one(path)
    assert volume.shape == shape and volume.array.dtype == np.int16
    assert np.allclose(volume.spacing, spacing, atol=1e-3) and volume.modality == "CT"
    img = nib.load(path)
    for k, j, i in [(0, 0, 0), (shape[0] - 1, 7, 3), (5, shape[1] - 1, shape[2] - 1)]:
        ras = img.affine @ np.array([i, j, k, 1.0])
        assert np.allclose(volume.index_to_lps((k, j, i)), ras[:3] * [-1, -1, 1], atol=1e-4)
        assert volume.array[k, j, i] == np.asanyarray(img.dataobj)[i, j, k]


def test_real_ct_through_registry_is_canonical(shared_data):
    path = shared_data / "ct" / "abdomen_slab_ct.nii.gz"
    stored, canonical = load_one(path), read_volume(path)
    assert canonical.array.dtype == np.int16
    # canonical: axis 0 superior, 1 posterior, 2 left — the same voxel stays at the same place
    assert np.allclose(np.abs(np.diag(canonical.direction[::-1])), 1)
    point = stored.index_to_lps((3, 10, 20))
    k, j, i = np.round(canonical.lps_to_index(point)).astype(int)
    assert canonical.array[k, j, i] == stored.array[3, 10, 20]


def test_real_labels_read_as_label_map(shared_data):
    labels = read_label_map(shared_data / "ct" / "abdomen_slab_labels.nii.gz")
    assert labels.array.dtype == np.uint8 and labels.volume.modality == ""
    assert {5, 32} <= set(np.unique(labels.array).tolist())


# -- NIfTI scaling and shapes ------------------------------------------------------------------
def test_scaling_keeps_integers_when_it_can():
    raw = np.array([0, 1000, 3000], dtype=np.uint16)
    assert apply_scaling(raw, 1.0, -1024.0).dtype == np.int16
    assert apply_scaling(raw, 1.0, 0.0) is raw
    assert apply_scaling(raw, 0.5, 0.0).dtype == np.float32
    assert apply_scaling(np.array([0, 30000], np.int16), 2.0, 0.0).dtype == np.int32


def test_scaled_nifti_reads_as_int16(tmp_path):
    raw = np.arange(24, dtype=np.uint16).reshape(2, 3, 4) * 100
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, tmp_path / "scaled.nii")
    volume = load_one(tmp_path / "scaled.nii")
    assert volume.array.dtype == np.int16 and volume.array[0, 0, 0] == -1024


def test_too_many_volumes_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 65), np.int16), np.eye(4)), tmp_path / "dwi.nii.gz")
    with pytest.raises(InputError, match="4-D NIfTI with 65 volumes: not an image volume") as err:
        NiftiReader().examine(tmp_path / "dwi.nii.gz")
    assert "dwi.nii.gz" in str(err.value)


def test_five_d_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 1, 3), np.float32), np.eye(4)), tmp_path / "warp.nii.gz")
    with pytest.raises(InputError, match="not an image volume") as err:
        read_volume(tmp_path / "warp.nii.gz")
    assert "warp.nii.gz" in str(err.value)


def test_rgb_2d_nifti_reads_as_photo(tmp_path):
    rgb = np.zeros((5, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"][2, 1] = 200
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), tmp_path / "rgb.nii")
    volume = load_one(tmp_path / "rgb.nii")
    assert volume.array.shape == (1, 4, 5, 3) and volume.array[0, 1, 2, 0] == 200 and volume.is_rgb


def test_truncated_nifti_gz_names_the_file(tmp_path):
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).integers(-1000, 1000, (20, 20, 20)).astype(np.int16),
                             np.eye(4)), good)
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError) as err:
        read_volume(bad)
    assert "cut.nii.gz" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not a nifti file at all" * 20, gzip.compress(b"\x00" * 100)])
def test_garbage_nifti_names_the_file(tmp_path, content):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_volume(path)
    assert "broken.nii.gz" in str(err.value)


def test_modality_from_sidecar(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.float32), np.eye(4)), tmp_path / "pet.nii.gz")
    (tmp_path / "pet.json").write_text('{"Modality": "PT"}')
    assert load_one(tmp_path / "pet.nii.gz").modality == "PT"


# -- NRRD --------------------------------------------------------------------------------------
@pytest.mark.parametrize("space, sign", [("left-posterior-superior", (1, 1, 1)),
                                         ("right-anterior-superior", (-1, -1, 1)),
                                         ("RAS", (-1, -1, 1)), ("left-anterior-superior", (1, -1, 1))])
def test_nrrd_space_is_converted_to_lps(tmp_path, space, sign):
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)  # C order: [k, j, i]
    dirs = np.array([[0.5, 0.1, 0], [0, 0.7, 0], [0, 0, 2.0]])  # rows: NRRD axes i, j, k
    origin = np.array([10.0, 20.0, 30.0])
    header = {"space": space, "space directions": dirs, "space origin": origin, "kinds": ["domain"] * 3}
    nrrd.write(str(tmp_path / "x.nrrd"), data, header, index_order="C")
    volume = load_one(tmp_path / "x.nrrd", NrrdReader())
    assert volume.array.dtype == np.int16 and volume.shape == (2, 3, 4)
    s = np.array(sign)
    expected = s * (origin + 1 * dirs[0] + 2 * dirs[1] + 1 * dirs[2])  # voxel (k=1, j=2, i=1)
    assert np.allclose(volume.index_to_lps((1, 2, 1)), expected)


def test_nrrd_without_space_assumes_1mm_and_warns(tmp_path):
    nrrd.write(str(tmp_path / "bare.nrrd"), np.zeros((2, 3, 4), np.uint8), index_order="C")
    volume = load_one(tmp_path / "bare.nrrd", NrrdReader())
    assert volume.spacing == (1.0, 1.0, 1.0) and any("1 mm" in w for w in volume.warnings)


def test_broken_nrrd_names_the_file(tmp_path):
    path = tmp_path / "broken.nrrd"
    path.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10 10\nencoding: raw\n\n" + b"\x00" * 50)
    with pytest.raises(InputError) as err:
        read_volume(path)
    assert "broken.nrrd" in str(err.value)


# -- seg.nrrd ----------------------------------------------------------------------------------
def _table() -> LabelTable:
    table = LabelTable()
    table.add(1, "liver", (221, 130, 101))
    table.add(3, "vertebra L3", (241, 214, 145))
    return table


def test_seg_nrrd_round_trip_keeps_names_and_colours(tmp_path):
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1:3, 2:4, 1:5], labels[0, 0, 0] = 1, 3
    grid = Volume(labels, spacing=(2.5, 0.8, 0.8), origin=(-5, 6, 7))
    path = write_volume(grid, tmp_path / "seg.seg.nrrd", label_table=_table())
    header = nrrd.read_header(str(path))
    assert header["Segment0_Name"] == "liver" and header["Segment0_Extent"] == "1 4 2 3 1 2"
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    back = read_nrrd_labels(path)
    assert np.array_equal(back.array, labels)
    assert [(lab.id, lab.name, lab.colour) for lab in back.table] == \
        [(1, "liver", (221, 130, 101)), (3, "vertebra L3", (241, 214, 145))]
    assert back.volume.same_grid(grid)


def _layered_seg(tmp_path, overlap: bool) -> Path:
    """A Slicer-style two-layer seg.nrrd (list axis fastest), both segments with label value 1."""
    data = np.zeros((5, 4, 3, 2), np.uint8)  # C order [z, y, x, layer] = NRRD sizes 2 3 4 5
    data[0, 0, 0, 0] = 1
    data[1, 1, 1, 1] = 1
    if overlap:
        data[0, 0, 0, 1] = 1
    dirs = np.array([[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    header = {"space": "left-posterior-superior", "space directions": dirs, "space origin": np.zeros(3),
              "kinds": ["list", "domain", "domain", "domain"]}
    for n, name in enumerate(["kidney", "spleen"]):
        header.update({f"Segment{n}_Name": name, f"Segment{n}_Color": "0.5 0.25 1.0",
                       f"Segment{n}_LabelValue": "1", f"Segment{n}_Layer": str(n)})
    path = tmp_path / "layers.seg.nrrd"
    nrrd.write(str(path), data, header, index_order="C")
    return path


def test_multi_layer_seg_nrrd_is_flattened(tmp_path):
    labels = read_nrrd_labels(_layered_seg(tmp_path, overlap=False))
    assert labels.array.shape == (5, 4, 3)
    assert labels.array[0, 0, 0] == 1 and labels.array[1, 1, 1] == 2
    assert [lab.name for lab in labels.table] == ["kidney", "spleen"]
    assert labels.table[1].colour == (128, 64, 255)


def test_overlapping_layers_are_refused(tmp_path):
    with pytest.raises(InputError, match="overlap") as err:
        read_nrrd_labels(_layered_seg(tmp_path, overlap=True))
    assert "layers.seg.nrrd" in str(err.value)

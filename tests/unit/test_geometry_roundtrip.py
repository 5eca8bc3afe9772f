"""Geometry survives NIfTI -> internal -> NRRD -> internal -> NIfTI, for oblique and flipped grids."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from ctviewer.data.labels import LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.label_files import read_label_map, table_sidecar
from ctviewer.io.nifti import NiftiReader, affine_to_geometry, geometry_to_affine
from ctviewer.io.nrrd_io import NrrdReader
from ctviewer.io.registry import read_volume
from ctviewer.io.writers import write_volume

SHAPE = (7, 5, 4)  # nibabel (i, j, k)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    a, b = [c for c in range(3) if c != axis]
    r = np.eye(3)
    t = np.radians(degrees)
    r[a, a], r[a, b], r[b, a], r[b, b] = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    return r


def _affine(kind: str) -> np.ndarray:
    """RAS affines: axis-aligned, flipped (LPS-stored / feet-first), oblique, and oblique + flipped."""
    zooms = np.diag([0.7, 0.9, 2.5])
    linear = {
        "plain": np.eye(3),
        "flipped": np.diag([-1.0, -1.0, -1.0]),
        "swapped": np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]]),
        "oblique": _rotation(0, 17) @ _rotation(2, -31),
        "oblique_flipped": _rotation(1, 12) @ np.diag([1.0, -1.0, -1.0]),
    }[kind] @ zooms
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, [12.5, -40.25, 88.0]
    return affine


def _corners() -> list[tuple[int, int, int]]:
    return list(itertools.product(*[(0, n - 1) for n in SHAPE]))


@pytest.mark.parametrize("kind", ["plain", "flipped", "swapped", "oblique", "oblique_flipped"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
def test_nifti_nrrd_nifti_keeps_positions_and_dtype(tmp_path, kind, dtype):
    data = (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 251 - (100 if dtype != np.uint8 else 0)).astype(dtype)
    affine = _affine(kind)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "in.nii.gz")

    first = NiftiReader().examine(tmp_path / "in.nii.gz")[0].load()
    write_volume(first, tmp_path / "mid.nrrd")
    middle = NrrdReader().examine(tmp_path / "mid.nrrd")[0].load()
    write_volume(middle, tmp_path / "out.nii.gz")
    out = nib.load(tmp_path / "out.nii.gz")

    assert first.array.dtype == middle.array.dtype == np.dtype(dtype) == out.get_data_dtype()
    assert np.array_equal(np.asanyarray(out.dataobj), data)
    assert int(out.header["sform_code"]) == 1 and int(out.header["qform_code"]) == 1
    for i, j, k in _corners():
        ras = affine @ [i, j, k, 1]
        assert np.allclose(middle.index_to_lps((k, j, i)), ras[:3] * [-1, -1, 1], atol=1e-4)
        assert np.allclose(out.affine @ [i, j, k, 1], ras, atol=1e-4)
        assert middle.array[k, j, i] == data[i, j, k]


@pytest.mark.parametrize("kind", ["flipped", "oblique_flipped", "swapped"])
def test_canonical_volume_writes_back_to_the_same_places(tmp_path, kind):
    """What the views show (reoriented by the registry) saves to the same patient positions."""
    data = np.random.default_rng(0).integers(-1000, 1000, SHAPE).astype(np.int16)
    affine = _affine(kind)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "in.nii")
    shown = read_volume(tmp_path / "in.nii")
    assert shown.array.dtype == np.int16
    for suffix in (".nrrd", ".nii.gz", ".npy"):
        back = read_volume(write_volume(shown, tmp_path / f"out{suffix}"))
        assert back.same_grid(shown) and np.array_equal(back.array, shown.array), suffix
    for i, j, k in _corners():
        lps = (affine @ [i, j, k, 1])[:3] * [-1, -1, 1]
        index = np.round(shown.lps_to_index(lps)).astype(int)
        assert np.allclose(shown.index_to_lps(index), lps, atol=1e-4)
        assert shown.array[tuple(index)] == data[i, j, k]


@pytest.mark.parametrize("kind", ["plain", "flipped", "swapped", "oblique", "oblique_flipped"])
def test_labels_drawn_in_display_order_are_written_in_the_files_order(tmp_path, kind):
    """Labels on the reoriented (shown) grid are saved with the image file's raw array and affine,
    checked on disk with nibabel, pynrrd and numpy (not through our reader, which would reorient
    both files alike and hide a flip or an axis swap)."""
    import nrrd

    from ctviewer.data.labels import LabelMap
    from ctviewer.io.writers import write_label_map

    data = np.random.default_rng(1).integers(-1000, 1000, SHAPE).astype(np.int16)
    ids = np.random.default_rng(2).integers(0, 4, SHAPE).astype(np.uint8)
    affine = _affine(kind)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(ids, affine), tmp_path / "ids.nii.gz")
    shown = read_volume(tmp_path / "ct.nii.gz")
    drawn = LabelMap(shown.with_array(read_label_map(tmp_path / "ids.nii.gz").array.copy()))
    written = nib.load(write_label_map(drawn, tmp_path / "out.nii.gz", image=shown))
    on_disk = nib.load(tmp_path / "ct.nii.gz").affine    # float32 in the header: compared exactly
    assert np.array_equal(np.asarray(written.dataobj), ids) and np.array_equal(written.affine, on_disk)
    raw, header = nrrd.read(str(write_label_map(drawn, tmp_path / "out.seg.nrrd", image=shown)))
    assert np.array_equal(raw, ids)
    assert np.allclose(header["space directions"], (np.diag([-1.0, -1, 1]) @ affine[:3, :3]).T, atol=1e-6)
    assert np.array_equal(np.load(write_label_map(drawn, tmp_path / "out.npy", image=shown)), ids.T)


def test_affine_conversion_is_its_own_inverse():
    for kind in ("plain", "flipped", "swapped", "oblique", "oblique_flipped"):
        spacing, origin, direction = affine_to_geometry(_affine(kind))
        volume = Volume(np.zeros((2, 2, 2), np.uint8), spacing=spacing, origin=origin, direction=direction)
        assert np.allclose(geometry_to_affine(volume), _affine(kind))


def test_label_map_round_trip_through_every_format(tmp_path):
    labels = np.zeros((3, 4, 5), np.uint8)
    labels[1, 1:3, 2:4], labels[2, 0, 0] = 7, 2
    grid = Volume(labels, spacing=(2.0, 0.5, 0.5), origin=(1, 2, 3), modality="CT")
    table = LabelTable()
    table.add(2, "T12", (10, 20, 30))
    table.add(7, "liver \"left\" lobe", (200, 100, 0))
    for name in ("l.nii.gz", "l.nii", "l.seg.nrrd", "l.nrrd", "l.npy"):
        path = write_volume(grid, tmp_path / name, label_table=table)
        back = read_label_map(path, canonical=False)
        assert np.array_equal(back.array, labels) and back.volume.same_grid(grid), name
        assert [(lab.id, lab.colour) for lab in back.table] == [(2, (10, 20, 30)), (7, (200, 100, 0))], name
        assert back.table[2].name == "T12" and back.volume.modality == ""
    assert table_sidecar(tmp_path / "l.nii.gz").name == "l.labels.json"


def test_label_png_round_trip(tmp_path):
    labels = Volume(np.array([[[0, 1, 2], [3, 4, 5]]], np.uint8), modality="XC")
    table = LabelTable.for_ids(range(1, 6))
    back = read_label_map(write_volume(labels, tmp_path / "mask.png", label_table=table))
    assert np.array_equal(back.array, labels.array) and len(back.table) == 5
    assert (tmp_path / "mask.labels.json").is_file()


def test_unknown_suffix_lists_the_supported_ones(tmp_path):
    with pytest.raises(InputError, match=r"\.nii\.gz.*\.seg\.nrrd.*\.png") as err:
        write_volume(Volume(np.zeros((1, 2, 2), np.uint8)), tmp_path / "x.mha")
    assert "x.mha" in str(err.value)


def test_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")
    with pytest.raises(InputError):
        write_volume(Volume(np.zeros((2, 2, 2), np.int16)), target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["keep.png"]

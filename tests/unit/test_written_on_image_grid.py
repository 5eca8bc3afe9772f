"""Everything written for an image lies on that image's grid on disk (DESIGN.md, "Data conventions").

The app shows every volume in one canonical order (:func:`ctviewer.imaging.orientation.to_canonical`);
label maps are drawn and predicted there. Written, they must have the image file's own shape, array
order and geometry, as TotalSegmentator, nnU-Net and ITK-SNAP expect. Every check here reads the
written file back with the format's own library (nibabel, pynrrd, numpy, pydicom) and compares the raw
array and header with the image's — never through ctviewer's reader, which would reorient both
the same way and hide a flip. Contents are asymmetric, so any flip or transposition shows.
"""

from __future__ import annotations

import json

import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest

from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.imaging.orientation import StoredGrid, stored_grid, to_canonical, to_stored
from ctviewer.io.label_files import read_label_map
from ctviewer.io.registry import read_volume
from ctviewer.io.writers import write_label_map
from ctviewer.workflows.open import load_labels_for, open_study

SHAPE = (9, 7, 5)  # nibabel (i, j, k): every axis a different length, so a transposition shows
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def _rotation(axis: int, degrees: float) -> np.ndarray:
    a, b = [c for c in range(3) if c != axis]
    r, t = np.eye(3), np.radians(degrees)
    r[a, a], r[a, b], r[b, a], r[b, b] = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    return r


def affine_of(kind: str) -> np.ndarray:
    """RAS affines as files have them: stored RAS (nibabel's default; the display flips x and y),
    stored LPS (DICOM converted by dcm2niix-like tools keep LPS rows), and oblique and flipped."""
    linear = {"ras": np.eye(3), "lps": np.diag([-1.0, -1.0, 1.0]),
              "oblique": _rotation(0, 14) @ _rotation(2, -23) @ np.diag([1.0, -1.0, -1.0])}[kind]
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear @ np.diag([0.8, 0.6, 2.5]), [-31.25, 17.5, 102.0]
    return affine


def ct_values(shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(1).integers(-1000, 1500, shape).astype(np.int16)


def label_values(shape=SHAPE) -> np.ndarray:
    ids = np.random.default_rng(2).choice([0, 0, 0, 1, 3], size=shape).astype(np.uint8)
    ids[0, 0, 0], ids[-1, 0, 0] = 7, 0  # one corner marked, its mirror not
    return ids


def table() -> LabelTable:
    t = LabelTable()
    t.add(1, "liver", (220, 130, 100))
    t.add(3, "spleen", (150, 60, 200))
    t.add(7, "marker", (250, 250, 0))
    return t


def save_nifti(path, data, affine, sform_code=2, qform_code=1):
    """A NIfTI as scanners' converters write it (TotalSegmentator's test slab: sform code 2)."""
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=sform_code)
    img.set_qform(affine, code=qform_code)
    nib.save(img, str(path))
    return nib.load(str(path))


@pytest.fixture(params=["ras", "lps", "oblique"])
def ct(request, tmp_path):
    """(image path, nibabel image, truth label array on its grid, labels as the app holds them)."""
    img = save_nifti(tmp_path / "ct.nii.gz", ct_values(), affine_of(request.param))
    save_nifti(tmp_path / "truth.nii.gz", label_values(), img.affine)
    table().write(tmp_path / "truth.labels.json")
    image = read_volume(tmp_path / "ct.nii.gz")                   # shown: canonical order
    shown = read_label_map(tmp_path / "truth.nii.gz").array.copy()
    # the display reorders the RAS and oblique files (so a leaked flip would show); LPS is shown as stored
    assert (stored_grid(image) is None) == (request.param == "lps")
    painted = LabelMap(image.with_array(shown, modality="", window=None), table())  # as if drawn there
    return tmp_path / "ct.nii.gz", img, label_values(), painted, image


# -- the record of the stored grid ------------------------------------------------------------------
def test_to_stored_undoes_to_canonical_exactly(ct):
    path, img, _, _, image = ct
    from ctviewer.io.nifti import NiftiReader

    stored = NiftiReader().examine(path)[0].load()
    back = to_stored(to_canonical(stored))
    assert np.array_equal(back.array, stored.array) and back.shape == stored.shape
    assert back.spacing == stored.spacing and back.origin == stored.origin   # exactly, not nearly
    assert np.array_equal(back.direction, stored.direction)
    assert isinstance(image.meta.get("stored_grid"), (StoredGrid, type(None)))
    assert "stored_grid" not in back.meta


def test_with_array_keeps_the_record_and_to_stored_refuses_another_orientation(ct):
    _, _, _, painted, image = ct
    if stored_grid(image) is None:
        pytest.skip("this file is stored in display order: nothing to record")
    assert stored_grid(painted.volume) == stored_grid(image)
    turned = image.with_array(np.ascontiguousarray(np.swapaxes(image.array, 1, 2)),
                              direction=image.direction[:, [0, 2, 1]])
    with pytest.raises(ValueError, match="axes point"):
        to_stored(turned, stored_grid(image))


# -- label maps written for an image ------------------------------------------------------------------
def test_nifti_labels_have_the_image_array_affine_and_codes(ct, tmp_path):
    _, img, truth, painted, image = ct
    for name in ("out.nii.gz", "out.nii"):
        out = nib.load(str(write_label_map(painted, tmp_path / name, image=image)))
        assert out.shape == img.shape
        assert np.array_equal(np.asarray(out.dataobj), truth), name
        assert np.array_equal(out.affine, img.affine), name
        assert int(out.header["sform_code"]) == 2 and int(out.header["qform_code"]) == 1
        assert np.array_equal(out.header.get_qform(), img.header.get_qform())


@pytest.mark.parametrize("name", ["out.seg.nrrd", "out.nrrd"])
def test_nrrd_labels_have_the_image_array_and_geometry(ct, tmp_path, name):
    _, img, truth, painted, image = ct
    data, header = nrrd.read(str(write_label_map(painted, tmp_path / name, image=image)))  # (i, j, k)
    assert np.array_equal(data, truth)
    assert header["space"] == "left-posterior-superior"
    assert np.allclose(header["space directions"], (RAS_TO_LPS @ img.affine[:3, :3]).T, atol=1e-6)
    assert np.allclose(header["space origin"], RAS_TO_LPS @ img.affine[:3, 3], atol=1e-6)


def test_npy_labels_have_the_image_array_and_geometry(ct, tmp_path):
    _, img, truth, painted, image = ct
    out = write_label_map(painted, tmp_path / "out.npy", image=image)
    assert np.array_equal(np.load(out), truth.T)                       # [z, y, x] = nibabel's reversed
    geometry = json.loads((tmp_path / "out.json").read_text())
    columns = (RAS_TO_LPS @ img.affine[:3, :3])[:, ::-1]
    assert np.allclose(np.asarray(geometry["direction"]) * geometry["spacing"], columns, atol=1e-6)
    assert np.allclose(geometry["origin"], RAS_TO_LPS @ img.affine[:3, 3], atol=1e-6)


def test_labels_read_without_their_image_are_written_on_their_own_files_grid(ct, tmp_path):
    """`labels convert` without --reference: the input label file's grid is the one kept."""
    path, img, truth, _, _ = ct
    labels = read_label_map(path.with_name("truth.nii.gz"))
    out = nib.load(str(write_label_map(labels, tmp_path / "copy.nii.gz")))
    assert np.array_equal(np.asarray(out.dataobj), truth) and np.array_equal(out.affine, img.affine)


def test_written_labels_open_aligned_over_their_image(ct, tmp_path):
    path, _, _, painted, image = ct
    for name in ("back.nii.gz", "back.seg.nrrd"):
        write_label_map(painted, tmp_path / name, image=image)
        layer = load_labels_for(open_study(path), tmp_path / name)
        assert np.array_equal(layer.array, painted.array), name


def test_labels_from_a_file_in_another_order_are_written_in_the_images(ct, tmp_path):
    """A label file stored in display order (as ctviewer wrote them before) over a RAS image: saved
    again for that image, it takes the image's array order and header."""
    path, img, truth, painted, image = ct
    from ctviewer.io.writers import write_volume

    write_volume(painted.volume, tmp_path / "shown.nrrd", label_table=painted.table)  # display order
    layer = load_labels_for(open_study(path), tmp_path / "shown.nrrd")
    out = nib.load(str(write_label_map(layer.labels, tmp_path / "again.nii.gz", image=image)))
    assert np.array_equal(np.asarray(out.dataobj), truth) and np.array_equal(out.affine, img.affine)


# -- NRRD images: the labels keep the image's space and its very numbers ---------------------------------
@pytest.mark.parametrize("space, directions", [
    ("right-anterior-superior", np.diag([0.75, 0.6, 2.0])),
    ("left-posterior-superior", (_rotation(2, 19) @ np.diag([-0.75, 0.6, -2.0])).T),
])
def test_labels_of_a_nrrd_image_keep_its_space_directions_and_origin(tmp_path, space, directions):
    origin = np.array([12.125, -40.5, 7.25])
    header = {"space": space, "space directions": directions, "space origin": origin,
              "kinds": ["domain"] * 3}
    nrrd.write(str(tmp_path / "ct.nrrd"), ct_values(), header)
    image = read_volume(tmp_path / "ct.nrrd")
    nrrd.write(str(tmp_path / "truth.nrrd"), label_values(), header)
    painted = LabelMap(image.with_array(read_label_map(tmp_path / "truth.nrrd").array.copy()), table())
    data, written = nrrd.read(str(write_label_map(painted, tmp_path / "out.seg.nrrd", image=image)))
    assert np.array_equal(data, label_values())
    assert written["space"] == space
    assert np.array_equal(written["space directions"], directions)
    assert np.array_equal(written["space origin"], origin)
    # and as NIfTI: the same array order, its affine the NRRD's geometry in RAS
    out = nib.load(str(write_label_map(painted, tmp_path / "out.nii.gz", image=image)))
    to_ras = np.diag([1.0, 1.0, 1.0]) if space.startswith("right-anterior") else RAS_TO_LPS
    assert np.array_equal(np.asarray(out.dataobj), label_values())
    assert np.allclose(out.affine[:3, :3], to_ras @ directions.T, atol=1e-5)
    assert np.allclose(out.affine[:3, 3], to_ras @ origin, atol=1e-5)


# -- DICOM-SEG: frames in the series' own order and grid ----------------------------------------------
@pytest.mark.parametrize("orientation, step", [
    ((1, 0, 0, 0, 1, 0), (0, 0, -2.5)),       # axial, head to feet: the display reverses the slices
    ((-1, 0, 0, 0, -1, 0), (0, 0, 2.5)),      # axial turned 180 degrees in plane: rows and columns flip
    ((1, 0, 0, 0, 0, -1), (0, 3.0, 0)),       # coronal: the display permutes the axes
])
def test_dicom_seg_frames_follow_the_dicom_files(tmp_path, orientation, step):
    from tests.unit.test_label_formats import write_ct_series

    files = write_ct_series(tmp_path / "ct", orientation, step)
    image = read_volume(tmp_path / "ct")
    stored = read_volume(tmp_path / "ct", canonical=False)      # slices and pixels as in the files
    ids = np.random.default_rng(4).choice([0, 1, 3], size=stored.shape).astype(np.uint8)
    ids[0, 0, 0] = 7
    shown = to_canonical(stored.with_array(ids)).array
    write_label_map(LabelMap(image.with_array(shown), table()), tmp_path / "seg.dcm", image=image)

    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    by_position = {tuple(round(float(v), 4) for v in pydicom.dcmread(f).ImagePositionPatient):
                   pydicom.dcmread(f).SOPInstanceUID for f in files}
    slice_of = {tuple(round(float(v), 4) for v in stored.index_to_lps((k, 0, 0))): k for k in range(stored.shape[0])}
    numbers = {int(s.SegmentNumber): str(s.TrackingID) for s in seg.SegmentSequence}
    pixels = seg.pixel_array
    assert len(seg.PerFrameFunctionalGroupsSequence) == len(numbers) * len(files)
    for frame, group in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        position = tuple(round(float(v), 4) for v in group.PlanePositionSequence[0].ImagePositionPatient)
        source = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert by_position[position] == source                      # the frame sits on its source file
        label_id = int(numbers[int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)].split()[1])
        assert np.array_equal(frame.astype(bool), ids[slice_of[position]] == label_id)


# -- soil objects and thin-section predictions -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["ras", "oblique"])
def test_soil_objects_lie_on_the_cube_file(tmp_path, capsys, kind):
    """`ctviewer soil objects` on a cube stored RAS or oblique: each object id sits on the stored
    voxel whose value falls in its bin (equal-width bins of the value range, as the soil study)."""
    from ctviewer.cli import main

    values = np.random.default_rng(6).integers(0, 4097, SHAPE).astype(np.uint16)
    cube = save_nifti(tmp_path / "cube.nii.gz", values, affine_of(kind))
    assert main(["soil", "objects", str(tmp_path / "cube.nii.gz"), "-o", str(tmp_path / "objects.nii.gz")]) == 0
    written = nib.load(str(tmp_path / "objects.nii.gz"))
    low, high = int(values.min()), int(values.max())
    expected = np.clip(((values.astype(float) - low) / (high - low) * 6).astype(int) + 1, 1, 6)
    assert np.array_equal(np.asarray(written.dataobj), expected)
    assert np.array_equal(written.affine, cube.affine)


def test_photo_labels_and_predictions_keep_the_photos_pixels(tmp_path):
    """A photo is never reoriented: labels saved for it, and a thin-section prediction of it, have
    its rows and columns (compared with Pillow's reading of both files)."""
    from PIL import Image

    from ctviewer.workflows.thin_section.photos import read_photo_rgb, write_label_image
    from ctviewer.workflows.thin_section.predict import predict_photo

    rgb = np.random.default_rng(7).integers(0, 256, (37, 53, 3)).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "section.png")
    red = np.asarray(Image.open(tmp_path / "section.png"))[..., 0] > 127

    def by_red(batch):   # class 1 where the red channel is bright: known pixel by pixel
        bright = batch[..., 0] > 127 / 255
        return np.stack([~bright, bright], axis=-1).astype(np.float32)

    ids = predict_photo(read_photo_rgb(tmp_path / "section.png"), by_red, 2, tile=32, overlap=8)
    write_label_image(ids, tmp_path / "section_classes.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "section_classes.png")) == 1, red)

    photo = read_volume(tmp_path / "section.png")
    labels = LabelMap(photo.with_array(red[None].astype(np.uint8), modality="", window=None), table())
    write_label_map(labels, tmp_path / "section_labels.png", image=photo)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "section_labels.png")) == 1, red)


def test_training_pairs_are_written_on_the_image_files_grid(ct, tmp_path):
    """Studies handed to training (images/ + labels/, nnU-Net's layout) keep the scan file's array
    order and affine in both files, so the pair lines up for any tool reading it."""
    from ctviewer.workflows.segmentation.export import export_training_pairs

    _, img, truth, painted, image = ct
    export_training_pairs([("case", image, painted)], tmp_path / "pairs")
    scan, labels = nib.load(str(tmp_path / "pairs/images/case.nii.gz")), nib.load(str(tmp_path / "pairs/labels/case.nii.gz"))
    assert np.array_equal(np.asarray(scan.dataobj), ct_values()) and np.array_equal(scan.affine, img.affine)
    assert np.array_equal(np.asarray(labels.dataobj), truth) and np.array_equal(labels.affine, img.affine)


def test_labels_whose_header_rounds_the_images_direction_still_go_on_its_grid(ct, tmp_path):
    """A label file from another tool often stores the image's oblique direction in float32:
    on the image's grid all the same, it is written with the image's exact geometry."""
    _, img, truth, painted, image = ct
    rounded = painted.volume.with_array(painted.array, direction=image.direction + 2e-4)
    out = nib.load(str(write_label_map(LabelMap(rounded, table()), tmp_path / "out.nii.gz", image=image)))
    assert np.array_equal(np.asarray(out.dataobj), truth) and np.array_equal(out.affine, img.affine)

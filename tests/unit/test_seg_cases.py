"""Finding and reading segmentation training cases: 3D-IRCADb DICOM folders (masks paired with image
slices by position, not by file name), the spine seed's text list, NIfTI pairs, label maps on another
grid (refused, or resampled when asked) and the real abdomen slab."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ctviewer.data.labels import LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.writers import write_volume
from ctviewer.workflows.segmentation.cases import ORGAN_IDS, case_from_study, find_cases
from ctviewer.workflows.segmentation.prepare import Target
from tests.dicom_series import write_ct_series

ROWS, COLUMNS, SLICES = 8, 6, 5   # not square, so a transposed mask would show
LIVER_HU = 60


# -- a small 3D-IRCADb patient written with pydicom -----------------------------------------------
def liver_region(k: int) -> np.ndarray:
    """Where the liver is on slice k: different on every slice, so a mask on the wrong slice shows."""
    region = np.zeros((ROWS, COLUMNS), bool)
    region[2:5, k % COLUMNS] = True
    return region


def write_slices(folder, planes, positions, orientation, seed, ct=True):
    """One DICOM file per plane, named image_0.. in a shuffled order (names do not follow positions)."""
    names = [f"image_{i}" for i in range(len(planes))]
    random.Random(seed).shuffle(names)
    # CT planes are stored as HU + 1024 with the rescale that undoes it; masks as 8-bit without one
    stored = [(p + 1024).astype(np.int16) if ct else p.astype(np.uint8) for p in planes]
    write_ct_series(folder, stored, positions, names, orientation=orientation, rescale=(1, -1024) if ct else None,
                    PatientID="P1", StudyInstanceUID="1.2.3", SliceThickness=2.5)


def write_patient(folder, organs=("liver",), orientation=(1, 0, 0, 0, 1, 0), extra_mask_position=None):
    """PATIENT_DICOM/ with a liver of LIVER_HU and MASKS_DICOM/<organ>/ (255 = organ)."""
    positions = [(-5.0, -3.0, 10.0 + 2.5 * k) for k in range(SLICES)]
    images = []
    for k in range(SLICES):
        hu = np.full((ROWS, COLUMNS), -900 + 10 * k)
        hu[liver_region(k)] = LIVER_HU
        images.append(hu)
    write_slices(folder / "PATIENT_DICOM", images, positions, orientation, seed=1)
    for n, organ in enumerate(organs):
        masks = [np.zeros((ROWS, COLUMNS), np.uint8) for _ in range(SLICES)]
        for k, mask in enumerate(masks):
            mask[liver_region(k) if organ == "liver" else (slice(ROWS - 1 - n, ROWS - n), slice(0, 1))] = 255
        mask_positions = list(positions)
        if extra_mask_position is not None:
            masks.append(masks[0].copy())
            mask_positions.append(extra_mask_position)
        write_slices(folder / "MASKS_DICOM" / organ, masks, mask_positions, orientation, seed=7 + n, ct=False)
    return folder


@pytest.mark.parametrize("orientation", [(1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, -1, 0), (0, 1, 0, 1, 0, 0)])
def test_ircadb_masks_land_on_the_slices_at_their_positions(tmp_path, orientation):
    write_patient(tmp_path / "3Dircadb1.1", orientation=orientation)
    (ref,) = find_cases(tmp_path / "3Dircadb1.1")
    case = ref.load()
    assert ref.kind == "ircadb" and case.case_id == "3Dircadb1.1"
    assert case.labels.shape == case.image.shape
    # file names are shuffled differently for image and mask: only pairing by position lines them up
    liver = case.labels == ORGAN_IDS["liver"]
    assert liver.sum() == 3 * SLICES
    assert np.all(case.image.array[liver] == LIVER_HU)
    assert case.label_names == {5: "liver"}


def test_a_folder_of_patients_shares_organ_ids_and_organs_win_over_lesions(tmp_path):
    write_patient(tmp_path / "patient10", organs=("liver", "livertumor01", "portalvein"))
    write_patient(tmp_path / "patient2", organs=("bone", "livertumor01"))
    refs = find_cases(tmp_path)
    assert [r.case_id for r in refs] == ["patient2", "patient10"]   # natural order
    first, second = (r.load() for r in refs)
    # unknown organs get 200+ in name order over every patient found together: bone 200, livertumor01 201
    assert set(np.unique(first.labels)) == {0, 200, 201}
    assert set(np.unique(second.labels)) == {0, 5, 64, 201}
    assert second.label_names[201] == "livertumor01" and first.label_names[200] == "bone"


def test_a_mask_slice_where_the_image_has_none_is_refused_naming_the_file(tmp_path):
    write_patient(tmp_path / "p", extra_mask_position=(-5.0, -3.0, 90.0))
    (ref,) = find_cases(tmp_path / "p")
    with pytest.raises(InputError, match="lies on no slice of the image") as info:
        ref.load()
    assert "MASKS_DICOM/liver/image_" in info.value.path


def test_zipped_ircadb_folders_are_named(tmp_path):
    (tmp_path / "PATIENT_DICOM.zip").write_bytes(b"PK")
    with pytest.raises(InputError, match="unzip"):
        find_cases(tmp_path)


# -- NIfTI / NRRD pairs and the text list ---------------------------------------------------------
def scan_and_labels(spacing=(2.0, 1.5, 1.5), shape=(6, 10, 12)):
    """A small CT with a liver (5) block and a kidney (2) block."""
    hu = np.full(shape, -100, np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[2:4, 3:7, 4:8] = 5
    labels[1:3, 1:3, 1:3] = 2
    hu[labels == 5] = LIVER_HU
    image = Volume(hu, spacing=spacing, origin=(10.0, -20.0, 30.0), modality="CT")
    return image, image.with_array(labels, modality="")


def write_pair(image_path, label_path, labels_spacing=None):
    image, labels = scan_and_labels()
    if labels_spacing is not None:
        labels = scan_and_labels(spacing=labels_spacing, shape=(6, 5, 6))[1]
    write_volume(image, image_path)
    write_volume(labels, label_path, label_table=LabelTable.for_ids([2, 5], {2: "kidney", 5: "liver"}))


def test_text_list_reads_relative_paths_and_skips_comments(tmp_path):
    (tmp_path / "data").mkdir()
    write_pair(tmp_path / "data" / "a.nrrd", tmp_path / "data" / "a_lab.nrrd")
    write_pair(tmp_path / "data" / "b.nii.gz", tmp_path / "data" / "b_lab.nii.gz")
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text("# spine training set\n\n../data/a.nrrd,../data/a_lab.nrrd\n ../data/b.nii.gz , ../data/b_lab.nii.gz\n")
    refs = find_cases(listing)
    assert [(r.case_id, r.kind) for r in refs] == [("a", "pairs"), ("b", "pairs")]
    case = refs[1].load()
    assert case.labels.shape == case.image.shape
    assert np.all(case.image.array[case.labels == 5] == LIVER_HU)
    assert case.label_names == {2: "kidney", 5: "liver"}


@pytest.mark.parametrize("line, message", [("../data/a.nrrd", "line 3: expected 'image,label'"),
                                           ("a.nrrd,b.nrrd,c.nrrd", "line 3: expected"),
                                           ("missing.nrrd,missing_lab.nrrd", "line 3: no such file")])
def test_a_bad_line_is_refused_with_its_number(tmp_path, line, message):
    listing = tmp_path / "train.txt"
    listing.write_text(f"# header\n\n{line}\n")
    with pytest.raises(InputError, match=message) as info:
        find_cases(listing)
    assert info.value.path == str(listing)


def test_images_and_labels_folders_pair_by_name(tmp_path):
    for sub in ("imagesTr", "labelsTr"):
        (tmp_path / sub).mkdir()
    write_pair(tmp_path / "imagesTr" / "liver_7_0000.nii.gz", tmp_path / "labelsTr" / "liver_7.nii.gz")
    write_pair(tmp_path / "imagesTr" / "liver_8_0000.nii.gz", tmp_path / "labelsTr" / "other.nii.gz")
    (ref,) = find_cases(tmp_path)
    assert (ref.case_id, ref.kind) == ("liver_7", "nifti")
    assert ref.load().labels.max() == 5


def test_name_and_name_labels_side_by_side(tmp_path):
    write_pair(tmp_path / "s1.nii.gz", tmp_path / "s1_labels.nii.gz")
    write_pair(tmp_path / "s2.nii.gz", tmp_path / "s2_seg.nii.gz")
    (tmp_path / "lonely.nii.gz").symlink_to(tmp_path / "s1.nii.gz")
    assert [r.case_id for r in find_cases(tmp_path)] == ["s1", "s2"]


def test_a_folder_without_cases_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="holds no training cases"):
        find_cases(tmp_path)


def test_labels_on_another_grid_are_refused_unless_resampling_is_asked_for(tmp_path):
    write_pair(tmp_path / "s.nii.gz", tmp_path / "s_labels.nii.gz", labels_spacing=(2.0, 3.0, 3.0))
    (ref,) = find_cases(tmp_path)
    with pytest.raises(InputError, match=r"different grids \(shape .*spacing") as info:
        ref.load()
    assert info.value.path.endswith("s_labels.nii.gz")
    case = ref.load(resample_labels=True)
    assert case.labels.shape == case.image.shape
    assert set(np.unique(case.labels)) == {0, 2, 5} and np.issubdtype(case.labels.dtype, np.integer)


def test_case_from_study_checks_the_grid():
    image, labels = scan_and_labels()
    assert case_from_study("open", image, labels.array, {5: "liver"}).label_names == {5: "liver"}
    with pytest.raises(InputError, match="different grids"):
        case_from_study("open", image, labels.array[:, :5])
    moved = labels.with_array(labels.array, origin=(0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="origin"):
        case_from_study("open", image, moved)
    assert case_from_study("open", image, moved, resample_labels=True).labels.shape == image.shape
    as_float = case_from_study("open", image, labels.array.astype(np.float32)).labels
    assert as_float.dtype == np.uint8 and np.array_equal(as_float, labels.array)
    with pytest.raises(InputError, match="whole numbers"):
        case_from_study("open", image, labels.array + 0.5)


def test_the_real_slab_as_name_and_name_labels(shared_data, tmp_path):
    ct = shared_data / "ct"
    (tmp_path / "slab.nii.gz").symlink_to(ct / "abdomen_slab_ct.nii.gz")
    (tmp_path / "slab_labels.nii.gz").symlink_to(ct / "abdomen_slab_labels.nii.gz")
    (ref,) = find_cases(tmp_path)
    case = ref.load()
    target = Target.parse("liver=5")
    target.check([case])
    assert target.masks(case.labels)[..., 0].sum() > 1000
    assert case.image.array[case.labels == 5].mean() > 0  # soft tissue, so the label lines up with the image

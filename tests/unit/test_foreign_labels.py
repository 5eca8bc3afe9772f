"""Label files written by other tools open as labels over the image they were drawn on.

Built the way those tools write them: a DICOM-SEG from highdicom with ``omit_empty_frames=True``
(as dcmqi and highdicom leave empty frames out), BINARY and FRACTIONAL, also with its frames
shuffled and without Spacing Between Slices; and a 3D Slicer ``.seg.nrrd`` cropped to its segments'
extent (``Segmentation_ReferenceImageExtentOffset``, a space origin at the first stored voxel),
written with pynrrd. Each check finds a labelled voxel at a known position in the patient.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest
from pydicom.pixels import pack_bits
from pydicom.sr.codedict import codes

from ctviewer.cli import main
from ctviewer.errors import InputError
from ctviewer.io.registry import examine as examine_folder
from ctviewer.workflows.open import load_labels_for, open_study
from tests.conftest import REPO
from tests.dicom_series import anonymised_copy, write_ct_series

DATA = REPO.parent / "shared" / "data" / "ct"
LIVER = 5  # TotalSegmentator's id in the slab's labels (data README)


@pytest.fixture(scope="module")
def data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent (only in the team's checkout)")
    return DATA


# -- DICOM-SEG as highdicom / dcmqi write it -------------------------------------------------------

#: An oblique plane (30 degrees about the feet-head axis, tilted 20 degrees): row and column cosines.
_COS30, _SIN30, _COS20, _SIN20 = np.cos(np.pi / 6), np.sin(np.pi / 6), np.cos(np.pi / 9), np.sin(np.pi / 9)
OBLIQUE = (_COS30, _SIN30, 0.0, -_SIN30 * _COS20, _COS30 * _COS20, -_SIN20)


def write_series(kind: str, folder: Path, first: int = 0, data_folder: Path | None = None) -> Path:
    """Eight slices from slice ``first`` on: of the real ACRIN series, or of an oblique synthetic one
    written with pydicom (runs where the real data is absent)."""
    if kind == "real":
        anonymised_copy(data_folder / "acrin_001_dicom", folder, count=8, start=40 + first, remove=())
        return folder
    normal = np.cross(OBLIQUE[:3], OBLIQUE[3:])
    planes = [(np.arange(40 * 48).reshape(40, 48) + 100 * k).astype(np.int16) for k in range(8)]
    positions = [np.array([-20.0, 30.0, 50.0]) + 2.5 * (first + k) * normal for k in range(8)]
    names = [f"{8 - k:03d}.dcm" for k in range(8)]  # against the position order
    write_ct_series(folder, planes, positions, names, orientation=OBLIQUE, series_uid=SERIES_UID,
                    per_slice=[{"InstanceNumber": k + 1} for k in range(8)], PatientID="P1",
                    PatientName="Test^Patient", PatientBirthDate="", PatientSex="", StudyDate="20240101",
                    StudyTime="120000", StudyID="1", AccessionNumber="", ReferringPhysicianName="",
                    StudyInstanceUID=STUDY_UID, FrameOfReferenceUID=FRAME_UID, SeriesNumber=1, SliceThickness=2.5)
    return folder


SERIES_UID, STUDY_UID, FRAME_UID = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2", \
    "1.2.826.0.1.3680043.8.498.3"


@pytest.fixture(params=["real", "oblique"])
def ct(request, tmp_path) -> Path:
    """Eight slices in their own folder, as the series the SEG is drawn on: real (ACRIN, axial) or
    a synthetic oblique series."""
    data_folder = request.getfixturevalue("data") if request.param == "real" else None
    return write_series(request.param, tmp_path / "ct", data_folder=data_folder)


def _pixel_world(ds, row: int, column: int) -> np.ndarray:
    """LPS position (mm) of pixel (row, column) of a DICOM slice (PS3.3 C.7.6.2.1.1)."""
    cosines = np.array(ds.ImageOrientationPatient, dtype=float)
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    return (np.array(ds.ImagePositionPatient, dtype=float)
            + column * column_spacing * cosines[:3] + row * row_spacing * cosines[3:])


def _seg(ct: Path, path: Path, kind: str, shuffle_sources: bool = True):
    """A two-segment SEG over the slices of ``ct`` with labels on two slices that are not neighbours;
    returns the sources (in the order given to highdicom) and the masks drawn."""
    sources = [pydicom.dcmread(p) for p in sorted(ct.iterdir())]
    if shuffle_sources:
        random.Random(7).shuffle(sources)
    rows, columns = sources[0].Rows, sources[0].Columns
    masks = np.zeros((len(sources), rows, columns, 2), dtype=bool)
    masks[1, rows // 5:rows // 5 + 10, columns // 3:columns // 3 + 30, 0] = True  # 'lesion' on one slice
    masks[5, rows // 2:rows // 2 + 6, 2:14, 1] = True  # 'kidney' on another, rows and columns unequal
    masks[5, 2:6, columns // 3:columns // 3 + 4, 0] = True  # and 'lesion' again there
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=name, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, name in ((1, "lesion"), (2, "kidney"))]
    pixels = masks.astype(np.float32) * 0.9 if kind == "FRACTIONAL" else masks.astype(np.uint8)
    if kind == "LABELMAP":  # one frame per slice holding segment numbers; the segments do not overlap here
        pixels = np.where(masks[..., 1], 2, np.where(masks[..., 0], 1, 0)).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom on the anonymised patient name
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixels, segmentation_type=kind, segment_descriptions=descriptions,
            series_instance_uid=hd.UID(), series_number=7, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="another tool", manufacturer_model_name="x", software_versions="1",
            device_serial_number="1", omit_empty_frames=True)
    seg.save_as(path)
    return sources, masks


def _check_labels_on_image(layer, study, sources, masks) -> None:
    assert layer.array.shape == study.image.shape
    rows, columns = masks.shape[1:3]
    probes = [((1, rows // 5 + 5, columns // 3 + 10, 0), 1), ((5, rows // 2 + 3, 5, 1), 2),
              ((5, 3, columns // 3 + 1, 0), 1)]
    for (k, row, column, segment), label_id in probes:
        assert masks[k, row, column, segment]
        index = np.rint(study.image.lps_to_index(_pixel_world(sources[k], row, column))).astype(int)
        assert layer.array[tuple(index)] == label_id
    # every labelled pixel is there once, nothing else
    assert np.count_nonzero(layer.array == 1) == np.count_nonzero(masks[..., 0])
    assert np.count_nonzero(layer.array == 2) == np.count_nonzero(masks[..., 1])
    assert [(lab.id, lab.name) for lab in layer.labels.table] == [(1, "lesion"), (2, "kidney")]


@pytest.mark.parametrize("kind, frames", [("BINARY", 3), ("FRACTIONAL", 3), ("LABELMAP", 2)])
def test_dicom_seg_without_empty_frames_opens_over_its_series(ct, tmp_path, kind, frames):
    sources, masks = _seg(ct, tmp_path / "seg.dcm", kind)
    on_disk = pydicom.dcmread(tmp_path / "seg.dcm")
    assert on_disk.NumberOfFrames == frames and on_disk.SegmentationType == kind  # empty frames left out
    study = open_study(ct)
    _check_labels_on_image(load_labels_for(study, tmp_path / "seg.dcm"), study, sources, masks)


def test_dicom_seg_frames_in_any_order_without_slice_spacing(ct, tmp_path):
    """Frames stored against the position order, and no Spacing Between Slices to guess a grid from."""
    sources, masks = _seg(ct, tmp_path / "seg.dcm", "BINARY")
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    order = [2, 0, 1]
    ds.PerFrameFunctionalGroupsSequence = [ds.PerFrameFunctionalGroupsSequence[n] for n in order]
    ds.PixelData = pack_bits(frames[order])
    del ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices
    ds.save_as(tmp_path / "shuffled.dcm")
    study = open_study(ct)
    _check_labels_on_image(load_labels_for(study, tmp_path / "shuffled.dcm"), study, sources, masks)


def test_dicom_seg_over_its_series_through_the_command_line(ct, tmp_path, capsys):
    _seg(ct, tmp_path / "seg.dcm", "BINARY")
    assert main(["labels", "stats", str(ct), str(tmp_path / "seg.dcm"), "--json"]) == 0
    stats = {s["name"]: s for s in json.loads(capsys.readouterr().out)["statistics"]}
    assert stats["lesion"]["voxels"] == 10 * 30 + 4 * 4 and stats["kidney"]["voxels"] == 6 * 12


def test_dicom_seg_of_other_slices_is_refused(request, ct, tmp_path):
    """A SEG drawn on slices the opened series does not hold names what is wrong."""
    kind = request.node.callspec.params["ct"]
    data_folder = request.getfixturevalue("data") if kind == "real" else None
    _seg(write_series(kind, tmp_path / "other", first=20, data_folder=data_folder), tmp_path / "seg.dcm", "BINARY")
    with pytest.raises(InputError, match="seg.dcm.*labels outside the image"):
        load_labels_for(open_study(ct), tmp_path / "seg.dcm")


# -- 3D Slicer .seg.nrrd cropped to its segments ---------------------------------------------------

def _slicer_seg_nrrd(path: Path, ids: np.ndarray, affine_ras: np.ndarray, segments: dict[int, str],
                     margin: int = 2) -> tuple[int, ...]:
    """Write ``ids`` (nibabel order i, j, k on ``affine_ras``) as Slicer 5 saves a segmentation
    cropped to its segments' extent: LPS space, the origin at the first stored voxel, the offset of
    that voxel in ``Segmentation_ReferenceImageExtentOffset`` and each segment's extent in the file.
    Returns the offset."""
    present = np.argwhere(np.isin(ids, list(segments)))
    low = np.maximum(present.min(axis=0) - margin, 0)
    high = np.minimum(present.max(axis=0) + margin + 1, ids.shape)
    crop = np.where(np.isin(ids, list(segments)), ids, 0)[low[0]:high[0], low[1]:high[1], low[2]:high[2]]
    to_lps = np.diag([-1.0, -1.0, 1.0])
    directions = (to_lps @ affine_ras[:3, :3]).T  # row a: the LPS step of axis a
    origin = to_lps @ (affine_ras[:3, :3] @ low + affine_ras[:3, 3])
    header = {"type": "unsigned char", "dimension": 3, "space": "left-posterior-superior",
              "space directions": directions, "space origin": origin, "kinds": ["domain"] * 3, "encoding": "gzip",
              "Segmentation_MasterRepresentation": "Binary labelmap",
              "Segmentation_ContainedRepresentationNames": "Binary labelmap|Closed surface|",
              "Segmentation_ReferenceImageExtentOffset": " ".join(str(int(v)) for v in low)}
    for n, (label_id, name) in enumerate(segments.items()):
        where = np.argwhere(crop == label_id)
        extent = " ".join(f"{lo} {hi}" for lo, hi in zip(where.min(axis=0), where.max(axis=0)))
        header.update({f"Segment{n}_ID": f"Segment_{label_id}", f"Segment{n}_Name": name,
                       f"Segment{n}_Color": "0.85 0.4 0.3", f"Segment{n}_LabelValue": str(label_id),
                       f"Segment{n}_Layer": "0", f"Segment{n}_Extent": extent,
                       f"Segment{n}_Tags": "Segmentation.Status:inprogress|"})
    nrrd.write(str(path), crop.astype(np.uint8), header)  # pynrrd's default: Fortran order, i fastest
    return tuple(int(v) for v in low)


def test_cropped_slicer_seg_nrrd_opens_over_the_real_slab(data, tmp_path):
    image_path = data / "abdomen_slab_ct.nii.gz"
    truth = nib.load(data / "abdomen_slab_labels.nii.gz")
    ids = np.asarray(truth.dataobj)
    offset = _slicer_seg_nrrd(tmp_path / "liver.seg.nrrd", ids, truth.affine, {LIVER: "liver"})
    stored, header = nrrd.read(str(tmp_path / "liver.seg.nrrd"))
    assert stored.shape != ids.shape and any(offset)  # really a cropped sub-grid
    assert header["Segmentation_ReferenceImageExtentOffset"] == " ".join(map(str, offset))

    study = open_study(image_path)
    layer = load_labels_for(study, tmp_path / "liver.seg.nrrd")
    assert layer.array.shape == study.image.shape and layer.labels.table[LIVER].name == "liver"
    # the same voxels as the real labels file (read the usual way) has for the liver
    full = load_labels_for(open_study(image_path), data / "abdomen_slab_labels.nii.gz")
    assert np.array_equal(layer.array == LIVER, full.array == LIVER)
    assert np.count_nonzero(layer.array) == np.count_nonzero(ids == LIVER)
    # a liver voxel found through the world position nibabel gives it
    i, j, k = np.argwhere(ids == LIVER)[len(np.argwhere(ids == LIVER)) // 2]
    x, y, z = truth.affine[:3, :3] @ (i, j, k) + truth.affine[:3, 3]
    index = np.rint(study.image.lps_to_index((-x, -y, z))).astype(int)
    assert layer.array[tuple(index)] == LIVER


def test_cropped_seg_nrrd_over_an_lps_ct_with_an_asymmetric_box(data, tmp_path):
    """The real chest CT (stored LPS): a box at one corner lands on the same voxels of the image."""
    image = nib.load(data / "chest_ct.nii.gz")
    ids = np.zeros(image.shape, np.uint8)
    ids[10:14, 20:23, 30:40] = 3
    offset = _slicer_seg_nrrd(tmp_path / "box.seg.nrrd", ids, image.affine, {3: "box"}, margin=0)
    assert offset == (10, 20, 30)
    study = open_study(data / "chest_ct.nii.gz")
    layer = load_labels_for(study, tmp_path / "box.seg.nrrd")
    assert np.count_nonzero(layer.array == 3) == 4 * 3 * 10
    corner = image.affine[:3, :3] @ (10, 20, 30) + image.affine[:3, 3]
    index = np.rint(study.image.lps_to_index((-corner[0], -corner[1], corner[2]))).astype(int)
    assert layer.array[tuple(index)] == 3
    beyond = image.affine[:3, :3] @ (9, 20, 30) + image.affine[:3, 3]
    index = np.rint(study.image.lps_to_index((-beyond[0], -beyond[1], beyond[2]))).astype(int)
    assert layer.array[tuple(index)] == 0


def test_seg_nrrd_between_or_outside_the_voxels_is_refused(data, tmp_path):
    image = nib.load(data / "abdomen_slab_ct.nii.gz")
    ids = np.zeros(image.shape, np.uint8)
    ids[5:9, 5:9, 2:4] = 1
    study = open_study(data / "abdomen_slab_ct.nii.gz")

    shifted = image.affine.copy()
    shifted[:3, 3] += image.affine[:3, :3] @ (0.5, 0, 0)  # half a voxel off
    _slicer_seg_nrrd(tmp_path / "half.seg.nrrd", ids, shifted, {1: "half"})
    with pytest.raises(InputError, match="half.seg.nrrd.*another position or spacing"):
        load_labels_for(study, tmp_path / "half.seg.nrrd")

    moved = image.affine.copy()
    moved[:3, 3] -= image.affine[:3, :3] @ (8, 0, 0)  # whole voxels, but starting before the image
    _slicer_seg_nrrd(tmp_path / "out.seg.nrrd", ids, moved, {1: "out"}, margin=0)
    with pytest.raises(InputError, match="out.seg.nrrd.*reaches outside the image"):
        load_labels_for(study, tmp_path / "out.seg.nrrd")


def test_cropped_seg_nrrd_converted_onto_its_reference(data, tmp_path, capsys):
    """``labels convert`` with ``--reference``: a NIfTI with the slab's own shape, array order and
    affine on disk, the liver on the very voxels of the real labels file."""
    truth = nib.load(data / "abdomen_slab_labels.nii.gz")
    ids = np.asarray(truth.dataobj)
    _slicer_seg_nrrd(tmp_path / "liver.seg.nrrd", ids, truth.affine, {LIVER: "liver"})
    out = tmp_path / "liver.nii.gz"
    assert main(["labels", "convert", str(tmp_path / "liver.seg.nrrd"), str(out),
                 "--reference", str(data / "abdomen_slab_ct.nii.gz")]) == 0, capsys.readouterr().err
    written = nib.load(out)
    image = nib.load(data / "abdomen_slab_ct.nii.gz")
    assert written.shape == image.shape and np.allclose(written.affine, image.affine, atol=1e-4)
    assert np.array_equal(np.asarray(written.dataobj) == LIVER, ids == LIVER)


def test_dicom_seg_in_the_series_folder_opens_with_it(ct, tmp_path):
    """A SEG saved among the slices it was drawn on (a PACS export, dcmqi's output copied there) is
    not a series of its own: the series opens with it as labels."""
    sources, masks = _seg(ct, ct / "zz_seg.dcm", "BINARY")
    items = examine_folder(ct)
    assert len(items) == 1 and items[0].n_slices == 8
    study = open_study(ct)
    (layer,) = study.layers.by_kind("labels")
    _check_labels_on_image(layer, study, sources, masks)


def test_dicom_seg_of_another_series_in_the_folder_is_left_alone(ct, tmp_path):
    """A SEG referencing another series beside the one opened is not attached to it."""
    _seg(ct, tmp_path / "seg.dcm", "BINARY")
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(ct / "zz_other.dcm")
    assert open_study(ct).layers.by_kind("labels") == []


def test_dicom_seg_opens_with_its_series_after_anonymisation(ct, tmp_path):
    """The series lost its UIDs on export; the SEG beside it still shares its frame of reference."""
    sources, masks = _seg(ct, tmp_path / "seg.dcm", "BINARY")
    anonymised_copy(ct, tmp_path / "anon")
    (tmp_path / "seg.dcm").rename(tmp_path / "anon" / "zz_seg.dcm")
    study = open_study(tmp_path / "anon")
    (layer,) = study.layers.by_kind("labels")
    _check_labels_on_image(layer, study, sources, masks)
    assert any("no SeriesInstanceUID" in w for w in study.image.warnings)


def test_overlapping_segments_show_the_last_and_say_so(ct, tmp_path):
    sources, masks = _seg(ct, tmp_path / "seg.dcm", "BINARY")
    rows, columns = masks.shape[1:3]
    masks[1, rows // 5:rows // 5 + 2, columns // 3:columns // 3 + 2, 1] = True  # 'kidney' over 4 voxels of 'lesion'
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=name, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, name in ((1, "lesion"), (2, "kidney"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd.seg.Segmentation(
            source_images=sources, pixel_array=masks.astype(np.uint8), segmentation_type="BINARY",
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=7,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="another tool", manufacturer_model_name="x",
            software_versions="1", device_serial_number="1", omit_empty_frames=True).save_as(tmp_path / "overlap.dcm")
    study = open_study(ct)
    layer = load_labels_for(study, tmp_path / "overlap.dcm")
    assert np.count_nonzero(layer.array == 2) == np.count_nonzero(masks[..., 1])
    assert any("4 voxel(s) belong to more than one segment" in w for w in study.image.warnings)


def _rotation(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


@pytest.mark.parametrize("directions", [np.eye(3), np.diag([-1.0, -1.0, 1.0]), _rotation(25) @ np.diag([1, -1, 1.0])],
                         ids=["RAS", "LPS", "oblique"])
def test_cropped_seg_nrrd_over_a_synthetic_nifti(tmp_path, directions):
    """Runs without the real data: a NIfTI stored RAS, LPS or oblique, and a cropped seg.nrrd of an
    asymmetric L-shaped label; its voxels land on the NIfTI's voxels, found through world positions."""
    affine = np.eye(4)
    affine[:3, :3] = directions @ np.diag([0.8, 0.7, 2.5])
    affine[:3, 3] = (-30.0, 12.0, 40.0)
    image = np.arange(20 * 24 * 9, dtype=np.int16).reshape(20, 24, 9)
    nib.save(nib.Nifti1Image(image, affine), tmp_path / "scan.nii.gz")
    ids = np.zeros(image.shape, np.uint8)
    ids[4:12, 6:8, 3] = 2
    ids[4:6, 8:15, 3] = 2  # the foot of the L
    _slicer_seg_nrrd(tmp_path / "l.seg.nrrd", ids, affine, {2: "L"}, margin=1)
    study = open_study(tmp_path / "scan.nii.gz")
    layer = load_labels_for(study, tmp_path / "l.seg.nrrd")
    assert np.count_nonzero(layer.array == 2) == np.count_nonzero(ids)
    for ijk in np.argwhere(ids == 2)[::5]:
        x, y, z = affine[:3, :3] @ ijk + affine[:3, 3]
        index = np.rint(study.image.lps_to_index((-x, -y, z))).astype(int)
        assert layer.array[tuple(index)] == 2 and study.image.array[tuple(index)] == image[tuple(ijk)]

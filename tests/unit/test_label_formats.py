"""Label files keep their meaning and geometry: JSON / ITK-SNAP tables, NIfTI + sidecar, Slicer's
seg.nrrd, PNG index and colour images, DICOM-SEG, and the bad input a user can give."""

from __future__ import annotations

import json
import os

import nrrd
import numpy as np
import pytest
from pydicom.uid import generate_uid

from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.dicom_seg import NEEDS_DICOM, write_dicom_seg
from ctviewer.io.label_files import (ColourLabelsError, default_label_path, find_label_file, read_label_map,
                                     table_sidecar)
from ctviewer.io.registry import examine, read_volume
from ctviewer.io.writers import write_label_map, write_volume
from ctviewer.workflows.open import load_labels_for, open_study
from tests import dicom_series


def _table() -> LabelTable:
    table = LabelTable()
    table.add(5, "liver", (221, 130, 101))
    table.add(32, 'vertebra "T12"', (241, 214, 145))
    table.update(32, visible=False, locked=True, opacity=0.4)
    return table


def _labels(shape=(4, 5, 6), **geometry) -> LabelMap:
    arr = np.zeros(shape, np.uint8)
    arr[1:3, 2:4, 1:5], arr[0, 0, 0] = 5, 32
    geometry = geometry or {"spacing": (2.5, 0.8, 0.7), "origin": (-5.0, 6.0, 7.0)}
    return LabelMap(Volume(arr, **geometry), _table())


def _fields(table: LabelTable) -> list[tuple]:
    return [(lab.id, lab.name, lab.colour, lab.visible, lab.locked, round(lab.opacity, 3)) for lab in table]


# -- label tables -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["t.json", "t.txt", "t.label"])
def test_table_write_and_read_by_suffix(tmp_path, name):
    table = _table()
    back = LabelTable.read(table.write(tmp_path / name))
    if name.endswith(".json"):  # JSON keeps every field
        assert _fields(back) == _fields(table)
    else:  # ITK-SNAP has no 'locked'
        assert [(lab.id, lab.name.replace("'", '"'), lab.colour, lab.visible) for lab in back] == \
            [(lab.id, lab.name, lab.colour, lab.visible) for lab in table]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_table_write_refuses_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match=r"\.json.*\.txt"):
        _table().write(tmp_path / "t.csv")


@pytest.mark.parametrize("text, message", [
    ('{"format": "ctviewer-label-table", "version": 1,\n "labels": [}', r"not valid JSON: line 2"),
    ('{"format": "something-else", "version": 1, "labels": []}', r"not a ctviewer label table"),
    ('{"format": "ctviewer-label-table", "version": 9, "labels": []}', r"version 9"),
    ('{"format": "ctviewer-label-table", "version": 1, "labels": [{"id": 1, "name": "a"}, '
     '{"id": 2, "colour": [1, 2]}]}', r"labels\[1\]\.colour must be three whole numbers"),
    ('{"format": "ctviewer-label-table", "version": 1, "labels": [{"id": -3}]}', r"labels\[0\]\.id"),
    ('{"format": "ctviewer-label-table", "version": 1, "labels": [{"id": 1, "opacity": 2}]}',
     r"labels\[0\]\.opacity"),
    ('{"format": "ctviewer-label-table", "version": 1, "labels": [{"id": 1}, {"id": 1}]}', r"id 1 appears twice"),
])
def test_malformed_json_table_names_file_and_place(tmp_path, text, message):
    path = tmp_path / "bad.labels.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        LabelTable.read(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


# -- NIfTI / npy / PNG with the JSON sidecar ------------------------------------------------------
@pytest.mark.parametrize("name", ["liver.nii.gz", "liver.nii", "liver.npy"])
def test_label_map_keeps_table_and_geometry_through_a_sidecar(tmp_path, name):
    labels = _labels(direction=np.array([[0, 0, 1], [0, -1, 0], [1, 0, 0.0]]), spacing=(2.5, 0.8, 0.7),
                     origin=(-5.0, 6.0, 7.0))
    path = write_label_map(labels, tmp_path / name)
    sidecar = tmp_path / "liver.labels.json"
    assert table_sidecar(path) == sidecar and json.loads(sidecar.read_text())["format"] == "ctviewer-label-table"
    back = read_label_map(path, canonical=False)
    assert np.array_equal(back.array, labels.array) and back.volume.same_grid(labels.volume)
    assert _fields(back.table) == _fields(labels.table) and back.warnings == []


def test_png_labels_keep_their_table(tmp_path):
    labels = LabelMap(Volume(np.array([[[0, 5, 5], [32, 0, 5]]], np.uint8)), _table())
    back = read_label_map(write_label_map(labels, tmp_path / "mask.png"))
    assert np.array_equal(back.array, labels.array) and _fields(back.table) == _fields(labels.table)
    assert (tmp_path / "mask.labels.json").is_file()


def test_itksnap_sidecar_is_still_read_and_json_wins(tmp_path):
    path = write_volume(_labels().volume, tmp_path / "old.nii.gz")  # no table written
    itk = LabelTable()
    itk.add(5, "from itk-snap", (1, 2, 3))
    itk.add(32, "bone", (4, 5, 6))
    itk.write(tmp_path / "old.label.txt")
    assert read_label_map(path).table[5].name == "from itk-snap"
    _table().write(tmp_path / "old.labels.json")
    assert read_label_map(path).table[5].name == "liver"


def test_ids_missing_from_the_table_are_added_and_named_in_a_warning(tmp_path):
    labels = _labels()
    labels.volume.array[3, 4, 5], labels.volume.array[3, 4, 4] = 7, 200
    path = write_label_map(labels, tmp_path / "more.nii.gz")
    _table().write(table_sidecar(path))  # the table of before ids 7 and 200 were painted
    back = read_label_map(path)
    assert back.table[7].name == "Label 7" and back.table[200].name == "Label 200"
    assert len(back.warnings) == 1 and "more.nii.gz" in back.warnings[0] and "7, 200" in back.warnings[0]


# -- Slicer's seg.nrrd ----------------------------------------------------------------------------
def test_seg_nrrd_has_the_fields_slicer_reads(tmp_path):
    labels = _labels()
    labels.table.add(0, "background")  # 0 is never a segment
    labels.table.add(9, "empty", (0, 0, 255))
    header = nrrd.read_header(str(write_label_map(labels, tmp_path / "s.seg.nrrd")))
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert header["Segmentation_ContainedRepresentationNames"] == "Binary labelmap|"
    assert header["Segmentation_ReferenceImageExtentOffset"] == "0 0 0"
    assert header["space"] == "left-posterior-superior" and list(header["kinds"]) == ["domain"] * 3
    segs = {header[f"Segment{n}_LabelValue"]: n for n in range(3)}
    assert set(segs) == {"5", "9", "32"} and "Segment3_ID" not in header
    liver, empty = segs["5"], segs["9"]
    assert header[f"Segment{liver}_Name"] == "liver" and header[f"Segment{liver}_Layer"] == "0"
    assert header[f"Segment{liver}_Color"] == "0.866667 0.509804 0.396078"
    assert header[f"Segment{liver}_Extent"] == "1 4 2 3 1 2"  # i (x), j (y), k (z)
    assert header[f"Segment{empty}_Extent"] == "0 -1 0 -1 0 -1"
    for key in ("ID", "Tags", "ColorAutoGenerated", "NameAutoGenerated"):
        assert f"Segment{liver}_{key}" in header


def test_seg_nrrd_round_trip_keeps_names_colours_and_oblique_geometry(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    labels = _labels(spacing=(3.0, 0.9, 0.6), origin=(10.0, -20.0, 30.0),
                     direction=np.array([[0, -s, c], [0, c, s], [1.0, 0, 0]]))
    back = read_label_map(write_label_map(labels, tmp_path / "o.seg.nrrd"), canonical=False)
    assert np.array_equal(back.array, labels.array) and back.volume.same_grid(labels.volume)
    assert [(lab.id, lab.name, lab.colour) for lab in back.table] == \
        [(lab.id, lab.name, lab.colour) for lab in labels.table]


def test_slicer_written_seg_nrrd_is_read(tmp_path):
    """As Slicer 5 writes it: segments on layer 0 with their label values, an extent offset."""
    data = np.zeros((3, 4, 5), np.uint8)  # C order [k, j, i]
    data[1, 1:3, 2:4], data[2, 3, 4] = 1, 4
    header = {"space": "left-posterior-superior", "space directions": np.diag([0.5, 0.6, 2.0]),
              "space origin": np.array([-40.0, 12.0, 7.5]), "kinds": ["domain"] * 3, "encoding": "gzip",
              "Segmentation_MasterRepresentation": "Binary labelmap",
              "Segmentation_ContainedRepresentationNames": "Binary labelmap|Closed surface|",
              "Segmentation_ReferenceImageExtentOffset": "12 30 4"}
    for n, (name, value) in enumerate([("kidney", 1), ("tumour", 4)]):
        header.update({f"Segment{n}_ID": f"Segment_{n + 1}", f"Segment{n}_Name": name,
                       f"Segment{n}_Color": "0.5 0.25 1", f"Segment{n}_LabelValue": str(value),
                       f"Segment{n}_Layer": "0", f"Segment{n}_Extent": "0 4 0 3 0 2",
                       f"Segment{n}_Tags": "Segmentation.Status:inprogress|"})
    path = tmp_path / "Segmentation.seg.nrrd"
    nrrd.write(str(path), data, header, index_order="C")
    labels = read_label_map(path, canonical=False)
    assert np.array_equal(labels.array, data) and labels.volume.spacing == (2.0, 0.6, 0.5)
    assert labels.volume.origin == (-40.0, 12.0, 7.5)  # the offset does not move the grid
    assert [(lab.id, lab.name, lab.colour) for lab in labels.table] == \
        [(1, "kidney", (128, 64, 255)), (4, "tumour", (128, 64, 255))]


def test_plain_nrrd_label_map_takes_its_sidecar_table(tmp_path):
    labels = _labels()
    path = write_volume(labels.volume, tmp_path / "plain.nrrd")  # no table: no segments
    labels.table.write(tmp_path / "plain.labels.json")
    assert _fields(read_label_map(path).table) == _fields(labels.table)


# -- where labels of an image live ------------------------------------------------------------------
def test_default_label_paths(tmp_path):
    prepped = tmp_path / "dataset1" / "images_prepped_test" / "43.jpg"
    assert default_label_path(prepped, photo=True) == tmp_path / "dataset1" / "annotations_prepped_test" / "43.png"
    assert default_label_path(tmp_path / "slide.tif", photo=True) == tmp_path / "slide_labels.png"
    assert default_label_path(tmp_path / "scan.nii.gz", photo=False) == tmp_path / "scan_labels.nii.gz"
    (tmp_path / "series").mkdir()
    assert default_label_path(tmp_path / "series", photo=False) == tmp_path / "series_labels.nii.gz"


def test_find_label_file(tmp_path):
    image = tmp_path / "images_prepped_train" / "7.jpg"
    assert find_label_file(image) is None
    annotation = tmp_path / "annotations_prepped_train" / "7.png"
    annotation.parent.mkdir()
    annotation.write_bytes(b"x")
    assert find_label_file(image) == annotation
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "1.png").write_bytes(b"x")
    assert find_label_file(tmp_path / "images" / "1.png") == tmp_path / "labels" / "1.png"
    (tmp_path / "scan_labels.seg.nrrd").write_bytes(b"x")
    assert find_label_file(tmp_path / "scan.nii.gz") == tmp_path / "scan_labels.seg.nrrd"


def test_real_thin_section_labels_are_found(shared_data):
    found = find_label_file(shared_data / "thin_sections" / "images" / "1.png")
    assert found == shared_data / "thin_sections" / "labels" / "1.png"
    assert set(read_label_map(found).table.ids) <= {1, 2, 3, 4, 5}


# -- colour label images --------------------------------------------------------------------------
def _colour_png(tmp_path, rgb: np.ndarray):
    path = tmp_path / "colour.png"
    write_volume(Volume(rgb[None], modality="XC"), path)
    return path


def test_colour_label_png_is_refused_in_one_line_unless_mapped(tmp_path):
    red, green, blue = (200, 0, 0), (0, 150, 0), (0, 0, 250)
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, :] = red  # 5 pixels
    rgb[1:3, :] = blue  # 10 pixels: the commonest new colour
    rgb[3, :2] = green  # in the table as id 9
    path = _colour_png(tmp_path, rgb)
    with pytest.raises(ColourLabelsError, match=r"colour \(RGB\) image, not label ids; it can be mapped by colour"):
        read_label_map(path)
    table = LabelTable()
    table.add(9, "quartz", green)
    table.add(1, "unused", (1, 1, 1))  # id 1 is the table's, so new colours start at 2
    table.write(tmp_path / "colour.labels.json")
    labels = read_label_map(path, map_colours=True)
    assert labels.array[0, 3, 4] == 0 and labels.array[0, 3, 0] == 9
    assert labels.array[0, 1, 0] == 2 and labels.array[0, 0, 0] == 3
    assert [(lab.id, lab.name, lab.colour) for lab in labels.table] == \
        [(2, "Label 2", blue), (3, "Label 3", red), (9, "quartz", green)]


def test_too_many_colours_is_refused(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (30, 30, 3)).astype(np.uint8)
    with pytest.raises(InputError, match="at most 255"):
        read_label_map(_colour_png(tmp_path, rgb), map_colours=True)


# -- bad input -------------------------------------------------------------------------------------
def _permissions_enforced(folder) -> bool:
    """False for root (os.geteuid() == 0 with CAP_DAC_OVERRIDE): it writes into read-only folders."""
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except PermissionError:
        return True
    probe.unlink()
    return False


def test_read_only_folder_is_refused_and_leaves_nothing(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if not _permissions_enforced(folder):
            pytest.skip(f"running as root (euid {os.geteuid()}): folder permissions are not enforced")
        with pytest.raises(InputError, match="cannot save here: .*locked is read-only \\(permission denied\\)"):
            write_label_map(_labels(), folder / "labels.nii.gz")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_labels_on_another_grid_are_refused_by_load_labels_for(tmp_path):
    image = _labels().volume.with_array(np.zeros((4, 5, 6), np.int16), modality="CT")
    write_volume(image, tmp_path / "ct.nii.gz")
    study = open_study(tmp_path / "ct.nii.gz")
    write_label_map(_labels(shape=(4, 5, 7)), tmp_path / "wide.nii.gz")
    with pytest.raises(InputError, match="refusing to resample"):
        load_labels_for(study, tmp_path / "wide.nii.gz")
    write_label_map(_labels(spacing=(2.0, 0.8, 0.7), origin=(-5.0, 6.0, 7.0)), tmp_path / "moved.nii.gz")
    with pytest.raises(InputError, match="another position or spacing"):
        load_labels_for(study, tmp_path / "moved.nii.gz")
    write_label_map(_labels(), tmp_path / "fits.nii.gz")
    assert load_labels_for(study, tmp_path / "fits.nii.gz").labels.table[5].name == "liver"


# -- DICOM-SEG -------------------------------------------------------------------------------------
ROWS, COLUMNS, SLICES = 7, 6, 5


def write_ct_series(folder, orientation=(1, 0, 0, 0, 1, 0), step=(0.0, 0.0, -2.5)) -> list:
    """A small CT series as a scanner writes it (frame of reference, patient and study data)."""
    planes = [np.arange(ROWS * COLUMNS, dtype=np.int16).reshape(ROWS, COLUMNS) * 10 + k for k in range(SLICES)]
    positions = [(10.0 + k * step[0], -20.0 + k * step[1], 30.0 + k * step[2]) for k in range(SLICES)]
    names = [f"{SLICES - k:03d}.dcm" for k in range(SLICES)]  # names against the position order
    numbers = [{"InstanceNumber": k + 1} for k in range(SLICES)]
    return dicom_series.write_ct_series(
        folder, planes, positions, names, orientation=orientation, per_slice=numbers,
        PatientID="P1", PatientName="Test^Patient", StudyDate="20240101", StudyInstanceUID=generate_uid(),
        FrameOfReferenceUID=generate_uid(), SeriesDescription="CT TEST")


def _painted(image: Volume) -> LabelMap:
    labels = LabelMap.empty_like(image, _table())
    rng = np.random.default_rng(3)
    labels.volume.array[:] = np.where(rng.random(image.shape) < 0.2, 5, 0)
    labels.volume.array[1, 2, 3] = 32
    labels.volume.array[0, 0, 0] = 7  # an id the table does not know
    return labels


@pytest.mark.parametrize("orientation, step", [
    ((1, 0, 0, 0, 1, 0), (0, 0, -2.5)),       # axial, stored head to feet
    ((-1, 0, 0, 0, -1, 0), (0, 0, 2.5)),      # axial, rotated 180 degrees in plane
    ((1, 0, 0, 0, 0, -1), (0, 3.0, 0)),       # coronal
    ((0, 1, 0, 0, 0, -1), (-2.0, 0, 0)),      # sagittal
])
def test_dicom_seg_round_trip_whatever_the_orientation(tmp_path, orientation, step):
    write_ct_series(tmp_path / "ct", orientation, step)
    image = read_volume(tmp_path / "ct")
    labels = _painted(image)
    write_dicom_seg(labels, image, tmp_path / "labels.dcm")
    back = read_label_map(tmp_path / "labels.dcm")
    assert back.volume.same_grid(image) and np.array_equal(back.array, labels.array)
    assert [(lab.id, lab.name, lab.colour) for lab in back.table] == \
        [(5, "liver", (221, 130, 101)), (7, "Label 7", (70, 240, 240)), (32, 'vertebra "T12"', (241, 214, 145))]
    layer = load_labels_for(open_study(tmp_path / "ct"), tmp_path / "labels.dcm")
    assert np.array_equal(layer.array, labels.array)


def test_dicom_seg_beside_its_series_is_not_a_series(tmp_path):
    write_ct_series(tmp_path / "ct")
    image = read_volume(tmp_path / "ct")
    write_label_map(_painted(image), tmp_path / "ct" / "zz_labels.dcm", image=image)
    items = examine(tmp_path / "ct")
    assert len(items) == 1 and items[0].n_slices == SLICES and "CT TEST" in items[0].description
    seg_alone = examine(tmp_path / "ct" / "zz_labels.dcm")
    assert seg_alone[0].meta.get("label_map") and seg_alone[0].load().shape == image.shape


def test_dicom_seg_needs_a_dicom_image(tmp_path):
    labels = _labels()
    with pytest.raises(InputError, match=NEEDS_DICOM):
        write_dicom_seg(labels, labels.volume, tmp_path / "x.dcm")
    with pytest.raises(InputError, match=NEEDS_DICOM):
        write_label_map(labels, tmp_path / "x.dcm")


def test_dicom_seg_refuses_labels_off_the_slices_and_empty_ones(tmp_path):
    write_ct_series(tmp_path / "ct")
    image = read_volume(tmp_path / "ct")
    moved = image.with_array(_painted(image).array, origin=(image.origin[0] + 0.35, *image.origin[1:]))
    with pytest.raises(InputError, match="does not lie exactly on the slices"):
        write_dicom_seg(LabelMap(moved, _table()), image.with_array(image.array, origin=moved.origin),
                        tmp_path / "x.dcm")
    with pytest.raises(InputError, match="empty"):
        write_dicom_seg(LabelMap.empty_like(image), image, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()

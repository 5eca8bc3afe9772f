"""The data model: geometry of volumes, reorientation, slicing conventions, label tables, windows."""

import numpy as np
import pytest

from ctviewer.data import LabelMap, LabelTable, Study, Volume
from ctviewer.errors import InputError
from ctviewer.imaging import slicing
from ctviewer.imaging.orientation import obliquity_deg, orientation_code, to_canonical
from ctviewer.imaging.window import PRESETS, apply_window, auto_window, default_window


def oblique_volume():
    rng = np.random.default_rng(1)
    arr = rng.integers(-1000, 1000, size=(4, 5, 6)).astype(np.int16)
    # stored like many NIfTI files: axis 0 = x increasing to the patient's right, axis 2 = z up
    direction = np.array([[-1.0, 0, 0], [0, -1, 0], [0, 0, 1]]).T  # columns: R, A, S
    return Volume(arr, spacing=(0.8, 0.9, 2.5), origin=(10.0, -20.0, 30.0), direction=direction)


def test_index_and_position_round_trip():
    vol = oblique_volume()
    idx = np.array([[0, 0, 0], [3, 4, 5], [1.5, 2.0, 0.5]])
    assert np.allclose(vol.lps_to_index(vol.index_to_lps(idx)), idx)
    assert np.allclose(vol.index_to_lps((0, 0, 0)), vol.origin)
    # one step along axis 0 moves 0.8 mm to the patient's right (-x in LPS)
    assert np.allclose(vol.index_to_lps((1, 0, 0)) - vol.origin, (-0.8, 0, 0))


def test_to_canonical_keeps_every_voxel_at_its_position():
    vol = oblique_volume()
    can = to_canonical(vol)
    assert orientation_code(vol.direction) == "RAS"
    assert orientation_code(can.direction) == "SPL"
    assert can.shape == (6, 5, 4)
    assert can.array.dtype == np.int16
    for k, j, i in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        pos = can.index_to_lps((k, j, i))
        src = np.round(vol.lps_to_index(pos)).astype(int)
        assert can.array[k, j, i] == vol.array[tuple(src)]


def test_obliquity_reports_tilt():
    angle = np.radians(12)
    d = np.eye(3)
    d[:, 0] = (0, np.sin(angle), np.cos(angle))  # axis 0 tilted towards posterior
    d[:, 1] = (0, np.cos(angle), -np.sin(angle))
    d[:, 2] = (1, 0, 0)
    assert obliquity_deg(d) == pytest.approx(12, abs=1e-6)


def test_views_follow_radiological_conventions():
    arr = np.zeros((10, 20, 30), np.int16)  # canonical: z up, y to posterior, x to patient left
    arr[9, 0, 29] = 7  # superior, anterior, patient left
    vol = Volume(arr)
    axial = slicing.extract(arr, "axial", 9)
    assert axial[0, -1] == 7  # anterior at the top, patient left on the screen's right
    coronal = slicing.extract(arr, "coronal", 0)
    assert coronal[0, -1] == 7  # superior at the top
    sagittal = slicing.extract(arr, "sagittal", 29)
    assert sagittal[0, 0] == 7  # superior at the top, anterior on the left
    assert slicing.edge_letters(vol.direction, "axial") == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert slicing.edge_letters(vol.direction, "coronal") == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert slicing.edge_letters(vol.direction, "sagittal") == {"left": "A", "right": "P", "top": "S", "bottom": "I"}


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_screen_to_voxel_round_trip(view):
    shape = (10, 20, 30)
    voxel = (7, 3, 21)
    row, col, k = slicing.to_screen(view, shape, voxel)
    assert slicing.to_voxel(view, shape, k, row, col) == voxel


def test_label_table_itksnap_round_trip(tmp_path):
    table = LabelTable()
    table.add(1, "liver", (221, 130, 101))
    table.add(30, 'vertebra "L2"', (10, 20, 30))
    table.update(30, visible=False)
    path = tmp_path / "labels.txt"
    path.write_text(table.to_itksnap())
    back = LabelTable.read(path)
    assert back.ids == [1, 30]
    assert back[1].name == "liver" and back[1].colour == (221, 130, 101)
    assert back[30].visible is False
    lut = back.lut()
    assert tuple(lut[1]) == (221, 130, 101, 255) and lut[30, 3] == 0 and lut[0, 3] == 0


def test_malformed_itksnap_file_names_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text('    1   255 0 0 1 1 1 "ok"\n    2 red 0 0 1 1 1 "bad"\n')
    with pytest.raises(InputError, match=r"bad.txt: line 2"):
        LabelTable.read(path)


def test_label_map_refuses_fractional_values():
    vol = Volume(np.full((2, 2, 2), 1.5, np.float32))
    with pytest.raises(InputError, match="whole numbers"):
        LabelMap(vol)
    ok = LabelMap(Volume(np.full((2, 2, 2), 3.0, np.float32)))
    assert ok.array.dtype == np.uint8 and ok.table.ids == [3]


def test_study_cursor_is_clipped_and_announced():
    study = Study(Volume(np.zeros((5, 6, 7), np.int16)))
    seen = []
    study.cursor_changed.connect(seen.append)
    study.cursor = (10, -3, 2.6)
    assert study.cursor == (4, 0, 3) and seen == [(4, 0, 3)]


def test_windowing():
    assert PRESETS["abdomen"] == (350, 40) and PRESETS["lung"] == (1400, -500)
    out = apply_window(np.array([-1000, -135, 40, 215, 3000], np.int16), 350, 40)
    assert out.tolist() == [0, 0, 127, 255, 255]
    ct = Volume(np.zeros((1, 2, 2), np.int16), modality="CT")
    assert default_window(ct) == (350, 40)
    ct.window = (400, 50)
    assert default_window(ct) == (400, 50)
    w, lv = auto_window(np.arange(1000))
    assert 900 < w < 1000 and 490 < lv < 510

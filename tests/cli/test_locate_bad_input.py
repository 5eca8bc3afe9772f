"""`ctviewer locate` on the scans issue 15 names as bad input, checked on the CSV it writes and the lines
it prints: no spine in view (a head, a thigh, a phantom), a scan cut through a vertebra or between two,
and sagittal or coronal acquisitions (NIfTI and DICOM), which are located on their axial reformats with
a warning. Stand-in networks keep it fast; the vertebra count runs for real."""

from __future__ import annotations

from functools import lru_cache

import nibabel as nib
import numpy as np
import pydicom
import pytest

from ctviewer.cli import main
from ctviewer.data.volume import Volume
from ctviewer.io.writers import write_volume
from ctviewer.workflows.slice_locator.picks import PicksFile
from tests.unit.test_combine import AtLevels
from tests.unit.test_locate import FakeLocator

LEVELS = ("L3", "T12")


def _network(monkeypatch, locator) -> None:
    monkeypatch.setattr("ctviewer.commands.locate.load_locator", lambda name: locator)


def _run(paths, out, levels=LEVELS) -> int:
    return main(["locate", *map(str, paths), "--levels", ",".join(levels), "-o", str(out)])


# -- no spine in view ------------------------------------------------------------------------------

def _cylinder_scan(paint, n_slices: int = 60) -> Volume:
    """Slices of 3 mm on a 2 mm grid, 160² pixels: ``paint(r, yy, xx)`` gives the HU of a plane (r: mm
    from the middle), the same on every slice unless it takes the slice (``paint(r, yy, xx, k)``)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:160, :160]
    r = np.hypot(yy - 80, xx - 80) * 2.0
    planes = np.stack([paint(r, yy, xx, k) for k in range(n_slices)])
    return Volume((planes + rng.normal(0, 12, planes.shape)).astype(np.int16), spacing=(3.0, 2.0, 2.0),
                  origin=(-160.0, -160.0, -90.0), modality="CT")


def _head(r, yy, xx, k):
    """A skull (compact bone, 7 mm) round a brain, an ellipsoid 190 mm front to back, 150 mm across."""
    z = (k - 30) * 3.0
    f = np.sqrt(max(0.0, 1 - (z / 95) ** 2))
    plane = np.full(r.shape, -1000.0)
    if f < 0.1:
        return plane
    outer = np.hypot((yy - 80) * 2.0 / (95 * f), (xx - 80) * 2.0 / (75 * f))
    inner = np.hypot((yy - 80) * 2.0 / max(95 * f - 7, 1), (xx - 80) * 2.0 / max(75 * f - 7, 1))
    plane[outer < 1] = 1200.0
    plane[inner < 1] = 35.0
    return plane


def _thigh(r, yy, xx, k):
    """Muscle in fat round a femur: cortex round marrow, the same all along (a long bone, no discs)."""
    plane = np.where(r < 80, 50.0, -1000.0)
    plane[(r > 70) & (r < 80)] = -100.0
    bone = np.hypot(yy - 85, xx - 80) * 2.0
    plane[bone < 14] = 1300.0
    plane[bone < 8] = -20.0
    return plane


def _phantom(r, yy, xx, k, rods: bool = True):
    """A water cylinder in an acrylic shell, with the bone-like rods (Teflon, ~900 HU) QA phantoms have;
    without them, a bare cylinder of water (a bottle: its thin wall vanishes in the noise)."""
    plane = np.where(r < 100, 0.0, -1000.0)
    if rods:
        plane[(r > 97) & (r < 100)] = 120.0
    for cy, cx in ((50, 80), (110, 80), (80, 50), (80, 110)) if rods else ():
        plane[np.hypot(yy - cy, xx - cx) * 2.0 < 12] = 900.0
    return plane


@pytest.fixture(scope="module")
def no_spine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("no_spine")
    for name, paint in (("head", _head), ("thigh", _thigh), ("phantom", _phantom)):
        write_volume(_cylinder_scan(paint), folder / f"{name}.nii.gz")
    return folder


def test_no_spine_in_view_is_said_in_the_studys_line_and_no_level_is_given(no_spine, tmp_path, capsys,
                                                                             monkeypatch):
    _network(monkeypatch, AtLevels({}))                     # the network places nothing either
    out = tmp_path / "picks.csv"
    assert _run([no_spine], out) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 4 and lines[-1] == f"wrote {out}: 3 studies located"
    for name, line in zip(("head", "phantom", "thigh"), lines):
        assert line.startswith(f"{name}  L3 not in scan") and "count: no spine found: " in line, line
    assert captured.err == ""                                  # one line a study, no warnings beside it
    picks = PicksFile.open(out)
    assert all(picks.get(name, level).status == "not_in_scan" for name in ("head", "phantom", "thigh")
               for level in LEVELS)


def test_a_level_the_network_places_without_a_spine_is_marked_levels_disagree(no_spine, tmp_path, capsys,
                                                                                monkeypatch):
    _network(monkeypatch, FakeLocator(20.0))                  # sure of L3, 20 mm below the top slice
    out = tmp_path / "picks.csv"
    assert _run([no_spine / "head.nii.gz"], out) == 0
    err = capsys.readouterr().err.splitlines()
    l3 = PicksFile.open(out).get("head", "L3")
    assert l3.status == "levels_disagree" and l3.slice_index is not None
    assert err == [f"ctviewer: warning: {no_spine / 'head.nii.gz'}: L3: levels disagree — check: the locator "
                   f"picked slice {l3.slice_index}, but the vertebra count says no spine found: bone, but no "
                   "discs between vertebrae along it (a head, a limb or a phantom?)"]


def test_a_phantom_without_bone_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    _network(monkeypatch, AtLevels({}))
    path = tmp_path / "water.nii.gz"
    write_volume(_cylinder_scan(lambda r, yy, xx, k: _phantom(r, yy, xx, k, rods=False)), path)
    assert _run([path], tmp_path / "picks.csv") == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"ctviewer: {path}: no voxel reaches 150 HU: no bone, so no spine to locate levels in "
                       "(a water phantom, or not a CT scan in Hounsfield units: a label map?)")
    assert not (tmp_path / "picks.csv").exists()


# -- a scan cut through a vertebra, or between two -------------------------------------------------

@lru_cache(maxsize=None)
def _torso():
    from ctviewer.synth import TorsoParams, make_torso

    return make_torso(TorsoParams.random(11, field_of_view="abdomen", matrix=(160, 160), pixel_spacing=2.5))


def _z(volume: Volume, k: float) -> float:
    return float(volume.index_to_lps((k, 0, 0))[2])


def test_a_level_on_a_vertebra_the_scans_edge_cuts_is_no_answer(tmp_path, capsys, monkeypatch):
    """The scan ends halfway up T12. A network that places T12 on its visible half gets "levels disagree";
    L3, whole and on its body, stands; the count places L1 (whole) and names no T12."""
    t = _torso()
    t12 = t.levels["T12"]
    cut = t.image.with_array(t.image.array[:t12.slice + 1].copy())
    write_volume(cut, tmp_path / "cut.nii.gz")
    _network(monkeypatch, AtLevels({"T12": _z(cut, (t12.bottom_slice + t12.slice) / 2),
                                    "L3": _z(cut, t.levels["L3"].slice)}))
    out = tmp_path / "picks.csv"
    assert _run([tmp_path / "cut.nii.gz"], out, ("L3", "T12", "L1")) == 0
    err = capsys.readouterr().err
    picks = PicksFile.open(out)
    assert picks.get("cut", "T12").status == "levels_disagree"
    assert "T12: levels disagree — check: the locator picked slice" in err and "top edge cuts" in err
    l3, l1 = picks.get("cut", "L3"), picks.get("cut", "L1")
    assert l3.status == "predicted" and l3.source == "stand_in v1"
    assert l1.source == "spine count" and t.levels["L1"].bottom_slice <= l1.slice_index <= t.levels["L1"].top_slice


def test_a_scan_cut_between_two_vertebrae_gets_levels_only_on_whole_bodies(tmp_path, capsys, monkeypatch):
    """The scan ends in the disc between T12 and L1: every level placed lies on its own true body, T12 is not
    in the scan, and nothing is placed above the top slice's disc."""
    t = _torso()
    top = (t.levels["T12"].bottom_slice + t.levels["L1"].top_slice) // 2
    cut = t.image.with_array(t.image.array[:top + 1].copy())
    write_volume(cut, tmp_path / "cut.nii.gz")
    _network(monkeypatch, AtLevels({"L3": _z(cut, t.levels["L3"].slice)}))
    out = tmp_path / "picks.csv"
    levels = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
    assert _run([tmp_path / "cut.nii.gz"], out, levels) == 0
    picks = PicksFile.open(out)
    assert picks.get("cut", "T12").status == "not_in_scan"
    placed = [level for level in levels if picks.get("cut", level).in_scan]
    assert {"L2", "L3", "L4", "L5"} <= set(placed)
    for level in placed:
        k, truth = picks.get("cut", level).slice_index, t.levels[level]
        assert truth.bottom_slice <= k <= truth.top_slice and truth.top_slice < top, (level, k, truth)


# -- sagittal and coronal acquisitions -------------------------------------------------------------

def _restacked(volume: Volume, plane: str) -> Volume:
    """The same voxels stored as sagittal (slices right to left) or coronal (front to back) slices,
    each image's rows running from the head down."""
    a, n = volume.array, volume.shape[0]
    sz, sy, sx = volume.spacing
    top = tuple(volume.index_to_lps((n - 1, 0, 0)))
    if plane == "sagittal":       # axes: x, z downwards, y
        array, spacing = a.transpose(2, 0, 1)[:, ::-1, :], (sx, sz, sy)
        direction = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    else:                         # axes: y, z downwards, x
        array, spacing = a.transpose(1, 0, 2)[:, ::-1, :], (sy, sz, sx)
        direction = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]])
    return Volume(np.ascontiguousarray(array), spacing=spacing, origin=top, direction=direction, modality="CT")


def _sagittal_dicom(volume: Volume, folder) -> None:
    from tests.dicom_series import write_ct_series

    sag = _restacked(volume, "sagittal")
    planes = [(sag.array[i] + 1024).astype(np.uint16) for i in range(sag.shape[0])]
    positions = [sag.index_to_lps((i, 0, 0)) for i in range(sag.shape[0])]
    write_ct_series(folder, planes, positions, [f"s{i:03d}.dcm" for i in range(len(planes))],
                    orientation=(0, 1, 0, 0, 0, -1), pixel_spacing=(sag.spacing[1], sag.spacing[2]),
                    per_slice=[{"InstanceNumber": i + 1} for i in range(len(planes))])


def test_sagittal_and_coronal_acquisitions_are_located_on_their_axial_reformats_with_a_warning(
        tmp_path, capsys, monkeypatch):
    t = _torso()
    studies = tmp_path / "studies"
    studies.mkdir()
    write_volume(t.image, studies / "axial.nii.gz")
    write_volume(_restacked(t.image, "sagittal"), studies / "sagittal.nii.gz")
    write_volume(_restacked(t.image, "coronal"), studies / "coronal.nii.gz")
    _sagittal_dicom(t.image, studies / "sagittal_dicom")
    # what is on disk is what the test says: slices stacked left-right / front-back
    assert nib.aff2axcodes(nib.load(studies / "sagittal.nii.gz").affine)[2] in "LR"
    assert nib.aff2axcodes(nib.load(studies / "coronal.nii.gz").affine)[2] in "AP"
    first = pydicom.dcmread(studies / "sagittal_dicom" / "s000.dcm", stop_before_pixels=True)
    assert [float(v) for v in first.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]
    _network(monkeypatch, AtLevels({"L3": _z(t.image, t.levels["L3"].slice)}))
    out = tmp_path / "picks.csv"
    assert _run([studies], out, ("L3", "T12", "L1")) == 0
    err = capsys.readouterr().err.splitlines()
    for name, plane in (("sagittal.nii.gz", "sagittal"), ("coronal.nii.gz", "coronal"),
                        ("sagittal_dicom", "sagittal")):
        warned = [line for line in err if line.startswith(f"ctviewer: warning: {studies / name}: acquired as")]
        assert warned == [f"ctviewer: warning: {studies / name}: acquired as {plane} slices: located on the "
                          "axial planes reformatted from them (slice numbers count those planes from the feet, "
                          f"{t.image.spacing[0]:g} mm apart; no DICOM instance numbers)"], err
    assert not [line for line in err if "axial.nii.gz" in line and "acquired as" in line]
    picks = PicksFile.open(out)
    for level in ("L3", "T12", "L1"):
        axial = picks.get("axial", level)
        assert axial.in_scan and t.levels[level].bottom_slice <= axial.slice_index <= t.levels[level].top_slice
        for name in ("sagittal", "coronal", "sagittal_dicom"):
            other = picks.get(name, level)
            assert (other.slice_index, other.status, other.source) == (axial.slice_index, axial.status,
                                                                       axial.source), (name, level)
            assert other.z_mm == pytest.approx(axial.z_mm, abs=1e-3) and other.instance_number is None

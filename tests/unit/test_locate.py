"""Locating: heatmaps decoded into slice index / z / instance number on a non-trivial geometry, the
threshold, batches over folders with bad files in them, the evaluation figures and pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.writers import write_volume
from ctviewer.workflows.slice_locator import drawing
from ctviewer.workflows.slice_locator.evaluate import evaluate, read_truth, report_lines
from ctviewer.workflows.slice_locator.locate import (assign_exam_ids, decode_picks, find_studies, locate,
                                                     locate_paths)
from ctviewer.workflows.slice_locator.picks import Pick
from ctviewer.workflows.slice_locator.projections import Projections

#: 81 slices 2.5 mm apart from z = -300 (feet) to -100 mm (head); stored head first, so the
#: InstanceNumbers run 81 .. 1 from the lowest slice up.
SLICE_Z = -300.0 + 2.5 * np.arange(81)


def _projections() -> Projections:
    rows = 201  # (81 - 1) * 2.5 mm at 1 mm
    image = np.zeros((rows, 50), np.float32)
    return Projections(frontal=image, sagittal=image[:, :40], top_z_mm=-100.0, spacing_mm=1.0, slice_z_mm=SLICE_Z,
                       instance_numbers=list(range(81, 0, -1)), slice_thickness_mm=3.0, slice_spacing_mm=2.5,
                       body_centre_col=(25.0, 20.0))


def test_heatmap_peak_becomes_slice_z_and_instance_number():
    heat = np.full(201, 0.02)
    heat[121] = heat[122] = 0.9  # a plateau: the pick is its middle, row 121.5 = z -221.5 mm
    heat[120] = heat[123] = 0.5
    t12 = np.full(201, 0.02)
    t12[40] = 0.25  # below the threshold: not in scan
    picks = decode_picks({"L3": heat, "T12": t12}, _projections(), ("L3", "T12"), threshold=0.3,
                         exam_id="case7", source="slice_locator v2")
    l3, t12_pick = picks
    # z -221.5 lies 31.4 slices above -300: slice 31 (z -222.5), stored as instance 81 - 31 = 50
    assert (l3.slice_index, l3.z_mm, l3.instance_number) == (31, -222.5, 50)
    assert (l3.status, l3.confidence, l3.source, l3.exam_id) == ("predicted", 0.9, "slice_locator v2", "case7")
    assert (l3.spacing_mm, l3.slice_thickness_mm) == (2.5, 3.0)
    assert t12_pick.status == "not_in_scan" and t12_pick.confidence == 0.25
    assert (t12_pick.slice_index, t12_pick.z_mm, t12_pick.instance_number) == (None, None, None)


def test_peak_at_the_top_row_is_the_top_slice():
    heat = np.zeros(201)
    heat[0] = 0.8
    pick = decode_picks({"L3": heat}, _projections(), ("L3",), 0.3, "x", "m")[0]
    assert (pick.slice_index, pick.z_mm, pick.instance_number) == (80, -100.0, 1)


def test_a_heatmap_of_the_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="L3 heatmap has shape"):
        decode_picks({"L3": np.zeros(200)}, _projections(), ("L3",), 0.3, "x", "m")


class _Card:
    name, version = "fake_locator", "3"


class FakeLocator:
    """Locator-compatible: a bump at a fixed height (mm below the top row) for L3; T12 absent."""

    card, levels, threshold = _Card(), ("L3", "T12"), 0.3

    def __init__(self, l3_mm_below_top: float = 20.0):
        self.below = l3_mm_below_top

    def heatmaps(self, projections):
        rows = np.arange(projections.rows)
        return {"L3": np.exp(-0.5 * ((rows - self.below) / 2.0) ** 2), "T12": np.zeros(projections.rows)}


def _ct(n_slices=30, spacing_z=3.0) -> Volume:
    """A small CT: air, a body of soft tissue, a bright spine, axial slices 3 mm apart. The spine's
    bodies are 18 mm high between 6 mm discs (the vertebra count finds a spine, and names nothing)."""
    a = np.full((n_slices, 64, 64), -1000, np.int16)
    yy, xx = np.mgrid[:64, :64]
    a[:, (yy - 32) ** 2 + (xx - 32) ** 2 < 26 ** 2] = 40
    a[:, 40:48, 28:36] = 700
    for k in range(3, n_slices, 8):
        a[k:k + 2, 40:48, 28:36] = 60
    return Volume(a, spacing=(spacing_z, 2.0, 2.0), origin=(0.0, 0.0, -50.0), modality="CT")


def test_locate_a_volume_with_a_locator():
    picks = locate(_ct(), FakeLocator(20.0), exam_id="case1")
    l3, t12 = picks
    # top slice z = -50 + 29 * 3 = 37; 20 mm below is z 17 = slice (17 + 50) / 3 = 22.33 -> 22
    assert (l3.exam_id, l3.slice_index, l3.z_mm, l3.source) == ("case1", 22, 16.0, "fake_locator v3")
    assert t12.status == "not_in_scan"
    with pytest.raises(InputError, match="model fake_locator locates T12, not L3"):
        locate(_ct(), type("OneLevel", (FakeLocator,), {"levels": ("T12",)})(), levels=("L3",))


def test_batch_goes_on_past_bad_files(tmp_path):
    write_volume(_ct(), tmp_path / "case1.nii.gz")
    (tmp_path / "sub").mkdir()
    write_volume(_ct(20), tmp_path / "sub" / "case2.nii.gz")  # a folder of studies inside the folder
    Image.new("RGB", (20, 10)).save(tmp_path / "photo.png")
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti file at all")
    labels = _ct().with_array(np.zeros((30, 64, 64), np.uint8))
    write_volume(labels, tmp_path / "case1_labels.nii.gz")  # a label map beside its scan: skipped
    (tmp_path / "picks.csv").write_text("exam_id\n")  # our own outputs are no studies
    results = list(locate_paths([tmp_path, tmp_path / "missing.nii.gz"], lambda: FakeLocator()))
    errors = sorted(r.error for r in results if r.error)
    assert len(errors) == 3 and all("\n" not in e for e in errors)
    assert errors[0].startswith(f"{tmp_path / 'broken.nii.gz'}: ")
    assert errors[1] == f"{tmp_path / 'missing.nii.gz'}: no such file or folder"
    assert errors[2] == f"{tmp_path / 'photo.png'}: is a photo, not a CT scan"
    located = {r.exam_id: r for r in results if not r.error}
    assert set(located) == {"case1", "case2"} and located["case1"].picks[0].status == "predicted"


def test_a_batch_of_bad_paths_never_loads_the_model(tmp_path):
    Image.new("L", (20, 10)).save(tmp_path / "photo.png")

    def no_model():
        raise AssertionError("the model was loaded for a batch without a CT scan")

    results = list(locate_paths([tmp_path / "photo.png", tmp_path / "nothing"], no_model))
    assert [bool(r.error) for r in results] == [True, True]


def test_non_ct_values_are_refused(tmp_path):
    write_volume(_ct().with_array(np.zeros((30, 64, 64), np.int16)), tmp_path / "blank.nii.gz")
    [result] = locate_paths([tmp_path / "blank.nii.gz"], FakeLocator())
    assert "not a CT scan in Hounsfield units" in result.error and not result.internal


def test_exam_ids_are_stable_and_unique(tmp_path):
    a, b, c = tmp_path / "p1" / "SE1", tmp_path / "p2" / "SE1", tmp_path / "p3" / "SE1"
    ids = assign_exam_ids([a, b], known={"old": str(c.resolve())})
    assert ids == {a: "SE1", b: "p2/SE1"}
    assert assign_exam_ids([b, a], known={"SE1": str(a.resolve())}) == {b: "p2/SE1", a: "SE1"}
    assert find_studies([tmp_path / "nope"])[1] == [(tmp_path / "nope", "no such file or folder")]


# -- evaluation ----------------------------------------------------------------------------------

def _p(exam, level, index, z=None, spacing=None, status=None) -> Pick:
    status = status or ("predicted" if index is not None else "not_in_scan")
    return Pick(exam, level, index, z, None, None, spacing, "m", 0.9, status)


def test_evaluation_errors_in_mm_and_slices():
    truth = [_p("a", "L3", 40, -100.0, 2.5), _p("b", "L3", 10, -50.0, 5.0), _p("c", "L3", 12, None, 2.0),
             _p("d", "L3", None), _p("e", "L3", None), _p("f", "L3", 30, -10.0, 1.0), _p("g", "L3", 1, 0.0, 1.0)]
    predicted = [_p("a", "L3", 42, -95.0, 2.5), _p("b", "L3", 9, -55.0, 5.0), _p("c", "L3", 15, None, 2.0),
                 _p("d", "L3", None), _p("e", "L3", 3, 1.0, 1.0), _p("f", "L3", None), _p("x", "L3", 1, 0.0, 1.0)]
    result = evaluate(predicted, truth)
    r = result.levels["L3"]
    # a: +5 mm = +2 slices; b: -5 mm = -1 slice; c: no z, 3 slices x 2 mm = +6 mm
    assert sorted(r.errors_slices) == [-1.0, 2.0, 3.0] and sorted(r.errors_mm) == [-5.0, 5.0, 6.0]
    assert (r.matched, r.both_absent, r.false_found, r.missed) == (3, 1, 1, 1)
    assert result.only_predicted == ["x"] and result.only_truth == ["g"]
    assert evaluate(predicted, truth + [_p("a", "T12", 90, 0.0, 2.5)]).levels["T12"].unpredicted == 1
    text = "\n".join(report_lines(result, "p.csv", "t.csv"))
    assert "L3: 3 matched" in text and "error mm     median 5.00  mean 5.33  max 6.00  (bias +2.00)" in text
    assert "error slices median 2.00  mean 2.00  max 3.00" in text
    assert "1 agreed; 1 said absent but present; 1 given a slice but absent" in text


def test_in_view_not_found_is_counted_apart_never_as_said_absent():
    """A prediction "in view, not found" gives no slice but claims no absence: it is neither a miss nor an
    agreement on absence; a truth row that says so has no answer to compare with and is left out."""
    truth = [_p("a", "L3", 40, -100.0, 2.5), _p("b", "L3", None), _p("c", "L3", None, status="not_found")]
    predicted = [_p("a", "L3", None, status="not_found"), _p("b", "L3", None, status="not_found"),
                 _p("c", "L3", 12, 0.0, 2.5)]
    result = evaluate(predicted, truth)
    r = result.levels["L3"]
    assert (r.matched, r.both_absent, r.missed, r.false_found, r.not_found) == (0, 0, 0, 0, 2)
    text = "\n".join(report_lines(result, "p.csv", "t.csv"))
    assert "in view, not found  2 predicted without a slice" in text
    assert "1 truth row(s) in view but not found (no slice) were left out" in text


def test_seed_truth_gives_errors_in_slices_only(tmp_path):
    (tmp_path / "t.csv").write_text("exam_id,L3_slice_num,T12_slice_num\na,40,90\nb,12,\n")
    truth, kind = read_truth(tmp_path / "t.csv")
    result = evaluate([_p("a", "L3", 38, -5.0, 2.5), _p("b", "L3", 12, 0.0, 2.5), _p("b", "T12", None)],
                      truth, truth_format=kind)
    assert kind == "seed" and result.levels["L3"].errors_mm is None
    assert list(result.levels["L3"].errors_slices) == [-2.0, 0.0]
    assert result.levels["T12"].both_absent == 1 and result.levels["T12"].matched == 0
    assert "errors in slices only" in report_lines(result, "p", "t")[0]


def test_histogram_png_has_one_panel_per_level(tmp_path):
    path = drawing.write_error_histogram({"L3": np.array([-1, 0, 0, 2, 40.0]), "T12": np.array([])},
                                         tmp_path / "h.png")
    image = Image.open(path)
    assert image.size == (drawing.HIST_WIDTH, 2 * drawing.HIST_PANEL_HEIGHT)
    pixels = np.asarray(image.convert("RGB"))
    bar = np.all(pixels == drawing.LEVEL_COLOURS["L3"], axis=-1)
    assert bar[: drawing.HIST_PANEL_HEIGHT].sum() > 100 and bar[drawing.HIST_PANEL_HEIGHT:].sum() == 0


def test_projection_png_draws_each_level_at_its_row(tmp_path):
    p = _projections()
    picks = [_p("a", "L3", 31, -222.5), _p("a", "T12", None)]
    path = drawing.write_projections_png(p, picks, tmp_path / "a.png", title="a")
    pixels = np.asarray(Image.open(path).convert("RGB"))
    scale = 2  # 201 rows are enlarged to fit the labels
    on_line = np.all(pixels == drawing.LEVEL_COLOURS["L3"], axis=-1)
    rows = np.flatnonzero(on_line.sum(axis=1) > pixels.shape[1] // 2)
    assert pixels.shape[1] == (50 + 6 + 40) * scale
    centre = (122.5 + 0.5) * scale  # z -222.5 is row 122.5; the middle of that row, below the 22 px header
    assert rows.size and set(rows - 22) <= {centre - 1, centre, centre + 1}
    assert not np.any(np.all(pixels == drawing.LEVEL_COLOURS["T12"], axis=-1))


def test_a_cancelled_batch_stops(tmp_path):
    from ctviewer.errors import Cancelled
    from ctviewer.progress import CancelToken

    write_volume(_ct(), tmp_path / "case1.nii.gz")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(locate_paths([tmp_path], FakeLocator(), cancel=token))

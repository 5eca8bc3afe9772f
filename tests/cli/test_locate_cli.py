"""`ctviewer locate` and `ctviewer locate-eval`: exit codes and messages, the CSV and pictures they
write, reviewed rows kept. A Locator-compatible stand-in keeps these fast; one test runs the shipped
model (skipped until models/slice_locator.keras exists)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from ctviewer.cli import main
from ctviewer.io.writers import write_volume
from ctviewer.workflows.slice_locator import drawing
from ctviewer.workflows.slice_locator.picks import CSV_COLUMNS, PicksFile
from tests.conftest import REPO
from tests.unit.test_locate import FakeLocator, _ct

SHIPPED_MODEL = REPO / "models" / "slice_locator.keras"


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr("ctviewer.commands.locate.load_locator", lambda name: FakeLocator(20.0))


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    write_volume(_ct(), folder / "case1.nii.gz")
    write_volume(_ct(24), folder / "case2.nii.gz")
    return folder


def test_bad_paths_exit_2_without_writing_or_loading_a_model(tmp_path, capsys, monkeypatch):
    def no_model(name):
        raise AssertionError("model loaded for a batch without any CT scan")

    monkeypatch.setattr("ctviewer.commands.locate.load_locator", no_model)
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    code = main(["locate", str(tmp_path / "missing.nii.gz"), str(tmp_path / "photo.png"),
                 "-o", str(tmp_path / "picks.csv")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and not (tmp_path / "picks.csv").exists()
    assert err == [f"ctviewer: nothing located; {tmp_path / 'picks.csv'} not written",
                   "ctviewer: 2 of 2 studies failed:",
                   f"ctviewer: {tmp_path / 'missing.nii.gz'}: no such file or folder",
                   f"ctviewer: {tmp_path / 'photo.png'}: is a photo, not a CT scan"]


@pytest.mark.parametrize("extra, message", [
    (["--levels", "L3,L7"], "--levels L3,L7: choose from T1…T12, L1…L5, S1"),
    (["-o", "/nonexistent/dir/p.csv"], "/nonexistent/dir: folder does not exist"),
])
def test_bad_options_exit_2_with_one_line(scans, tmp_path, capsys, extra, message):
    args = ["locate", str(scans), "-o", str(tmp_path / "p.csv")] + extra
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_model_that_cannot_be_found_ends_the_batch_at_once(scans, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(tmp_path / "models"))
    assert main(["locate", str(scans), "-o", str(tmp_path / "p.csv"), "--model", "nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ctviewer: no model named 'nonexistent'") and err.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()


def test_a_broken_picks_csv_stops_the_batch_before_it_starts(scans, tmp_path, capsys, fake_model):
    (tmp_path / "p.csv").write_text("exam_id,level\n")
    assert main(["locate", str(scans), "-o", str(tmp_path / "p.csv")]) == 2
    assert "p.csv: line 1: not a picks CSV: missing column(s) slice_index" in capsys.readouterr().err
    assert (tmp_path / "p.csv").read_text() == "exam_id,level\n"


def test_locate_writes_csv_and_pictures_and_goes_on_past_bad_files(scans, tmp_path, capsys, fake_model):
    (scans / "broken.nii.gz").write_bytes(b"junk")
    out, png = tmp_path / "picks.csv", tmp_path / "png"
    assert main(["locate", str(scans), "-o", str(out), "--png", str(png)]) == 2   # a study failed
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("case1  L3 slice 22 (z 16 mm) 1.00   T12 not in scan 0.00")
    assert lines[1].startswith("case2  L3 slice ")
    assert lines[-1] == f"wrote {out}: 2 studies located, 1 could not be"
    err = captured.err.splitlines()
    assert err[-2] == "ctviewer: 1 of 3 studies failed:" and err[-1].startswith(f"ctviewer: {scans / 'broken.nii.gz'}: ")
    header, *rows = out.read_text().splitlines()
    assert header == ",".join(CSV_COLUMNS) and len(rows) == 4
    picks = PicksFile.open(out)
    assert picks.get("case1", "L3").source == "fake_locator v3" and picks.get("case1", "T12").status == "not_in_scan"
    assert picks.studies == {"case1": str((scans / "case1.nii.gz").resolve()),
                             "case2": str((scans / "case2.nii.gz").resolve())}
    assert sorted(p.name for p in png.iterdir()) == ["case1.png", "case2.png"]
    image = np.asarray(Image.open(png / "case1.png").convert("RGB"))
    assert np.all(image == drawing.LEVEL_COLOURS["L3"], axis=-1).any()


def test_reviewed_rows_are_not_overwritten_by_new_predictions(scans, tmp_path, capsys, fake_model):
    out = tmp_path / "picks.csv"
    assert main(["locate", str(scans), "-o", str(out), "--levels", "L3"]) == 0
    picks = PicksFile.open(out)
    picks.set(picks.get("case1", "L3").reviewed("corrected", slice_index=5, source="manual"), action="move")
    capsys.readouterr()
    assert main(["locate", str(scans), "-o", str(out), "--levels", "l3"]) == 0
    text = capsys.readouterr().out
    assert "[corrected, kept]" in text and "1 reviewed row(s) kept, not replaced by the new predictions" in text
    again = PicksFile.open(out)
    assert again.get("case1", "L3").slice_index == 5 and again.get("case2", "L3").status == "predicted"
    assert len(again.picks) == 2


def test_the_installed_command_exits_2_on_a_missing_path(tmp_path):
    done = subprocess.run([str(REPO / ".venv" / "bin" / "ctviewer"), "locate", str(tmp_path / "none.dcm"),
                           "-o", str(tmp_path / "p.csv")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "none.dcm: no such file or folder" in done.stderr
    assert "Traceback" not in done.stderr


# -- locate-eval ---------------------------------------------------------------------------------

def _picks_csv(path, rows):
    """rows: (exam, level, slice_index, z_mm, spacing_mm, status)."""
    lines = [",".join(CSV_COLUMNS)]
    for exam, level, index, z, spacing, status in rows:
        lines.append(f"{exam},{level},{'' if index is None else index},{'' if z is None else z},,,"
                     f"{spacing},m,0.9,{status},")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_locate_eval_prints_errors_and_writes_the_histogram(tmp_path, capsys):
    pred = _picks_csv(tmp_path / "pred.csv", [("a", "L3", 42, -95, 2.5, "predicted"), ("b", "L3", 9, -55, 5, "predicted"),
                                              ("a", "T12", 80, 0, 2.5, "predicted"), ("z", "L3", 1, 0, 1, "predicted")])
    truth = _picks_csv(tmp_path / "truth.csv", [("a", "L3", 40, -100, 2.5, "accepted"),
                                                ("b", "L3", 10, -50, 5, "corrected"),
                                                ("a", "T12", None, None, 2.5, "not_in_scan")])
    hist = tmp_path / "hist.png"
    assert main(["locate-eval", str(pred), str(truth), "--png", str(hist)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "L3: 2 matched" in out and "error mm     median 5.00  mean 5.00  max 5.00  (bias +0.00)" in out
    assert "error slices median 1.50  mean 1.50  max 2.00" in out
    assert "T12: 0 matched" in out and "0 agreed; 0 said absent but present; 1 given a slice but absent" in out
    assert "1 exam_id(s) of pred.csv are not in truth.csv: z" in captured.err
    assert Image.open(hist).size == (drawing.HIST_WIDTH, 2 * drawing.HIST_PANEL_HEIGHT)
    assert main(["locate-eval", str(pred), str(truth), "--png", str(hist), "--level", "L3"]) == 0
    assert Image.open(hist).size == (drawing.HIST_WIDTH, drawing.HIST_PANEL_HEIGHT)


def test_locate_eval_reads_the_seed_format_as_truth(tmp_path, capsys):
    pred = _picks_csv(tmp_path / "pred.csv", [("a", "L3", 42, -95, 2.5, "predicted")])
    (tmp_path / "seed.csv").write_text("exam_id,L3_slice_num\na,40\n")
    assert main(["locate-eval", str(pred), str(tmp_path / "seed.csv")]) == 0
    out = capsys.readouterr().out
    assert "errors in slices only" in out and "error slices median 2.00" in out and "error mm" not in out


def test_locate_eval_with_nothing_in_common_exits_2(tmp_path, capsys):
    pred = _picks_csv(tmp_path / "pred.csv", [("a", "L3", 42, -95, 2.5, "predicted")])
    truth = _picks_csv(tmp_path / "truth.csv", [("b", "L3", 40, -100, 2.5, "accepted")])
    assert main(["locate-eval", str(pred), str(truth)]) == 2
    err = capsys.readouterr().err
    assert f"ctviewer: {truth}: no exam_id and level of pred.csv is in the truth" in err
    assert main(["locate-eval", str(tmp_path / "nope.csv"), str(truth)]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


@pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="the shipped model models/slice_locator.keras is not there yet")
def test_shipped_model_on_the_real_slab_writes_what_its_card_reports(shared_data, tmp_path, capsys):
    """The card's real-slab row, read back from the CSV: L3 (absent from the slab's labels) is said to be
    not in the scan; T12 is in the slab but the model misses it (its confidence is under the threshold),
    as the card admits. The confidences must be the card's within 25 %: a locator that always says
    "not in scan" (confidence 0) or a different model fails here."""
    import json

    from ctviewer.data.vertebra_ids import VERTEBRA_IDS
    from ctviewer.io import read_volume

    card = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())
    real, threshold = card["metrics"]["real_ct:abdomen_slab"], card["metrics"]["threshold"]
    out = tmp_path / "picks.csv"
    scan = shared_data / "ct" / "abdomen_slab_ct.nii.gz"
    assert main(["locate", str(scan), "-o", str(out), "--png", str(tmp_path)]) == 0
    truth = read_volume(shared_data / "ct" / "abdomen_slab_labels.nii.gz").array
    assert not (truth == VERTEBRA_IDS["L3"]).any() and (truth == VERTEBRA_IDS["T12"]).any()
    picks = {p.level: p for p in PicksFile.open(out).picks}
    assert sorted(picks) == ["L3", "T12"]
    for level, pick in picks.items():
        expected = real[level]
        assert pick.source == f"slice_locator v{card['version']}"
        assert pick.status == ("predicted" if expected["says_in_scan"] else "not_in_scan"), pick
        assert abs(pick.confidence - expected["confidence"]) <= 0.25 * expected["confidence"], pick
        assert (pick.confidence >= threshold) == expected["says_in_scan"]
    assert real["L3"]["not_in_scan_correct"]
    shot = np.asarray(Image.open(tmp_path / "abdomen_slab_ct.png").convert("RGB"))
    assert shot.std() > 5   # the projections are drawn, not a blank picture


def test_progress_bar_draws_on_a_terminal_only():
    import io

    from ctviewer.commands.locate import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term, pipe = Terminal(), io.StringIO()
    for stream in (term, pipe):
        bar = ProgressBar(stream, width=10)
        bar(1.0, "case1: projecting")
        bar.clear()
    assert "\r[##########] 100% case1: projecting" in term.getvalue() and term.getvalue().endswith("\r")
    assert pipe.getvalue() == ""


def _write_dicom_series(folder, slices: int = 10) -> None:
    """A CT series with a body and a spine, stored head first (instance 1 is the top slice)."""
    from tests.dicom_series import write_ct_series

    image = (_ct(slices).array[0] + 1024).astype(np.uint16)  # stored values; the rescale intercept gives HU back
    positions = [(0.0, 0.0, 30.0 - 2.5 * k) for k in range(slices)]
    names = [f"im{k:03d}.dcm" for k in range(slices)]
    numbers = [{"InstanceNumber": k + 1} for k in range(slices)]
    write_ct_series(folder, [image] * slices, positions, names, per_slice=numbers, pixel_spacing=(2.0, 2.0),
                    PatientName="Test^Patient")


def test_dicom_study_gets_instance_numbers_and_names_only_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ctviewer.commands.locate.load_locator", lambda name: FakeLocator(0.0))
    _write_dicom_series(tmp_path / "studies" / "exam7")
    for names, out in (([], tmp_path / "plain.csv"), (["--patient-names"], tmp_path / "named.csv")):
        assert main(["locate", str(tmp_path / "studies"), "-o", str(out), "--levels", "L3"] + names) == 0
    pick = PicksFile.open(tmp_path / "plain.csv").get("exam7", "L3")
    # the top slice: index 9 from the feet, z 30 mm, stored first as instance 1
    assert (pick.slice_index, pick.instance_number, pick.z_mm, pick.spacing_mm) == (9, 1, 30.0, 2.5)
    assert "Test" not in (tmp_path / "plain.csv").read_text()
    assert PicksFile.open(tmp_path / "named.csv").get("exam7", "L3").patient_name == "Test Patient"


# -- the vertebra count in the answer ------------------------------------------------------------

def test_levels_the_network_lacks_come_from_the_vertebra_count(tmp_path, capsys, fake_model):
    """``--levels L1,L2,T12`` on a synthetic abdomen: the stand-in network has no L1 or L2 channel and says
    T12 is not in the scan; the count places all three on their true vertebral bodies, and the CSV
    says so (source "spine count", unreviewed), with one row per level and the columns unchanged."""
    from ctviewer.synth import TorsoParams, make_torso

    torso = make_torso(TorsoParams.random(11, field_of_view="abdomen", matrix=(160, 160), pixel_spacing=2.5))
    write_volume(torso.image, tmp_path / "abdomen.nii.gz")
    out = tmp_path / "picks.csv"
    assert main(["locate", str(tmp_path / "abdomen.nii.gz"), "--levels", "L1,L2,T12", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    header, *rows = out.read_text().splitlines()
    assert header == ",".join(CSV_COLUMNS) and [r.split(",")[1] for r in rows] == ["L1", "L2", "T12"]
    picks = PicksFile.open(out)
    for level in ("L1", "L2", "T12"):
        pick, truth = picks.get("abdomen", level), torso.levels[level]
        assert (pick.source, pick.status, pick.reviewed_at) == ("spine count", "predicted", ""), pick
        assert truth.bottom_slice <= pick.slice_index <= truth.top_slice, (level, pick.slice_index, truth)
    assert "T12 slice" in captured.out and "[from the spine count]" in captured.out
    assert "T12: from the spine count: the locator says not in scan" in captured.err
    log = [json.loads(line) for line in picks.audit_path.read_text().splitlines()]
    assert {e["level"]: e["note"] for e in log}["L1"].startswith("from the spine count: the locator has no L1")


ACRIN = "acrin_001_dicom"


@pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="the shipped model models/slice_locator.keras is absent")
def test_real_series_t12_and_l3_within_one_vertebral_body(shared_data, tmp_path, capsys):
    """The real ACRIN abdomen–pelvis series (5 mm slices every 4.25 mm; L3 centre slice 51 and T12 centre
    slice 75 read by eye, see the data README): the shipped network says T12 is not in the scan, the
    vertebra count finds it, and the answer on disk puts both within one vertebral body (~25 mm, 6
    slices) of the truth. This scan was looked at while the counter was built: a regression check, not a
    held-out figure."""
    series = shared_data / "ct" / ACRIN
    if not series.is_dir():
        pytest.skip(f"{series} is absent")
    out = tmp_path / "picks.csv"
    assert main(["locate", str(series), "--levels", "L3,T12", "-o", str(out)]) == 0
    capsys.readouterr()
    picks = PicksFile.open(out)
    t12, l3 = picks.get(ACRIN, "T12"), picks.get(ACRIN, "L3")
    assert t12.in_scan and abs(t12.slice_index - 75) <= 6, t12
    assert l3.in_scan and abs(l3.slice_index - 51) <= 6, l3
    version = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text())["version"]
    assert t12.source in ("spine count", f"slice_locator v{version}") and t12.status != "not_in_scan"


def test_real_series_t10_in_view_is_not_found_never_not_in_scan(shared_data, tmp_path, capsys, monkeypatch):
    """ACRIN 001 reaches up into the chest (its top slice ~65 mm above T11's upper disc), but the count names
    T11–S1 only: T10 is in view and nobody found it, which the CSV on disk must say ("not_found"), not
    "not in scan"; T1, far above the top slice, is not in the scan. No network has a T1/T10 channel: the
    model is never loaded."""
    import csv

    series = shared_data / "ct" / ACRIN
    if not series.is_dir():
        pytest.skip(f"{series} is absent")

    def no_model(name):
        raise AssertionError("the model was loaded for levels only the count places")

    monkeypatch.setattr("ctviewer.commands.locate.load_locator", no_model)
    out = tmp_path / "picks.csv"
    assert main(["locate", str(series), "--levels", "T1,T10,T11", "-o", str(out)]) == 0
    std = capsys.readouterr()
    with open(out, newline="", encoding="utf-8") as fh:
        rows = {row["level"]: row for row in csv.DictReader(fh)}
    # (should the count come to name T10, it gets a slice above T11 instead: then test a level it still misses)
    assert (rows["T10"]["status"], rows["T10"]["slice_index"], rows["T10"]["source"]) == \
        ("not_found", "", "spine count"), rows["T10"]
    assert (rows["T1"]["status"], rows["T1"]["slice_index"]) == ("not_in_scan", "")
    assert rows["T11"]["status"] == "predicted" and 79 <= int(rows["T11"]["slice_index"]) <= 86
    assert "T10 in view, not found — check" in std.out and "T10 not in scan" not in std.out
    assert "T10: in view, not found — check: the scan covers T10's height" in std.err
    assert "T1: not in scan: T1's middle would lie near z" in std.err
    audit = [json.loads(line) for line in (tmp_path / "picks.audit.jsonl").read_text().splitlines()]
    assert any(a["level"] == "T10" and a["new"]["status"] == "not_found" and "in view" in a["note"] for a in audit)


def test_levels_only_the_count_places_start_no_network(tmp_path, capsys, monkeypatch):
    """``--levels L1,S1``: the shipped locator has no channel for either (its card says so), so the model
    is never loaded; the count places both."""
    from ctviewer.synth import TorsoParams, make_torso

    def no_model(name):
        raise AssertionError("the network was loaded for levels it has no channel for")

    monkeypatch.setattr("ctviewer.commands.locate.load_locator", no_model)
    torso = make_torso(TorsoParams.random(13, field_of_view="abdomen", matrix=(160, 160), pixel_spacing=2.5))
    write_volume(torso.image, tmp_path / "abdomen.nii.gz")
    out = tmp_path / "picks.csv"
    assert main(["locate", str(tmp_path / "abdomen.nii.gz"), "--levels", "l1,S1", "-o", str(out)]) == 0
    picks = PicksFile.open(out)
    for level in ("L1", "S1"):
        pick, truth = picks.get("abdomen", level), torso.levels[level]
        assert pick.source == "spine count" and truth.bottom_slice <= pick.slice_index <= truth.top_slice, pick


@pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="the shipped model models/slice_locator.keras is absent")
def test_real_series_cropped_like_other_scans_t12_found_or_said_absent(shared_data, tmp_path, capsys):
    """ACRIN 001 cut as other protocols cut it, written as NIfTI on the series' own grid: a pelvis-only
    scan (slices 0–39: L5 and the sacrum) has neither T12 nor L3; a scan starting at L2 (slices 60–98) and
    one ending just above T12's upper disc (slices 0–83) place T12 within one vertebral body (6 slices,
    ~25 mm) of slice 75, read by eye. A regression check on a scan the counter was built beside."""
    from dataclasses import replace

    from ctviewer.io import read_volume

    series = shared_data / "ct" / ACRIN
    if not series.is_dir():
        pytest.skip(f"{series} is absent")
    whole = read_volume(series)
    crops = {"pelvis": (0, 40), "from_l2": (60, 99), "top_at_t11": (0, 84)}
    paths = []
    for name, (k0, k1) in crops.items():
        origin = tuple(float(c) for c in whole.index_to_lps(np.array([[k0, 0, 0]]))[0])
        crop = replace(whole, array=np.ascontiguousarray(whole.array[k0:k1]), origin=origin, meta={}, warnings=[])
        paths.append(str(write_volume(crop, tmp_path / f"{name}.nii.gz")))
    out = tmp_path / "picks.csv"
    assert main(["locate", *paths, "--levels", "L3,T12", "-o", str(out)]) == 0
    capsys.readouterr()
    picks = PicksFile.open(out)
    assert [picks.get("pelvis", lv).status for lv in ("L3", "T12")] == ["not_in_scan", "not_in_scan"]
    for name in ("from_l2", "top_at_t11"):
        t12 = picks.get(name, "T12")
        assert t12.in_scan and abs(t12.slice_index + crops[name][0] - 75) <= 6, (name, t12)
    assert picks.get("from_l2", "L3").status == "not_in_scan"
    assert abs(picks.get("top_at_t11", "L3").slice_index - 51) <= 6

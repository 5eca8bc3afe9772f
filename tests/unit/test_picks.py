"""The picks CSV: round trip, every decision written at once with an audit line, old file kept when
a save fails, bad files refused with the line, the seed's export."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest

from ctviewer.errors import InputError
from ctviewer.workflows.slice_locator.picks import CSV_COLUMNS, Pick, PicksFile, read_picks_csv, studies_path


def _pick(exam="case012", level="L3", **changes) -> Pick:
    values = dict(exam_id=exam, level=level, slice_index=41, z_mm=-120.5, instance_number=88,
                  slice_thickness_mm=2.5, spacing_mm=0.625, source="slice_locator v1", confidence=0.83,
                  status="predicted")
    values.update(changes)
    return Pick(**values)


def _rows(path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def test_round_trip_keeps_every_value(tmp_path):
    path = tmp_path / "picks.csv"
    picks = PicksFile.create(path)
    written = [_pick(), _pick(level="T12", slice_index=None, z_mm=None, instance_number=None, status="not_in_scan",
                              confidence=0.07),
               _pick("case013", status="corrected", source="manual", reviewed_at="2024-05-02T10:11:12+02:00")]
    picks.set_many(written, action="predict")
    assert _rows(path)[0] == CSV_COLUMNS
    assert _rows(path)[1] == ["case012", "L3", "41", "-120.5", "88", "2.5", "0.625", "slice_locator v1", "0.83",
                              "predicted", ""]
    again = PicksFile.open(path)
    assert again.picks == written
    assert again.exam_ids() == ["case012", "case013"]
    assert again.get("case012", "T12").in_scan is False


def test_each_decision_is_in_the_file_at_once_with_an_audit_line(tmp_path):
    path = tmp_path / "picks.csv"
    picks = PicksFile.create(path)
    picks.set(_pick(), action="predict", user="model")
    accepted = picks.set(picks.get("case012", "L3").reviewed("corrected", slice_index=42, source="manual"),
                         action="move", user="dr_a")
    assert read_picks_csv(path)[0] == [accepted]  # read from disk, not from the object
    assert accepted.reviewed_at and datetime.fromisoformat(accepted.reviewed_at).utcoffset() is not None
    lines = [json.loads(line) for line in picks.audit_path.read_text().splitlines()]
    assert picks.audit_path.name == "picks.audit.jsonl" and len(lines) == 2
    assert lines[1]["user"] == "dr_a" and lines[1]["action"] == "move" and lines[1]["level"] == "L3"
    assert lines[1]["old"]["slice_index"] == 41 and lines[1]["new"]["slice_index"] == 42
    assert lines[0]["old"] is None and lines[0]["user"] == "model"


def test_a_reviewed_status_is_stamped_and_the_user_defaults_to_the_login(tmp_path):
    picks = PicksFile.create(tmp_path / "p.csv")
    stored = picks.set(_pick(status="flagged"), action="flag")
    assert stored.reviewed_at and stored.is_reviewed
    assert json.loads(picks.audit_path.read_text())["user"]  # getpass.getuser(), never empty


def test_a_failed_save_keeps_the_old_file_and_the_old_state(tmp_path, monkeypatch):
    path = tmp_path / "picks.csv"
    picks = PicksFile.create(path)
    picks.set(_pick(), action="predict")
    before = path.read_bytes()

    def disk_full(src, dst):  # the new file was written to its temporary name; the rename fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(InputError, match="No space left"):
        picks.set(_pick(slice_index=50), action="move")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert picks.get("case012", "L3").slice_index == 41
    assert len(picks.audit_path.read_text().splitlines()) == 1  # no audit line for what did not happen
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []


def test_studies_live_in_a_sidecar_not_in_the_csv(tmp_path):
    path = tmp_path / "picks.csv"
    picks = PicksFile.create(path)
    scan = tmp_path / "Doe_John" / "ct.nii.gz"
    picks.set(_pick(), action="predict")
    picks.set_study_path("case012", scan)
    assert "Doe_John" not in path.read_text()
    assert json.loads(studies_path(path).read_text()) == {"case012": str(scan.resolve())}
    assert PicksFile.open(path).studies == {"case012": str(scan.resolve())}


def test_patient_names_only_when_asked(tmp_path):
    plain = PicksFile.create(tmp_path / "a.csv")
    plain.set(_pick(patient_name="Doe John"), action="predict")
    assert "Doe" not in (tmp_path / "a.csv").read_text() and "Doe" not in plain.audit_path.read_text()
    named = PicksFile.create(tmp_path / "b.csv", patient_names=True)
    named.set(_pick(patient_name="Doe John"), action="predict")
    assert _rows(tmp_path / "b.csv")[0][-1] == "patient_name"
    assert PicksFile.open(tmp_path / "b.csv").get("case012", "L3").patient_name == "Doe John"


def test_create_refuses_to_overwrite(tmp_path):
    (tmp_path / "p.csv").write_text("x")
    with pytest.raises(InputError, match="already exists"):
        PicksFile.create(tmp_path / "p.csv")


HEADER = ",".join(CSV_COLUMNS)
GOOD = "case1,L3,41,-120.5,88,2.5,0.625,m v1,0.83,predicted,"


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("exam_id,level,slice\n", "line 1: not a picks CSV: missing column(s) slice_index"),
    (HEADER + ",comment\n", "line 1: not a picks CSV: unknown column(s) comment"),
    ("exam_id,L3_slice_num\ncase1,40\n", "line 1: this is the seed's"),
    (f"{HEADER}\n{GOOD}\ncase1,L6,41,,,,,m,0.8,predicted,\n", "line 3: unknown level 'L6'"),
    (f"{HEADER}\ncase1,L3,,,,,,m,0.8,levels_disagree,\n", "line 2: status levels_disagree needs a slice_index"),
    (f"{HEADER}\ncase1,L3,41,,,,,m,0.8,maybe,\n", "line 2: unknown status 'maybe'"),
    (f"{HEADER}\ncase1,L3,4.5,,,,,m,0.8,predicted,\n", "line 2: slice_index '4.5' is not a whole number"),
    (f"{HEADER}\ncase1,L3,41,\"-1,5\",,,,m,0.8,predicted,\n", "line 2: z_mm '-1,5' is not a number"),
    (f"{HEADER}\ncase1,L3,41,,,,,m,1.8,predicted,\n", "line 2: confidence 1.8 must be at most 1"),
    (f"{HEADER}\ncase1,L3,,,,,,m,0.8,accepted,\n", "line 2: status accepted needs a slice_index"),
    (f"{HEADER}\ncase1,L3,41,,,,,m,0.1,not_in_scan,\n", "line 2: status not_in_scan but slice_index 41"),
    (f"{HEADER}\ncase1,T10,41,,,,,m,,not_found,\n", "line 2: status not_found but slice_index 41"),
    (f"{HEADER}\ncase1,L3,41,,,,,m,0.8,accepted,yesterday\n", "line 2: reviewed_at 'yesterday'"),
    (f"{HEADER}\n{GOOD}\n\n{GOOD}\n", "line 4: a second row for case1 L3 (the first is on line 2)"),
    (f"{HEADER}\ncase1,L3,41\n", "line 2: 3 fields, the header has 11"),
])
def test_bad_csv_is_refused_with_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        PicksFile.open(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_excel_bom_and_column_order_are_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    columns = CSV_COLUMNS[::-1]
    values = dict(zip(CSV_COLUMNS, GOOD.split(",")))
    path.write_text(",".join(columns) + "\r\n" + ",".join(values[c] for c in columns) + "\r\n", encoding="utf-8-sig")
    assert PicksFile.open(path).get("case1", "L3").z_mm == -120.5


def test_seed_export(tmp_path):
    picks = PicksFile.create(tmp_path / "p.csv")
    picks.set_many([_pick("a", slice_index=40), _pick("b", slice_index=None, z_mm=None, instance_number=None,
                                                      status="not_in_scan"),
                    _pick("c", status="flagged"), _pick("d", status="accepted", slice_index=7),
                    _pick("a", level="T12", slice_index=90)], action="predict")
    assert picks.export_seed(tmp_path / "l3.csv") == 2
    assert (tmp_path / "l3.csv").read_text() == "exam_id,L3_slice_num\na,40\nd,7\n"
    picks.export_seed(tmp_path / "t12.csv", level="T12")
    assert (tmp_path / "t12.csv").read_text() == "exam_id,T12_slice_num\na,90\n"


#: Exam ids and patient names a spreadsheet would run as formulas (OWASP CSV injection).
HOSTILE_IDS = ['=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "-cmd"]


def test_formula_like_ids_and_names_are_quoted_on_disk_and_read_back_as_they_were(tmp_path):
    import csv
    import io

    path = tmp_path / "picks.csv"
    picks = PicksFile.create(path, patient_names=True)
    written = [_pick(exam, patient_name=name, z_mm=-629.5)
               for exam, name in zip(HOSTILE_IDS, ["\tDoe^John", "=1+1", "-Smith", "@me"])]
    picks.set_many(written, action="predict")
    on_disk = list(csv.reader(io.StringIO(path.read_bytes().decode(), newline="")))
    assert [row[0] for row in on_disk[1:]] == ["'" + exam for exam in HOSTILE_IDS]
    assert [row[-1] for row in on_disk[1:]] == ["'\tDoe^John", "'=1+1", "'-Smith", "'@me"]
    assert {row[3] for row in on_disk[1:]} == {"-629.5"}          # a negative number stays a number
    again = PicksFile.open(path)
    assert again.picks == written                                  # tab, quote-free ids: the original text
    # the seed export and locate-eval's reading of it give the same ids back
    from ctviewer.workflows.slice_locator.evaluate import read_truth

    picks.export_seed(tmp_path / "seed.csv")
    assert (tmp_path / "seed.csv").read_text().splitlines()[1] == '"\'=HYPERLINK(""http://x"",""y"")",41'
    truth, kind = read_truth(tmp_path / "seed.csv")
    assert kind == "seed" and [p.exam_id for p in truth] == HOSTILE_IDS


def test_any_vertebra_a_disagreement_and_its_note_are_on_disk(tmp_path):
    """Levels T1…S1 are recorded like L3; ``levels_disagree`` is a status of its own that reads back, is
    no person's decision, and stays out of the seed's export; a pick's note lands in its audit line."""
    picks = PicksFile.create(tmp_path / "p.csv")
    disagree = _pick(level="T12", slice_index=70, status="levels_disagree")
    counted = _pick(level="L1", slice_index=60, source="spine count", confidence=0.6)
    picks.set_many([disagree, counted, _pick(level="S1", slice_index=20)], action="predict",
                   notes={("case012", "T12"): "the vertebra count puts T12 at slices 72–80 (centre 76)"})
    back = {p.level: p for p in read_picks_csv(tmp_path / "p.csv")[0]}
    assert back["T12"] == disagree and not back["T12"].is_reviewed and back["T12"].in_scan
    assert (back["L1"].source, back["L1"].status) == ("spine count", "predicted")
    lines = [json.loads(line) for line in picks.audit_path.read_text().splitlines()]
    assert lines[0]["note"] == "the vertebra count puts T12 at slices 72–80 (centre 76)"
    assert "note" not in lines[1]
    assert picks.export_seed(tmp_path / "t12.csv", level="T12") == 0
    assert picks.export_seed(tmp_path / "s1.csv", level="S1") == 1
    assert (tmp_path / "s1.csv").read_text() == "exam_id,S1_slice_num\ncase012,20\n"


def test_in_view_not_found_rows_round_trip_have_no_slice_and_stay_out_of_the_seed_export(tmp_path):
    """``not_found`` (in view, not found — check) is its own status on disk, not "not in scan"; a CSV written
    before it existed still reads."""
    path = tmp_path / "p.csv"
    old = f"{HEADER}\n{GOOD}\ncase1,T12,,,,,,m,0.05,not_in_scan,\ncase2,L3,40,,,,,m,0.9,levels_disagree,\n"
    path.write_text(old)
    picks = PicksFile.open(path)
    assert [p.status for p in picks.picks] == ["predicted", "not_in_scan", "levels_disagree"]
    missed = _pick("case1", "T10", slice_index=None, z_mm=None, instance_number=None, source="spine count",
                   confidence=None, status="not_found")
    picks.set(missed, action="predict")
    assert _rows(path)[-1] == ["case1", "T10", "", "", "", "2.5", "0.625", "spine count", "", "not_found", ""]
    again = read_picks_csv(path)[0]
    assert again[-1] == missed and not missed.in_scan and not missed.is_reviewed
    PicksFile.open(path).set(_pick("case1", "T10", status="predicted", slice_index=50), action="predict")
    assert PicksFile.open(path).get("case1", "T10").slice_index == 50
    picks = PicksFile.open(path)
    picks.set(missed, action="predict")
    picks.export_seed(tmp_path / "t10.csv", level="T10")
    assert (tmp_path / "t10.csv").read_text() == "exam_id,T10_slice_num\n"

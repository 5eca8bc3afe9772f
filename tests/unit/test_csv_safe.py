"""CSV cells a spreadsheet could run as formulas are written with a leading quote (OWASP) and read back
to the original text; numbers, negative ones included, stay numbers. Checked on the bytes on disk and
through every CSV writer the program has."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from ctviewer.io.csv_safe import csv_text, read_cell, read_text, reader, safe_cell, write_csv

#: Texts a spreadsheet would run or that hide a formula, and what must be on disk for each.
HOSTILE = {
    '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
    "+1": "'+1",
    "@SUM(A1)": "'@SUM(A1)",
    "-cmd": "'-cmd",
    "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0",
    "\tMüller^Anna": "'\tMüller^Anna",
    "\r=1+1": "'\r=1+1",
    "'=already quoted": "''=already quoted",
}
#: Cells left exactly as they are: numbers (as text or not) and harmless text.
UNCHANGED = ["-629.5", "-1e-05", "0", "12", "3.25", "-.5", "case012", "O'Brien", "'plain", "a=b", ""]


def _cells_on_disk(path) -> list[list[str]]:
    """The cells as any CSV reader (a spreadsheet) gets them: no unescaping."""
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


@pytest.mark.parametrize("text", list(HOSTILE))
def test_a_formula_text_is_quoted_on_disk_and_read_back_unchanged(tmp_path, text):
    path = write_csv(tmp_path / "t.csv", [[text, -629.5, "-629.5"]], header=["exam_id", "z", "z_text"])
    header, row = _cells_on_disk(path)
    assert row == [HOSTILE[text], "-629.5", "-629.5"]
    assert list(reader(read_text(path))) == [header, [text, "-629.5", "-629.5"]]


@pytest.mark.parametrize("text", UNCHANGED)
def test_numbers_and_harmless_text_are_written_as_they_are(text):
    assert safe_cell(text) == text and read_cell(text) == text


def test_python_numbers_pass_through_as_numbers():
    assert safe_cell(-3) == -3 and safe_cell(-0.25) == -0.25 and safe_cell(np.float32(-1.5)) == np.float32(-1.5)
    assert csv_text([[-3, -0.25]]) == "-3,-0.25\n"


def test_a_leading_tab_survives_a_stripping_reader(tmp_path):
    # the picks reader strips spaces round cells; the quote keeps the tab of a name inside the cell
    path = write_csv(tmp_path / "t.csv", [["\tAnna", "  spaced  "]])
    assert next(reader(read_text(path), strip=True)) == ["\tAnna", "spaced"]


def test_every_text_round_trips():
    texts = [*HOSTILE, *UNCHANGED, "''", "'", "'-5", "''+x", "=", "-", "@"]
    assert [read_cell(safe_cell(t)) for t in texts] == texts


def _text_cells(path) -> set[str]:
    return {cell for row in _cells_on_disk(path) for cell in row}


def test_segmentation_scores_and_comparison_are_written_safe(tmp_path):
    from ctviewer.workflows.segmentation.metrics import write_comparison_csv, write_scores_csv

    rows = [{"model": "@model", "case": "=cmd|' /C calc'!A0", "label": "-liver", "dice": 0.91234, "jaccard": 0.8,
             "truth_voxels": 10, "predicted_voxels": 11}]
    cells = _text_cells(write_scores_csv(tmp_path / "scores.csv", rows))
    assert {"'@model", "'=cmd|' /C calc'!A0", "'-liver", "0.9123", "10"} <= cells
    table = [{"model": "+m", "label": "liver", "mean_dice": -0.5, "median_dice": 0.5, "mean_jaccard": 0.4, "cases": 2}]
    assert {"'+m", "-0.5000"} <= _text_cells(write_comparison_csv(tmp_path / "table.csv", table))


def test_thin_section_fractions_and_scores_are_written_safe(tmp_path):
    from ctviewer.data.labels import Label, LabelTable
    from ctviewer.workflows.thin_section.fraction_chart import write_fractions_csv
    from ctviewer.workflows.thin_section.metrics import evaluate, write_metrics_csv

    table = LabelTable([Label(1, "=grains", (0, 0, 0)), Label(3, "pores", (0, 0, 255))])
    rows = [{"image": "@photo.png", "width": 4, "height": 2, "fractions": {1: 50.0, 3: 50.0}, "porosity": 50.0}]
    fractions = write_fractions_csv(rows, table, 3, tmp_path / "fractions.csv")
    assert {"'@photo.png", "1 =grains %", "50.000"} <= _text_cells(fractions)   # the id leads the column
    pred = truth = np.ones((2, 4), dtype=np.uint8)
    scores = write_metrics_csv(tmp_path / "scores.csv", evaluate([(pred, truth)], [1], {1: "-x"}, ["+p"]))
    assert {"'+p", "iou 1 -x", "1.0000"} <= _text_cells(scores)    # "iou 1 -x" starts with i: harmless

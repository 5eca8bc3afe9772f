"""Dice and Jaccard per study and label, their summaries, the 2D-vs-3D table and the CSVs."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.workflows.segmentation.metrics import (
    case_scores,
    comparison_table,
    dice,
    jaccard,
    mask_scores,
    summary,
    write_comparison_csv,
    write_scores_csv,
)


def test_dice_and_jaccard_of_known_overlaps():
    truth = np.zeros((2, 3, 4), bool)
    pred = np.zeros_like(truth)
    truth.flat[:6] = True
    pred.flat[3:7] = True           # 3 shared, 4 predicted, 6 true
    assert dice(pred, truth) == pytest.approx(6 / 10)
    assert jaccard(pred, truth) == pytest.approx(3 / 7)
    assert dice(truth, truth) == jaccard(truth, truth) == 1.0
    empty = np.zeros_like(truth)
    assert dice(empty, empty) == jaccard(empty, empty) == 1.0   # nothing there, nothing found
    assert dice(empty, truth) == jaccard(pred, empty) == 0.0
    with pytest.raises(InputError, match="different shapes"):
        dice(pred, truth[:1])


def test_case_scores_per_group_of_labels():
    truth = np.zeros((4, 4, 4), np.uint8)
    truth[0] = 5                     # liver: 16 voxels
    truth[2, :2] = 30                # L2: 8 voxels
    truth[3, :2] = 31                # L1: 8 voxels
    pred = truth.copy()
    pred[0, 0] = 0                   # 4 liver voxels missed
    pred[3, :2] = 0                  # L1 missed altogether
    rows = case_scores("s1", pred, truth, [("liver", (5,)), ("vertebrae", (30, 31)), ("all", None)])
    by = {r["label"]: r for r in rows}
    assert [r["case"] for r in rows] == ["s1"] * 3
    assert by["liver"]["dice"] == pytest.approx(24 / 28) and by["liver"]["predicted_voxels"] == 12
    assert by["vertebrae"]["jaccard"] == pytest.approx(0.5) and by["vertebrae"]["truth_voxels"] == 16
    assert by["all"]["truth_voxels"] == 32

    # the card's form: the prediction carries label_id, the truth the ids; a Target works too
    pred_one = np.where(np.isin(pred, (30, 31)), 1, 0)
    card = [{"name": "vertebrae", "ids": [30, 31], "label_id": 1}]
    assert case_scores("s1", pred_one, truth, card)[0]["dice"] == pytest.approx(2 / 3)
    target = SimpleNamespace(groups=[("liver", (5,))])
    assert case_scores("s1", pred, truth, target)[0]["dice"] == by["liver"]["dice"]


def test_mask_scores_for_stacks_of_masks():
    truth = np.zeros((3, 3, 3, 2), np.uint8)
    truth[0, ..., 0] = 1
    rows = mask_scores("c", truth, truth, ["liver", "spine"])
    assert [(r["label"], r["dice"]) for r in rows] == [("liver", 1.0), ("spine", 1.0)]
    with pytest.raises(InputError):
        mask_scores("c", truth, truth, ["liver"])


def test_summary_and_the_2d_versus_3d_table(tmp_path):
    rows_2d = [{"case": c, "label": "liver", "dice": d, "jaccard": d / (2 - d), "truth_voxels": 9,
                "predicted_voxels": 9} for c, d in (("a", 0.9), ("b", 0.7), ("c", 0.2))]
    rows_3d = [dict(r, dice=0.8, jaccard=0.8 / 1.2) for r in rows_2d]
    s = summary(rows_2d)["liver"]
    assert s["n"] == 3 and s["mean_dice"] == pytest.approx(0.6) and s["median_dice"] == pytest.approx(0.7)
    assert s["min_dice"] == pytest.approx(0.2) and s["min_jaccard"] == pytest.approx(0.2 / 1.8)

    table = comparison_table({"2D U-Net": rows_2d, "3D U-Net": rows_3d})
    assert [(t["model"], t["label"], t["cases"]) for t in table] == [("2D U-Net", "liver", 3),
                                                                     ("3D U-Net", "liver", 3)]
    assert table[1]["mean_dice"] == pytest.approx(0.8)

    scores_csv = write_scores_csv(tmp_path / "scores.csv", rows_2d)
    back = list(csv.DictReader(scores_csv.open()))
    assert list(back[0]) == ["case", "label", "dice", "jaccard", "truth_voxels", "predicted_voxels"]
    assert back[1]["case"] == "b" and float(back[1]["dice"]) == pytest.approx(0.7)
    table_csv = write_comparison_csv(tmp_path / "compare.csv", table)
    back = list(csv.DictReader(table_csv.open()))
    assert back[0]["model"] == "2D U-Net" and back[1]["cases"] == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.csv", "scores.csv"]  # no temp files
    with pytest.raises(InputError, match="folder does not exist"):
        write_scores_csv(tmp_path / "missing" / "scores.csv", rows_2d)

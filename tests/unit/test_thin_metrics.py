"""Thin-section scores: confusion matrix over labelled pixels, IoU (NaN-safe), accuracy, folders, CSV."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.workflows.thin_section.metrics import (class_iou, confusion_matrix, evaluate, evaluate_folders,
                                                     mean_iou, pixel_accuracy, write_metrics_csv)
from ctviewer.workflows.thin_section.photos import write_label_image, write_rgb_png

TRUTH = np.array([[1, 1, 2, 0],
                  [1, 3, 2, 0]], np.uint8)
PRED = np.array([[1, 2, 2, 3],
                 [1, 3, 3, 1]], np.uint8)


def test_confusion_matrix_counts_only_labelled_pixels():
    cm = confusion_matrix(PRED, TRUTH, [1, 2, 3, 4])
    assert cm.tolist() == [[2, 1, 0, 0],     # truth 1: two right, one called 2
                           [0, 1, 1, 0],     # truth 2: one right, one called 3
                           [0, 0, 1, 0],     # truth 3
                           [0, 0, 0, 0]]     # class 4: nowhere
    assert cm.sum() == np.count_nonzero(TRUTH)   # the unlabelled column is not judged


def test_iou_leaves_out_classes_that_occur_nowhere():
    cm = confusion_matrix(PRED, TRUTH, [1, 2, 3, 4])
    iou = class_iou(cm)
    np.testing.assert_allclose(iou[:3], [2 / 3, 1 / 3, 1 / 2])
    assert math.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)
    assert pixel_accuracy(cm) == pytest.approx(4 / 6)
    # a class predicted but absent from the truth is a real 0 and counts in the mean
    only_pred = confusion_matrix(np.array([[4, 1]], np.uint8), np.array([[1, 1]], np.uint8), [1, 4])
    assert class_iou(only_pred).tolist() == [0.5, 0.0] and mean_iou(only_pred) == 0.25
    empty = confusion_matrix(PRED, np.zeros_like(TRUTH), [1, 2])
    assert math.isnan(mean_iou(empty)) and math.isnan(pixel_accuracy(empty))


def test_bad_predictions_are_refused_with_the_reason():
    with pytest.raises(InputError, match=r"the labels have values 3 that are not classes \(1, 2\)"):
        confusion_matrix(PRED, TRUTH, [1, 2])
    with pytest.raises(InputError, match=r"the prediction has values 4 that are not classes \(1, 2, 3\)"):
        confusion_matrix(np.where(PRED == 3, 4, PRED), TRUTH, [1, 2, 3])
    with pytest.raises(InputError, match="prediction is 4x2 px but the labels are 3x2 px"):
        confusion_matrix(PRED, TRUTH[:, :3], [1, 2, 3])


def test_overall_scores_pool_the_pixels_of_all_photos():
    rng = np.random.default_rng(0)
    big_truth = rng.integers(1, 4, (40, 50)).astype(np.uint8)
    big_pred = np.where(rng.random((40, 50)) < 0.9, big_truth, 1).astype(np.uint8)
    result = evaluate([(PRED, TRUTH), (big_pred, big_truth)], [1, 2, 3], {1: "a", 2: "b"}, ["small", "big"])
    pooled = confusion_matrix(np.concatenate([PRED[:, :3].ravel(), big_pred.ravel()])[None],
                              np.concatenate([TRUTH[:, :3].ravel(), big_truth.ravel()])[None], [1, 2, 3])
    overall = result["overall"]
    assert overall["confusion_matrix"] == pooled.tolist() and overall["images"] == 2
    assert overall["mean_iou"] == pytest.approx(mean_iou(pooled))
    assert overall["pixel_accuracy"] == pytest.approx(pixel_accuracy(pooled))
    assert [r["image"] for r in result["images"]] == ["small", "big"]
    assert result["images"][0]["pixel_accuracy"] == pytest.approx(4 / 6)
    assert result["classes"] == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "class 3"}]


def test_metrics_csv_has_a_row_per_photo_and_overall_with_empty_cells_for_no_iou(tmp_path):
    result = evaluate([(PRED, TRUTH)], [1, 2, 3, 4], image_names=["p"])
    path = write_metrics_csv(tmp_path / "scores.csv", result)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["image", "pixels", "pixel_accuracy", "mean_iou", "iou 1 class 1", "iou 2 class 2",
                       "iou 3 class 3", "iou 4 class 4"]
    assert [r[0] for r in rows[1:]] == ["p", "overall"]
    assert rows[1][1] == "6" and rows[1][2] == "0.6667" and rows[1][7] == ""


@pytest.fixture
def labelled_folder(tmp_path):
    """A pairs project (images/ + labels/) of three photos and a folder with predictions for two."""
    rng = np.random.default_rng(1)
    (tmp_path / "project" / "images").mkdir(parents=True)
    (tmp_path / "project" / "labels").mkdir()
    (tmp_path / "pred").mkdir()
    truths = {}
    for name, shape in (("a", (30, 40)), ("b", (24, 36)), ("c", (20, 20))):
        photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        write_rgb_png(photo, tmp_path / "project" / "images" / f"{name}.png")
        truths[name] = rng.integers(1, 6, shape).astype(np.uint8)
        write_label_image(truths[name], tmp_path / "project" / "labels" / f"{name}.png")
    write_label_image(truths["a"], tmp_path / "pred" / "a_classes.png")       # perfect
    wrong = truths["b"].copy()
    wrong[:12] = wrong[:12] % 5 + 1                                             # top half all wrong
    write_label_image(wrong, tmp_path / "pred" / "b_classes.png")
    return tmp_path


def test_evaluating_a_prediction_folder_matches_photos_by_name_and_reports_missing_ones(labelled_folder):
    result = evaluate_folders(labelled_folder / "pred", labelled_folder / "project")
    assert [r["image"] for r in result["images"]] == ["a", "b"]
    assert result["images"][0]["mean_iou"] == 1.0 and result["images"][1]["pixel_accuracy"] == 0.5
    assert result["overall"]["pixel_accuracy"] == pytest.approx((1200 + 432) / (1200 + 864))
    assert len(result["problems"]) == 1 and "no prediction c_classes.png" in result["problems"][0]
    assert [c["id"] for c in result["classes"]] == [1, 2, 3, 4, 5]


def test_evaluating_refuses_when_nothing_can_be_scored(labelled_folder):
    empty = labelled_folder / "nothing"
    empty.mkdir()
    with pytest.raises(InputError, match="no photo could be scored: .*no prediction a_classes.png"):
        evaluate_folders(empty, labelled_folder / "project")

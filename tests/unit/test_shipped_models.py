"""The shipped models do what their cards say: each is run the way users run it, on the held-out data
its card was measured on (or one case of it), and must reach the card's own figure. Every bound is read
from the card (models/NAME.json), and every test also shows that a trivial predictor (all background,
all foreground, the majority class, the mean) fails the same bound, so the bound can catch a model that
learnt nothing. A retrained model that got worse, or a card not updated with it, fails here.

The rules, one for every model:
- a case that is one of the card's held-out cases must score at least the card's worst (min) figure;
- a figure re-measured on the card's whole held-out set must be within 25 % of the card's error
  (1 - Dice, 1 - IoU, MAE, 1 - R², millimetres);
- real data: the card's figure, re-measured, and a floor below which the model is not worth shipping
  (REAL_FLOORS: the earlier models README.md describes sat below them).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctviewer.ml.registry import SHIPPED_DIR

#: How far a re-measured error may exceed the card's (the issue's "within 25 % of the card's figure").
ERROR_SLACK = 1.25
#: A held-out case may score this much under the card's min (threads change the last digits).
ROUNDING = 0.005
#: Real-data floors. Liver: the selu variant reached 0.57-0.62 on the slab; spine: the run without
#: contrast augmentation reached 0.29 (models/README.md); thin sections: issue 6's target.
REAL_FLOORS = {"liver": 0.70, "vertebrae": 0.60, "thin_section_mean_iou": 0.85}


def _card(name: str) -> dict:
    path = SHIPPED_DIR / f"{name}.json"
    if not (SHIPPED_DIR / f"{name}.keras").exists() or not path.exists():
        pytest.skip(f"no shipped {name} model in models/ (train it with models/configs/{name}.toml)")
    return json.loads(path.read_text())


def within_error(measured_error: float, card_error: float) -> bool:
    return measured_error <= ERROR_SLACK * card_error


def _dice_rules(card: dict, dataset: str, what: str):
    """(a held-out case passes, the real slab passes) as functions of a Dice, from the card's figures."""
    held_out, real = card["metrics"]["synthetic_test"][what], card["metrics"][dataset][what]
    assert real["mean_dice"] >= REAL_FLOORS[what], "the card itself is below the floor"

    def case_ok(score):
        return score >= held_out["min_dice"] - ROUNDING

    def real_ok(score):
        return score >= REAL_FLOORS[what] and abs(score - real["mean_dice"]) <= 0.01

    return case_ok, real_ok


def _assert_trivial_masks_fail(rule, truth: np.ndarray) -> None:
    from ctviewer.workflows.segmentation.metrics import dice

    for name in ("all background", "all foreground"):
        mask = np.full(truth.shape, name == "all foreground")
        assert not rule(dice(mask, truth)), f"{name} passes the rule"


def _real_slab(shared_data):
    from ctviewer.io import read_volume

    image = read_volume(shared_data / "ct" / "abdomen_slab_ct.nii.gz")
    return image, read_volume(shared_data / "ct" / "abdomen_slab_labels.nii.gz").array


def _vertebrae(labels: np.ndarray) -> np.ndarray:
    return (labels >= 26) & (labels <= 50)   # TotalSegmentator's vertebra ids


@pytest.mark.parametrize("model, what", [("liver_unet2d", "liver"), ("spine_unet3d", "vertebrae")])
def test_segmentation_model_on_the_first_held_out_synthetic_torso(model, what):
    """The card's synthetic figures are over its held-out torsos: the first of them scores no less than
    the card's worst."""
    from ctviewer.workflows.segmentation.metrics import dice
    from ctviewer.workflows.segmentation.segment import segment
    from ctviewer.workflows.segmentation.task import TEST_SEED_START, synthetic_case

    case_ok, _ = _dice_rules(_card(model), "real_ct:abdomen_slab", what)
    case = synthetic_case(TEST_SEED_START)
    truth = case.labels == 5 if what == "liver" else _vertebrae(case.labels)
    predicted = segment(case.image, model).labels
    score = dice(predicted == 5 if what == "liver" else predicted > 0, truth)
    assert case_ok(score), score
    _assert_trivial_masks_fail(case_ok, truth)


@pytest.mark.parametrize("model, what", [("liver_unet2d", "liver"), ("spine_unet3d", "vertebrae")])
def test_segmentation_model_on_the_real_slab_reaches_its_cards_dice(shared_data, model, what):
    from ctviewer.workflows.segmentation.metrics import dice
    from ctviewer.workflows.segmentation.segment import segment

    _, real_ok = _dice_rules(_card(model), "real_ct:abdomen_slab", what)
    image, labels = _real_slab(shared_data)
    truth = labels == 5 if what == "liver" else _vertebrae(labels)
    predicted = segment(image, model).labels
    score = dice(predicted == 5 if what == "liver" else predicted > 0, truth)
    assert real_ok(score), score
    _assert_trivial_masks_fail(real_ok, truth)


def test_thin_section_model_on_its_held_out_photos_reaches_its_cards_iou(shared_data):
    """Photos 8 and 9 were never trained or validated on: mean IoU against their gray-bin labels at full
    resolution, through the same path `ctviewer thin-section eval` takes, is the card's figure."""
    from ctviewer.workflows.thin_section.metrics import confusion_matrix, scores
    from ctviewer.workflows.thin_section.photos import read_label_image, read_photo_rgb
    from ctviewer.workflows.thin_section.predict import segment_photo

    card = _card("thin_section_vggunet")["metrics"]["test_photos"]
    assert card["mean_iou"] >= REAL_FLOORS["thin_section_mean_iou"], "the card itself is below the floor"

    def passes(mean_iou):
        return mean_iou >= REAL_FLOORS["thin_section_mean_iou"] and within_error(1 - mean_iou, 1 - card["mean_iou"])

    folder = shared_data / "thin_sections"
    ids = [1, 2, 3, 4, 5]
    truths = [read_label_image(folder / "labels" / f"{n}.png") for n in (8, 9)]
    predictions = [segment_photo(read_photo_rgb(folder / "images" / f"{n}.png"), "thin_section_vggunet")
                   for n in (8, 9)]
    measured = scores(sum(confusion_matrix(p, t, ids) for p, t in zip(predictions, truths)), ids)
    assert passes(measured["mean_iou"]), (measured, card)
    assert measured["mean_iou"] == pytest.approx(card["mean_iou"], abs=0.005)
    # the most common class everywhere (known from the truth itself) is far from it
    majority = np.bincount(np.concatenate([t[t > 0] for t in truths])).argmax()
    constant = scores(sum(confusion_matrix(np.full_like(t, majority), t, ids) for t in truths), ids)
    assert not passes(constant["mean_iou"]), constant


def test_soil_model_on_the_held_out_blocks_its_card_was_measured_on():
    """The card's test slices (blocks of cubes 0-3 held out, made again from the training config):
    MAE and R² within 25 % of the card's. Predicting the mean fails both; even an oracle predicting each
    cube's own true mean fails R² (the model must follow the slices, not only the cube's level)."""
    from ctviewer.ml.registry import load_model
    from ctviewer.ml.training import TrainConfig
    from ctviewer.workflows.soil import task

    card = _card("soil_vgg16")["metrics"]["test_slices"]
    config = TrainConfig.from_toml(SHIPPED_DIR / "configs" / "soil_vgg16.toml")
    data = task.SoilData.from_config(config)
    cubes = task.read_cubes(data)
    picks = task.split_cubes(cubes, data, config.validation_fraction, config.seed)["test"]
    x, truth = task._arrays(cubes, picks, data)
    assert len(truth) == card["slices"]
    model, _ = load_model(SHIPPED_DIR / "soil_vgg16.keras")
    predicted = np.concatenate([np.asarray(model.predict_on_batch(x[i:i + 32])).reshape(-1)
                                for i in range(0, len(x), 32)])

    def passes(guess):
        error = guess.astype(np.float64) - truth
        r2 = 1 - np.sum(error ** 2) / np.sum((truth - truth.mean()) ** 2)
        return within_error(np.abs(error).mean(), card["mae"]) and within_error(1 - r2, 1 - card["r2"])

    assert passes(predicted), (np.abs(predicted - truth).mean(), card)
    assert not passes(np.full_like(truth, truth.mean()))
    cube_of = np.array([c for c, _ in picks])
    cube_means = np.array([truth[cube_of == c].mean() for c in cube_of])
    assert not passes(cube_means)

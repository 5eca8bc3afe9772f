"""The shipped models do what their cards say: each is run the way users run it, on held-out data,
and must reach the figure its card reports (so a retrained model that got worse, or a card that was
not updated with it, fails here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctviewer.ml.registry import SHIPPED_DIR


def _card(name: str) -> dict:
    path = SHIPPED_DIR / f"{name}.json"
    if not (SHIPPED_DIR / f"{name}.keras").exists() or not path.exists():
        pytest.skip(f"no shipped {name} model in models/ (train it with models/configs/{name}.toml)")
    return json.loads(path.read_text())


def test_liver_model_on_a_held_out_synthetic_torso():
    from ctviewer.workflows.segmentation.metrics import dice
    from ctviewer.workflows.segmentation.segment import segment
    from ctviewer.workflows.segmentation.task import TEST_SEED_START, synthetic_case

    card = _card("liver_unet2d")
    case = synthetic_case(TEST_SEED_START)   # the first of the card's held-out torsos
    result = segment(case.image, "liver_unet2d")
    score = dice(result.labels == 5, case.labels == 5)
    assert score >= 0.85, score
    assert card["metrics"]["synthetic_test"]["liver"]["min_dice"] <= score + 1e-3


def test_liver_model_on_the_real_slab_reaches_its_cards_dice(shared_data):
    from ctviewer.io import read_volume
    from ctviewer.workflows.segmentation.metrics import dice
    from ctviewer.workflows.segmentation.segment import segment

    card = _card("liver_unet2d")
    image = read_volume(shared_data / "ct" / "abdomen_slab_ct.nii.gz")
    truth = read_volume(shared_data / "ct" / "abdomen_slab_labels.nii.gz").array == 5
    score = dice(segment(image, "liver_unet2d").labels == 5, truth)
    assert score == pytest.approx(card["metrics"]["real_ct:abdomen_slab"]["liver"]["mean_dice"], abs=0.01)
    assert score > 0.7


def test_thin_section_model_on_its_held_out_photos_reaches_its_cards_iou(shared_data):
    """Photos 8 and 9 were never trained or validated on; the issue asks mean IoU >= 0.85 against their
    gray-bin labels, at full resolution through the same path `ctviewer thin-section eval` takes."""
    from ctviewer.workflows.thin_section.metrics import confusion_matrix, scores
    from ctviewer.workflows.thin_section.photos import read_label_image, read_photo_rgb
    from ctviewer.workflows.thin_section.predict import segment_photo

    card = _card("thin_section_vggunet")
    folder = shared_data / "thin_sections"
    ids = [1, 2, 3, 4, 5]
    cm = sum(confusion_matrix(segment_photo(read_photo_rgb(folder / "images" / f"{n}.png"), "thin_section_vggunet"),
                              read_label_image(folder / "labels" / f"{n}.png"), ids) for n in (8, 9))
    measured = scores(cm, ids)
    assert measured["mean_iou"] >= 0.85
    assert measured["mean_iou"] == pytest.approx(card["metrics"]["test_photos"]["mean_iou"], abs=0.005)


def test_spine_model_on_a_held_out_synthetic_torso_and_the_real_slab(shared_data):
    from ctviewer.io import read_volume
    from ctviewer.workflows.segmentation.metrics import dice
    from ctviewer.workflows.segmentation.segment import segment
    from ctviewer.workflows.segmentation.task import TEST_SEED_START, synthetic_case

    card = _card("spine_unet3d")
    case = synthetic_case(TEST_SEED_START)
    vertebrae = (case.labels >= 26) & (case.labels <= 50)
    score = dice(segment(case.image, "spine_unet3d").labels > 0, vertebrae)
    assert score >= 0.7, score
    image = read_volume(shared_data / "ct" / "abdomen_slab_ct.nii.gz")
    truth = read_volume(shared_data / "ct" / "abdomen_slab_labels.nii.gz").array
    real = dice(segment(image, "spine_unet3d").labels > 0, (truth >= 26) & (truth <= 50))
    # the card's figure, whatever it is: the number clinicians ask for
    assert real == pytest.approx(card["metrics"]["real_ct:abdomen_slab"]["vertebrae"]["mean_dice"], abs=0.01)


def test_soil_model_on_a_synthetic_cube_it_never_saw():
    """Trained on blocks of cubes 0-3 (its card scores blocks of those cubes held out); here a whole cube
    of another seed, every 10th slice: the per-slice 1 - pore fraction within a few hundredths."""
    from ctviewer.ml.registry import load_model
    from ctviewer.synth.soil import SoilParams, make_soil_cube
    from ctviewer.workflows.soil.task import SoilData, _cube, sample

    card = _card("soil_vgg16")
    model, _ = load_model(SHIPPED_DIR / "soil_vgg16.keras")
    data = SoilData(size=card["inputs"]["size"])
    cube = _cube("unseen", make_soil_cube(SoilParams(seed=1000, shape=(100, 200, 200))).image)
    pairs = [sample(cube, z, data) for z in range(0, 100, 10)]
    x = np.stack([p[0] for p in pairs])
    truth = np.array([p[1] for p in pairs])
    predicted = np.asarray(model.predict_on_batch(x)).reshape(-1)
    assert np.abs(predicted - truth).mean() < 0.03, (predicted, truth)

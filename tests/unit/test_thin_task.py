"""The thin_section training task: test photos stay out of training and validation, labels outside
the classes are refused naming the file, crops keep photo and labels aligned through turns and flips,
the colour jitter keeps the luma the labels come from, and a tiny training runs end to end to a
model card with held-out IoU that loads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ctviewer.errors import InputError
from ctviewer.imaging.bins import gray_level_bins, luminance
from ctviewer.ml.training import TrainConfig
from ctviewer.workflows.thin_section import task
from ctviewer.workflows.thin_section.jitter import ColourJitter

CONFIG = Path(__file__).resolve().parents[2] / "models" / "configs" / "thin_section_vggunet.toml"


def _photo(seed: int, shape=(48, 64)) -> tuple[np.ndarray, np.ndarray]:
    """A toy thin section: grey grains of several brightnesses and blue pores; labels by gray bins."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rgb = np.full((*shape, 3), 200, np.uint8)
    for _ in range(14):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(4, 10)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        rgb[inside] = rng.choice([(20, 20, 20), (120, 110, 100), (40, 90, 230), (240, 240, 235)])
    return rgb, gray_level_bins(luminance(rgb), (0.25, 0.40, 0.60, 0.80), sigma=0)


def _folder(tmp_path, names=("a", "b", "c", "d"), shape=(48, 64)) -> Path:
    folder = tmp_path / "sections"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i, name in enumerate(names):
        rgb, ids = _photo(i, shape)
        Image.fromarray(rgb).save(folder / "images" / f"{name}.png")
        Image.fromarray(ids).save(folder / "labels" / f"{name}.png")
    return folder


def _config(folder, tmp_path, **data) -> TrainConfig:
    return TrainConfig(task="thin_section", name="thin_tiny", epochs=1, batch_size=2, patience=0,
                       out_dir=tmp_path / "models", log_dir=tmp_path / "logs",
                       data={"sources": [str(folder)], "crop": [32, 32], **data},
                       extra={"base_filters": 2, "samples_per_epoch": 4, "val_samples": 2, "tile": 32,
                              "dice_weight": 0.5})


def test_test_photos_are_never_trained_or_validated_on(tmp_path):
    folder = _folder(tmp_path, names=("1", "2", "3", "4", "5"))
    config = _config(folder, tmp_path, test=["2", "5"])   # validation drawn by fraction from the rest
    plan = task.plan(config)
    train, val, test = ([p.name for p in side] for side in (plan.train, plan.validation, plan.test))
    assert test == ["2", "5"] and all(p.rgb is None for p in plan.test)   # not even read
    assert set(train) | set(val) == {"1", "3", "4"} and not set(train) & set(val) and val
    assert plan.classes == [int(c) for c in np.unique(np.concatenate([p.ids.ravel() for p in plan.train
                                                                      + plan.validation]))]
    named = task.plan(_config(folder, tmp_path, test=["2"], validation=["4"]))
    assert [p.name for p in named.validation] == ["4"] and "2" not in [p.name for p in named.train]
    with pytest.raises(InputError, match="not found"):
        task.plan(_config(folder, tmp_path, test=["9"]))
    with pytest.raises(InputError, match="both test and validation"):
        task.plan(_config(folder, tmp_path, test=["2"], validation=["2"]))


def test_labels_outside_the_classes_are_refused_naming_the_file(tmp_path):
    folder = _folder(tmp_path, names=("a", "b"))
    with pytest.raises(InputError, match="ids 3, 4, 5 that are not among the classes") as caught:
        task.load_data(_config(folder, tmp_path, validation=["b"], classes=[1, 2]))
    assert Path(caught.value.path) == folder / "labels" / "a.png"
    plan = task.plan(_config(folder, tmp_path, validation=["b"], classes=[1, 2, 3, 4, 5]))
    photo = plan.train[0]
    photo.ids[:4] = 0   # unlabelled pixels are kept out of the loss
    target = task.class_index(photo, plan.classes)
    assert np.all(target[:4] == task.UNLABELLED) and target[4:].max() < len(plan.classes)


def test_crops_keep_photo_and_labels_together_through_turns_and_flips():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    target = (rgb[..., 0] // 64).astype(np.uint8)   # labels that are a function of the pixel
    shapes = set()
    for seed in range(12):
        crop, labels = task.random_crop(rgb, target, (16, 32), np.random.default_rng(seed), augment=True)
        assert crop.shape == (16, 32, 3) and labels.shape == (16, 32)
        np.testing.assert_array_equal(labels, crop[..., 0] // 64)
        shapes.add(crop.tobytes())
    small, labels = task.random_crop(rgb[:10, :10], target[:10, :10], (16, 16), np.random.default_rng(1), False)
    assert small.shape == (16, 16, 3) and np.all(labels[10:] == task.UNLABELLED)


def test_colour_jitter_keeps_luma_for_saturation_and_hue_and_is_off_at_zero():
    rng = np.random.default_rng(2)
    image = rng.uniform(0.2, 0.8, (8, 8, 3)).astype(np.float32)
    colour_only = ColourJitter(brightness=0, contrast=0, saturation=0.3, hue=0.1)
    changed = colour_only.apply(image, rng)
    assert not np.allclose(changed, image, atol=1e-3)
    np.testing.assert_allclose(changed @ np.float32([0.2125, 0.7154, 0.0721]),
                               image @ np.float32([0.2125, 0.7154, 0.0721]), atol=1e-4)
    np.testing.assert_allclose(ColourJitter.from_config(0).apply(image, rng), image, atol=1e-5)
    assert ColourJitter.from_config({"hue": 0.05}).brightness == 0
    with pytest.raises(InputError, match="colour_jitter"):
        ColourJitter.from_config({"gamma": 0.1})


def test_bad_settings_are_input_errors(tmp_path):
    folder = _folder(tmp_path, names=("a", "b"))
    with pytest.raises(InputError, match="multiples of 16"):
        task.ThinData.from_config(_config(folder, tmp_path, crop=[30, 32]))
    with pytest.raises(InputError, match="unknown key"):
        task.ThinData.from_config(_config(folder, tmp_path, test_photos=["a"]))


def test_shipped_config_holds_out_photos_of_the_shared_data(shared_data):
    config = TrainConfig.from_toml(CONFIG)
    data = task.ThinData.from_config(config)
    assert data.sources[0].resolve() == (shared_data / "thin_sections").resolve()
    assert all(v % 16 == 0 for v in data.crop) and data.base_filters == 16
    train, val, test = task.split_photos(task.find_photos(data), data, config.validation_fraction, config.seed)
    assert [p.name for p in test] == ["8", "9"] and [p.name for p in val] == ["7"]
    assert sorted(p.name for p in train) == ["1", "2", "3", "4", "5", "6"]


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_a_tiny_training_runs_end_to_end_and_writes_a_card_with_held_out_iou(tmp_path):
    from ctviewer.ml import registry
    from ctviewer.ml.tasks import run_training

    folder = _folder(tmp_path)
    result = run_training(_config(folder, tmp_path, test=["d"], validation=["c"]))
    card = result.card
    assert card.task == "thin_section" and card.inputs["kind"] == "rgb_photo"
    assert card.inputs["size_multiple"] == 16 and card.inputs["tile"] == 32
    assert [c["id"] for c in card.outputs["classes"]] == [1, 2, 3, 4, 5]
    assert card.outputs["classes"][2]["name"].startswith("blue-dye epoxy") and card.outputs["porosity_class"] == 3
    overall = card.metrics["test_photos"]
    assert overall["photos"] == 1 and 0 <= overall["mean_iou"] <= 1 and 0 <= overall["pixel_accuracy"] <= 1
    assert set(overall["iou"]) == {"1", "2", "3", "4", "5"}
    assert card.metrics["photo d"]["pixels"] == 48 * 64
    assert "d" in card.training["data"] and card.training["studies"] == {"train": 2, "validation": 1}
    model, loaded_card = registry.load_model(result.entry.path, task="thin_section")
    assert loaded_card.outputs == card.outputs
    assert model.predict(np.zeros((1, 48, 64, 3), np.float32), verbose=0).shape == (1, 48, 64, 5)

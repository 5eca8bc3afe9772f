"""scripts/train_thin_section_lopo.py: every photo is held out by exactly one fold and never trains or
validates it; a tiny run writes lopo.json, fold models and a final model whose card (read back from
disk) holds one real_data case per held-out photo; a rerun skips finished folds; bad --folds is one
line and exit code 2."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ctviewer.errors import InputError
from ctviewer.imaging.bins import gray_level_bins, luminance

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("train_thin_section_lopo", REPO / "scripts" / "train_thin_section_lopo.py")
lopo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lopo)


def test_each_photo_is_held_out_once_and_never_validates_its_own_fold():
    names = [str(n) for n in (10, 2, 1, 3)]
    plan = lopo.fold_plan(names)
    assert [held for held, _, _ in plan] == ["1", "2", "3", "10"]      # natural order
    for held, validation, trained in plan:
        assert validation != held and held not in trained and validation not in trained
        assert sorted(trained + [held, validation]) == sorted(names)
    assert plan[-1][1] == "1"                                            # the last fold wraps round
    assert [p[0] for p in lopo.fold_plan(names, "3, 10")] == ["3", "10"]
    with pytest.raises(InputError, match="--folds names photo.*7.*photos are 1, 2, 3, 10"):
        lopo.fold_plan(names, "7")
    with pytest.raises(InputError, match="at least 3 photos"):
        lopo.fold_plan(["1", "2"])


def _results(ious) -> dict:
    folds = {}
    for i, m in enumerate(ious, start=1):
        folds[str(i)] = {"held_out": str(i), "validation": str(i % len(ious) + 1), "trained_on": ["x"],
                         "mean_iou": m, "pixel_accuracy": 0.95,
                         "iou": {"1": m - 0.2, "2": m, "3": m, "4": m, "5": m + 0.05},
                         "best_epoch": 3, "epochs": 20, "crops_per_epoch": 96, "seconds": 1800.0,
                         "device": "CPU (2 threads)", "backend": "tensorflow"}
    return {"folds": folds, "photos": [str(i) for i in range(1, len(ious) + 1)], "final": {"epochs": 3}}


def test_the_card_tells_each_photo_from_the_fold_that_never_saw_it(tmp_path):
    from ctviewer.ml.cards import ModelCard

    section = lopo.real_data_section(_results([0.9, 0.8, 0.88]), today="2026-12-07")
    assert [c["case"] for c in section["cases"]] == ["photo 1", "photo 2", "photo 3"]
    assert section["cases"][1]["role"].startswith("held out (fold 2") and "photo 3 chose the epoch" in \
        section["cases"][1]["role"]
    assert section["cases"][1]["figures"]["iou_classes_1_to_5"] == pytest.approx([0.6, 0.8, 0.8, 0.8, 0.85])
    assert "0.860" in section["summary"] and "below 0.85: photo(s) 2" in section["summary"]
    assert "none is held out from it" in section["measured"] and "20 epochs x 96 crops" in section["measured"]
    card_path = tmp_path / "m.json"
    ModelCard(name="m", task="thin_section").write(card_path)
    assert lopo.main(["--out", str(tmp_path / "nothing"), "--write-card", str(card_path)]) == 2
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "lopo.json").write_text(json.dumps(_results([0.9, 0.8, 0.88])))
    assert lopo.main(["--out", str(tmp_path / "run"), "--write-card", str(card_path)]) == 0
    card = ModelCard.read(card_path)
    assert len(card.real_data["cases"]) == 3 and card.metrics["leave_one_photo_out"]["min_mean_iou"] == 0.8
    assert any("photo 2 (0.800)" in line for line in card.do_not_trust)
    assert any(line.startswith("Class 1: IoU 0.60-0.70") for line in card.do_not_trust)


def _toy_folder(tmp_path) -> Path:
    folder = tmp_path / "sections"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    yy, xx = np.mgrid[:48, :64]
    for n in range(1, 4):
        rng = np.random.default_rng(n)
        rgb = np.full((48, 64, 3), 150, np.uint8)
        for _ in range(12):
            cy, cx, r = rng.uniform(0, 48), rng.uniform(0, 64), rng.uniform(4, 10)
            rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = rng.choice(
                [(20, 20, 20), (110, 100, 90), (40, 90, 230), (240, 240, 235), (190, 185, 175)])
        Image.fromarray(rgb).save(folder / "images" / f"{n}.png")
        Image.fromarray(gray_level_bins(luminance(rgb), (0.25, 0.4, 0.6, 0.8), 1.0)).save(
            folder / "labels" / f"{n}.png")
    return folder


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_a_tiny_leave_one_photo_out_run_writes_figures_and_a_final_card(tmp_path, capsys):
    from ctviewer.ml import registry

    folder = _toy_folder(tmp_path)
    shipped = (REPO / "models" / "configs" / "thin_section_vggunet_lopo.toml").read_text()
    config = tmp_path / "tiny.toml"
    config.write_text(shipped.replace('"../../../shared/data/thin_sections"', json.dumps(str(folder)))
                      .replace("crop = [256, 256]", "crop = [32, 32]").replace("base_filters = 16", "base_filters = 2")
                      .replace("tile = 512", "tile = 32").replace("val_samples = 32", "val_samples = 2")
                      .replace("batch_size = 8", "batch_size = 2"))
    out = tmp_path / "run"
    assert lopo.main(["--config", str(config), "--folds", "3", "--epochs", "1", "--crops-per-epoch", "4",
                      "--out", str(out)]) == 0
    results = json.loads((out / "lopo.json").read_text())
    assert sorted(results["folds"]) == ["3"] and results["photos"] == ["1", "2", "3"]
    fold = results["folds"]["3"]
    assert fold["validation"] == "1" and fold["trained_on"] == ["2"] and 0 <= fold["mean_iou"] <= 1
    assert set(fold["iou"]) == {"1", "2", "3", "4", "5"} and fold["crops_per_epoch"] == 4
    fold_card = json.loads((out / "folds" / "thin_section_vggunet_fold3.json").read_text())
    assert fold_card["metrics"]["photo 3"]["mean_iou"] == fold["mean_iou"]   # scored on the held-out photo
    assert "1 training photos (2), 1 validation (1), 1 held out for testing (3)" in fold_card["training"]["data"]
    model, card = registry.load_model(out / "thin_section_vggunet.keras", task="thin_section")
    assert [c["case"] for c in card.real_data["cases"]] == ["photo 3"]
    assert "1 of 3 photos" in card.real_data["summary"] and card.training["studies"]["train"] == 3
    assert card.training["epochs"] == 1 and card.training["studies"]["validation"] == 0
    assert "mean over 1 held-out photos" in capsys.readouterr().out
    assert lopo.main(["--config", str(config), "--folds", "3", "--no-final", "--out", str(out)]) == 0
    assert "fold 3: done before" in capsys.readouterr().out


def test_bad_folds_is_one_line_and_exit_code_2(tmp_path, capsys, shared_data):
    assert lopo.main(["--folds", "12", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--folds names photo(s) 12" in err and "1, 2, 3, 4, 5, 6, 7, 8, 9" in err


def test_the_lopo_config_relabels_by_the_rule_that_made_the_shared_labels(shared_data):
    from ctviewer.ml.training import TrainConfig
    from ctviewer.workflows.thin_section import task
    from ctviewer.workflows.thin_section.variation import LabelRule, PhotoVariation

    config = TrainConfig.from_toml(REPO / "models" / "configs" / "thin_section_vggunet_lopo.toml")
    data = task.ThinData.from_config(config)
    assert data.label_rule == LabelRule((0.25, 0.4, 0.6, 0.8), 1.0) and isinstance(data.variation, PhotoVariation)
    assert data.test == [] and not data.validate and data.classes == [1, 2, 3, 4, 5]
    assert [p.name for p in task.find_photos(data)] and config.name == "thin_section_vggunet"
    assert config.out_dir != REPO / "models"    # a run never overwrites the shipped model by itself

"""`ctviewer thin-section predict|eval`, in-process, with a tiny untrained VGG-UNet (nothing is trained).

The model is real (built with build_vgg_unet, saved with its card through the registry), so the
whole path runs: registry, safe-mode loading, tiling, class ids from the card, the output files.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ctviewer.cli import main
from ctviewer.imaging.bins import thin_section_table
from ctviewer.ml import registry
from ctviewer.workflows.thin_section.photos import read_label_image, write_label_image, write_rgb_png

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

IDS = [lab.id for lab in thin_section_table()]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A base_filters=4 VGG-UNet with the thin-section classes, saved once for the module."""
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.vgg_unet import build_vgg_unet

    folder = tmp_path_factory.mktemp("models")
    classes = [{"id": lab.id, "name": lab.name, "colour": list(lab.colour)} for lab in thin_section_table()]
    card = ModelCard(name="tiny-thin", task="thin_section", created="2026-01-02",
                     inputs={"kind": "rgb_photo"}, outputs={"classes": classes})
    registry.save_model(build_vgg_unet(len(classes), base_filters=4), card, folder)
    return folder


@pytest.fixture
def models_dir(saved_model, user_models, monkeypatch):
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(saved_model))   # the session's model, no shipped ones
    return saved_model


@pytest.fixture
def photos(tmp_path):
    """Two photos of different sizes (one a CMYK JPEG) and a broken file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(2)
    write_rgb_png(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), folder / "small.png")
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).convert("CMYK").save(folder / "wide.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def test_predict_writes_classes_recolour_fractions_and_chart_and_reports_the_bad_photo(models_dir, photos, tmp_path,
                                                                                      capsys):
    out = tmp_path / "out"
    assert main(["thin-section", "predict", str(photos), "-o", str(out), "--tile", "32"]) == 2   # a photo failed
    captured = capsys.readouterr()
    assert "model tiny-thin" in captured.out                      # the default: the only thin_section model
    problems = [line for line in captured.err.splitlines() if line.strip()]
    assert problems[0] == "ctviewer: 1 of 3 photos failed:"
    assert len(problems) == 2 and problems[1].startswith(f"ctviewer: {photos / 'broken.png'}: ")
    for name, (h, w) in (("small", (40, 56)), ("wide", (70, 90))):
        ids = read_label_image(out / f"{name}_classes.png")
        assert ids.shape == (h, w) and set(np.unique(ids)) <= set(IDS)
        recoloured = np.asarray(Image.open(out / f"{name}_recolour.png").convert("RGB"))
        assert recoloured.shape == (h, w, 3)
        # each class painted one colour, never the class id as an intensity
        for i in np.unique(ids):
            assert len(np.unique(recoloured[ids == i], axis=0)) == 1
    with open(out / "fractions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    sizes = [(r["image"], r["width"], r["height"]) for r in rows]
    assert sizes == [("small.png", "56", "40"), ("wide.jpg", "90", "70")]
    for row, name in zip(rows, ("small", "wide")):
        ids = read_label_image(out / f"{name}_classes.png")
        fractions = [float(row[f"{lab.id} {lab.name} %"]) for lab in thin_section_table()]
        assert sum(fractions) == pytest.approx(100, abs=0.01)
        assert float(row["porosity %"]) == pytest.approx(100 * np.mean(ids == 3), abs=1e-3)
    assert Image.open(out / "fractions_histogram.png").size[0] >= 600


def test_predict_with_table_colours_paints_the_table(models_dir, photos, tmp_path):
    out = tmp_path / "out"
    assert main(["thin-section", "predict", str(photos / "small.png"), "-o", str(out), "--colours", "table"]) == 0
    ids = read_label_image(out / "small_classes.png")
    recoloured = np.asarray(Image.open(out / "small_recolour.png").convert("RGB"))
    table = thin_section_table()
    for i in np.unique(ids):
        assert tuple(recoloured[ids == i][0]) == table[int(i)].colour


@pytest.mark.parametrize("args, message", [
    (["--model", "nowhere"], "no model named 'nowhere'"),
    (["--porosity-class", "9"], "porosity class 9 is not a class of model 'tiny-thin'"),
])
def test_predict_refuses_bad_options_in_one_line(models_dir, photos, tmp_path, capsys, args, message):
    assert main(["thin-section", "predict", str(photos), "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_predict_without_any_thin_section_model_or_photos_says_so(tmp_path, photos, monkeypatch, capsys):
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path / "shipped")
    assert main(["thin-section", "predict", str(photos), "-o", str(tmp_path / "out")]) == 2
    assert "no thin_section model" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["thin-section", "predict", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    assert "no photos" in capsys.readouterr().err


def test_eval_scores_predictions_and_a_model_alike(models_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["thin-section", "predict", str(photos), "-o", str(out)]) == 2          # broken.png
    project = tmp_path / "project"
    (project / "images").mkdir(parents=True)
    (project / "labels").mkdir()
    for name in ("small.png", "wide.jpg"):
        shutil.copy(photos / name, project / "images" / name)
    small = read_label_image(out / "small_classes.png")
    write_label_image(small, project / "labels" / "small.png")           # the prediction itself: perfect
    wide = read_label_image(out / "wide_classes.png")
    wide[:35] = wide[:35] % 5 + 1                                          # top half all wrong
    write_label_image(wide, project / "labels" / "wide.png")
    shutil.copy(photos / "small.png", project / "images" / "extra.png")   # labelled but never predicted
    write_label_image(small, project / "labels" / "extra.png")
    capsys.readouterr()

    scores = tmp_path / "scores.csv"
    assert main(["thin-section", "eval", str(project), "--pred", str(out), "--csv", str(scores), "--json"]) == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "no prediction extra_classes.png" in captured.err
    by_image = {r["image"]: r for r in result["images"]}
    assert set(by_image) == {"small", "wide"}
    assert by_image["small"]["pixel_accuracy"] == 1.0 and by_image["wide"]["pixel_accuracy"] == 0.5
    assert result["overall"]["pixel_accuracy"] == pytest.approx((40 * 56 + 35 * 90) / (40 * 56 + 70 * 90))
    assert scores.read_text().splitlines()[-1].startswith("overall,")

    (project / "images" / "extra.png").unlink()
    (project / "labels" / "extra.png").unlink()
    assert main(["thin-section", "eval", str(project), "--model", "tiny-thin", "--json"]) == 0
    by_model = json.loads(capsys.readouterr().out)
    assert by_model["overall"]["pixel_accuracy"] == pytest.approx(result["overall"]["pixel_accuracy"])
    assert main(["thin-section", "eval", str(project), "--pred", str(out)]) == 0
    assert "overall" in capsys.readouterr().out

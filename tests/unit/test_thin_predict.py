"""Full-resolution thin-section prediction: tiling, blending, padding, models' classes, the fractions outputs.

The "network" is a fixed function of each pixel's colour: stitched correctly, any tile size must
give exactly that function of the whole photo. No Keras here (tests/cli builds a real model).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from ctviewer.errors import Cancelled, InputError
from ctviewer.imaging.bins import thin_section_table
from ctviewer.ml.cards import ModelCard
from ctviewer.progress import CancelToken
from ctviewer.workflows.thin_section.fraction_chart import (MAX_GROUPED, fractions_chart, write_fractions_csv,
                                                           write_fractions_histogram)
from ctviewer.workflows.thin_section.predict import (check_model_classes, find_thin_section_model, list_photos,
                                                     predict_photo)

N = 5


def colour_class(rgb_uint8: np.ndarray) -> np.ndarray:
    v = rgb_uint8.astype(np.int64)
    return ((v[..., 0] + 2 * v[..., 1] + 3 * v[..., 2]) % N).astype(np.uint8)


def colour_net(calls=None):
    """predict_fn: class = a function of the pixel's colour (0.6 for it, 0.1 for the others)."""
    def predict(batch):
        if calls is not None:
            calls.append(batch.shape)
        assert batch.dtype == np.float32 and 0.0 <= batch.min() and batch.max() <= 1.0
        cls = colour_class(np.rint(batch * 255).astype(np.uint8))
        return 0.1 + 0.5 * np.eye(N, dtype=np.float32)[cls]
    return predict


@pytest.fixture(scope="module")
def photo():
    # 301 x 517: no multiple of 16, no symmetry, every class everywhere
    return np.random.default_rng(3).integers(0, 256, (301, 517, 3), dtype=np.uint8)


@pytest.mark.parametrize("tile", [64, 96, 1024])
def test_any_tile_size_gives_the_per_pixel_answer_exactly(photo, tile):
    calls, fractions = [], []
    ids = predict_photo(photo, colour_net(calls), N, tile=tile, progress=lambda f, m="": fractions.append(f))
    assert ids.dtype == np.uint8 and ids.shape == photo.shape[:2]
    np.testing.assert_array_equal(ids, colour_class(photo))
    size = (304, 528) if tile == 1024 else (tile, tile)   # whole photo: rounded up to 16 and padded
    assert all(shape[1:] == (*size, 3) and shape[0] <= 4 for shape in calls)
    assert len(set(calls)) == 1   # the last batch filled up: one input shape, one trace of the network
    assert fractions[-1] == 1.0


def test_a_photo_smaller_than_a_tile_is_padded_not_stretched():
    small = np.random.default_rng(4).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    calls = []
    ids = predict_photo(small, colour_net(calls), N, tile=512)
    np.testing.assert_array_equal(ids, colour_class(small))
    assert calls == [(1, 48, 64, 3)]   # one tile, only as large as the photo needs
    calls.clear()
    wider = np.random.default_rng(6).integers(0, 256, (40, 75, 3), dtype=np.uint8)
    np.testing.assert_array_equal(predict_photo(wider, colour_net(calls), N, tile=64), colour_class(wider))
    assert calls == [(1, 48, 80, 3)]   # a side at most a quarter longer than the tile: still one tile
    line = np.random.default_rng(5).integers(0, 256, (1, 20, 3), dtype=np.uint8)   # one pixel high
    np.testing.assert_array_equal(predict_photo(line, colour_net(), N), colour_class(line))


def test_tiles_are_blended_so_a_pixel_comes_from_the_tile_that_sees_it_centrally():
    # A network that is wrong (class 0, confidently) on an 8-pixel ring at each tile's border and
    # right (class 1) inside: after blending only the photo's own border may stay wrong.
    def border_net(batch):
        probs = np.zeros((*batch.shape[:3], 2), np.float32)
        probs[..., 1] = 0.6
        ring = np.ones(batch.shape[1:3], bool)
        ring[8:-8, 8:-8] = False
        probs[:, ring] = (0.9, 0.1)
        return probs

    ids = predict_photo(np.zeros((200, 230, 3), np.uint8), border_net, 2, tile=64, overlap=32)
    assert np.all(ids[8:-8, 8:-8] == 1)
    assert np.all(ids[:8] == 0) and np.all(ids[:, -8:] == 0)


def test_cancel_stops_between_batches_and_a_wrong_network_is_named(photo):
    token = CancelToken()

    def cancelling(batch):
        token.cancel()
        return colour_net()(batch)

    with pytest.raises(Cancelled):
        predict_photo(photo, cancelling, N, tile=64, cancel=token)
    with pytest.raises(ValueError, match="3 class probabilities per pixel, expected 5"):
        predict_photo(photo, lambda b: np.ones((*b.shape[:3], 3), np.float32), N, tile=64)
    with pytest.raises(InputError, match=r"colour photo \[y, x, 3\]"):
        predict_photo(photo[..., 0], colour_net(), N)


def card(name="rocks", classes=None, task="thin_section"):
    classes = classes if classes is not None else [
        {"id": lab.id, "name": lab.name, "colour": list(lab.colour)} for lab in thin_section_table()]
    return ModelCard(name=name, task=task, outputs={"classes": classes})


def test_a_model_with_other_classes_is_refused_with_the_differences():
    check_model_classes(card(), thin_section_table())   # same ids and names (case, spaces ignored)
    classes = card().outputs["classes"]
    other = [dict(c) for c in classes[:4]] + [{"id": 6, "name": "feldspar", "colour": [1, 2, 3]}]
    other[2]["name"] = "pores"
    with pytest.raises(InputError) as info:
        check_model_classes(card(classes=other), thin_section_table())
    message = str(info.value)
    assert "model 'rocks' was trained with other classes" in message
    assert "no 5 bright quartz grains" in message and "6 feldspar" in message
    assert "class 3 is 'pores', here 'blue-dye epoxy (visual porosity)'" in message
    assert "\n" not in message


@pytest.fixture
def models_dir(user_models):
    user_models.mkdir()
    return user_models


def fake_model(folder, c: ModelCard, created="2026-01-01"):
    c.created = created
    (folder / f"{c.name}.keras").write_bytes(b"not loaded by these tests")
    c.write(folder / f"{c.name}.json")


def test_the_default_model_is_the_newest_thin_section_model(models_dir):
    with pytest.raises(InputError, match="no thin_section model in .*train one"):
        find_thin_section_model(None)
    fake_model(models_dir, card("older"), "2026-01-01")
    fake_model(models_dir, card("newer"), "2026-03-01")
    fake_model(models_dir, card("liver", task="segmentation_2d"), "2026-05-01")
    assert find_thin_section_model(None).name == "newer"
    with pytest.raises(InputError, match="is a segmentation_2d model, not a thin_section model"):
        find_thin_section_model("liver")
    fake_model(models_dir, card("classless", classes=[]))
    with pytest.raises(InputError, match="no usable class list"):
        find_thin_section_model("classless")


def test_listing_photos_skips_our_own_outputs_and_refuses_an_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no photos"):
        list_photos(tmp_path)
    for name in ("b.png", "a.JPG", "a_classes.png", "a_recolour.png", "fractions_histogram.png", "notes.txt",
                 "b_labels.png", "c_labels.png"):   # b's labels in a flat project; c_labels has no photo c
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_photos(tmp_path)] == ["a.JPG", "b.png", "c_labels.png"]
    assert list_photos(tmp_path / "b.png") == [tmp_path / "b.png"]


def rows(n):
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        f = rng.dirichlet(np.ones(5)) * 100
        out.append({"image": f"photo_{i}.png", "width": 600, "height": 400,
                    "fractions": {k + 1: float(v) for k, v in enumerate(f)}, "porosity": float(f[2])})
    return out


def test_fractions_csv_has_one_column_per_class_and_porosity(tmp_path):
    table = thin_section_table()
    path = write_fractions_csv(rows(3), table, 3, tmp_path / "fractions.csv")
    with open(path, newline="") as fh:
        table_rows = list(csv.reader(fh))
    assert table_rows[0] == ["image", "width", "height", "1 black grains %", "2 darker grains %",
                             "3 blue-dye epoxy (visual porosity) %", "4 darker bright grains %",
                             "5 bright quartz grains %", "porosity %"]
    first = [float(v) for v in table_rows[1][3:]]
    assert abs(sum(first[:5]) - 100) < 0.01 and first[5] == first[2]


@pytest.mark.parametrize("count", [3, MAX_GROUPED + 8])
def test_the_fractions_chart_draws_every_class_in_its_colour(tmp_path, count):
    table = thin_section_table()
    path = write_fractions_histogram(rows(count), table, tmp_path / "chart.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert all(tuple(lab.colour) in colours for lab in table)
    grouped = fractions_chart(rows(3), table).size
    assert (image.shape[1], image.shape[0]) == grouped if count == 3 else image.shape[0] > grouped[1]

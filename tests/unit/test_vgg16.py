"""The soil VGG16 regressor: the seed's layer names (so its --layer choices work), a fraction out (0..1)
per slice, any width, and a trained-and-saved model that loads back in safe mode giving the same answers."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.ml import registry, vgg16
from ctviewer.ml.cards import ModelCard

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SEED_LAYERS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2",
               "block3_conv3", "block4_conv1", "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2",
               "block5_conv3"]   # the seed's --layer help text


def test_layers_are_vgg16s_names_and_widths_and_the_output_is_a_fraction_per_slice():
    model = vgg16.build_vgg16_regressor((64, 64, 3), base_filters=2, dense=8)
    convs = [layer.name for layer in model.layers if isinstance(layer, vgg16.keras.layers.Conv2D)]
    assert convs == SEED_LAYERS == vgg16.conv_layer_names()
    widths = [model.get_layer(n).filters for n in SEED_LAYERS]
    assert widths == [2, 2, 4, 4, 8, 8, 8, 16, 16, 16, 16, 16, 16]
    assert [layer.name for layer in model.layers if "pool" in layer.name][:5] == [f"block{b}_pool" for b in range(1, 6)]
    x = np.random.default_rng(0).random((3, 64, 64, 3), dtype=np.float32) * 100   # far outside 0..1 on purpose
    out = np.asarray(model.predict_on_batch(x))
    assert out.shape == (3, 1) and np.all((out >= 0) & (out <= 1))
    assert model.loss == "mean_squared_error" and type(model.optimizer).__name__ == "Adam"
    assert model.inputs[0].shape[1:] == (64, 64, 3)
    default = vgg16.build_vgg16_regressor(base_filters=1, dense=4)
    assert default.inputs[0].shape[1:] == (200, 200, 3)     # the seed's slices


def test_bad_options_are_input_errors():
    for kwargs, words in (({"input_shape": (16, 16, 3)}, "at least 32"), ({"base_filters": 0}, "base_filters"),
                          ({"dropout": 1.0}, "dropout")):
        with pytest.raises(InputError, match=words):
            vgg16.build_vgg16_regressor(**kwargs)


def test_the_untrained_model_predicts_its_output_start_not_a_saturated_sigmoid():
    """The output bias starts at the typical target (a from-scratch run that began at 0.5 saturated at
    1.0 for every slice in its first epoch)."""
    model = vgg16.build_vgg16_regressor((32, 32, 3), base_filters=2, dense=4, dropout=0.0, output_start=0.9)
    out = np.asarray(model.predict_on_batch(np.zeros((2, 32, 32, 3), np.float32)))
    assert out == pytest.approx(0.9, abs=0.05)
    with pytest.raises(InputError, match="output_start"):
        vgg16.build_vgg16_regressor((32, 32, 3), output_start=1.0)


def test_a_trained_model_saves_and_loads_back_in_safe_mode_with_the_same_predictions(tmp_path):
    model = vgg16.build_vgg16_regressor((32, 32, 3), base_filters=2, dense=4, dropout=0.25, learning_rate=1e-3)
    rng = np.random.default_rng(1)
    x, y = rng.random((4, 32, 32, 3), dtype=np.float32), rng.random(4).astype(np.float32)
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)       # the optimizer has state: it is dropped on save
    card = ModelCard(name="soil-tiny", task="soil_fraction", inputs={"kind": "soil_slices", "size": 32})
    entry = registry.save_model(model, card, tmp_path)
    loaded, loaded_card = registry.load_model(entry.path, task="soil_fraction")
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(x)), np.asarray(model.predict_on_batch(x)),
                               rtol=1e-5, atol=1e-6)
    assert loaded_card.inputs["size"] == 32
    assert [layer.name for layer in loaded.layers if "conv" in layer.name] == SEED_LAYERS

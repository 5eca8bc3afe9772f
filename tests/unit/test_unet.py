"""The segmentation U-Nets: the output has the input's size for any valid size, the Dice losses
reward overlap and punish its absence, a tiny 2-D net learns a toy organ, the self-normalising
variant is what it says, and a saved compiled model loads back in safe mode, also through the registry."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.ml import registry
from ctviewer.ml import unet
from ctviewer.ml.cards import ModelCard

keras = unet.keras
ops = keras.ops


def _np(x):
    return ops.convert_to_numpy(x)


def test_2d_output_has_the_input_size_and_one_channel_per_group():
    model = unet.build_unet_2d(n_outputs=2)  # the full 16..256 network
    assert unet.size_multiple(model) == 16
    out = _np(model(np.random.default_rng(0).random((2, 96, 80, 1), dtype=np.float32), training=False))
    assert out.shape == (2, 96, 80, 2)
    assert out.min() >= 0.0 and out.max() <= 1.0  # sigmoid probabilities


def test_3d_output_has_the_input_size_and_one_channel_per_group():
    model = unet.build_unet_3d(n_outputs=3, base_filters=4, depth=4)
    assert unet.size_multiple(model) == 16
    out = _np(model(np.random.default_rng(0).random((1, 32, 48, 32, 1), dtype=np.float32), training=False))
    assert out.shape == (1, 32, 48, 32, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_size_multiple_follows_the_number_of_poolings():
    assert unet.size_multiple(unet.build_unet_2d(filters=(4, 8, 16))) == 4
    assert unet.size_multiple(unet.build_unet_3d(base_filters=2, depth=2)) == 4
    two_channels = unet.build_unet_2d(filters=(4, 8), in_channels=2)
    assert unet.size_multiple(two_channels) == 2 and two_channels.input_shape[-1] == 2


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="unknown loss 'dicee'"):
        unet.build_unet_2d(filters=(4, 8), loss="dicee")
    with pytest.raises(InputError, match="unknown activation 'tanh'"):
        unet.build_unet_2d(filters=(4, 8), activation="tanh")
    with pytest.raises(InputError, match="dropout"):
        unet.build_unet_3d(base_filters=2, depth=1, dropout=1.0)


def _masks(rng, shape=(2, 24, 24, 2)):
    truth = np.zeros(shape, np.float32)
    truth[:, 4:14, 6:18, 0] = 1
    truth[:, 10:20, 2:9, 1] = 1
    return truth


def test_dice_loss_is_zero_for_a_perfect_prediction_and_high_for_the_inverse():
    truth = _masks(np.random.default_rng(0))
    assert float(_np(unet.dice_loss(truth, truth))) == pytest.approx(0.0, abs=1e-6)
    assert float(_np(unet.dice_coefficient(truth, truth))) == pytest.approx(1.0, abs=1e-6)
    assert float(_np(unet.dice_loss(truth, 1 - truth))) > 0.99
    # per channel, then averaged: one channel right and one wrong is half way
    half = truth.copy()
    half[..., 1] = 1 - truth[..., 1]
    assert float(_np(unet.dice_loss(truth, half))) == pytest.approx(0.5, abs=0.01)
    # soft: a half-confident correct prediction is better than the inverse but not perfect
    soft = float(_np(unet.dice_loss(truth, 0.5 * truth)))
    assert 0.2 < soft < 0.5


def test_dice_ce_adds_cross_entropy():
    truth = _masks(np.random.default_rng(1))
    pred = np.clip(truth * 0.7 + 0.15, 0, 1).astype(np.float32)
    dice = float(_np(unet.dice_loss(truth, pred)))
    both = float(_np(unet.dice_ce_loss(truth, pred)))
    expected_ce = -np.mean(truth * np.log(pred) + (1 - truth) * np.log(1 - pred))
    assert both == pytest.approx(dice + expected_ce, rel=1e-4)
    assert float(_np(unet.dice_ce_loss(truth, truth))) < 1e-3


def _discs(rng, n, size=32):
    """Bright discs of random place and radius on a noisy background: a toy organ to segment."""
    yy, xx = np.mgrid[:size, :size]
    images, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(9, size - 9, 2)
        radius = rng.uniform(4, 8)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2).astype(np.float32)
        image = 0.25 + 0.4 * mask + rng.normal(0, 0.08, mask.shape)
        images.append(np.clip(image, 0, 1))
        masks.append(mask)
    return np.stack(images)[..., None].astype(np.float32), np.stack(masks)[..., None]


def test_a_tiny_2d_unet_learns_to_segment_discs():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(2)
    x, y = _discs(rng, 16)
    model = unet.build_unet_2d(filters=(8, 16, 32), dropout=0.0, loss="dice_ce", learning_rate=1e-2)
    model.fit(x, y, batch_size=8, epochs=15, verbose=0)  # 30 steps: batch norm's running statistics must keep up
    x_test, y_test = _discs(rng, 8)
    pred = (_np(model(x_test, training=False)) > 0.5).astype(np.float32)
    dice = 2 * np.sum(pred * y_test) / (np.sum(pred) + np.sum(y_test))
    assert dice > 0.8


def test_selu_variant_is_self_normalising_and_relu_variant_uses_batch_norm():
    selu = unet.build_unet_2d(filters=(4, 8), activation="selu", dropout=0.1)
    kinds = {type(layer).__name__ for layer in selu.layers}
    assert "AlphaDropout" in kinds and "BatchNormalization" not in kinds
    convs = [layer for layer in selu.layers if type(layer).__name__ == "Conv2D" and layer.name != "probabilities"]
    assert convs and all(layer.activation.__name__ == "selu" for layer in convs)
    assert all(isinstance(layer.kernel_initializer, keras.initializers.LecunNormal) for layer in convs)
    relu = unet.build_unet_2d(filters=(4, 8), activation="relu", dropout=0.1)
    kinds = {type(layer).__name__ for layer in relu.layers}
    assert "BatchNormalization" in kinds and "Dropout" in kinds and "AlphaDropout" not in kinds


def test_3d_dropout_sits_at_the_bottom_only():
    model = unet.build_unet_3d(base_filters=2, depth=2, dropout=0.2)
    assert [layer.name for layer in model.layers if type(layer).__name__ == "Dropout"] == ["bottom_dropout"]
    assert sum(type(layer).__name__ == "BatchNormalization" for layer in model.layers) == 2 * (2 * 2 + 1)


def test_compiled_model_round_trip_with_safe_mode(tmp_path):
    model = unet.build_unet_2d(filters=(4, 8), activation="selu", loss="dice_ce")
    x, y = _discs(np.random.default_rng(3), 2, size=24)
    model.fit(x, y, epochs=1, verbose=0)  # optimizer state and metrics exist, as after a real training
    path = tmp_path / "unet.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(again(x, training=False)), _np(model(x, training=False)), atol=1e-5)
    expected = model.evaluate(x, y, verbose=0, return_dict=True)
    got = again.evaluate(x, y, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-4)
    assert got["dice_coefficient"] == pytest.approx(expected["dice_coefficient"], rel=1e-4)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # saved before any training
def test_registry_registers_the_losses_before_loading(tmp_path, monkeypatch):
    model = unet.build_unet_3d(base_filters=2, depth=1, loss="dice")
    entry = registry.save_model(model, ModelCard(name="seg", task="segmentation_3d"), tmp_path)
    # As in a fresh process: neither the module nor its registered losses are known to Keras yet.
    custom = keras.saving.get_custom_objects()
    for name in [key for key in custom if key.startswith("ctviewer>dice")]:
        monkeypatch.delitem(custom, name)
    monkeypatch.delitem(sys.modules, "ctviewer.ml.unet")
    assert "ctviewer.ml.unet" in registry.ARCHITECTURE_MODULES
    loaded, card = registry.load_model(entry.path, task="segmentation_3d", compile=True)
    assert card.task == "segmentation_3d"
    patch = np.random.default_rng(4).random((1, 4, 6, 4, 1), dtype=np.float32)
    np.testing.assert_allclose(_np(loaded(patch, training=False)), _np(model(patch, training=False)), atol=1e-5)
    truth = (patch > 0.5).astype(np.float32)
    assert loaded.loss.__name__ == "dice_loss"  # the training loss came back with the model
    assert float(_np(loaded.loss(truth, truth))) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # no moments saved, on purpose
def test_saved_models_leave_the_optimizers_moments_behind_but_keep_weights_and_loss(tmp_path):
    model = unet.build_unet_2d(filters=(8, 16), loss="dice_ce")
    x = np.random.default_rng(5).random((4, 16, 16, 1), dtype=np.float32)
    model.fit(x, (x > 0.5).astype(np.float32), epochs=1, verbose=0)   # Adam now holds two moments per weight
    direct = tmp_path / "direct.keras"
    model.save(direct)
    entry = registry.save_model(model, ModelCard(name="small", task="segmentation_2d"), tmp_path)
    assert _optimizer_values(direct) > 2 * len(model.trainable_weights)   # the moments, had we saved them
    assert _optimizer_values(entry.path) <= 2                               # iteration count, learning rate
    loaded, _ = registry.load_model(entry.path, task="segmentation_2d", compile=True)
    np.testing.assert_allclose(_np(loaded(x, training=False)), _np(model(x, training=False)), atol=1e-6)
    assert loaded.loss.__name__ == "dice_ce_loss"


def _optimizer_values(keras_file) -> int:
    """How many arrays the optimizer left in a .keras file's weights."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(keras_file) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    found = []
    with h5py.File(weights, "r") as h5:
        if "optimizer" in h5:
            h5["optimizer"].visititems(lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None)
    return len(found)

"""The thin-section VGG-UNet: full-resolution output for any size that is a multiple of 16, VGG16's
layer names (so ImageNet weights load by name), only from a local file (never a download), a loss
that ignores unlabelled pixels, and a compiled model that loads back in safe mode."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.ml import registry, vgg_unet
from ctviewer.ml.cards import ModelCard

keras = vgg_unet.keras
ops = keras.ops


def _np(x):
    return ops.convert_to_numpy(x)


def test_output_has_the_photo_size_and_one_probability_per_class():
    model = vgg_unet.build_vgg_unet(5, base_filters=2)
    rng = np.random.default_rng(0)
    # predict_on_batch, as tiled prediction calls it: one traced function for tiles of every size
    for shape in ((1, 48, 80, 3), (3, 16, 112, 3)):   # odd multiples of 16
        out = np.asarray(model.predict_on_batch(rng.random(shape, dtype=np.float32)))
        assert out.shape == shape[:3] + (5,)
        np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-5)   # softmax over the classes
    assert vgg_unet.SIZE_MULTIPLE == 16


def test_encoder_has_vgg16_names_and_widths():
    model = vgg_unet.build_vgg_unet(3, base_filters=4)
    names = [layer.name for layer in model.layers]
    expected = vgg_unet.encoder_layer_names()
    # in VGG16's order (from scratch, each convolution is followed by its batch norm and ReLU)
    assert [n for n in names if n in expected] == expected
    assert names.index("block1_bn1") == names.index("block1_conv1") + 1
    plain = [layer.name for layer in vgg_unet.build_vgg_unet(3, base_filters=4, batch_norm=False).layers]
    assert plain[1:1 + len(expected)] == expected   # the plain layout ImageNet weights load into
    assert expected[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert expected[-1] == "block5_conv3" and "block5_pool" not in names   # four poolings
    widths = {name: model.get_layer(name).filters for name in expected if "conv" in name}
    assert widths["block1_conv2"] == 4 and widths["block2_conv2"] == 8 and widths["block3_conv3"] == 16
    assert widths["block4_conv3"] == 32 and widths["block5_conv3"] == 32
    assert "imagenet_preprocessing" not in names   # only with ImageNet weights


def test_loss_ignores_unlabelled_pixels_and_dice_adds_to_it():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=(2, 4, 4)).astype(np.float32)
    truth = rng.integers(0, 3, (2, 4, 4))
    ce = vgg_unet.PhotoSegmentationLoss()
    expected = -np.mean(np.log(np.take_along_axis(probs, truth[..., None], -1)))
    assert float(_np(ce(truth, probs))) == pytest.approx(expected, rel=1e-5)
    # unlabelled pixels may hold anything: the loss is the labelled pixels' mean
    partly = truth.copy()
    partly[:, :2] = vgg_unet.UNLABELLED
    kept = np.take_along_axis(probs, truth[..., None], -1)[:, 2:]
    assert float(_np(ce(partly, probs))) == pytest.approx(-np.mean(np.log(kept)), rel=1e-5)
    perfect = np.eye(3, dtype=np.float32)[truth]
    with_dice = vgg_unet.PhotoSegmentationLoss(dice_weight=0.5)
    assert float(_np(with_dice(truth, perfect))) == pytest.approx(0.0, abs=1e-4)
    assert float(_np(with_dice(truth, probs))) > float(_np(ce(truth, probs))) + 0.1
    accuracy = float(_np(vgg_unet.labelled_accuracy(partly, perfect)))
    assert accuracy == pytest.approx(1.0)


def test_bad_options_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="at least two classes"):
        vgg_unet.build_vgg_unet(1)
    with pytest.raises(InputError, match="dropout"):
        vgg_unet.build_vgg_unet(3, base_filters=2, dropout=1.0)


def test_imagenet_weights_are_never_downloaded(tmp_path):
    for name in ("imagenet", "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/x.h5"):
        with pytest.raises(InputError, match="local VGG16 weights file"):
            vgg_unet.build_vgg_unet(5, encoder_weights=name)
    with pytest.raises(InputError, match="not found"):
        vgg_unet.build_vgg_unet(5, encoder_weights=tmp_path / "missing.weights.h5")
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not weights")
    with pytest.raises(InputError, match="base_filters = 64"):
        vgg_unet.build_vgg_unet(5, base_filters=16, encoder_weights=junk)
    with pytest.raises(InputError, match="not a Keras VGG16 no-top weights file"):
        vgg_unet.build_vgg_unet(5, encoder_weights=junk)


def test_vgg16_weights_file_loads_into_the_encoder_by_name(tmp_path):
    keras.utils.set_random_seed(3)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    vgg.save_weights(path)
    model = vgg_unet.build_vgg_unet(4, base_filters=64, encoder_weights=path)
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        np.testing.assert_array_equal(_np(model.get_layer(name).kernel), _np(vgg.get_layer(name).kernel))
    # what Keras' VGG16 preprocessing does to 0..255 RGB, the model does to 0..1 RGB
    rgb = np.random.default_rng(4).random((1, 16, 16, 3), dtype=np.float32)
    ours = _np(model.get_layer("imagenet_preprocessing")(rgb))
    theirs = keras.applications.vgg16.preprocess_input(rgb * 255.0)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # no moments saved, on purpose
def test_trained_model_round_trips_in_safe_mode_through_the_registry(tmp_path, monkeypatch):
    keras.utils.set_random_seed(5)
    model = vgg_unet.build_vgg_unet(3, base_filters=2, dice_weight=0.5)
    rng = np.random.default_rng(6)
    x = rng.random((2, 32, 48, 3), dtype=np.float32)
    y = rng.integers(0, 3, (2, 32, 48)).astype(np.uint8)
    y[:, :8] = vgg_unet.UNLABELLED
    model.fit(x, y, epochs=1, verbose=0)
    entry = registry.save_model(model, ModelCard(name="thin", task="thin_section"), tmp_path)
    # As in a fresh process: neither the module nor what it registered is known to Keras yet.
    custom = keras.saving.get_custom_objects()
    for name in ("PhotoSegmentationLoss", "labelled_accuracy", "VGGPreprocessing"):
        monkeypatch.delitem(custom, f"ctviewer>{name}", raising=False)
    monkeypatch.delitem(sys.modules, "ctviewer.ml.vgg_unet")
    loaded, _ = registry.load_model(entry.path, task="thin_section", compile=True)
    np.testing.assert_allclose(_np(loaded(x, training=False)), _np(model(x, training=False)), atol=1e-5)
    assert loaded.loss.dice_weight == 0.5   # the training loss came back with its settings
    pred = model(x, training=False)
    assert float(_np(loaded.loss(y, pred))) == pytest.approx(float(_np(model.loss(y, pred))), rel=1e-5)

"""Grad-CAM and activation maps of soil models: the heatmap peaks where the model looks, keeps its sign
when asked, stays float32 at the input's size; the activation grid fits any channel count; wrong layers
and wrong sizes are refused in words; a cube is explained slice by slice with progress and cancel."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken
from ctviewer.workflows.soil import explain, task

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _keras():
    from ctviewer.ml.backend import keras

    return keras()


def _red_model(sign: float = 1.0):
    """A model whose output is ``sign`` x the mean red (channel 0) of its 32x32 input, seen through a
    layer "look" (16x16, after a pooling) with a red feature and a green one: only the red one counts."""
    k = _keras()
    inputs = k.Input((32, 32, 3))
    first = k.layers.Conv2D(2, 1, activation="relu", name="first")
    look = k.layers.Conv2D(2, 3, padding="same", activation="relu", name="look")
    out = k.layers.Dense(1, name="out")
    x = look(k.layers.MaxPooling2D(2)(first(inputs)))
    model = k.Model(inputs, out(k.layers.GlobalAveragePooling2D()(x)))
    pick = np.zeros((1, 1, 3, 2), np.float32)
    pick[0, 0, 0, 0] = pick[0, 0, 1, 1] = 1                # feature 0 = red, feature 1 = green
    first.set_weights([pick, np.zeros(2, np.float32)])
    same = np.zeros((3, 3, 2, 2), np.float32)
    same[1, 1, 0, 0] = same[1, 1, 1, 1] = 1
    look.set_weights([same, np.zeros(2, np.float32)])
    out.set_weights([np.array([[sign], [0.0]], np.float32), np.zeros(1, np.float32)])
    return model


def _red_top_left_green_elsewhere() -> np.ndarray:
    image = np.zeros((32, 32, 3), np.float32)
    image[..., 1] = 1.0                                    # green everywhere: the model ignores it
    image[2:12, 4:14, 0] = 1.0                             # red only in one patch
    return image


def test_grad_cam_peaks_where_the_feature_the_model_uses_is_and_is_float32_at_the_input_size():
    heat = explain.grad_cam(_red_model(), _red_top_left_green_elsewhere(), "look")
    assert heat.dtype == np.float32 and heat.shape == (32, 32)
    assert heat[4:10, 6:12].min() > 0 and heat.max() == heat[4:10, 6:12].max()
    assert np.all(heat[16:] == 0) and np.all(heat[:, 18:] == 0)
    # upsampled bilinearly (a ramp at the patch's edge), not in 2x2 blocks
    assert 0 < heat[12, 8] < heat[8, 8]


def test_signed_grad_cam_keeps_negative_values_and_relu_drops_them():
    model = _red_model(sign=-1.0)          # red lowers the output, as the chosen object lowers 1 - fraction
    signed = explain.grad_cam(model, _red_top_left_green_elsewhere(), "look", relu=False)
    assert signed.dtype == np.float32 and signed[4:10, 6:12].max() < 0 and signed.min() == signed[4:10, 6:12].min()
    assert np.all(explain.grad_cam(model, _red_top_left_green_elsewhere(), "look") == 0)


@pytest.mark.parametrize("count, rows, columns", [(1, 1, 1), (5, 2, 3), (16, 4, 4), (17, 4, 5)])
def test_activation_grid_fits_any_count_with_blank_cells(count, rows, columns):
    maps = [(c, np.arange(12, dtype=np.float32).reshape(3, 4) * (c + 1)) for c in range(count)]
    assert explain.grid_shape(count) == (rows, columns)
    grid = explain.activation_grid(maps)
    assert grid.dtype == np.float32 and grid.shape == (rows * 4 - 1, columns * 5 - 1)   # 1-pixel gaps
    cells = [grid[r * 4:r * 4 + 3, c * 5:c * 5 + 4] for r in range(rows) for c in range(columns)]
    for i, cell in enumerate(cells):
        if i < count:
            assert cell.min() == 0 and cell.max() == 1          # each map scaled to its own range
        else:
            assert np.all(np.isnan(cell))                        # padding cells blank
    assert explain.activation_grid(maps, columns=2).shape[1] == (2 * 5 - 1 if count > 1 else 4)
    with pytest.raises(InputError, match="no activation maps"):
        explain.activation_grid([])


def test_activation_maps_keep_the_channels_above_the_threshold():
    k = _keras()
    inputs = k.Input((8, 8, 1))
    conv = k.layers.Conv2D(3, 1, use_bias=False, name="conv", kernel_initializer=k.initializers.Constant(1.0))
    model = k.Model(inputs, k.layers.Dense(1)(k.layers.Flatten()(conv(inputs))))
    conv.set_weights([np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 1, 1, 3)])
    image = np.ones((8, 8, 1), np.float32)                  # channel sums 64, 128, 192
    assert [c for c, _ in explain.activation_maps(model, image, "conv", 100)] == [1, 2]
    assert [c for c, _ in explain.activation_maps(model, image, "conv", 500)] == []
    channel, first = explain.activation_maps(model, image, "conv", 0)[0]
    assert channel == 0 and first.shape == (8, 8) and first.dtype == np.float32 and first.sum() == 64


def test_wrong_layers_and_sizes_are_refused_in_words():
    model = _red_model()
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(InputError, match=r"'out' is not a convolutional layer.*: first, look$"):
        explain.grad_cam(model, image, "out")
    with pytest.raises(InputError, match="its convolutional layers: first, look"):
        explain.activation_maps(model, image, "block3_conv1", 0)
    with pytest.raises(InputError, match="takes 32x32 slices .* input is 40x32"):
        explain.grad_cam(model, np.zeros((40, 32, 3), np.float32), "look")
    with pytest.raises(InputError, match="takes 32x32 slices .* input is 24x24"):
        explain.grad_cam_volume(model, np.zeros((3, 24, 24), np.int16) + np.arange(24, dtype=np.int16), "look")


def test_slice_input_is_the_training_input_and_refuses_what_it_cannot_use():
    from ctviewer.data.labels import LabelMap
    from ctviewer.synth.soil import SoilParams, make_soil_cube

    cube = make_soil_cube(SoilParams(shape=(12, 32, 32), seed=2))
    image = explain.slice_input(cube.image, 5)
    expected, _ = task.sample(task._cube("c", cube.image), 5, task.SoilData(size=32))
    np.testing.assert_array_equal(image, expected)
    with pytest.raises(InputError, match=r"slice 12 is outside the cube \(slices 0..11\)"):
        explain.slice_input(cube.image, 12)
    with pytest.raises(InputError, match="values, not only its density objects"):
        explain.slice_input(LabelMap(cube.image.with_array(np.ones((12, 32, 32), np.uint8))), 0)


def test_grad_cam_volume_goes_slice_by_slice_with_progress_and_cancel():
    model = _red_model()
    cube = np.random.default_rng(3).integers(0, 4000, (10, 32, 32)).astype(np.int16)
    seen = []
    heat = explain.grad_cam_volume(model, cube, "look", progress=lambda f, m="": seen.append(f))
    assert heat.shape == cube.shape and heat.dtype == np.float32
    np.testing.assert_allclose(heat[7], explain.grad_cam(model, explain.slice_input(cube, 7), "look"), rtol=1e-4,
                               atol=1e-7)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        explain.grad_cam_volume(model, cube, "look", cancel=token)

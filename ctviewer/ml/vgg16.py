"""The soil study's VGG16-style regressor: one slice in, one number (a fraction, 0..1) out.

After the soil seed (``ImageGenerator2_VGG16.py``): VGG16's thirteen 3x3 convolutions in five blocks,
with Keras' own layer names (``block1_conv1`` ... ``block5_conv3``, ``block1_pool`` ... ``block5_pool``)
so the layer names users pick for Grad-CAM and activation maps are the seed's. The seed's head (two
4096-wide dense layers on the flattened 6x6x512 map, 100 M weights, a linear output) is replaced by a
small one: global average pooling, one dense layer, dropout and a sigmoid output, since the target is a
fraction of the slice's voxels. Loss MSE, optimizer Adam, as the seed.

Only built-in Keras layers, loss and metrics: ``safe_mode=True`` loading needs no registered custom
objects, and the model runs on any Keras backend. This module imports Keras: import it lazily.
"""

from __future__ import annotations

import math

from ctviewer.errors import InputError
from ctviewer.ml import backend

keras = backend.keras()

#: VGG16's convolutions per block; each block's width is base_filters * BLOCK_WIDTHS[block].
BLOCK_CONVS = (2, 2, 3, 3, 3)
BLOCK_WIDTHS = (1, 2, 4, 8, 8)


def conv_layer_names() -> list[str]:
    """``block1_conv1`` ... ``block5_conv3``: the convolutions a user may explain, in order."""
    return [f"block{b}_conv{i}" for b, convs in enumerate(BLOCK_CONVS, start=1) for i in range(1, convs + 1)]


def build_vgg16_regressor(input_shape=(200, 200, 3), base_filters=64, dense=256, dropout=0.5,
                          learning_rate=1e-4, batch_norm=True, output_start=0.5):
    """The compiled regressor (see the module docstring).

    ``base_filters`` 64 is VGG16's width (64..512 filters); narrower nets train much faster on a CPU.
    ``input_shape`` is ``(height, width, channels)``; five poolings, so sides of at least 32.
    ``batch_norm`` normalises each convolution's ReLU output (the layer named ``blockB_convI`` still
    gives the ReLU activations users explain): without it, a from-scratch run here died in its first
    epoch (every slice predicted 1.0). ``output_start`` is the fraction the untrained model predicts
    (its output bias): start it near the typical target (1 - porosity is about 0.9) so the sigmoid does
    not begin saturated on one side.
    """
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or shape[0] < 32 or shape[1] < 32 or shape[2] < 1:
        raise InputError(f"input_shape should be (height, width, channels) with sides of at least 32 "
                         f"(five poolings), not {tuple(input_shape)}")
    if int(base_filters) < 1 or int(dense) < 1:
        raise InputError(f"base_filters and dense must be at least 1, not {base_filters} and {dense}")
    if not 0.0 <= float(dropout) < 1.0:
        raise InputError(f"dropout must be in [0, 1), not {dropout}")
    if not 0.0 < float(output_start) < 1.0:
        raise InputError(f"output_start must be a fraction strictly between 0 and 1, not {output_start}")
    inputs = keras.Input(shape, name="slice")
    x = inputs
    for block, (convs, width) in enumerate(zip(BLOCK_CONVS, BLOCK_WIDTHS), start=1):
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(int(base_filters) * width, 3, padding="same", activation="relu",
                                    name=f"block{block}_conv{i}")(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn{i}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="average_pool")(x)
    x = keras.layers.Dense(int(dense), activation="relu", name="regression")(x)
    if dropout > 0:
        x = keras.layers.Dropout(float(dropout), name="dropout")(x)
    # float32 even under mixed precision: the fraction is compared with targets to 1e-3
    start = float(output_start)
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="fraction",
                                 bias_initializer=keras.initializers.Constant(math.log(start / (1 - start))))(x)
    model = keras.Model(inputs, outputs, name="vgg16_regressor")
    model.compile(optimizer=keras.optimizers.Adam(float(learning_rate)), loss="mean_squared_error",
                  metrics=["mean_absolute_error"])
    return model

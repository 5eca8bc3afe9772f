"""U-Nets for organ and bone segmentation, with the Dice losses they train on.

Two networks, after the seed projects: a 2-D U-Net for slices (the liver seed's: filters 16..256,
3x3 convolutions, optionally self-normalising with selu + lecun_normal + AlphaDropout) and a 3-D
U-Net for patches (the spine seed's: base 16 filters, batch norm + ReLU, dropout at the bottom).
Both are fully convolutional: any spatial size that is a multiple of :func:`size_multiple` goes in,
and the output has the input's size with one sigmoid channel per target group.

Everything is written with ``keras.ops`` (no TensorFlow calls), so the models also run on the JAX
backend. The losses and the metric are registered with Keras under package "ctviewer" so that a
saved, compiled model loads again with ``safe_mode=True``.

This module imports Keras: code that starts the CLI or the GUI imports it lazily, where a model is
actually built or loaded.
"""

from __future__ import annotations

from ctviewer.errors import InputError
from ctviewer.ml import backend

keras = backend.keras()
ops = keras.ops

#: Soft-Dice smoothing: keeps the loss defined for empty masks and its gradient gentle near 0.
SMOOTH = 1.0
LOSSES = ("dice", "dice_ce")
ACTIVATIONS = ("relu", "selu")


# -- losses and metric ------------------------------------------------------------------------------

def _dice_per_channel(y_true, y_pred):
    """Soft Dice of each output channel, pooled over the batch and every spatial axis."""
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, "float32")
    axes = tuple(range(len(y_pred.shape) - 1))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * intersection + SMOOTH) / (total + SMOOTH)


@keras.saving.register_keras_serializable(package="ctviewer")
def dice_coefficient(y_true, y_pred):
    """Soft Dice (1 = perfect overlap), per channel over batch and space, then averaged over channels."""
    return ops.mean(_dice_per_channel(y_true, y_pred))


@keras.saving.register_keras_serializable(package="ctviewer")
def dice_loss(y_true, y_pred):
    """1 - soft Dice (smooth 1): insensitive to how small the organ is against the background."""
    return 1.0 - dice_coefficient(y_true, y_pred)


@keras.saving.register_keras_serializable(package="ctviewer")
def dice_ce_loss(y_true, y_pred):
    """Dice loss + mean binary cross-entropy: Dice for the overlap, cross-entropy for steady gradients
    on every voxel early in training, when the predicted organ is still nearly empty."""
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, "float32")
    cross_entropy = ops.mean(ops.binary_crossentropy(y_true, y_pred))
    return dice_loss(y_true, y_pred) + cross_entropy


def _compile(model, loss: str, learning_rate: float):
    if loss not in LOSSES:
        raise InputError(f"unknown loss '{loss}' (choose from: {', '.join(LOSSES)})")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=dice_loss if loss == "dice" else dice_ce_loss, metrics=[dice_coefficient])
    return model


# -- building blocks --------------------------------------------------------------------------------

def _conv_bn_relu(x, filters: int, dims: int, name: str):
    conv = keras.layers.Conv2D if dims == 2 else keras.layers.Conv3D
    x = conv(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9, not Keras' 0.99: the running statistics used at inference settle within tens of
    # batches, not hundreds, so a short CPU training on a few scans does not predict with stale ones
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _conv_selu(x, filters: int, name: str):
    # lecun_normal weights keep selu activations near zero mean and unit variance layer after layer.
    return keras.layers.Conv2D(filters, 3, padding="same", activation="selu",
                               kernel_initializer="lecun_normal", name=f"{name}_conv")(x)


def _block_2d(x, filters: int, activation: str, dropout: float, name: str):
    """Two 3x3 convolutions; dropout between them (AlphaDropout for selu: plain dropout would break
    the self-normalisation)."""
    if activation == "selu":
        x = _conv_selu(x, filters, f"{name}a")
        if dropout > 0:
            x = keras.layers.AlphaDropout(dropout, name=f"{name}_dropout")(x)
        return _conv_selu(x, filters, f"{name}b")
    x = _conv_bn_relu(x, filters, 2, f"{name}a")
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return _conv_bn_relu(x, filters, 2, f"{name}b")


def _check_common(n_outputs: int, in_channels: int, dropout: float):
    if int(n_outputs) < 1:
        raise InputError(f"a segmentation network needs at least one output channel, not {n_outputs}")
    if int(in_channels) < 1:
        raise InputError(f"a segmentation network needs at least one input channel, not {in_channels}")
    if not 0.0 <= float(dropout) < 1.0:
        raise InputError(f"dropout must be in [0, 1), not {dropout}")


# -- the networks -----------------------------------------------------------------------------------

def build_unet_2d(n_outputs: int = 1, filters=(16, 32, 64, 128, 256), activation: str = "relu",
                  dropout: float = 0.1, loss: str = "dice", learning_rate: float = 1e-3, in_channels: int = 1):
    """The 2-D U-Net, compiled: input ``[batch, y, x, in_channels]`` (y, x multiples of
    ``2**(len(filters) - 1)``), output ``[batch, y, x, n_outputs]`` sigmoid probabilities.

    ``filters`` gives each level's width from full resolution down to the bottom; ``activation``
    "relu" is ReLU + batch norm, "selu" the self-normalising variant (selu, lecun_normal, AlphaDropout).
    """
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation '{activation}' (choose from: {', '.join(ACTIVATIONS)})")
    filters = [int(f) for f in filters]
    if len(filters) < 2 or min(filters) < 1:
        raise InputError(f"a U-Net needs at least two levels of filters, not {filters}")
    _check_common(n_outputs, in_channels, dropout)
    inputs = keras.Input((None, None, int(in_channels)), name="image")
    x, skips = inputs, []
    for level, f in enumerate(filters[:-1]):
        x = _block_2d(x, f, activation, dropout, f"enc{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _block_2d(x, filters[-1], activation, dropout, "bottom")
    init = "lecun_normal" if activation == "selu" else "glorot_uniform"
    for level in reversed(range(len(filters) - 1)):
        x = keras.layers.Conv2DTranspose(filters[level], 2, strides=2, padding="same", kernel_initializer=init,
                                         name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _block_2d(x, filters[level], activation, dropout, f"dec{level}")
    outputs = keras.layers.Conv2D(int(n_outputs), 1, activation="sigmoid", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="unet_2d")
    return _compile(model, loss, learning_rate)


def build_unet_3d(n_outputs: int = 1, base_filters: int = 16, depth: int = 4, dropout: float = 0.1,
                  loss: str = "dice", learning_rate: float = 1e-3, in_channels: int = 1):
    """The 3-D U-Net, compiled: input ``[batch, z, y, x, in_channels]`` (each a multiple of
    ``2**depth``), output ``[batch, z, y, x, n_outputs]`` sigmoid probabilities.

    Level ``l`` has ``base_filters * 2**l`` filters (``depth`` poolings, the bottom at level ``depth``);
    dropout only at the bottom, where the many filters see the whole patch and over-fit first.
    """
    if int(depth) < 1 or int(base_filters) < 1:
        raise InputError(f"a 3-D U-Net needs depth >= 1 and base filters >= 1, not {depth} and {base_filters}")
    _check_common(n_outputs, in_channels, dropout)
    depth, base_filters = int(depth), int(base_filters)
    inputs = keras.Input((None, None, None, int(in_channels)), name="patch")
    x, skips = inputs, []
    for level in range(depth):
        f = base_filters * 2 ** level
        x = _conv_bn_relu(x, f, 3, f"enc{level}a")
        x = _conv_bn_relu(x, f, 3, f"enc{level}b")
        skips.append(x)
        x = keras.layers.MaxPooling3D(2, name=f"pool{level}")(x)
    bottom = base_filters * 2 ** depth
    x = _conv_bn_relu(x, bottom, 3, "bottoma")
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="bottom_dropout")(x)
    x = _conv_bn_relu(x, bottom, 3, "bottomb")
    for level in reversed(range(depth)):
        f = base_filters * 2 ** level
        x = keras.layers.Conv3DTranspose(f, 2, strides=2, padding="same", name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_bn_relu(x, f, 3, f"dec{level}a")
        x = _conv_bn_relu(x, f, 3, f"dec{level}b")
    outputs = keras.layers.Conv3D(int(n_outputs), 1, activation="sigmoid", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="unet_3d")
    return _compile(model, loss, learning_rate)


def size_multiple(model) -> int:
    """Every spatial input size must be a multiple of this: the product of the model's pooling steps.

    Read from the layers, so it also holds for a loaded model whatever options built it.
    """
    multiple = 1
    for layer in model.layers:
        if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.MaxPooling3D)):
            multiple *= int(layer.pool_size[0])
    return multiple

"""The VGG-UNet that segments thin-section photos into mineral / porosity classes.

After the thin-section seed (keras-segmentation's ``vgg_unet``): a VGG16 encoder, with Keras' own
layer names (``block1_conv1`` ... ``block5_conv3``, ``block1_pool`` ... ``block4_pool``) so that
ImageNet weights load into it by name, and a U-Net decoder (upsample, concatenate the encoder
block of that scale, two 3x3 conv + batch norm + ReLU) back to full resolution, then a softmax over
the classes. Four poolings: height and width must be multiples of :data:`SIZE_MULTIPLE`.

Input: ``[batch, y, x, 3]`` RGB in [0, 1]. Output: ``[batch, y, x, n_classes]`` probabilities; class
index ``c`` stands for the label id ``classes[c]`` of the model card. Training targets are class
indices ``[batch, y, x]``; :data:`UNLABELLED` marks pixels nobody labelled, which the loss and the
accuracy leave out, so partly labelled photos train.

ImageNet weights come only from a local Keras VGG16 no-top weights file the user names: nothing is
ever downloaded. With them, the model applies VGG16's own input preprocessing (caffe style: BGR,
0..255, ImageNet channel means subtracted) as its first layer, since that is what those weights saw.

Everything is ``keras.ops`` (runs on the JAX backend too); the loss, the metric and the
preprocessing layer are registered under package "ctviewer" for ``safe_mode=True`` loading.
This module imports Keras: import it lazily, where a model is built or loaded.
"""

from __future__ import annotations

from pathlib import Path

from ctviewer.errors import InputError
from ctviewer.ml import backend
from ctviewer.ml.unet import _conv_bn_relu

keras = backend.keras()
ops = keras.ops

SIZE_MULTIPLE = 16
#: Target value of unlabelled pixels (label id 0): ignored by the loss and the accuracy.
UNLABELLED = 255
#: VGG16's convolutions per block; each block's width is base_filters * BLOCK_WIDTHS[block].
BLOCK_CONVS = (2, 2, 3, 3, 3)
BLOCK_WIDTHS = (1, 2, 4, 8, 8)
#: Keras' VGG16 preprocessing ("caffe"): channel means of ImageNet in BGR order, on the 0..255 scale.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
#: Soft-Dice smoothing (as in unet.py): defined for classes absent from a batch.
SMOOTH = 1.0


def encoder_layer_names() -> list[str]:
    """The VGG16 layers of the encoder, in order: what ImageNet weights are copied into."""
    names = []
    for block, convs in enumerate(BLOCK_CONVS, start=1):
        names += [f"block{block}_conv{i}" for i in range(1, convs + 1)]
        if block < len(BLOCK_CONVS):
            names.append(f"block{block}_pool")
    return names


# -- loss, metric, preprocessing ----------------------------------------------------------------------

def _labelled(y_true, n_classes: int):
    """(class indices with unlabelled pixels set to 0, float mask of labelled pixels), both [b, y, x]."""
    y_true = ops.cast(y_true, "int32")
    if len(y_true.shape) == 4:  # [b, y, x, 1] from a caller that kept the channel axis
        y_true = ops.squeeze(y_true, axis=-1)
    labelled = ops.logical_and(y_true >= 0, y_true < n_classes)
    return ops.where(labelled, y_true, 0), ops.cast(labelled, "float32")


@keras.saving.register_keras_serializable(package="ctviewer")
class PhotoSegmentationLoss(keras.losses.Loss):
    """Sparse categorical cross-entropy over labelled pixels, plus ``dice_weight`` x soft multi-class
    Dice loss (Dice per class over batch and space, averaged over classes): Dice keeps thin, rare
    classes (epoxy-filled pores) from being drowned by the common grains."""

    def __init__(self, dice_weight: float = 0.0, name: str = "photo_segmentation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        n = int(y_pred.shape[-1])
        index, mask = _labelled(y_true, n)
        one_hot = ops.one_hot(index, n) * mask[..., None]
        count = ops.maximum(ops.sum(mask), 1.0)
        log_p = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        loss = -ops.sum(one_hot * log_p) / count
        if self.dice_weight > 0:
            p = y_pred * mask[..., None]
            intersection = ops.sum(one_hot * p, axis=(0, 1, 2))
            total = ops.sum(one_hot, axis=(0, 1, 2)) + ops.sum(p, axis=(0, 1, 2))
            dice = (2.0 * intersection + SMOOTH) / (total + SMOOTH)
            loss = loss + self.dice_weight * (1.0 - ops.mean(dice))
        # one number per batch (the masked means above already pool the batch)
        return ops.broadcast_to(loss, ops.shape(y_pred)[:1])

    def get_config(self):
        return {**super().get_config(), "dice_weight": self.dice_weight}


@keras.saving.register_keras_serializable(package="ctviewer")
def labelled_accuracy(y_true, y_pred):
    """Share of labelled pixels whose most probable class is right (unlabelled pixels left out)."""
    index, mask = _labelled(y_true, int(y_pred.shape[-1]))
    right = ops.cast(ops.argmax(y_pred, axis=-1) == index, "float32") * mask
    return ops.sum(right) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="ctviewer")
class VGGPreprocessing(keras.layers.Layer):
    """RGB in [0, 1] -> what Keras' ImageNet VGG16 weights expect: BGR, 0..255, channel means removed."""

    def call(self, inputs):
        bgr = ops.flip(ops.cast(inputs, "float32"), axis=-1) * 255.0
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype="float32")

    def compute_output_shape(self, input_shape):
        return input_shape


# -- the network ------------------------------------------------------------------------------------

def build_vgg_unet(n_classes, base_filters=64, dice_weight=0.0, learning_rate=1e-3, encoder_weights=None,
                   dropout=0.0, batch_norm=None):
    """The compiled VGG-UNet (see the module docstring).

    ``base_filters`` 64 is VGG16's width (filters 64..512); narrower encoders are much faster on a CPU.
    ``encoder_weights``: path of a local Keras VGG16 no-top weights file (``.h5`` or ``.weights.h5``),
    only with ``base_filters=64``. ``dropout`` applies once, at the bottom of the U. ``batch_norm``
    (default: on unless ImageNet weights are loaded) puts batch norm between each encoder convolution
    and its ReLU: trained from scratch, the plain VGG encoder learns slowly and unevenly; ImageNet
    weights were trained without it, so they keep VGG16's plain convolutions.
    """
    n_classes, base_filters = int(n_classes), int(base_filters)
    if n_classes < 2:
        raise InputError(f"a photo segmentation network needs at least two classes, not {n_classes}")
    if base_filters < 1:
        raise InputError(f"base_filters must be at least 1, not {base_filters}")
    if not 0.0 <= float(dropout) < 1.0:
        raise InputError(f"dropout must be in [0, 1), not {dropout}")
    if float(dice_weight) < 0:
        raise InputError(f"dice_weight must be 0 or more, not {dice_weight}")
    weights_path = _check_weights_file(encoder_weights, base_filters)

    inputs = keras.Input((None, None, 3), name="photo")
    x = VGGPreprocessing(name="imagenet_preprocessing")(inputs) if weights_path else inputs
    batch_norm = weights_path is None if batch_norm is None else bool(batch_norm)
    skips = []
    for block, (convs, width) in enumerate(zip(BLOCK_CONVS, BLOCK_WIDTHS), start=1):
        for i in range(1, convs + 1):
            name = f"block{block}_conv{i}"
            if batch_norm:
                x = keras.layers.Conv2D(base_filters * width, 3, padding="same", use_bias=False, name=name)(x)
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn{i}")(x)
                x = keras.layers.Activation("relu", name=f"block{block}_relu{i}")(x)
            else:
                x = keras.layers.Conv2D(base_filters * width, 3, padding="same", activation="relu", name=name)(x)
        if block < len(BLOCK_CONVS):
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(float(dropout), name="bottom_dropout")(x)
    for level in reversed(range(len(skips))):
        width = base_filters * BLOCK_WIDTHS[level]
        x = keras.layers.UpSampling2D(2, name=f"dec{level + 1}_up")(x)
        x = keras.layers.Concatenate(name=f"dec{level + 1}_concat")([x, skips[level]])
        x = _conv_bn_relu(x, width, 2, f"dec{level + 1}a")
        x = _conv_bn_relu(x, width, 2, f"dec{level + 1}b")
    # softmax in float32 even under mixed precision: probabilities are blended between tiles
    outputs = keras.layers.Conv2D(n_classes, 1, activation="softmax", dtype="float32", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="vgg_unet")
    if weights_path:
        load_encoder_weights(model, weights_path)
    model.compile(optimizer=keras.optimizers.Adam(float(learning_rate)),
                  loss=PhotoSegmentationLoss(dice_weight=float(dice_weight)), metrics=[labelled_accuracy])
    return model


def _check_weights_file(encoder_weights, base_filters: int) -> Path | None:
    if encoder_weights is None or str(encoder_weights) == "":
        return None
    text = str(encoder_weights)
    # Keras would download "imagenet" (and fetch URLs); this program never downloads anything.
    if text == "imagenet" or "://" in text:
        raise InputError(f"encoder_weights must be a local VGG16 weights file, not '{text}' "
                         f"(nothing is downloaded; save Keras' VGG16 no-top weights to a file and name it)")
    path = Path(text).expanduser()
    if not path.is_file():
        raise InputError("VGG16 encoder weights file not found", path)
    if base_filters != 64:
        raise InputError(f"ImageNet VGG16 weights need base_filters = 64 (VGG16's width), not {base_filters}",
                         path)
    return path


def load_encoder_weights(model, path) -> None:
    """Copy a local Keras VGG16 no-top weights file into ``model``'s encoder, layer by layer (by name)."""
    path = Path(path)
    try:
        vgg = keras.applications.VGG16(include_top=False, weights=str(path), input_shape=(None, None, 3))
    except Exception as exc:  # wrong layout, not HDF5, truncated: Keras' reasons vary
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"not a Keras VGG16 no-top weights file ({reason})", path) from exc
    for name in encoder_layer_names():
        if name.endswith("_pool"):
            continue
        model.get_layer(name).set_weights(vgg.get_layer(name).get_weights())

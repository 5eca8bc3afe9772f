"""The L3/T12 slice locator: a network that turns projection images into a heatmap over body height.

The network is the kind both seed projects use: a 2-D encoder over the frontal and sagittal projections
(stacked as two channels on a common width, see :func:`stack_projections`), a maximum over the image
width, and a 1-D decoder back to full height with one sigmoid channel per level (L3, T12). Each output
row says how likely that row (1 mm of the body's height) is the centre of the level's vertebral body.
The pick is the best row; its value is the confidence, and a level whose peak stays below the model
card's threshold is "not in scan".

The network is fully convolutional along the height: a whole scan goes in at once, padded at the
bottom to a multiple of the encoder stride, and :class:`Locator` cuts that padding off the heatmap
again (the thesis forgot to).

This module imports Keras (it registers the custom layer for ``safe_mode=True`` loading), so code that
starts the CLI or the GUI imports it lazily, where a model is actually used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctviewer.ml import backend
from ctviewer.ml.heatmap import best_row

keras = backend.keras()
ops = keras.ops

#: Name of the shipped model in ``models/`` (``slice_locator.keras`` + ``slice_locator.json``).
SHIPPED_NAME = "slice_locator"
TASK = "slice_locator"
DEFAULT_LEVELS = ("L3", "T12")
DEFAULT_WIDTH_PX = 256
DEFAULT_DEPTH = 4


@keras.saving.register_keras_serializable(package="ctviewer")
class MaxOverWidth(keras.layers.Layer):
    """[batch, rows, cols, channels] -> [batch, rows, channels]: the strongest response across the width.

    The level of a slice does not depend on where across the body a feature lies, only on its height;
    taking the maximum makes the decoder one-dimensional and the model indifferent to the image width.
    """

    def call(self, x):
        return ops.max(x, axis=2)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[3])


def _conv2d(x, filters: int, name: str):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _conv1d(x, filters: int, name: str, dilation: int = 1, kernel: int = 3):
    x = keras.layers.Conv1D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def build_locator(levels=DEFAULT_LEVELS, width_px: int | None = DEFAULT_WIDTH_PX, base_filters: int = 16,
                  depth: int = DEFAULT_DEPTH, channels: int = 2, context_dilations=(1, 2, 4, 8),
                  learning_rate: float = 1e-3, decay_steps: int | None = None, compile: bool = True):
    """The locator network (compiled with Adam and binary cross-entropy unless ``compile=False``).

    Input ``[batch, rows, width_px, channels]`` with rows a multiple of ``2**depth``; output
    ``[batch, rows, len(levels)]`` in 0..1. The bottleneck's dilated 1-D convolutions see several
    hundred mm of height, enough to count vertebrae from the ribs or the pelvis. With ``decay_steps``
    the learning rate falls along a cosine to 5 % over that many batches (finer peaks at the end).
    """
    inputs = keras.Input((None, width_px, channels), name="projections")
    x, skips = inputs, []
    for d in range(depth):
        f = base_filters * 2 ** d
        x = _conv2d(x, f, f"enc{d}a")
        if d > 0:  # full resolution gets one convolution only: it is the costly one on a CPU
            x = _conv2d(x, f, f"enc{d}b")
        skips.append(MaxOverWidth(name=f"rows{d}")(x))
        x = keras.layers.MaxPooling2D(2, name=f"pool{d}")(x)
    x = _conv2d(x, base_filters * 2 ** depth, "bottom")
    x = MaxOverWidth(name=f"rows{depth}")(x)
    width = base_filters * 2 ** depth
    for i, dil in enumerate(context_dilations):  # residual dilated context along the height
        x = keras.layers.Add(name=f"context{i}_add")([x, _conv1d(x, width, f"context{i}", dilation=dil)])
    for d in reversed(range(depth)):
        f = base_filters * 2 ** d
        x = keras.layers.UpSampling1D(2, name=f"up{d}")(x)
        x = keras.layers.Concatenate(name=f"skip{d}")([x, skips[d]])
        x = _conv1d(x, max(f, 16), f"dec{d}a")
        x = _conv1d(x, max(f, 16), f"dec{d}b")
    outputs = keras.layers.Conv1D(len(levels), 1, activation="sigmoid", name="heatmap")(x)
    model = keras.Model(inputs, outputs, name="slice_locator")
    if compile:
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=0.05) \
            if decay_steps else learning_rate
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=masked_binary_crossentropy,
                      metrics=[peak_error_rows])
    return model


# -- input preparation (shared by training and inference, so both see the same image) ----------------

def centre_crop(image: np.ndarray, centre_col: float, width: int) -> np.ndarray:
    """Columns ``width`` wide centred on ``centre_col``; zeros (air) where the image is narrower."""
    rows, cols = image.shape
    start = int(round(centre_col - width / 2))
    out = np.zeros((rows, width), dtype=np.float32)
    lo, hi = max(start, 0), min(start + width, cols)
    if hi > lo:
        out[:, lo - start:hi - start] = image[:, lo:hi]
    return out


def stack_projections(frontal: np.ndarray, sagittal: np.ndarray, centre_cols, width: int) -> np.ndarray:
    """The network's input for one scan: ``[rows, width, 2]`` float32 (frontal, sagittal), each centred
    on the body centre column so that the spine sits near the middle whatever the field of view."""
    return np.stack([centre_crop(frontal, centre_cols[0], width),
                     centre_crop(sagittal, centre_cols[1], width)], axis=-1)


def pad_rows(image: np.ndarray, multiple: int, minimum: int = 0) -> np.ndarray:
    """Zero rows added at the bottom (feet) so the height is a multiple of the encoder stride."""
    rows = image.shape[0]
    target = max(int(np.ceil(rows / multiple)) * multiple, int(np.ceil(minimum / multiple)) * multiple)
    if target == rows:
        return image
    pad = [(0, target - rows)] + [(0, 0)] * (image.ndim - 1)
    return np.pad(image, pad)


def predict_rows(model, frontal, sagittal, centre_cols, width_px: int = DEFAULT_WIDTH_PX,
                 stride: int = 2 ** DEFAULT_DEPTH, min_rows: int = 0) -> np.ndarray:
    """``[rows, levels]`` heatmap of one scan's projections: the input padded for the network, the
    padding cut off the output again so that row r of the heatmap is row r of the projections."""
    rows = frontal.shape[0]
    x = pad_rows(stack_projections(frontal, sagittal, centre_cols, width_px), stride, min_rows)[None]
    return ops.convert_to_numpy(model(x, training=False))[0, :rows].astype(np.float32)


@dataclass(frozen=True)
class Peak:
    """The best row of one level's heatmap: row (fractional, refined around the maximum) and confidence."""

    level: str
    row: float
    confidence: float
    in_scan: bool


def find_peak(heatmap: np.ndarray, threshold: float, level: str = "") -> Peak:
    """The highest row of a heatmap (refined between rows, :func:`ctviewer.ml.heatmap.best_row`)."""
    row, confidence = best_row(heatmap)
    return Peak(level, row, confidence, bool(np.isfinite(row) and confidence >= threshold))   # empty: never in scan


# -- inference ----------------------------------------------------------------------------------------

class Locator:
    """A trained locator model with its card: projections in, per-level heatmaps and peaks out."""

    def __init__(self, model, card):
        self.model = model
        self.card = card
        outputs = card.outputs or {}
        inputs = card.inputs or {}
        self.levels: tuple[str, ...] = tuple(outputs.get("levels", DEFAULT_LEVELS))
        self.threshold: float = float(outputs.get("threshold", 0.3))
        self.width_px: int = int(inputs.get("width_px", DEFAULT_WIDTH_PX))
        self.stride: int = int(inputs.get("row_multiple", 2 ** DEFAULT_DEPTH))
        self.min_rows: int = int(inputs.get("min_rows", 0))

    @classmethod
    def load(cls, name_or_path: str | Path | None = None) -> "Locator":
        """The named model (default: the shipped ``slice_locator``), refused unless its card says slice_locator."""
        from ctviewer.ml import registry

        model, card = registry.load_model(name_or_path or SHIPPED_NAME, task=TASK)
        return cls(model, card)

    @property
    def name(self) -> str:
        return self.card.name

    def input_for(self, projections) -> np.ndarray:
        """The padded network input ``[rows', width, 2]`` for a :class:`Projections`."""
        image = stack_projections(projections.frontal, projections.sagittal, projections.body_centre_col,
                                  self.width_px)
        return pad_rows(image, self.stride, self.min_rows)

    def heatmaps(self, projections) -> dict[str, np.ndarray]:
        """Per level, one value in 0..1 per projection row (the padding added for the network removed)."""
        y = predict_rows(self.model, projections.frontal, projections.sagittal, projections.body_centre_col,
                         self.width_px, self.stride, self.min_rows)
        return {level: y[:, i] for i, level in enumerate(self.levels)}

    def peaks(self, projections) -> dict[str, Peak]:
        """Per level, the best row and whether it clears the card's threshold."""
        return {level: find_peak(h, self.threshold, level) for level, h in self.heatmaps(projections).items()}


# -- training objective ---------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="ctviewer")
def masked_binary_crossentropy(y_true, y_pred):
    """Binary cross-entropy per row and level, leaving out levels whose truth is unknown (NaN targets:
    a reviewed study where only one level was confirmed)."""
    known = ops.logical_not(ops.isnan(y_true))
    target = ops.where(known, y_true, ops.zeros_like(y_true))  # no NaN may reach the gradient
    p = ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
    bce = -(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p))
    weight = ops.cast(known, y_pred.dtype)
    return ops.sum(bce * weight, axis=(1, 2)) / ops.maximum(ops.sum(weight, axis=(1, 2)), 1.0)


@keras.saving.register_keras_serializable(package="ctviewer")
def peak_error_rows(y_true, y_pred):
    """Mean distance (rows = mm) between the predicted and the true peak, over levels in the window."""
    present = ops.cast(ops.max(ops.where(ops.isnan(y_true), 0.0, y_true), axis=1) > 0.5, "float32")
    true_row = ops.cast(ops.argmax(ops.where(ops.isnan(y_true), 0.0, y_true), axis=1), "float32")
    pred_row = ops.cast(ops.argmax(y_pred, axis=1), "float32")
    error = ops.abs(true_row - pred_row) * present
    return ops.sum(error, axis=1) / ops.maximum(ops.sum(present, axis=1), 1.0)

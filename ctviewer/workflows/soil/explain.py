"""What a soil_fraction network looks at: Grad-CAM heatmaps and activation maps, for a slice or a cube.

After the seed's ``model_analyse.py`` (``--method heatmap|activation``, ``--layer``, ``--slice``,
``--thresh``), without its faults: the Grad-CAM map stays float32 (the seed cast a min-max scaled map to
uint8 through a colour map, and wrapped around where it was blank), is upsampled bilinearly with pixel
centres aligned, and keeps its sign on request (``relu=False``, as the seed showed it); the activation
grid is laid out for any number of channels (the seed's ``int(sqrt(n))`` rows lost channels or crashed).

Grad-CAM (Selvaraju et al. 2017) of a regressor: the gradient of the model's output (the seed's
``1 - fraction``) with respect to a convolution's activations, averaged over space, weights that
layer's channels; their weighted sum is the map. Positive where the layer's features raise the output,
negative (seen with ``relu=False``) where they lower it, i.e. where the chosen object is.

A model is refused, with both sizes in the message, when its input size is not the cube's slice size:
cropping or padding silently would explain a different image than the user is looking at; build the
cube at the model's size instead (the model card's ``inputs.size``).
"""

from __future__ import annotations

import math

import numpy as np

from ctviewer.errors import InputError
from ctviewer.progress import no_progress
from ctviewer.workflows.soil.task import DEFAULT_CHANNELS, object_ids, slice_channels, value_range

#: Slices per Grad-CAM batch in grad_cam_volume (a 200x200 slice through a narrow VGG16: a few MB each).
VOLUME_BATCH = 8


def card_channels(card) -> tuple:
    """The density-bin groups a model was trained on (its card's ``inputs.channels``)."""
    return tuple(tuple(group) for group in card.inputs.get("channels", DEFAULT_CHANNELS))


def slice_input(cube, index: int, channels=DEFAULT_CHANNELS, span=None) -> np.ndarray:
    """The network's input for slice ``index`` of ``cube`` (a Volume or ``[z, y, x]`` array): float32
    ``[y, x, 3]``, the channels of training (see :mod:`ctviewer.workflows.soil.task`). The density bins
    span the whole cube's values (``span`` = (lowest, highest), found when not given)."""
    from ctviewer.data.labels import LabelMap

    if isinstance(cube, LabelMap):
        raise InputError("the network's input needs the cube's values, not only its density objects")
    values = np.asarray(getattr(cube, "array", cube))
    if values.ndim != 3:
        raise InputError(f"a soil cube is a [z, y, x] volume, not an array of shape {values.shape}")
    if not 0 <= int(index) < values.shape[0]:
        raise InputError(f"slice {index} is outside the cube (slices 0..{values.shape[0] - 1})")
    span = value_range(values) if span is None else span
    plane = values[int(index)]
    return slice_channels(plane, object_ids(plane, span), span, channels)


def conv_layers(model) -> list[str]:
    """The model's 2-D convolutions, in order (``block1_conv1`` ... ``block5_conv3`` for the VGG16)."""
    from ctviewer.ml.backend import keras

    conv = keras().layers.Conv2D
    return [layer.name for layer in model.layers if isinstance(layer, conv)]


def _check_layer(model, layer: str) -> None:
    names = conv_layers(model)
    if layer not in names:
        raise InputError(f"'{layer}' is not a convolutional layer of this model; its convolutional layers: "
                         f"{', '.join(names) or 'none'}")


def _batch(model, image) -> np.ndarray:
    """``image`` as a float32 batch ``[b, y, x, c]``, checked against the model's input size."""
    batch = np.asarray(image, dtype=np.float32)
    batch = batch[None] if batch.ndim == 3 else batch
    want = tuple(model.inputs[0].shape[1:])
    if batch.ndim != 4 or any(w is not None and w != g for w, g in zip(want, batch.shape[1:])):
        size = "x".join("any" if w is None else str(w) for w in want[:2])
        got = f"{batch.shape[1]}x{batch.shape[2]} with {batch.shape[3]}" if batch.ndim == 4 else f"shaped {batch.shape},"
        raise InputError(f"the model takes {size} slices with {want[2]} channels but the input is {got} "
                         f"channels; build the cube at the model's size")
    return batch


def _parts(model, layer: str):
    """(input -> the layer's activations, the layer's activations -> the output) as two models."""
    from ctviewer.ml.backend import keras

    _check_layer(model, layer)
    k = keras()
    activations = model.get_layer(layer).output
    return k.Model(model.inputs[0], activations), k.Model(activations, model.outputs[0])


def _grad_cams(front, back, batch: np.ndarray, relu: bool) -> np.ndarray:
    from skimage.transform import resize

    from ctviewer.ml.backend import keras, value_and_gradient

    acts = keras().ops.convert_to_numpy(front(batch, training=False))
    _, grads = value_and_gradient(lambda a: back(a, training=False), acts)
    weights = grads.mean(axis=(1, 2))                         # [b, channels]
    cams = np.einsum("byxc,bc->byx", acts, weights)
    if relu:
        cams = np.maximum(cams, 0)
    # order=1 is bilinear with pixel centres aligned (as cv2.resize); no anti-aliasing when enlarging
    return np.stack([resize(c, batch.shape[1:3], order=1, mode="edge", anti_aliasing=False) for c in cams]
                    ).astype(np.float32)


def grad_cam(model, image, layer: str, relu: bool = True) -> np.ndarray:
    """Grad-CAM of ``layer`` for one input ``[y, x, 3]``: float32 ``[y, x]``, in the model output's units
    per activation (not rescaled; signed when ``relu`` is False)."""
    batch = _batch(model, image)
    front, back = _parts(model, layer)
    return _grad_cams(front, back, batch[:1], relu)[0]


def grad_cam_volume(model, cube, layer: str, relu: bool = True, channels=DEFAULT_CHANNELS,
                    progress=None, cancel=None) -> np.ndarray:
    """Grad-CAM of every slice of ``cube`` (Volume or ``[z, y, x]``): float32 ``[z, y, x]``, one scale
    for all slices (the raw maps), so slices can be compared."""
    progress = progress or no_progress
    values = np.asarray(getattr(cube, "array", cube))
    span = value_range(values)
    front, back = _parts(model, layer)
    _batch(model, np.zeros((1,) + values.shape[1:] + (3,), np.float32))   # size check before any work
    out = np.empty(values.shape, dtype=np.float32)
    for start in range(0, values.shape[0], VOLUME_BATCH):
        if cancel is not None:
            cancel.raise_if_cancelled()
        stop = min(start + VOLUME_BATCH, values.shape[0])
        progress(start / values.shape[0], f"Grad-CAM of slices {start + 1}-{stop} of {values.shape[0]}")
        batch = np.stack([slice_input(values, z, channels, span) for z in range(start, stop)])
        out[start:stop] = _grad_cams(front, back, batch, relu)
    progress(1.0, "Grad-CAM done")
    return out


def activation_maps(model, image, layer: str, thresh: float) -> list[tuple[int, np.ndarray]]:
    """``(channel, map)`` for each channel of ``layer`` whose activation sum over the slice exceeds
    ``thresh`` (the seed's ``--thresh``); maps are float32 at the layer's resolution."""
    from ctviewer.ml.backend import keras

    batch = _batch(model, image)
    front, _ = _parts(model, layer)
    acts = keras().ops.convert_to_numpy(front(batch[:1], training=False))[0].astype(np.float32)
    sums = acts.sum(axis=(0, 1))
    return [(int(c), acts[..., c]) for c in np.flatnonzero(sums > thresh)]


def grid_shape(count: int, columns: int | None = None) -> tuple[int, int]:
    """(rows, columns) for ``count`` cells: near-square (columns = ceil(sqrt(count))) unless given."""
    if count < 1:
        raise InputError("no activation maps to lay out: no channel is above the threshold")
    columns = max(1, min(int(columns), count)) if columns else math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def activation_grid(maps, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """One float32 image of the maps (``(channel, map)`` pairs or arrays) in a grid, row by row: each
    map scaled to 0..1 by its own range (a constant map is 0); gaps and unused cells are NaN (blank)."""
    arrays = [np.asarray(m[1] if isinstance(m, tuple) else m, dtype=np.float32) for m in maps]
    rows, cols = grid_shape(len(arrays), columns)
    h, w = arrays[0].shape
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for i, a in enumerate(arrays):
        if a.shape != (h, w):
            raise InputError(f"activation maps differ in size ({a.shape} and {(h, w)}): one layer's maps only")
        lo, hi = float(a.min()), float(a.max())
        r, c = divmod(i, cols)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = (a - lo) / (hi - lo) if hi > lo else 0
    return grid

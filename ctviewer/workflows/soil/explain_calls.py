"""What the soil dock's explain panel asks the model process: plain arrays and a model path in, arrays out.

These functions run in :func:`ctviewer.ml.child.shared_process` (the GUI never imports Keras). The
explanation itself is :mod:`ctviewer.workflows.soil.explain`; this module loads the model once (kept
between calls until its file changes), adds the model's own prediction for the
slice, and hands the results back as numpy arrays.
"""

from __future__ import annotations

import numpy as np

TASK = "soil_fraction"


def _loaded(model_path: str):
    """(model, card), loaded once while the file stays the same."""
    from ctviewer.ml import registry

    return registry.load_model_kept(model_path, task=TASK)


def _model(model_path: str):
    return _loaded(model_path)[0]


def _fraction(model, image: np.ndarray) -> float:
    from ctviewer.ml.backend import keras

    out = model(np.asarray(image, np.float32)[None], training=False)
    return float(np.asarray(keras().ops.convert_to_numpy(out)).reshape(-1)[0])


def explain_slice(model_path: str, image: np.ndarray, layer: str, method: str = "gradcam", relu: bool = True,
                  thresh: float = 0.0, cancel=None) -> dict:
    """One slice input [h, w, 3]: ``heatmap`` (Grad-CAM, float32, signed when ``relu`` is off) or ``grid``
    and ``channels`` (activation maps over ``thresh``), and ``fraction``, the model's output for the slice."""
    from ctviewer.workflows.soil import explain

    model = _model(model_path)
    if cancel is not None:   # loading may have taken a while: the user may have given up meanwhile
        cancel.raise_if_cancelled()
    result: dict = {"method": method, "layer": layer}
    # the explanation first: it names a wrong input size or layer in the core's words
    if method == "activation":
        maps = explain.activation_maps(model, image, layer, thresh)
        result["channels"] = [int(channel) for channel, _ in maps]
        result["grid"] = np.asarray(explain.activation_grid(maps), np.float32) if maps else None
    else:
        result["heatmap"] = np.asarray(explain.grad_cam(model, image, layer, relu=relu), np.float32)
    result["fraction"] = _fraction(model, image)
    return result


def explain_volume(model_path: str, cube, layer: str, relu: bool = True, progress=None, cancel=None) -> np.ndarray:
    """Grad-CAM of every slice of ``cube`` (float32 [z, y, x]; signed when ``relu`` is off)."""
    from ctviewer.workflows.soil import explain

    model, card = _loaded(model_path)
    heat = explain.grad_cam_volume(model, cube, layer, relu=relu, channels=explain.card_channels(card),
                                   progress=progress, cancel=cancel)
    return np.asarray(heat, np.float32)

"""What the explain panel runs and builds: worker bodies that call the model process, and the layers
that show their answers. No Qt here.

The slice input (the three density-bin channels the model was trained on) is made here, so only one
200×200×3 slice crosses to the model process per explanation; the Grad-CAM volume sends the cube.
"""

from __future__ import annotations

import numpy as np

from ctviewer.data.layers import HeatmapLayer
from ctviewer.errors import InputError

CALLS = "ctviewer.workflows.soil.explain_calls"
TASK = "soil_fraction"


def soil_models() -> list:
    from ctviewer.ml import registry

    return registry.list_models(TASK)


def conv_layers(model_path: str, progress=None, cancel=None) -> list[str]:
    """The model's 2-D convolutions in order, read from the ``.keras`` file's architecture (a JSON member
    of the zip): listing them must not start the model process (TensorFlow, seconds) when the app opens."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read the model's layers ({exc.__class__.__name__})", model_path) from None
    names = []

    def walk(layer):
        if layer.get("class_name") == "Conv2D":
            names.append(layer["config"]["name"])
        for inner in (layer.get("config") or {}).get("layers", []):
            walk(inner)

    walk(config)
    return names


def explain_slice(volume, index: int, entry, layer: str, method: str, relu: bool, thresh: float,
                  progress=None, cancel=None) -> dict:
    """Worker body: the explanation of axial slice ``index`` by the registry ``entry``'s model (see
    ``explain_calls.explain_slice``), its input made from the density bins the model was trained on."""
    from ctviewer.ml.child import shared_process
    from ctviewer.workflows.soil.explain import card_channels, slice_input

    image = slice_input(volume, index, card_channels(entry.card))
    if progress:
        progress(0.2, "running the model")
    result = shared_process().call(f"{CALLS}:explain_slice", str(entry.path), image, layer, method, bool(relu),
                                   float(thresh), cancel=cancel)
    result["index"] = int(index)
    return result


def explain_volume(volume, model_path: str, layer: str, relu: bool = True, progress=None, cancel=None) -> np.ndarray:
    """Worker body: Grad-CAM of every slice, computed slice by slice in the model process (only the
    voxels cross: the cube's array, not its metadata)."""
    from ctviewer.ml.child import shared_process

    return shared_process().call(f"{CALLS}:explain_volume", str(model_path), volume.array, layer, bool(relu),
                                 progress=progress, cancel=cancel)


#: A Grad-CAM volume's colour map tops out at this percentile of |values|: its slices are not scaled
#: alike, and a few hot voxels at the maximum left the rest of the cube (and its 3D cloud) dark.
VOLUME_TOP_PERCENTILE = 99.5


def heat_range(values: np.ndarray, signed: bool, percentile: float = 100.0) -> tuple[float, float]:
    """Colour-map limits: 0..top for a ReLU map, symmetric about 0 for a signed one; top is the
    ``percentile`` of |values| (the maximum by default)."""
    top = float(np.nanpercentile(np.abs(values), percentile)) if values.size else 0.0
    if not top > 0 and values.size:
        top = float(np.nanmax(np.abs(values)))
    top = top if top > 0 else 1.0
    return (-top, top) if signed else (0.0, top)


def slice_heatmap(study, index: int, heat: np.ndarray, previous: HeatmapLayer | None, name: str,
                  signed: bool) -> HeatmapLayer:
    """``heat`` [y, x] on slice ``index`` of a heatmap layer on the study's grid: ``previous`` (the
    same model, layer and sign) gains the slice, else a new layer. Slices not explained yet hold NaN,
    which the views draw transparent (zeros would lay the colour map's darkest colour as a veil over
    every other slice and across the coronal and sagittal views)."""
    shape = study.image.shape
    if heat.shape != shape[1:]:   # the core refuses a model of another size: this is a bug, not the user's
        raise ValueError(f"the heatmap is {heat.shape} but the slice is {shape[1:]}")
    if previous is None or previous.array.shape != shape:
        values = study.image.with_array(np.full(shape, np.nan, np.float32), window=None, modality="", name=name, source="")
        layer = HeatmapLayer(values, name=name, colormap="CET-D1" if signed else "inferno",
                             value_range=(0.0, 1.0), opacity=0.5)
    else:
        layer = previous
    layer.array[index] = heat
    _, top = heat_range(heat, signed)
    if layer is previous:   # the colours of the slices explained before stay comparable
        top = max(top, layer.value_range[1])
    layer.value_range = (-top, top) if signed else (0.0, top)
    layer.changed.emit("values")
    return layer


def volume_heatmap(study, heat: np.ndarray, name: str, signed: bool) -> HeatmapLayer:
    values = study.image.with_array(heat, window=None, modality="", name=name, source="")
    return HeatmapLayer(values, name=name, colormap="CET-D1" if signed else "inferno",
                        value_range=heat_range(heat, signed, VOLUME_TOP_PERCENTILE), opacity=0.5, in_3d=True)

"""A tiny untrained soil_fraction regressor for the explain-panel test.

``save_small_soil_model`` imports Keras: it runs only in the model process (ModelProcess), never in the GUI
test process (TensorFlow there would crash VTK)."""

from __future__ import annotations


def card_fields(name: str, size: int) -> dict:
    return {"name": name, "task": "soil_fraction", "version": "1",
            "inputs": {"kind": "soil_slices", "size": size, "channels": [[1, 2], [3, 4], [5, 6]]},
            "outputs": {"object": 1, "object_ids": [1], "value": "1 - fraction of the slice's voxels in object 1"}}


def save_small_soil_model(folder: str, name: str = "small-soil", size: int = 200) -> str:
    """An untrained VGG16-style regressor two filters wide for ``size``×``size``×3 slices (run in a child)."""
    from ctviewer.ml import registry
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.vgg16 import build_vgg16_regressor

    model = build_vgg16_regressor(input_shape=(size, size, 3), base_filters=2, dense=4, dropout=0.0)
    return str(registry.save_model(model, ModelCard(**card_fields(name, size)), folder).path)

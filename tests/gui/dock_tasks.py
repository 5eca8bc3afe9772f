"""Tasks the model-dock tests train, imported only in the training child (through $CTVIEWER_TASK_MODULES):
they import Keras, which must stay out of the GUI test process."""

from __future__ import annotations

import dataclasses

from tests.unit import ml_tiny_task


class TaskBug(RuntimeError):
    pass


def broken_data(config, progress=None, cancel=None):
    raise TaskBug("the data loader of this task is broken")


#: The tiny task under a name of our own, and a variant whose data loader fails (a bug in a task).
DOCK_TINY = dataclasses.replace(ml_tiny_task.TASK, name="dock_tiny")
DOCK_BROKEN = dataclasses.replace(ml_tiny_task.TASK, name="dock_broken", load_data=broken_data)


def save_small_locator(folder: str) -> str:
    """An untrained small locator whose threshold 0 places every level in the scan (run in a child)."""
    from ctviewer.ml import registry
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.locator import build_locator

    model = build_locator(width_px=64, base_filters=4, depth=2, context_dilations=(1,), compile=False)
    entry = registry.save_model(model, ModelCard(name="small-locator", task="slice_locator",
                                                 inputs={"width_px": 64, "row_multiple": 4},
                                                 outputs={"levels": ["L3", "T12"], "threshold": 0.0}), folder)
    return str(entry.path)


def save_small_unet(folder: str) -> str:
    """An untrained small 2-D U-Net whose threshold 0 paints every voxel as liver (run in a child)."""
    from ctviewer.ml import registry
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.unet import build_unet_2d

    model = build_unet_2d(filters=(4, 8))
    card = ModelCard(name="small-liver", task="segmentation_2d",
                     inputs={"kind": "volume", "dims": 2, "window_hu": [-1000, 400], "spacing_mm": [None, 8.0, 8.0],
                             "multiple": 2},
                     outputs={"groups": [{"name": "liver", "ids": [5], "label_id": 5}], "threshold": 0.0})
    return str(registry.save_model(model, card, folder).path)

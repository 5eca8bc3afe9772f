"""Model cards and a tiny untrained VGG-UNet for the thin-section dock tests.

``save_small_vgg_unet`` imports Keras: it runs only in a child process (ModelProcess), never in the GUI
test process (TensorFlow there would crash VTK)."""

from __future__ import annotations

import json
from pathlib import Path


def thin_section_classes(table=None) -> list[dict]:
    from ctviewer.imaging.bins import thin_section_table

    return [{"id": lab.id, "name": lab.name, "colour": list(lab.colour)} for lab in (table or thin_section_table())]


def card(name: str, classes: list[dict]) -> dict:
    return {"name": name, "task": "thin_section", "version": "1", "inputs": {"kind": "rgb_photo"},
            "outputs": {"classes": classes, "porosity_class": 3}}


def write_card_only(folder, name: str, classes: list[dict]) -> Path:
    """A registry entry whose .keras is not a network: enough for the model list and for refusals that
    happen before the network is loaded."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(card(name, classes)))
    path = folder / f"{name}.keras"
    path.write_bytes(b"not a network")
    return path


def save_small_vgg_unet(folder: str) -> str:
    """An untrained VGG-UNet with base 4 filters and the five thin-section classes (run in a child)."""
    from ctviewer.ml import registry
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.vgg_unet import build_vgg_unet

    fields = card("small-vggunet", thin_section_classes())
    model = build_vgg_unet(5, base_filters=4)
    entry = registry.save_model(model, ModelCard(**fields), folder)
    return str(entry.path)

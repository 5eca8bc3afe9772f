"""What the pores panel runs and reads: no Qt here (the worker bodies run on pool threads).

The numbers come from :mod:`ctviewer.workflows.soil.pores` (the same as ``ctviewer soil pores``); this
module only chooses what to measure from the study's label layers and turns the statistics into the
points the plots draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PORES_ID = 1   # density object 1: the darkest voxels, the pores (OBJECT_NAMES[1])
OBJECTS_LAYER = "density objects"


@dataclass(frozen=True)
class LabelChoice:
    """One label id of one label layer, as the chooser lists it."""

    layer: object
    label: int
    text: str


def label_choices(study) -> list[LabelChoice]:
    """Every id of every label layer (topmost layer first), named as its table names it."""
    choices = []
    for layer in reversed(study.layers.by_kind("labels") if study is not None else []):
        for label in layer.labels.table.ids:
            choices.append(LabelChoice(layer, label, f"{layer.labels.table.name(label)} ({label}) — {layer.name}"))
    return choices


def default_choice(choices: list[LabelChoice]) -> int:
    """Index of the pores: id 1 of the topmost layer that has it, else the first entry."""
    return next((n for n, c in enumerate(choices) if c.label == PORES_ID), 0)


def measure(array: np.ndarray, spacing, label: int, connectivity: int, progress=None, cancel=None):
    """Worker body: the pore statistics of ``label`` in ``array``."""
    from ctviewer.workflows.soil.pores import pore_stats

    return pore_stats(array, spacing, label=label, connectivity=connectivity, progress=progress, cancel=cancel)


def split_objects(volume, progress=None, cancel=None):
    """Worker body: the study's density objects 1–6 (the seed's six equal-width bins) as a label map."""
    from ctviewer.workflows.soil.objects import density_objects

    return density_objects(volume, progress=progress, cancel=cancel)


def depth_profile(stats, slice_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(depth of each slice in mm below the top of the cube, porosity of that slice in %)."""
    porosity = np.asarray(stats.porosity_by_slice, dtype=float) * 100.0
    return np.arange(len(porosity)) * float(slice_mm), porosity


def depth_to_slice(depth_mm: float, slice_mm: float, slices: int) -> int:
    return int(np.clip(round(depth_mm / float(slice_mm)), 0, slices - 1))


def size_distribution(stats) -> tuple[np.ndarray, np.ndarray]:
    """(bin edges in mm, pore voxels per bin) of the local-thickness histogram."""
    return np.asarray(stats.thickness_edges_mm, dtype=float), np.asarray(stats.thickness_counts, dtype=float)


def cluster_rows(stats, top: int = 20) -> list[str]:
    """The largest clusters first: their volume and their share of the pore space."""
    volumes = np.asarray(stats.cluster_volumes_mm3, dtype=float)
    total = float(volumes.sum()) or 1.0
    return [f"{n}.  {v:.4g} mm³  ({100.0 * v / total:.1f} % of the pores)"
            for n, v in enumerate(volumes[:top], start=1)]

"""Running a segmentation model on a scan: from HU on the scan's grid to a label map on the same grid.

The model card says how the network sees a scan (``inputs``: window, working spacing, 2-D slices or
3-D patches) and what its output channels mean (``outputs.groups``: name, the label ids it was
trained on, the label id it paints). :func:`segment_volume` is Keras-free — it takes any
``predict_fn`` on numpy batches — so the same steps serve ``ctviewer segment``, the training task's
evaluation and the model dock's child process (:func:`segment`).

Steps: window to [0, 1] → resample to the working spacing (anti-aliased) → slice-wise or
sliding-window prediction → probabilities resampled back to the scan's grid (linear) → threshold →
the clean-up the card asks for per group (``drop_islands``: pieces smaller than that fraction of the
largest go; ``grow``: the boundary grown a few mm into voxels of the organ's HU, as real scans'
outer shells are missed; ``fill_holes``: enclosed cavities are filled) → optionally only the largest connected part
of each group (``keep_largest``, the CLI's ``--largest``) → one label map (later groups win overlaps).
A vertebrae model's one class is then split into vertebrae by level (26 S1 … 50 C1, TotalSegmentator's
ids) with the classical vertebra count (:func:`add_levels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.progress import no_progress

SEGMENTATION_TASKS = ("segmentation_2d", "segmentation_3d")


@dataclass
class SegSettings:
    """What a segmentation model's card says about its input and output."""

    dims: int = 2
    window: tuple[float, float] = (-1000.0, 400.0)
    #: Working spacing (z, y, x) in mm; ``None`` for an axis keeps the scan's own (2-D models keep z).
    spacing_mm: tuple[float | None, float | None, float | None] = (None, 3.0, 3.0)
    patch: tuple[int, int, int] = (32, 64, 64)
    multiple: int = 16
    #: Share of a patch that overlaps its neighbour (3-D): 0.25 keeps 256³ under a minute on 2 CPUs
    #: (benchmarks/RESULTS.md); 0.5 blends more patches per voxel at 2.3x the time.
    overlap: float = 0.25
    groups: list[dict] = field(default_factory=lambda: [{"name": "liver", "ids": [5], "label_id": 5}])
    threshold: float = 0.5

    @classmethod
    def from_card(cls, card) -> "SegSettings":
        inputs, outputs = card.inputs or {}, card.outputs or {}
        groups = outputs.get("groups")
        if not groups:
            raise InputError(f"model '{card.name}' has no output groups in its card: it cannot paint labels")
        spacing = inputs.get("spacing_mm", (None, 3.0, 3.0))
        return cls(dims=int(inputs.get("dims", 2)), window=tuple(inputs.get("window_hu", (-1000.0, 400.0))),
                   spacing_mm=tuple(None if s is None else float(s) for s in spacing),
                   patch=tuple(int(p) for p in inputs.get("patch", (32, 64, 64))),
                   multiple=int(inputs.get("multiple", 16)), overlap=float(inputs.get("overlap", 0.25)),
                   groups=list(groups),
                   threshold=float(outputs.get("threshold", 0.5)))

    def working_spacing(self, scan_spacing) -> tuple[float, float, float]:
        return tuple(float(scan) if want is None else float(want) for want, scan in zip(self.spacing_mm, scan_spacing))


@dataclass
class SegmentResult:
    labels: np.ndarray              # on the scan's grid; 0 = background
    groups: list[dict]              # {"name", "ids", "label_id"[, "colour"]} per label painted
    voxels: dict[str, int]          # painted voxels per group
    #: What a reader must know about the labels: the vertebrae's levels and where they come from, or
    #: why the vertebrae kept one class ('' for other models).
    note: str = ""
    #: The card's groups where ``groups`` differ from them (vertebrae split into levels), for scoring
    #: the model as it was trained; None where they are the same.
    model_groups: list[dict] | None = None


def check_scan(volume, where: str | Path) -> None:
    if volume.is_photo or volume.array.ndim != 3:
        raise InputError("is a photo, not a CT scan: segmentation models read CT volumes", where)


def segment_volume(volume, predict_fn, settings: SegSettings, keep_largest: bool = False,
                   progress=None, cancel=None) -> SegmentResult:
    """Segment ``volume`` (HU) with ``predict_fn`` as described by ``settings`` (see the module docstring)."""
    from ctviewer.workflows.segmentation.inference import (drop_islands, fill_holes, grow_into,
                                                           largest_component, predict_sliding_window,
                                                           predict_slices)
    from ctviewer.workflows.segmentation.prepare import resample, resample_to_shape, window01

    progress = progress or no_progress
    check_scan(volume, volume.source or volume.name or "the scan")
    progress(0.0, "preparing the scan")
    image = window01(volume.array, settings.window)
    working = settings.working_spacing(volume.spacing)
    image = resample(image, volume.spacing, working, order=1)
    if cancel is not None:
        cancel.raise_if_cancelled()

    def part(fraction, message=""):
        progress(0.05 + 0.85 * fraction, message or "predicting")

    if settings.dims == 2:
        probs = predict_slices(image, predict_fn, multiple=settings.multiple, progress=part, cancel=cancel)
    else:
        probs = predict_sliding_window(image, predict_fn, patch=settings.patch, multiple=settings.multiple,
                                       overlap=settings.overlap, progress=part, cancel=cancel)
    del image
    progress(0.9, "back to the scan's grid")
    labels = np.zeros(volume.shape, dtype=np.uint16 if _max_id(settings.groups) > 255 else np.uint8)
    voxels = {}
    for channel, group in enumerate(settings.groups):
        if cancel is not None:
            cancel.raise_if_cancelled()
        prob = resample_to_shape(probs[..., channel], volume.shape, order=1)
        mask = prob >= settings.threshold
        del prob
        if group.get("drop_islands") and mask.any():
            mask = drop_islands(mask, float(group["drop_islands"]))
        if group.get("grow"):
            mask = grow_into(mask, volume.array, volume.spacing, **group["grow"])
        if group.get("fill_holes"):
            mask = fill_holes(mask)
        if keep_largest and mask.any():
            mask = largest_component(mask)
        labels[mask] = int(group["label_id"])
        voxels[str(group["name"])] = int(np.count_nonzero(mask))
    progress(1.0, "done")
    return SegmentResult(labels, list(settings.groups), voxels)


def sizes_text(result: SegmentResult, volume) -> str:
    """``liver 1520 ml, vertebrae 310 ml``: what each group painted."""
    from ctviewer.imaging.label_stats import voxel_ml

    ml = voxel_ml(volume) or 0.0
    return ", ".join(f"{name} {n * ml:.0f} ml" for name, n in result.voxels.items())


def add_levels(volume, result: SegmentResult, count=None, progress=None, cancel=None) -> SegmentResult:
    """``result`` with its vertebrae group split into vertebrae labelled by level (ids 26–50, named
    "vertebrae L1" …) by the vertebra count (:mod:`~ctviewer.workflows.segmentation.vertebra_levels`);
    unchanged where the model paints no vertebrae. Where the count names nothing the vertebrae keep one
    class and ``note`` says why."""
    from ctviewer.workflows.segmentation.vertebra_levels import is_vertebrae_group, level_vertebrae

    group = next((g for g in result.groups if is_vertebrae_group(g)), None)
    if group is None:
        return result
    (progress or no_progress)(1.0, "counting the vertebrae for their levels")
    label_id = int(group["label_id"])
    mask = result.labels == label_id
    try:
        levelled = level_vertebrae(volume, mask, label_id, count=count, cancel=cancel)
    except InputError as exc:   # a tilted series: the mask is still good, only its levels cannot be had
        return replace(result, note=f"vertebrae kept as one class: {exc}")
    if not levelled.levelled:
        return replace(result, note=levelled.note)
    labels = result.labels.copy()
    labels[mask] = levelled.labels[mask]
    others = [g for g in result.groups if g is not group]
    voxels = {name: n for name, n in result.voxels.items() if name != str(group["name"])}
    voxels.update({str(g["name"]): int(np.count_nonzero(labels == int(g["label_id"]))) for g in levelled.groups})
    return SegmentResult(labels, others + levelled.groups, voxels, levelled.note, list(result.groups))


def _max_id(groups) -> int:
    return max(int(g["label_id"]) for g in groups)


def label_table(groups):
    """A LabelTable naming each group's painted label id."""
    from ctviewer.data.labels import Label, LabelTable, default_colour

    return LabelTable([Label(int(g["label_id"]), str(g["name"]),
                             tuple(g.get("colour") or default_colour(int(g["label_id"])))) for g in groups])


def keras_predict_fn(model):
    """``predict_fn`` for :func:`segment_volume` from a Keras model (numpy in, numpy out)."""
    def predict(batch):
        return np.asarray(model.predict_on_batch(np.asarray(batch, dtype=np.float32)))
    return predict


def segment(volume, model, keep_largest: bool = False, progress=None, cancel=None,
            levels: bool = True) -> SegmentResult:
    """Load the segmentation model ``model`` (name, path or registry entry) and segment ``volume``;
    with ``levels`` a vertebrae model's mask is split into vertebrae by level (:func:`add_levels`).

    The GUI runs this in the model process (``ctviewer.ml.child``); the result pickles.
    """
    network, card = _load(model)
    result = segment_volume(volume, keras_predict_fn(network), SegSettings.from_card(card), keep_largest,
                            progress=progress, cancel=cancel)
    return add_levels(volume, result, progress=progress, cancel=cancel) if levels else result


def find_segmentation_model(model):
    """The registry entry of a segmentation model (name, path or entry), checked from its card alone
    (Keras not started)."""
    from ctviewer.ml import registry

    entry = model if isinstance(model, registry.ModelEntry) else registry.find_model(model)
    if entry.card.task not in SEGMENTATION_TASKS:
        raise InputError(f"is a {entry.card.task} model, not a segmentation model", entry.path)
    return entry


def _load(model):
    """The network and card; the last one stays loaded (the dock runs one model on study after study)."""
    from ctviewer.ml import registry

    entry = find_segmentation_model(model)
    return registry.load_model_kept(entry, task=entry.card.task)



"""What the phases panel runs and reads: no Qt here (the worker bodies run on pool threads).

The numbers come from :mod:`ctviewer.workflows.soil.phases` and :mod:`~ctviewer.workflows.soil.porosity`
(the same as ``ctviewer soil pores``). This module counts the histogram once and finds every method's
threshold with it (so the method box answers at once), redraws only the planes the views show while
the threshold moves, and writes the porosity with the settings that produced it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.progress import sub_progress
from ctviewer.workflows.soil import phases, porosity

#: The method box: title -> method name of :func:`phases.choose_threshold`; None: the user's threshold.
#: The first is the default, the same as ``ctviewer soil pores`` (``phases.DEFAULT_METHOD``, and why there).
METHOD_TITLES = {"Valley between the peaks": "valley", "Otsu": "otsu",
                 "Multi-Otsu (first of 3 classes)": "multiotsu",
                 "Equal-width bins (the seed's object 1)": "equal-bins", "Threshold (yours)": None}
assert next(iter(METHOD_TITLES.values())) == phases.DEFAULT_METHOD
DENOISE_TITLES = {"None": "none", "Median 3×3×3": "median", "Non-local means": "nlm"}
PORES_ID = 1
PORE_LAYER = "pore phase"
OUTLINE_LAYER = "sample outline"
PORE_COLOUR = (0, 200, 255)
#: what the panel says for a histogram with one peak (the core's words, without the CLI's flag)
UNIMODAL_TEXT = ("The histogram has one peak: pores and solid cannot be separated by the histogram — "
                 "give a threshold (drag the line or type a value).")


@dataclass
class Phases:
    """One volume's histogram and every method's threshold on it (or why the method refuses)."""

    histogram: phases.Histogram
    thresholds: dict = field(default_factory=dict)    # method -> phases.Threshold
    refused: dict = field(default_factory=dict)       # method -> the reason, one line
    shown: tuple = ()                                  # (counts, centres) regrouped for the plot

    def threshold(self, method: str) -> phases.Threshold:
        if method in self.refused:
            raise InputError(self.refused[method])
        return self.thresholds[method]


def count_phases(values, mask=None, progress=None, cancel=None) -> Phases:
    """Worker body: the histogram, counted once, and the threshold of each method on it."""
    hist = phases.histogram(values, mask=mask, progress=progress, cancel=cancel)
    found = Phases(hist, shown=hist.regrouped(phases.COARSE_BINS))
    for method in (m for m in METHOD_TITLES.values() if m is not None):
        try:
            found.thresholds[method] = phases.choose_threshold(hist, method)
        except InputError as exc:
            found.refused[method] = UNIMODAL_TEXT if exc.reason == phases.UNIMODAL else exc.reason
    return found


def denoise_and_count(values, method: str, progress=None, cancel=None):
    """Worker body: the volume denoised, then its histogram: ``(Denoised, Phases)``."""
    done = phases.denoise(values, method, progress=sub_progress(progress, 0.0, 0.8), cancel=cancel)
    counted = count_phases(done.array, progress=sub_progress(progress, 0.8, 1.0), cancel=cancel)
    return done, counted


def snapped(hist: phases.Histogram, value: float) -> float:
    """A dragged position as a threshold the counts answer exactly (a whole grey level, a bin top, or
    a float volume's smallest value, whose voxels the counts hold apart: :meth:`Histogram.snap`)."""
    value = min(max(float(value), hist.edges[0]), hist.hi)
    return float(math.floor(value)) if hist.exact else hist.snap(value)


@dataclass(frozen=True)
class Live:
    """The porosity at a threshold, from the cumulated histogram (no voxel is counted again)."""

    porosity: float
    minus: float          # one grey step below
    plus: float           # one grey step above
    step: float
    methods: dict         # "otsu"/"valley" -> porosity, where the histogram allows it

    @property
    def low(self) -> float:
        return min(self.porosity, self.minus, self.plus, *self.methods.values())

    @property
    def high(self) -> float:
        return max(self.porosity, self.minus, self.plus, *self.methods.values())


def live_porosity(hist: phases.Histogram, marks: dict, threshold: float) -> Live:
    """The porosity at ``threshold`` and one grey step either side; ``marks``: the methods' thresholds."""
    d = hist.grey_step
    methods = {m: float(hist.porosity_at(t)) for m, t in marks.items() if t is not None}
    return Live(float(hist.porosity_at(threshold)), float(hist.porosity_at(threshold - d)),
                float(hist.porosity_at(threshold + d)), d, methods)


def porosity_text(live: Live, where: str) -> tuple[str, str]:
    """(the big number, the line under it) the panel shows."""
    big = f"Porosity {100 * live.porosity:.2f} %  ({100 * live.low:.2f} – {100 * live.high:.2f} %)"
    parts = [f"{where}; ±1 grey step ({live.step:.4g}): {100 * live.minus:.2f} – {100 * live.plus:.2f} %"]
    parts += [f"{'Otsu' if m == 'otsu' else 'valley'} {100 * p:.2f} %" for m, p in live.methods.items()]
    return big, "; ".join(parts)


# -- the pore phase on the views ---------------------------------------------------------------
def plane_index(axis: int, k: int) -> tuple:
    return (slice(None),) * axis + (int(k),)


def draw_plane(target: np.ndarray, values: np.ndarray, threshold: float, axis: int, k: int,
               inside: np.ndarray | None = None) -> tuple:
    """Write the pores (``value <= threshold``, inside the sample) of one plane into ``target``;
    returns the plane's bounding box, as ``LabelLayer.data_changed`` carries it."""
    at = plane_index(axis, k)
    plane = target[at]
    phases.at_or_below(values[at], threshold, out=plane, casting="unsafe")   # as the histogram compares
    if inside is not None:
        plane &= inside[at]
    box = [slice(0, n) for n in target.shape]
    box[axis] = slice(int(k), int(k) + 1)
    return tuple(box)


def pore_phase(values, threshold: float, inside=None, progress=None, cancel=None) -> np.ndarray:
    """Worker body: the whole pore phase as label ids (uint8: 1 = pore), slab by slab."""
    progress(0.0, "Pore phase")
    mask = porosity.pore_mask(values, threshold, inside)
    progress(1.0, "Pore phase")
    return mask.view(np.uint8)


def method_name(method: str) -> str:
    """A method as the tab names it in its results: its name, or "your threshold"."""
    return phases.OWN_THRESHOLD if method == "threshold" else method


def pore_label_name(method: str, threshold: float, denoised: str) -> str:
    """The pore label's name: the settings travel with a saved label map in its table."""
    how = method_name(method)
    return f"pores ({how}, grey <= {threshold:g}{'' if denoised == 'none' else f', {denoised} denoised'})"


@dataclass
class Measured:
    """What Measure hands the panel: every array ready for its layer, so the GUI thread copies none."""

    found: porosity.Porosity
    pores: np.ndarray                 # uint8 label ids, 1 = pore
    outline: np.ndarray | None        # uint8, 1 = inside the sample; None: the sample fills the view
    sample_by_slice: np.ndarray | None   # sample voxels of each slice (z), for the Pores tab


def measure(values, method: str, threshold: float, spacing, denoised: dict | None, progress=None,
            cancel=None) -> Measured:
    """Worker body: porosity inside the sample's outline with its uncertainty, profiles and REV."""
    chosen = f"threshold:{threshold!r}" if method == "threshold" else method
    found, pores = porosity.measure(values, chosen, denoise="none", sample="auto", spacing=spacing,
                                    progress=progress, cancel=cancel)
    if denoised is not None:   # done before, in the panel: the result names it
        found = replace(found, denoised=denoised, notes=[f"denoised first: {denoised['note']}", *found.notes])
    inside = found.sample.mask
    # the outline layer gets its own copy (the user may draw on it; the panel keeps the bool mask)
    outline = None if inside is None else inside.view(np.uint8).copy()
    by_slice = None if inside is None else np.count_nonzero(inside, axis=(1, 2))
    return Measured(found, pores.view(np.uint8), outline, by_slice)


def sample_porosity(stats, how: dict | None):
    """``stats`` of a Phases-tab pore layer (``how``: its meta['phases']) with the porosity of the
    sample where an outline was measured, as ``ctviewer soil pores`` reports it (the field of view
    holds air around a core, which is not pore space); otherwise ``stats`` as they are."""
    total = (how or {}).get("sample_voxels")
    if not total:
        return stats
    by_slice = np.asarray(how["sample_voxels_by_slice"], dtype=np.float64)
    pores = np.asarray(stats.porosity_by_slice, dtype=np.float64) * np.prod(stats.shape[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(by_slice > 0, pores / np.maximum(by_slice, 1), np.nan)
    return replace(stats, porosity=stats.pore_voxels / total, porosity_by_slice=profile)


# -- saving --------------------------------------------------------------------------------------
def settings(found) -> dict:
    """What produced the numbers: method, threshold, denoising, sample outline."""
    t = found.threshold
    return {"method": t.method, "threshold": t.value, "pores": "grey value <= threshold",
            "denoise": (found.denoised or {}).get("method", "none"), "sample_outline": found.sample.note}


def default_save_name(source) -> str:
    """Where Save porosity… proposes to write: ``<volume>_porosity.json`` beside the volume."""
    from ctviewer.io.label_files import base_name

    if not source:
        return "porosity.json"
    source = Path(source)
    return str(source.with_name(f"{base_name(source)}_porosity.json"))


def _sidecars(source) -> set[Path]:
    """The names the volume's voxel-size sidecar may have (``NAME.EXT.json``, ``NAME.json``)."""
    from ctviewer.io.label_files import base_name

    if not source:
        return set()
    source = Path(source).absolute()
    return {source.with_name(source.name + ".json"), source.with_name(base_name(source) + ".json")}


def stored_profiles(profiles: dict, grid) -> dict:
    """The profiles in the file's own axis and slice order, as ``ctviewer soil pores`` writes them:
    the tab works on the display grid, which for a DICOM or NIfTI volume may be the stored one
    reversed or permuted (``grid``: :func:`ctviewer.imaging.orientation.stored_grid`; None: the same)."""
    if grid is None:
        return profiles
    out = {}
    for a, name in enumerate("zyx"):
        values = np.asarray(profiles[name])
        out["zyx"[grid.perm[a]]] = values[::-1] if grid.flips[a] else values
    return {name: out[name] for name in "zyx"}


def write_results(found, prefix, volume_name: str = "", grid=None) -> list[Path]:
    """``PREFIX.json`` (everything ``ctviewer soil pores --json`` says about the phases), and
    ``PREFIX_profiles.csv`` / ``PREFIX_rev.csv`` whose every row names the method, threshold and
    denoising; the three together or none (:func:`~ctviewer.io.atomic.atomic_paths`). Planes are
    numbered in the file's stored order (``grid``), plane 0 its first slice, as the CLI numbers them.
    A prefix whose JSON would be the volume's voxel-size sidecar is refused."""
    from ctviewer.io.atomic import atomic_paths
    from ctviewer.io.csv_safe import csv_text

    prefix = Path(prefix)
    if prefix.suffix.lower() in (".json", ".csv"):
        prefix = prefix.with_suffix("")
    names = [prefix.with_name(prefix.name + end) for end in (".json", "_profiles.csv", "_rev.csv")]
    if names[0].absolute() in _sidecars(volume_name):
        raise InputError(f"{names[0].name} is the voxel-size sidecar of {Path(volume_name).name}: "
                         f"choose another name (such as {Path(default_save_name(volume_name)).name})", names[0])
    how = {**settings(found), "planes": "in the file's stored order: plane 0 is its first slice"}
    tail = [how["method"], f"{how['threshold']:g}", how["denoise"]]
    head = ["method", "threshold", "denoise"]
    profiles = stored_profiles(found.profiles, grid)
    data = {"volume": volume_name, "settings": how, **found.to_dict()}
    data["profiles"] = {k: [float(v) if np.isfinite(v) else None for v in p] for k, p in profiles.items()}
    rows = [[axis, n, "" if not np.isfinite(v) else f"{100 * v:.4f}", *tail]
            for axis, values in profiles.items() for n, v in enumerate(values)]
    rev = found.rev
    rev_rows = [[f"{s:.6g}", "" if not np.isfinite(p) else f"{100 * p:.4f}", *tail]
                for s, p in zip(rev.sides_mm, rev.porosity)]
    texts = [json.dumps(data, indent=2, allow_nan=False) + "\n",
             csv_text(rows, ["axis", "plane", "porosity_percent", *head]),
             csv_text(rev_rows, ["cube_side_mm", "porosity_percent", *head])]
    with atomic_paths(*names) as temps:
        for tmp, text in zip(temps, texts):
            tmp.write_bytes(text.encode("utf-8"))
    return names

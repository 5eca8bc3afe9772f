"""Porosity a soil scientist can defend: at a threshold from :mod:`~ctviewer.workflows.soil.phases`,
inside the sample only, with its uncertainty, its profiles and its representative elementary volume.

* **Sample outline** (:func:`sample_outline`): a core or column scanned upright (its axis along the
  slices) sits in air, and that air is not pore space. Per slab of :data:`OUTLINE_SLAB` slices, the
  columns where the solid phase (``value > threshold``) shows in at least a tenth of the slab's
  slices, without specks under 1 % of the slice, and the convex hull of what is left is the
  sample's outline there (a broken core's surface dents count as sample, as a fitted wall would).
  The outline is then taken :data:`OUTLINE_MARGIN` voxels inside that surface (not where it meets
  the edge of the view: the sample goes on there): surface voxels are part air and read as pore, and
  on the real concrete core (100³) a one-voxel rim alone held 4-6 % of the sample, more than its
  pores. Where the hull of the whole height leaves less than :data:`FILLS_VIEW` of the slice out,
  the sample fills the field of view and the whole volume is used (:data:`FILLS_NOTE`). Known
  bias: on a very porous sample the hull of a thin slab passes through the outermost solid voxels
  and cuts into surface pores here and there (about one point of porosity low on a 50 % porous
  synthetic core 40 voxels across); thicker slabs would reach past the core's ends instead.
* **Threshold of a sample in air**: chosen on the whole view's histogram, where the air around the
  sample is a pore peak of its own (SoilJ takes the air around a column as the pore reference too);
  the porosity is counted inside the outline. Inside a dense core the pores make no peak at all
  (the real concrete core: 0.3 % voids), and the method run on the sample alone would split two
  solid phases. The outline itself is found at the whole view's valley (else at the chosen
  threshold), so every method measures the same sample.
* **Uncertainty**: partial-volume voxels at the pore walls have grey values between the phases, so
  the porosity is given at the threshold one grey-level step either side of the chosen one
  (:attr:`Histogram.grey_step`: 1/256 of the value range) and, where both exist, between Otsu's
  and the valley's thresholds.
* **Profiles** along z, y and x: porosity of each plane's sample, plane 0 the first of the array
  given. ``ctviewer soil pores`` gives the file's stored order (slice 0 its first slice, the top of a
  core scanned top down); the Phases tab measures on the display grid, which for a DICOM or NIfTI
  volume may be the stored one reversed or permuted, and writes its profiles back in the stored
  order, so both number the planes alike.
* **REV**: the porosity of growing centred sub-cubes (sides in mm, so anisotropic voxels give real
  cubes); the REV is the smallest side from which every larger sub-cube stays within
  ±:data:`REV_TOLERANCE` (relative) of the whole sample's porosity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ctviewer.errors import InputError
from ctviewer.imaging.bins import slabs
from ctviewer.progress import CancelToken, Progress, checked_progress, sub_progress
from ctviewer.workflows.soil import phases

OUTLINE_SLAB = 4
OUTLINE_MARGIN = 2
FILLS_VIEW = 0.98
REV_TOLERANCE = 0.05
REV_STEPS = 20
FILLS_NOTE = "the sample fills the field of view: no outline to detect — the whole volume is used"
_SLAB_VOXELS = 4_000_000


# -- the sample's outline ----------------------------------------------------------------------
@dataclass
class SampleOutline:
    mask: np.ndarray | None          # bool [z, y, x]; None: the whole volume is the sample
    note: str
    fraction: float                  # of the volume inside the sample

    def to_dict(self) -> dict:
        return {"detected": self.mask is not None, "fraction_of_volume": self.fraction, "note": self.note}


def _hull(seen: np.ndarray) -> np.ndarray | None:
    """Convex hull (through pixel centres) of the parts of ``seen`` over 1 % of the slice; None if none."""
    from skimage.measure import label
    from skimage.morphology import convex_hull_image

    parts = label(seen, connectivity=2)
    keep = np.flatnonzero(np.bincount(parts.ravel()) >= 0.01 * seen.size)
    keep = keep[keep > 0]
    return convex_hull_image(np.isin(parts, keep), offset_coordinates=False) if keep.size else None


def sample_outline(values, threshold: float, progress: Progress | None = None,
                   cancel: CancelToken | None = None) -> SampleOutline:
    """The sample inside the field of view, from where the solid phase (``> threshold``) is."""
    array = np.asarray(getattr(values, "array", values))
    if array.ndim != 3:
        raise InputError(f"the sample outline needs a volume [z, y, x], got shape {array.shape}")
    step = checked_progress(progress, cancel)
    nz, ny, nx = array.shape
    mask = np.zeros(array.shape, dtype=bool)
    seen_in = np.zeros((ny, nx), dtype=np.int32)      # slices each column holds solid in
    empty_slabs = 0
    for start in range(0, nz, OUTLINE_SLAB):
        step(0.8 * start / nz, "Finding the sample's outline")
        count = np.count_nonzero(np.greater(array[start:start + OUTLINE_SLAB], np.float64(threshold)), axis=0)
        seen_in += count
        hull = _hull(count >= 1)
        if hull is None:
            empty_slabs += 1             # no sample in these slices (air above or below the core)
            continue
        mask[start:start + OUTLINE_SLAB] = hull
    if empty_slabs * OUTLINE_SLAB >= nz:
        return SampleOutline(None, f"no solid above the threshold {threshold:g}: no outline to detect — the "
                                   f"whole volume is used", 1.0)
    # whether the sample fills the view is judged on the whole height (thin slabs of a very porous
    # sample leave gaps at the edge that are pores, not air around it)
    overall = _hull(seen_in >= max(1, math.ceil(0.1 * nz)))
    if empty_slabs == 0 and overall is not None and overall.mean() >= FILLS_VIEW:
        return SampleOutline(None, FILLS_NOTE, 1.0)
    step(0.9, "Leaving the sample's surface voxels out")
    # 6-connected steps, so the margin is OUTLINE_MARGIN voxels along each axis; border_value=1: where
    # the sample meets the edge of the view it goes on beyond it, and nothing is taken off there
    from scipy.ndimage import binary_erosion, generate_binary_structure

    mask = binary_erosion(mask, generate_binary_structure(3, 1), iterations=OUTLINE_MARGIN, border_value=1)
    fraction = float(np.count_nonzero(mask)) / mask.size
    return SampleOutline(mask, f"sample outline detected: {100 * fraction:.1f} % of the volume, "
                               f"{OUTLINE_MARGIN} voxels inside its surface (the air around it is not "
                               f"counted as pore)", fraction)


# -- masks, profiles, REV ----------------------------------------------------------------------
def pore_mask(values, threshold: float, sample: np.ndarray | None = None) -> np.ndarray:
    """Pores (bool): ``value <= threshold`` inside the sample, slab by slab (no copy of the volume)."""
    array = np.asarray(getattr(values, "array", values))
    out = np.empty(array.shape, dtype=bool)
    for s in slabs(array.shape, _SLAB_VOXELS):
        phases.at_or_below(array[s], threshold, out=out[s])
        if sample is not None:
            out[s] &= sample[s]
    return out


def profiles(pores: np.ndarray, sample: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Porosity of each plane along z, y and x (NaN where a plane holds no sample)."""
    nz, ny, nx = pores.shape
    hits = {"z": np.zeros(nz, np.int64), "y": np.zeros(ny, np.int64), "x": np.zeros(nx, np.int64)}
    room = {"z": np.full(nz, ny * nx, np.int64), "y": np.full(ny, nz * nx, np.int64),
            "x": np.full(nx, nz * ny, np.int64)}
    if sample is not None:
        room = {k: np.zeros_like(v) for k, v in room.items()}
    for s in slabs(pores.shape, _SLAB_VOXELS):
        for counts, part in ((hits, pores[s]), (room, None if sample is None else sample[s])):
            if part is not None:
                counts["z"][s] = part.sum(axis=(1, 2), dtype=np.int64)
                counts["y"] += part.sum(axis=(0, 2), dtype=np.int64)
                counts["x"] += part.sum(axis=(0, 1), dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {k: np.where(room[k] > 0, hits[k] / np.maximum(room[k], 1), np.nan) for k in hits}


@dataclass
class Rev:
    """Porosity of centred sub-cubes of growing side, and the side from which it stays put."""

    sides_mm: np.ndarray
    porosity: np.ndarray
    whole: float
    tolerance: float
    rev_mm: float | None
    note: str = ""

    def to_dict(self) -> dict:
        return {"sides_mm": [float(f"{v:.6g}") for v in self.sides_mm],
                "porosity": [_number(v) for v in self.porosity], "whole": self.whole,
                "tolerance_relative": self.tolerance, "rev_mm": self.rev_mm, "note": self.note}


def rev_curve(pores: np.ndarray, sample: np.ndarray | None = None, spacing=(1.0, 1.0, 1.0),
              whole: float | None = None, tolerance: float = REV_TOLERANCE, steps: int = REV_STEPS) -> Rev:
    """Porosity of centred sub-cubes from a few voxels to the volume's narrowest side (in mm)."""
    spacing = np.asarray(spacing, dtype=float)
    shape = np.asarray(pores.shape)
    if whole is None:
        room = pores.size if sample is None else int(np.count_nonzero(sample))
        whole = int(np.count_nonzero(pores)) / max(room, 1)
    widest = float(np.min(shape * spacing))
    smallest = max(float(spacing.max()) * 4, widest / steps)
    sides = np.unique(np.round(np.linspace(min(smallest, widest), widest, steps), 9))
    values = []
    for side in sides:
        n = np.clip(np.round(side / spacing).astype(int), 1, shape)
        box = tuple(slice((d - k) // 2, (d - k) // 2 + k) for d, k in zip(shape, n))
        room = np.prod(n) if sample is None else int(np.count_nonzero(sample[box]))
        values.append(np.count_nonzero(pores[box]) / room if room else np.nan)
    values = np.asarray(values, dtype=float)
    inside = np.abs(values - whole) <= tolerance * whole
    rev, note = None, ""
    if whole <= 0:
        note = "no pores: no REV"
    elif inside[-1]:
        first = len(inside) - int(np.argmin(inside[::-1])) if not inside.all() else 0
        rev = float(sides[first])
        if first == len(sides) - 1:
            note = "only the largest sub-cube is within the tolerance: the volume is about its REV, not larger"
    else:
        note = "even the largest sub-cube is outside the tolerance: the volume is smaller than its REV"
    return Rev(sides, values, float(whole), float(tolerance), rev, note)


def _number(value):
    return None if value is None or not np.isfinite(value) else float(value)


# -- the whole measurement ---------------------------------------------------------------------
@dataclass
class Porosity:
    """What ``ctviewer soil pores`` reports about the phases, besides the pore statistics."""

    threshold: phases.Threshold
    porosity: float
    pore_voxels: int
    sample_voxels: int
    histogram: phases.Histogram
    uncertainty: dict
    profiles: dict
    rev: Rev
    sample: SampleOutline
    denoised: dict | None = None
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "phases": {**self.threshold.to_dict(), "denoise": self.denoised or {"method": "none"},
                       "histogram": self.histogram.to_dict()},
            "porosity": self.porosity, "pore_voxels": self.pore_voxels, "sample_voxels": self.sample_voxels,
            "porosity_uncertainty": self.uncertainty,
            "profiles": {k: [_number(v) for v in p] for k, p in self.profiles.items()},
            "rev": self.rev.to_dict(), "sample": self.sample.to_dict(), "notes": list(self.notes),
        }


def measure(volume, method: str = phases.DEFAULT_METHOD, denoise: str = "none", sample: str = "auto",
            n: int | None = None, spacing=None, progress: Progress | None = None,
            cancel: CancelToken | None = None) -> tuple[Porosity, np.ndarray]:
    """Porosity of a volume by ``method`` and the pore mask (bool, the volume's grid) it counted."""
    phases.check_numbers(volume)
    array = np.asarray(getattr(volume, "array", volume))
    source = getattr(volume, "source", None) or None
    if array.ndim != 3:
        raise InputError(f"porosity needs a volume [z, y, x], got shape {array.shape}", source)
    if sample not in ("auto", "none"):
        raise InputError(f"--sample-mask must be 'auto' or 'none', got {sample!r}")
    spacing = spacing if spacing is not None else getattr(volume, "spacing", (1.0, 1.0, 1.0))
    step = checked_progress(progress, cancel)
    notes, denoised = [], None

    try:
        if denoise != "none":
            done = phases.denoise(array, denoise, sub_progress(step, 0.0, 0.4), cancel)
            array, denoised = done.array, done.to_dict()
            notes.append(f"denoised first: {done.note}")
        whole = phases.histogram(array, progress=sub_progress(step, 0.4, 0.5), cancel=cancel)
        chosen = phases.choose_threshold(whole, method, n)
        outline = SampleOutline(None, "no sample outline asked for: the whole volume is used", 1.0)
        hist = whole
        if sample == "auto":
            # the outline separates air from sample whatever the pore method: the whole volume's valley
            # where there is one (the seed's equal bins cut below a container's wall, for one)
            try:
                air = phases.choose_threshold(whole, "valley").value
            except InputError:
                air = chosen.value
            outline = sample_outline(array, air, sub_progress(step, 0.5, 0.7), cancel)
            if outline.mask is not None:
                hist = phases.histogram(array, mask=outline.mask, progress=sub_progress(step, 0.7, 0.8),
                                        cancel=cancel)
                notes.append("threshold from the whole view, where the air around the sample is the pore "
                             "phase's own peak; porosity counted inside the sample")
        notes.append(outline.note)
    except InputError as exc:
        raise InputError(exc.reason, source) from None
    t = chosen.value
    pores = pore_mask(array, t, outline.mask)
    step(0.85, "Profiles and REV")
    prof = profiles(pores, outline.mask)
    porosity = float(hist.porosity_at(t))
    rev = rev_curve(pores, outline.mask, spacing, whole=porosity)
    step(1.0, "Porosity")
    return Porosity(chosen, porosity, int(hist.pore_voxels_at(t)), hist.total, hist,
                    uncertainty(hist, t, whole), prof, rev, outline, denoised, notes), pores


def uncertainty(hist: phases.Histogram, threshold: float, chosen_on: phases.Histogram | None = None) -> dict:
    """Porosity (counted in ``hist``) one grey-level step either side of ``threshold`` and at Otsu's and
    the valley's thresholds (found in ``chosen_on``, the histogram the threshold came from)."""
    chosen_on = hist if chosen_on is None else chosen_on
    d = hist.grey_step
    out = {"grey_step": d,
           "minus_step": {"threshold": threshold - d, "porosity": float(hist.porosity_at(threshold - d))},
           "plus_step": {"threshold": threshold + d, "porosity": float(hist.porosity_at(threshold + d))}}
    methods = {}
    for name in ("otsu", "valley"):
        try:
            t = phases.choose_threshold(chosen_on, name).value
        except InputError as exc:
            methods[name] = {"threshold": None, "porosity": None, "note": exc.reason}
            continue
        methods[name] = {"threshold": t, "porosity": float(hist.porosity_at(t))}
    out["methods"] = methods
    found = [m["porosity"] for m in methods.values() if m["porosity"] is not None]
    out["method_range"] = [min(found), max(found)] if len(found) == 2 else None
    every = [out["minus_step"]["porosity"], out["plus_step"]["porosity"], float(hist.porosity_at(threshold)), *found]
    out["range"] = [min(every), max(every)]   # what the porosity is reported as: its lowest to highest
    return out

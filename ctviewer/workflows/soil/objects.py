"""Density objects of a soil cube: the seed's "objects 1-6" as a named, coloured label map.

The soil study (seed 000, ``analyse3d.py``) splits a cube's intensity histogram into six equal-width
bins and calls the voxels of bin k "object k": object 1 is the least dense (air-filled pores), object 6
the densest (stones). Unlike the seed, voxels equal to the maximum belong to object 6 (the seed's
``value < upper edge`` test dropped them). Multi-Otsu classes are offered as an alternative split
(at most 5 classes: the search grows as 256**(n-1)). The binning itself is
:mod:`ctviewer.imaging.bins` (slab by slab, no float copy of the cube).
"""

from __future__ import annotations

import numpy as np

from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress

#: What users call the six objects of the seed's equal-width split. Only "pores" (object 1) and
#: "stones" (object 6) are named by the soil study; the middle ones are named by density, with what
#: they mostly hold in a mineral soil (organic matter and roots are lighter than the mineral matrix).
OBJECT_NAMES = {
    1: "pores",
    2: "low density (organic matter, roots)",
    3: "light soil matrix",
    4: "soil matrix",
    5: "dense soil matrix",
    6: "stones",
}

#: Colours that read as what they are: pores blue, soil browns from light to dark, stones grey.
OBJECT_COLOURS = {
    1: (40, 120, 255),
    2: (110, 190, 70),
    3: (225, 190, 130),
    4: (180, 130, 70),
    5: (120, 80, 40),
    6: (170, 170, 170),
}

METHODS = ("equal", "otsu")
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def object_table(n: int = 6) -> LabelTable:
    """Names and colours of ``n`` density objects: 1 = pores, ``n`` = the densest (stones for n = 6)."""
    if n == 6:
        return LabelTable([Label(i, OBJECT_NAMES[i], OBJECT_COLOURS[i]) for i in range(1, 7)])
    labels = []
    for i in range(1, n + 1):
        if i == 1:
            name, colour = OBJECT_NAMES[1], OBJECT_COLOURS[1]
        elif i == n:
            name, colour = "densest (stones)", OBJECT_COLOURS[6]
        else:
            name, colour = f"density class {i}", OBJECT_COLOURS[2 + (i - 2) % 4]
        labels.append(Label(i, name, colour))
    return LabelTable(labels)


def _value_range(array: np.ndarray) -> tuple[float, float]:
    if array.size == 0:
        raise InputError("the cube has no voxels")
    if array.dtype.kind == "f":
        lo, hi = float(np.nanmin(array)), float(np.nanmax(array))  # reductions: no copy of the cube
    else:
        lo, hi = float(array.min()), float(array.max())
    return lo, hi


def density_objects(volume: Volume, n: int = 6, method: str = "equal", progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> LabelMap:
    """Objects 1..n (uint8 label map on the cube's grid) from equal-width bins or multi-Otsu classes."""
    from ctviewer.imaging.bins import equal_width_bins, multi_otsu_bins

    if method not in METHODS:
        raise InputError(f"unknown object method {method!r}; use 'equal' (the seed's six bins) or 'otsu'")
    if volume.is_rgb:
        raise InputError("density objects need a gray CT cube, not a colour image", volume.source or None)
    if isinstance(n, bool) or int(n) != n or not 2 <= n <= (5 if method == "otsu" else 255):
        top = 5 if method == "otsu" else 255
        raise InputError(f"number of objects must be a whole number from 2 to {top} for method {method!r}, got {n}")
    n = int(n)
    lo, hi = _value_range(volume.array)
    if not hi > lo:
        if np.isnan(lo):
            raise InputError("the cube holds no numbers (all voxels are NaN)", volume.source or None)
        raise InputError(f"all voxels have the value {lo:g}: the {_NUMBER_WORDS.get(n, n)} bins are degenerate",
                         volume.source or None)
    if method == "equal":
        ids = equal_width_bins(volume.array, n, value_range=(lo, hi), progress=progress, cancel=cancel)
    else:
        ids = multi_otsu_bins(volume.array, n, progress=progress, cancel=cancel)
    name = f"{volume.name} objects".strip()
    return LabelMap(volume.with_array(ids, window=None, modality="", name=name), object_table(n))


def object_counts(labels: LabelMap) -> list[dict]:
    """Per object of the table: id, name, voxels and fraction of the cube (what `soil objects` prints)."""
    array = labels.array
    counts = np.zeros(int(array.max(initial=0)) + 1, dtype=np.int64)
    step = max(1, 8_000_000 // max(1, array[0].size))
    for start in range(0, array.shape[0], step):  # slab by slab: bincount casts to int64
        c = np.bincount(array[start:start + step].ravel(), minlength=counts.size)
        counts[: c.size] += c
    total = max(array.size, 1)
    return [{"id": lab.id, "name": lab.name, "voxels": int(counts[lab.id]) if lab.id < counts.size else 0,
             "fraction": (int(counts[lab.id]) if lab.id < counts.size else 0) / total} for lab in labels.table]


def seed_fraction_target(ids: np.ndarray, obj: int) -> float:
    """The fraction (0..1) of ``ids`` in object ``obj``, where object 5 means 5 and 6 together.

    That is the soil study's per-slice quantity (its network was trained on ``1 - fraction``);
    ``ids`` is one slice or any array of object ids.
    """
    if isinstance(obj, bool) or int(obj) != obj or not 1 <= obj <= 5:
        raise InputError(f"the seed's objects are 1..5 (5 = objects 5 and 6), got {obj}")
    ids = np.asarray(ids)
    if ids.size == 0:
        raise InputError("no voxels to take a fraction of")
    hit = (ids >= 5) & (ids <= 6) if obj == 5 else ids == obj
    return float(np.count_nonzero(hit)) / ids.size

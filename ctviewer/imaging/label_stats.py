"""Per-label statistics: how big each label is and what the image holds under it.

For each label: voxel (pixel) count, volume in ml (from the spacing; ``None`` for photos, whose
pixels have no physical size), mean and standard deviation of the image under it (Hounsfield
units for CT; for a colour photo the luminance 0..255, ITU-R BT.601 weights), and the share of
all voxels, which for a thin section is the class fraction (visual porosity for the pore class).

Background: id 0 is listed first, as "unlabelled", when some voxels carry it, so that the
fractions add up to 100 %. Every label of the table is listed (with 0 voxels where absent), and
every id present without a table entry too.

Sums run in slabs along axis 0 with :func:`numpy.bincount`, so memory stays flat and progress /
cancel are checked between slabs. An integer image (CT in HU, a grey micrograph) is counted as one
joint histogram of (id, value), from which counts, sums and sums of squares follow exactly; other
images use weighted bincounts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ctviewer.data.labels import LabelMap
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, step_progress

#: Voxels summed at a time: large enough that numpy's per-call cost vanishes, small enough that
#: the temporaries stay small next to the image.
SLAB_VOXELS = 4_000_000
#: Largest joint (id, value) histogram used; beyond it (wide value ranges) weighted sums are used.
MAX_HISTOGRAM_BINS = 1 << 22
_LUMINANCE = np.array([0.299, 0.587, 0.114])


@dataclass
class LabelStats:
    id: int
    name: str
    voxels: int
    #: ml (mm³ / 1000); None where the image has no physical size (a photo's pixels).
    volume_ml: float | None
    #: Mean and standard deviation of the image under the label; None where the label is empty.
    mean: float | None
    sd: float | None
    #: Share of all voxels / pixels of the image, in %.
    fraction_pct: float

    def as_dict(self) -> dict:
        return asdict(self)


def label_statistics(image: Volume, labels: LabelMap, progress: Progress | None = None,
                     cancel: CancelToken | None = None) -> list[LabelStats]:
    """Statistics of every label of ``labels`` over ``image`` (same grid), background first."""
    if labels.volume.shape != image.shape:
        raise InputError(f"label map is {labels.volume.shape[::-1]} voxels (x, y, z) but the image is "
                         f"{image.shape[::-1]}", labels.volume.source or None)
    ids = labels.array
    n_ids = int(ids.max(initial=0)) + 1
    tick = step_progress(progress, cancel, ids.shape[0], "Measuring labels")
    value_range = _integer_range(image)
    if value_range is not None and n_ids * (value_range[1] - value_range[0] + 1) <= MAX_HISTOGRAM_BINS:
        counts, sums, squares = _histogram_sums(image.array, ids, n_ids, value_range[0],
                                                value_range[1] - value_range[0] + 1, tick)
    else:
        counts, sums, squares = _weighted_sums(image, ids, n_ids, tick)
    tick(ids.shape[0])
    return _rows(labels, counts, sums, squares, voxel_ml(image))


def _slabs(depth: int, plane: int):
    step = max(1, SLAB_VOXELS // max(1, plane))
    return [(start, min(depth, start + step)) for start in range(0, depth, step)]


def _integer_range(image: Volume) -> tuple[int, int] | None:
    """(min, max) of a grey integer image, the case a joint histogram serves; else None."""
    arr = image.array
    if arr.ndim != 3 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_) or arr.size == 0:
        return None
    return int(arr.min()), int(arr.max())


def _histogram_sums(values: np.ndarray, ids: np.ndarray, n_ids: int, low: int, span: int, tick):
    """Counts, sums and sums of squares per id from one joint histogram of (id, value): a single
    integer bincount per slab, ~4x faster than three weighted ones, and exact. The keys are built
    in two reused buffers of the intp bincount wants (fresh 30 MB arrays per slab cost as much
    again in page faults)."""
    hist = np.zeros(n_ids * span, dtype=np.int64)
    slabs = _slabs(ids.shape[0], ids[0].size)
    largest = max(stop - start for start, stop in slabs) * ids[0].size
    key, part = np.empty(largest, dtype=np.intp), np.empty(largest, dtype=np.intp)
    for start, stop in slabs:
        tick(start)
        slab_ids = ids[start:stop]  # may be a flipped view: the ufuncs read it without a copy
        k, p = key[: slab_ids.size].reshape(slab_ids.shape), part[: slab_ids.size].reshape(slab_ids.shape)
        np.subtract(values[start:stop], low, out=k, dtype=np.intp)
        np.multiply(slab_ids, span, out=p, dtype=np.intp)
        k += p
        hist += np.bincount(k.reshape(-1), minlength=hist.size)
    hist = hist.reshape(n_ids, span)
    levels = np.arange(low, low + span, dtype=np.float64)
    return hist.sum(axis=1), hist @ levels, hist @ (levels * levels)


def _weighted_sums(image: Volume, ids: np.ndarray, n_ids: int, tick):
    """Counts, sums and sums of squares per id by weighted bincounts (float or colour images)."""
    counts = np.zeros(n_ids, dtype=np.int64)
    sums = np.zeros(n_ids)
    squares = np.zeros(n_ids)
    shift = _typical_value(image)  # sums of (value - shift) keep the variance exact far from 0
    for start, stop in _slabs(ids.shape[0], ids[0].size):
        tick(start)
        slab_ids = ids[start:stop].ravel().astype(np.intp)
        values = _values(image.array[start:stop]).ravel() - shift
        counts += np.bincount(slab_ids, minlength=n_ids)
        sums += np.bincount(slab_ids, weights=values, minlength=n_ids)
        squares += np.bincount(slab_ids, weights=values * values, minlength=n_ids)
    # back to sums of the values themselves
    squares += 2 * shift * sums + counts * shift * shift
    sums += counts * shift
    return counts, sums, squares


def _values(block: np.ndarray) -> np.ndarray:
    """Image values as float64: the luminance of a colour photo, the stored value otherwise."""
    if block.ndim == 4:
        rgb = block[..., :3].astype(np.float64)
        if block.dtype == np.uint16:
            rgb /= 257.0  # 16-bit colour on the same 0..255 scale as 8-bit
        return rgb @ _LUMINANCE
    return block.astype(np.float64)


def _typical_value(image: Volume) -> float:
    sample = _values(image.array[image.shape[0] // 2][None])
    return float(np.median(sample)) if sample.size else 0.0


def voxel_ml(image: Volume) -> float | None:
    """Millilitres per voxel; None where the image has no physical size (a photo's pixels)."""
    if image.meta.get("pixel_units") or image.is_photo:
        return None
    return float(np.prod(image.spacing)) / 1000.0


def _rows(labels: LabelMap, counts, sums, squares, voxel_ml: float | None) -> list[LabelStats]:
    total = int(counts.sum())
    wanted = sorted(set(int(i) for i in np.flatnonzero(counts)) | set(labels.table.ids))
    rows = []
    for label_id in wanted:
        n = int(counts[label_id]) if label_id < counts.size else 0
        mean = sd = None
        if n:
            mean = float(sums[label_id] / n)
            sd = float(np.sqrt(max(squares[label_id] / n - mean * mean, 0.0)))
        name = "unlabelled" if label_id == 0 else labels.table.name(label_id)
        rows.append(LabelStats(label_id, name, n, None if voxel_ml is None else n * voxel_ml, mean, sd,
                               100.0 * n / total if total else 0.0))
    return rows


def statistics_table(stats: list[LabelStats]) -> str:
    """The statistics as an aligned text table (one row per label)."""
    header = ("id", "name", "voxels", "volume ml", "mean", "sd", "fraction %")
    rows = [header]
    for s in stats:
        rows.append((str(s.id), s.name, str(s.voxels),
                     "—" if s.volume_ml is None else f"{s.volume_ml:.3f}",
                     "—" if s.mean is None else f"{s.mean:.2f}",
                     "—" if s.sd is None else f"{s.sd:.2f}",
                     f"{s.fraction_pct:.3f}"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[c].ljust(widths[c]) if c == 1 else row[c].rjust(widths[c]) for c in range(len(header))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)

"""Pore and solid phases of a micro-CT volume, split where its histogram says.

One :class:`Histogram` is counted per volume, once, and kept cumulated: the porosity at any
threshold is then a binary search in it (what a live histogram with a draggable threshold needs),
never a recount of the voxels.

* Integer volumes (8/16-bit, int16): one bin per grey level, exact counts (``np.bincount`` slab by
  slab, no float copy of the volume). Ranges over 2**20 levels are binned like floats.
* Float volumes: the finite values into :data:`FLOAT_BINS` equal bins between the smallest and the
  largest value; a threshold snaps down to a bin edge (:meth:`Histogram.snap`), or to the smallest
  value itself, whose voxels are counted apart (:attr:`Histogram.lowest`) so that a threshold there
  counts them as the pore mask does. NaN or infinite voxels are refused, with their count.

**Pores are the voxels at or below the threshold** (``value <= threshold``; the solid is
``value > threshold``, scikit-image's convention for Otsu's threshold), compared in float64
(:func:`at_or_below`) wherever the voxels are, as the histogram's bins are: a float32 voxel equal to
a bin edge counts the same in the lookup and in the mask.

Methods, by name (:func:`choose_threshold`):

* ``valley`` (the default): the lowest point of the smoothed histogram between its two main peaks.
  Smoothing: the histogram regrouped into 256 bins, padded with an empty bin at each end (so a peak
  at the end of the range is a peak) and filtered by a Gaussian of :data:`VALLEY_SIGMA` bins; where
  the lowest point is a flat stretch, its middle.
  Why the default: it finds where the pore peak ends, however the solid's phases are spread above
  it. Otsu's threshold is the best split of the histogram into two classes of any kind. On a
  two-phase volume they agree (snow: 41.3 % and 40.9 %); on the same concrete core scanned by
  X-rays and by neutrons the valley gives 0.34 % and 0.23 % of the core, Otsu 0.43 % and 6.6 %: in
  neutron contrast a solid phase of the concrete (a peak of its own near 24000, 6 % of the core,
  with no dark counterpart in the X-ray scan) lies between the air and the cement, and Otsu's split
  falls above it. Otsu's porosity is reported beside the valley's as the range.
* ``otsu``: ``skimage.filters.threshold_otsu`` on this histogram (parameter-free, set by every voxel;
  biased towards the larger phase when the two differ much in size or spread).
* ``multiotsu``: ``skimage.filters.threshold_multiotsu`` (3 classes) on the histogram regrouped into
  :data:`COARSE_BINS` bins (its search grows as bins**(classes-1)); pores = the first class.
* ``equal-bins``: the seed's six equal-width bins of the value range, pores = object 1 (values
  below the first sixth), exactly as ``soil objects --method equal`` labels them.
* ``threshold:V``: the user's value V.

A histogram with one peak cannot be split by its shape: ``otsu``, ``multiotsu`` and ``valley`` then
refuse (:data:`UNIMODAL`). Peaks are local maxima of the smoothed histogram that rise by at least
:data:`PEAK_PROMINENCE` of the highest bin above their surroundings; two main peaks (the two highest)
make the histogram bimodal only if the lowest point between them is at most :data:`VALLEY_DEPTH` of
the smaller one (a dip of 20 % or more).

Optional denoising first (:func:`denoise`): ``median`` (``scipy.ndimage.median_filter``, 3×3×3) or
``nlm`` (``skimage.restoration.denoise_nl_means``, slab by slab), in the input's dtype, with the noise
before and after (:func:`noise_sigma`, a robust Immerkær estimate: scikit-image's
``estimate_sigma`` needs PyWavelets, which is not a dependency here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ctviewer.errors import InputError
from ctviewer.imaging.bins import slabs
from ctviewer.progress import CancelToken, Progress, checked_progress

METHODS = ("otsu", "multiotsu", "valley", "equal-bins", "threshold:V")
DEFAULT_METHOD = "valley"
DENOISERS = ("none", "median", "nlm")
#: Classes of multi-Otsu unless asked otherwise (pores = the first), wherever it is run.
MULTIOTSU_CLASSES = 3
#: How the results name a threshold the user gave.
OWN_THRESHOLD = "your threshold"
#: Bins of a float volume's histogram: divisible by 6 (the seed's bins) and by 256 (the grey step).
FLOAT_BINS = 3072
#: Integer volumes with more levels than this are binned like floats.
MAX_EXACT_LEVELS = 2 ** 20
#: Bins of the regrouped histogram that multi-Otsu and the valley search work on.
COARSE_BINS = 256
VALLEY_SIGMA = 2.0
PEAK_PROMINENCE = 0.02
VALLEY_DEPTH = 0.8
#: Voxels per slab while counting (bincount makes an int64 copy of what it is given).
_SLAB_VOXELS = 2_000_000
#: Voxels per slab of non-local means (it works in float64 on a slab and its halo).
NLM_SLAB_VOXELS = 1_000_000
#: Voxels per slab of the median filter (Cancel is heard between slabs).
MEDIAN_SLAB_VOXELS = 4_000_000

UNIMODAL = ("the histogram has one peak: pores and solid cannot be separated by the histogram — "
            "give a threshold (--method threshold:V)")


# -- the histogram -----------------------------------------------------------------------------
@dataclass(eq=False)
class Histogram:
    """Voxel counts per grey-level bin; bin ``i`` holds the values in ``(edges[i], edges[i+1]]``
    (the first bin also its lower edge). For exact integer histograms bin ``i`` is the level
    ``lo + i``. ``dtype`` is the volume's; ``lo``/``hi`` its smallest and largest value; ``lowest``
    the voxels equal to ``lo`` (bin 0 holds them with the rest of its bin: a float threshold between
    ``lo`` and the first bin's top counts these alone)."""

    counts: np.ndarray
    edges: np.ndarray
    exact: bool
    dtype: str
    lo: float
    hi: float
    lowest: int = 0
    cumulative: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if self.exact:
            self.lowest = int(self.counts[0]) if self.counts.size else 0
        self.edges = np.asarray(self.edges, dtype=np.float64)
        # cumulative[k] = voxels in the first k bins: the porosity at any threshold is one lookup
        self.cumulative = np.concatenate([[0], np.cumsum(self.counts)])

    @property
    def total(self) -> int:
        return int(self.cumulative[-1])

    @property
    def upper(self) -> np.ndarray:
        """The largest value each bin holds (its grey level, for exact histograms)."""
        return self.edges[1:]

    @property
    def centres(self) -> np.ndarray:
        return self.upper if self.exact else (self.edges[:-1] + self.edges[1:]) / 2

    @property
    def grey_step(self) -> float:
        """One grey-level step for the partial-volume uncertainty: 1/256 of the value range (one level
        of the 8-bit view a user sees), at least one stored level of an integer volume."""
        step = (self.hi - self.lo) / 256
        return max(step, 1.0) if self.dtype_kind in "iu" else step

    @property
    def dtype_kind(self) -> str:
        return np.dtype(self.dtype).kind

    def pore_voxels_at(self, threshold):
        """Voxels ``<= threshold`` (a number or an array of them), from the cumulated counts."""
        k = np.searchsorted(self.upper, threshold, side="right")
        # below the first bin's top only the voxels at the smallest value are <= threshold
        found = np.where((k == 0) & (np.asarray(threshold) >= self.lo), self.lowest, self.cumulative[k])
        return found if np.ndim(k) else int(found)

    def porosity_at(self, threshold):
        """Fraction (0..1) of the counted voxels ``<= threshold``: O(log bins), no recount."""
        return self.pore_voxels_at(threshold) / max(self.total, 1)

    def snap(self, threshold: float) -> float:
        """The threshold the counts can answer for exactly: the largest bin top ``<= threshold``
        (the value itself for integer levels); below the first bin's top, the smallest value (its
        voxels are counted apart); below the smallest value, the threshold itself (no pores)."""
        k = int(np.searchsorted(self.upper, threshold, side="right"))
        if k:
            return float(self.upper[k - 1])
        return float(self.lo) if threshold >= self.lo else float(threshold)

    def regrouped(self, n: int = COARSE_BINS) -> tuple[np.ndarray, np.ndarray]:
        """Counts and centre values of the histogram regrouped into at most ``n`` runs of bins."""
        if self.counts.size <= n:
            return self.counts.copy(), self.centres.copy()
        starts = np.floor(np.arange(n) * self.counts.size / n).astype(np.int64)
        counts = np.add.reduceat(self.counts, starts)
        stops = np.append(starts[1:], self.counts.size)
        centres = (self.edges[starts] + self.edges[stops]) / 2
        return counts, centres

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "exact": bool(self.exact), "bins": int(self.counts.size),
                "min": self.lo, "max": self.hi, "voxels": self.total, "grey_step": self.grey_step}


def at_or_below(values: np.ndarray, threshold: float, out: np.ndarray | None = None, **kwargs) -> np.ndarray:
    """``values <= threshold`` compared in float64, as the histogram's bins are (a float32 volume
    compared with a Python float would round the threshold to float32 instead)."""
    return np.less_equal(values, np.float64(threshold), out=out, **kwargs)


def _not_numbers(bad: int, total: int, source, where: str = "") -> InputError:
    return InputError(f"{bad:,d} of {total:,d} voxels are NaN or infinite{where}: the histogram needs numbers "
                      "(fill or crop them first)", source)


def check_numbers(volume) -> None:
    """Refuse a volume whose reader replaced NaN or infinite voxels (``meta['nonfinite_voxels']``, as
    TIFF stacks do so that views can show them): a threshold would count them as the darkest phase."""
    meta = getattr(volume, "meta", None) or {}
    bad = int(meta.get("nonfinite_voxels", 0) or 0)
    if bad:
        total = int(np.prod(np.shape(getattr(volume, "array", ()))[:3]))
        raise _not_numbers(bad, total, getattr(volume, "source", None) or None,
                           " in the file (shown as the lowest value)")


def _as_array(values) -> tuple[np.ndarray, str | None]:
    check_numbers(values)
    source = getattr(values, "source", None) or None
    array = np.asarray(getattr(values, "array", values))
    if getattr(values, "is_rgb", False) or (array.ndim == 4 and array.shape[-1] in (3, 4)):
        raise InputError("phases need a gray volume, not a colour image", source)
    if array.size == 0:
        raise InputError("the volume has no voxels", source)
    if array.dtype.kind not in "iufb":
        raise InputError(f"phases need grey values, got {array.dtype}", source)
    return (array.view(np.uint8) if array.dtype == bool else array), source


def histogram(values, mask: np.ndarray | None = None, progress: Progress | None = None,
              cancel: CancelToken | None = None) -> Histogram:
    """The histogram of a volume (array or :class:`~ctviewer.data.volume.Volume`), counted once.

    With ``mask`` (bool, the volume's shape) only those voxels are counted; the bins still span the
    whole volume's range, so thresholds mean the same with and without it.
    """
    array, source = _as_array(values)
    if mask is not None and np.shape(mask) != array.shape:
        raise InputError(f"the sample mask is {np.shape(mask)}, the volume {array.shape}", source)
    slabbed = array[None] if array.ndim < 3 else array
    mslab = None if mask is None else (np.asarray(mask)[None] if array.ndim < 3 else np.asarray(mask))
    step = checked_progress(progress, cancel)
    runs = slabs(slabbed.shape, _SLAB_VOXELS)
    lo, hi, bad, lowest = math.inf, -math.inf, 0, 0
    for i, s in enumerate(runs):
        step(0.3 * i / len(runs), "Value range")
        part = slabbed[s]
        if part.dtype.kind == "f":
            finite = np.isfinite(part)
            bad += part.size - int(np.count_nonzero(finite))
            part = part[finite]
            if part.size == 0:
                continue
        lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    if bad:
        raise _not_numbers(bad, array.size, source)
    exact = array.dtype.kind in "iub" and hi - lo + 1 <= MAX_EXACT_LEVELS
    if exact:
        edges = np.arange(lo - 1, hi + 1, dtype=np.float64)
    else:
        edges = np.linspace(lo, hi, FLOAT_BINS + 1) if hi > lo else np.array([lo, hi])
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    for i, s in enumerate(runs):
        step(0.3 + 0.7 * i / len(runs), "Counting grey levels")
        part = slabbed[s] if mslab is None else slabbed[s][mslab[s]]
        if exact and array.dtype.kind in "ub" and array.dtype.itemsize <= 2:
            # 8/16-bit levels count from 0 as they are: no shifted copy of the slab (wider types
            # are shifted first: a uint32 volume around 1e9 would need counts for every level below)
            counts += np.bincount(part.ravel(), minlength=int(hi) + 1)[int(lo):]
            continue
        if exact:
            idx = part.ravel().astype(np.int64) - int(lo)
        else:
            # bins (e_i, e_i+1]: searchsorted over the inner edges; the lowest value joins bin 0
            idx = np.searchsorted(edges[1:-1], part.ravel(), side="left")
            lowest += int(np.count_nonzero(part == lo))
        counts += np.bincount(idx, minlength=counts.size)
    step(1.0, "Histogram")
    return Histogram(counts, edges, exact, str(array.dtype), float(lo), float(hi), lowest)


# -- thresholds --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    """A chosen threshold: pores are the voxels ``<= value`` (grey values of the volume)."""

    method: str
    value: float
    note: str = ""
    #: every threshold the method found (multi-Otsu: one per class boundary)
    values: tuple = ()

    def to_dict(self) -> dict:
        return {"method": self.method, "threshold": self.value, "pores": "grey value <= threshold",
                "note": self.note, **({"all_thresholds": list(self.values)} if len(self.values) > 1 else {})}


@dataclass(frozen=True)
class Peaks:
    """The smoothed, regrouped histogram and what the valley method finds in it."""

    centres: np.ndarray
    smoothed: np.ndarray
    peaks: tuple             # indices into centres of the two main peaks (low, high), or fewer
    valley: int | None       # index of the valley between them; None when unimodal

    @property
    def bimodal(self) -> bool:
        return self.valley is not None


def histogram_peaks(hist: Histogram) -> Peaks:
    """The two main peaks of the smoothed histogram and the lowest point between them."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    counts, centres = hist.regrouped(COARSE_BINS)
    padded = np.concatenate([[0.0], counts.astype(np.float64), [0.0]])
    smoothed = gaussian_filter1d(padded, VALLEY_SIGMA, mode="constant")[1:-1]
    top = float(smoothed.max()) if smoothed.size else 0.0
    if top <= 0 or smoothed.size < 3:
        return Peaks(centres, smoothed, (), None)
    found, _ = find_peaks(np.concatenate([[0.0], smoothed, [0.0]]), prominence=PEAK_PROMINENCE * top)
    found = found - 1
    if found.size < 2:
        return Peaks(centres, smoothed, tuple(int(p) for p in found), None)
    a, b = sorted(int(p) for p in found[np.argsort(smoothed[found])[-2:]])
    between = smoothed[a:b + 1]
    # the middle of the lowest stretch: two phases with empty levels between them split halfway
    lowest = np.flatnonzero(between <= between.min() * (1 + 1e-9) + 1e-12)
    valley = a + int(lowest[np.argmin(np.abs(lowest - lowest.mean()))])
    deep = smoothed[valley] <= VALLEY_DEPTH * min(smoothed[a], smoothed[b])
    return Peaks(centres, smoothed, (a, b), valley if deep else None)


def parse_method(method: str) -> tuple[str, float | None]:
    """``"threshold:V"`` -> ``("threshold", V)``; a method name -> ``(name, None)``."""
    text = str(method).strip().lower()
    if text.startswith("threshold:"):
        value = text.split(":", 1)[1]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InputError(f"--method threshold:V needs a grey value V, got {value!r}")
        return "threshold", number
    if text == "equal":          # the name `soil objects --method` uses
        text = "equal-bins"
    if text not in METHODS[:-1]:
        raise InputError(f"unknown threshold method {method!r}; use one of {', '.join(METHODS)}")
    return text, None


def choose_threshold(hist: Histogram, method: str = DEFAULT_METHOD, n: int | None = None) -> Threshold:
    """The pore/solid threshold of ``hist`` by ``method`` (see the module's list). ``n``: the
    classes of multi-Otsu (default 3) or the bins of equal-bins (default 6)."""
    name, value = parse_method(method)
    if name == "threshold":
        note = ""
        if value < hist.lo:
            note = f"below the smallest value ({hist.lo:g}): no pores"
        elif value >= hist.hi:
            note = f"at or above the largest value ({hist.hi:g}): every voxel is pore"
        return Threshold("threshold", hist.snap(value) if not hist.exact else float(math.floor(value)), note)
    if not hist.hi > hist.lo:
        raise InputError(f"all voxels have the value {hist.lo:g}: there is nothing to separate")
    if name == "equal-bins":
        return _equal_bins(hist, 6 if n is None else n)
    peaks = histogram_peaks(hist)
    if not peaks.bimodal:
        raise InputError(UNIMODAL)
    if name == "otsu":
        from skimage.filters import threshold_otsu

        t = float(threshold_otsu(hist=(hist.counts, hist.centres)))
        k = int(np.searchsorted(hist.centres, t))   # its bin, counted with the pores
        return Threshold("otsu", float(hist.upper[min(k, hist.upper.size - 1)]),
                         "Otsu's threshold on the whole histogram")
    if name == "multiotsu":
        return _multi_otsu(hist, MULTIOTSU_CLASSES if n is None else n)
    v = hist.snap(float(peaks.centres[peaks.valley]))
    a, b = peaks.peaks
    return Threshold("valley", v, f"lowest point of the histogram (256 bins, Gaussian σ = {VALLEY_SIGMA:g} bins) "
                                  f"between its peaks at {peaks.centres[a]:.6g} and {peaks.centres[b]:.6g}")


def method_words(method: str) -> str:
    """A method's name in a sentence ("pores (Otsu's threshold of snow.tif)")."""
    return {"threshold": OWN_THRESHOLD, "equal-bins": "object 1 of equal-width bins",
            "multiotsu": "multi-Otsu threshold", "otsu": "Otsu's threshold"}.get(method, f"{method} threshold")


def _equal_bins(hist: Histogram, n: int) -> Threshold:
    if isinstance(n, bool) or int(n) != n or not 2 <= n <= 255:
        raise InputError(f"equal-bins needs a whole number of bins from 2 to 255, got {n}")
    edge = hist.lo + (hist.hi - hist.lo) / n
    if hist.exact:
        value = float(math.ceil(edge) - 1)       # object 1 is value < edge
    else:
        value = float(hist.edges[int(round((edge - hist.edges[0]) / (hist.edges[1] - hist.edges[0])))])
    return Threshold("equal-bins", value, f"object 1 of {int(n)} equal-width bins of the range "
                                          f"{hist.lo:g}..{hist.hi:g} (the seed's split): values below {edge:.6g}")


def _multi_otsu(hist: Histogram, classes: int) -> Threshold:
    from skimage.filters import threshold_multiotsu

    if isinstance(classes, bool) or int(classes) != classes or not 2 <= classes <= 5:
        raise InputError(f"multi-Otsu needs 2 to 5 classes, got {classes}")
    counts, centres = hist.regrouped(COARSE_BINS)
    try:
        found = threshold_multiotsu(hist=(counts, centres), classes=int(classes))
    except ValueError as exc:
        raise InputError(f"the histogram cannot be split into {classes} classes: {exc}") from None
    values = tuple(hist.snap(float(t)) for t in found)
    return Threshold("multiotsu", values[0], f"first of {int(classes) - 1} multi-Otsu thresholds "
                                             f"({int(classes)} classes, {counts.size} bins)", values)


# -- denoising ---------------------------------------------------------------------------------
@dataclass
class Denoised:
    """A denoised volume (the input's dtype) and how much noise it took off."""

    array: np.ndarray
    method: str
    sigma_before: float
    sigma_after: float
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "noise_sigma_before": self.sigma_before,
                "noise_sigma_after": self.sigma_after, "note": self.note, **self.settings}

    @property
    def note(self) -> str:
        return (f"{self.method}: noise σ {self.sigma_before:.4g} -> {self.sigma_after:.4g} grey values "
                f"({100 * (1 - self.sigma_after / self.sigma_before):.0f} % less)" if self.sigma_before > 0
                else f"{self.method}: no noise measured")


def noise_sigma(values, slices: int = 16) -> float:
    """Noise σ in grey values: Immerkær's Laplacian-difference mask (which cancels any locally
    planar grey level) applied to up to ``slices`` evenly spaced slices, and the robust spread of its
    response (1.4826 × the median absolute deviation, divided by the mask's norm, 6), so that the
    pore walls' edges, a minority of the pixels, do not read as noise as they do in the mean."""
    from scipy.ndimage import convolve

    array, _ = _as_array(values)
    array = array[None] if array.ndim < 3 else array
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    picks = np.unique(np.linspace(0, array.shape[0] - 1, min(slices, array.shape[0])).round().astype(int))
    responses = [convolve(array[z].astype(np.float64), kernel, mode="reflect")[1:-1, 1:-1].ravel()
                 for z in picks if min(array[z].shape) >= 3]
    if not responses:
        return 0.0
    r = np.concatenate(responses)
    return float(1.4826 * np.median(np.abs(r - np.median(r))) / 6)


def denoise(values, method: str = "median", progress: Progress | None = None,
            cancel: CancelToken | None = None) -> Denoised:
    """The volume denoised by ``median`` (3×3×3) or ``nlm`` (non-local means, 3×3×3 patches searched
    5 voxels around, h = 0.8 σ), in its own dtype."""
    array, source = _as_array(values)
    if method not in DENOISERS[1:]:
        raise InputError(f"unknown denoising {method!r}; use one of {', '.join(DENOISERS)}")
    step = checked_progress(progress, cancel)
    step(0.0, "Measuring the noise")
    before = noise_sigma(array)
    if method == "median":
        out, settings = _median(array, step), {"size": 3}
    else:
        out, settings = _nl_means(array, before, step)
    step(0.95, "Measuring the noise")
    return Denoised(out, method, before, noise_sigma(out), settings)


def _median(array: np.ndarray, step) -> np.ndarray:
    """3×3×3 median slab by slab with a one-slice halo (what each output slice sees), so Cancel is
    heard between slabs; the same voxels as one ``median_filter`` over the whole volume."""
    from scipy.ndimage import median_filter

    out = np.empty_like(array)
    stack = array[None] if array.ndim < 3 else array
    target = out[None] if array.ndim < 3 else out
    runs = slabs(stack.shape, MEDIAN_SLAB_VOXELS)
    for i, s in enumerate(runs):
        step(0.05 + 0.9 * i / len(runs), "Median filter")
        a, b = max(0, s.start - 1), min(stack.shape[0], s.stop + 1)
        done = median_filter(stack[a:b] if array.ndim >= 3 else stack[a:b][0], size=3, mode="nearest")
        target[s] = done[s.start - a:s.stop - a] if array.ndim >= 3 else done[None]
    return out


def _nl_means(array: np.ndarray, sigma: float, step) -> tuple[np.ndarray, dict]:
    from skimage.restoration import denoise_nl_means

    patch, distance = 3, 5
    halo = distance + patch // 2            # slices a slab needs beyond its own to be exact
    out = np.empty_like(array)
    stack = array[None] if array.ndim < 3 else array
    target = out[None] if array.ndim < 3 else out
    for s in slabs(stack.shape, NLM_SLAB_VOXELS):
        start, stop = s.start, s.stop
        step(0.05 + 0.9 * start / stack.shape[0], "Non-local means")
        a, b = max(0, start - halo), min(stack.shape[0], stop + halo)
        part = stack[a:b].astype(np.float32)
        flat = part.shape[0] == 1            # one slice: denoised as the 2-D image it is
        done = denoise_nl_means(part[0] if flat else part, patch_size=patch, patch_distance=distance,
                                h=0.8 * sigma, sigma=sigma, fast_mode=True, preserve_range=True)
        done = done[None] if flat else done
        target[start:stop] = _as_dtype(done[start - a:stop - a], array.dtype)
    return out, {"patch_size": patch, "patch_distance": distance, "h": 0.8 * sigma}


def _as_dtype(values: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)

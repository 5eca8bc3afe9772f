"""The spine's column in a CT scan: where the vertebral bodies run, and the discs between them.

The first half of the vertebra count (:mod:`ctviewer.workflows.slice_locator.vertebrae`): the column is
followed on sagittal slabs through the spine's middle (dynamic programming over the rows of each slice),
and the discs are the narrow dips of the bodies' core HU along it, chosen to be regularly spaced. All
arrays are the canonical volume's (axis 0 towards the head, axis 1 towards the back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage


#: Half-width (mm) of the sagittal slab through the vertebral bodies: inside the canal's width, so the
#: pedicles and rib heads (which fill the discs' gaps in a wider slab) stay out.
SLAB_HALF_MM = 8.0
#: Half-width (mm) of the slab the column is tracked on: narrower than the bodies below T4.
TRACK_HALF_MM = 18.0
#: Mean HU (over the wide slab, smoothed) above which the column counts as bone: osteoporotic bodies
#: average ~110 there, muscle and unenhanced organs 30–60.
COLUMN_HU = 90.0
#: Muscle and unenhanced organs around the spine (HU), for finding the bodies' edges.
SOFT_TISSUE_HU = 40.0
#: The spinal canal is darker than this in the narrow slab (CSF 0–20 HU, epidural fat).
CANAL_HU = 60.0
#: Half-depth (mm) of the bodies' core sampled across the column (the front and back cortex left out).
CORE_HALF_MM = 6.0
#: Depth (HU below the bone either side) a dip needs to count as a disc by itself; weaker dips count where
#: the spacing of the others needs them.
DISC_CONTRAST_HU = 20.0
#: A disc dips below the bone on both sides within this length (mm) of the column: wider than a disc and
#: its endplates blurred by 1–5 mm slices, shorter than the inside of a body (15 mm and more from endplate
#: to endplate). Chosen on synthetic torsos (seeds 200–223) among 10–16 mm.
DISC_WINDOW_MM = 12
#: Cost of a body's length differing from its neighbour's by a factor e (in units of dip strength).
SPACING_COST = 40.0
#: Shortest and longest vertebral body + disc (mm): C7 ~17, L4 ~40 (ANATOMY.md, with margin).
MIN_PERIOD_MM, MAX_PERIOD_MM = 15.0, 52.0


# -- 1. the column ----------------------------------------------------------------------------------

def column_position(a: np.ndarray, spacing_yx) -> tuple[float | None, np.ndarray, np.ndarray]:
    """Column (full-res x index) of the spine, and per slice the front and back rows of the body.

    Found on a ~4 mm grid: the body (> −300 HU) gives the search range, its middle third left–right;
    the spine is the column there with the most bone (> 200 HU) over the whole scan.
    """
    sy, sx = spacing_yx
    s = max(1, int(round(4.0 / sx)))
    coarse = np.ascontiguousarray(a[:, s // 2::s, s // 2::s])       # gathered once, compared twice
    body = coarse > -300
    bone = coarse > 200
    if not bone.any():
        return None, np.zeros(0), np.zeros(0)
    thick = body.sum(axis=(0, 1)).astype(float)
    weights = thick ** 2
    centre = float((np.arange(thick.size) * weights).sum() / max(weights.sum(), 1))
    per_x = ndimage.gaussian_filter1d(bone.sum(axis=(0, 1)).astype(float), 8.0 / (s * sx))
    reach = int(round(45.0 / (s * sx)))
    lo, hi = max(0, int(centre) - reach), min(per_x.size, int(centre) + reach + 1)
    x = lo + int(np.argmax(per_x[lo:hi]))
    # front and back of the body per slice (rows, full res), from the rows holding soft tissue near x
    strip = body[:, :, max(0, x - 2):x + 3].any(axis=2)             # [z, y/s]
    rows = np.arange(strip.shape[1]) * s + s // 2
    has = strip.any(axis=1)
    first = np.where(has, rows[np.argmax(strip, axis=1)], 0)
    last = np.where(has, rows[strip.shape[1] - 1 - np.argmax(strip[:, ::-1], axis=1)], a.shape[1] - 1)
    return float(x * s + s // 2), first.astype(float), last.astype(float)


def sagittal_slabs(a: np.ndarray, x_col: float, sx: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean HU [z, y] over a narrow slab (x_col ± SLAB_HALF_MM) and a wide one (± TRACK_HALF_MM).

    The narrow one shows the discs between the bodies' cores; the wide one, with bone capped at 400 HU,
    tells the bodies (as wide as the slab) from the spinous processes (thin, however dense their cortex).
    Air and lung are clipped at −200 first.
    """
    half = max(1, int(round(TRACK_HALF_MM / sx)))
    narrow = max(1, int(round(SLAB_HALF_MM / sx)))
    x0, x1 = max(0, int(x_col) - half), min(a.shape[2], int(x_col) + half + 1)
    n0, n1 = max(0, int(x_col) - narrow) - x0, min(a.shape[2], int(x_col) + narrow + 1) - x0
    if not np.issubdtype(a.dtype, np.signedinteger):
        block = np.clip(a[:, :, x0:x1], -200, 1200).astype(np.float32)
        core = block[:, :, n0:n1].mean(axis=2)
        np.minimum(block, 400, out=block)
        return core, block.mean(axis=2)
    # HU stored as integers (most scans): integer sums, then one division, give the same float32 means
    # (every partial sum is an integer below 2**24, exact in float32) without a float copy of the block
    block = np.clip(a[:, :, x0:x1], -200, 1200).astype(np.int16, copy=False)
    core = block[:, :, n0:n1].sum(axis=2, dtype=np.int32).astype(np.float32) / np.float32(n1 - n0)
    np.minimum(block, 400, out=block)
    return core, block.sum(axis=2, dtype=np.int32).astype(np.float32) / np.float32(x1 - x0)


def track_bodies(slab: np.ndarray, core: np.ndarray, front: np.ndarray, back: np.ndarray, sz: float, sy: float):
    """Row of the vertebral bodies in every slice (a smooth path) and where bone lies on it.

    ``slab`` is the wide sagittal slab the column is followed on, ``core`` the narrow one (for the canal).
    """
    nz, ny = slab.shape
    # Smoothed over ~the bodies' depth, the score peaks in their middle (the path keeps to it, where the
    # discs show best) and along z it bridges the discs.
    # The bodies lie in the back part of the body: behind the sternum, in front of the back's skin.
    rows = np.arange(ny)[None, :]
    inside = (rows > (front + 0.35 * (back - front))[:, None]) & (rows < back[:, None] - 25 / sy)
    score = np.full((nz, ny), -1.0, dtype=np.float32)
    used = np.flatnonzero(inside.any(axis=0))
    if used.size:
        # filtered only over the rows some slice keeps, and as far beyond as the filter reaches (so
        # those rows come out as over the whole slab)
        sigma = (8.0 / sz, 6.0 / sy)
        reach = int(4.0 * sigma[1] + 0.5)                    # gaussian_filter's own radius (truncate 4)
        lo, hi = max(0, used[0] - reach), min(ny, used[-1] + reach + 1)
        box = ndimage.gaussian_filter(slab[:, lo:hi], sigma=sigma, mode="nearest")
        score[:, lo:hi] = np.where(inside[:, lo:hi], np.clip((box - COLUMN_HU) / 80.0, -1.0, 3.0), -1.0)
    path = _best_path(score, sz, sy)
    present = _longest_run(score[np.arange(nz), path] > 0, gap=max(1, int(round(25 / sz))))
    # Dense posterior elements (laminae, facets, spinous processes) can outscore osteoporotic bodies:
    # while another column of bone runs in front of the path, across the canal, that one is the bodies.
    for _ in range(3):
        ahead = np.where(rows < (path - 14 / sy)[:, None], score, -1.0)
        other = _best_path(ahead, sz, sy)
        mine, theirs = score[np.arange(nz), path][present], ahead[np.arange(nz), other][present]
        if not present.any() or theirs.mean() < max(0.3, 0.5 * mine.mean()) or (theirs > 0).mean() < 0.7:
            break
        if _canal_between(core, other, path, sy)[present].mean() < 0.7:
            break                  # the front of the same bodies, or a vessel in front of them
        path = other
        present = _longest_run(score[np.arange(nz), path] > 0, gap=max(1, int(round(25 / sz))))
    return _centred(core, path, present, sz, sy), present


def _centred(core: np.ndarray, path: np.ndarray, present: np.ndarray, sz: float, sy: float) -> np.ndarray:
    """The path moved to the middle of the bodies: halfway between their front and back edges in the
    narrow slab (where the HU falls halfway to soft tissue), smoothed along z.

    The wide slab's score also takes in the pedicles behind the bodies, so its best path can run along
    the bodies' back wall, where the discs hardly show.
    """
    nz, ny = core.shape
    rows = ndimage.gaussian_filter1d(core, 1.5 / sy, axis=1)
    centre = path.astype(float).copy()
    reach, half = int(round(30 / sy)), int(4 / sy)
    ks = np.flatnonzero(present)
    if ks.size:
        y = path[ks].astype(int)
        # the HU on the path: the median over ±4 mm (fewer rows at the slab's edge)
        whole = (y >= half) & (y + half < ny)
        level = np.empty(ks.size)
        if whole.any():
            near = np.lib.stride_tricks.sliding_window_view(rows, 2 * half + 1, axis=1)
            level[whole] = np.median(near[ks[whole], y[whole] - half], axis=1)
        for i in np.flatnonzero(~whole):
            level[i] = np.median(rows[ks[i], max(0, y[i] - half):y[i] + half + 1])
        # compared in the slab's own precision (float32)
        edge = ((level + SOFT_TISSUE_HU) / 2).astype(rows.dtype)
        # rows ±reach around the path (those past the slab's edge never count as below the edge)
        offsets = np.arange(-reach, reach + 1)
        at = y[:, None] + offsets[None, :]
        inside = (at >= 0) & (at < ny)
        below = inside & (rows[ks[:, None], np.clip(at, 0, ny - 1)] < edge[:, None])
        front = np.where(below & (offsets < 0), offsets, -reach - 1).max(axis=1)     # last below in front
        back = np.where(below & (offsets >= 0), offsets, reach + 1).min(axis=1)      # first below behind
        f = np.where(front >= -reach, y + front + 1, np.maximum(0, y - reach))
        b = np.where(back <= reach, y + back - 1, np.minimum(ny, y + reach + 1) - 1)
        ok = level >= COLUMN_HU
        centre[ks[ok]] = (f[ok] + b[ok]) / 2
    if present.any():
        idx = np.flatnonzero(present)
        smooth = ndimage.gaussian_filter1d(centre[idx], max(1.0, 8 / sz), mode="nearest")
        centre[idx] = smooth
    return centre


def _canal_between(core: np.ndarray, front_path: np.ndarray, back_path: np.ndarray, sy: float) -> np.ndarray:
    """Per slice, whether the narrow slab is dark (CSF, epidural fat) somewhere between two paths: the
    spinal canal between the bodies and the posterior elements."""
    nz, ny = core.shape
    rows = np.arange(ny)[None, :]
    # the path on the posterior elements can run along the canal's back wall: look up to 3 mm behind it
    between = (rows > (front_path + 8 / sy)[:, None]) & (rows < (back_path + 3 / sy)[:, None])
    darkest = np.where(between, core, np.inf).min(axis=1)
    return darkest < CANAL_HU


def _best_path(score: np.ndarray, sz: float, sy: float) -> np.ndarray:
    """The row per slice that maximises the summed score, moving at most a slope of 1.2 between slices
    (the sacrum leans back 30–60°), with a small cost per row moved (dynamic programming)."""
    nz, ny = score.shape
    step = max(1, int(np.ceil(1.2 * sz / sy)))
    moves = np.arange(-step, step + 1)
    penalty = 0.02 * np.abs(moves) * sy / sz
    total = score[0].copy()
    back_ptr = np.zeros((nz, ny), dtype=np.int16)
    # window[y, j] is total[y - moves[j]], the row the path comes from (a view of ``padded``, which each
    # slice refills); less that move's cost, the best of them wins (the first of equal ones: the
    # smallest move from below)
    padded = np.full(ny + 2 * step, -np.inf)
    window = np.lib.stride_tricks.sliding_window_view(padded, moves.size)[:, ::-1]
    candidates = np.empty((ny, moves.size))
    rows = np.arange(ny)
    for k in range(1, nz):
        padded[step:step + ny] = total
        np.subtract(window, penalty, out=candidates)
        arg = candidates.argmax(axis=1)
        total = candidates[rows, arg] + score[k]
        back_ptr[k] = arg
    back_ptr -= step                       # the move itself
    path = np.zeros(nz, dtype=int)
    path[-1] = int(np.argmax(total))
    for k in range(nz - 1, 0, -1):
        path[k - 1] = path[k] - back_ptr[k, path[k]]
    return path


def _longest_run(mask: np.ndarray, gap: int) -> np.ndarray:
    """The longest run of True, bridging gaps of up to ``gap`` False."""
    closed = ndimage.binary_closing(mask, np.ones(2 * gap + 1, bool)) | mask
    labels, n = ndimage.label(closed)
    if n == 0:
        return mask & False
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


# -- 2. bodies and discs ----------------------------------------------------------------------------

@dataclass
class CoreProfile:
    """Mean HU of the bodies' core at 1 mm steps of z, from the scan's bottom up."""

    z_index: np.ndarray   # fractional slice index of each sample
    hu: np.ndarray


def core_profile(slab: np.ndarray, path: np.ndarray, sz: float, sy: float) -> CoreProfile:
    """Mean HU across the column's core (±CORE_HALF_MM, perpendicular to the path), every 1 mm of z."""
    nz = slab.shape[0]
    k = np.arange(0, nz - 1 + 1e-6, 1.0 / sz)                       # 1 mm steps in slice units
    smooth_path = ndimage.gaussian_filter1d(path, max(1.0, 8 / sz), mode="nearest")
    y = np.interp(k, np.arange(nz), smooth_path)
    slope = np.gradient(y * sy, k * sz)                               # mm of y per mm of z
    norm = np.sqrt(1 + slope ** 2)
    offsets = np.arange(-CORE_HALF_MM, CORE_HALF_MM + 0.01, 1.0)
    # perpendicular to the path: a step s along the normal moves z by -slope*s/norm and y by s/norm
    zz = k[:, None] + (-slope[:, None] * offsets[None, :] / norm[:, None]) / sz
    yy = y[:, None] + (offsets[None, :] / norm[:, None]) / sy
    hu = ndimage.map_coordinates(slab, [zz.ravel(), yy.ravel()], order=1, mode="nearest").reshape(zz.shape)
    return CoreProfile(k, hu.mean(axis=1))


@dataclass
class Discs:
    """The discs along the column (fractional slice indices, from the bottom up), how clearly each dips
    (HU below the bodies beside it), and the slices where the column runs."""

    k: list[float]
    strength: list[float]
    run: tuple[float, float]
    #: How far the core dips (HU) along the column at 1 mm steps (sample i lies at slice i / slice spacing).
    dip: np.ndarray = field(default_factory=lambda: np.zeros(0))


def find_discs(profile: CoreProfile, present: np.ndarray, sz: float) -> Discs:
    """The discs along the column: narrow dips of the core HU, chosen to be regularly spaced, and a body
    far longer than its neighbours split where it dips most (a disc the slices blurred away)."""
    nz = present.size
    on = present[np.clip(np.round(profile.z_index).astype(int), 0, nz - 1)]
    if not on.any():
        return Discs([], [], (0.0, 0.0))
    lo_i, hi_i = np.flatnonzero(on)[[0, -1]]
    run = (float(profile.z_index[lo_i]), float(profile.z_index[hi_i]))
    if hi_i - lo_i < MIN_PERIOD_MM:
        return Discs([], [], run)
    # A disc is a narrow dip (its height blurred by the slice thickness) between bright endplates; the
    # middle of a body can sag as deep (osteoporosis, or bright endplates over a faint core), but over its
    # whole height. How far the core lies below the brightest bone on both sides within DISC_WINDOW_MM
    # (a black top-hat: the grey closing over that window, less the profile) tells the two apart: a
    # window that fits inside a body sees no dip there, while no window that holds a disc misses both its
    # endplates. (A thin disc between bright endplates can read brighter than the bodies' cores in thick
    # slices, which a second derivative reads as a bump; the top-hat still sees it below its endplates.)
    smooth = ndimage.gaussian_filter1d(profile.hu, 1.0)
    dip = ndimage.grey_closing(smooth, size=DISC_WINDOW_MM, mode="nearest") - smooth
    from scipy.signal import find_peaks   # here: importing scipy.signal costs ~2 s, and the GUI imports this module

    peaks, props = find_peaks(dip[lo_i:hi_i + 1], height=0.3 * DISC_CONTRAST_HU, distance=5)
    candidates = {int(p + lo_i): float(h) for p, h in zip(peaks, props["peak_heights"])}
    found = _regular_chain(candidates)
    found = _split_long(found, dip)
    idx = sorted(found)
    return Discs([float(profile.z_index[i]) for i in idx], [found[i] for i in idx], run, dip)


def _regular_chain(candidates: dict[int, float]) -> dict[int, float]:
    """The subset of candidate dips (position in mm -> strength) that best makes a spine: each dip scores
    its strength above DISC_CONTRAST_HU, and each body costs SPACING_COST × |log| of its length over the
    length of the body next to it (bodies grow slowly from the neck down), so a weak dip is kept where
    the spacing needs it and a strong one mid-body is left out (dynamic programming over pairs)."""
    pos = np.array(sorted(candidates), dtype=float)
    gain = np.array([candidates[int(p)] for p in pos]) - DISC_CONTRAST_HU
    m = pos.size
    if m == 0:
        return {}
    best = np.full((m, m), -np.inf)          # best[i, j]: a chain ending ... j, i
    prev = np.full((m, m), -1, dtype=int)
    for i in range(m):
        for j in range(i):
            gap = pos[i] - pos[j]
            if not MIN_PERIOD_MM <= gap <= 2.5 * MAX_PERIOD_MM:
                continue
            value, arg = gain[j] + gain[i], -1
            ks = np.flatnonzero(np.isfinite(best[j, :j]))
            if ks.size:
                chained = best[j, ks] + gain[i] - SPACING_COST * np.abs(np.log(gap / (pos[j] - pos[ks])))
                top = int(np.argmax(chained))
                if chained[top] > value:
                    value, arg = float(chained[top]), int(ks[top])
            best[i, j], prev[i, j] = value, arg
    if not np.isfinite(best).any() or best.max() < gain.max():
        i = int(np.argmax(gain))
        return {int(pos[i]): float(candidates[int(pos[i])])}
    i, j = np.unravel_index(int(np.argmax(best)), best.shape)
    chain = [i]
    while j >= 0:
        chain.append(j)
        i, j = j, prev[i, j]
    return {int(pos[c]): float(candidates[int(pos[c])]) for c in chain}


def _split_long(found: dict[int, float], dip: np.ndarray) -> dict[int, float]:
    """Split a body far longer than its neighbours (a disc blurred away) where it dips most.

    Profile samples are 1 mm apart, so lengths are in mm; the typical length is the median of the
    neighbouring bodies, so it follows the spine's growth from the neck (15 mm) to the lumbar spine (40).
    """
    found = dict(found)
    for _ in range(30):
        idx = sorted(found)
        if len(idx) < 3:
            return found
        lengths = np.diff(idx).astype(float)
        typical = np.array([np.median(np.r_[lengths[max(0, i - 2):i], lengths[i + 1:i + 3]])
                            for i in range(lengths.size)])
        long = np.flatnonzero((lengths > 1.6 * typical) & (lengths > 2 * MIN_PERIOD_MM))
        if not long.size:
            return found
        i = int(long[np.argmax(lengths[long] / typical[long])])
        n = int(round(lengths[i] / typical[i]))
        a, b = idx[i], idx[i + 1]
        for c in _deepest(dip[a:b + 1], n - 1, int(0.55 * typical[i])):
            found[a + c] = max(float(dip[a + c]), 1.0)
    return found


def _deepest(depth: np.ndarray, n: int, spacing: int) -> list[int]:
    """Up to ``n`` positions of ``depth``'s largest local maxima, ``spacing`` apart and from the ends;
    where the profile has no such dip, equal parts (a body of twice the usual length is two bodies)."""
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(depth, distance=max(1, spacing))
    peaks = [p for p in peaks if spacing <= p <= depth.size - 1 - spacing]
    peaks = sorted(peaks, key=lambda p: -depth[p])[:n]
    if len(peaks) < n:
        return [int(round(depth.size * j / (n + 1))) for j in range(1, n + 1)]
    return sorted(int(p) for p in peaks)

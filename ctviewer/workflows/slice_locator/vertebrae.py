"""Every vertebra in a CT scan, counted: vertebral bodies and discs along the spine, the ribs, the sacrum.

Classical image analysis, no network (so it can cross-check one):

1. *The column.* The spine's left–right position is the body's middle where bone is densest; slabs
   through it, averaged over left–right, are sagittal images of the vertebral bodies. A
   dynamic-programming path follows the bone column from head to feet in the back part of the body
   (the sternum lies in front); where a second column runs in front of it across a dark canal, the
   path was on the posterior elements and moves to the bodies; then it is centred between the
   bodies' front and back walls.
2. *Bodies and discs.* The mean HU of the bodies' core, sampled across the path, dips narrowly at
   every disc, below the bright endplates either side (a top-hat over 12 mm: the inside of a body is
   longer); the dips that make a regular spine (dynamic programming over their spacing) split the
   column into bodies. A body is reported only when a disc
   bounds it on both sides (a body cut by the scan's edge gets no level).
3. *Ribs.* Dense bone in a window 30–78 mm beside the column (in a band from 40 mm in front of the
   bodies to 55 mm behind) is split into 3-D parts; a bar that starts next to the spine and crosses the
   window (a transverse process stops short) is a rib, followed in to its head; the vertebra whose
   middle is nearest bears it. Plates and lumps (iliac wings, scapulae, kidneys bright with contrast)
   are too thick to be ribs.
4. *Sacrum.* The top of the parts near the column's lower end whose bone, at the bodies' depth, spans
   far to both sides (the sacral alae joining the iliac bones).
5. *Levels.* T12 is the lowest rib-bearing vertebra (counting down from the ribs); S1 the top of the
   sacrum (counting up, L3 is the third vertebra above it). Where both counts exist and give different
   names, the result says "levels disagree — check" and names the variant the evidence points to.

Speed: one pass over the volume on a ~4 mm grid, a 36 mm slab at full resolution, and a band around
the spine averaged to ~2 mm for the ribs and the sacrum (only the rows each slice keeps): ~0.15 s for a
512×512×400 scan on two cores (0.29 s before those rows were cropped and the rib parts prefiltered).

Where the counts cannot be made, the result says so: "no spine found: ..." (no bone column, or one
without discs: a phantom, a limb), a body cut by the scan's edge gets no level, and vertebrae with
neither ribs nor sacrum in view are listed without names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ctviewer.data.volume import Volume
from ctviewer.progress import CancelToken, Progress, no_progress
from ctviewer.workflows.slice_locator.projections import axial_volume
from ctviewer.workflows.slice_locator.spine_column import (MIN_PERIOD_MM, Discs, column_position, core_profile,
                                                           find_discs, sagittal_slabs, track_bodies)

#: Bone threshold for ribs and the sacrum (cancellous bone 150–300 HU after block averaging).
BONE_HU = 160.0
#: Threshold for ribs: above kidneys and spleen bright with contrast (150–200 HU in the portal phase).
RIB_HU = 200.0
#: Ribs: the medial end lies within this of the column's middle, and the rib reaches beyond RIB_REACH_MM.
RIB_START_MM, RIB_CUT_MM, RIB_REACH_MM, RIB_OUTER_MM = 42.0, 30.0, 70.0, 78.0
#: Distance (mm) from the midline at which a rib's head meets its vertebra.
RIB_HEAD_MM = 22.0
#: Largest cross-section (mm²) of a rib's part in the window (ribs measure 80–150 there).
RIB_MAX_SECTION_MM2 = 300.0
#: A rib is this thick (mm along z) at most where it crosses each column of the window beside the spine:
#: ~7 mm of bone cut obliquely, 13-21 mm on real CT at 4.25 mm slices; an iliac wing spans 50-100 mm.
#: (Not the part's whole drop: a lower rib leaving the spine at 50-60 degrees drops 60-85 mm in the window.)
RIB_MAX_HEIGHT_MM = 30.0
#: A part dropping more than this (mm) in the window is first split at its medial ends (ribs touching
#: further out, one below the other); a single rib dropping more is still a rib.
RIB_SPLIT_DROP_MM = 70.0
#: Half-span (mm) of bone at the body's depth that marks the sacrum (alae), against a lumbar body's ~25.
SACRUM_HALF_SPAN_MM = 40.0
#: The alae lie within this (mm) above the lower end of the column (the sacrum and coccyx are ~10 cm long).
SACRUM_REACH_MM = 90.0

#: Names from the head down.
ORDER = [f"C{n}" for n in range(1, 8)] + [f"T{n}" for n in range(1, 13)] + [f"L{n}" for n in range(1, 6)]
ORDER.append("S1")

DISAGREE = "levels disagree — check"
NO_SPINE = "no spine found"


@dataclass(frozen=True)
class Vertebra:
    """One whole vertebral body in the scan (slices are indices along axis 0 of the canonical volume,
    0 = most inferior; mm are patient z, larger = towards the head)."""

    level: str
    top_slice: int
    bottom_slice: int
    centre_slice: int
    top_mm: float
    bottom_mm: float
    centre_mm: float
    rib_bearing: bool
    #: 0..1: how clearly its two discs dip (80 and more counts in full), times 1 where the ribs' and the
    #: sacrum's counts agree, 0.7 where only one count was possible, 0.4 where they disagree or none was.
    confidence: float
    #: The names the two counts give ('' where that count is not possible in this scan).
    level_from_ribs: str = ""
    level_from_sacrum: str = ""

    @property
    def height_mm(self) -> float:
        return self.top_mm - self.bottom_mm


@dataclass
class SpineCount:
    """What counting the vertebrae of one scan found: its whole vertebrae from head to feet, or why none."""

    vertebrae: list[Vertebra] = field(default_factory=list)
    #: Why there is no count ("no spine found: ..."); '' when vertebrae were found.
    reason: str = ""
    #: Things a reader must check: "levels disagree — check", variants, a count that had to guess.
    flags: list[str] = field(default_factory=list)
    #: Which counts were possible: "ribs", "sacrum" (both, one or none).
    counts: tuple[str, ...] = ()
    #: Vertebrae between the lowest rib-bearing one and the sacrum (5 normally; 6 or 4 are flagged as
    #: the variants they can be: an L6 or lumbarised S1, 11 or 13 rib pairs, a sacralised L5); None when
    #: the ribs and the sacrum are not both in view.
    lumbar_type: int | None = None
    #: Disc centres found (mm, head to feet).
    discs_mm: list[float] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.vertebrae)

    @property
    def levels_agree(self) -> bool | None:
        """True / False where both counts were made; None where only one (or none) was possible."""
        if len(self.counts) < 2:
            return None
        return all(v.level_from_ribs == v.level_from_sacrum for v in self.vertebrae)

    def find(self, level: str) -> Vertebra | None:
        """The vertebra named ``level``: T-levels by the rib count, L- and S-levels by the sacrum count
        (T12 is the lowest rib-bearing vertebra, L3 the third above the sacrum), either where one is missing."""
        prefer = "level_from_ribs" if level.startswith(("T", "C")) else "level_from_sacrum"
        for attr in (prefer, "level"):
            for v in self.vertebrae:
                if getattr(v, attr) == level:
                    return v
        return None

    def summary(self) -> str:
        """One line: the levels found (head to feet) and the flags, or the reason."""
        if not self.found:
            return self.reason
        names = [v.level or "?" for v in self.vertebrae]
        if not self.counts:  # nothing to count from: say what was seen, not "?–?"
            return "; ".join([f"{len(names)} whole vertebrae found, none named"] + self.flags)
        counted = " and ".join(self.counts)
        return "; ".join([f"{names[0]}–{names[-1]} ({len(names)} vertebrae, counted from {counted})"] + self.flags)


# -- the whole count --------------------------------------------------------------------------------

def count_vertebrae(volume: Volume, progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> SpineCount:
    """Find the vertebral bodies, discs, ribs and sacrum of a CT scan and name every whole vertebra.

    Raises InputError only for what is no CT scan at all (a photo, a tilted series); a scan without a
    spine in view gives a SpineCount with ``reason`` "no spine found: ...".
    """
    progress = progress or no_progress
    vol, _ = axial_volume(volume)
    a = vol.array
    sz, sy, sx = (float(s) for s in vol.spacing)
    slice_z = vol.index_to_lps(np.stack([np.arange(a.shape[0]), np.zeros(a.shape[0]),
                                         np.zeros(a.shape[0])], axis=1))[:, 2]
    if a.shape[0] < 3 or (slice_z.max() - slice_z.min()) < 2 * MIN_PERIOD_MM:
        return SpineCount(reason=f"{NO_SPINE}: the scan is too short ({a.shape[0]} slices) to hold a vertebra")
    progress(0.05, "finding the spine")
    x_col, front_y, back_y = column_position(a, (sy, sx))
    if x_col is None:
        return SpineCount(reason=f"{NO_SPINE}: no bone in the scan")
    _check(cancel)
    slab, wide = sagittal_slabs(a, x_col, sx)
    path, present = track_bodies(wide, slab, front_y, back_y, sz, sy)
    if present.sum() * sz < 2 * MIN_PERIOD_MM:
        return SpineCount(reason=f"{NO_SPINE}: no column of bone along the body's height")
    progress(0.35, "finding the discs")
    _check(cancel)
    profile = core_profile(slab, path, sz, sy)
    discs = find_discs(profile, present, sz)
    if not discs.k:
        return SpineCount(reason=f"{NO_SPINE}: bone, but no discs between vertebrae along it (a head, a limb "
                                 "or a phantom?)")
    if len(discs.k) < 2:
        return SpineCount(reason="no whole vertebra in view: one disc found, and a vertebra needs a disc "
                                 "above and below it", discs_mm=[_z_at(discs.k[0], slice_z)])
    progress(0.55, "finding the ribs and the sacrum")
    _check(cancel)
    band = _band(a, x_col, path, (sz, sy, sx))
    ribs = _rib_heads(band)
    span = _sacrum_span(band)
    progress(0.9, "counting")
    count = _name(discs, ribs, span, slice_z, sz)
    progress(1.0, "")
    if len(discs.k) < 3 and "sacrum" not in count.counts:
        # two dips along one bright column can be a vessel full of contrast (a cardiac scan whose field
        # of view leaves the spine out); without the sacrum it takes three discs to call it a spine
        return SpineCount(reason=f"{NO_SPINE}: only two disc-like dips along the bone column and no sacrum "
                                 "(a short slab, or a vessel full of contrast); nothing named",
                          discs_mm=count.discs_mm)
    return count


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


# -- 3. ribs and 4. the sacrum ----------------------------------------------------------------------

@dataclass
class _Band:
    """Block-averaged bone mask [z, y, x] around the column, with the column's position in it."""

    bone: np.ndarray
    dense: np.ndarray       # bone above RIB_HU (ribs, without contrast-filled kidneys)
    path_y: np.ndarray      # per slice, row of the column (band rows)
    x_mid: float            # band column of the spine
    pixel: float            # mm per band pixel in-plane
    sz: float


def _band(a: np.ndarray, x_col: float, path: np.ndarray, spacing) -> _Band:
    """Bone in a band from 40 mm in front of the bodies to 55 mm behind, 130 mm to either side, ~2 mm grid."""
    sz, sy, sx = spacing
    s = max(1, int(round(2.0 / sx)))
    half_x = int(round(130 / sx)) // s * s
    x0 = max(0, int(x_col) - half_x)
    x1 = min(a.shape[2], int(x_col) + half_x)
    x1 = x0 + (x1 - x0) // s * s
    y_lo = int(max(0, path.min() - 40 / sy))
    y_hi = int(min(a.shape[1], path.max() + 55 / sy))
    y_hi = y_lo + (y_hi - y_lo) // s * s
    nz, ny, nx = a.shape[0], (y_hi - y_lo) // s, (x1 - x0) // s
    # keep per slice only the rows from 40 mm in front of the column to 55 mm behind it
    rows = (np.arange(ny) * s + s / 2 + y_lo)[None, :]
    keep = (rows > path[:, None] - 40 / sy) & (rows < path[:, None] + 55 / sy)
    n = s * s
    bone, dense = np.zeros((nz, ny, nx), bool), np.zeros((nz, ny, nx), bool)
    # A few slices at a time, only the rows some of them keep (the column curves: the band's full depth
    # is twice what one slice keeps); the sum of s×s pixels from strided views, in integers, compared
    # with the thresholds times s² (no float copy of the block). This is most of the count's reading.
    for k0 in range(0, nz, 8):
        k1 = min(nz, k0 + 8)
        kept = np.flatnonzero(keep[k0:k1].any(axis=0))
        if not kept.size:
            continue
        r0, r1 = int(kept[0]), int(kept[-1]) + 1
        block = a[k0:k1, y_lo + r0 * s:y_lo + r1 * s, x0:x1]
        total = np.zeros((k1 - k0, r1 - r0, nx), np.int32)
        for i in range(s):
            for j in range(s):
                total += block[:, i::s, j::s]
        here = keep[k0:k1, r0:r1, None]
        bone[k0:k1, r0:r1] = (total > BONE_HU * n) & here
        dense[k0:k1, r0:r1] = (total > RIB_HU * n) & here
    return _Band(bone, dense, (path - y_lo) / s, (x_col - x0) / s, s * sx, sz)


def _rib_heads(band: _Band) -> list[tuple[float, int]]:
    """(slice index, side −1 right / +1 left) of the medial end of every rib found.

    Looked for in a window beside the column, RIB_CUT_MM..RIB_OUTER_MM out: there the ribs run from the
    transverse processes outwards and down, one separate bar each. A part of bone that crosses the
    window (a transverse process stops short of its outer edge) is a rib or several ribs touching far
    out (a scapula on them); each cluster of its medial end is one rib head.
    """
    bone = band.dense
    nz, ny, nx = bone.shape
    dx = (np.arange(nx) - band.x_mid) * band.pixel
    window = (np.abs(dx) >= RIB_CUT_MM) & (np.abs(dx) <= RIB_OUTER_MM)
    heads = []
    for side in (-1, 1):
        cols = np.flatnonzero(window & (np.sign(dx) == side))
        if cols.size == 0:
            continue
        d = np.abs(dx[cols])
        heads += [(z, side) for z in _ribs_in(bone[:, :, cols], d, band, thinned=False)]
    return heads


def _ribs_in(mask: np.ndarray, d: np.ndarray, band: _Band, thinned: bool) -> list[float]:
    """Head slices of the ribs among the parts of ``mask`` (one side's window; ``d`` mm out per column)."""
    heads = []
    labels, boxes = _parts_of(mask)
    for index, sl in enumerate(boxes, start=1):
        if sl is None:
            continue
        dd = d[sl[2]]
        # d grows (or falls) steadily across a side's columns, so the part's bounding box gives its reach:
        # most parts (specks, transverse processes) are left out before their voxels are looked at
        if min(dd[0], dd[-1]) > RIB_START_MM or max(dd[0], dd[-1]) < RIB_REACH_MM:
            continue
        heads += [z + sl[0].start for z in _heads_of(labels[sl] == index, dd, band, thinned, split=not thinned)]
    return heads


def _heads_of(piece: np.ndarray, d: np.ndarray, band: _Band, thinned: bool, split: bool,
              start_mm: float = RIB_START_MM) -> list[float]:
    """Head slices (in ``piece``) of the ribs one part of bone in the window holds: none, one, or one per
    medial end where ribs touch further out.

    A part too thick for a rib, or dropping further than one rib does in the window, is first split at its
    medial ends (the lower ribs hang close together and touch in thick slices; each keeps its own head);
    one too thick is then looked at once more without its thick lumps: a rib touching a kidney bright with
    contrast, or the liver's edge, is kept; a plate (an iliac wing, a scapula) stays too wide to be one.
    "Too thick" is judged per column across the window (bone and z extent), never by the part's whole drop:
    a lower rib leaving the spine at 50-60 degrees, as on real CT, is a rib.
    """
    reach = d[piece.any(axis=(0, 1))]
    if reach.min() > start_mm or reach.max() < RIB_REACH_MM:
        return []
    zs = np.flatnonzero(piece.any(axis=(1, 2)))
    across = piece.any(axis=1).sum(axis=0)                   # slices holding the part, per column
    height = float(np.median(across[across > 0])) * band.sz
    # a rib is a bar of ~1 cm²; an iliac wing, a scapula or a contrast-filled kidney is a plate or a lump
    section = piece.sum() * band.pixel ** 2 * band.sz / max(float(reach.max() - reach.min()), band.pixel)
    medial = piece & (d < reach.min() + 10)[None, None, :]
    ends, m = ndimage.label(medial.any(axis=(1, 2)))
    too_thick = section > RIB_MAX_SECTION_MM2 or height > RIB_MAX_HEIGHT_MM
    if too_thick or (zs[-1] - zs[0] + 1) * band.sz > RIB_SPLIT_DROP_MM:
        blobs, n = ndimage.label(medial) if split else (None, 0)
        if n > 1:
            # each rib keeps its own medial end at the part's medial edge; a piece cut from a plate
            # (an iliac wing) may start only where the plate's edge crosses the medial zone further out
            return [z for part in _split_at_ends(piece, blobs, n) for z in
                    _heads_of(part, d, band, thinned=False, split=False, start_mm=reach.min() + 5)]
        if too_thick:
            return [] if thinned else _ribs_in(_thin(piece, band.pixel), d, band, thinned=True)
    return [_head_z(piece, d, np.flatnonzero(ends == e), band.sz) for e in range(1, m + 1)]


def _split_at_ends(piece: np.ndarray, ends: np.ndarray, n: int) -> list[np.ndarray]:
    """``piece`` cut into one part per medial end (``ends``: the ends labelled 1..n): every voxel goes to
    the end nearest to it along the bone (a watershed from the ends over a flat image floods in steps
    from all ends at once), so each rib keeps its own length where ribs touch further out.

    Not a watershed over the bone's depth: lower ribs that slope down from the spine cross a kidney bright
    with contrast or their neighbour, and a rib joined to that through a thin spot lost its whole outer
    part to the end whose bone reached the thick lump first (generator 4's ribs, 11 and 12 on seed 11)."""
    from skimage.segmentation import watershed

    regions = watershed(np.zeros(piece.shape, np.uint8), ends, mask=piece)
    return [regions == e for e in range(1, n + 1)]


def _parts_of(mask: np.ndarray) -> tuple[np.ndarray, list]:
    """Labels of the connected parts of a [z, y, x] mask and their bounding boxes (slices in z, y, x).

    Labelled with z as the last axis: scipy labels line by line along the last axis, and the window's
    lines across x are short (~30 pixels); along z the labelling takes ~40 % less time."""
    labels, _ = ndimage.label(np.ascontiguousarray(mask.transpose(2, 1, 0)))
    boxes = [None if box is None else box[::-1] for box in ndimage.find_objects(labels)]
    return labels.transpose(2, 1, 0), boxes


def _thin(bone: np.ndarray, pixel: float) -> np.ndarray:
    """Bone without the thick lumps a rib may touch (a kidney or spleen bright with contrast, the liver's
    edge): in each slice, what an opening by a ~13 mm square keeps is taken away, with a pixel around it."""
    k = max(3, int(round(13.0 / pixel)) | 1)
    u8 = bone.view(np.uint8)
    thick = ndimage.maximum_filter(ndimage.minimum_filter(u8, size=(1, k, k)), size=(1, k + 2, k + 2))
    return bone & (thick == 0)


def _head_z(piece: np.ndarray, d: np.ndarray, ends: np.ndarray, sz: float) -> float:
    """Slice (in ``piece``) where a rib meets the spine: its course over the window's medial 20 mm,
    followed in to RIB_HEAD_MM from the midline (the lower ribs fall steeply as they leave the spine)."""
    margin = int(np.ceil(5 / sz))
    z0, z1 = max(0, ends.min() - margin), ends.max() + margin + 1
    near = piece[z0:z1] & (d < d[piece.any(axis=(0, 1))].min() + 20)[None, None, :]
    zz, _, xx = np.nonzero(near)
    if zz.size < 3 or np.ptp(d[xx]) < 4:
        return float(ends.mean())
    slope = float(np.clip(np.polyfit(d[xx], (zz + z0) * sz, 1)[0], -1.5, 0.5))            # mm of z per mm outwards
    z_mm = float(np.mean((zz + z0) * sz)) + slope * (RIB_HEAD_MM - float(np.mean(d[xx])))
    return z_mm / sz


def _sacrum_span(band: _Band) -> np.ndarray:
    """Per slice, the half-span (mm) of bone at the bodies' depth reaching out from the column."""
    bone = band.bone
    nz, ny, nx = bone.shape
    rows = np.arange(ny)[None, :]
    near = np.abs(rows - band.path_y[:, None]) * band.pixel < 15
    level = (bone & near[:, :, None]).any(axis=1)                    # [z, x]
    mid = int(round(band.x_mid))
    # per slice, the first gap in the bone from the column outwards, to the right and to the left
    towards_right, towards_left = ~level[:, mid::-1], ~level[:, mid:]
    right = np.where(towards_right.any(axis=1), towards_right.argmax(axis=1), mid)
    left = np.where(towards_left.any(axis=1), towards_left.argmax(axis=1), nx - mid)
    return np.where(level[:, mid], np.minimum(left, right) * band.pixel, 0.0)


# -- 5. naming --------------------------------------------------------------------------------------

@dataclass
class _Part:
    """A stretch of the column between two discs (a body), or between a disc and the column's end."""

    lo: float            # slice index of its lower end
    hi: float
    whole: bool
    strength: float      # the weaker of its discs' dips (HU)
    ribs: int = 0        # sides with a rib head (0, 1, 2)
    sacral: bool = False


def _parts(discs: Discs, ribs, span: np.ndarray, sz: float) -> list[_Part]:
    """The column's parts from the head down: the part above the top disc, the bodies, the part below."""
    ks, st = discs.k[::-1], discs.strength[::-1]
    parts = [_Part(ks[0], discs.run[1], False, st[0])]
    parts += [_Part(ks[i + 1], ks[i], True, min(st[i], st[i + 1])) for i in range(len(ks) - 1)]
    parts.append(_Part(discs.run[0], ks[-1], False, st[-1]))
    # A rib is seen where it leaves the transverse process, below its head (on the upper body or the disc
    # above it) by its downward slope: it belongs to the body whose middle is nearest. The parts cut by
    # the column's ends count with the middle of a body of their neighbour's length.
    typical = [parts[1].hi - parts[1].lo, parts[-2].hi - parts[-2].lo] if len(parts) > 2 else [30 / sz] * 2
    centres = [(p.lo + p.hi) / 2 for p in parts]
    centres[0] = parts[0].lo + typical[0] / 2
    centres[-1] = parts[-1].hi - typical[1] / 2
    sides: list[set] = [set() for _ in parts]
    for z, side in ribs:
        if parts[-1].lo <= z <= parts[0].hi:
            sides[int(np.argmin(np.abs(np.array(centres) - z)))].add(side)
    for j, (part, seen) in enumerate(zip(parts, sides)):
        h = part.hi - part.lo
        # A rib seen on one side only counts just below a pair (a short or faint last rib); elsewhere it
        # is more likely a transverse process or a vessel than a lone rib.
        part.ribs = len(seen) if len(seen) == 2 or (j > 0 and len(sides[j - 1]) == 2) else 0
        a, b = int(np.ceil(part.lo + 0.2 * h)), int(np.floor(part.hi - 0.2 * h))
        middle = span[max(a, 0):b + 1]
        long_enough = part.whole or h * sz >= 15.0
        part.sacral = bool(long_enough and middle.size and np.median(middle) >= SACRUM_HALF_SPAN_MM)
    return parts


def _split_by_ribs(discs: Discs, ribs, sz: float) -> Discs:
    """A body much longer than its neighbours that carries two rib pairs is two bodies: the disc between
    them blurred away (thin thoracic discs in thick slices); split it where it dips most."""
    pairs = _rib_pairs(ribs, sz)
    ks, strength = list(discs.k), list(discs.strength)
    for _ in range(len(ks)):
        lengths = np.diff(ks)
        if lengths.size < 2:
            break
        split = None
        for i in range(lengths.size):
            typical = np.median(np.r_[lengths[max(0, i - 2):i], lengths[i + 1:i + 3]])
            # a rib's head sits at the top of its body or on the disc above: count those in the upper part
            held = sum(ks[i] + 0.15 * lengths[i] < z <= ks[i + 1] + 0.1 * lengths[i] for z in pairs)
            if lengths[i] >= 1.3 * typical and held >= 2:
                split = i
                break
        if split is None:
            break
        a, b = int(round(ks[split] * sz)), int(round(ks[split + 1] * sz))
        middle = discs.dip[a + (b - a) // 5:b - (b - a) // 5 + 1]
        at = a + (b - a) // 5 + int(np.argmax(middle)) if middle.size else (a + b) // 2
        ks.insert(split + 1, at / sz)
        strength.insert(split + 1, max(float(discs.dip[at]) if middle.size else 1.0, 1.0))
    return Discs(ks, strength, discs.run, discs.dip)


def _rib_pairs(ribs, sz: float) -> list[float]:
    """Slices of the rib heads seen on both sides within 8 mm of each other (one pair per vertebra)."""
    left = sorted(z for z, side in ribs if side > 0)
    right = sorted(z for z, side in ribs if side < 0)
    return [(z + min(right, key=lambda r: abs(r - z))) / 2 for z in left
            if right and min(abs(r - z) for r in right) * sz <= 8.0]


def _name(discs: Discs, ribs, span: np.ndarray, slice_z: np.ndarray, sz: float) -> SpineCount:
    """Name the bodies from the ribs (down) and from the sacrum (up), flag where the names disagree."""
    discs = _split_by_ribs(discs, ribs, sz)
    parts = _parts(discs, ribs, span, sz)
    n, nz = len(parts), slice_z.size
    # S1: the top of the run of sacral parts at the column's lower end, with a lumbar-type body above it.
    # The lower sacrum narrows (S3–S5, the coccyx): look for the alae up to SACRUM_REACH_MM above the
    # column's lower end (not higher: the first ribs and the clavicles widen the top of the chest too).
    s1 = None
    i = n - 1
    while i > 0 and not parts[i].sacral and (parts[i].hi - discs.run[0]) * sz <= SACRUM_REACH_MM:
        i -= 1
    while i > 0 and parts[i].sacral and (parts[i].lo - discs.run[0]) * sz <= SACRUM_REACH_MM:
        s1, i = i, i - 1
    if s1 is not None and (s1 == 0 or parts[s1 - 1].sacral or not parts[s1 - 1].whole):
        s1 = None
    if s1 is not None and s1 + 1 < n and parts[s1 + 1].sacral:
        # the sacral segments' own dips can leave a sliver under the L5/S1 disc: S1 reaches further down
        l5 = parts[s1 - 1].hi - parts[s1 - 1].lo
        if parts[s1].hi - parts[s1].lo < 0.6 * l5:
            parts[s1] = _Part(parts[s1 + 1].lo, parts[s1].hi, parts[s1 + 1].whole, parts[s1].strength, 0, True)
    # T12: the lowest part bearing a rib above the sacrum, with a part below it that bears none.
    t12 = None
    bearing = [j for j in range(n if s1 is None else s1) if parts[j].ribs]
    if bearing:
        j = bearing[-1]
        below = [p for p in parts[j + 1:] if (p.hi - p.lo) * sz >= 10]
        if below and not below[0].ribs:
            t12 = j
    impossible = ""
    if t12 is not None and s1 is not None and not 4 <= s1 - t12 - 1 <= 6:
        # no spine has fewer than 4 or more than 6 lumbar-type vertebrae: one of the two is something else
        # (the lowest ribs of a chest crop spread at the bodies' depth like the sacrum's alae)
        impossible = (f"what looked like the last rib and the sacrum leaves {s1 - t12 - 1} lumbar-type vertebrae "
                      "between them, and no spine has fewer than 4 or more than 6")
        t12 = s1 = None
    counts = tuple(name for name, anchor in (("ribs", t12), ("sacrum", s1)) if anchor is not None)
    count = SpineCount(counts=counts, discs_mm=[_z_at(k, slice_z) for k in discs.k[::-1]])
    if not counts:
        count.flags.append(impossible or "neither the last rib nor the sacrum in view to count from")
    last = n if s1 is None else s1 + 1          # vertebrae below S1 (S2…) are not reported
    for j in range(last):
        part = parts[j]
        if not part.whole:
            continue
        names = (_from_ribs(j, t12, s1), _offset_name("S1", j - s1) if s1 is not None else "")
        agree = not all(names) or names[0] == names[1]
        confidence = min(1.0, part.strength / 80.0)
        confidence *= 1.0 if (len(counts) == 2 and agree) else 0.7 if (agree and counts) else 0.4
        lo, hi = part.lo, part.hi
        count.vertebrae.append(Vertebra(
            level=names[0] or names[1], top_slice=_slice(hi, nz), bottom_slice=_slice(lo, nz),
            centre_slice=_slice((lo + hi) / 2, nz), top_mm=_z_at(hi, slice_z), bottom_mm=_z_at(lo, slice_z),
            centre_mm=_z_at((lo + hi) / 2, slice_z), rib_bearing=part.ribs > 0,
            confidence=round(float(confidence), 3), level_from_ribs=names[0], level_from_sacrum=names[1]))
    if t12 is not None and s1 is not None:
        count.lumbar_type = s1 - t12 - 1
        if count.lumbar_type != 5:
            count.flags += [DISAGREE, _variant(count.lumbar_type)]
    return count


def _variant(lumbar_type: int) -> str:
    """What 6 or 4 lumbar-type vertebrae can mean (the scan alone cannot tell which)."""
    def between(n: int) -> str:
        return f"{n} lumbar-type vertebrae between the last rib and the sacrum"

    if lumbar_type == 6:
        return f"{between(6)}: an L6 or a lumbarised S1, or 11 rib pairs"
    if lumbar_type == 4:
        return f"{between(4)}: a sacralised L5, or 13 rib pairs"
    return f"{between(lumbar_type)}: the count is unreliable"


def _offset_name(anchor: str, steps: int) -> str:
    """The name ``steps`` vertebrae below ``anchor`` (negative: above); '' past C1 or S1."""
    i = ORDER.index(anchor) + steps
    return ORDER[i] if 0 <= i < len(ORDER) else ""


def _from_ribs(j: int, t12: int | None, s1: int | None) -> str:
    """The name of part ``j`` counted down from the ribs: a sixth vertebra below T12 is "L6" unless it
    is the sacrum's top."""
    if t12 is None:
        return ""
    if j - t12 == 6 and j != s1:
        return "L6"
    return _offset_name("T12", j - t12) if j - t12 <= 6 else ""


def _slice(k: float, nz: int) -> int:
    return int(np.clip(round(k), 0, nz - 1))


def _z_at(k: float, slice_z: np.ndarray) -> float:
    return round(float(np.interp(k, np.arange(slice_z.size), slice_z)), 2)


# -- beside the locator's picks ---------------------------------------------------------------------

def count_text(count: SpineCount | None) -> str:
    """The count in a few words for a study's line:
    ``count: T12 slice 75, L3 slice 51; T12–S1 (7 vertebrae, counted from ribs and sacrum)``."""
    if count is None:
        return ""
    if not count.found:
        return f"count: {count.reason}"
    named = [f"{level} slice {v.centre_slice}" for level in ("T12", "L3") if (v := count.find(level))]
    return "count: " + "; ".join(filter(None, [", ".join(named), count.summary()]))

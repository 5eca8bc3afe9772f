"""A vertebrae mask split into vertebrae, each with its level's label (TotalSegmentator ids 26–50).

A segmentation model paints "vertebrae" as one class; the classical vertebra count
(:func:`~ctviewer.workflows.slice_locator.vertebrae.count_vertebrae`) knows where each whole vertebral
body lies along the spine (disc to disc) and what it is called. :func:`level_vertebrae` joins the two so
that a clinician reads "vertebrae L1" on the mask:

1. *Body seeds.* In the middle half of each counted body's z range (clear of the discs) the largest
   piece of mask in each axial slice is that vertebra (the body, with its pedicles and arch where they
   join it); the spinous process of the vertebra above, which hangs down to this level, is a separate
   piece there and is not taken.
2. *Posterior elements follow their body.* The seeds grow through the mask (a flood by connectivity:
   each voxel takes the label of the seed it is nearest to along the mask), so a spinous process that
   hangs down a level is still its own vertebra's.
3. *What the count does not name stays one class.* Bodies beyond the counted ones (a vertebra cut by the
   scan's edge, the sacrum below S1) are seeded as "level not counted", and so are their processes;
   mask pieces no seed reaches take the counted level of their slice (the z range cut at the discs),
   or "level not counted" outside the counted span.

Where there is no count (no spine found, no whole vertebra in view, vertebrae counted but neither the
ribs nor the sacrum in view to name them) the mask keeps its single class and the result says why.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ctviewer.data.vertebra_ids import VERTEBRA_IDS

#: TotalSegmentator v2's label id of each vertebra, 26 S1 … 50 C1: the one table, ctviewer.data.vertebra_ids.
LEVEL_IDS = VERTEBRA_IDS
#: The name a levelled vertebra has in the label table.
LEVEL_NAME = "vertebrae {}"
#: The name of the mask's voxels no counted level could be given.
NOT_COUNTED = "vertebrae (level not counted)"
#: Seeds are taken from the middle of a body's height, this share of it clear of each disc.
CORE_MARGIN = 0.25
#: Share of a vertebra's front-to-back length (body, canal, arch, spinous process) that is body.
BODY_SHARE = 0.4


@dataclass
class Levelled:
    """A vertebrae mask with levels: ``labels`` on the mask's grid (0 outside it), a group (name, ids,
    label_id, colour) per label written, and what the reader must know (``note``)."""

    labels: np.ndarray
    groups: list[dict] = field(default_factory=list)
    #: The levels written, head to feet ("T10", …, "S1"); empty where the mask kept one class.
    levels: list[str] = field(default_factory=list)
    #: One line: which levels, from what count, its flags; or why the mask kept one class.
    note: str = ""

    @property
    def levelled(self) -> bool:
        return bool(self.levels)


def level_colour(level: str) -> tuple[int, int, int]:
    """A colour per level: neighbours along the spine differ in hue by the golden angle and alternate
    light and dark, so adjacent vertebrae never look alike (the label table's default palette repeats
    after 20 ids and would give C1 the colour of S1's neighbour)."""
    k = LEVEL_IDS[level] - 26
    r, g, b = colorsys.hsv_to_rgb((k * 0.381966) % 1.0, 0.75 if k % 2 else 0.55, 0.95 if k % 2 else 0.8)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def is_vertebrae_group(group: dict) -> bool:
    """Whether a model's output group paints vertebrae: trained on vertebra ids (26–50) and nothing else."""
    ids = {int(i) for i in (group.get("ids") or [])}
    return len(ids) > 1 and ids <= set(LEVEL_IDS.values())


def level_vertebrae(volume, mask: np.ndarray, not_counted_id: int, count=None, cancel=None) -> Levelled:
    """Split the vertebrae ``mask`` (bool, on ``volume``'s grid) into vertebrae with their level ids.

    ``count`` is the scan's SpineCount (counted here when None). Voxels no level can be given get
    ``not_counted_id``; where the count names nothing, every mask voxel does (see the module docstring).
    """
    from ctviewer.imaging.orientation import to_canonical, to_stored

    mask = np.asarray(mask, dtype=bool)
    labels = np.where(mask, not_counted_id, 0).astype(np.uint8 if not_counted_id < 256 else np.uint16)
    one_class = [{"name": NOT_COUNTED, "ids": sorted(LEVEL_IDS.values()), "label_id": int(not_counted_id)}]
    if not mask.any():
        return Levelled(labels, one_class, note="vertebrae kept as one class: the mask is empty")
    if count is None:
        from ctviewer.workflows.slice_locator.vertebrae import count_vertebrae

        count = count_vertebrae(volume, cancel=cancel)
    named = [v for v in count.vertebrae if v.level in LEVEL_IDS]
    if not named:
        why = count.reason if not count.found else ("the vertebrae were counted but not named (neither the "
                                                    "ribs nor the sacrum in view)")
        return Levelled(labels, one_class, note=f"vertebrae kept as one class: {why}")
    canonical = to_canonical(volume.with_array(labels))
    slice_z = _slice_z(canonical)
    out = _split(canonical.array > 0, named, slice_z, canonical.spacing, int(not_counted_id), cancel)
    labels = to_stored(canonical.with_array(out)).array
    levels = [v.level for v in named]
    groups = [{"name": LEVEL_NAME.format(lv), "ids": [LEVEL_IDS[lv]], "label_id": LEVEL_IDS[lv],
               "colour": level_colour(lv)} for lv in levels]
    if (labels == not_counted_id).any():
        groups.append({**one_class[0], "colour": (200, 200, 200)})
    note = "; ".join([f"levels {levels[0]}–{levels[-1]} from the spine count ({len(levels)} vertebrae)"]
                     + list(count.flags))
    return Levelled(np.ascontiguousarray(labels), groups, levels, note)


def _slice_z(canonical) -> np.ndarray:
    n = canonical.shape[0]
    return canonical.index_to_lps(np.stack([np.arange(n), np.zeros(n), np.zeros(n)], axis=1))[:, 2]


def _split(mask: np.ndarray, named, slice_z: np.ndarray, spacing, other: int, cancel) -> np.ndarray:
    """Level ids on the canonical grid (axis 0 towards the head) of the voxels of ``mask``."""
    from skimage.segmentation import watershed

    nz = mask.shape[0]
    ks = np.arange(nz, dtype=float)
    # slices (fractional) of each body's disc-to-disc range; z may fall towards the feet in a flipped scan
    order = np.argsort(slice_z) if slice_z[-1] < slice_z[0] else np.arange(nz)

    def at(mm: float) -> float:
        return float(np.interp(mm, slice_z[order], ks[order]))

    spans = [(min(at(v.bottom_mm), at(v.top_mm)), max(at(v.bottom_mm), at(v.top_mm)), LEVEL_IDS[v.level])
             for v in named]
    lo_all, hi_all = min(s[0] for s in spans), max(s[1] for s in spans)
    typical = float(np.median([hi - lo for lo, hi, _ in spans]))
    box = _bounding_box(mask)
    sub = mask[box]
    z0 = box[0].start
    seeds = np.zeros(sub.shape, dtype=np.int32)
    for lo, hi, label_id in spans:
        margin = CORE_MARGIN * (hi - lo)
        _seed_slices(sub, seeds, lo + margin - z0, hi - margin - z0, label_id)
    # bodies beyond the counted ones: their own processes must not flood into a counted level
    _seed_slices(sub, seeds, hi_all + CORE_MARGIN * typical - z0, np.inf, other)
    _seed_slices(sub, seeds, -np.inf, lo_all - CORE_MARGIN * typical - z0, other)
    if cancel is not None:
        cancel.raise_if_cancelled()
    grown = watershed(np.zeros(sub.shape, dtype=np.uint8), markers=seeds, mask=sub)
    # pieces no seed reaches: the counted level of their slice, cut at the discs
    by_slice = np.full(sub.shape[0], other, dtype=np.int32)
    centres = np.arange(sub.shape[0]) + z0
    for lo, hi, label_id in spans:
        by_slice[(centres >= lo) & (centres < hi)] = label_id
    unreached = sub & (grown == 0)
    grown[unreached] = np.broadcast_to(by_slice[:, None, None], sub.shape)[unreached]
    out = np.zeros(mask.shape, dtype=np.uint8 if other < 256 else np.uint16)
    out[box] = grown
    return out


def _seed_slices(sub: np.ndarray, seeds: np.ndarray, lo: float, hi: float, label_id: int) -> None:
    """Seed ``label_id`` on the largest piece of mask in each slice from ``lo`` to ``hi`` (fractional)."""
    n = sub.shape[0]
    first, last = int(np.ceil(np.clip(lo, 0, n))), int(np.floor(np.clip(hi, -1, n - 1)))
    for k in range(first, last + 1):
        pieces, n = ndimage.label(sub[k])
        if n == 0:
            continue
        sizes = np.bincount(pieces.ravel())
        sizes[0] = 0
        piece = pieces == int(np.argmax(sizes))
        # its front part is body (rows run front to back): a spinous process from the level above that
        # touches this vertebra's arch joins the piece, never the body
        rows = np.nonzero(piece.any(axis=1))[0]
        front = rows[0] + BODY_SHARE * (rows[-1] - rows[0])
        piece[int(np.floor(front)) + 1:] = False
        seeds[k][piece & (seeds[k] == 0)] = label_id


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The mask's extent in y and x (the spine is a thin column: the flood runs on a fraction of the
    scan), all slices in z."""
    ys = np.nonzero(mask.any(axis=(0, 2)))[0]
    xs = np.nonzero(mask.any(axis=(0, 1)))[0]
    return (slice(0, mask.shape[0]), slice(int(ys[0]), int(ys[-1]) + 1), slice(int(xs[0]), int(xs[-1]) + 1))

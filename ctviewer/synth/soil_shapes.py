"""The shapes of a synthetic soil cube: smoothed random walks drawn as chains of capsules (earthworm
channels, roots and their laterals) and rough ellipsoids (stones), painted into a label array.

Coordinates are voxel indices ``(z, y, x)`` as floats; radii are in voxels (the soil cube has cubic
voxels). Painting touches only each shape's bounding box, so a cube of any size costs little here.
"""

from __future__ import annotations

import numpy as np


def walk(rng: np.random.Generator, start, direction, step: float, length: float, shape,
         wander: float = 0.12, down_bias: float = 0.0, min_down: float = -1.0,
         lateral_margin: float | None = None) -> np.ndarray:
    """Points of a smoothed random walk: the direction, not the position, takes random steps, so the
    path curves without kinks. ``min_down`` keeps the depth component of the direction at least that
    (a burrow that keeps going down), ``down_bias`` pulls it downwards a little each step (roots grow
    with gravity). With ``lateral_margin`` the walk bounces off the cube's sides so that it stays
    inside; otherwise it stops once it has left the cube by more than a step."""
    pos = np.asarray(start, dtype=float)
    d = np.asarray(direction, dtype=float)
    d /= np.linalg.norm(d)
    points = [pos.copy()]
    hi = np.asarray(shape, dtype=float) - 1.0
    for _ in range(max(1, int(np.ceil(length / step)))):
        d = d + rng.normal(0.0, wander, 3)
        d[0] = max(d[0] + down_bias, min_down)
        d /= np.linalg.norm(d)
        pos = pos + step * d
        if lateral_margin is not None:
            for ax in (1, 2):
                lo_ax, hi_ax = lateral_margin, hi[ax] - lateral_margin
                if pos[ax] < lo_ax or pos[ax] > hi_ax:
                    pos[ax] = float(np.clip(pos[ax], lo_ax, hi_ax))
                    d[ax] = -d[ax]
        points.append(pos.copy())
        if np.any(pos < -step) or np.any(pos > hi + step):
            break
    return np.array(points)


def paint_tube(labels: np.ndarray, points: np.ndarray, radii, value: int, keep=()) -> int:
    """Paint the capsules (segments with round ends) between consecutive ``points`` with ``value``,
    leaving voxels whose label is in ``keep`` alone; ``radii`` is one radius or one per segment.
    Returns the number of voxels painted (counting overlaps once per segment)."""
    radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(points) - 1,))
    painted = 0
    for p0, p1, r in zip(points[:-1], points[1:], radii):
        box, (z, y, x) = _box(labels.shape, np.minimum(p0, p1) - r, np.maximum(p0, p1) + r)
        if box is None:
            continue
        v = (p1 - p0).astype(np.float32)
        dz, dy, dx = z - np.float32(p0[0]), y - np.float32(p0[1]), x - np.float32(p0[2])
        t = np.clip((dz * v[0] + dy * v[1] + dx * v[2]) / max(float(v @ v), 1e-9), 0.0, 1.0)
        inside = (dz - t * v[0]) ** 2 + (dy - t * v[1]) ** 2 + (dx - t * v[2]) ** 2 <= np.float32(r * r)
        painted += _paint(labels[box], inside, value, keep)
    return painted


def paint_stone(labels: np.ndarray, centre, semi_axes, rotation: np.ndarray, value: int,
                roughness: np.ndarray | None = None, rough: float = 0.12) -> tuple[tuple, np.ndarray] | None:
    """Paint a rotated ellipsoid whose surface is made lumpy by the ``roughness`` field (unit
    variance, the cube's shape). Returns (box slices, mask within the box) of the painted voxels, or
    None when the stone lies outside the cube."""
    centre = np.asarray(centre, dtype=float)
    reach = float(max(semi_axes)) * (1.0 + 3 * rough)
    box, (z, y, x) = _box(labels.shape, centre - reach, centre + reach)
    if box is None:
        return None
    rel = (z - np.float32(centre[0]), y - np.float32(centre[1]), x - np.float32(centre[2]))
    rot = rotation.astype(np.float32)
    e2 = np.zeros(np.broadcast_shapes(z.shape, y.shape, x.shape), np.float32)
    for k, a in enumerate(semi_axes):   # coordinates along the stone's own axes, scaled by its size
        e2 += ((rot[0, k] * rel[0] + rot[1, k] * rel[1] + rot[2, k] * rel[2]) / np.float32(a)) ** 2
    limit = np.float32(1.0) if roughness is None else 1.0 + np.float32(rough) * roughness[box]
    inside = e2 <= limit * limit
    _paint(labels[box], inside, value, ())
    return box, inside


def _box(shape, lo, hi):
    """Slices of the voxels between ``lo`` and ``hi`` (clipped to the cube) and their float32
    open grids, or (None, (None,) * 3) when nothing of the box is inside."""
    lo = np.maximum(np.floor(lo).astype(int), 0)
    hi = np.minimum(np.ceil(hi).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None, (None, None, None)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    grids = np.ogrid[box]
    return box, tuple(g.astype(np.float32) for g in grids)


def _paint(view: np.ndarray, inside: np.ndarray, value: int, keep) -> int:
    if keep:
        inside = inside & ~np.isin(view, keep)
    view[inside] = value
    return int(np.count_nonzero(inside))

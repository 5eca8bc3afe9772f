"""Compiled loops of the local thickness (numba): the distance ridge and painting its balls.

Painting is the costly step: a pore whose medial axis is a sheet (most irregular pores) keeps a
ridge centre per sheet voxel, and writing each one's whole ball is billions of writes on a 400³
cube (87 s through numpy fancy indexing, 20 s as plain loops here). Painting the largest balls first
and skipping, row by row, the voxels already painted writes each voxel once.
Imported only when a local thickness is computed (numba's import and first compile cost seconds;
``cache=True`` keeps the compiled code next to this file).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _contained(dist, z, y, x, sz, sy, sx):
    """True when a neighbour's ball holds the ball centred on (z, y, x)."""
    nz, ny, nx = dist.shape
    r = np.float64(dist[z, y, x])
    for dz in range(-1, 2):
        zz = z + dz
        if zz < 0 or zz >= nz:
            continue
        for dy in range(-1, 2):
            yy = y + dy
            if yy < 0 or yy >= ny:
                continue
            for dx in range(-1, 2):
                xx = x + dx
                if xx < 0 or xx >= nx or (dz == 0 and dy == 0 and dx == 0):
                    continue
                step = math.sqrt((dz * sz) ** 2 + (dy * sy) ** 2 + (dx * sx) ** 2)
                # a hair of tolerance (relative 1e-6) for float32 rounding of the distances
                if dist[zz, yy, xx] >= (r + step) * (1.0 - 1e-6):
                    return True
    return False


@numba.njit(cache=True, parallel=True)
def _ridge_counts(mask, dist, sz, sy, sx):
    nz, ny, nx = mask.shape
    counts = np.zeros(nz, dtype=np.int64)
    for z in numba.prange(nz):
        n = 0
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x] and not _contained(dist, z, y, x, sz, sy, sx):
                    n += 1
        counts[z] = n
    return counts


@numba.njit(cache=True, parallel=True)
def _ridge_fill(mask, dist, sz, sy, sx, starts, centres, radii):
    nz, ny, nx = mask.shape
    for z in numba.prange(nz):
        k = starts[z]
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x] and not _contained(dist, z, y, x, sz, sy, sx):
                    centres[k, 0], centres[k, 1], centres[k, 2] = z, y, x
                    radii[k] = dist[z, y, x]
                    k += 1


def ridge(mask: np.ndarray, dist: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Centres ([n, 3] int16/int32, sorted by slice) and radii (mm, float32) of the balls that no
    neighbour's ball contains: the only ones that can be some voxel's largest covering ball."""
    sz, sy, sx = (float(s) for s in spacing)
    counts = _ridge_counts(mask, dist, sz, sy, sx)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # 16-bit coordinates where the cube allows: the ridge can hold most pore voxels
    centres = np.empty((int(starts[-1]), 3), dtype=np.int16 if max(mask.shape) < 32768 else np.int32)
    radii = np.empty(int(starts[-1]), dtype=np.float32)
    _ridge_fill(mask, dist, sz, sy, sx, starts, centres, radii)
    return centres, radii


@numba.njit(cache=True, inline="always")
def _next_unpainted(parent, i):
    """Union-find over a row: the first unpainted voxel at or after ``i`` (path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True, parallel=True)
def _paint(out, centres, radii, sz, sy, sx, s, z_bounds, first, last):
    """Thread t owns slices z_bounds[t]..z_bounds[t+1] and paints every ball's part in them, so no
    two threads write the same voxel. Balls go largest first and each row skips what is painted
    (a union-find of "next unpainted voxel" per row), so every voxel is written once, with the
    largest diameter covering it, instead of once per ball covering it."""
    nz, ny, nx = out.shape
    row = nx + 1                                # one more per row: a sentinel that is never painted
    for t in numba.prange(z_bounds.size - 1):
        z0, z1 = z_bounds[t], z_bounds[t + 1]
        parent = np.arange((z1 - z0) * ny * row).astype(np.int32)
        order = np.argsort(-radii[first[t]:last[t]])
        for j in range(order.size):
            k = first[t] + order[j]
            r = np.float64(radii[k])
            r2 = r * r * (1.0 - 1e-6)          # strictly inside: the ball holds no non-pore voxel centre
            value = np.float32(max(2.0 * r - s, s))
            cz, cy, cx = np.int64(centres[k, 0]), np.int64(centres[k, 1]), np.int64(centres[k, 2])
            reach_z = int(r / sz)
            for z in range(max(cz - reach_z, z0), min(cz + reach_z + 1, z1)):
                rem_z = r2 - ((z - cz) * sz) ** 2
                if rem_z <= 0:
                    continue
                reach_y = int(math.sqrt(rem_z) / sy)
                for y in range(max(cy - reach_y, 0), min(cy + reach_y + 1, ny)):
                    rem = rem_z - ((y - cy) * sy) ** 2
                    if rem <= 0:
                        continue
                    w = int(math.sqrt(rem) / sx)
                    while w > 0 and (w * sx) ** 2 >= rem:
                        w -= 1
                    base = ((z - z0) * ny + y) * row
                    stop = min(cx + w, nx - 1)
                    x = _next_unpainted(parent, base + max(cx - w, 0)) - base
                    while x <= stop:
                        out[z, y, x] = value
                        parent[base + x] = base + x + 1
                        x = _next_unpainted(parent, base + x + 1) - base


def paint(out: np.ndarray, centres: np.ndarray, radii: np.ndarray, spacing, parts: int = 32) -> None:
    """Write into ``out`` (zeros, float32) the diameter ``2 r - s`` of the largest ball covering each
    voxel (``s`` the smallest voxel side; see :mod:`ctviewer.workflows.soil.pores`)."""
    sz, sy, sx = (float(v) for v in spacing)
    nz = out.shape[0]
    reach = int(float(radii.max()) / sz) + 1 if radii.size else 0
    z_bounds = np.unique(np.linspace(0, nz, min(parts, nz) + 1).astype(np.int64))
    cz = centres[:, 0]
    first = np.searchsorted(cz, z_bounds[:-1] - reach).astype(np.int64)
    last = np.searchsorted(cz, z_bounds[1:] + reach).astype(np.int64)
    _paint(out, centres, radii, sz, sy, sx, min(spacing), z_bounds, first, last)

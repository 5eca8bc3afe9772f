"""Drawing shapes into a chunk of thin sub-slices.

The generator renders the scan chunk by chunk along z. A :class:`Canvas` holds one chunk: the HU
(float32) and label (uint8) voxels of thin sub-slices, and the mm position of every sub-slice, row and
column in the generator's anatomical frame (x to the patient's left, y posterior, z superior, z = 0 at
the top of S1). Every shape knows its bounding box and is evaluated only inside it, as a signed
distance (mm, negative inside) on broadcast coordinate grids, so big scans stay fast.

Shapes are painted in order: a later shape replaces what lies under it. A :class:`Bone` paints the
outer surface of all its parts with cortical bone first and then their cores with cancellous bone, so
the parts of one vertebra share one marrow cavity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-6


@dataclass
class Window:
    """The voxels of a canvas inside one bounding box, with broadcastable coordinates (mm)."""

    sl: tuple[slice, slice, slice]
    z: np.ndarray  # (n, 1, 1)
    y: np.ndarray  # (1, m, 1)
    x: np.ndarray  # (1, 1, l)


class Canvas:
    def __init__(self, z: np.ndarray, y: np.ndarray, x: np.ndarray, hu: np.ndarray, lab: np.ndarray):
        self.z = np.asarray(z, dtype=np.float32)
        self.y = np.asarray(y, dtype=np.float32)
        self.x = np.asarray(x, dtype=np.float32)
        self.hu = hu
        self.lab = lab
        #: In-plane voxel size (mm): the width over which a surface is blurred (partial volume).
        self.pixel = float(abs(self.x[1] - self.x[0])) if len(self.x) > 1 else 1.0

    def window(self, lo, hi) -> Window | None:
        """The part of the canvas inside the box ``lo``..``hi`` ((x, y, z) mm), or None."""
        i0, i1 = np.searchsorted(self.x, lo[0]), np.searchsorted(self.x, hi[0], "right")
        j0, j1 = np.searchsorted(self.y, lo[1]), np.searchsorted(self.y, hi[1], "right")
        k0, k1 = np.searchsorted(self.z, lo[2]), np.searchsorted(self.z, hi[2], "right")
        if i0 >= i1 or j0 >= j1 or k0 >= k1:
            return None
        return Window((slice(k0, k1), slice(j0, j1), slice(i0, i1)),
                      self.z[k0:k1, None, None], self.y[None, j0:j1, None], self.x[None, None, i0:i1])

    def paint(self, win: Window, mask: np.ndarray, value, label: int | None = None) -> None:
        mask = np.broadcast_to(mask, self.hu[win.sl].shape)
        if np.ndim(value) == 0:
            self.hu[win.sl][mask] = value
        else:
            self.hu[win.sl][mask] = np.broadcast_to(value, mask.shape)[mask]
        if label is not None:
            self.lab[win.sl][mask] = label

    @property
    def z_range(self) -> tuple[float, float]:
        return float(self.z[0]), float(self.z[-1])


# -- geometry: each returns a signed distance (mm, < 0 inside) on a window ---------------------

def tilt_matrix(angle: float) -> np.ndarray:
    """Rotation about the left-right axis: local axis w (the long axis) leans posteriorly by ``angle``.

    Columns are the world directions of the local axes (u = left, v = posterior, w = superior).
    """
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


class Geometry:
    lo: np.ndarray
    hi: np.ndarray

    def sdf(self, w: Window) -> np.ndarray:
        raise NotImplementedError


def _local(w: Window, centre, rot):
    dx, dy, dz = w.x - centre[0], w.y - centre[1], w.z - centre[2]
    if rot is None:
        return dx, dy, dz
    r = rot
    return (r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz,
            r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz,
            r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz)


def _box_of(centre, rot, half) -> tuple[np.ndarray, np.ndarray]:
    centre = np.asarray(centre, dtype=float)
    half = np.asarray(half, dtype=float)
    extent = half if rot is None else np.abs(rot) @ half
    return centre - extent - 1.0, centre + extent + 1.0


class Ellipsoid(Geometry):
    def __init__(self, centre, semi, rot=None):
        self.c = np.asarray(centre, dtype=float)
        self.semi = np.maximum(np.asarray(semi, dtype=float), 0.5)
        self.rot = rot
        self.lo, self.hi = _box_of(self.c, rot, self.semi)

    def sdf(self, w):
        u, v, t = _local(w, self.c, self.rot)
        a, b, c = self.semi
        f = (u / a) ** 2 + (v / b) ** 2 + (t / c) ** 2
        g = 2 * np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2 + (t / c**2) ** 2) + _EPS
        return (f - 1) / g


class Cylinder(Geometry):
    """An elliptic cylinder (a vertebral body, a disc): semi-axes (u, v) and half height along w.

    ``flat_back`` cuts the posterior side flat at that fraction of the v semi-axis (the back of a
    vertebral body faces the spinal canal as a flat or slightly concave wall).
    """

    def __init__(self, centre, semi, rot=None, flat_back: float = 1.0):
        self.c = np.asarray(centre, dtype=float)
        self.semi = np.maximum(np.asarray(semi, dtype=float), 0.5)
        self.rot = rot
        self.flat_back = flat_back
        self.lo, self.hi = _box_of(self.c, rot, self.semi)

    def sdf(self, w):
        u, v, t = _local(w, self.c, self.rot)
        a, b, h = self.semi
        f = (u / a) ** 2 + (v / b) ** 2
        g = 2 * np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) + _EPS
        d = np.maximum((f - 1) / g, np.abs(t) - h)
        if self.flat_back < 1.0:
            d = np.maximum(d, v - self.flat_back * b)
        return d


class Capsule(Geometry):
    """All points within ``r`` of the segment a–b (a process, a rib piece, a vessel piece)."""

    def __init__(self, a, b, r: float, r_end: float | None = None):
        self.a = np.asarray(a, dtype=float)
        self.b = np.asarray(b, dtype=float)
        self.r0 = float(r)
        self.r1 = float(r if r_end is None else r_end)
        rmax = max(self.r0, self.r1)
        self.lo = np.minimum(self.a, self.b) - rmax - 1.0
        self.hi = np.maximum(self.a, self.b) + rmax + 1.0

    def sdf(self, w):
        ab = self.b - self.a
        ll = float(ab @ ab) + _EPS
        dx, dy, dz = w.x - self.a[0], w.y - self.a[1], w.z - self.a[2]
        t = np.clip((dx * ab[0] + dy * ab[1] + dz * ab[2]) / ll, 0.0, 1.0)
        ex, ey, ez = dx - t * ab[0], dy - t * ab[1], dz - t * ab[2]
        r = self.r0 + (self.r1 - self.r0) * t
        return np.sqrt(ex * ex + ey * ey + ez * ez) - r


def tube(points, radii) -> list[Capsule]:
    """A curved tube as a chain of capsules through ``points`` (N×3 mm) with radii per point."""
    points = np.asarray(points, dtype=float)
    radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(points),))
    return [Capsule(points[n], points[n + 1], radii[n], radii[n + 1]) for n in range(len(points) - 1)]


# -- painters ----------------------------------------------------------------------------------

class Shape:
    """Something painted into a canvas; ``zmin``/``zmax`` let the renderer skip it quickly."""

    zmin: float
    zmax: float

    def draw(self, canvas: Canvas) -> None:
        raise NotImplementedError


class Solid(Shape):
    """Soft tissue: one HU value (or a callable of the window) and one label over its geometries."""

    def __init__(self, parts, hu, label: int | None):
        self.parts = parts if isinstance(parts, (list, tuple)) else [parts]
        self.hu = hu
        self.label = label
        self.zmin = min(p.lo[2] for p in self.parts)
        self.zmax = max(p.hi[2] for p in self.parts)

    def draw(self, canvas):
        for part in self.parts:
            w = canvas.window(part.lo, part.hi)
            if w is not None:
                inside = part.sdf(w) <= 0
                canvas.paint(w, inside, self.hu(w) if callable(self.hu) else self.hu, self.label)


class Bone(Shape):
    """Cortical shell (``cortex_mm`` thick) around a cancellous core, over one or many parts."""

    def __init__(self, parts, label: int | None, hu_cortex: float, hu_core: float, cortex_mm: float = 1.2,
                 part_labels: list[int] | None = None):
        self.parts = parts if isinstance(parts, (list, tuple)) else [parts]
        self.label = label
        # one bone under several labels (the sacrum's S1 and the rest): one cortex around the whole, no
        # cortical line where the labels meet, as in a fused bone
        self.part_labels = part_labels or [label] * len(self.parts)
        self.hu_cortex = hu_cortex
        self.hu_core = hu_core
        self.cortex_mm = cortex_mm
        self.zmin = min(p.lo[2] for p in self.parts)
        self.zmax = max(p.hi[2] for p in self.parts)

    def draw(self, canvas):
        # partial volume across the surface: the share of a voxel inside the bone (and inside its core)
        # ramps over one pixel, so a thin cortex reads lower than solid compact bone, as in real CT
        px = canvas.pixel
        cores = []
        for part, label in zip(self.parts, self.part_labels):
            w = canvas.window(part.lo, part.hi)
            if w is None:
                continue
            d = part.sdf(w)
            near = d < px / 2
            if not near.any():
                continue
            sub = canvas.hu[w.sl]
            occ = np.clip(0.5 - d[near] / px, 0.0, 1.0)
            sub[near] += (self.hu_cortex - sub[near]) * occ
            if label is not None:
                canvas.lab[w.sl][d <= 0] = label
            cores.append((w, near, d[near]))
        for w, near, d in cores:
            sub = canvas.hu[w.sl]
            occ = np.clip(0.5 - (d + self.cortex_mm) / px, 0.0, 1.0)
            sub[near] += (self.hu_core - sub[near]) * occ


class Custom(Shape):
    """A shape drawn by a function ``draw(canvas)`` between ``zmin`` and ``zmax``."""

    def __init__(self, zmin: float, zmax: float, fn):
        self.zmin, self.zmax, self.fn = float(zmin), float(zmax), fn

    def draw(self, canvas):
        self.fn(canvas)

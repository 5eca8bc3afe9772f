"""The vertebral column: level sizes, the sagittal curve, vertebrae, discs, sacrum and spinal canal.

Anatomical frame of the generator: x to the patient's left, y posterior, z superior (mm), z = 0 at the
superior endplate of S1, and y = 0 at the skin of the back, which lies flat on the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctviewer.data.vertebra_ids import SACRUM_ID, VERTEBRA_IDS, vertebra_id
from ctviewer.synth.canvas import Bone, Capsule, Cylinder, Ellipsoid, Solid, tilt_matrix, tube
from ctviewer.synth.params import SPINE_RANGES, Draw, TorsoParams

#: Vertebrae and sacrum take their ids from ctviewer.data.vertebra_ids (TotalSegmentator's; an L6 gets
#: 210); the spinal cord has TotalSegmentator's 79, the discs our 203 (they have none).
S1_ID = VERTEBRA_IDS["S1"]
SPINAL_CORD_ID, DISC_ID = 79, 203


def _group(name: str, lumbar_count: int) -> str:
    kind, n = name[0], int(name[1:])
    if kind == "C":
        return "C"
    if kind == "T":
        return "T1-T4" if n <= 4 else "T5-T9" if n <= 9 else "T10-T12"
    # the last two lumbar vertebrae are shaped like L4–L5 whatever their number (4 or 6 lumbar)
    if n >= lumbar_count - 1:
        return "L4-L5"
    return "L3" if n == lumbar_count - 2 else "L1-L2"


@dataclass
class Vertebra:
    name: str
    label: int
    group: str
    height: float
    width: float
    depth: float
    disc_below: float
    z_bottom: float = 0.0
    z_top: float = 0.0
    y: float = 0.0         # body centre, front to back
    tilt: float = 0.0      # sagittal lean of its long axis (rad, + = top leans posteriorly)

    @property
    def z_centre(self) -> float:
        return (self.z_bottom + self.z_top) / 2

    @property
    def kind(self) -> str:
        return self.name[0]

    @property
    def number(self) -> int:
        return int(self.name[1:])


class Spine:
    """Vertebrae C4…L5 (or L4/L6) from top to bottom, their z extents and the sagittal curve."""

    def __init__(self, p: TorsoParams, draw: Draw, fat_back: float):
        self.p = p
        names = [f"C{n}" for n in (4, 5, 6, 7)] + [f"T{n}" for n in range(1, 13)]
        names += [f"L{n}" for n in range(1, p.lumbar_count + 1)]
        self.vertebrae = self._sizes(names, draw)
        self._stack()
        self.fat_back = fat_back
        self._curve()
        for v in self.vertebrae:
            v.y = float(self.y_at(v.z_centre))
            v.tilt = float(np.arctan(self.slope_at(v.z_centre)))

    # -- sizes and heights ---------------------------------------------------------------------
    def _sizes(self, names, draw: Draw) -> list[Vertebra]:
        p = self.p
        size = (0.5 + 0.5 * p.height_scale) * (0.95 if p.sex == "female" else 1.0)
        scan_u = {key: draw.unit() for key in ("height", "width", "depth", "disc")}
        groups = [_group(n, p.lumbar_count) for n in names]
        out = []
        for name, group in zip(names, groups):
            members = [n for n, g in zip(names, groups) if g == group]
            pos = members.index(name) / max(len(members) - 1, 1) if len(members) > 1 else 0.5
            dims = {}
            for key, (lo, hi) in SPINE_RANGES[group].items():
                # grow down the group, shift by one per-scan variate, wiggle a little per level
                f = np.clip(0.2 + 0.6 * pos + 0.6 * scan_u[key] + 0.3 * draw.unit(), 0.0, 1.0)
                dims[key] = lo + (hi - lo) * f
            out.append(Vertebra(name, vertebra_id(name), group,
                                height=dims["height"] * p.height_scale, width=dims["width"] * size,
                                depth=dims["depth"] * size, disc_below=dims["disc"] * p.height_scale))
        last = out[-1]
        if p.sacralised_l5:  # a sacralised last lumbar vertebra sits on a thin, partly fused disc
            last.disc_below = 3.0
        return out

    def _stack(self) -> None:
        z = 0.0
        for v in reversed(self.vertebrae):
            v.z_bottom = z + v.disc_below
            v.z_top = v.z_bottom + v.height
            z = v.z_top

    def __getitem__(self, name: str) -> Vertebra:
        for v in self.vertebrae:
            if v.name == name:
                return v
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(v.name == name for v in self.vertebrae)

    @property
    def last_lumbar(self) -> Vertebra:
        return self.vertebrae[-1]

    def thoracic(self) -> list[Vertebra]:
        return [v for v in self.vertebrae if v.kind == "T"]

    # -- the sagittal curve --------------------------------------------------------------------
    def _curve(self) -> None:
        """Depth of the vertebral body centres in front of the back skin along z.

        Supine on the table the back is flat; thoracic kyphosis brings mid-thoracic bodies nearer to
        it, lumbar lordosis takes the lumbar bodies forward (ANATOMY.md "Spine").
        """
        p = self.p
        self.z_t1 = self["T1"].z_top
        self.z_l1 = self["L1"].z_top
        self.z_thl = self["T12"].z_bottom
        zs = np.linspace(-20.0, self.vertebrae[0].z_top + 150.0, 800)
        thor = np.where((zs > self.z_thl) & (zs < self.z_t1),
                        np.sin(np.pi * np.clip((zs - self.z_thl) / (self.z_t1 - self.z_thl), 0, 1)), 0.0)
        lum = np.where((zs > 0) & (zs < self.z_l1), np.sin(np.pi * np.clip(zs / self.z_l1, 0, 1)) ** 1.2, 0.0)
        depth = 80.0 + 0.6 * p.kyphosis_mm - p.kyphosis_mm * thor + p.lordosis_mm * lum
        depth += np.where(zs > self.z_t1, 0.25 * (zs - self.z_t1), 0.0)  # cervical lordosis
        self._zs = zs
        self._ys = -(self.fat_back + depth)
        self._slope = np.gradient(self._ys, zs)

    def y_at(self, z):
        return np.interp(z, self._zs, self._ys)

    def slope_at(self, z):
        return np.interp(z, self._zs, self._slope)

    def vertebra_at(self, z: float) -> Vertebra:
        """The vertebra whose body (with the disc below it) contains height z (nearest otherwise)."""
        for v in self.vertebrae:
            if z >= v.z_bottom - v.disc_below:
                return v
        return self.vertebrae[-1]

    def width_at(self, z):
        zc = [v.z_centre for v in reversed(self.vertebrae)]
        return np.interp(z, zc, [v.width for v in reversed(self.vertebrae)])

    def depth_at(self, z):
        zc = [v.z_centre for v in reversed(self.vertebrae)]
        return np.interp(z, zc, [v.depth for v in reversed(self.vertebrae)])


# -- drawing ----------------------------------------------------------------------------------------

def _world(v: Vertebra, local) -> np.ndarray:
    return np.array([0.0, v.y, v.z_centre]) + tilt_matrix(v.tilt) @ np.asarray(local, dtype=float)


def posterior_elements(v: Vertebra, lumbar_count: int) -> list:
    """Pedicles, laminae, spinous and transverse processes and facets of one vertebra (local frame)."""
    lumbar, cervical = v.kind == "L", v.kind == "C"
    n = v.number
    W, D, H = v.width, v.depth, v.height
    r_ped = 5.5 if lumbar else 4.0 if v.kind == "T" else 3.0
    canal_w = 22.0 if lumbar else 17.0
    canal_d = 16.0 if lumbar else 14.0
    pw = canal_w / 2 + r_ped
    ph = 0.15 * H
    ped_front, ped_back = D / 2 * 0.6, D / 2 + 0.25 * D
    apex = (0.0, ped_back + canal_d * 0.7, ph - 0.15 * H)  # where the laminae meet
    # thoracic spinous processes slope steeply down (ANATOMY.md), lumbar ones run straight back
    if lumbar:
        sp_angle, sp_len, r_sp = np.radians(8), 30.0, 4.5
    elif cervical:
        sp_angle, sp_len, r_sp = np.radians(15), 22.0 + 14.0 * (n == 7), 3.0
    else:
        sp_angle = np.radians(25 + 35 * np.sin(np.pi * np.clip((n - 1) / 10, 0, 1)))
        sp_len, r_sp = 36.0 + 4.0 * (n <= 2), 3.5
    tip = (0.0, apex[1] + sp_len * np.cos(sp_angle), apex[2] - sp_len * np.sin(sp_angle))
    parts = [Capsule(apex, tip, r_sp)]
    if lumbar:  # a lumbar spinous process is a tall plate: add its lower edge
        parts.append(Capsule((0, apex[1], apex[2] - 8), (0, tip[1], tip[2] - 8), r_sp - 0.5))
    for s in (-1.0, 1.0):
        ped_a, ped_b = (s * pw, ped_front, ph), (s * pw, ped_back, ph)
        parts += [Capsule(ped_a, ped_b, r_ped), Capsule(ped_b, (s * 2.0, apex[1], apex[2]), 3.5 if not lumbar else 4.5)]
        # transverse processes: thoracic ones reach back and out to carry the rib tubercles; lumbar
        # ones run sideways, longest at L3 and short at L1 and L5 (ANATOMY.md)
        if lumbar:
            rel = (n - 1) / max(lumbar_count - 1, 1)
            length = 10.0 + 18.0 * np.sin(np.pi * np.clip(rel * 1.05, 0, 1)) ** 1.5 + (4.0 if rel >= 1 else 0)
            tp_tip = (s * (W / 2 + length), ped_back - 2, ph)
            r_tp = 4.0
        elif cervical:
            tp_tip, r_tp = (s * (pw + 10), ped_front, ph), 3.0
        else:
            length = 26.0 - 1.2 * (n - 1)
            tp_tip, r_tp = (s * (pw + length), ped_back + 12, ph + 3), 4.5
        parts.append(Capsule((s * pw, ped_back, ph), tp_tip, r_tp))
        # articular processes above and below the pedicle–lamina junction
        parts.append(Ellipsoid((s * (pw + 1), ped_back + 3, H / 2 + 1), (5, 6, 6)))
        parts.append(Ellipsoid((s * (pw - 1), ped_back + 6, -H / 2 - 1), (5, 6, 6)))
    return parts, (ped_back, canal_d)


def vertebra_shapes(v: Vertebra, draw: Draw, hu_cortex: float, hu_core: float, lumbar_count: int,
                    sacralised: bool) -> list[Bone]:
    R = tilt_matrix(v.tilt)
    centre = np.array([0.0, v.y, v.z_centre])
    body = Cylinder(centre, (v.width / 2, v.depth / 2, v.height / 2), R, flat_back=0.85)
    local_parts, _ = posterior_elements(v, lumbar_count)
    if sacralised:
        # broad transverse processes bridging to the sacral alae (ANATOMY.md variants)
        for s in (-1.0, 1.0):
            local_parts.append(Ellipsoid((s * (v.width / 2 + 22), v.depth * 0.3, -v.height * 0.35), (24, 11, 14)))
    posterior = [_to_world(part, v, R) for part in local_parts]
    core = hu_core * (1.0 + 0.12 * draw.unit())
    # The body is a thin shell over spongy bone (label mean ~180–300 HU). Pedicles, laminae and facets
    # are mostly compact bone: seen end-on in a frontal MIP the pedicles are the bright rings real
    # projections show, which a thin shell would blur away at CT resolution.
    return [Bone([body], v.label, hu_cortex, core, cortex_mm=0.4),
            Bone(posterior, v.label, hu_cortex, core, cortex_mm=0.6)]


def _to_world(part, v: Vertebra, R):
    if isinstance(part, Capsule):
        return Capsule(_world(v, part.a), _world(v, part.b), part.r0, part.r1)
    return Ellipsoid(_world(v, part.c), part.semi, R)


def disc_shapes(spine: Spine, hu_disc: float) -> list[Solid]:
    out = []
    verts = spine.vertebrae
    for upper, lower in zip(verts[:-1], verts[1:]):
        z = (upper.z_bottom + lower.z_top) / 2
        half = (upper.z_bottom - lower.z_top) / 2 + 0.6
        semi = ((upper.width + lower.width) / 4, (upper.depth + lower.depth) / 4 * 0.97, half)
        out.append(Solid(Cylinder((0, spine.y_at(z), z), semi, tilt_matrix(np.arctan(spine.slope_at(z))),
                                  flat_back=0.85), hu_disc, DISC_ID))
    last = spine.last_lumbar
    half = last.disc_below / 2 + 0.6
    z = last.z_bottom - last.disc_below / 2
    out.append(Solid(Cylinder((0, spine.y_at(z) - 2, z), (last.width / 2, last.depth / 2, half),
                              tilt_matrix(last.tilt - 0.15), flat_back=0.85), hu_disc, DISC_ID))
    return out


@dataclass
class Sacrum:
    """Centreline of the sacrum and coccyx: segment centres, directions, sizes (for pelvis and canal)."""

    centres: list[np.ndarray]
    tilts: list[float]
    lengths: list[float]
    widths: list[float]
    ala_widths: list[float]
    depths: list[float]


def sacrum_layout(spine: Spine, p: TorsoParams, draw: Draw) -> Sacrum:
    """S1–S5 and three coccygeal pieces, tilted backwards 30–45° at S1 and curving forward below."""
    scale = p.height_scale
    size = (0.5 + 0.5 * p.height_scale) * (1.05 if p.sex == "female" else 1.0)
    lengths = [28, 24, 20, 15, 12, 9, 8, 7]
    widths = [50, 40, 32, 24, 18, 14, 11, 8]
    alae = [105 + 8 * (p.sex == "female"), 92, 70, 42, 26, 14, 11, 8]
    depths = [30, 24, 20, 15, 12, 10, 8, 7]
    curvature = np.radians(draw(35, 55))
    last = spine.last_lumbar
    point = np.array([0.0, spine.y_at(0.0) + 0.1 * last.depth, 0.0])
    total = sum(lengths) * scale
    s = 0.0
    centres, tilts = [], []
    for length in lengths:
        length *= scale
        alpha = np.radians(p.sacral_tilt_deg) + curvature * (s + length / 2) / total
        down = np.array([0.0, np.sin(alpha), -np.cos(alpha)])
        centres.append(point + down * length / 2)
        tilts.append(-alpha)
        point = point + down * length
        s += length
    return Sacrum(centres, tilts, [ln * scale for ln in lengths], [w * size for w in widths],
                  [a * size for a in alae], [d * size for d in depths])


def sacrum_shapes(sac: Sacrum, hu_cortex: float, hu_core: float) -> list[Bone]:
    s1_parts, rest = [], []
    for n, (c, tilt, ln, w, ala, d) in enumerate(zip(sac.centres, sac.tilts, sac.lengths, sac.widths,
                                                     sac.ala_widths, sac.depths)):
        R = tilt_matrix(tilt)
        # segments overlap by a few mm: tilted flat-ended blocks otherwise leave wedge gaps on the convex
        # side that read as extra discs below L5; the real sacrum is one fused curved bone
        parts = [Cylinder(c, (w / 2, d / 2, ln / 2 + 2.5), R, flat_back=0.9)]
        if n < 5:
            # lateral masses (alae) and the median sacral crest behind the sacral canal
            parts.append(Cylinder(c + R @ np.array([0, 0.3 * d, 0]), (ala / 2, 0.45 * d, ln / 2 * 0.95), R))
            crest = c + R @ np.array([0, d / 2 + 10, 0])
            parts.append(Capsule(crest + R @ np.array([0, 0, ln / 3]), crest - R @ np.array([0, 0, ln / 3]), 3.5))
        (s1_parts if n == 0 else rest).extend(parts)
    labels = [S1_ID] * len(s1_parts) + [SACRUM_ID] * len(rest)
    return [Bone(s1_parts + rest, S1_ID, hu_cortex, hu_core, 1.2, part_labels=labels)]


def canal_shapes(spine: Spine, sac: Sacrum, hu_csf: float, hu_cord: float, z_top: float) -> list[Solid]:
    """CSF in the spinal canal and the cord down to the conus at L1–L2 (label 79)."""
    pts, radii = [], []
    for v in spine.vertebrae:
        canal_d = 16.0 if v.kind == "L" else 14.0
        front, back = 0.425 * v.depth, 0.75 * v.depth + 0.7 * canal_d - 3.0
        pts.append(_world(v, (0, (front + back) / 2, 0)))
        radii.append(8.0 if v.kind == "L" else 6.5)
    top = pts[0] + np.array([0, 0, 40.0])
    pts = [top] + pts
    radii = [radii[0]] + radii
    for c, tilt, d in list(zip(sac.centres, sac.tilts, sac.depths))[:3]:
        pts.append(c + tilt_matrix(tilt) @ np.array([0, d / 2 + 3, 0]))
        radii.append(6.0)
    pts, radii = np.array(pts), np.array(radii)
    shapes = [Solid(tube(pts, radii), hu_csf, 0)]
    conus = spine["L1"].z_bottom
    keep = pts[:, 2] >= conus - 5
    cord = pts[keep]
    shapes.append(Solid(tube(cord, np.linspace(5.0, 3.0, len(cord))), hu_cord, SPINAL_CORD_ID))
    return shapes

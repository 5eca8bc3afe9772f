"""The thoracic cage and shoulder girdle: ribs, costal cartilage, sternum, clavicles, scapulae, arms."""

from __future__ import annotations

import numpy as np

from ctviewer.synth.canvas import Bone, Capsule, Cylinder, Ellipsoid, Geometry, Solid, tilt_matrix, tube
from ctviewer.synth.params import Draw, TorsoParams
from ctviewer.synth.spine import Spine

STERNUM_ID, COSTAL_CARTILAGE_ID = 116, 117
HUMERUS_ID = {+1: 69, -1: 70}
SCAPULA_ID = {+1: 71, -1: 72}
CLAVICLE_ID = {+1: 73, -1: 74}


def rib_id(n: int, side: int) -> int:
    """TotalSegmentator v2: ribs left 1–12 = 92–103, right 1–12 = 104–115; a 13th pair gets 211/212."""
    if n == 13:
        return 211 if side > 0 else 212
    return (91 if side > 0 else 103) + n


class Cage:
    """Half-width A, half-depth B and centre yc of the rib cage at height z (an ellipse per slice).

    Small at T1, widest around T9–T10 (the lower ribs), its back pole just behind the vertebral
    bodies, where the ribs reach back to the transverse processes.
    """

    A_MID = [55, 78, 95, 106, 114, 120, 125, 128, 130, 131, 130, 127, 123, 118, 112]
    B_MID = [40, 55, 68, 78, 85, 90, 95, 98, 100, 100, 98, 95, 92, 88, 84]

    def __init__(self, spine: Spine, p: TorsoParams, draw: Draw):
        names = [f"T{n}" for n in range(1, 13)] + [f"L{n}" for n in (1, 2, 3)]
        width = p.width_scale * (0.94 if p.sex == "female" else 1.0) * (1 + 0.12 * draw.unit())
        depth = p.depth_scale ** 0.5 * (1 + 0.12 * draw.unit())
        zs = [spine[n].z_centre for n in names]
        self.z = np.array(zs[::-1])
        self.A = np.array(self.A_MID[::-1]) * width
        self.B = np.array(self.B_MID[::-1]) * depth
        self.spine = spine
        self.back_gap = 28.0  # back pole of the cage behind the vertebral body centres (mm)

    def at(self, z):
        A = np.interp(z, self.z, self.A)
        B = np.interp(z, self.z, self.B)
        yc = self.spine.y_at(z) + self.back_gap - B
        return A, B, yc

    def front(self, z):
        A, B, yc = self.at(z)
        return yc - B


class Sternum:
    def __init__(self, spine: Spine, cage: Cage, p: TorsoParams, draw: Draw):
        # manubrium top (jugular notch) near T3, sternal angle ~5 cm lower, xiphoid at T9–T10
        self.z_jugular = spine["T3"].z_top + draw(-8, 8)
        self.z_angle = self.z_jugular - 48 * p.height_scale
        self.z_xiphoid = spine["T9"].z_bottom + draw(-10, 10)
        self.cage = cage
        attach = [self.z_jugular - 12, self.z_angle]
        attach += list(np.linspace(self.z_angle - (self.z_angle - self.z_xiphoid) / 5, self.z_xiphoid + 4, 5))
        self.attach = attach  # where the cartilage of ribs 1–7 meets the sternum

    def y(self, z):
        return self.cage.front(z) + 3.0

    def shapes(self, hu_cortex, hu_core) -> list[Bone]:
        def piece(z0, z1, half_width, half_depth):
            a = np.array([0.0, self.y(z0), z0])
            b = np.array([0.0, self.y(z1), z1])
            c = (a + b) / 2
            tilt = np.arctan2(a[1] - b[1], a[2] - b[2])
            return Cylinder(c, (half_width, half_depth, abs(z0 - z1) / 2), tilt_matrix(tilt))

        parts = [piece(self.z_jugular, self.z_angle, 26.0, 7.0),
                 piece(self.z_angle, self.z_xiphoid, 15.0, 6.0),
                 piece(self.z_xiphoid, self.z_xiphoid - 30, 8.0, 3.5)]
        return [Bone(parts, STERNUM_ID, hu_cortex, hu_core, 1.2)]


def rib_shapes(spine: Spine, cage: Cage, sternum: Sternum, p: TorsoParams, draw: Draw,
               hu_cortex: float, hu_core: float, hu_cartilage: float) -> list:
    """Twelve rib pairs on T1–T12 (and a 13th on L1 as a variant), curving forward and downward."""
    ws = p.width_scale
    end_x = [30, 38, 48, 58, 68, 78, 88, 100, 110, 118]  # anterior ends of ribs 1–10 (mm from midline)
    rise = [0, 2, 5, 10, 18, 28, 38]                     # cartilage of ribs 1–7 climbs to the sternum
    # The lower ribs leave the spine steeply and hang along the flanks (about 45-60 degrees below the
    # horizontal in a frontal projection of real CT); the first generator's 20-30 degree "ladder" taught
    # the locator a T12 it never meets on real scans (models/README.md, issue 15).
    drops_8_10 = [112, 115, 112]
    numbers = list(range(1, 13)) + ([13] if p.thirteenth_ribs else [])
    shapes, cartilage = [], []
    for n in numbers:
        v = spine["L1"] if n == 13 else spine[f"T{n}"]
        z_head = v.z_top - 0.2 * v.height
        x_tp = 12.5 + 26.0 - 1.2 * (min(n, 12) - 1)
        for side in (-1, 1):
            jig = draw.unit()
            head = np.array([side * (v.width / 2 + 1), spine.y_at(z_head) + 0.2 * v.depth, z_head])
            tub = np.array([side * (x_tp - 3), spine.y_at(z_head) + 0.75 * v.depth + 6, z_head + 1])
            A0, B0, yc0 = cage.at(z_head)
            theta0 = np.arcsin(np.clip(abs(tub[0]) / A0, 0.05, 0.9))
            if n <= 7:
                z_end = sternum.attach[n - 1] - rise[n - 1] + 6 * jig
                A1 = cage.at(z_end)[0]
                theta_end = np.pi - np.arcsin(np.clip(end_x[n - 1] * ws / A1, 0.1, 1.0))
            elif n <= 10:
                z_end = z_head - drops_8_10[n - 8] * p.height_scale * (1 + 0.15 * jig)
                A1 = cage.at(z_end)[0]
                theta_end = np.pi - np.arcsin(np.clip(end_x[n - 1] * ws / A1, 0.1, 1.0))
            else:
                short = (n == 12 and p.rudimentary_12th_rib) or n == 13
                span = {11: 100, 12: 78}.get(n, 60) * (1 + 0.12 * jig)
                if short:
                    span = 12 + 6 * jig + np.degrees(theta0)  # a stub of 3–5 cm
                theta_end = np.radians(span)
                z_end = z_head - (80 if n == 11 else 62) * p.height_scale * (theta_end - theta0) / np.radians(80)
            theta = np.linspace(theta0, theta_end, 16)
            s = (theta - theta0) / max(theta_end - theta0, 1e-3)
            # Most of the drop comes early, just beyond the rib's angle: in a frontal projection of real CT
            # each rib leaves the spine sloping down (about 30 degrees for the upper ribs, 45-50 for the
            # lower) and hangs along the flank; dropping late (s ** 1.3) drew a level "ladder" beside the
            # spine (models/README.md, the locator retrained on generator 3).
            z = z_head + (z_end - z_head) * (1 - (1 - s) ** (1.6 if n <= 7 else 2.0))
            A, B, yc = cage.at(z)
            arc = np.stack([side * A * np.sin(theta), yc + B * np.cos(theta), z], axis=1)
            pts = np.vstack([head, tub, arc])
            # Real ribs are about 6 mm thick in axial CT (a thin bright ring around darker marrow); the
            # first generator's 9-10 mm tubes were evenly grey bands in the projections.
            r_main = (5.0 if n == 1 else 3.4 if n <= 10 else 3.1) * (1 + 0.08 * jig)
            radii = np.full(len(pts), r_main)
            radii[0] = 4.0
            if n >= 11:
                radii[2:] = np.linspace(r_main, 2.2, len(pts) - 2)
            shapes.append(Bone(tube(pts, radii), rib_id(n, side), hu_cortex, hu_core * 0.6, 0.8))
            end = arc[-1]
            if n <= 7:
                target = np.array([side * (14 if n > 1 else 22), sternum.y(sternum.attach[n - 1]),
                                   sternum.attach[n - 1]])
                mid = (end + target) / 2 + np.array([0, -4, 0])
                cartilage += tube([end, mid, target], 4.8)
            elif n <= 10:
                target = end + np.array([-side * 0.4 * abs(end[0]), -6, 32])
                cartilage += tube([end, target], 4.3)
    if cartilage:
        shapes.append(Solid(cartilage, hu_cartilage, COSTAL_CARTILAGE_ID))
    return shapes


class ScapulaPlate(Geometry):
    """The blade of the scapula: a thin plate riding on the back of the cage, triangular in (angle, z)."""

    def __init__(self, cage: Cage, side: int, z_inf: float, z_sup: float, offset: float, thick: float):
        self.cage, self.side = cage, side
        self.z_inf, self.z_sup, self.offset, self.thick = z_inf, z_sup, offset, thick
        A, B, yc = cage.at(np.array([z_inf, z_sup]))
        self.t_med = np.arcsin(np.clip(65.0 / A.max(), 0.1, 0.9))
        self.t_lat = np.radians(85.0)
        amax, bmax = A.max() + offset + 10, B.max() + offset + 10
        self.lo = np.array([min(0, side * amax), yc.min() - 10, z_inf - 2])
        self.hi = np.array([max(0, side * amax), yc.max() + bmax, z_sup + 2])

    def sdf(self, w):
        A, B, yc = self.cage.at(w.z)
        xs, ys = self.side * w.x / A, (w.y - yc) / B
        rho = np.sqrt(xs * xs + ys * ys)
        theta = np.arctan2(xs, ys)
        rm = np.sqrt(A * B)
        d = np.abs((rho - 1) * rm - self.offset) - self.thick / 2
        frac = np.clip((w.z - self.z_inf) / (self.z_sup - self.z_inf), 0, 1)
        t_hi = self.t_med + np.radians(6) + (self.t_lat - self.t_med) * frac ** 0.7
        d = np.maximum(d, (self.t_med - theta) * rm)
        d = np.maximum(d, (theta - t_hi) * rm)
        return np.maximum(d, np.maximum(self.z_inf - w.z, w.z - self.z_sup))

    def point(self, theta: float, z: float, extra: float = 0.0) -> np.ndarray:
        A, B, yc = self.cage.at(z)
        rm = np.sqrt(A * B)
        k = 1 + (self.offset + extra) / rm
        return np.array([self.side * A * k * np.sin(theta), yc + B * k * np.cos(theta), z])


def shoulder_shapes(spine: Spine, cage: Cage, sternum: Sternum, p: TorsoParams, draw: Draw,
                    hu: dict) -> tuple[list, list]:
    """Scapulae, clavicles, humeri (and forearms with the arms down). Returns (soft tissue, bones)."""
    soft, bones = [], []
    z_inf = spine["T7"].z_centre + draw(-10, 10)
    z_sup = spine["T1"].z_centre + draw(-5, 10)
    arm_r = (40.0 + 12 * p.fat_fraction) * p.width_scale ** 0.5
    for side in (-1, 1):
        blade = ScapulaPlate(cage, side, z_inf, z_sup, offset=16.0, thick=5.0)
        top = z_sup - 20
        glenoid = blade.point(blade.t_lat + np.radians(8), top, extra=12)
        spine_med = blade.point(blade.t_med, top + 5, extra=3)
        acromion = blade.point(blade.t_lat + np.radians(10), top + 22, extra=10)
        parts = [blade, Capsule(spine_med, acromion, 4.5), Ellipsoid(glenoid, (8, 12, 16))]
        bones.append(Bone(parts, SCAPULA_ID[side], hu["cortex"], hu["cancellous"], 1.2))
        # clavicle: from the manubrium out to the acromion, bowing forward in its medial part
        sc = np.array([side * 20, sternum.y(sternum.z_jugular) + 5, sternum.z_jugular + 3])
        mid = np.array([side * 70, sternum.y(sternum.z_jugular) - 4, sternum.z_jugular + 12])
        bones.append(Bone(tube([sc, mid, acromion + np.array([0, -8, 4])], [7.0, 6.5, 6.0]),
                          CLAVICLE_ID[side], hu["cortex"], hu["cancellous"], 1.5))
        head = glenoid + np.array([side * 26, 0, -2])
        if p.arms == "up":
            elbow = head + np.array([-side * 35, -10, 300])
            limb = [head, elbow]
        else:
            elbow = head + np.array([side * 18, -8, -300])
            wrist = elbow + np.array([side * 5, -40, -250])
            limb = [head, elbow, wrist]
        soft.append(Solid(tube(limb, arm_r), hu["fat"], 201))
        soft.append(Solid(tube(limb, arm_r - 4 - 14 * p.fat_fraction), hu["muscle"], 202))
        bones.append(Bone([Ellipsoid(head, (22, 22, 22)), Capsule(head, elbow, 11.0, 9.0)],
                          HUMERUS_ID[side], hu["cortex"], hu["cancellous"], 2.5))
        if p.arms == "down":
            for off in (-7.0, 7.0):
                bones.append(Bone(Capsule(elbow + [0, off, 0], wrist + [0, off, 0], 7.0, 6.0), None,
                                  hu["cortex"], hu["marrow"], 2.0))
    return soft, bones

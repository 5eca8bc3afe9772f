"""Organs and vessels: lungs (by lobe), diaphragm, heart, aorta and veins, airway, oesophagus, liver and
gallbladder, spleen, stomach, pancreas, kidneys and bladder, placed by vertebral level as in ANATOMY.md."""

from __future__ import annotations

import numpy as np

from ctviewer.synth.body import MUSCLE_ID, Trunk
from ctviewer.synth.canvas import Custom, Ellipsoid, Solid, tube
from ctviewer.synth.params import Draw, TorsoParams

# TotalSegmentator v2 ids
SPLEEN, KIDNEY_R, KIDNEY_L, GALLBLADDER, LIVER, STOMACH, PANCREAS = 1, 2, 3, 4, 5, 6, 7
LUNG = {"left_upper": 10, "left_lower": 11, "right_upper": 12, "right_middle": 13, "right_lower": 14}
OESOPHAGUS, TRACHEA, BLADDER, HEART, AORTA, IVC = 15, 16, 21, 51, 52, 63
ILIAC_ARTERY = {+1: 65, -1: 66}
ILIAC_VEIN = {+1: 67, -1: 68}


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


class Diaphragm:
    """Two domes (ANATOMY.md: ≈ T9–T10, the right higher) whose surface falls steeply behind, so the
    lung bases reach ≈ T11–T12 posteriorly."""

    def __init__(self, spine, cage, draw: Draw):
        self.z_right = spine["T10"].z_top + draw(-12, 12)
        self.z_left = self.z_right - draw(8, 20)
        A, B, yc = cage.at(self.z_right)
        self.A, self.B, self.yd = A, B, yc - 0.15 * B
        recess = spine["T12"].z_centre + draw(-10, 15)
        self.drop_back = (self.z_right - recess) / 1.15 ** 2
        self.drop_side = draw(30, 42)
        self.drop_front = draw(22, 35)

    def z_at(self, x, y):
        """Height (mm) of the diaphragm surface under the point (x, y)."""
        w = 1 / (1 + np.exp(-x / 15.0))
        ny = (y - self.yd) / self.B
        front_back = np.where(ny > 0, self.drop_back, self.drop_front) * ny ** 2
        zr = self.z_right - self.drop_side * ((x + 0.45 * self.A) / (0.55 * self.A)) ** 2 - front_back
        zl = self.z_left - self.drop_side * ((x - 0.45 * self.A) / (0.55 * self.A)) ** 2 - front_back
        return (1 - w) * zr + w * zl

    @property
    def z_lowest(self) -> float:
        return self.z_left - self.drop_back * 1.3 - 10


class Organs:
    """Places every organ from the spine, cage, trunk and diaphragm and hands out their shapes."""

    def __init__(self, spine, cage, trunk: Trunk, pelvis, dia: Diaphragm, p: TorsoParams, draw: Draw, hu):
        self.spine, self.cage, self.trunk, self.pelvis, self.dia, self.p, self.hu = (
            spine, cage, trunk, pelvis, dia, p, hu)
        self.draw = draw
        self.pv = p.contrast_phase == "portal_venous"
        lum = [v for v in spine.vertebrae if v.kind == "L"]
        self.l1, self.l2, self.l3 = lum[0], lum[1], lum[2]
        self.z_apex = spine["T1"].z_top + draw(18, 35)

    # -- chest ---------------------------------------------------------------------------------
    def lungs(self) -> Custom:
        spine, cage, dia = self.spine, self.cage, self.dia
        z_t1 = spine["T1"].z_top
        z_oblique_back = spine["T4"].z_centre + self.draw(-10, 10)
        z_horizontal = spine["T6"].z_centre + self.draw(-10, 10)
        z_carina = spine["T5"].z_top
        lung_hu = self.hu["lung"]

        def draw(canvas):
            Amax = cage.A.max()
            _, Bs, ycs = cage.at(cage.z)
            lo = (-Amax, float((ycs - Bs).min()), dia.z_lowest)
            hi = (Amax, float(spine.y_at(z_t1) + 40), self.z_apex)
            w = canvas.window(lo, hi)
            if w is None:
                return
            A, B, yc = cage.at(w.z)
            inside = (w.x / (A - 5)) ** 2 + ((w.y - yc) / (B - 5)) ** 2 <= 1
            above = w.z > z_t1
            h = self.z_apex - z_t1
            s = np.sqrt(np.clip(1 - ((w.z - z_t1) / h) ** 2, 0, 1)) + 1e-3
            yc1 = cage.at(z_t1)[2]
            apex = ((np.abs(w.x) - 32) / (26 * s)) ** 2 + ((w.y - yc1) / (32 * s)) ** 2 <= 1
            m = np.where(above, apex, inside)
            m &= w.z > dia.z_at(w.x, w.y)
            y_sp = spine.y_at(w.z)
            half_w, half_d = spine.width_at(w.z) / 2 + 7, spine.depth_at(w.z) / 2 + 7
            m &= (w.x / half_w) ** 2 + ((w.y - y_sp) / half_d) ** 2 > 1
            m &= ~((np.abs(w.x) < half_w) & (w.y > y_sp))
            # mediastinum: the trachea, oesophagus and great vessels above the carina; below it the
            # heart (painted later) carves its own room and a small posterior mediastinum stays
            upper = (np.abs(w.x - 4) < 14 + 0.18 * (w.y - yc + B)) & (w.z > z_carina)
            post = ((w.x - 10) / 28) ** 2 + ((w.y - (y_sp - half_d - 12)) / 22) ** 2 < 1
            m &= ~(upper | post)
            if not m.any():
                return
            value = (lung_hu + 0.45 * (w.y - yc)).astype(np.float32)  # dependent lung is denser
            canvas.paint(w, m, value)
            front = yc - B
            z_fissure = dia.z_right - 25 + (w.y - front) / (2 * B) * (z_oblique_back - dia.z_right + 25)
            upper = w.z > z_fissure
            left = w.x > 0
            labels = np.where(left, np.where(upper, LUNG["left_upper"], LUNG["left_lower"]),
                              np.where(upper, np.where(w.z > z_horizontal, LUNG["right_upper"],
                                                       LUNG["right_middle"]), LUNG["right_lower"]))
            sub = canvas.lab[w.sl]
            mm = np.broadcast_to(m, sub.shape)
            sub[mm] = np.broadcast_to(labels, sub.shape)[mm].astype(np.uint8)

        return Custom(dia.z_lowest, self.z_apex, draw)

    def diaphragm_muscle(self) -> Custom:
        dia, cage = self.dia, self.cage

        def draw(canvas):
            Amax = cage.A.max()
            lo = (-Amax, float(dia.yd - 1.3 * dia.B), dia.z_lowest - 8)
            hi = (Amax, float(dia.yd + 1.5 * dia.B), dia.z_right + 1)
            w = canvas.window(lo, hi)
            if w is None:
                return
            A, B, yc = cage.at(w.z)
            zd = dia.z_at(w.x, w.y)
            m = ((w.x / (A - 3)) ** 2 + ((w.y - yc) / (B - 3)) ** 2 <= 1) & (w.z <= zd) & (w.z > zd - 6)
            canvas.paint(w, m, self.hu["muscle"], MUSCLE_ID)

        return Custom(dia.z_lowest - 8, dia.z_right + 1, draw)

    def heart_and_vessels(self) -> list:
        sp, cage, dia, hu, d = self.spine, self.cage, self.dia, self.hu, self.draw
        A, B, yc = cage.at(dia.z_left + 50)
        centre = np.array([0.18 * A + 8, yc - 0.4 * B, dia.z_left + 45 + d(-8, 8)])
        semi = np.array([0.5 * A, 0.5 * B, 60 + d(-6, 6)]) * (1 + 0.15 * d.unit())
        R = rot_z(np.radians(-30))
        blood = hu["heart_pv"] if self.pv else hu["blood"]
        shapes = [Solid(Ellipsoid(centre, semi, R), hu["muscle"] + (60 if self.pv else 0), HEART),
                  Solid(Ellipsoid(centre, semi - 9, R), blood, HEART)]
        # aorta: root above the heart, arch at T3–T4, descending to the left of the spine, bifurcating
        # at L4 in front of the vertebral bodies (ANATOMY.md)
        aorta_hu = hu["aorta_pv"] if self.pv else hu["blood"]
        t4 = sp["T4"]
        pts = [centre + [-5, -5, 40], (6, yc - 0.32 * B, t4.z_centre - 8),
               (12, (yc - 0.3 * B + t4.y) / 2, sp["T3"].z_centre + 8), (22, t4.y - 0.1 * t4.depth, t4.z_centre)]
        radii = [15, 14, 13, 12]
        for v in sp.vertebrae[sp.vertebrae.index(sp["T5"]):-1]:
            lumbar = v.kind == "L"
            x = 13 if lumbar else 0.32 * v.width + 11
            y = v.y - v.depth / 2 - (10 if lumbar else 0.2 * v.depth)
            pts.append((x, y, v.z_centre))
            radii.append(10 if lumbar else 12)
        bif = np.array(pts[-1], dtype=float)
        size = 1 + 0.1 * d.unit()
        shapes.append(Solid(tube(pts, np.array(radii) * size), aorta_hu, AORTA))
        vein_hu = hu["vein_pv"] if self.pv else hu["blood"]
        ivc = [(-22, yc - 0.15 * B, dia.z_right + 5)]
        for v in sp.vertebrae[sp.vertebrae.index(sp["T11"]):]:
            ivc.append((-24, v.y - v.depth / 2 - 12, v.z_centre))
        shapes.append(Solid(tube(ivc, 11.0 * size), vein_hu, IVC))
        pl = self.pelvis
        for s in (-1, 1):
            art = [bif, (s * 40, sp.y_at(0) - 35, -10), (s * (pl.x_head - 12), pl.y_head - 28, pl.z_head + 15)]
            shapes.append(Solid(tube(art, [7.0, 6.5, 6.0]), aorta_hu, ILIAC_ARTERY[s]))
            vein = [ivc[-1], (s * 38, sp.y_at(0) - 25, -14), (s * (pl.x_head - 20), pl.y_head - 16, pl.z_head + 15)]
            shapes.append(Solid(tube(vein, 8.0), vein_hu, ILIAC_VEIN[s]))
        return shapes

    def airway_and_oesophagus(self, z_top: float) -> list:
        sp, hu = self.spine, self.hu
        t5 = sp["T5"]
        y_tr = lambda z: float(sp.y_at(z) - sp.depth_at(z) / 2 - 22)  # noqa: E731
        carina = np.array([0.0, y_tr(t5.z_top), t5.z_top])
        trachea = [(0.0, y_tr(z_top + 40), z_top + 40), carina]
        shapes = [Solid(tube(trachea, 10.5), hu["muscle"], TRACHEA), Solid(tube(trachea, 8.5), hu["air"], TRACHEA)]
        for s in (-1, 1):
            shapes.append(Solid(tube([carina, carina + [s * 45, 8, -30], carina + [s * 70, 12, -60]], [6.5, 5.0, 3.5]),
                                hu["air"], None))
        oes = [(6.0, sp.y_at(z) - sp.depth_at(z) / 2 - 8, z) for z in np.linspace(z_top + 40, self.dia.z_left, 8)]
        A, B, yc = self.cage.at(self.dia.z_left)
        oes.append((40.0, yc - 0.1 * B, self.dia.z_left - 30))
        shapes.append(Solid(tube(oes, 7.0), hu["muscle"] - 5, OESOPHAGUS))
        return shapes

    # -- abdomen -------------------------------------------------------------------------------
    def _cavity(self, z):
        t = self.trunk.at(z)
        cy = (t["front_i"] + t["back_i"]) / 2
        return float(t["ai"]), float(cy), float((t["back_i"] - t["front_i"]) / 2), float(t["front_i"])

    def _clipped(self, ellipsoids, value, label, below_diaphragm=True, margin=2.0) -> Custom:
        trunk, dia = self.trunk, self.dia

        def draw(canvas):
            for e in ellipsoids:
                w = canvas.window(e.lo, e.hi)
                if w is None:
                    continue
                m = e.sdf(w) <= 0
                if below_diaphragm:
                    m &= w.z < dia.z_at(w.x, w.y) - 6
                m &= trunk.contains(w.x, w.y, w.z, margin)
                canvas.paint(w, m, value(w) if callable(value) else value, label)

        return Custom(min(e.lo[2] for e in ellipsoids), max(e.hi[2] for e in ellipsoids), draw)

    def liver(self) -> Custom:
        """The liver (and the gallbladder under it), shaped after the real slab (models/README.md).

        The right lobe fills the right upper abdomen under the dome and, going down, narrows to a
        wedge along the right lateral and front walls: at the right kidney's hilum it still lies in
        front of the kidney and beside it (real slab: 100-120 cm² there, 64 mm thick, reaching back to
        the kidney's posterior face), and its tip is a crescent on the lateral wall. It never reaches the front
        of the spine, the vena cava, the aorta or the crus (the real liver stops at the IVC), nor
        behind and medial to the right kidney. The left lobe is a flat wedge across the midline in front.
        """
        d, dia, sp, trunk = self.draw, self.dia, self.spine, self.trunk
        # two numbers from the torso's shared stream, as the liver always drew; the rest from its own,
        # so that reshaping the liver leaves every organ and bone drawn after it where it was
        own = self._own_draw(0x11BE)
        # its tip ranges from L2 to below the centre of L3 (ANATOMY.md: "varies a lot"); on the real slab
        # the right lobe is still 135 cm² at the centre of L1 and 44 cm² at the centre of L2
        z_tip = self.l3.z_centre + d(-0.3, 1.0) * (self.l2.z_centre - self.l3.z_centre)
        z_top = dia.z_right + 10
        width_left = 1 + 0.3 * d.unit()
        reach_top, reach_tip = own(0.15, 0.35), own(-0.62, -0.42)  # medial edge, × the cavity's half-width
        front_reach = own(0.15, 0.4)        # the front of the lobe reaches further left (segments IV, III)
        depth_top, depth_tip = own(100, 140), own(18, 32)          # thickness in from the wall, mm
        kidney_x = -(self.l1.width / 2 + 42)                   # the right kidney's centre (kidneys())
        z_kidney_top = self.l1.z_centre + 40
        value = self.hu["liver_pv"] if self.pv else self.hu["liver"]
        ai_max = float(trunk.at(np.linspace(z_tip, z_top, 20))["ai"].max())
        ai, cy, b, front = self._cavity(dia.z_left - 30)
        left = Ellipsoid((0.12 * ai, front + 0.35 * b, dia.z_left - own(25, 40)),
                         (0.5 * ai * width_left, 0.3 * b, own(45, 65)))
        gallbladder = self._gallbladder(own, z_tip, z_top) if own.unit() > -0.35 else None   # absent in 15 %

        def right_lobe(w):
            t = trunk.at(w.z)
            ai, fr, bk = t["ai"], t["front_i"], t["back_i"]
            cy, b = (fr + bk) / 2, (bk - fr) / 2
            s = np.clip((w.z - z_tip) / (z_top - z_tip), 0, 1)            # 0 at the tip, 1 at the dome
            dx, dy = w.x / ai, (w.y - cy) / b
            r = (np.abs(dx) ** 2.2 + np.abs(dy) ** 2.2) ** (1 / 2.2) + 1e-6   # 1 on the cavity wall
            from_wall = np.hypot(w.x, w.y - cy) * (1 / r - 1)                # mm in from the wall, radially
            depth = depth_tip + (depth_top - depth_tip) * s ** 0.6
            ahead = np.clip(1 - (w.y - fr) / (2 * b), 0, 1) ** 2           # 1 at the front wall, 0 at the back
            medial = ai * (reach_tip + (reach_top - reach_tip) * s ** 0.5 + front_reach * ahead * np.sqrt(s))
            m = (from_wall < depth) & (w.x < medial) & (w.z > z_tip)
            spine_y = sp.y_at(w.z)
            spine_front = spine_y - sp.depth_at(w.z) / 2
            m &= ~((w.x > -(sp.width_at(w.z) / 2 + 14)) & (w.y > spine_front - 26))   # IVC, aorta, crus
            m &= ~((w.z < z_kidney_top) & (w.x > kidney_x - 20) & (w.y > spine_y - 25))  # behind the kidney
            return m

        def draw(canvas):
            w = canvas.window((-ai_max, -400.0, z_tip), (ai_max, 400.0, z_top))
            if w is not None:
                # below the lungs' lowest point the dome's surface means nothing: the liver may reach back
                under_dome = w.z < np.maximum(dia.z_at(w.x, w.y), dia.z_lowest + 6) - 6
                m = right_lobe(w) & under_dome & trunk.contains(w.x, w.y, w.z, 2.0)
                canvas.paint(w, m, value, LIVER)
            w = canvas.window(left.lo, left.hi)
            if w is not None:
                m = (left.sdf(w) <= 0) & (w.z < dia.z_at(w.x, w.y) - 6) & trunk.contains(w.x, w.y, w.z, 2.0)
                canvas.paint(w, m, value, LIVER)
            if gallbladder is not None:
                w = canvas.window(gallbladder.lo, gallbladder.hi)
                if w is not None:
                    m = (gallbladder.sdf(w) <= 0) & trunk.contains(w.x, w.y, w.z, 4.0)
                    canvas.paint(w, m, self.hu["bladder"], GALLBLADDER)

        return Custom(min(z_tip, left.lo[2]), z_top, draw)

    def _own_draw(self, stream: int) -> Draw:
        """A generator of this torso's own for one organ, apart from the shared one (same seed and jitter)."""
        own = Draw(self.p.seed, self.draw.jitter)
        own.rng = np.random.default_rng([int(self.p.seed), 0xA7A7, int(stream)])
        return own

    def _gallbladder(self, d: Draw, z_tip: float, z_top: float) -> Ellipsoid:
        """A fluid pear in the liver's underside, right of the midline, its fundus at the front wall
        (real slab: 36 ml, 3 HU, in the notch between the right lobe and segment IV)."""
        z = z_tip + d(0.12, 0.3) * (z_top - z_tip)
        ai, cy, b, front = self._cavity(z)
        size = 0.8 + 0.4 * (d.unit() + 0.5)
        return Ellipsoid((-d(0.15, 0.3) * ai, front + d(0.25, 0.4) * b, z), np.array([14.0, 16.0, 38.0]) * size,
                         rot_y(np.radians(d(-10, 25))) @ rot_z(np.radians(d(-30, 0))))

    def spleen(self) -> Custom:
        sp, d = self.spine, self.draw
        z0, z1 = sp["T10"].z_top, sp["L1"].z_centre
        ai, cy, b, front = self._cavity((z0 + z1) / 2)
        size = 1 + 0.3 * d.unit()
        e = Ellipsoid((0.7 * ai, cy + 0.45 * b, (z0 + z1) / 2 + d(-10, 10)),
                      (22 * size, 50 * size, (z0 - z1) / 2 * 0.85 * size), rot_z(np.radians(-40)))
        return self._clipped([e], self.hu["spleen_pv"] if self.pv else self.hu["spleen"], SPLEEN)

    def stomach(self) -> Custom:
        dia, d = self.dia, self.draw
        ai, cy, b, front = self._cavity(dia.z_left - 50)
        c = np.array([0.38 * ai, front + 0.4 * b, dia.z_left - 55 + d(-10, 10)])
        semi = np.array([0.28 * ai, 0.3 * b, 55.0]) * (1 + 0.3 * d.unit())
        e = Ellipsoid(c, semi, rot_z(np.radians(20)))
        wall, fluid, air = self.hu["muscle"], self.hu["bladder"] + 10, self.hu["air"]
        gas_level = c[1] - 0.3 * semi[1]  # supine: gas rises to the front

        def value(w):
            inner = e.sdf(w) < -4
            return np.where(inner, np.where(w.y < gas_level, air, fluid), wall).astype(np.float32)

        return self._clipped([e], value, STOMACH)

    def pancreas(self) -> Solid:
        l1, l2 = self.l1, self.l2
        pts = [(75, l1.y - 35, l1.z_top), (20, l1.y - l1.depth / 2 - 30, l1.z_bottom),
               (-30, l2.y - l2.depth / 2 - 35, l2.z_top + 5)]
        return Solid(tube(pts, [9.0, 12.0, 15.0]), self.hu["muscle"] + (50 if self.pv else 0), PANCREAS)

    def kidneys(self) -> list:
        l1, d, hu = self.l1, self.draw, self.hu
        z_left = l1.z_centre + d(-12, 12)
        z_right = z_left - d(10, 25)  # the left kidney lies a little higher (ANATOMY.md)
        cortex = hu["kidney_pv"] if self.pv else hu["kidney"]
        medulla = cortex - (55 if self.pv else 5)
        out = []
        for s, z, label in ((1, z_left, KIDNEY_L), (-1, z_right, KIDNEY_R)):
            size = 1 + 0.2 * d.unit()
            c = np.array([s * (l1.width / 2 + 42), float(self.spine.y_at(z)) + 4, z])
            R = rot_z(np.radians(s * 30)) @ rot_y(np.radians(-s * 12))
            semi = np.array([26.0, 22.0, 55.0]) * size
            out.append(Solid(Ellipsoid(c, semi + 9, R), hu["fat"], 0))  # perirenal fat
            out.append(Solid(Ellipsoid(c, semi, R), cortex, label))
            out.append(Solid(Ellipsoid(c, semi - 7, R), medulla, label))
            out.append(Solid(Ellipsoid(c + R @ np.array([-s * 14, 0, 0]), (8, 9, 22), R), hu["fat"], label))
        return out

    def bladder(self) -> Solid:
        pl, d = self.pelvis, self.draw
        full = 0.8 + 0.35 * d.unit() * 2
        return Solid(Ellipsoid((0, pl.y_head - 50, pl.z_head + 20), np.array([45, 35, 38]) * full),
                     self.hu["bladder"], BLADDER)

"""The bony pelvis below the spine: iliac wings, acetabula, pubis, ischium and the proximal femurs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctviewer.synth.canvas import Bone, Capsule, Ellipsoid, Geometry
from ctviewer.synth.params import Draw, TorsoParams
from ctviewer.synth.spine import Sacrum, Spine

HIP_ID = {+1: 77, -1: 78}     # TotalSegmentator v2 hip_left, hip_right
FEMUR_ID = {+1: 75, -1: 76}   # femur_left, femur_right


@dataclass
class PelvisLayout:
    z_head: float       # femoral head centres (mm; S1 top = 0)
    x_head: float       # distance of each head centre from the midline
    y_head: float
    r_head: float
    z_crest: float      # top of the iliac crests
    z_asis: float       # anterior superior iliac spines
    z_psis: float       # posterior superior iliac spines
    z_si_low: float     # lower end of the sacroiliac joints


def pelvis_layout(spine: Spine, sac: Sacrum, p: TorsoParams, draw: Draw) -> PelvisLayout:
    female = p.sex == "female"
    # femoral heads 8–12 cm below S1; iliac crest tops at about L4 or the L4/L5 disc (ANATOMY.md);
    # "L4" is the second-to-last lumbar vertebra, so a sixth lumbar vertebra shifts the count
    z_head = -draw(80, 120) * p.height_scale
    l4 = spine.vertebrae[-2]
    u = 0.5 + draw.unit()
    z_crest = (1 - u) * l4.z_centre + u * (l4.z_bottom - l4.disc_below / 2)
    return PelvisLayout(
        z_head=z_head,
        x_head=(92.0 if female else 86.0) * p.width_scale ** 0.5 + draw(-6, 6),
        y_head=float(spine.y_at(0.0)) - draw(20, 40),
        r_head=(21.5 if female else 24.5) + draw(-1.5, 1.5),
        z_crest=z_crest,
        z_asis=z_head + draw(55, 75) * p.height_scale,
        z_psis=float(sac.centres[1][2]),
        z_si_low=float(sac.centres[2][2]),
    )


class IliacWing(Geometry):
    """The ilium: in each axial slice an arc of an ellipse (a curved blade) that sweeps from the
    sacroiliac joint round the flank to the anterior superior spine, narrowing down to a thick column
    above the acetabulum; its crest is highest over the flank and lower at both spines."""

    def __init__(self, lay: PelvisLayout, side: int, female: bool):
        self.L, self.side = lay, side
        self.z_roof = lay.z_head + lay.r_head + 6
        self.rx_top = 0.70 * lay.x_head * (1.1 if female else 1.0)
        self.psi_peak = np.radians(30.0)
        x_out = 0.85 * lay.x_head + self.rx_top + 15
        self.lo = np.array([min(side * 5, side * x_out), lay.y_head - 90, self.z_roof - 14])
        self.hi = np.array([max(side * 5, side * x_out), lay.y_head + 90, lay.z_crest + 2])

    def _params(self, z):
        L = self.L
        u = np.clip((z - self.z_roof) / (L.z_asis - self.z_roof), 0.0, 1.0) ** 0.8
        cx = (L.x_head + 5) * (1 - u) + 0.85 * L.x_head * u
        cy = (L.y_head + 5) * (1 - u) + (L.y_head - 10) * u
        rx = 20 * (1 - u) + self.rx_top * u
        ry = 20 * (1 - u) + 55 * u
        v = np.clip((z - self.z_roof) / (L.z_si_low - self.z_roof), 0.0, 1.0)
        psi_post = np.radians(60 + 65 * v)
        psi_ant = np.radians(-20 - 40 * u)
        return cx, cy, rx, ry, psi_post, psi_ant, u

    def sdf(self, w):
        L = self.L
        cx, cy, rx, ry, psi_post, psi_ant, u = self._params(w.z)
        dx, dy = self.side * w.x - cx, w.y - cy
        rho = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
        psi = np.arctan2(dy, dx)
        rm = np.sqrt(rx * ry)
        thick = 6 + 16 * np.clip((psi - np.radians(70)) / np.radians(50), 0, 1) + 30 * (1 - u)
        d = np.abs(rho - 1) * rm - thick / 2
        d = np.maximum(d, np.maximum(psi_ant - psi, psi - psi_post) * rm)
        ant = (psi - self.psi_peak) / (self.psi_peak - np.radians(-60))
        post = (psi - self.psi_peak) / (np.radians(125) - self.psi_peak)
        top = np.where(psi < self.psi_peak, L.z_crest - (L.z_crest - L.z_asis) * ant ** 2,
                       L.z_crest - (L.z_crest - L.z_psis) * np.clip(post, 0, 1.2) ** 2)
        d = np.maximum(d, w.z - top)
        return np.maximum(d, self.z_roof - 12 - w.z)


class AcetabularCup(Geometry):
    """The socket around the femoral head: a shell open laterally and below."""

    def __init__(self, lay: PelvisLayout, side: int):
        self.c = np.array([side * lay.x_head, lay.y_head, lay.z_head])
        self.r, self.side = lay.r_head, side
        ext = lay.r_head + 14
        self.lo, self.hi = self.c - ext, self.c + ext

    def sdf(self, w):
        dx, dy, dz = w.x - self.c[0], w.y - self.c[1], w.z - self.c[2]
        r = np.sqrt(dx * dx + dy * dy + dz * dz)
        d = np.abs(r - (self.r + 8)) - 6
        d = np.maximum(d, -0.35 * self.r - dz)
        return np.maximum(d, self.side * dx - 0.45 * self.r)


def pelvis_shapes(lay: PelvisLayout, p: TorsoParams, hu: dict) -> list[Bone]:
    female = p.sex == "female"
    out = []
    xh, yh, zh, rh = lay.x_head, lay.y_head, lay.z_head, lay.r_head
    for s in (-1, 1):
        pubic_front = yh - (58 if female else 52)
        parts = [IliacWing(lay, s, female), AcetabularCup(lay, s),
                 # superior pubic ramus to the symphysis, inferior ramus and ischium around the
                 # obturator foramen
                 Capsule((s * (xh - 18), yh - 18, zh - 4), (s * 10, pubic_front, zh - 28), 9.0),
                 Ellipsoid((s * 12, pubic_front - 2, zh - 42), (9, 9, 18)),
                 Capsule((s * 12, pubic_front, zh - 52), (s * (xh - 30), yh + 18, zh - 72), 7.0),
                 Capsule((s * (xh - 6), yh + 16, zh - 6), (s * (xh - 26), yh + 24, zh - 66), 12.0, 10.0)]
        out.append(Bone(parts, HIP_ID[s], hu["cortex"], hu["cancellous"], 1.3))
        head = np.array([s * xh, yh, zh])
        neck_end = np.array([s * (xh + 45), yh + 5, zh - 28])
        proximal = [Ellipsoid(head, (rh, rh, rh)), Capsule(head, neck_end, 15.0, 16.0),
                    Ellipsoid((s * (xh + 58), yh + 12, zh - 20), (16, 20, 24))]
        shaft = Capsule((s * (xh + 52), yh + 8, zh - 40), (s * (xh + 30), yh - 5, zh - 460), 15.0, 13.0)
        out.append(Bone(shaft, FEMUR_ID[s], hu["cortex"], hu["marrow"], 5.0))
        out.append(Bone(proximal, FEMUR_ID[s], hu["cortex"], hu["cancellous"], 1.5))
    return out

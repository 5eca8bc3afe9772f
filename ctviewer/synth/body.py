"""The trunk's soft tissue outline: skin, subcutaneous fat, muscle wall, body cavity, back and hip
muscles, and the CT table. These change slowly along z, so they are rendered once per output slice
(the "base" layer) and the thin sub-slices of bones and organs are painted over them."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ctviewer.synth.params import Draw, TorsoParams

SUBCUTANEOUS_FAT_ID, MUSCLE_ID, VISCERAL_FAT_ID = 201, 202, 204
AUTOCHTHON_ID = {+1: 86, -1: 87}   # TotalSegmentator v2 autochthon_left / _right (paraspinal muscles)
ILIOPSOAS_ID = {+1: 88, -1: 89}


def superellipse(x, y, cx, cy, a, b, power=2.4):
    """Normalised radius (< 1 inside) of a superellipse: flatter sides than an ellipse, like a trunk."""
    return (np.abs((x - cx) / a) ** power + np.abs((y - cy) / b) ** power) ** (1.0 / power)


def inside_superellipse(x, y, cx, cy, a, b, power=2.4):
    """Mask of a superellipse, computed as a half-width per row (one comparison per voxel: fast)."""
    v = np.abs((y - cy) / b)
    half = a * np.clip(1.0 - v ** power, 0.0, None) ** (1.0 / power)
    return np.abs(x - cx) <= half


class Trunk:
    """Outline of the body and of its cavity along z, derived from the spine, the cage and the pelvis.

    The cavity (inside the muscle wall) follows the rib cage in the chest and the abdominal stations
    below; the muscle wall and the subcutaneous fat (ANATOMY.md: fat −120…−60 HU) wrap around it, and
    the back rests flat on the table at y = 0.
    """

    def __init__(self, spine, cage, sac, pelvis, organs_z, p: TorsoParams, draw: Draw):
        f = p.fat_fraction
        fem = p.sex == "female"
        self.spine, self.cage, self.p = spine, cage, p
        self.fat_ant = (6 + 75 * f) * (1.1 if fem else 1.0)
        self.fat_lat = (5 + 55 * f) * (1.2 if fem else 1.0)
        self.fat_back = spine.fat_back
        self.wall_lat, self.wall_ant = 14.0 + draw(-3, 3), 12.0 + draw(-3, 3)
        visc = 1.0 + 0.35 * (f - 0.3) * (0.7 if fem else 1.0)
        ws, ds = p.width_scale, p.depth_scale
        names = [v.name for v in spine.vertebrae]
        chest = [n for n in names if n[0] == "T"][:11]
        lumbar = [n for n in names if n[0] == "L"]
        zc = [spine[n].z_centre for n in chest]
        A, B, yc = cage.at(np.array(zc))
        z_st = list(zc)
        ai = list(A - 2)
        front = list(yc - B + 2)
        # abdominal stations: half-width and depth of the cavity in front of the spine (mm)
        abd = [(spine[lumbar[1]].z_centre, 124, 108), (spine[lumbar[-3]].z_centre, 126, 116),
               (spine[lumbar[-2]].z_centre, 129, 112), (spine[lumbar[-1]].z_centre, 132, 106),
               (0.0, 134, 100)]
        for z, half, depth in abd:
            z_st.append(z)
            ai.append(half * ws * visc)
            front.append(float(spine.y_at(z)) - spine.depth_at(z) / 2 - depth * ds * visc)
        for z, half in ((pelvis.z_head + 20, 128), (pelvis.z_head - 60, 122)):
            z_st.append(z)
            ai.append(half * ws * (1.08 if fem else 1.0))
            front.append(pelvis.y_head - 62 * ds * visc)
        top = spine.vertebrae[0].z_top
        order = np.argsort(z_st)
        self._z = np.array(z_st)[order]
        self._ai = np.array(ai)[order]
        self._front = np.array(front)[order]
        self.z_t1 = spine["T1"].z_top
        self.z_top = top
        self.shoulder = 150.0 * ws
        self.sacrum_z = np.array([c[2] for c in sac.centres])[::-1]
        self.sacrum_y = np.array([c[1] - d / 2 for c, d in zip(sac.centres, sac.depths)])[::-1]
        self.z_mediastinum = organs_z  # above this the cavity holds mediastinal fat, below bowel

    def at(self, z) -> dict:
        z = np.asarray(z, dtype=float)
        ai = np.interp(z, self._z, self._ai)
        front_i = np.interp(z, self._z, self._front)
        back_i = np.where(z > 0, self.spine.y_at(z) + 20,
                          np.interp(z, self.sacrum_z, self.sacrum_y) - 6)
        a_wall = ai + self.wall_lat
        chest = np.clip((z - self.z_mediastinum) / 40, 0, 1)
        front_wall = front_i - self.wall_ant - 8 * chest  # pectoral muscles in front of the chest
        a = a_wall + self.fat_lat * (1 - 0.4 * chest)
        # shoulders widen the outline at T1–T3; above T1 the neck narrows it
        sh = np.clip((z - (self.z_t1 - 70)) / 40, 0, 1) * np.clip(1 - (z - self.z_t1 - 30) / 50, 0, 1)
        a = np.maximum(a, self.shoulder * sh)
        front = front_wall - self.fat_ant * (1 - 0.5 * chest)
        return dict(ai=ai, front_i=front_i, back_i=back_i, a_wall=a_wall, front_wall=front_wall,
                    back_wall=-self.fat_back + 0 * z, a=a, front=front)

    def contains(self, x, y, z, margin: float = 0.0):
        """Inside the cavity (within the muscle wall) at (x, y, z), shrunk by ``margin`` mm."""
        t = self.at(z)
        cy = (t["front_i"] + t["back_i"]) / 2
        b = (t["back_i"] - t["front_i"]) / 2
        return inside_superellipse(x, y, 0.0, cy, t["ai"] - margin, b - margin, 2.2)


class Texture:
    """A smooth random field (sd 1) over the scan: bowel loops and gas among visceral fat."""

    def __init__(self, seed: int, z0: float, z1: float, half: float, step: float = 11.0):
        rng = np.random.default_rng([seed, 0x7E7])
        self.n = int(np.ceil(2 * half / step)) + 1
        self.nz = int(np.ceil((z1 - z0) / step)) + 3
        field = rng.standard_normal((2, self.nz, self.n, self.n)).astype(np.float32)
        field = ndimage.gaussian_filter(field, (0, 1.0, 1.0, 1.0))
        field /= field.std(axis=(1, 2, 3), keepdims=True)
        self.field, self.z0, self.step, self.half = field, z0 - step, step, half

    def sample(self, z, y, x) -> np.ndarray:
        """Field values (2, n, len(y), len(x)) at slice heights z on the y/x grid (mm)."""
        kz = np.clip((np.asarray(z) - self.z0) / self.step, 0, self.nz - 1.001)
        k0 = kz.astype(int)
        t = (kz - k0)[None, :, None, None].astype(np.float32)
        coarse = self.field[:, k0] * (1 - t) + self.field[:, k0 + 1] * t
        wy = _interp_matrix((np.asarray(y) + self.half) / self.step, self.n)
        wx = _interp_matrix((np.asarray(x) + self.half) / self.step, self.n)
        b = coarse.shape[0] * coarse.shape[1]
        rows = (coarse.reshape(-1, self.n) @ np.ascontiguousarray(wx.T)).reshape(b, self.n, len(x))
        out = np.einsum("yn,bnx->byx", wy, rows, optimize=True)
        return out.reshape(coarse.shape[0], coarse.shape[1], len(y), len(x)).astype(np.float32, copy=False)


def _interp_matrix(k: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation weights (len(k) × n) from a coarse axis of n samples to positions k."""
    k = np.clip(k, 0, n - 1.001)
    k0 = k.astype(int)
    t = (k - k0).astype(np.float32)
    w = np.zeros((len(k), n), dtype=np.float32)
    w[np.arange(len(k)), k0] = 1 - t
    w[np.arange(len(k)), k0 + 1] = t
    return w


def render_base(trunk: Trunk, texture: Texture, z, y, x, hu: dict, p: TorsoParams, muscles: dict):
    """HU (float32) and labels (uint8) of the soft-tissue base layer at slice heights ``z``."""
    z = np.asarray(z, dtype=float)
    n = len(z)
    Z, Y, X = z[:, None, None], y[None, :, None], x[None, None, :]
    out = np.full((n, len(y), len(x)), hu["air"], dtype=np.float32)
    lab = np.zeros(out.shape, dtype=np.uint8)
    if p.table:
        _table(out, Y, X, hu)
    t = {k: v[:, None, None].astype(np.float32) for k, v in trunk.at(z).items()}
    half_depth = -t["front"] / 2
    _put(out, lab, inside_superellipse(X, Y, 0.0, t["front"] / 2, t["a"], half_depth), hu["skin"], 0)
    _put(out, lab, inside_superellipse(X, Y, 0.0, t["front"] / 2, t["a"] - 2, half_depth - 2),
         hu["fat"], SUBCUTANEOUS_FAT_ID)
    wall_cy = (t["front_wall"] + t["back_wall"]) / 2
    in_wall = inside_superellipse(X, Y, 0.0, wall_cy, t["a_wall"], (t["back_wall"] - t["front_wall"]) / 2, 2.3)
    _put(out, lab, in_wall, hu["muscle"], MUSCLE_ID)
    cav_cy = (t["front_i"] + t["back_i"]) / 2
    cavity = inside_superellipse(X, Y, 0.0, cav_cy, t["ai"], (t["back_i"] - t["front_i"]) / 2, 2.2)
    cavity = np.broadcast_to(cavity, out.shape)
    field = texture.sample(z, y, x)
    vf = 0.3 + 0.5 * p.fat_fraction  # share of visceral fat among the bowel loops
    thr = np.float32(-0.55 + 1.3 * vf)
    f0, f1 = field[0][cavity], field[1][cavity]
    w_bowel = 1 / (1 + np.exp(np.float32(-4) * (f0 - thr)))
    belly = hu["bowel"] * w_bowel + hu["fat"] * (1 - w_bowel)
    belly[(f1 > 2.0) & (w_bowel > 0.5)] = hu["air"] * 0.85  # gas in the bowel
    chest = np.broadcast_to(Z > trunk.z_mediastinum, out.shape)[cavity]
    out[cavity] = np.where(chest, np.float32(hu["fat"] + 15), belly)
    lab[cavity] = np.where(chest | (w_bowel > 0.5), 0, VISCERAL_FAT_ID)
    for key, (cx, cy, ax, ay, label, value) in muscles.items():
        axz = ax(z)
        if not np.any(axz > 0.5):
            continue
        m = inside_superellipse(X, Y, cx(z)[:, None, None], cy(z)[:, None, None],
                                np.maximum(axz, 0.1)[:, None, None], np.maximum(ay(z), 0.1)[:, None, None], 2.0)
        m &= in_wall & (axz > 0.5)[:, None, None]
        _put(out, lab, m, hu[value], label)
    return out, lab


def _put(out, lab, mask, value, label):
    out[mask] = value
    lab[mask] = label


def _table(out, Y, X, hu) -> None:
    """A curved carbon-fibre couch under the back: thin bright shells around a foam core."""
    top = 2.0 + 16.0 * (X / 220.0) ** 2
    inside = np.abs(X) < 235
    shell1 = (Y >= top) & (Y < top + 2.5) & inside
    core = (Y >= top + 2.5) & (Y < top + 38) & inside
    shell2 = (Y >= top + 38) & (Y < top + 41) & inside
    for m, v in ((shell1, hu["table_shell"]), (core, hu["table_foam"]), (shell2, hu["table_shell"])):
        m = np.broadcast_to(m[0], out.shape[1:])
        out[:, m] = v

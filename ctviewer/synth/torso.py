"""A deterministic, parameterised synthetic torso CT with its label map and vertebral level truth.

``make_torso(TorsoParams(...))`` lays out the anatomy from the numbers in ``shared/ANATOMY.md`` (spine
first, then the cage, trunk, pelvis and organs placed by vertebral level), then renders the scan chunk
by chunk along z: a soft-tissue base layer per slice, bones and organs painted on thin sub-slices,
the sub-slices averaged into slices of the requested thickness (partial volume), an in-plane blur for
the reconstruction kernel, and correlated noise.

Label ids follow TotalSegmentator v2 where it has one (1 spleen, 2/3 kidney right/left, 4 gallbladder, 5 liver,
6 stomach, 7 pancreas, 10–14 lung lobes, 15 oesophagus, 16 trachea, 21 bladder, 25 sacrum,
26 vertebrae_S1, 27–31 L5–L1, 32–43 T12–T1, 44–47 C7–C4, 51 heart, 52 aorta, 63 inferior vena cava,
65/66 iliac arteries, 67/68 iliac veins, 69/70 humeri, 71/72 scapulae, 73/74 clavicles, 75/76 femurs,
77/78 hips, 79 spinal cord, 86/87 autochthon, 88/89 iliopsoas, 92–103 ribs left 1–12, 104–115 ribs
right 1–12, 116 sternum, 117 costal cartilages; left before right in each pair). Ids of our own, above
TotalSegmentator's range: 201 subcutaneous fat, 202 other muscle, 203 intervertebral disc, 204 visceral
fat, 210 sixth lumbar vertebra, 211/212 13th ribs left/right.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ctviewer.data.labels import Label, LabelMap, LabelTable, default_colour
from ctviewer.data.vertebra_ids import SACRUM_ID, VERTEBRA_IDS, vertebra_id
from ctviewer.data.volume import CANONICAL_DIRECTION, Volume
from ctviewer.progress import CancelToken, Progress, step_progress
from ctviewer.synth import body, organs, pelvis, ribcage, spine
from ctviewer.synth.canvas import Canvas
from ctviewer.synth.params import TISSUE_HU, Draw, TorsoParams

CHUNK_SLICES = 16


@dataclass(frozen=True)
class VertebraLevel:
    """Where one vertebral body lies in the scan: its centre and extent (mm in LPS z; 0-based slices)."""

    name: str
    label: int
    z_mm: float
    slice: int
    top_mm: float
    bottom_mm: float
    top_slice: int
    bottom_slice: int


@dataclass
class SynthTorso:
    image: Volume
    labels: LabelMap
    levels: dict[str, VertebraLevel]
    params: TorsoParams
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)


# -- anatomy -----------------------------------------------------------------------------------

class Anatomy:
    """Everything placed before rendering: the spine, cage, pelvis, trunk outline and all shapes."""

    def __init__(self, p: TorsoParams):
        d = Draw(p.seed, p.jitter)
        self.p = p
        self.hu = {name: d.hu(name) for name in TISSUE_HU}
        self.hu["air"] = -1000.0
        self.hu["cancellous"] *= p.bone_density
        self.hu["marrow"] = self.hu["yellow_marrow"]
        fat_back = 4 + 30 * p.fat_fraction
        self.spine = spine.Spine(p, d, fat_back)
        self.cage = ribcage.Cage(self.spine, p, d)
        self.sacrum = spine.sacrum_layout(self.spine, p, d)
        self.pelvis = pelvis.pelvis_layout(self.spine, self.sacrum, p, d)
        self.diaphragm = organs.Diaphragm(self.spine, self.cage, d)
        self.trunk = body.Trunk(self.spine, self.cage, self.sacrum, self.pelvis,
                                self.diaphragm.z_right + 8, p, d)
        self.fov = self._field_of_view(d)
        self.organs = organs.Organs(self.spine, self.cage, self.trunk, self.pelvis, self.diaphragm, p, d, self.hu)
        self.sternum = ribcage.Sternum(self.spine, self.cage, p, d)
        self.shapes = self._shapes(d)
        self.muscles = self._muscles(d)

    def _field_of_view(self, d: Draw) -> tuple[float, float]:
        p, sp = self.p, self.spine
        if p.fov_mm is not None:
            return float(p.fov_mm[0]), float(p.fov_mm[1])
        top_chest = sp["T1"].z_top + d(15, 35)
        bottom_pelvis = self.pelvis.z_head - d(35, 60)
        if p.field_of_view == "chest":
            return sp["L1"].z_bottom - d(2, 5), top_chest
        if p.field_of_view == "abdomen":
            return bottom_pelvis, sp["T10"].z_top + d(5, 25)
        return bottom_pelvis, top_chest

    def _shapes(self, d: Draw) -> list:
        """All shapes in painting order: a later one replaces what lies under it."""
        p, hu, o, sp = self.p, self.hu, self.organs, self.spine
        shapes = [o.lungs(), o.diaphragm_muscle()]
        shapes += o.heart_and_vessels()
        shapes += o.airway_and_oesophagus(self.fov[1])
        shapes += [o.liver(), o.stomach(), o.spleen(), o.pancreas()]
        shapes += o.kidneys()
        shapes.append(o.bladder())
        soft_arms, shoulder_bones = ribcage.shoulder_shapes(sp, self.cage, self.sternum, p, d, hu)
        shapes += soft_arms
        shapes += spine.canal_shapes(sp, self.sacrum, hu["csf"], hu["muscle"] - 10, self.fov[1])
        shapes += spine.disc_shapes(sp, hu["disc"])
        shapes += pelvis.pelvis_shapes(self.pelvis, p, hu)
        shapes += spine.sacrum_shapes(self.sacrum, hu["cortex"], hu["cancellous"])
        for v in sp.vertebrae:
            sacralised = p.sacralised_l5 and v is sp.last_lumbar
            shapes += spine.vertebra_shapes(v, d, hu["cortex"], hu["cancellous"], p.lumbar_count, sacralised)
        shapes += ribcage.rib_shapes(sp, self.cage, self.sternum, p, d, hu["cortex"], hu["cancellous"],
                                     hu["cartilage"])
        shapes += self.sternum.shapes(hu["cortex"], hu["cancellous"])
        shapes += shoulder_bones
        return shapes

    def _muscles(self, d: Draw) -> dict:
        """Paraspinal, psoas, quadratus lumborum and gluteal muscles as z-varying ellipses (base layer)."""
        sp, pl = self.spine, self.pelvis
        z_t12 = sp["T12"].z_bottom
        zs = np.array([v.z_centre for v in reversed(sp.vertebrae)])
        lumbar = np.array([v.kind == "L" for v in reversed(sp.vertebrae)], dtype=float)
        y_off = np.array([v.depth for v in reversed(sp.vertebrae)]) * 0.75 + 22
        size = 1 + 0.25 * d.unit()
        out = {}

        def interp(xp, fp):
            return lambda z: np.interp(z, xp, fp)

        z_ps = [z_t12, sp["L1"].z_centre, sp.vertebrae[-3].z_centre, sp.last_lumbar.z_centre, 0.0,
                pl.z_head + 15, pl.z_head - 60]
        r_ps = np.array([0.5, 9, 16, 21, 22, 20, 18]) * size
        for s in (1, -1):
            ax = interp(zs, (20 + 10 * lumbar) * size)
            ay = interp(zs, (20 + 8 * lumbar) * size)
            fade = lambda z, f=ax: np.where(z > -5, f(z), np.clip(f(z) * (1 + (z + 5) / 50), 0, None))  # noqa: E731
            out[f"autochthon{s}"] = (lambda z, s=s, f=ax: s * (f(z) + 8.0),
                                     lambda z: sp.y_at(z) + np.interp(z, zs, y_off) + 10,
                                     fade, ay, body.AUTOCHTHON_ID[s], "back_muscle")
            xs = [s * (sp.width_at(z) / 2 + r * 0.8) for z, r in zip(z_ps[:5], r_ps[:5])]
            xs += [s * (pl.x_head - 20), s * (pl.x_head - 15)]
            ys = [float(sp.y_at(z)) for z in z_ps[:5]] + [pl.y_head - 30, pl.y_head - 38]
            out[f"psoas{s}"] = (interp(z_ps[::-1], xs[::-1]), interp(z_ps[::-1], ys[::-1]),
                                interp(z_ps[::-1], r_ps[::-1]), interp(z_ps[::-1], r_ps[::-1] * 0.9),
                                body.ILIOPSOAS_ID[s], "muscle")
            # quadratus lumborum behind the kidneys, from T12 down to the iliac crest
            out[f"quadratus{s}"] = (lambda z, s=s: s * (sp.width_at(z) / 2 + 42), lambda z: sp.y_at(z) + 18,
                                    lambda z: np.where((z > pl.z_crest) & (z < z_t12), 18.0, 0.0),
                                    lambda z: np.full(np.shape(z), 9.0), body.MUSCLE_ID, "muscle")
            # gluteal muscles behind and beside the iliac wings, growing towards the hips
            zg = [pl.z_head - 80, pl.z_head, 0.0, pl.z_crest]
            out[f"gluteal{s}"] = (lambda z, s=s: np.full(np.shape(z), s * (pl.x_head + 15)),
                                  lambda z: np.full(np.shape(z), float(sp.y_at(0.0)) + 45),
                                  interp(zg, [60, 55, 40, 0.1]), interp(zg, [42, 40, 30, 0.1]),
                                  body.MUSCLE_ID, "muscle")
        return out


# -- rendering ---------------------------------------------------------------------------------

def make_torso(params: TorsoParams | None = None, progress: Progress | None = None,
               cancel: CancelToken | None = None) -> SynthTorso:
    """Generate the scan described by ``params`` (default: a sensible adult, chest to hips)."""
    t0 = time.perf_counter()
    p = params or TorsoParams()
    anat = Anatomy(p)
    z_bottom, z_top = anat.fov
    S, T, px = p.slice_spacing, p.thickness, p.pixel_spacing
    nz = int(np.floor((z_top - z_bottom) / S)) + 1
    ny, nx = (int(n) for n in p.matrix)
    z_out = z_bottom + S * np.arange(nz)
    shift = Draw(p.seed + 7919, p.jitter)
    front = float(anat.trunk.at(np.array([z_top, (z_top + z_bottom) / 2, z_bottom]))["front"].min())
    y_centre = (front + 45.0) / 2 + shift(-10, 10)  # body plus table centred in the field of view
    x = ((np.arange(nx) - (nx - 1) / 2) * px + shift(-8, 8)).astype(np.float32)
    y = (y_centre + (np.arange(ny) - (ny - 1) / 2) * px).astype(np.float32)

    m = max(1, int(np.ceil(S / 0.9)))  # sub-slices per slice spacing
    dzf = S / m
    offsets, weights = _thickness_kernel(S, T, m)
    texture = body.Texture(p.seed, z_bottom - T, z_top + T, half=max(ny, nx) * px / 2 + 20)
    image = np.empty((nz, ny, nx), dtype=np.int16)
    labels = np.empty((nz, ny, nx), dtype=np.uint8)
    noise_rng = np.random.default_rng([p.seed, 0x901])
    n_chunks = int(np.ceil(nz / CHUNK_SLICES))
    tick = step_progress(progress, cancel, n_chunks, "generating synthetic torso")
    for c in range(n_chunks):
        tick(c)
        k0, k1 = c * CHUNK_SLICES, min(nz, (c + 1) * CHUNK_SLICES)
        f_lo, f_hi = k0 * m + offsets.min(), (k1 - 1) * m + offsets.max() + 1
        zf = z_bottom - S / 2 + (np.arange(f_lo, f_hi) + 0.5) * dzf
        # base layer at the output slice nearest to each sub-slice
        k_near = np.round((zf - z_bottom) / S).astype(int)
        ks = np.unique(k_near)
        base_hu, base_lab = body.render_base(anat.trunk, texture, z_bottom + S * ks, y, x, anat.hu, p, anat.muscles)
        pick = np.searchsorted(ks, k_near)
        canvas = Canvas(zf, y, x, base_hu[pick], base_lab[pick])
        lo_z, hi_z = zf[0], zf[-1]
        for shape in anat.shapes:
            if shape.zmax >= lo_z and shape.zmin <= hi_z:
                shape.draw(canvas)
        n = k1 - k0
        hu = np.zeros((n, ny, nx), dtype=np.float32)
        for off, wgt in zip(offsets, weights):
            start = k0 * m + off - f_lo
            hu += np.float32(wgt) * canvas.hu[start:start + m * (n - 1) + 1:m]
        centre = k0 * m + m // 2 - f_lo
        labels[k0:k1] = canvas.lab[centre:centre + m * (n - 1) + 1:m]
        image[k0:k1] = _reconstruct(hu, p, noise_rng)
    tick(n_chunks)

    origin = (float(x[0]), float(y[0]), float(z_bottom + p.z_offset_mm))
    name = p.name or f"synthetic torso (seed {p.seed})"
    vol = Volume(image, spacing=(S, px, px), origin=origin, direction=CANONICAL_DIRECTION.copy(),
                 modality="CT", name=name, window=(400.0, 40.0), slice_thickness=T,
                 meta={"synthetic": True, "seed": p.seed, "generator": "ctviewer.synth.torso"})
    table = label_table(np.unique(labels))
    lmap = LabelMap(vol.with_array(labels, window=None, modality="", name=f"{name} labels"), table)
    levels = _levels(anat, z_bottom, S, nz, p.z_offset_mm)
    return SynthTorso(vol, lmap, levels, p, time.perf_counter() - t0,
                      meta={"fov_mm": anat.fov, "hu": dict(anat.hu)})


def _thickness_kernel(S: float, T: float, m: int):
    """Sub-slice offsets (relative to the first sub-slice of a slice) and weights of a box of width T."""
    dzf = S / m
    centre = (m - 1) / 2
    reach = int(np.ceil(T / 2 / dzf)) + 1
    offs = np.arange(-reach, reach + 1) + int(np.floor(centre))
    pos = (offs - centre) * dzf
    overlap = np.clip(np.minimum(pos + dzf / 2, T / 2) - np.maximum(pos - dzf / 2, -T / 2), 0, None)
    keep = overlap > 1e-6
    offs, w = offs[keep], overlap[keep]
    return offs, w / w.sum()


def _reconstruct(hu: np.ndarray, p: TorsoParams, rng: np.random.Generator) -> np.ndarray:
    """Kernel blur in-plane, correlated noise of ``p.noise_sd`` HU, rounded to int16 HU."""
    if p.kernel_sigma > 0:
        hu = ndimage.gaussian_filter(hu, (0, p.kernel_sigma, p.kernel_sigma))
    if p.noise_sd > 0:
        sigma = 0.7
        noise = rng.standard_normal(hu.shape, dtype=np.float32)
        noise = ndimage.gaussian_filter(noise, (0, sigma, sigma))
        noise *= np.float32(p.noise_sd / _smoothed_sd(sigma))
        hu += noise
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)


def _smoothed_sd(sigma: float) -> float:
    """Standard deviation of unit white noise after the 2-D Gaussian filter used for the noise."""
    impulse = np.zeros(41)
    impulse[20] = 1
    k = ndimage.gaussian_filter1d(impulse, sigma)
    return float(np.sum(k * k))


def _levels(anat: Anatomy, z_bottom: float, S: float, nz: int, z_offset: float) -> dict[str, VertebraLevel]:
    """Vertebral bodies whose centre lies in the scan, from head to feet (sacral S1 last)."""
    out = {}
    bodies = [(v.name, v.label, v.z_bottom, v.z_top) for v in anat.spine.vertebrae]
    s1 = anat.sacrum
    half = s1.lengths[0] / 2 * abs(np.cos(s1.tilts[0]))
    bodies.append(("S1", spine.S1_ID, s1.centres[0][2] - half, s1.centres[0][2] + half))
    for name, label, zb, zt in bodies:
        zc = (zb + zt) / 2
        k = (zc - z_bottom) / S
        if not (-0.5 <= k <= nz - 0.5):
            continue
        def sl(z):  # noqa: E306
            return int(np.clip(np.round((z - z_bottom) / S), 0, nz - 1))
        out[name] = VertebraLevel(name, label, float(zc + z_offset), sl(zc), float(zt + z_offset),
                                  float(zb + z_offset), sl(zt), sl(zb))
    return out


# -- label names -------------------------------------------------------------------------------

def _names() -> dict[int, str]:
    names = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 4: "gallbladder", 5: "liver", 6: "stomach",
             7: "pancreas",
             10: "lung_upper_lobe_left", 11: "lung_lower_lobe_left", 12: "lung_upper_lobe_right",
             13: "lung_middle_lobe_right", 14: "lung_lower_lobe_right", 15: "esophagus", 16: "trachea",
             21: "urinary_bladder", SACRUM_ID: "sacrum", 51: "heart", 52: "aorta",
             63: "inferior_vena_cava", 65: "iliac_artery_left", 66: "iliac_artery_right",
             67: "iliac_vena_left", 68: "iliac_vena_right", 69: "humerus_left", 70: "humerus_right",
             71: "scapula_left", 72: "scapula_right", 73: "clavicula_left", 74: "clavicula_right",
             75: "femur_left", 76: "femur_right", 77: "hip_left", 78: "hip_right", 79: "spinal_cord",
             86: "autochthon_left", 87: "autochthon_right", 88: "iliopsoas_left", 89: "iliopsoas_right",
             116: "sternum", 117: "costal_cartilages", 201: "subcutaneous_fat", 202: "muscle",
             203: "intervertebral_disc", 204: "visceral_fat",
             211: "rib_left_13", 212: "rib_right_13"}
    for n in range(1, 13):
        names[91 + n] = f"rib_left_{n}"
        names[103 + n] = f"rib_right_{n}"
    names.update({vertebra_id(lv): f"vertebrae_{lv}" for lv in (*VERTEBRA_IDS, "L6")})
    return names


LABEL_NAMES: dict[int, str] = _names()


def label_table(ids=None) -> LabelTable:
    """The label table of the synthetic torso (all ids, or only ``ids``)."""
    ids = sorted(LABEL_NAMES) if ids is None else [int(i) for i in ids if int(i) in LABEL_NAMES]
    return LabelTable([Label(i, LABEL_NAMES[i], default_colour(i)) for i in ids])

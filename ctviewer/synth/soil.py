"""A synthetic soil micro-CT cube with its truth: the demo soil study and training data for the soil
workflow, since no real soil scan ships with ctviewer.

The cube holds a textured mineral matrix, many small irregular pores, a few earthworm channels
(biopores: tubes 2–5 mm wide that run mostly from the top, slice 0, downwards; the first always
reaches the bottom), branching root channels 0.3–1.5 mm wide (some empty, some still filled with
root tissue) and dense stones of a few mm, blurred at the edges (partial volume) and noisy.

Grey values are on the seed's scale (``gen_cube.py``): Hounsfield units clipped at −1000, shifted
by +1000 and capped at 4096, so air is 0 and water 1000. On that scale, using the rough rule that
HU ≈ 1000·(density in g/cm³ − 1) holds for light, low-atomic-number materials (it under-reads
denser minerals, which is why stones are given a wide band):

=====================  =============  =============================================================
truth                  grey values    why
=====================  =============  =============================================================
1 pores, 2 biopores,   ~0–300         air (−1000 HU); small pores read higher through partial volume
3 root channels
6 roots                ~700–900       root tissue: mostly water with air spaces, 0.7–0.9 g/cm³
4 matrix               ~1800–2400     mineral soil at a bulk density of about 1.2–1.6 g/cm³ with
                                      aggregate texture, denser with depth (compaction)
5 stones               ~2800–3800     quartz and feldspar grains (about 2.65 g/cm³)
=====================  =============  =============================================================

The porosity of label 1 (image-resolved pores of the matrix) is drawn per seed from
:data:`POROSITY_RANGE` unless given; arable topsoils scanned at about 0.1 mm typically show 5–20 %.
The same seed gives the same cube, bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial.transform import Rotation

from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.volume import CANONICAL_DIRECTION, Volume
from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, step_progress
from ctviewer.synth.soil_shapes import paint_stone, paint_tube, walk

PORES, BIOPORES, ROOT_CHANNELS, MATRIX, STONES, ROOTS = 1, 2, 3, 4, 5, 6
#: id -> (name, colour) of the truth labels.
SOIL_LABELS: dict[int, tuple[str, tuple[int, int, int]]] = {
    PORES: ("pores", (30, 144, 255)),
    BIOPORES: ("biopores (earthworm channels)", (255, 140, 0)),
    ROOT_CHANNELS: ("root channels (empty)", (50, 205, 50)),
    MATRIX: ("soil matrix", (150, 105, 60)),
    STONES: ("stones", (220, 20, 60)),
    ROOTS: ("roots (organic)", (0, 110, 40)),
}
#: Porosity of label 1 drawn per seed when SoilParams.porosity is None.
POROSITY_RANGE = (0.05, 0.16)
#: A display window (width, level) that shows air, roots, matrix and stones apart.
SOIL_WINDOW = (4000.0, 2000.0)

#: The keys of SoilCube.stats (fractions of the cube), besides "porosity" and "air".
_STAT_KEYS = {PORES: "pores", BIOPORES: "biopores", ROOT_CHANNELS: "root_channels", MATRIX: "matrix",
              STONES: "stones", ROOTS: "roots"}
_AIR = {PORES: 40.0, BIOPORES: 20.0, ROOT_CHANNELS: 40.0}
_ROOT_TISSUE = 800.0


@dataclass
class SoilParams:
    """What to generate. Counts left at None are drawn per seed, scaled to the cube's size."""

    shape: tuple[int, int, int] = (200, 200, 200)   # [z, y, x] voxels; slice 0 is the top of the core
    voxel_mm: float = 0.1
    seed: int = 0
    porosity: float | None = None        # fraction of the cube in small pores (label 1)
    biopores: int | None = None          # earthworm channels (the first always runs top to bottom)
    roots: int | None = None             # root systems: a main root with laterals
    stones: int | None = None
    live_roots: float = 0.5              # chance that a root system is still filled with tissue
    noise: float = 45.0                  # scanner noise (standard deviation, grey values)
    blur_voxels: float = 0.5             # partial-volume blur (Gaussian sigma, voxels)
    name: str = ""

    def check(self) -> None:
        if len(self.shape) != 3 or min(self.shape) < 8:
            raise InputError(f"a soil cube needs at least 8 voxels along each axis, got {tuple(self.shape)}")
        if not self.voxel_mm > 0:
            raise InputError(f"the voxel size must be positive, got {self.voxel_mm} mm")
        if self.porosity is not None and not 0.0 <= self.porosity <= 0.5:
            raise InputError(f"porosity must lie between 0 and 0.5, got {self.porosity}")
        for name in ("biopores", "roots", "stones"):
            if (getattr(self, name) or 0) < 0:
                raise InputError(f"the number of {name} cannot be negative")
        if not 0.0 <= self.live_roots <= 1.0 or self.noise < 0 or self.blur_voxels < 0:
            raise InputError("live_roots must lie between 0 and 1, noise and blur_voxels cannot be negative")


@dataclass
class SoilCube:
    image: Volume             # int16, the seed's 0..4096 scale
    truth: LabelMap           # SOIL_LABELS ids
    params: SoilParams        # as generated: every count and the porosity filled in
    stats: dict = field(default_factory=dict)   # fractions of the cube per class
    seconds: float = 0.0


def soil_label_table() -> LabelTable:
    return LabelTable([Label(i, name, colour) for i, (name, colour) in SOIL_LABELS.items()])


def make_soil_cube(params: SoilParams | None = None, progress: Progress | None = None,
                   cancel: CancelToken | None = None) -> SoilCube:
    t0 = time.perf_counter()
    p = params or SoilParams()
    p.check()
    tick = step_progress(progress, cancel, 6, "Generating the soil cube")
    tick(0)
    rng = np.random.default_rng(p.seed)
    p = _resolve(p, rng)
    shape = tuple(int(s) for s in p.shape)
    mm = 1.0 / p.voxel_mm                 # voxels per mm

    # Two smooth random fields (float32, unit variance): aggregates of the matrix at ~1 mm and a
    # finer one at ~0.2-0.4 mm whose high values are the small pores (and whose wiggles roughen stones).
    texture = _smooth_noise(rng, shape, max(1.0, 1.0 * mm))
    tick(1)
    fine = _smooth_noise(rng, shape, max(0.8, rng.uniform(0.2, 0.4) * mm))
    for k in range(0, shape[0], 32):     # pores gather where the matrix is loose (slabs: small temporaries)
        fine[k:k + 32] -= np.float32(0.6) * texture[k:k + 32]
    tick(2)

    labels = np.full(shape, MATRIX, np.uint8)
    tubes = _biopores(rng, p, shape, mm)
    stones = _stones(rng, p, labels, tubes, fine, mm)
    _roots(rng, p, labels, mm)
    for points, radius in tubes:
        paint_tube(labels, points, radius, BIOPORES, keep=(STONES,))
    _pores(labels, fine, p.porosity)
    del fine
    tick(3)

    image = _grey_values(rng, p, labels, texture, stones)
    del texture
    tick(4)
    if p.blur_voxels > 0:
        ndi.gaussian_filter(image, p.blur_voxels, output=image)
    for k in range(0, shape[0], 32):     # noise in slabs: no second whole-cube float array
        slab = rng.standard_normal((min(32, shape[0] - k), *shape[1:]), dtype=np.float32)
        slab *= np.float32(p.noise)
        image[k:k + 32] += slab
    np.clip(image, 0, 4096, out=image)
    image = np.rint(image, out=image).astype(np.int16)
    tick(5)

    name = p.name or f"synthetic soil cube (seed {p.seed})"
    spacing = (p.voxel_mm,) * 3
    vol = Volume(image, spacing=spacing, direction=CANONICAL_DIRECTION.copy(), modality="CT", name=name,
                 window=SOIL_WINDOW, meta={"synthetic": True, "seed": p.seed, "generator": "ctviewer.synth.soil",
                                           "scale": "HU clipped at -1000, +1000, capped at 4096"})
    truth = LabelMap(vol.with_array(labels, window=None, modality="", name=f"{name} truth"), soil_label_table())
    counts = np.bincount(labels.ravel(), minlength=len(SOIL_LABELS) + 1) / labels.size
    stats = {key: float(counts[i]) for i, key in _STAT_KEYS.items()}
    stats["porosity"] = float(counts[PORES])
    stats["air"] = float(counts[PORES] + counts[BIOPORES] + counts[ROOT_CHANNELS])
    tick(6)
    return SoilCube(vol, truth, p, stats, time.perf_counter() - t0)


def _resolve(p: SoilParams, rng: np.random.Generator) -> SoilParams:
    """Fill in what was left to the seed. Every draw happens whatever was given, so that fixing
    the porosity of a seed changes its pores and nothing else."""
    area_cm2 = p.shape[1] * p.shape[2] * (p.voxel_mm / 10) ** 2
    volume_cm3 = area_cm2 * p.shape[0] * p.voxel_mm / 10
    drawn = dict(porosity=float(rng.uniform(*POROSITY_RANGE)),
                 biopores=max(1, int(round(area_cm2 * rng.uniform(0.25, 0.75)))),
                 roots=max(1, int(round(area_cm2 * rng.uniform(1.0, 2.5)))),
                 stones=int(round(volume_cm3 * rng.uniform(0.75, 2.5))))
    return replace(p, **{k: v if getattr(p, k) is None else getattr(p, k) for k, v in drawn.items()})


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise with unit variance. Wide kernels are cheap: the noise is made
    on a coarser grid, repeated up and smoothed at full size only enough to hide the blocks."""
    step = max(1, int(sigma // 2))
    coarse = tuple(-(-n // step) for n in shape)
    field = rng.standard_normal(coarse, dtype=np.float32)
    if step > 1:
        ndi.gaussian_filter(field, sigma / step, output=field, mode="wrap")
        for ax in range(3):
            field = np.repeat(field, step, axis=ax)
        field = np.ascontiguousarray(field[tuple(slice(0, n) for n in shape)])
        ndi.gaussian_filter(field, 0.4 * step, output=field)
    else:
        ndi.gaussian_filter(field, sigma, output=field)
    sample = field[::3, ::3, ::3]
    field -= np.float32(sample.mean())
    field /= np.float32(max(float(sample.std()), 1e-6))
    return field


def _biopores(rng, p: SoilParams, shape, mm: float) -> list[tuple[np.ndarray, float]]:
    """Earthworm channels as (points, radius). The first starts at the top and reaches the bottom;
    the others start anywhere in the upper half and end somewhere (worms turn back)."""
    nz, ny, nx = shape
    tubes = []
    for k in range(p.biopores):
        r = min(rng.uniform(1.0, 2.5) * mm, 0.12 * min(ny, nx))
        r = max(r, 1.0)
        margin = r + 1.0
        start = (0.0 if k == 0 else rng.uniform(0, nz / 2), rng.uniform(margin, ny - 1 - margin),
                 rng.uniform(margin, nx - 1 - margin))
        length = (3 * nz) if k == 0 else rng.uniform(0.3, 1.0) * nz
        tilt = rng.normal(0, 0.25, 2)
        pts = walk(rng, start, (1.0, *tilt), max(1.0, 0.7 * r), length, shape, wander=0.08,
                   down_bias=0.02, min_down=0.6, lateral_margin=margin)
        if k == 0:   # stop where it has left through the bottom
            below = np.flatnonzero(pts[:, 0] >= nz - 1)
            pts = pts[: below[0] + 1] if below.size else pts
        tubes.append((pts, r))
    return tubes


def _stones(rng, p: SoilParams, labels, tubes, roughness, mm: float) -> list[tuple[tuple, np.ndarray, float]]:
    """Paint stones where no earthworm channel runs (worms go round stones, and the first channel
    must stay open). Returns (box, mask, grey level) per stone painted."""
    shape = np.asarray(labels.shape, dtype=float)
    path = np.concatenate([pts for pts, _ in tubes]) if tubes else np.zeros((0, 3))
    path_r = np.concatenate([np.full(len(pts), r) for pts, r in tubes]) if tubes else np.zeros(0)
    painted = []
    for _ in range(p.stones):
        semi = np.sort(rng.uniform(0.8, 3.0, 3) * mm)[::-1] * np.array([1.0, rng.uniform(0.6, 1.0),
                                                                     rng.uniform(0.4, 0.9)])
        semi = np.maximum(semi, 1.0)
        rotation = Rotation.random(random_state=rng).as_matrix()
        level = rng.uniform(3100.0, 3600.0)
        for _try in range(20):
            centre = rng.uniform(0, 1, 3) * (shape - 1)
            if not path.size or np.all(np.linalg.norm(path - centre, axis=1) > path_r + 1.3 * semi[0] + 2):
                break
        else:
            continue
        done = paint_stone(labels, centre, semi, rotation, STONES, roughness)
        if done is not None:
            painted.append((*done, level))
    return painted


def _roots(rng, p: SoilParams, labels, mm: float) -> None:
    """Root systems: a main root from the surface downwards, tapering, with laterals growing out
    sideways. A live root is painted ROOTS (tissue), a decayed one ROOT_CHANNELS (air)."""
    nz, ny, nx = labels.shape
    for _ in range(p.roots):
        value = ROOTS if rng.uniform() < p.live_roots else ROOT_CHANNELS
        r0 = max(rng.uniform(0.3, 0.75) * mm, 0.8)
        start = (rng.uniform(0.0, 0.25) * nz, rng.uniform(0, ny - 1), rng.uniform(0, nx - 1))
        main = walk(rng, start, (1.0, *rng.normal(0, 0.4, 2)), max(1.5, r0), rng.uniform(0.5, 1.2) * nz,
                    labels.shape, wander=0.15, down_bias=0.04, min_down=0.2)
        taper = r0 * np.linspace(1.0, 0.6, len(main) - 1)
        paint_tube(labels, main, taper, value, keep=(STONES,))
        n_laterals = int(rng.poisson(len(main) * max(1.5, r0) / mm / 3.0))
        for _lat in range(n_laterals):
            i = int(rng.integers(0, len(main) - 1))
            r = max(taper[i] * rng.uniform(0.35, 0.6), 0.15 * mm, 0.6)
            angle = rng.uniform(0, 2 * np.pi)
            lateral = walk(rng, main[i], (rng.uniform(-0.2, 0.5), np.cos(angle), np.sin(angle)), max(1.2, r),
                           rng.uniform(2.0, 8.0) * mm, labels.shape, wander=0.2, down_bias=0.03)
            paint_tube(labels, lateral, r, value, keep=(STONES,))


def _pores(labels: np.ndarray, fine: np.ndarray, porosity: float) -> None:
    """Turn the highest values of ``fine`` inside the matrix into pores, ``porosity`` of the cube."""
    matrix = labels == MATRIX
    want = porosity * labels.size / max(int(np.count_nonzero(matrix)), 1)
    if want <= 0:
        return
    sample = fine[::2, ::2, ::2][matrix[::2, ::2, ::2]]
    threshold = np.quantile(sample, 1.0 - min(want, 1.0)) if sample.size else np.inf
    matrix &= fine > threshold
    labels[matrix] = PORES


def _grey_values(rng, p: SoilParams, labels, texture, stones) -> np.ndarray:
    """float32 grey values before blur and noise: a level per class, textured matrix and stones."""
    base = np.zeros(len(SOIL_LABELS) + 1, np.float32)
    amp = np.zeros_like(base)
    for i, v in _AIR.items():
        base[i] = v
    base[ROOTS], amp[ROOTS] = _ROOT_TISSUE, 30.0
    base[MATRIX], amp[MATRIX] = rng.uniform(1950.0, 2200.0), rng.uniform(90.0, 130.0)
    amp[STONES] = 60.0      # each stone gets its own level below
    image = base[labels]
    textured = amp[labels]
    textured *= texture
    image += textured
    del textured
    # compaction: the matrix gets denser with depth, up to +120 at the bottom
    ramp = np.linspace(0.0, 120.0, labels.shape[0], dtype=np.float32)[:, None, None]
    np.add(image, ramp, out=image, where=labels == MATRIX)
    for box, mask, level in stones:   # assigned, not added: where stones overlap the last one wins
        view = image[box]
        inside = mask & (labels[box] == STONES)
        view[inside] = np.float32(level) + amp[STONES] * texture[box][inside]
    return image

"""A synthetic thin-section photomicrograph with its true classes, for the thin-section workflow's demo
and tests in clones that have no real photos.

A packing of irregular grains (a jittered Voronoi tessellation, each cell shrunk by its own margin and
rounded) in blue-dye epoxy, like a sandstone photographed in plane-polarised light: bright quartz,
darker feldspar / lithic grains in two shades, a few black opaque grains. Every grain's class is
decided when it is made, so ``labels`` is the truth (never a threshold of the photo). Mean colours sit
inside the gray-level bins of ``ctviewer.imaging.bins`` (as in the real photos), so "Gray-level
bins" starts sensible labels on it too. Class ids are those of ``thin_section_table()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

BLACK, DARK, EPOXY, DARK_BRIGHT, QUARTZ = 1, 2, 3, 4, 5

#: Mean colour (RGB) of each class; grains vary around it. Luminance of each lies in its published bin.
COLOURS = {
    BLACK: (28, 25, 24),           # opaque minerals
    DARK: (122, 92, 62),           # brown lithic fragments
    EPOXY: (88, 152, 218),         # blue-dye epoxy in the pores
    DARK_BRIGHT: (192, 168, 128),  # orange-grey feldspar
    QUARTZ: (228, 225, 208),       # near white, a touch of yellow
}
#: Per-grain colour spread and within-grain speckle (grey levels): feldspar and lithics are mottled.
GRAIN_SPREAD = {BLACK: 6, DARK: 12, DARK_BRIGHT: 12, QUARTZ: 8}
SPECKLE = {BLACK: 4, DARK: 14, DARK_BRIGHT: 12, QUARTZ: 5}


@dataclass
class ThinSection:
    rgb: np.ndarray      # [y, x, 3] uint8 photo
    labels: np.ndarray   # [y, x] uint8 true class ids 1..5
    seed: int

    @property
    def porosity(self) -> float:
        """Fraction (0..1) of the photo that is blue-dye epoxy (class 3): the visual porosity."""
        return float(np.mean(self.labels == EPOXY))

    @property
    def table(self):
        from ctviewer.imaging.bins import thin_section_table

        return thin_section_table()


def make_thin_section(seed: int = 0, size: tuple[int, int] = (480, 640)) -> ThinSection:
    """A photo of ``size`` (rows, columns); the seed picks grain size, porosity and mineral mix."""
    rng = np.random.default_rng(seed)
    h, w = int(size[0]), int(size[1])
    spacing = rng.uniform(20.0, 36.0)          # mean grain spacing in pixels
    porosity = rng.uniform(0.09, 0.22)

    cells = _voronoi(rng, (h, w), spacing)
    n = int(cells.max()) + 1
    classes = _grain_classes(rng, n)
    grain, depth = _grain_alpha(rng, cells, n, spacing, porosity)   # 1 inside grains, 0 in epoxy; soft edges

    labels = np.where(grain >= 0.5, classes[cells], EPOXY).astype(np.uint8)
    rgb = _paint(rng, cells, classes, grain, depth)
    return ThinSection(rgb=rgb, labels=labels, seed=seed)


def _voronoi(rng, shape, spacing: float) -> np.ndarray:
    """Cell index of each pixel: nearest of jittered grid points (points reach past the border)."""
    h, w = shape
    ys = np.arange(-spacing / 2, h + spacing, spacing)
    xs = np.arange(-spacing / 2, w + spacing, spacing)
    py, px = np.meshgrid(ys, xs, indexing="ij")
    py = py.ravel() + rng.uniform(-0.45, 0.45, py.size) * spacing
    px = px.ravel() + rng.uniform(-0.45, 0.45, px.size) * spacing
    inside = (py >= 0) & (py < h) & (px >= 0) & (px < w)
    seeds = np.ones(shape, dtype=bool)
    seeds[py[inside].astype(int), px[inside].astype(int)] = False
    # the Euclidean distance transform finds every pixel's nearest seed point in one pass
    _, (iy, ix) = ndi.distance_transform_edt(seeds, return_indices=True)
    ids = np.full(shape, -1, dtype=np.int32)
    ids[~seeds] = np.arange(int((~seeds).sum()))
    return ids[iy, ix]


def _grain_classes(rng, n: int) -> np.ndarray:
    """Class of each cell: mostly quartz, a seed-dependent share of darker grains, a few opaque ones;
    every class at least twice so the default photo always holds all five."""
    share = np.array([rng.uniform(0.02, 0.05), rng.uniform(0.06, 0.14), rng.uniform(0.10, 0.22)])
    p = np.append(share, 1.0 - share.sum())
    classes = rng.choice(np.array([BLACK, DARK, DARK_BRIGHT, QUARTZ], dtype=np.uint8), size=n, p=p)
    for k, c in enumerate((BLACK, DARK, DARK_BRIGHT)):
        classes[k * 7 % n] = c
        classes[(k * 7 + 3 * n // 5) % n] = c
    return classes


def _grain_alpha(rng, cells: np.ndarray, n: int, spacing: float, porosity: float) -> np.ndarray:
    """Grain cover 0..1 per pixel: each cell shrunk from its borders (by its own margin, with wobble),
    corners rounded by a blur; the threshold is chosen so the pores take ``porosity`` of the photo."""
    border = np.zeros(cells.shape, dtype=bool)
    border[:, 1:] |= cells[:, 1:] != cells[:, :-1]
    border[1:, :] |= cells[1:, :] != cells[:-1, :]
    depth = ndi.distance_transform_edt(~border)             # distance to the cell's border
    margin = rng.gamma(3.0, spacing * 0.025, n)             # some grains nearly touch, some float in epoxy
    margin[rng.random(n) < 0.04] = spacing                  # a few cells are whole pores
    wobble = ndi.gaussian_filter(rng.standard_normal(cells.shape), spacing * 0.15)
    wobble *= spacing * 0.03 / (wobble.std() + 1e-9)        # irregular, not polygonal, outlines
    score = np.minimum(depth, spacing) - margin[cells] + wobble
    cut = np.quantile(score, porosity)
    soft = ndi.gaussian_filter((score > cut).astype(np.float32), 1.6)   # rounds corners
    return np.clip((soft - 0.5) * 2.5 + 0.5, 0.0, 1.0), depth   # edges about one pixel wide, anti-aliased


def _paint(rng, cells: np.ndarray, classes: np.ndarray, grain: np.ndarray, depth: np.ndarray) -> np.ndarray:
    h, w = cells.shape
    n = classes.size
    base = np.array([COLOURS[c] for c in classes], dtype=np.float32)
    spread = np.array([GRAIN_SPREAD[c] for c in classes], dtype=np.float32)
    tint = rng.normal(0, 1, (n, 1)) * spread[:, None] + rng.normal(0, 0.35, (n, 3)) * spread[:, None]
    colour = ndi.gaussian_filter((base + tint)[cells], (0.7, 0.7, 0))   # soft boundaries where grains touch
    speckle = np.array([SPECKLE[c] for c in classes], dtype=np.float32)[cells]
    mottle = ndi.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 1.2) * 2.5
    colour += (mottle * speckle)[..., None]
    colour *= (0.8 + 0.2 * np.clip(depth - 0.5, 0, 1))[..., None]   # grain boundaries where grains touch

    epoxy = np.array(COLOURS[EPOXY], dtype=np.float32) + rng.normal(0, 6, 3)
    epoxy = epoxy + ndi.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 6)[..., None] * 30
    a = grain[..., None]
    rgb = a * colour + (1 - a) * epoxy
    rgb *= 1.0 - 0.9 * (a * (1 - a))                        # dark relief rim at grain edges

    angle = rng.uniform(0, 2 * np.pi)                       # uneven illumination across the field
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * (yy / max(h, 1) - 0.5) + np.sin(angle) * (xx / max(w, 1) - 0.5))
    rgb *= (1.0 + rng.uniform(0.06, 0.14) * ramp)[..., None]
    rgb += rng.normal(0, 3.0, rgb.shape).astype(np.float32)   # sensor noise
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

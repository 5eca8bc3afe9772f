"""Projection images of the skeleton that the L3/T12 locator reads: frontal and sagittal MIPs at 1 mm.

This is the thesis's "more reliable MIP", with the seeds' bugs fixed:

* HU come from the loader (rescale slope/intercept applied), not from shifting the minimum to −1000;
* slice positions come from the geometry, as floats (the thesis truncated 0.625 mm to 0 and divided
  by zero), and the scan's orientation from its direction cosines, not from file order;
* the body mask (≥ −120 HU, largest connected part, holes filled slice by slice) removes the table,
  which otherwise lies in the posterior half and covers the spine in a frontal MIP.

The frontal image is the maximum over the *posterior half* of the body (spine, ribs, pelvis without
the sternum and contrast-filled organs in front); the sagittal image is the maximum over a slab
around the body's left–right centre (the spine). Both are windowed to 100–1500 HU, scaled to 0..1,
and resampled to 1 mm, row 0 being the most superior row.

Speed matters (a 512×512×400 scan must be located in under a second on two cores), so the body
mask is found on a grid four times coarser in-plane, and the maxima are taken slab by slab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.imaging.orientation import obliquity_deg, orientation_code, to_canonical
from ctviewer.progress import CancelToken, Progress, no_progress

PROJECTION_SPACING_MM = 1.0
WINDOW_HU = (100.0, 1500.0)
BODY_THRESHOLD_HU = -120.0
#: Half-width (mm) of the sagittal slab around the body centre: the vertebral bodies (45–52 mm wide)
#: and the posterior elements, without the ribs' lateral arcs or the arms.
SAGITTAL_HALF_WIDTH_MM = 30.0
#: A series tilted further than this (gantry tilt, oblique) is refused: its "slices" are not axial.
MAX_TILT_DEG = 5.0
#: In-plane step of the grid the body mask is found on.
MASK_STEP = 4


@dataclass
class Projections:
    """Frontal and sagittal projections of one scan, with what is needed to map rows to slices."""

    frontal: np.ndarray
    sagittal: np.ndarray
    top_z_mm: float
    spacing_mm: float
    slice_z_mm: np.ndarray
    instance_numbers: list | None = None
    slice_thickness_mm: float | None = None
    slice_spacing_mm: float = 1.0
    body_centre_col: tuple[float, float] = (0.0, 0.0)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return int(self.frontal.shape[0])

    def row_to_z(self, row: float) -> float:
        """Patient z (mm) of a (fractional) projection row."""
        return float(self.top_z_mm - row * self.spacing_mm)

    def z_to_row(self, z_mm: float) -> float:
        return float((self.top_z_mm - z_mm) / self.spacing_mm)

    def z_to_slice(self, z_mm: float) -> int:
        """Index of the slice (axis 0 of the canonical volume) nearest to ``z_mm``."""
        return int(np.argmin(np.abs(self.slice_z_mm - z_mm)))

    def contains_z(self, z_mm: float) -> bool:
        lo, hi = float(self.slice_z_mm.min()), float(self.slice_z_mm.max())
        half = self.slice_spacing_mm / 2
        return lo - half <= z_mm <= hi + half


def make_projections(volume: Volume, progress: Progress | None = None,
                     cancel: CancelToken | None = None) -> Projections:
    """Frontal and sagittal skeleton projections of a CT volume (see the module docstring)."""
    progress = progress or no_progress
    vol, warnings = axial_volume(volume)
    a = vol.array
    if a.shape[0] < 2:
        raise InputError("a single slice has no height to locate levels in", volume.source or None)
    sz, sy, sx = vol.spacing
    progress(0.05, "finding the body")
    body, centre_y, centre_x = _body_mask(a, sz, cancel)
    progress(0.35, "projecting")
    # One coarse pixel is 4 full pixels: shrink the mask by one so that its blocky rim cannot take in
    # a couch shell a few mm behind the back (the bones lie well inside the skin).
    inner = _erode(body)
    frontal, sagittal = _project(a, inner, centre_y, centre_x, (sy, sx), cancel)
    progress(0.8, "resampling to 1 mm")
    # Axis 0 of the canonical volume runs towards the head: flip so that row 0 is the top.
    frontal = _to_mm_grid(frontal[::-1], sz, sx)
    sagittal = _to_mm_grid(sagittal[::-1], sz, sy)
    slice_z = vol.index_to_lps(np.stack([np.arange(a.shape[0]), np.zeros(a.shape[0]),
                                         np.zeros(a.shape[0])], axis=1))[:, 2]
    ys = sagittal.shape[1]
    progress(1.0, "")
    return Projections(
        frontal=frontal, sagittal=sagittal, top_z_mm=float(slice_z.max()),
        spacing_mm=PROJECTION_SPACING_MM, slice_z_mm=slice_z,
        instance_numbers=list(vol.instance_numbers) if vol.instance_numbers is not None else None,
        slice_thickness_mm=vol.slice_thickness, slice_spacing_mm=float(sz),
        body_centre_col=(float(centre_x * sx / PROJECTION_SPACING_MM),
                         float(np.clip(np.median(centre_y) * sy / PROJECTION_SPACING_MM, 0, ys - 1))),
        warnings=warnings)


# -- steps ---------------------------------------------------------------------------------------

def axial_volume(volume: Volume) -> tuple[Volume, list[str]]:
    """The volume with axis 0 towards the head, or InputError where its slices are not axial."""
    if volume.is_photo or volume.array.ndim != 3:
        raise InputError("a photo has no slices to locate levels in; open a CT scan", volume.source or None)
    tilt = obliquity_deg(volume.direction)
    if tilt > MAX_TILT_DEG:
        raise InputError(f"series is tilted by {tilt:.1f}° (gantry tilt or oblique reconstruction); "
                         f"reformat it to axial slices first", volume.source or None)
    warnings = []
    stored = orientation_code(volume.direction)
    vol = to_canonical(volume)
    if stored[0] not in "SI":
        warnings.append(f"series is stored as {stored} (not axial): picks refer to axial reformats, "
                        "which have no DICOM instance numbers")
    if tilt > 0.5:
        warnings.append(f"series is tilted by {tilt:.1f}°: levels are projected along its own axes")
    return vol, warnings


def _body_mask(a: np.ndarray, slice_mm: float, cancel) -> tuple[np.ndarray, np.ndarray, float]:
    """Coarse body mask [z, y/4, x/4], per-slice centre row (full-res) and centre column (full-res).

    ≥ −120 HU keeps skin, fat and everything inside; the largest 3-D component is the patient (the
    table, the mattress's shell, a phantom or the arms' support are separate); holes (lungs, bowel
    gas) are filled slice by slice because the airway opens the lungs to the outside in 3-D.
    """
    s = MASK_STEP
    coarse = a[:, s // 2::s, s // 2::s] >= BODY_THRESHOLD_HU
    # An in-plane opening cuts thin bridges (a couch shell touching the back, a blanket) before the
    # largest part is chosen; the body itself is far thicker than one coarse pixel (4 pixels).
    coarse = _dilate(_erode(coarse))
    labels, n = ndimage.label(coarse)
    if n == 0:
        raise InputError("no body found: no voxel is above −120 HU (is this a CT scan in HU?)")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    if cancel is not None:
        cancel.raise_if_cancelled()
    body = _fill_holes_per_slice(body)
    rows_any = body.any(axis=2)                                     # [z, y/4]
    centre_y = np.empty(body.shape[0])
    for k in range(body.shape[0]):
        r = np.flatnonzero(rows_any[k])
        centre_y[k] = (r[0] + r[-1]) / 2 * s + s // 2 if r.size else np.nan
    fallback = np.nanmedian(centre_y) if np.isfinite(centre_y).any() else a.shape[1] / 2
    centre_y = np.where(np.isfinite(centre_y), centre_y, fallback)
    # The front-back extent jumps where the arms, the breasts or the sternum enter a slice; a running
    # median over ~5 cm keeps the cut through the ribs from stepping between neighbouring slices.
    size = max(1, int(round(50.0 / max(slice_mm, 0.1))) | 1)
    centre_y = ndimage.median_filter(centre_y, size=size, mode="nearest")
    centre_x = a.shape[2] / 2
    # The left-right centre is where the body is thickest front to back, robust to one arm beside it.
    profile = body.sum(axis=(0, 1)).astype(float)
    if profile.any():
        weights = profile ** 2
        centre_x = float((np.arange(profile.size) * weights).sum() / weights.sum() * s + s // 2)
    return body, centre_y, centre_x


def _erode(mask: np.ndarray) -> np.ndarray:
    """In-plane 3×3 erosion (a separable minimum filter: several times faster than binary_erosion)."""
    return ndimage.minimum_filter(mask.view(np.uint8), size=(1, 3, 3)).view(bool)


def _dilate(mask: np.ndarray) -> np.ndarray:
    return ndimage.maximum_filter(mask.view(np.uint8), size=(1, 3, 3)).view(bool)


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of every slice: background parts that do not touch the slice's edge."""
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    background, _ = ndimage.label(~mask, structure=plane)
    edge = np.zeros(background.max() + 1, bool)
    for face in (background[:, 0, :], background[:, -1, :], background[:, :, 0], background[:, :, -1]):
        edge[face] = True
    edge[0] = False  # label 0 is the body itself
    return ~edge[background]


def _project(a: np.ndarray, body: np.ndarray, centre_y: np.ndarray, centre_x: float, spacing_yx,
             cancel) -> tuple[np.ndarray, np.ndarray]:
    """Windowed (0..1) frontal MIP [z, x] of the posterior half and sagittal MIP [z, y] of the slab.

    The frontal maximum is taken in two steps, first over each run of 4 rows, then over the runs
    inside the coarse mask: the result is the same maximum, with the posterior-half boundary rounded
    to 4 rows (3–6 mm), at a quarter of the work. The last ``ny % 4`` rows (behind the back) are left out.
    """
    nz, ny, nx = a.shape
    s = MASK_STEP
    sx = spacing_yx[1]
    floor = a.dtype.type(-1024) if np.issubdtype(a.dtype, np.signedinteger) else a.dtype.type(min(-1024, a.min()))
    frontal = np.empty((nz, nx), dtype=np.float32)
    sagittal = np.empty((nz, ny), dtype=np.float32)
    half = int(round(SAGITTAL_HALF_WIDTH_MM / sx))
    x0, x1 = max(0, int(centre_x) - half), min(nx, int(centre_x) + half + 1)
    ny4 = ny // s
    run_centre = np.arange(ny4) * s + s // 2
    chunk = 16
    for k0 in range(0, nz, chunk):
        if cancel is not None:
            cancel.raise_if_cancelled()
        k1 = min(nz, k0 + chunk)
        block = a[k0:k1]
        runs = block[:, :ny4 * s].reshape(k1 - k0, ny4, s, nx).max(axis=2)
        mask = _full_columns(body[k0:k1, :ny4], s, nx)
        mask &= (run_centre[None, :] >= centre_y[k0:k1, None])[:, :, None]
        frontal[k0:k1] = np.where(mask, runs, floor).max(axis=1)
        slab_mask = _full_columns(_full_rows(body[k0:k1], s, ny), s, nx)[:, :, x0:x1]
        sagittal[k0:k1] = np.where(slab_mask, block[:, :, x0:x1], floor).max(axis=2)
    lo, hi = WINDOW_HU
    for img in (frontal, sagittal):
        np.subtract(img, lo, out=img)
        np.multiply(img, 1.0 / (hi - lo), out=img)
        np.clip(img, 0.0, 1.0, out=img)
    return frontal, sagittal


def _full_columns(coarse: np.ndarray, step: int, nx: int) -> np.ndarray:
    """A mask [.., .., x/step] repeated back up to ``nx`` columns (the last one extended)."""
    full = np.repeat(coarse, step, axis=2)[:, :, :nx]
    if full.shape[2] < nx:
        full = np.pad(full, ((0, 0), (0, 0), (0, nx - full.shape[2])), mode="edge")
    return full


def _full_rows(coarse: np.ndarray, step: int, ny: int) -> np.ndarray:
    full = np.repeat(coarse, step, axis=1)[:, :ny]
    if full.shape[1] < ny:
        full = np.pad(full, ((0, 0), (0, ny - full.shape[1]), (0, 0)), mode="edge")
    return full


def _to_mm_grid(image: np.ndarray, row_mm: float, col_mm: float) -> np.ndarray:
    """Resample [rows, cols] with the given pixel size to PROJECTION_SPACING_MM, linearly.

    Row 0 stays at the first slice's centre, so row r lies r mm below the top slice.
    """
    step = PROJECTION_SPACING_MM
    rows = int(np.floor((image.shape[0] - 1) * row_mm / step)) + 1
    cols = int(np.floor((image.shape[1] - 1) * col_mm / step)) + 1
    r = np.arange(rows) * step / row_mm
    c = np.arange(cols) * step / col_mm
    # Separable linear interpolation: rows first (slices can be 5 mm apart), then columns.
    r0 = np.minimum(np.floor(r).astype(int), image.shape[0] - 1)
    r1 = np.minimum(r0 + 1, image.shape[0] - 1)
    fr = (r - r0).astype(np.float32)[:, None]
    tmp = image[r0] * (1 - fr) + image[r1] * fr
    c0 = np.minimum(np.floor(c).astype(int), image.shape[1] - 1)
    c1 = np.minimum(c0 + 1, image.shape[1] - 1)
    fc = (c - c0).astype(np.float32)[None, :]
    return np.ascontiguousarray(tmp[:, c0] * (1 - fc) + tmp[:, c1] * fc, dtype=np.float32)

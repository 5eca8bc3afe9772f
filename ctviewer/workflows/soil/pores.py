"""Pore statistics of a soil cube: porosity, pore clusters, connectivity and pore sizes.

What the soil study measures in 3D, with bounded memory on a 400³ cube (PoreSpy-style analyses are
reported to need 20+ GB for this; here the peak stays under four times an int16 cube's bytes):

* porosity overall and per slice (the depth profile along axis 0, slice 0 = the top of the core);
* connected pore clusters (6- or 26-connectivity, ``scipy.ndimage.label``), their volumes in mm³,
  the largest cluster's share of the pore space, and percolation (a cluster touching the first and
  the last slice);
* the Euler number (``skimage.measure.euler_number`` with the matching connectivity), summed over
  overlapping slabs: it is a sum over 2×2×2 neighbourhoods, so slab sums minus the shared slices'
  sums are exact, and no int64 copy of the whole cube is made as one call would;
* the pore-size distribution from the local thickness (Hildebrand & Rüegsegger 1997): at each pore
  voxel, the diameter of the largest sphere that fits inside the pore and covers the voxel.

Local thickness, exactly and fast: the Euclidean distance transform (the ``edt`` package: float32,
multithreaded; ``scipy.ndimage.distance_transform_edt`` would make float64 distances and int32 feature
arrays, ten times an int16 cube's bytes) gives at each pore voxel the radius of the largest ball
centred there. A ball contained in a neighbour's ball (``D(n) >= D(c) + |n - c|``) cannot raise
anyone's maximum, so only the remaining "distance ridge" centres are painted, largest first, each
voxel written once with the largest diameter covering it (compiled loops in
:mod:`ctviewer.workflows.soil.thickness_kernels`: on irregular pores the ridge is a sheet).
Diameters are ``2 D - s`` (``s`` the voxel size): ``D`` is measured to the centre of the nearest
non-pore voxel, half a voxel beyond the pore's surface, so a slab of ``t`` voxels measures ``t``
voxels (``t - 1`` when ``t`` is even: ball centres sit on voxel centres) and a single-voxel pore one
voxel; with anisotropic voxels ``s`` is the smallest side, so thickness across the coarser axes
reads up to half a voxel high. The cube's faces are not walls: a pore cut by them is taken to go on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, checked_progress

#: Slices per slab for the Euler number (skimage makes int64 copies of what it is given).
_EULER_SLAB = 16


@dataclass
class PoreStats:
    porosity: float
    porosity_by_slice: np.ndarray
    clusters: int
    cluster_volumes_mm3: np.ndarray          # largest first
    largest_cluster_fraction: float          # of the pore volume
    euler_number: int
    percolates: bool                         # a cluster touches slice 0 and the last slice
    thickness_edges_mm: np.ndarray           # pore-size distribution: histogram of local thickness
    thickness_counts: np.ndarray             # pore voxels per bin (one bin per voxel size)
    mean_thickness_mm: float                 # mean over pore voxels (volume-weighted)
    connectivity: int
    label: int
    voxel_mm: tuple
    pore_voxels: int = 0
    percolating_clusters: int = 0
    max_thickness_mm: float = 0.0
    shape: tuple = ()

    @property
    def thickness_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """The pore-size distribution as ``(edges_mm, counts)``."""
        return self.thickness_edges_mm, self.thickness_counts

    def to_dict(self) -> dict:
        """Plain data (what ``ctviewer soil pores --json`` prints)."""
        return {
            "label": int(self.label), "connectivity": int(self.connectivity),
            "voxel_mm": [float(f"{v:.6g}") for v in self.voxel_mm], "shape": [int(v) for v in self.shape],
            "pore_voxels": int(self.pore_voxels), "porosity": float(self.porosity),
            # null where a slice holds no sample (the porosity of a core's sample, slice by slice)
            "porosity_by_slice": [float(v) if np.isfinite(v) else None for v in self.porosity_by_slice],
            "clusters": int(self.clusters),
            "cluster_volumes_mm3": [float(v) for v in self.cluster_volumes_mm3],
            "largest_cluster_fraction": float(self.largest_cluster_fraction),
            "euler_number": int(self.euler_number), "percolates": bool(self.percolates),
            "percolating_clusters": int(self.percolating_clusters),
            "thickness_mm": {"edges": [float(v) for v in self.thickness_edges_mm],
                             "counts": [int(v) for v in self.thickness_counts]},
            "mean_thickness_mm": float(self.mean_thickness_mm), "max_thickness_mm": float(self.max_thickness_mm),
        }


def write_pore_csvs(stats: "PoreStats", prefix) -> list[Path]:
    """The numbers a spreadsheet wants, atomically: ``PREFIX_profile.csv`` (slice, depth in mm, porosity
    %), ``PREFIX_clusters.csv`` (rank, volume in mm³, share of the pore volume %) and ``PREFIX_sizes.csv``
    (local-thickness bin in mm, voxels, share %)."""
    from ctviewer.io.csv_safe import write_csv

    prefix = Path(prefix)
    tables = {
        "profile": (["slice", "depth_mm", "porosity_percent"],
                    # a slice with no sample has no porosity: an empty cell, as the Phases tab writes
                    [[z, f"{z * stats.voxel_mm[0]:.4g}", f"{100 * v:.4f}" if np.isfinite(v) else ""]
                     for z, v in enumerate(stats.porosity_by_slice)]),
        "clusters": (["rank", "volume_mm3", "share_percent"],
                     [[n, f"{v:.6g}", f"{100 * v / total:.4f}"] for n, v in enumerate(stats.cluster_volumes_mm3, 1)]
                     if (total := float(np.sum(stats.cluster_volumes_mm3))) > 0 else []),
        "sizes": (["from_mm", "to_mm", "voxels", "share_percent"],
                  [[f"{a:.4g}", f"{b:.4g}", int(c), f"{100 * c / max(int(np.sum(stats.thickness_counts)), 1):.4f}"]
                   for a, b, c in zip(stats.thickness_edges_mm[:-1], stats.thickness_edges_mm[1:],
                                      stats.thickness_counts)]),
    }
    written = []
    for name, (header, rows) in tables.items():
        written.append(write_csv(prefix.with_name(f"{prefix.name}_{name}.csv"), rows, header=header))
    return written


# -- inputs ------------------------------------------------------------------------------------
def _check_spacing(spacing) -> tuple[float, float, float]:
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise InputError(f"voxel spacing must be three numbers in mm, got {spacing!r}") from None
    if len(sp) != 3 or not all(np.isfinite(s) and s > 0 for s in sp):
        raise InputError(f"voxel spacing must be three positive numbers in mm, got {spacing!r}")
    return sp


def _check_mask(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise InputError(f"pore analysis needs a 3D cube [z, y, x], got shape {mask.shape}")
    return np.ascontiguousarray(mask, dtype=bool)


def _pore_mask(labels_or_mask, label: int) -> tuple[np.ndarray, object, tuple | None]:
    """The pore mask, the array's source (for messages) and the spacing of a LabelMap/Volume."""
    source, spacing, array = None, None, labels_or_mask
    volume = getattr(labels_or_mask, "volume", labels_or_mask)   # LabelMap -> Volume
    if hasattr(volume, "spacing") and hasattr(volume, "array"):
        source, spacing, array = volume.source or None, volume.spacing, volume.array
    array = np.asarray(array)
    if array.ndim != 3:
        raise InputError(f"pore analysis needs a 3D cube [z, y, x], got shape {array.shape}", source)
    if array.dtype == bool:
        return np.ascontiguousarray(array), source, spacing
    if array.dtype.kind not in "iu":
        raise InputError(f"pore analysis needs a label map (whole numbers) or a mask, got {array.dtype} values",
                         source)
    mask = array == label
    if not mask.any():
        from ctviewer.data.labels import present_ids

        present = present_ids(array)
        raise InputError(f"label {label} does not occur in the label map (labels present: "
                         f"{', '.join(map(str, present[:20]))}{' ...' if len(present) > 20 else ''})", source)
    return mask, source, spacing


# -- local thickness ---------------------------------------------------------------------------
def distance_transform(mask: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm, float32) from each pore voxel to the centre of the nearest non-pore voxel."""
    import edt

    mask = _check_mask(mask)
    spacing = _check_spacing(spacing)
    # with no non-pore voxel at all the distance is unbounded: then the cube's faces are the walls
    walls = not _any_false(mask)
    return edt.edt(mask, anisotropy=spacing, black_border=walls, parallel=os.cpu_count() or 1)


def _any_false(mask: np.ndarray) -> bool:
    return any(not mask[z].all() for z in range(mask.shape[0]))


def local_thickness(mask, spacing=(1.0, 1.0, 1.0), progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> np.ndarray:
    """Local thickness (mm, float32) of every pore voxel, 0 elsewhere: the diameter of the largest
    sphere inside the pore that covers the voxel."""
    return _local_thickness([_check_mask(mask)], spacing, progress, cancel)


def _local_thickness(holder: list, spacing, progress, cancel) -> np.ndarray:
    """:func:`local_thickness` of the mask in ``holder``, which it takes out and lets go of once the
    ridge is found (painting needs no mask: a 400³ cube's peak memory is 64 MB lower)."""
    from ctviewer.workflows.soil import thickness_kernels

    mask = holder.pop()
    spacing = _check_spacing(spacing)
    step = checked_progress(progress, cancel)

    step(0.0, "Distance transform")
    dist = distance_transform(mask, spacing)
    step(0.35, "Finding the largest balls")
    centres, radii = thickness_kernels.ridge(mask, dist, spacing)
    del mask
    step(0.55, "Local thickness")
    dist[...] = 0   # the distances are in the ridge now: reuse their memory for the thickness
    thickness_kernels.paint(dist, centres, radii, spacing)
    step(1.0, "Local thickness")
    return dist


# -- connectivity ------------------------------------------------------------------------------
def euler_number(mask: np.ndarray, connectivity: int = 6) -> int:
    """Euler number of the pores (``skimage.measure.euler_number``), summed over slabs that share
    one slice (the shared slices' own numbers are taken off again)."""
    from skimage.measure import euler_number as skimage_euler

    conn = {6: 1, 26: 3}[connectivity]
    mask = _check_mask(mask)
    last = mask.shape[0] - 1
    total = 0
    for start in range(0, max(last, 1), _EULER_SLAB):
        stop = min(start + _EULER_SLAB, last)
        total += int(skimage_euler(mask[start:stop + 1], connectivity=conn))
        if stop < last:
            total -= int(skimage_euler(mask[stop:stop + 1], connectivity=conn))
    return total


def _label_clusters(mask: np.ndarray, structure) -> tuple[np.ndarray, int]:
    """Cluster ids (int32: a 16-bit output makes scipy label into a 64-bit temporary instead)."""
    from scipy import ndimage as ndi

    clusters = np.empty(mask.shape, dtype=np.int32)
    return clusters, int(ndi.label(mask, structure=structure, output=clusters))


def _cluster_sizes(labels: np.ndarray, n: int) -> np.ndarray:
    counts = np.zeros(n + 1, dtype=np.int64)
    step = max(1, 4_000_000 // max(1, labels[0].size))
    for start in range(0, labels.shape[0], step):   # slab by slab: bincount casts to int64
        counts += np.bincount(labels[start:start + step].ravel(), minlength=n + 1)
    return counts[1:]


# -- the whole analysis ------------------------------------------------------------------------
def pore_stats(labels_or_mask, spacing=None, label: int = 1, connectivity: int = 6,
               progress: Progress | None = None, cancel: CancelToken | None = None) -> PoreStats:
    """Pore statistics of voxels ``== label`` of a label map (array, LabelMap) or of a bool mask.

    ``spacing`` (mm, [z, y, x]) defaults to the LabelMap's / Volume's own.
    """
    from scipy import ndimage as ndi

    if connectivity not in (6, 26):
        raise InputError(f"connectivity must be 6 (faces) or 26 (faces, edges and corners), got {connectivity}")
    step = checked_progress(progress, cancel)

    step(0.0, "Finding the pores")
    mask, source, own_spacing = _pore_mask(labels_or_mask, label)
    spacing = _check_spacing(spacing if spacing is not None else (own_spacing or (1.0, 1.0, 1.0)))
    nz, ny, nx = mask.shape
    voxel_mm3 = float(np.prod(spacing))
    by_slice = np.count_nonzero(mask, axis=(1, 2)) / float(ny * nx)
    pore_voxels = int(by_slice.sum() * ny * nx + 0.5)

    step(0.05, "Connected pore clusters")
    structure = ndi.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    clusters, n = _label_clusters(mask, structure)
    sizes = _cluster_sizes(clusters, n)
    top = np.setdiff1d(np.intersect1d(np.unique(clusters[0]), np.unique(clusters[-1])), [0])
    del clusters
    volumes = np.sort(sizes)[::-1] * voxel_mm3

    step(0.2, "Euler number")
    euler = euler_number(mask, connectivity)

    def thickness_progress(f, message=""):
        step(0.3 + 0.65 * f, message)

    holder = [mask]
    del mask   # local thickness lets go of it before painting; thickness > 0 marks the pores after
    thickness = _local_thickness(holder, spacing, thickness_progress, cancel)
    s = min(spacing)
    t_max = float(thickness.max()) if pore_voxels else 0.0
    n_bins = max(1, int(np.floor(t_max / s - 0.5)) + 1)
    edges = s * (np.arange(n_bins + 1) + 0.5)
    counts = np.zeros(n_bins, dtype=np.int64)
    total = 0.0
    per = max(1, 4_000_000 // max(1, ny * nx))
    for start in range(0, nz, per):   # slab by slab: the values at pore voxels only
        slab = thickness[start:start + per]
        values = slab[slab > 0]
        counts += np.histogram(values, bins=edges)[0]
        total += float(values.sum(dtype=np.float64))
    step(1.0, "Done")
    return PoreStats(
        porosity=pore_voxels / float(nz * ny * nx), porosity_by_slice=by_slice, clusters=n,
        cluster_volumes_mm3=volumes, largest_cluster_fraction=float(sizes.max()) / pore_voxels if n else 0.0,
        euler_number=euler, percolates=bool(top.size), thickness_edges_mm=edges, thickness_counts=counts,
        mean_thickness_mm=total / pore_voxels if pore_voxels else 0.0, connectivity=connectivity, label=label,
        voxel_mm=spacing, pore_voxels=pore_voxels, percolating_clusters=int(top.size), max_thickness_mm=t_max,
        shape=(nz, ny, nx))

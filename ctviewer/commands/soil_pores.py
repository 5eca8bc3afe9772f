"""``ctviewer soil objects`` and ``ctviewer soil pores``: density objects and pore statistics, headless.

    ctviewer soil objects CUBE -o objects.nii.gz [--method equal|otsu] [--n 6]
    ctviewer soil pores CUBE [--label N] [--objects OBJECTS.nii.gz] [--connectivity 6|26] [--json]

``objects`` splits a cube into density objects 1..n (1 = pores, 6 = stones; see
:mod:`ctviewer.workflows.soil.objects`), writes the label map with its names and colours (atomic)
and prints voxels and fraction per object. ``pores`` measures one object (1 by default) of the
given label map, or of the objects it computes itself, and prints porosity, clusters, connectivity
and pore sizes (:mod:`ctviewer.workflows.soil.pores`). Cubes are read in their stored slice order:
slice 0 is the top of the core, the first line of the depth profile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ctviewer.errors import InputError

EXIT_OK = 0


def add_objects_arguments(p) -> None:
    p.add_argument("cube", type=Path, metavar="CUBE", help="the soil cube (.npy, NIfTI, NRRD or a DICOM folder)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="the label map: .nii.gz / .nii / .npy (+ NAME.labels.json), .nrrd or .seg.nrrd")
    _add_object_choice(p)


def _add_object_choice(p) -> None:
    p.add_argument("--method", choices=("equal", "otsu"), default="equal",
                   help="equal-width bins of the value range, as the soil study (default), or multi-Otsu")
    p.add_argument("--n", type=int, default=None,
                   help="number of objects (default 6 for equal bins; 5, the most, for multi-Otsu)")


def add_pores_arguments(p) -> None:
    p.add_argument("cube", type=Path, metavar="CUBE", help="the soil cube (.npy, NIfTI, NRRD or a DICOM folder)")
    p.add_argument("--label", type=int, default=1, help="the object (label id) to measure (default 1, pores)")
    p.add_argument("--objects", type=Path, default=None,
                   help="a label map on the cube's grid (default: density objects computed from the cube)")
    p.add_argument("--connectivity", type=int, choices=(6, 26), default=6,
                   help="voxels touching by faces (6, default) or also by edges and corners (26)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--csv", type=Path, default=None, metavar="PREFIX",
                   help="also write PREFIX_profile.csv, PREFIX_clusters.csv and PREFIX_sizes.csv")
    _add_object_choice(p)


def _read_cube(path: Path):
    from ctviewer.io.registry import read_volume

    # stored order, not the display order: slice 0 stays the top of the core
    cube = read_volume(path, canonical=False)
    if cube.is_rgb:
        raise InputError("a soil cube is a gray volume, not a colour image", path)
    return cube


def _objects(cube, args, bar):
    from ctviewer.workflows.soil.objects import density_objects

    n = args.n if args.n is not None else (6 if args.method == "equal" else 5)
    return density_objects(cube, n=n, method=args.method, progress=bar)


def run_objects(args) -> int:
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.io.writers import write_label_map
    from ctviewer.workflows.soil.objects import object_counts

    cube = _read_cube(args.cube)
    bar = ProgressBar(sys.stderr)
    try:
        labels = _objects(cube, args, bar)
    finally:
        bar.clear()
    written = write_label_map(labels, args.output, image=cube)
    print(f"{args.cube.name}: {'x'.join(map(str, cube.shape))} voxels, "
          f"{'equal-width bins' if args.method == 'equal' else 'multi-Otsu classes'} -> {written}")
    for row in object_counts(labels):
        print(f"  {row['id']:>2}  {row['name']:<38} {row['voxels']:>12,d} voxels  {100 * row['fraction']:6.2f} %")
    return EXIT_OK


def run_pores(args) -> int:
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.soil.pores import pore_stats

    cube = _read_cube(args.cube)
    bar = ProgressBar(sys.stderr)
    try:
        if args.objects is not None:
            from ctviewer.io.label_files import read_label_map

            labels = read_label_map(args.objects, canonical=False)
            if labels.array.shape != cube.shape:
                raise InputError(f"the label map is {'x'.join(map(str, labels.array.shape))} voxels, the cube "
                                 f"{'x'.join(map(str, cube.shape))}: not on the cube's grid", args.objects)
            source = args.objects.name
        else:
            labels = _objects(cube, args, bar)
            source = f"objects computed from {args.cube.name}"
        del cube
        name = labels.table.name(args.label)
        stats = pore_stats(labels, label=args.label, connectivity=args.connectivity, progress=bar)
    finally:
        bar.clear()
    if args.csv is not None:
        from ctviewer.workflows.soil.pores import write_pore_csvs

        for path in write_pore_csvs(stats, args.csv):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps({"cube": str(args.cube), "objects": source, "name": name, **stats.to_dict()}))
    else:
        print(summary(stats, f"{name} (label {args.label} of {source})"))
    return EXIT_OK


def summary(stats, what: str) -> str:
    """A short readable account of :class:`PoreStats`."""
    prof = stats.porosity_by_slice
    lo, hi = int(prof.argmin()), int(prof.argmax())
    largest = stats.cluster_volumes_mm3[0] if stats.clusters else 0.0
    lines = [
        f"{what}, {stats.connectivity}-connectivity, voxel {' x '.join(f'{v:g}' for v in stats.voxel_mm)} mm",
        f"porosity          {100 * stats.porosity:.2f} %  (by slice: {100 * prof[lo]:.2f} % at slice {lo} "
        f"to {100 * prof[hi]:.2f} % at slice {hi})",
        f"pore clusters     {stats.clusters:,d}  (largest {largest:.4g} mm³ = "
        f"{100 * stats.largest_cluster_fraction:.1f} % of the pore volume)",
        f"percolates        {'yes' if stats.percolates else 'no'}"
        + (f": {stats.percolating_clusters} cluster(s) touch the first and the last slice" if stats.percolates else ""),
        f"Euler number      {stats.euler_number}",
        f"local thickness   mean {stats.mean_thickness_mm:.4g} mm, largest {stats.max_thickness_mm:.4g} mm",
    ]
    edges, counts = stats.thickness_mm
    total = int(counts.sum())
    if total:
        # at most 12 lines: neighbouring one-voxel bins merged where there are more
        group = max(1, -(-len(counts) // 12))
        lines.append("pore sizes        share of the pore volume by local thickness:")
        for i in range(0, len(counts), group):
            share = counts[i:i + group].sum() / total
            top = edges[min(i + group, len(counts))]
            lines.append(f"  {edges[i]:8.3f} to {top:8.3f} mm  {100 * share:6.2f} %")
    return "\n".join(lines)

"""``ctviewer soil objects`` and ``ctviewer soil pores``: density objects and pore statistics, headless.

    ctviewer soil objects CUBE -o objects.nii.gz [--method equal|otsu] [--n 6]
    ctviewer soil pores CUBE [--method valley|otsu|multiotsu|equal-bins|threshold:V] [--denoise none|median|nlm]
                             [--voxel-mm S] [--sample-mask auto|none] [--connectivity 6|26] [--json] [--csv PREFIX]
    ctviewer soil pores CUBE --objects OBJECTS.nii.gz [--label N]

``objects`` splits a cube into density objects 1..n (1 = pores, 6 = stones; see
:mod:`ctviewer.workflows.soil.objects`), writes the label map with its names and colours (atomic)
and prints voxels and fraction per object.

``pores`` splits the cube into pores and solid where its histogram says
(:mod:`ctviewer.workflows.soil.phases`), inside the sample's outline
(:mod:`ctviewer.workflows.soil.porosity`), and prints the method, the threshold in grey values, the
porosity with its uncertainty, the profiles along z, y and x, the REV curve and the pore statistics
(porosity, clusters, connectivity, pore sizes: :mod:`ctviewer.workflows.soil.pores`). The default
method is the valley between the histogram's two main peaks: a micro-CT volume of a porous sample
is bimodal (pore peak, solid peak), the valley is where the pore peak ends whatever the solid's
phases look like, and on the real volumes it agrees with Otsu's threshold where the sample is
two-phase (snow) and across X-ray and neutron scans of one concrete core where Otsu does not (see
:mod:`ctviewer.workflows.soil.phases`); Otsu's porosity is printed beside it as the range. The
seed's six equal-width bins stay available as ``--method equal-bins`` (pores = object 1): on real
volumes they count only the darkest sixth of the range (14.5 % on the snow sample where the
valley and Otsu say 41 %). ``--objects`` measures an object of a label map instead. Cubes are
read in their stored slice order: slice 0 is the top of the core, the first line of the depth
profile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.progress import sub_progress
from ctviewer.workflows.soil.phases import DEFAULT_METHOD, DENOISERS, MULTIOTSU_CLASSES

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
                   help=f"number of objects (default 6 for equal bins, {MULTIOTSU_CLASSES} for multi-Otsu; "
                        "at most 5 for multi-Otsu)")


def add_pores_arguments(p) -> None:
    p.add_argument("cube", type=Path, metavar="CUBE",
                   help="the soil cube (.npy, TIFF stack, NIfTI, NRRD or a DICOM folder)")
    p.add_argument("--method", default=DEFAULT_METHOD, metavar="valley|otsu|multiotsu|equal-bins|threshold:V",
                   help="how pores and solid are split: the histogram's valley between its two peaks (default), "
                        "Otsu's threshold, the first multi-Otsu threshold, the seed's object 1 of six "
                        "equal-width bins, or a grey value V of your own (pores are the voxels <= it)")
    p.add_argument("--n", type=int, default=None,
                   help=f"classes for multiotsu (default {MULTIOTSU_CLASSES}, also with --label 2 or more) or "
                        "bins for equal-bins (default 6)")
    p.add_argument("--denoise", choices=DENOISERS, default="none",
                   help="denoise first: 3x3x3 median or non-local means (default none)")
    p.add_argument("--voxel-mm", type=voxel_size, default=None, metavar="S",
                   help="voxel size in mm: one number, or Z,Y,X (default: the file's own; with --objects, "
                        "the label map's)")
    p.add_argument("--sample-mask", choices=("auto", "none"), default="auto",
                   help="find the outline of a core in air and leave the air out (auto, default), or count "
                        "the whole volume (none)")
    p.add_argument("--label", type=int, default=1,
                   help="with --objects (or --method equal-bins / multiotsu): the object to measure (default 1)")
    p.add_argument("--objects", type=Path, default=None,
                   help="measure an object of this label map on the cube's grid instead of thresholding")
    p.add_argument("--connectivity", type=int, choices=(6, 26), default=6,
                   help="voxels touching by faces (6, default) or also by edges and corners (26)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--csv", type=Path, default=None, metavar="PREFIX",
                   help="also write PREFIX_profile.csv, PREFIX_clusters.csv and PREFIX_sizes.csv")


def voxel_size(text: str) -> tuple[float, float, float]:
    """'0.05' -> (0.05, 0.05, 0.05); '0.1,0.05,0.05' -> z, y, x."""
    import argparse

    try:
        sizes = [float(v) for v in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes *= 3
    if len(sizes) != 3 or not all(0 < v < float("inf") for v in sizes):
        raise argparse.ArgumentTypeError(f"'{text}' is not a voxel size in mm (one positive number, or Z,Y,X)")
    return tuple(sizes)


def _read_cube(path: Path):
    from ctviewer.io.registry import read_volume

    # stored order, not the display order: slice 0 stays the top of the core
    cube = read_volume(path, canonical=False)
    if cube.is_rgb:
        raise InputError("a soil cube is a gray volume, not a colour image", path)
    return cube


def _objects(cube, method: str, n: int | None, bar):
    """Density objects by ``equal`` bins (6 unless ``n``) or multi-Otsu ``otsu`` classes
    (:data:`MULTIOTSU_CLASSES` unless ``n``, as ``soil pores --method multiotsu``)."""
    from ctviewer.workflows.soil.objects import density_objects

    n = n if n is not None else (6 if method == "equal" else MULTIOTSU_CLASSES)
    return density_objects(cube, n=n, method=method, progress=bar)


def run_objects(args) -> int:
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.io.writers import write_label_map
    from ctviewer.workflows.soil.objects import object_counts

    cube = _read_cube(args.cube)
    bar = ProgressBar(sys.stderr)
    try:
        labels = _objects(cube, args.method, args.n, bar)
    finally:
        bar.clear()
    written = write_label_map(labels, args.output, image=cube)
    print(f"{args.cube.name}: {'x'.join(map(str, cube.shape))} voxels, "
          f"{'equal-width bins' if args.method == 'equal' else 'multi-Otsu classes'} -> {written}")
    for row in object_counts(labels):
        print(f"  {row['id']:>2}  {row['name']:<38} {row['voxels']:>12,d} voxels  {100 * row['fraction']:6.2f} %")
    return EXIT_OK


def run_pores(args) -> int:
    from dataclasses import replace

    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.soil.phases import method_words, parse_method
    from ctviewer.workflows.soil.pores import pore_stats

    cube = _read_cube(args.cube)
    if args.voxel_mm is not None:
        cube = replace(cube, spacing=args.voxel_mm)
    method, _ = parse_method(args.method)
    bar = ProgressBar(sys.stderr)
    found = None
    try:
        if args.objects is not None or (args.label != 1 and method in ("equal-bins", "multiotsu")):
            labels, source = _label_map(cube, args, method, bar)
            del cube
            name = labels.table.name(args.label)
            stats = pore_stats(labels, label=args.label, spacing=args.voxel_mm, connectivity=args.connectivity,
                               progress=bar)
        elif args.label != 1:
            raise InputError(f"--label {args.label} picks an object of a label map (--objects) or of "
                             f"--method equal-bins / multiotsu, not of the {method} threshold")
        else:
            from ctviewer.workflows.soil.porosity import measure

            found, pores = measure(cube, args.method, denoise=args.denoise, sample=args.sample_mask, n=args.n,
                                   progress=sub_progress(bar, 0.0, 0.2))
            spacing, name = cube.spacing, "pores"
            source = f"{method_words(found.threshold.method)} of {args.cube.name}"
            del cube   # the pore statistics need only the pore mask
            stats = pore_stats(pores, spacing=spacing, connectivity=args.connectivity,
                               progress=sub_progress(bar, 0.2, 1.0))
            # the porosity is of the sample, not of the field of view (they differ around a core)
            stats = replace(stats, porosity=found.porosity, porosity_by_slice=found.profiles["z"])
    finally:
        bar.clear()
    if args.csv is not None:
        from ctviewer.workflows.soil.pores import write_pore_csvs

        for path in write_pore_csvs(stats, args.csv):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        extra = found.to_dict() if found is not None else {}
        data = {"cube": str(args.cube), "objects": source, "name": name, **stats.to_dict(), **extra}
        if found is not None:
            data["porosity_by_slice"] = extra["profiles"]["z"]
        print(json.dumps(data, allow_nan=False))
    else:
        if found is not None:
            print(phases_summary(found))
        print(summary(stats, f"{name} (label {args.label} of {source})" if found is None else
                      f"pores ({source})"))
    return EXIT_OK


def _label_map(cube, args, method, bar):
    if args.objects is None:
        labels = _objects(cube, "otsu" if method == "multiotsu" else "equal", args.n, bar)
        return labels, f"objects computed from {args.cube.name}"
    from ctviewer.io.label_files import read_label_map

    labels = read_label_map(args.objects, canonical=False)
    if labels.array.shape != cube.shape:
        raise InputError(f"the label map is {'x'.join(map(str, labels.array.shape))} voxels, the cube "
                         f"{'x'.join(map(str, cube.shape))}: not on the cube's grid", args.objects)
    return labels, args.objects.name


def phases_summary(found) -> str:
    """How the pores were found and how sure the porosity is, in a few lines."""
    t, u = found.threshold, found.uncertainty
    lines = [f"phases            {t.method}: pores are grey values <= {t.value:g}"
             + (f" ({t.note})" if t.note else ""),
             f"porosity          {100 * found.porosity:.2f} % of the sample "
             f"({100 * u['minus_step']['porosity']:.2f} to {100 * u['plus_step']['porosity']:.2f} % one grey "
             f"step of {u['grey_step']:.4g} either side)"]
    rng = u["method_range"]
    if rng is not None:
        lines.append(f"methods           Otsu {100 * u['methods']['otsu']['porosity']:.2f} % "
                     f"(at {u['methods']['otsu']['threshold']:g}), valley "
                     f"{100 * u['methods']['valley']['porosity']:.2f} % (at {u['methods']['valley']['threshold']:g})")
    rev = found.rev
    lines.append("REV               " + (f"{rev.rev_mm:.4g} mm: centred sub-cubes from that side on stay within "
                                         f"±{100 * rev.tolerance:.0f} % of the whole" if rev.rev_mm is not None
                                         else rev.note))
    lines += [f"note              {note}" for note in found.notes]
    return "\n".join(lines)


def summary(stats, what: str) -> str:
    """A short readable account of :class:`PoreStats`."""
    prof = np.asarray(stats.porosity_by_slice, dtype=float)
    lo, hi = (int(np.nanargmin(prof)), int(np.nanargmax(prof))) if np.isfinite(prof).any() else (0, 0)
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

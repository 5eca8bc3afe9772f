"""``ctviewer soil cube|objects|pores|explain``: the soil micro-CT workflow, headless.

    ctviewer soil cube DICOM_DIR -o cube.npy [--slices 100:500] [--rows 150:350] [--cols 150:350] [--no-clip]

``cube`` cuts the seed's box from a CT stack (see :mod:`ctviewer.workflows.soil.cube` for the slice
order and what is refused) and writes it as ``.npy`` (+ ``NAME.json`` with the spacing), NIfTI or
NRRD. ``objects`` and ``pores`` come from :mod:`ctviewer.commands.soil_pores`, ``explain`` from
:mod:`ctviewer.commands.soil_explain`; their owners define their arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

EXIT_OK = 0

#: Actions defined in other modules: (action, module, hook that adds its arguments, hook that runs it).
OTHER_ACTIONS = (
    ("objects", "ctviewer.commands.soil_pores", "add_objects_arguments", "run_objects",
     "split a cube into density objects 1-6 (equal-width bins or multi-Otsu): a label map"),
    ("pores", "ctviewer.commands.soil_pores", "add_pores_arguments", "run_pores",
     "pore statistics: porosity, clusters, pore sizes, connectivity"),
    ("explain", "ctviewer.commands.soil_explain", "add_arguments", "run",
     "Grad-CAM heatmap or activation maps of a slice through a trained soil model"),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("soil", help="soil micro-CT: cubes from DICOM stacks, density objects, pores, "
                                           "model explanations")
    actions = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    cube = actions.add_parser("cube", help="cut a cube from a CT stack onto the seed's 0..4096 density scale")
    cube.add_argument("source", type=Path, metavar="DICOM_DIR",
                      help="a DICOM folder (or any volume ctviewer reads: NIfTI, NRRD, .npy)")
    cube.add_argument("-o", "--output", type=Path, required=True, help="the cube: .npy (+ NAME.json), .nii.gz, .nrrd")
    cube.add_argument("--slices", type=index_range, default=(100, 500), metavar="START:STOP",
                      help="slice range [START, STOP) in position order, 0 = the first slice (default 100:500)")
    cube.add_argument("--rows", type=index_range, default=(150, 350), metavar="START:STOP",
                      help="row range (default 150:350)")
    cube.add_argument("--cols", type=index_range, default=(150, 350), metavar="START:STOP",
                      help="column range (default 150:350)")
    cube.add_argument("--no-clip", action="store_true",
                      help="keep the values in HU as read (default: clip at -1000, +1000, cap at 4096)")
    cube.set_defaults(soil_run=run_cube)
    for name, module_name, add_hook, run_hook, text in OTHER_ACTIONS:
        # Imported when the parser is built (these modules import only argparse-level things at the
        # top); a broken one fails loudly here rather than hiding its action as "invalid choice".
        module = importlib.import_module(module_name)
        add, run_action = getattr(module, add_hook), getattr(module, run_hook)
        action = actions.add_parser(name, help=text)
        add(action)
        action.set_defaults(soil_run=run_action)


def index_range(text: str) -> tuple[int, int | None]:
    """'100:500' -> (100, 500); '100:' runs to the end, ':500' starts at 0."""
    start, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start or 0), (int(stop) if stop.strip() else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a range START:STOP of slice/row/column indices")


def run(args) -> int:
    return args.soil_run(args)


def run_cube(args) -> int:
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.soil.cube import CubeSpec, build_cube, check_cube_path, describe_cube, write_cube

    check_cube_path(args.output)
    spec = CubeSpec(slices=args.slices, rows=args.rows, cols=args.cols, clip=not args.no_clip)
    bar = ProgressBar(sys.stderr)
    try:
        cube = build_cube(args.source, spec, progress=bar)
    finally:
        bar.clear()
    written = write_cube(cube, args.output)
    for warning in cube.warnings:
        print(f"ctviewer: warning: {warning}", file=sys.stderr)
    sidecar = f" (+ {written.with_suffix('.json').name})" if written.suffix == ".npy" else ""
    box = cube.meta["cube"]
    print(f"wrote {written}{sidecar}: {describe_cube(cube)}, from slices {box['slices'][0]}:{box['slices'][1]}, "
          f"rows {box['rows'][0]}:{box['rows'][1]}, cols {box['cols'][0]}:{box['cols'][1]}")
    return EXIT_OK

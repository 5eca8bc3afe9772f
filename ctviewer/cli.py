"""The headless verbs of the ``ctviewer`` command (no Qt is imported here).

Exit codes: 0 success, 2 bad input (one line on stderr naming the file and the reason),
1 internal error (one line; the traceback only with ``CTVIEWER_DEBUG=1``). Batch verbs (locate,
segment, segment-eval, thin-section predict / eval) go on after a failed study and list the
failures at the end: 2 when a study's input was bad, 1 when a study failed by our bug
(:mod:`ctviewer.workflows.batch`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

from ctviewer.errors import InputError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2

#: Verbs that live in a module of their own under ctviewer/commands/: each module has
#: ``add_parser(subparsers)`` (registering the verb under this name) and ``run(args) -> int``.
#: Their heavy imports (Keras, TensorFlow) happen inside ``run``, so ``ctviewer info`` stays fast.
VERB_MODULES: dict[str, str] = {
    "locate": "ctviewer.commands.locate",
    "locate-eval": "ctviewer.commands.locate_eval",
    "train": "ctviewer.commands.train",
    "models": "ctviewer.commands.models",
    "segment": "ctviewer.commands.segment",
    "segment-eval": "ctviewer.commands.segment_eval",
    "thin-section": "ctviewer.commands.thin_section",
    "soil": "ctviewer.commands.soil",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as bad input (exit 2) in one line."""

    def error(self, message: str):
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ctviewer", description="CT and thin-section viewer: headless commands")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    info = sub.add_parser("info", help="what is in a file or folder: kind, shape, geometry, series, warnings")
    info.add_argument("path", type=Path)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.add_argument("--series", type=int, default=None,
                      help="describe only this series (index as listed); default: all, loading the first")
    _add_labels_parser(sub)
    for name, module in VERB_MODULES.items():
        importlib.import_module(module).add_parser(sub)
    return parser


def _add_labels_parser(sub) -> None:
    labels = sub.add_parser("labels", help="label maps: statistics per label, conversion between formats")
    actions = labels.add_subparsers(dest="action", required=True, parser_class=_Parser)
    stats = actions.add_parser("stats", help="per label: voxels, volume (ml), mean and sd of the image, "
                                             "fraction of the image (%%)")
    stats.add_argument("image", type=Path, help="the image (file or DICOM folder)")
    stats.add_argument("labels", type=Path, help="its label map, on the same grid")
    stats.add_argument("--json", action="store_true", help="print JSON instead of text")
    convert = actions.add_parser("convert", help="save a label map in another format, names and colours kept: "
                                                 ".nii/.nii.gz (+ .labels.json), .nrrd/.seg.nrrd, .png, .npy, "
                                                 ".dcm (DICOM-SEG)")
    convert.add_argument("input", type=Path)
    convert.add_argument("output", type=Path)
    convert.add_argument("--reference", type=Path, default=None,
                         help="the image the labels belong to: they are placed on its grid, and the output "
                              "gets its file's array order and geometry (without it, the input's); for .dcm, "
                              "the DICOM series the DICOM-SEG refers to")
    convert.add_argument("--map-colours", action="store_true",
                         help="read a colour (RGB) label image by giving each colour an id")


def describe(path: Path, series: int | None = None) -> dict:
    """Everything ``ctviewer info`` reports about ``path``, as plain data."""
    from ctviewer.imaging.orientation import obliquity_deg, orientation_code, to_canonical
    from ctviewer.io.registry import examine

    items = examine(path)
    if series is not None and not 0 <= series < len(items):
        raise InputError(f"series {series} does not exist; {len(items)} found", path)
    chosen = items[series or 0]
    volume = chosen.load()
    stored_orientation = orientation_code(volume.direction)
    shown = to_canonical(volume)
    lo, hi = volume.value_range()
    return {
        "path": str(path),
        "format": chosen.format,
        "kind": "photo" if volume.is_photo else "volume",
        "description": chosen.description,
        "shape_zyx": list(volume.shape),
        "channels": int(volume.array.shape[3]) if volume.array.ndim == 4 else 1,
        "dtype": str(volume.array.dtype),
        "spacing_zyx_mm": [round(s, 6) for s in volume.spacing],
        "origin_lps_mm": [round(o, 4) for o in volume.origin],
        "direction": [[round(v, 6) for v in row] for row in volume.direction.tolist()],
        "orientation": stored_orientation,
        "display_orientation": orientation_code(shown.direction),
        "obliquity_deg": round(obliquity_deg(volume.direction), 3),
        "modality": volume.modality,
        "value_range": [lo, hi],
        "window": list(volume.window) if volume.window else None,
        "slice_thickness_mm": volume.slice_thickness,
        "series": [{"index": n, "description": it.description, "format": it.format,
                    "slices": it.n_slices, "uid": it.meta.get("series_uid")} for n, it in enumerate(items)],
        "warnings": list(dict.fromkeys(chosen.warnings + volume.warnings)),
        "meta": {k: v for k, v in volume.meta.items() if isinstance(v, (str, int, float, bool))},
    }


def _print_info(info: dict) -> None:
    z, y, x = info["shape_zyx"]
    sz, sy, sx = info["spacing_zyx_mm"]
    lines = [
        f"{info['path']}",
        f"  kind        {info['kind']} ({info['format']}) {info['modality']}".rstrip(),
        f"  size        {x} x {y} x {z} voxels (x, y, z)" + (f", {info['channels']} channels" if info["channels"] > 1 else ""),
        f"  dtype       {info['dtype']}",
        (f"  spacing     {sx:g} x {sy:g} pixels (no physical size)" if info["meta"].get("pixel_units")
         else f"  spacing     {sx:g} x {sy:g} x {sz:g} mm"),
        f"  origin      ({', '.join(f'{o:g}' for o in info['origin_lps_mm'])}) mm LPS",
        f"  orientation {info['orientation']} (axes z, y, x point to), obliquity {info['obliquity_deg']:g} deg",
        f"  values      {info['value_range'][0]:g} .. {info['value_range'][1]:g}",
    ]
    if info["window"]:
        lines.append(f"  window      {info['window'][0]:g} / {info['window'][1]:g} (width / level)")
    if len(info["series"]) > 1:
        lines.append(f"  series      {len(info['series'])} found:")
        lines += [f"    [{s['index']}] {s['description']}" for s in info["series"]]
    for warning in info["warnings"]:
        lines.append(f"  warning     {warning}")
    print("\n".join(lines))


def cmd_info(args) -> int:
    info = describe(args.path, args.series)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        _print_info(info)
    return EXIT_OK


def cmd_labels(args) -> int:
    return {"stats": cmd_labels_stats, "convert": cmd_labels_convert}[args.action](args)


def cmd_labels_stats(args) -> int:
    from ctviewer.imaging.label_stats import label_statistics, statistics_table
    from ctviewer.workflows.open import open_study

    with _colour_hint():  # the labels go through load_labels_for: another grid is refused
        study = open_study(args.image, [args.labels])
    layer = study.layers.by_kind("labels")[0]
    stats = label_statistics(study.image, layer.labels)
    if args.json:
        print(json.dumps({"image": str(args.image), "labels": str(args.labels),
                          "statistics": [s.as_dict() for s in stats], "warnings": layer.labels.warnings},
                         indent=2))
    else:
        print(statistics_table(stats))
        for warning in layer.labels.warnings:
            print(f"ctviewer: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_labels_convert(args) -> int:
    from ctviewer.io.label_files import format_suffix, read_label_map, table_sidecar
    from ctviewer.io.label_grid import read_labels_over
    from ctviewer.io.registry import read_volume
    from ctviewer.io.writers import LABEL_SUFFIXES, write_label_map

    suffix = format_suffix(args.output)
    if suffix not in LABEL_SUFFIXES:
        raise InputError(f"cannot save labels as '{suffix or args.output.name}': use one of "
                         f"{', '.join(LABEL_SUFFIXES)}", args.output)
    if suffix == ".dcm" and args.reference is None:
        raise InputError("saving a DICOM-SEG needs --reference: the DICOM series the labels were drawn on",
                         args.output)
    image = None
    with _colour_hint():
        if args.reference is None:
            labels = read_label_map(args.input, map_colours=args.map_colours)
        else:  # on the reference's grid: a cropped seg.nrrd or a SEG without empty frames is placed
            image = read_volume(args.reference)  # in display orientation, as the labels are read
            labels = read_labels_over(image, args.input, map_colours=args.map_colours)
    written = write_label_map(labels, args.output, image=image)
    for warning in labels.warnings:
        print(f"ctviewer: warning: {warning}", file=sys.stderr)
    z, y, x = labels.volume.shape
    where = {".nrrd": "names and colours in its header", ".seg.nrrd": "names and colours in its header",
             ".dcm": "DICOM-SEG, names and colours in its segments"}
    where = where.get(suffix, f"table {table_sidecar(written)}")
    print(f"wrote {written}: {len(labels.table)} labels on {x} x {y} x {z} voxels ({where})")
    return EXIT_OK


@contextlib.contextmanager
def _colour_hint():
    """Add the command-line way out to the message about a colour (RGB) label image."""
    from ctviewer.io.label_files import ColourLabelsError

    try:
        yield
    except ColourLabelsError as exc:
        raise ColourLabelsError(f"{exc.reason} (ctviewer labels convert IN OUT.png --map-colours)",
                                exc.path) from exc


COMMANDS = {"info": cmd_info, "labels": cmd_labels}
COMMANDS.update({verb: (lambda args, _m=module: importlib.import_module(_m).run(args))
                 for verb, module in VERB_MODULES.items()})


def run_guarded(fn) -> int:
    """Run a command, turning errors into one line on stderr and the contract's exit codes.

    What libraries warn on the way (nibabel, pydicom, numpy...) is held back rather than printed
    in their own formats: after a success each becomes a ``ctviewer: warning:`` line; after bad
    input the one error line stands alone (the readers already fold what they were told into it).
    """
    from ctviewer.io.guards import collected_warnings

    with collected_warnings() as said:
        code = _run_reporting_errors(fn)
    if code == EXIT_OK or os.environ.get("CTVIEWER_DEBUG"):
        for warning in said:
            print(f"ctviewer: warning: {warning}", file=sys.stderr)
    return code


def _run_reporting_errors(fn) -> int:
    try:
        return fn()
    except InputError as exc:
        print(f"ctviewer: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ctviewer: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # an internal error: one line, the traceback on request
        if os.environ.get("CTVIEWER_DEBUG"):
            traceback.print_exc()
        print(f"ctviewer: internal error: {type(exc).__name__}: {exc} (set CTVIEWER_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.verb](args)

    return run_guarded(run)


if __name__ == "__main__":
    sys.exit(main())

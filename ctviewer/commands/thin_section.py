"""``ctviewer thin-section predict|eval``: thin-section photos through a trained VGG-UNet, headless.

    ctviewer thin-section predict DIR|PHOTO -o OUT [--model NAME] [--porosity-class 3] [--tile 512]
                                  [--colours mean|table]
    ctviewer thin-section eval LABELS (--pred DIR | --model NAME) [--csv OUT.csv] [--json]

``predict`` writes per photo ``NAME_classes.png`` (class ids), ``NAME_recolour.png`` and a row of
``fractions.csv`` (class fractions in %, porosity), then ``fractions_histogram.png``; a photo that
fails is listed at the end and the others go on (:mod:`ctviewer.workflows.batch`: exit 2). ``eval`` scores predictions (a folder
of ``NAME_classes.png``, or a model run on the photos) against label images: per-class IoU, mean
IoU, pixel accuracy, per photo and overall. Without ``--model`` the newest thin_section model is used.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from ctviewer.errors import InputError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("thin-section", help="thin-section photos: predict classes and fractions, evaluate")
    actions = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    predict = actions.add_parser("predict", help="classify photos at full resolution: class PNGs, recoloured "
                                                 "PNGs, class fractions (CSV) and their chart")
    predict.add_argument("path", type=Path, metavar="DIR|PHOTO", help="a folder of photos, or one photo")
    predict.add_argument("-o", "--output", type=Path, required=True, help="folder for the results")
    predict.add_argument("--model", default=None,
                         help="thin_section model name or .keras path (default: the newest thin_section model)")
    predict.add_argument("--porosity-class", type=int, default=3,
                         help="class id whose fraction is the visual porosity (default 3, blue-dye epoxy)")
    predict.add_argument("--tile", type=int, default=None,
                         help="tile size in pixels (default: the model's, else 512)")
    predict.add_argument("--colours", choices=("mean", "table"), default="mean",
                         help="recolour with each class's mean colour in the photo (default) or the table's colours")
    # `thin-section open` is the GUI's (app/main.py takes it before this parser): listed here for --help
    opening = actions.add_parser("open", help="open a folder of photos as a project in the GUI's thin-section dock")
    opening.add_argument("folder", type=Path, metavar="DIR")
    evaluate = actions.add_parser("eval", help="per-class IoU, mean IoU and pixel accuracy against label images")
    evaluate.add_argument("labels", type=Path, metavar="LABELS",
                          help="a project folder with label images, or a text file of 'image,label' lines")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--pred", type=Path, default=None, help="folder of NAME_classes.png predictions")
    source.add_argument("--model", default=None, help="thin_section model to run on the photos")
    evaluate.add_argument("--csv", type=Path, default=None, help="write per-photo and overall scores here")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of text")
    evaluate.add_argument("--tile", type=int, default=None, help="tile size with --model (default: the model's)")


def run(args) -> int:
    if args.action == "open":   # reached only where the GUI entry point is not (python -m ctviewer.cli)
        print("ctviewer thin-section open needs the GUI: run it as `ctviewer thin-section open DIR`", file=sys.stderr)
        return 2
    return run_predict(args) if args.action == "predict" else run_eval(args)


def run_predict(args) -> int:
    from ctviewer.workflows.batch import Batch
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.thin_section.predict import predict_folder

    bar = ProgressBar(sys.stderr)
    batch = Batch(noun="photo", plural="photos")
    try:
        result = predict_folder(args.path, args.output, args.model, porosity_class=args.porosity_class,
                                colours=args.colours, tile=args.tile, progress=bar, batch=batch)
    finally:
        bar.clear()
    if not result:
        print("ctviewer: nothing predicted", file=sys.stderr)
        return batch.finish()
    print(f"model {result.model}")
    for row in result:
        print(f"{row['image']}  {row['width']}x{row['height']}  porosity {row['porosity']:.2f} %  "
              f"-> {row['classes_path']}")
    print(f"wrote {result.csv_path} and {result.histogram_path}")
    return batch.finish()


def run_eval(args) -> int:
    from ctviewer.workflows.batch import Batch
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.thin_section.metrics import evaluate_folders, write_metrics_csv

    if args.pred is not None and not args.pred.is_dir():
        raise InputError("--pred needs the folder of NAME_classes.png predictions", args.pred)
    bar = ProgressBar(sys.stderr)
    batch = Batch(noun="photo", plural="photos")
    try:
        result = evaluate_folders(args.pred if args.pred is not None else args.model, args.labels,
                                  tile=args.tile, progress=bar, batch=batch)
    finally:
        bar.clear()
    if args.csv is not None:
        write_metrics_csv(args.csv, result)
    if args.json:
        print(json.dumps(_plain(result), indent=2))
        return batch.finish()
    names = {c["id"]: c["name"] for c in result["classes"]}
    print(f"{'image':<20} {'pixels':>9} {'accuracy':>9} {'mean IoU':>9}")
    for row in [*result["images"], {"image": "overall", **result["overall"]}]:
        print(f"{row['image']:<20} {row['pixels']:>9} {_text(row['pixel_accuracy']):>9} {_text(row['mean_iou']):>9}")
    print("IoU per class (overall): " + ", ".join(f"{i} {names[i]} {_text(v)}"
                                                  for i, v in result["overall"]["iou"].items()))
    if args.csv is not None:
        print(f"wrote {args.csv}")
    return batch.finish()


def _text(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _plain(value):
    """JSON without NaN (a class present nowhere has no IoU: null)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value

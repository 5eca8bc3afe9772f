"""``ctviewer segment PATH --model NAME -o OUT [--largest]``: label maps from a segmentation model, headless.

PATH is one study (a file or a DICOM folder) or a folder of studies. For one study OUT is the label
file to write (its format from the suffix: .nii.gz, .nrrd, .seg.nrrd, DICOM-SEG .dcm); for several,
OUT is a folder that gets ``EXAM_seg.nii.gz`` per study (or ``--format`` another suffix). A study that
fails is listed at the end and the batch goes on (:mod:`ctviewer.workflows.batch`: exit 2 when a
study failed, 1 when one failed by our bug). The model's label table goes with
every file, so the app opens the result with its names and colours. A vertebrae model's mask is
split into vertebrae by level (labels 26 S1 … 31 L1 … 50 C1, named "vertebrae L1" …) with the vertebra
count; ``--no-levels`` keeps one class, and where no whole vertebra can be named the line says why.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ctviewer.errors import InputError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("segment", help="segment CT scans with a model (liver, vertebrae, ...)")
    p.add_argument("path", type=Path, metavar="PATH", help="a CT file, a DICOM folder, or a folder of studies")
    p.add_argument("--model", required=True, help="segmentation model name (see `ctviewer models`) or .keras path")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="label file for one study; a folder for a folder of studies")
    p.add_argument("--largest", action="store_true", help="keep only the largest connected part of each label")
    p.add_argument("--format", default=".nii.gz", help="suffix of the files written into a folder (default .nii.gz)")
    p.add_argument("--no-levels", dest="levels", action="store_false",
                   help="vertebrae models: keep the vertebrae one class (by default each vertebra gets its "
                        "level's label, 26 S1 … 31 L1 … 50 C1, from the vertebra count)")


def run(args) -> int:
    from ctviewer.workflows.batch import Batch
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.segmentation.segment import find_segmentation_model
    from ctviewer.workflows.slice_locator.locate import find_studies

    entry = find_segmentation_model(args.model)   # refused from its card before Keras starts
    studies, problems = find_studies([args.path])
    if problems:
        raise InputError(problems[0][1], problems[0][0])
    many = len(studies) > 1 or studies[0] != args.path
    outputs = _outputs(studies, args, many)
    bar = ProgressBar(sys.stderr)
    batch = Batch()
    try:
        for study, out in outputs.items():
            line = batch.attempt(study, segment_one, study, out, entry, args.largest, bar, args.levels)
            bar.clear()
            if line is not None:
                print(line)
    finally:
        bar.clear()
    if many and not batch.done:
        print("ctviewer: nothing segmented", file=sys.stderr)
    return batch.finish()


def _outputs(studies, args, many: bool) -> dict:
    from ctviewer.io.writers import SUPPORTED_SUFFIXES
    from ctviewer.workflows.slice_locator.locate import assign_exam_ids

    if not many:
        folder = args.output.parent if str(args.output.parent) else Path(".")
        if not folder.is_dir():
            raise InputError("folder does not exist", folder)
        return {studies[0]: args.output}
    if args.output.exists() and not args.output.is_dir():
        raise InputError("a folder of studies needs -o FOLDER, and this is a file", args.output)
    suffix = args.format if args.format.startswith(".") else f".{args.format}"
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"--format {args.format}: use one of {', '.join(SUPPORTED_SUFFIXES)}")
    args.output.mkdir(parents=True, exist_ok=True)
    ids = assign_exam_ids(studies, {})
    return {study: args.output / f"{ids[study]}_seg{suffix}" for study in studies}


def segment_one(study: Path, out: Path, entry, largest: bool, progress, levels: bool = True) -> str:
    """Read, segment and save one study; returns its line for stdout (with the vertebrae's levels, or
    why they kept one class)."""
    from ctviewer.data.labels import LabelMap
    from ctviewer.io import read_volume
    from ctviewer.io.writers import write_label_map
    from ctviewer.workflows.segmentation.segment import label_table, segment, sizes_text

    volume = read_volume(study)
    result = segment(volume, entry, keep_largest=largest, progress=progress, levels=levels)
    labels = LabelMap(volume.with_array(result.labels, window=None, modality="", name=f"{volume.name} labels"),
                      label_table(result.groups))
    write_label_map(labels, out, image=volume)
    note = f"\n  {result.note}" if result.note else ""
    return f"{study.name}  {sizes_text(result, volume)}  -> {out}{note}"

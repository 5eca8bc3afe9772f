"""``ctviewer segment-eval CASES --model A [--model B ...] [--scores S.csv] [--table T.csv]``.

Scores segmentation models on studies that have label maps (anything ``find_cases`` reads: a
3D-IRCADb folder, an ``image,label`` list file, NIfTI pairs): Dice and Jaccard per study and per
label, then a table with one row per model and label (the spine seed's 2D-vs-3D comparison, but
averaged over studies, never over pooled slices). A study that fails is listed at the end and the
others go on (:mod:`ctviewer.workflows.batch`); the CSVs are rewritten (atomically) after every study.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ctviewer.errors import InputError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("segment-eval", help="Dice/Jaccard of segmentation models on labelled studies")
    p.add_argument("cases", type=Path, metavar="CASES",
                   help="3D-IRCADb folder, image,label list file, or folder of NIfTI image/label pairs")
    p.add_argument("--model", action="append", required=True, help="model name or .keras path (repeat to compare)")
    p.add_argument("--scores", type=Path, default=None, help="write per-study scores here (CSV)")
    p.add_argument("--table", type=Path, default=None, help="write the model comparison table here (CSV)")
    p.add_argument("--largest", action="store_true", help="keep only the largest connected part of each label")
    p.add_argument("--resample-labels", action="store_true",
                   help="resample label maps that lie on another grid than their image (else they are refused)")


def run(args) -> int:
    from ctviewer.workflows.batch import Batch
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.segmentation.cases import find_cases
    from ctviewer.workflows.segmentation.metrics import comparison_table
    from ctviewer.workflows.segmentation.segment import find_segmentation_model

    entries = [find_segmentation_model(name) for name in args.model]
    for path in (args.scores, args.table):   # refused before the first study, not after it
        if path is not None and not (path.parent if str(path.parent) else Path(".")).is_dir():
            raise InputError("folder does not exist", path.parent)
    refs = find_cases(args.cases)
    bar = ProgressBar(sys.stderr)
    batch = Batch()
    scores: dict[str, list[dict]] = {entry.name: [] for entry in entries}
    try:
        for ref in refs:
            case = batch.attempt(ref.image_path, ref.load, resample_labels=args.resample_labels, progress=bar)
            bar.clear()
            if case is None:
                continue
            for entry in entries:
                rows = batch.attempt(ref.image_path, score_case, case, entry, args.largest, bar)
                bar.clear()
                if rows is None:
                    continue
                for row in rows:
                    print(f"{case.case_id}  {entry.name}  {row['label']}: Dice {row['dice']:.3f}, "
                          f"Jaccard {row['jaccard']:.3f}")
                scores[entry.name].extend(rows)
                _write_csvs(args, scores)     # what is scored so far is on disk at once
    finally:
        bar.clear()
    if not any(scores.values()):
        print("ctviewer: no study could be scored", file=sys.stderr)
        return batch.finish()
    table = comparison_table(scores)
    print(f"\n{'model':<24} {'label':<14} {'mean Dice':>9} {'median':>7} {'Jaccard':>8} {'studies':>7}")
    for row in table:
        print(f"{row['model']:<24} {row['label']:<14} {row['mean_dice']:>9.3f} {row['median_dice']:>7.3f} "
              f"{row['mean_jaccard']:>8.3f} {row['cases']:>7}")
    for path in (args.scores, args.table):
        if path is not None:
            print(f"wrote {path}")
    return batch.finish()


def score_case(case, entry, largest: bool, progress) -> list[dict]:
    """One model's Dice and Jaccard rows on one case (each row names the model)."""
    from ctviewer.workflows.segmentation.metrics import case_scores
    from ctviewer.workflows.segmentation.segment import segment

    result = segment(case.image, entry, keep_largest=largest, progress=progress)
    rows = case_scores(case.case_id, result.labels, case.labels, result.groups)
    return [dict(row, model=entry.name) for row in rows]


def _write_csvs(args, scores: dict[str, list[dict]]) -> None:
    from ctviewer.workflows.segmentation.metrics import comparison_table, write_comparison_csv, write_scores_csv

    if args.scores is not None:
        write_scores_csv(args.scores, [row for rows in scores.values() for row in rows])
    if args.table is not None:
        write_comparison_csv(args.table, comparison_table(scores))

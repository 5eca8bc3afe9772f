"""``ctviewer segment-eval CASES --model A [--model B ...] [--scores S.csv] [--table T.csv]``.

Scores segmentation models on studies that have label maps (anything ``find_cases`` reads: a
3D-IRCADb folder, an ``image,label`` list file, NIfTI pairs): Dice and Jaccard per study and per
label, then a table with one row per model and label (the spine seed's 2D-vs-3D comparison, but
averaged over studies, never over pooled slices). A study that cannot be read is reported in one
line and left out.
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
    from ctviewer.commands.locate import ProgressBar
    from ctviewer.workflows.segmentation.cases import find_cases
    from ctviewer.workflows.segmentation.metrics import (case_scores, comparison_table, write_comparison_csv,
                                                         write_scores_csv)
    from ctviewer.workflows.segmentation.segment import find_segmentation_model, segment

    entries = [find_segmentation_model(name) for name in args.model]
    refs = find_cases(args.cases)
    bar = ProgressBar(sys.stderr)
    scores: dict[str, list[dict]] = {entry.name: [] for entry in entries}
    try:
        for ref in refs:
            try:
                case = ref.load(resample_labels=args.resample_labels, progress=bar)
            except InputError as exc:
                bar.clear()
                print(f"ctviewer: warning: {exc}", file=sys.stderr)
                continue
            for entry in entries:
                result = segment(case.image, entry, keep_largest=args.largest, progress=bar)
                rows = case_scores(case.case_id, result.labels, case.labels, result.groups)
                bar.clear()
                for row in rows:
                    row["model"] = entry.name
                    print(f"{case.case_id}  {entry.name}  {row['label']}: Dice {row['dice']:.3f}, "
                          f"Jaccard {row['jaccard']:.3f}")
                scores[entry.name].extend(rows)
    finally:
        bar.clear()
    if not any(scores.values()):
        print("ctviewer: no study could be scored", file=sys.stderr)
        return 2
    table = comparison_table(scores)
    print(f"\n{'model':<24} {'label':<14} {'mean Dice':>9} {'median':>7} {'Jaccard':>8} {'studies':>7}")
    for row in table:
        print(f"{row['model']:<24} {row['label']:<14} {row['mean_dice']:>9.3f} {row['median_dice']:>7.3f} "
              f"{row['mean_jaccard']:>8.3f} {row['cases']:>7}")
    if args.scores is not None:
        write_scores_csv(args.scores, [dict(r) for rows in scores.values() for r in rows])
        print(f"wrote {args.scores}")
    if args.table is not None:
        write_comparison_csv(args.table, table)
        print(f"wrote {args.table}")
    return 0

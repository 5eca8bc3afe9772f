"""``ctviewer locate-eval PREDICTED.csv TRUTH.csv [--png HIST.png] [--level L3]``: errors of picks.

Prints per level the matched count, median / mean / max error in mm and in slices, agreement on
"not in scan", and how many were predicted "in view, not found"; writes a histogram of the errors in slices. TRUTH.csv is a picks CSV or the seed's
``exam_id,L3_slice_num`` file (errors in slices only). See ctviewer.workflows.slice_locator.evaluate.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ctviewer.errors import InputError

EXIT_OK = 0
#: How many unmatched exam ids the warning names before it only counts.
_NAMED = 10


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("locate-eval", help="errors of predicted L3/T12 picks against reference picks")
    p.add_argument("predicted", type=Path, metavar="PREDICTED.csv", help="picks CSV (from ctviewer locate)")
    p.add_argument("truth", type=Path, metavar="TRUTH.csv",
                   help="reference: a picks CSV, or the seed's exam_id,L3_slice_num format")
    p.add_argument("--png", type=Path, default=None, metavar="HIST.png",
                   help="write a histogram of the errors in slices, one panel per level")
    p.add_argument("--level", default=None, help="evaluate one level only (L3 or T12)")


def run(args) -> int:
    from ctviewer.workflows.slice_locator.evaluate import evaluate, read_truth, report_lines
    from ctviewer.workflows.slice_locator.picks import LEVELS, read_picks_csv

    if args.level is not None and args.level.upper() not in LEVELS:
        raise InputError(f"--level {args.level}: choose one of {', '.join(LEVELS)}")
    levels = [args.level.upper()] if args.level else None
    predicted, _ = read_picks_csv(args.predicted)
    truth, truth_format = read_truth(args.truth)
    result = evaluate(predicted, truth, levels=levels, truth_format=truth_format)
    _warn_unmatched(result.only_predicted, args.predicted, args.truth)
    _warn_unmatched(result.only_truth, args.truth, args.predicted)
    if not any(r.matched or r.both_absent or r.missed or r.false_found or r.not_found
               for r in result.levels.values()):
        what = f" for {args.level.upper()}" if args.level else ""
        raise InputError(f"no exam_id and level{what} of {args.predicted.name} is in the truth", args.truth)
    print("\n".join(report_lines(result, str(args.predicted), str(args.truth))))
    if args.png is not None:
        from ctviewer.workflows.slice_locator.drawing import write_error_histogram

        written = write_error_histogram({lv: r.errors_slices for lv, r in result.levels.items()}, args.png)
        print(f"wrote {written}")
    return EXIT_OK


def _warn_unmatched(ids: list[str], here: Path, there: Path) -> None:
    if ids:
        named = ", ".join(ids[:_NAMED]) + (f", … ({len(ids) - _NAMED} more)" if len(ids) > _NAMED else "")
        print(f"ctviewer: warning: {len(ids)} exam_id(s) of {here.name} are not in {there.name}: {named}",
              file=sys.stderr)

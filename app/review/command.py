"""``ctviewer review PATH... [-o picks.csv] [--model NAME] [--no-predict]``: the review window alone."""

from __future__ import annotations

import argparse
import os
import sys

DESCRIPTION = ("Review predicted L3/T12 slice picks study by study: a folder of studies (each image file or "
               "DICOM series folder is one study), study files, or a picks CSV (with its NAME.studies.json). "
               "Studies without picks are predicted with the locator model. Every decision is written to the "
               "CSV at once; reopening it resumes at the first unreviewed study.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctviewer review", description=DESCRIPTION)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="folder of studies, study files, or picks CSV")
    parser.add_argument("-o", "--output", default=None, metavar="CSV",
                        help="picks CSV to write (default: picks.csv in the folder of studies, or beside "
                             "the first study); an existing one is resumed")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="locator model name or .keras path (default: the shipped slice_locator)")
    parser.add_argument("--no-predict", action="store_true",
                        help="do not run the model: place the levels of studies without picks by hand")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from app.main import NO_DISPLAY, _has_display

    if not _has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"ctviewer: {missing[0]}: no such file or folder", file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    from app.review.sources import open_review
    from app.review.window import ReviewWindow
    from ctviewer.errors import InputError

    try:
        source = open_review(args.paths, args.output)
    except InputError as exc:
        print(f"ctviewer: {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ctviewer")
    app.setOrganizationName("ctviewer")
    window = ReviewWindow(source, locator_name=args.model, predict=not args.no_predict)
    window.show()
    code = app.exec()
    from app.workers import wait_for_workers

    wait_for_workers(5000)   # the window cancelled its reading; let it stop before Python does
    # pyqtgraph widgets alive at interpreter exit can crash PySide6 (ENVIRONMENT.md): delete first.
    window.deleteLater()
    app.processEvents()
    return code

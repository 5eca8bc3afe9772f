"""``ctviewer locate PATH... --levels L3,T12 -o picks.csv [--png DIR]``: a batch of scans to a picks CSV.

Each file, DICOM folder or folder of studies is located with the slice locator and its vertebrae are
counted; the two are cross-checked per level (:mod:`ctviewer.workflows.slice_locator.combine`), and
levels the network has no channel for (any of T1…L5, S1) come from the count. One line per study
goes to stdout; why a pick is what it is, and a progress bar, to stderr. The CSV is written after
every study (a batch stopped half-way keeps what it did), and rows a person has reviewed are never
replaced by new predictions.
A study that fails is listed at the end and the others go on (:mod:`ctviewer.workflows.batch`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ctviewer.errors import InputError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("locate", help="find the L3 and T12 slices (or any vertebra's) of CT scans; "
                                             "write a picks CSV")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="CT files, DICOM folders, or folders of studies (each file / DICOM folder one study)")
    p.add_argument("--levels", default="L3,T12",
                   help="levels to locate, comma separated, any of T1…T12, L1…L5, S1 (default: L3,T12); "
                        "levels other than L3 and T12 come from the vertebra count")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="the picks CSV to write, or to update (its reviewed rows are kept)")
    p.add_argument("--png", type=Path, default=None, metavar="DIR",
                   help="also write EXAM.png per study: the projections with the level lines drawn")
    p.add_argument("--model", default=None, help="model name or .keras path (default: the shipped slice_locator)")
    p.add_argument("--patient-names", action="store_true",
                   help="add a patient_name column from the image headers (left out unless asked)")


def run(args) -> int:
    from ctviewer.workflows.batch import Batch
    from ctviewer.workflows.slice_locator.locate import locate_paths
    from ctviewer.workflows.slice_locator.picks import PicksFile

    levels = parse_levels(args.levels)
    if args.png is not None:
        if args.png.exists() and not args.png.is_dir():
            raise InputError("--png needs a folder, and this is a file", args.png)
        args.png.mkdir(parents=True, exist_ok=True)
    folder = args.output.parent if str(args.output.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("folder does not exist", folder)
    # An existing CSV is read before the batch (a broken one stops it at once); a new one is
    # created with the first study located, so a batch of bad paths leaves nothing behind.
    picks_file = PicksFile.open(args.output) if args.output.exists() else None
    if picks_file is not None:
        picks_file.patient_names = picks_file.patient_names or args.patient_names
    bar = ProgressBar(sys.stderr)
    batch = Batch()
    kept = 0
    try:
        # levels only the count places (L1, S1, ...) need no network: Keras is not started for them
        network = None if not needs_network(args.model, levels) else (lambda: load_locator(args.model))
        for result in locate_paths(args.paths, network, levels, progress=bar,
                                   known=picks_file.studies if picks_file else None,
                                   keep_projections=args.png is not None):
            bar.clear()
            if result.error:
                batch.fail(result.path, result.error, internal=result.internal)
                continue
            if picks_file is None:
                picks_file = PicksFile.create(args.output, patient_names=args.patient_names)
            line = batch.attempt(result.path, _write_study, picks_file, result, args)
            if line is not None:
                kept += line[1]
                print(line[0])
    finally:  # an error's one line must not land on the bar's line
        bar.clear()
    if batch.done:
        failed = batch.tried - batch.done
        print(f"wrote {args.output}: {batch.done} {'study' if batch.done == 1 else 'studies'} located"
              + (f", {failed} could not be" if failed else "")
              + (f"; {kept} reviewed row(s) kept, not replaced by the new predictions" if kept else ""))
    else:
        print(f"ctviewer: nothing located; {args.output} "
              f"{'left unchanged' if args.output.exists() else 'not written'}", file=sys.stderr)
    return batch.finish()


def _write_study(picks_file, result, args) -> tuple[str, int]:
    """Record one located study in the CSV (at once) and its PNG; (its line for stdout, rows kept)."""
    from ctviewer.workflows.slice_locator.vertebrae import count_text

    kept = record(picks_file, result, args.patient_names)
    # why a pick is what it is: from the count, levels disagree, what the count could not check
    grouped: dict[str, list[str]] = {}
    for level, note in result.notes.items():   # one line for levels that share a note (no spine found)
        grouped.setdefault(note, []).append(level)
    notes = [f"{', '.join(levels)}: {note}" for note, levels in grouped.items()]
    for warning in result.warnings + notes:
        print(f"ctviewer: warning: {result.path}: {warning}", file=sys.stderr)
    if args.png is not None:
        from ctviewer.workflows.slice_locator.drawing import write_projections_png

        shown = [picks_file.get(result.exam_id, p.level) or p for p in result.picks]
        write_projections_png(result.projections, shown, args.png / f"{_file_name(result.exam_id)}.png",
                              title=result.exam_id)
    line = study_line(result.exam_id, [picks_file.get(result.exam_id, p.level) for p in result.picks])
    # the classical count beside the network's picks (shown, not written to the CSV)
    return "   ".join(filter(None, [line, count_text(result.spine)])), kept


def parse_levels(text: str) -> tuple[str, ...]:
    from ctviewer.workflows.slice_locator.picks import KNOWN_LEVELS, known_levels_text

    levels = tuple(dict.fromkeys(lv.strip().upper() for lv in text.split(",") if lv.strip()))
    unknown = [lv for lv in levels if lv not in KNOWN_LEVELS]
    if not levels or unknown:
        raise InputError(f"--levels {text}: choose from {known_levels_text()} (comma separated)")
    return levels


def needs_network(model: str | None, levels) -> bool:
    """False where the model's card says it has no channel for any of ``levels`` (they come from the
    vertebra count alone); True otherwise, also where the card cannot be read (loading it says why)."""
    from ctviewer.ml import registry

    try:
        entry = registry.find_model(model or "slice_locator", task="slice_locator")
    except InputError:
        return True
    own = (entry.card.outputs or {}).get("levels", ("L3", "T12"))
    return any(level in own for level in levels)


def load_locator(model: str | None):
    """The locator (imports Keras: called only once a study has been read)."""
    from ctviewer.ml import registry

    # A missing or wrong model is refused from its card, before Keras takes seconds to start.
    registry.find_model(model or "slice_locator", task="slice_locator")
    from ctviewer.ml.locator import Locator

    return Locator.load(model)


def record(picks_file, result, patient_names: bool) -> int:
    """Write a study's new picks at once, keeping rows a person reviewed; returns how many were kept."""
    from dataclasses import replace

    new, kept = [], 0
    for pick in result.picks:
        old = picks_file.get(pick.exam_id, pick.level)
        if old is not None and old.is_reviewed:
            kept += 1
            continue
        new.append(replace(pick, patient_name=result.patient_name) if patient_names else pick)
    picks_file.set_study_path(result.exam_id, result.path)
    if new:
        notes = {p.key: result.notes[p.level] for p in new if result.notes.get(p.level)}
        picks_file.set_many(new, action="predict", notes=notes)
    return kept


def study_line(exam_id: str, picks) -> str:
    """``case012  L3 slice 41 (z -120.5 mm, #88) 0.93   T12 slice 75 (z 10 mm) 0.90 [from the spine count]
    T10 in view, not found — check   T1 not in scan``"""
    from ctviewer.workflows.slice_locator.combine import level_remark
    from ctviewer.workflows.slice_locator.picks import NOT_FOUND

    parts = []
    for p in picks:
        conf = "" if p.confidence is None else f" {p.confidence:.2f}"
        remark = level_remark(p)
        reviewed = f" [{p.status}, kept]" if p.is_reviewed else f" [{remark}]" if remark else ""
        if p.in_scan:
            where = f"z {p.z_mm:g} mm" + (f", #{p.instance_number}" if p.instance_number is not None else "")
            parts.append(f"{p.level} slice {p.slice_index} ({where}){conf}{reviewed}")
        elif p.status == NOT_FOUND:   # in view, not placed: never read as "not in scan"
            parts.append(f"{p.level} {remark}{conf}")
        else:
            parts.append(f"{p.level} not in scan{conf}{reviewed}")
    return f"{exam_id}  " + "   ".join(parts)


def _file_name(exam_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in exam_id) or "study"


class ProgressBar:
    """A one-line bar on a terminal (redrawn at most 10 times a second); silent when not a terminal."""

    def __init__(self, stream, width: int = 30):
        self.stream, self.width = stream, width
        self.live = hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0
        self._shown = False

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if not self.live or (now - self._last < 0.1 and fraction < 1.0):
            return
        self._last = now
        filled = int(round(self.width * max(0.0, min(1.0, fraction))))
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%} {message[:40]:<40}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * (self.width + 48) + "\r")
            self.stream.flush()
            self._shown = False

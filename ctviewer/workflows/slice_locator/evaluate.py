"""How far predicted picks are from reference picks (``ctviewer locate-eval PREDICTED.csv TRUTH.csv``).

Rows are matched by exam_id and level. Errors are signed (predicted − truth; + is towards the head):

- in mm: the difference of ``z_mm`` where both rows have one, else the slice difference times the
  truth's ``spacing_mm``;
- in slices: the z difference divided by the truth's spacing where both are known, else the
  slice_index difference.

The truth may be a picks CSV or the seed's ``exam_id,L3_slice_num`` (and/or ``T12_slice_num``)
file; the seed's has no geometry, so its errors are in slices only (an empty cell there means the
level is not in the scan). Agreement on absence is counted apart: both say "not in scan", the
prediction missed a level that is there, or it found one that is not. A prediction "in view, not found"
(``not_found``: no slice, but no claim of absence either) is counted on its own; a truth row that says
so, or is flagged, has no answer to compare with and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.io import csv_safe
from ctviewer.workflows.slice_locator.picks import LEVELS, NOT_FOUND, Pick, read_picks_csv

SEED_SUFFIX = "_slice_num"


@dataclass
class LevelErrors:
    """Errors of one level over the matched studies."""

    level: str
    errors_slices: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: None when the truth has no geometry (the seed's format).
    errors_mm: np.ndarray | None = None
    both_absent: int = 0
    #: Truth has the level, the prediction says not in scan.
    missed: int = 0
    #: Truth says not in scan, the prediction gives a slice.
    false_found: int = 0
    #: The prediction says "in view, not found" (no slice, no claim of absence).
    not_found: int = 0
    #: Truth rows of this level that have no predicted row.
    unpredicted: int = 0

    @property
    def matched(self) -> int:
        return int(self.errors_slices.size)

    @staticmethod
    def summary(errors: np.ndarray | None) -> dict | None:
        if errors is None or errors.size == 0:
            return None
        a = np.abs(errors)
        return {"median": float(np.median(a)), "mean": float(np.mean(a)), "max": float(np.max(a)),
                "bias": float(np.mean(errors))}


@dataclass
class Evaluation:
    levels: dict[str, LevelErrors]
    truth_format: str  # "picks" or "seed"
    only_predicted: list[str] = field(default_factory=list)
    only_truth: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_truth(path: str | Path) -> tuple[list[Pick], str]:
    """Reference picks from a picks CSV or the seed's ``exam_id,L3_slice_num`` file, and which it was."""
    path = Path(path)
    try:
        first = path.read_text(encoding="utf-8-sig").splitlines()[:1]
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read as a CSV: {exc}", path) from None
    header = next(csv_safe.reader("\n".join(first), strip=True), [])
    if any(h.endswith(SEED_SUFFIX) for h in header):
        return read_seed_csv(path), "seed"
    return read_picks_csv(path)[0], "picks"


def read_seed_csv(path: str | Path) -> list[Pick]:
    """The seed's ``exam_id,L3_slice_num[,T12_slice_num]`` CSV as picks without geometry."""
    path = Path(path)
    reader = csv_safe.reader(csv_safe.read_text(path), strip=True)   # as export_seed wrote it
    header = next(reader, [])
    columns = {h[: -len(SEED_SUFFIX)]: i for i, h in enumerate(header) if h.endswith(SEED_SUFFIX)}
    unknown = [lv for lv in columns if lv not in LEVELS]
    if "exam_id" not in header or unknown:
        raise InputError("line 1: a seed-format CSV needs an exam_id column and LEVEL_slice_num columns "
                         f"({', '.join(lv + SEED_SUFFIX for lv in LEVELS)})"
                         + (f"; unknown level(s) {', '.join(unknown)}" if unknown else ""), path)
    id_col = header.index("exam_id")
    picks = []
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise InputError(f"line {reader.line_num}: {len(row)} fields, the header has {len(header)}", path)
        for level, col in columns.items():
            text = row[col]
            try:
                index = None if text == "" else int(float(text))
            except ValueError:
                raise InputError(f"line {reader.line_num}: {header[col]} '{text}' is not a slice number", path) from None
            picks.append(Pick(row[id_col], level, index, None, None, None, None, "seed", None,
                              "accepted" if index is not None else "not_in_scan"))
    return picks


def evaluate(predicted: list[Pick], truth: list[Pick], levels=None, truth_format: str = "picks") -> Evaluation:
    """Match by (exam_id, level) and collect errors and absence agreement per level."""
    pred = {p.key: p for p in predicted}
    ref = {p.key: p for p in truth}
    notes = []
    flagged = [k for k, p in ref.items() if p.status == "flagged"]
    if flagged:
        notes.append(f"{len(flagged)} truth row(s) flagged for a second look were left out")
        for key in flagged:
            del ref[key]
    unplaced = [k for k, p in ref.items() if p.status == NOT_FOUND]
    if unplaced:
        notes.append(f"{len(unplaced)} truth row(s) in view but not found (no slice) were left out")
        for key in unplaced:
            del ref[key]
    unreviewed = sum(p.status == "predicted" for p in ref.values())
    if unreviewed:
        notes.append(f"{unreviewed} truth row(s) are unreviewed predictions (status predicted)")
    levels = [lv for lv in LEVELS if lv in set(levels or LEVELS) and any(k[1] == lv for k in ref)]
    out = Evaluation({}, truth_format, notes=notes)
    pred_ids, ref_ids = {k[0] for k in pred}, {k[0] for k in ref}
    out.only_predicted = sorted(pred_ids - ref_ids)
    out.only_truth = sorted(ref_ids - pred_ids)
    for level in levels:
        result = LevelErrors(level)
        result.unpredicted = sum(1 for k in ref if k[1] == level and k not in pred and k[0] in pred_ids)
        slices, mm = [], []
        for key in sorted(k for k in ref if k[1] == level and k in pred):
            p, t = pred[key], ref[key]
            if p.status == NOT_FOUND:
                result.not_found += 1
                continue
            if not t.in_scan:
                result.both_absent += not p.in_scan
                result.false_found += p.in_scan
                continue
            if not p.in_scan:
                result.missed += 1
                continue
            err_slices, err_mm = _errors(p, t)
            slices.append(err_slices)
            mm.append(err_mm)
        result.errors_slices = np.asarray(slices, dtype=float)
        if truth_format != "seed" and slices and all(e is not None for e in mm):
            result.errors_mm = np.asarray(mm, dtype=float)
        out.levels[level] = result
    return out


def _errors(p: Pick, t: Pick) -> tuple[float, float | None]:
    """(slices, mm) error of one prediction against its truth; see the module docstring."""
    spacing = t.spacing_mm
    if p.z_mm is not None and t.z_mm is not None:
        dz = p.z_mm - t.z_mm
        return (dz / spacing if spacing else float(p.slice_index - t.slice_index)), dz
    d = float(p.slice_index - t.slice_index)
    return d, (d * spacing if spacing else None)


def report_lines(result: Evaluation, predicted_name: str, truth_name: str) -> list[str]:
    """The text ``ctviewer locate-eval`` prints."""
    lines = [f"predicted {predicted_name} against truth {truth_name}"
             + (" (seed format: no geometry, errors in slices only)" if result.truth_format == "seed" else "")]
    for level, r in result.levels.items():
        lines.append(f"{level}: {r.matched} matched")
        for unit, errors in (("mm", r.errors_mm), ("slices", r.errors_slices)):
            s = LevelErrors.summary(errors)
            if s:
                lines.append(f"  error {unit:<7}median {s['median']:.2f}  mean {s['mean']:.2f}  "
                             f"max {s['max']:.2f}  (bias {s['bias']:+.2f})")
        if r.matched and r.errors_mm is None and result.truth_format != "seed":
            lines.append("  error mm     not known (truth rows without z_mm or spacing_mm)")
        lines.append(f"  not in scan  {r.both_absent} agreed; {r.missed} said absent but present; "
                     f"{r.false_found} given a slice but absent")
        # always printed: a level nobody placed is neither matched nor absent, and must not vanish from the table
        lines.append(f"  in view, not found  {r.not_found} predicted without a slice (a person must place them)")
        if r.unpredicted:
            lines.append(f"  {r.unpredicted} truth row(s) of studies in the prediction have no {level} prediction")
    if not result.levels:
        lines.append("no level of the truth matched")
    return lines + [f"note: {n}" for n in result.notes]

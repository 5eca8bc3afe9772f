"""The picks CSV: one row per study and level (L3, T12, or any of T1…L5, S1), the file a clinic keeps and trusts.

Every change is written at once: the whole CSV is rewritten atomically (old file or new file,
never half of one) and one JSON line per decision is appended to ``NAME.audit.jsonl`` (time,
user, exam, level, action, old and new values), flushed to disk before ``set`` returns.

Where each study lives is kept in a sidecar ``NAME.studies.json`` (exam_id -> path), not in the
CSV: folder names often carry patient names, and the CSV travels (e-mail, spreadsheets). Patient
names go into the CSV only when asked (``patient_names=True`` adds a ``patient_name`` column).

``exam_id`` is what the study is called by: ctviewer uses the file name without its format
suffix (``case012`` for ``case012.nii.gz``) or the DICOM folder's name — stable across runs, and
as identifying as the user's own naming, no more (no DICOM patient fields are used).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import math
import os
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path

from ctviewer.errors import InputError
from ctviewer.io import csv_safe
from ctviewer.io.atomic import atomic_write_text
from ctviewer.io.csv_safe import write_csv

#: The levels located unless the user asks for others (the locator network's own).
LEVELS = ("L3", "T12")
#: Every level a pick can name: the network places L3 and T12, the vertebra count any of these.
KNOWN_LEVELS = tuple(f"T{n}" for n in range(1, 13)) + tuple(f"L{n}" for n in range(1, 6)) + ("S1",)
#: ``levels_disagree``: the locator and the vertebra count (or the count's two ways of naming) do not
#: agree; shown as "levels disagree — check" and never taken as an answer until a person decides.
LEVELS_DISAGREE = "levels_disagree"
#: ``not_found``: the scan covers the level's height but neither the locator nor the vertebra count named
#: it; shown as "in view, not found — check", no slice. ``not_in_scan`` says the scan does not reach it.
NOT_FOUND = "not_found"
STATUSES = ("predicted", "accepted", "corrected", "flagged", "not_in_scan", LEVELS_DISAGREE, NOT_FOUND)
#: Statuses without a slice (the level was not placed).
NO_SLICE = ("not_in_scan", NOT_FOUND)
#: Statuses only a person sets: such a row is never replaced by a new prediction.
REVIEWED_STATUSES = ("accepted", "corrected", "flagged")
CSV_COLUMNS = ["exam_id", "level", "slice_index", "z_mm", "instance_number", "slice_thickness_mm",
               "spacing_mm", "source", "confidence", "status", "reviewed_at"]
PATIENT_NAME_COLUMN = "patient_name"
#: ``source`` of a pick a person set by hand.
MANUAL = "manual"
#: Statuses that need a slice; ``not_in_scan`` and ``not_found`` must have none.
_NEEDS_SLICE = ("predicted", "accepted", "corrected", LEVELS_DISAGREE)


def now_iso() -> str:
    """Local time with its UTC offset, to the second (the ``reviewed_at`` format)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class Pick:
    """One level of one study: where it is (slice, z, DICOM instance) and who said so."""

    exam_id: str
    level: str
    slice_index: int | None
    z_mm: float | None
    instance_number: int | None
    slice_thickness_mm: float | None
    spacing_mm: float | None
    source: str
    confidence: float | None
    status: str
    reviewed_at: str = ""
    #: Only written when the picks file was made with ``patient_names=True``.
    patient_name: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.exam_id, self.level)

    @property
    def is_reviewed(self) -> bool:
        """True when a person decided this row (a new prediction must not replace it)."""
        return bool(self.reviewed_at) or self.status in REVIEWED_STATUSES

    @property
    def in_scan(self) -> bool:
        return self.status not in NO_SLICE and self.slice_index is not None

    def reviewed(self, status: str, **changes) -> "Pick":
        """A copy with a person's decision: ``status``, ``reviewed_at`` now, and ``changes``."""
        return replace(self, status=status, reviewed_at=now_iso(), **changes)

    def as_row(self) -> dict[str, str]:
        return {
            "exam_id": self.exam_id, "level": self.level, "slice_index": _text(self.slice_index),
            "z_mm": _number(self.z_mm, 3), "instance_number": _text(self.instance_number),
            "slice_thickness_mm": _number(self.slice_thickness_mm, 4), "spacing_mm": _number(self.spacing_mm, 4),
            "source": self.source, "confidence": _number(self.confidence, 4), "status": self.status,
            "reviewed_at": self.reviewed_at, PATIENT_NAME_COLUMN: self.patient_name,
        }


class PicksFile:
    """One picks CSV with its audit trail and studies sidecar; see the module docstring."""

    def __init__(self, path: str | Path, picks=(), studies: dict | None = None, patient_names: bool = False):
        self.path = Path(path)
        self.patient_names = patient_names
        self._picks: dict[tuple[str, str], Pick] = {p.key: p for p in picks}
        self._studies: dict[str, str] = dict(studies or {})

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> "PicksFile":
        """Read an existing picks CSV (and its studies sidecar); InputError naming file and line."""
        path = Path(path)
        picks, has_names = read_picks_csv(path)
        return cls(path, picks, _read_studies(studies_path(path)), patient_names=has_names)

    @classmethod
    def create(cls, path: str | Path, patient_names: bool = False) -> "PicksFile":
        """Start a new, empty picks CSV (written at once); an existing file is not overwritten."""
        path = Path(path)
        if path.exists():
            raise InputError("already exists: open it, or choose another name", path)
        picks = cls(path, patient_names=patient_names)
        picks._write(picks._picks)
        return picks

    @classmethod
    def open_or_create(cls, path: str | Path, patient_names: bool = False) -> "PicksFile":
        path = Path(path)
        if not path.exists():
            return cls.create(path, patient_names)
        picks = cls.open(path)
        picks.patient_names = picks.patient_names or patient_names  # never drops a column it has
        return picks

    # -- reading -----------------------------------------------------------------------------
    @property
    def picks(self) -> list[Pick]:
        return list(self._picks.values())

    def get(self, exam_id: str, level: str) -> Pick | None:
        return self._picks.get((exam_id, level))

    def exam_ids(self) -> list[str]:
        """The studies in the file, in the order they first appear."""
        return list(dict.fromkeys(exam for exam, _ in self._picks))

    @property
    def studies(self) -> dict[str, str]:
        """exam_id -> the path the study was read from (from the sidecar)."""
        return dict(self._studies)

    @property
    def audit_path(self) -> Path:
        return _sidecar(self.path, ".audit.jsonl")

    # -- changing ----------------------------------------------------------------------------
    def set(self, pick: Pick, action: str, user: str | None = None) -> Pick:
        """Record one decision: the CSV is rewritten at once and one audit line appended.

        A reviewed status (accepted, corrected, flagged) without ``reviewed_at`` is stamped now.
        Returns the pick as stored.
        """
        return self.set_many([pick], action, user)[0]

    def set_many(self, picks, action: str, user: str | None = None, notes: dict | None = None) -> list[Pick]:
        """Several decisions in one CSV write (e.g. both levels of one study), one audit line each.

        ``notes`` ((exam_id, level) -> text) go into those picks' audit lines: why a pick is what it is (it came
        from the vertebra count, the count put the level elsewhere), which the CSV has no column for.
        """
        stored = [self._checked(pick) for pick in picks]
        updated = dict(self._picks)
        entries = []
        for pick in stored:
            entries.append((self._picks.get(pick.key), pick))
            updated[pick.key] = pick
        self._write(updated)  # raises before anything changes here when the disk refuses
        self._picks = updated
        self._audit(action, user, entries, notes or {})
        return stored

    def set_study_path(self, exam_id: str, path: str | Path) -> None:
        """Remember where a study lives (sidecar written at once when it changed)."""
        path = str(Path(path).resolve())
        if self._studies.get(exam_id) != path:
            studies = dict(self._studies, **{exam_id: path})
            atomic_write_text(studies_path(self.path), json.dumps(studies, indent=1, ensure_ascii=False) + "\n")
            self._studies = studies

    def export_seed(self, path: str | Path, level: str = "L3") -> int:
        """Write the seed's ``exam_id,L3_slice_num`` CSV (or T12); returns the rows written.

        Rows without a slice (not in scan, or in view but not found), flagged rows (waiting for a second look) and rows whose
        levels disagree are left out: the seed's format has no way to say "absent" or "unsure".
        """
        if level not in KNOWN_LEVELS:
            raise InputError(f"unknown level '{level}' (known: {known_levels_text()})")
        rows = [p for p in self._picks.values()
                if p.level == level and p.in_scan and p.status not in ("flagged", LEVELS_DISAGREE)]
        write_csv(path, ([p.exam_id, p.slice_index] for p in rows), header=["exam_id", f"{level}_slice_num"])
        return len(rows)

    # -- internals ---------------------------------------------------------------------------
    def _checked(self, pick: Pick) -> Pick:
        problem = _pick_problem(pick)
        if problem:
            raise InputError(f"cannot record {pick.exam_id or '(no exam id)'} {pick.level}: {problem}", self.path)
        if pick.status in REVIEWED_STATUSES and not pick.reviewed_at:
            pick = replace(pick, reviewed_at=now_iso())
        return pick

    def _columns(self) -> list[str]:
        return CSV_COLUMNS + ([PATIENT_NAME_COLUMN] if self.patient_names else [])

    def _write(self, picks: dict) -> None:
        columns = self._columns()
        # through csv_safe: an exam id or name like =HYPERLINK(...) must not run in Excel
        rows = (p.as_row() for p in picks.values())
        write_csv(self.path, ([row[c] for c in columns] for row in rows), header=columns)

    def _audit(self, action: str, user: str | None, entries, notes: dict) -> None:
        who = user or _user()
        time = now_iso()
        lines = [json.dumps({"time": time, "user": who, "exam_id": new.exam_id, "level": new.level,
                             "action": action, "old": self._audit_values(old), "new": self._audit_values(new),
                             **({"note": notes[new.key]} if notes.get(new.key) else {})},
                            ensure_ascii=False) for old, new in entries]
        try:
            with open(self.audit_path, "a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise InputError(f"the CSV was saved but its audit trail could not be written: "
                             f"{exc.strerror or exc}", self.audit_path) from exc

    def _audit_values(self, pick: Pick | None) -> dict | None:
        if pick is None:
            return None
        row = {f.name: getattr(pick, f.name) for f in fields(pick)}
        if not self.patient_names:
            row.pop(PATIENT_NAME_COLUMN)
        return row


def known_levels_text() -> str:
    """``T1…T12, L1…L5, S1`` for messages."""
    return "T1…T12, L1…L5, S1"


def level_order(level: str) -> int:
    """Position from the head down (T1 = 0 … S1), for sorting levels as they lie in the body."""
    return KNOWN_LEVELS.index(level) if level in KNOWN_LEVELS else len(KNOWN_LEVELS)


def studies_path(csv_path: str | Path) -> Path:
    """``picks.csv`` -> ``picks.studies.json``."""
    return _sidecar(Path(csv_path), ".studies.json")


def _sidecar(path: Path, suffix: str) -> Path:
    stem = path.name[:-4] if path.name.lower().endswith(".csv") else path.name
    return path.with_name(stem + suffix)


def _user() -> str:
    with contextlib.suppress(Exception):  # no login name (a container, a service account)
        return getpass.getuser()
    return "unknown"


def _read_studies(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the studies list: {exc}", path) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError("the studies list must map each exam_id to a path", path)
    return data


# -- reading the CSV -------------------------------------------------------------------------
def read_picks_csv(path: str | Path) -> tuple[list[Pick], bool]:
    """The picks of a CSV and whether it has a patient_name column; InputError naming the line."""
    path = Path(path)
    try:
        text = csv_safe.read_text(path)  # without a BOM (Excel writes one); a \r inside a cell kept
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except UnicodeDecodeError:
        raise InputError("not a text CSV file (not UTF-8)", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from exc
    reader = csv_safe.reader(text, strip=True)   # cells as written: a neutralising quote taken off
    try:
        header = next(reader, [])
        if not header:
            raise InputError(f"empty file: a picks CSV starts with the header {','.join(CSV_COLUMNS)}", path)
        _check_header(header, path)
        picks: dict[tuple[str, str], tuple[Pick, int]] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InputError(f"line {line}: {len(row)} fields, the header has {len(header)}", path)
            try:
                pick = pick_from_row(dict(zip(header, row)))
            except ValueError as exc:
                raise InputError(f"line {line}: {exc}", path) from None
            if pick.key in picks:
                raise InputError(f"line {line}: a second row for {pick.exam_id} {pick.level} "
                                 f"(the first is on line {picks[pick.key][1]})", path)
            picks[pick.key] = (pick, line)
    except csv_safe.Error as exc:
        raise InputError(f"line {reader.line_num}: not a readable CSV: {exc}", path) from None
    return [pick for pick, _ in picks.values()], PATIENT_NAME_COLUMN in header


def _check_header(header: list[str], path: Path) -> None:
    if any(h.endswith("_slice_num") for h in header):
        raise InputError("line 1: this is the seed's exam_id,L3_slice_num format, not a picks CSV "
                         "(ctviewer locate-eval reads it as truth)", path)
    missing = [c for c in CSV_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS and c != PATIENT_NAME_COLUMN]
    doubled = sorted({c for c in header if header.count(c) > 1})
    problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + \
               ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + \
               ([f"column(s) twice: {', '.join(doubled)}"] if doubled else [])
    if problems:
        raise InputError(f"line 1: not a picks CSV: {'; '.join(problems)}", path)


def pick_from_row(row: dict[str, str]) -> Pick:
    """A Pick from one CSV row of text; ValueError saying which value is wrong."""
    pick = Pick(
        exam_id=row["exam_id"], level=row["level"],
        slice_index=_parse(row, "slice_index", int, minimum=0),
        z_mm=_parse(row, "z_mm", float),
        instance_number=_parse(row, "instance_number", int),
        slice_thickness_mm=_parse(row, "slice_thickness_mm", float, minimum=0, strict=True),
        spacing_mm=_parse(row, "spacing_mm", float, minimum=0, strict=True),
        source=row["source"], confidence=_parse(row, "confidence", float, minimum=0, maximum=1),
        status=row["status"], reviewed_at=row["reviewed_at"], patient_name=row.get(PATIENT_NAME_COLUMN, ""))
    if pick.reviewed_at:
        try:
            datetime.fromisoformat(pick.reviewed_at)
        except ValueError:
            raise ValueError(f"reviewed_at '{pick.reviewed_at}' is not an ISO 8601 time") from None
    problem = _pick_problem(pick)
    if problem:
        raise ValueError(problem)
    return pick


def _pick_problem(pick: Pick) -> str:
    """What makes a pick impossible to record, or ''."""
    if not pick.exam_id.strip():
        return "exam_id is empty"
    if pick.level not in KNOWN_LEVELS:
        return f"unknown level '{pick.level}' (known: {known_levels_text()})"
    if pick.status not in STATUSES:
        return f"unknown status '{pick.status}' (known: {', '.join(STATUSES)})"
    if pick.status in _NEEDS_SLICE and pick.slice_index is None:
        return f"status {pick.status} needs a slice_index"
    if pick.status in NO_SLICE and pick.slice_index is not None:
        return f"status {pick.status} but slice_index {pick.slice_index}: clear the slice or change the status"
    return ""


def _parse(row: dict, column: str, kind, minimum=None, maximum=None, strict=False):
    text = row[column]
    if text == "":
        return None
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number (with a decimal point)"
        raise ValueError(f"{column} '{text}' is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise ValueError(f"{column} '{text}' is not a finite number")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise ValueError(f"{column} {text} must be {'above' if strict else 'at least'} {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{column} {text} must be at most {maximum}")
    return value


def _text(value) -> str:
    return "" if value is None else str(value)


def _number(value: float | None, digits: int) -> str:
    """A short decimal text: 2.5 -> '2.5', 120.0 -> '120', None -> ''."""
    if value is None:
        return ""
    text = f"{round(float(value), digits):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text

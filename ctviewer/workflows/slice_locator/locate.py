"""Locating L3 and T12 in a scan: projections -> the locator's heatmaps -> picks.

The decoding is a pure function (:func:`decode_picks`): the best row of each level's heatmap (refined
to a fraction of a row by the centroid around the maximum), converted to patient z, then to the
nearest slice of the volume as ctviewer shows it, its z and its DICOM InstanceNumber. The peak value
is the confidence; below the model's threshold the level is ``not_in_scan`` with no slice.

:func:`locate_paths` runs a whole batch (files and folders of studies, as ``ctviewer locate`` does):
a study that cannot be read, or is not a CT scan, becomes one warning and the batch goes on.

Keras is never imported here: a locator is passed in (``ctviewer.ml.locator.Locator`` or anything
with ``card``, ``levels``, ``threshold`` and ``heatmaps(projections)``).

:func:`locate_and_count` is what users get: the network's picks cross-checked with the classical
vertebra count (:mod:`~ctviewer.workflows.slice_locator.combine` has the rules), and any level
T1…L5, S1 — those the network has no channel for come from the count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ctviewer.errors import Cancelled, InputError
from ctviewer.ml.heatmap import best_row
from ctviewer.progress import CancelToken, Progress, no_progress
from ctviewer.workflows.slice_locator.picks import KNOWN_LEVELS, LEVELS, Pick, known_levels_text

#: Rows either side of the maximum whose centroid refines the best row.
#: A CT scan in HU has bone above this; a volume without any voxel this bright is no CT to locate in.
MIN_BONE_HU = 150.0
#: Files in a folder of studies that are ours or notes, never scans (skipped without a warning).
_NOT_SCANS = (".csv", ".json", ".jsonl", ".txt", ".md", ".toml", ".log", ".labels.json", ".label.txt")


# -- decoding (pure) -------------------------------------------------------------------------------

def slice_fields(projections, slice_index: int) -> dict:
    """slice_index, z_mm and instance_number of one slice of the scan the projections come from."""
    k = int(slice_index)
    numbers = projections.instance_numbers
    number = numbers[k] if numbers is not None and 0 <= k < len(numbers) else None
    return {"slice_index": k, "z_mm": round(float(projections.slice_z_mm[k]), 3),
            "instance_number": None if number is None else int(number)}


def decode_picks(heatmaps: dict[str, np.ndarray], projections, levels, threshold: float, exam_id: str,
                 source: str) -> list[Pick]:
    """One pick per level from per-row heatmaps over ``projections`` (see the module docstring)."""
    picks = []
    for level in levels:
        h = np.asarray(heatmaps[level])
        if h.shape != (projections.rows,):
            raise ValueError(f"{level} heatmap has shape {h.shape}, the projections have {projections.rows} rows")
        row, confidence = best_row(h)
        common = dict(exam_id=exam_id, level=level, slice_thickness_mm=projections.slice_thickness_mm,
                      spacing_mm=round(float(projections.slice_spacing_mm), 4), source=source,
                      confidence=round(confidence, 4))
        z = projections.row_to_z(row)
        if confidence < threshold or not projections.contains_z(z):
            picks.append(Pick(slice_index=None, z_mm=None, instance_number=None, status="not_in_scan", **common))
        else:
            picks.append(Pick(**slice_fields(projections, projections.z_to_slice(z)), status="predicted", **common))
    return picks


def model_source(locator) -> str:
    """The ``source`` column for a model's picks: its name and version."""
    card = locator.card
    return f"{card.name} v{card.version}" if getattr(card, "version", "") else card.name


def locate(volume, locator, levels=LEVELS, exam_id: str = "", projections=None,
           progress: Progress | None = None, cancel: CancelToken | None = None) -> list[Pick]:
    """The picks (predicted or not_in_scan) of ``levels`` in one volume; pass ``projections`` when
    they are already made (the review window and ``--png`` need them too)."""
    progress = progress or no_progress
    levels = check_levels(levels, locator)
    if projections is None:
        from ctviewer.workflows.slice_locator.projections import make_projections

        projections = make_projections(volume, progress=lambda f, m="": progress(0.8 * f, m), cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(0.85, "running the locator")
    heatmaps = locator.heatmaps(projections)
    progress(1.0, "")
    exam_id = exam_id or (exam_id_for(volume.source) if volume.source else volume.name or "study")
    return decode_picks(heatmaps, projections, levels, locator.threshold, exam_id, model_source(locator))


def check_known(levels) -> tuple[str, ...]:
    """``levels`` as a tuple; InputError naming those that are no vertebra's name."""
    levels = tuple(levels)
    unknown = [lv for lv in levels if lv not in KNOWN_LEVELS]
    if unknown:
        raise InputError(f"unknown level(s) {', '.join(unknown)} (known: {known_levels_text()})")
    return levels


def check_levels(levels, locator) -> tuple[str, ...]:
    """``levels``, all of which the locator network must have a channel for."""
    levels = check_known(levels)
    missing = [lv for lv in levels if lv not in tuple(locator.levels)]
    if missing:
        raise InputError(f"model {locator.card.name} locates {', '.join(locator.levels)}, not {', '.join(missing)}")
    return levels


def locate_and_count(volume, locator, levels=LEVELS, exam_id: str = "", projections=None, warnings=None,
                     progress: Progress | None = None, cancel: CancelToken | None = None):
    """The final picks of ``levels`` in one volume: the network's (for the levels it has a channel for;
    ``locator`` None: none) cross-checked with the vertebra count, per
    :func:`~ctviewer.workflows.slice_locator.combine.combine`.

    Returns (picks, notes: level -> why, the SpineCount or None). A count that fails adds a line to
    ``warnings`` and leaves the network's picks as they are.
    """
    from ctviewer.workflows.slice_locator.combine import combine

    progress = progress or no_progress
    levels = check_known(levels)
    if projections is None:
        from ctviewer.workflows.slice_locator.projections import make_projections

        projections = make_projections(volume, progress=lambda f, m="": progress(0.6 * f, m), cancel=cancel)
    exam_id = exam_id or (exam_id_for(volume.source) if volume.source else volume.name or "study")
    own = [lv for lv in levels if locator is not None and lv in tuple(locator.levels)]
    network = {}
    if own:
        network = {p.level: p for p in locate(volume, locator, own, exam_id=exam_id, projections=projections,
                                              progress=lambda f, m="": progress(0.6 + 0.2 * f, m), cancel=cancel)}
    progress(0.8, "counting the vertebrae")
    spine = count_spine(volume, warnings if warnings is not None else [], cancel)
    progress(1.0, "")
    combined = combine(network, spine, levels, exam_id, projections)
    return [c.pick for c in combined], {c.pick.level: c.note for c in combined if c.note}, spine


# -- batches ---------------------------------------------------------------------------------------

@dataclass
class StudyResult:
    """What locating one study gave: its picks, or the reason it could not be located."""

    path: Path
    exam_id: str
    picks: list[Pick] = field(default_factory=list)
    projections: object | None = None
    warnings: list[str] = field(default_factory=list)
    #: One line naming the file and the problem; "" when located.
    error: str = ""
    #: True when the error is ours, not the input's (a bug, out of memory).
    internal: bool = False
    #: From the image header (written to the CSV only when the user asks for names).
    patient_name: str = ""
    #: The classical vertebra count (:mod:`ctviewer.workflows.slice_locator.vertebrae`), a cross-check
    #: of the picks shown beside them; None where it was not made.
    spine: object | None = None
    #: level -> why its pick is what it is (from the count, levels disagree, ...), for the audit trail.
    notes: dict[str, str] = field(default_factory=dict)


def exam_id_for(path: str | Path) -> str:
    """The default exam id: the file name without its format suffix, or the folder's name."""
    from ctviewer.io.label_files import base_name

    path = Path(path)
    return path.name if path.is_dir() else base_name(path)


def find_studies(paths) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders into studies: a file is one study; a folder holding DICOM files is
    one study (its largest series); any other folder is a folder of studies (files or subfolders).

    Returns the studies and, for paths that do not exist or hold nothing, (path, reason).
    """
    studies: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if not path.exists():
            problems.append((path, "no such file or folder"))
        elif path.is_file() or _holds_dicom(path):
            studies.append(path)
        else:
            found = _studies_in(path)
            if not found:
                problems.append((path, "folder holds no study"))
            studies.extend(found)
    return list(dict.fromkeys(studies)), problems


def _studies_in(folder: Path) -> list[Path]:
    children = sorted(c for c in folder.iterdir() if not c.name.startswith("."))
    label_maps = {_label_map_of(c) for c in children if c.is_file()} - {None}
    found = []
    for child in children:
        if child.is_dir():
            found.extend([child] if _holds_dicom(child) else _studies_in(child))
        elif not child.name.lower().endswith(_NOT_SCANS) and child not in label_maps and not _is_label_map(child):
            found.append(child)
    return found


def _holds_dicom(folder: Path) -> bool:
    """True when a folder directly holds a DICOM series: a file with the 'DICM' mark, or files named
    .dcm/.ima with no other scans beside them (a stray text file named .dcm among NIfTI files is one
    broken study of a folder of studies, not a series that hides the others)."""
    if not folder.is_dir():
        return False
    named = other = False
    for entry in os.scandir(folder):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        try:
            with open(entry.path, "rb") as fh:
                if fh.read(132)[128:132] == b"DICM":
                    return True
        except OSError:
            continue
        if entry.name.lower().endswith((".dcm", ".ima")):
            named = True
        elif not entry.name.lower().endswith(_NOT_SCANS):
            other = True
    return named and not other


def _label_map_of(image: Path) -> Path | None:
    from ctviewer.io.label_files import find_label_file

    return find_label_file(image)


def _is_label_map(path: Path) -> bool:
    """Label maps lying beside the scans (``NAME_labels.nii.gz``, or with a ``.labels.json`` table)."""
    from ctviewer.io.label_files import base_name, table_sidecar

    return base_name(path).lower().endswith(("_labels", "_label", "_seg")) or table_sidecar(path).is_file()


def assign_exam_ids(studies, known: dict[str, str] | None = None) -> dict[Path, str]:
    """Exam ids for a batch: the one already recorded for that path (``known``: exam_id -> path),
    else the name; a name already used by another study gets its folder's name in front
    (``patient7/SE2``), then a number (``SE2-2``)."""
    known = dict(known or {})
    by_path = {str(Path(p).resolve()): exam for exam, p in known.items()}
    taken = set(known)
    ids: dict[Path, str] = {}
    for path in studies:
        exam = by_path.get(str(path.resolve()))
        if exam is None:
            name = exam_id_for(path)
            candidates = [name, f"{path.resolve().parent.name}/{name}"]
            exam = next((c for c in candidates if c not in taken), None)
            n = 2
            while exam is None:
                exam = f"{name}-{n}" if f"{name}-{n}" not in taken else None
                n += 1
        taken.add(exam)
        ids[path] = exam
    return ids


def read_ct(path: Path, progress: Progress | None = None, cancel: CancelToken | None = None):
    """The study at ``path`` in display orientation, refused (InputError) unless it is a CT scan."""
    from ctviewer.io.registry import examine, load

    items = examine(path)
    volume = load(items[0], progress=progress, cancel=cancel)
    if len(items) > 1:
        volume.warnings.append(f"{len(items)} series found; used the largest: {items[0].description}")
    check_ct(volume, path)
    plane = acquisition_plane(volume)
    if plane != "axial":
        volume.warnings.append(
            f"acquired as {plane} slices: located on the axial planes reformatted from them (slice numbers "
            f"count those planes from the feet, {float(volume.spacing[0]):g} mm apart; no DICOM instance numbers)")
    return volume


def acquisition_plane(volume) -> str:
    """"axial", "sagittal" or "coronal": how the scan's slices lay as stored, before it was reoriented
    for display (a reoriented sagittal series has axial planes, but none of them is a slice of the file)."""
    from ctviewer.imaging.orientation import stored_grid

    grid = stored_grid(volume)
    if grid is None or grid.perm[0] == 0:
        return "axial"
    normal = np.abs(np.asarray(grid.direction, dtype=float)[:, 0])   # stored axis 0: the slices' stacking
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def check_ct(volume, path) -> None:
    if volume.is_photo:
        raise InputError("is a photo, not a CT scan", path)
    if volume.modality and volume.modality.upper() != "CT":
        raise InputError(f"is a {volume.modality} image, not CT", path)
    if volume.array.size == 0 or float(volume.array.max()) < MIN_BONE_HU:
        raise InputError(f"no voxel reaches {MIN_BONE_HU:g} HU: no bone, so no spine to locate levels in "
                         "(a water phantom, or not a CT scan in Hounsfield units: a label map?)", path)


def locate_paths(paths, locator, levels=LEVELS, progress: Progress | None = None,
                 cancel: CancelToken | None = None, known: dict[str, str] | None = None,
                 keep_projections: bool = False) -> Iterator[StudyResult]:
    """Locate ``levels`` in every study under ``paths`` (see :func:`find_studies`), one result each:
    the network's picks cross-checked with the vertebra count (:func:`locate_and_count`).

    ``locator`` is a locator or a function returning one, called when the first study has been
    read (a batch of bad paths never loads the model); None: every level comes from the count. ``known`` (exam_id -> path, as in a picks
    file's studies) keeps exam ids stable across runs. Results keep their projections only with
    ``keep_projections`` (they are a few MB a study). Cancelling raises :class:`Cancelled`.
    """
    from ctviewer.workflows.slice_locator.projections import make_projections

    progress = progress or no_progress
    levels = check_known(levels)
    studies, problems = find_studies(paths)
    for path, reason in problems:
        yield StudyResult(path, "", error=str(InputError(reason, path)))
    ids = assign_exam_ids(studies, known)
    get_locator = _once(locator) if callable(locator) and not hasattr(locator, "heatmaps") else (lambda: locator)
    n = len(studies)
    for i, path in enumerate(studies):
        if cancel is not None:
            cancel.raise_if_cancelled()

        def part(lo: float, hi: float, _i=i, _path=path):
            return lambda f, m="": progress((_i + lo + (hi - lo) * f) / n, f"{_path.name}: {m}" if m else _path.name)

        result = StudyResult(path, ids[path])
        try:
            volume = read_ct(path, progress=part(0.0, 0.5), cancel=cancel)
            projections = make_projections(volume, progress=part(0.5, 0.9), cancel=cancel)
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:  # one broken study must not end a night's batch
            _failed(result, exc)
            yield result
            continue
        # A model that cannot be loaded ends the batch: no study could be located.
        model = get_locator()
        try:
            result.warnings = list(dict.fromkeys(volume.warnings + projections.warnings))
            result.picks, result.notes, result.spine = locate_and_count(
                volume, model, levels, exam_id=result.exam_id, projections=projections, warnings=result.warnings,
                progress=part(0.9, 1.0), cancel=cancel)
            result.projections = projections if keep_projections else None
            result.patient_name = patient_name(volume)
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:
            _failed(result, exc)
        yield result
    progress(1.0, "")


def count_spine(volume, warnings: list[str], cancel: CancelToken | None = None):
    """The vertebra count of a located study, or None with a warning: it is a cross-check, and its
    failure must not cost the study its picks."""
    from ctviewer.workflows.slice_locator.vertebrae import count_vertebrae

    try:
        return count_vertebrae(volume, cancel=cancel)
    except (Cancelled, KeyboardInterrupt):
        raise
    except Exception as exc:
        warnings.append(f"vertebrae not counted: {exc}")
        return None


def _failed(result: StudyResult, exc: Exception) -> None:
    """Note why a study could not be located: the input's fault, or ours (``internal``), by the rule
    every batch verb follows (:func:`ctviewer.workflows.batch.failure_of`)."""
    from ctviewer.workflows.batch import failure_of

    failure = failure_of(result.path, exc)
    result.error, result.internal = failure.line, failure.internal


def _once(factory: Callable) -> Callable:
    made = []

    def get():
        if not made:
            made.append(factory())
        return made[0]

    return get


def patient_name(volume) -> str:
    """The patient's name from the image's header, where it has one ('' otherwise)."""
    name = str(volume.meta.get("patient_name", "") or "")
    files = volume.meta.get("dicom_files") or []
    if not name and files:
        try:
            import pydicom

            ds = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=["PatientName"])
            name = str(ds.get("PatientName", "") or "")
        except Exception:  # a name is a nicety: a header that will not give one leaves it empty
            name = ""
    return name.replace("^", " ").strip()

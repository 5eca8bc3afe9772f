"""What the user opened for review, as a picks file and an ordered list of studies (no Qt).

- a picks CSV: its rows, and the paths its ``NAME.studies.json`` sidecar gives;
- a folder of studies: each image file or DICOM series folder inside is one study (as
  ``ctviewer locate`` finds them); the picks go to ``picks.csv`` in that folder, reopened and
  resumed when it is already there;
- a DICOM series folder or image files: each is one study; ``picks.csv`` beside the first.

Exam ids are those ``ctviewer locate`` gives (the file name without its format suffix, or the
folder's name), and stay what the picks file already recorded for a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ctviewer.errors import InputError
from ctviewer.workflows.slice_locator.locate import assign_exam_ids, find_studies
from ctviewer.workflows.slice_locator.picks import LEVELS, PicksFile, level_order

DEFAULT_CSV_NAME = "picks.csv"


@dataclass
class ReviewSource:
    picks: PicksFile
    #: Studies in queue order.
    exam_ids: list[str]
    #: exam_id -> where the study is; a study without one cannot be shown (the queue says why).
    paths: dict[str, Path] = field(default_factory=dict)
    #: The levels reviewed: L3 and T12, then any other level the CSV holds (``locate --levels``), head first.
    levels: tuple[str, ...] = LEVELS

    def __post_init__(self):
        extra = {p.level for p in self.picks.picks} - set(self.levels)
        self.levels = tuple(self.levels) + tuple(sorted(extra, key=level_order))


def open_review(paths, csv_path: str | Path | None = None) -> ReviewSource:
    """Resolve the user's paths (see the module docstring); InputError for what cannot be used."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("nothing to review: give a folder of studies, study files or a picks CSV")
    if len(paths) == 1 and paths[0].suffix.lower() == ".csv":
        return _from_csv(PicksFile.open(paths[0]))
    studies, problems = find_studies(paths)
    if problems:
        path, reason = problems[0]
        raise InputError(reason, path)
    if csv_path is None:
        folder_of_studies = len(paths) == 1 and paths[0].is_dir() and studies != [paths[0]]
        csv_path = (paths[0] if folder_of_studies else paths[0].parent) / DEFAULT_CSV_NAME
    picks = PicksFile.open_or_create(csv_path)
    ids = assign_exam_ids(studies, picks.studies)
    for study, exam in ids.items():
        picks.set_study_path(exam, study)
    order = list(dict.fromkeys(ids.values()))
    return ReviewSource(picks, order, {exam: Path(picks.studies[exam]) for exam in order})


def _from_csv(picks: PicksFile) -> ReviewSource:
    studies = picks.studies
    order = picks.exam_ids() + sorted(set(studies) - set(picks.exam_ids()))
    return ReviewSource(picks, order, {exam: Path(studies[exam]) for exam in order if exam in studies})

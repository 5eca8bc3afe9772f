"""Studies open in the app, written as training files that the segmentation tasks read.

Training runs in a child process (:mod:`ctviewer.ml.child`) that reads its studies from the config's
``data.sources``, so a study the user has open (and labelled) is handed over as files:
``FOLDER/images/NAME.nii.gz`` + ``FOLDER/labels/NAME.nii.gz``, the layout
:func:`ctviewer.workflows.segmentation.cases.find_cases` reads back as cases on the same grid.

Both files get the grid of the image's file (array order and geometry, not the display order), the label
file its label table beside it (``NAME.labels.json``), and each is written atomically through
:mod:`ctviewer.io.writers`. A study whose label map is empty (nothing to learn), is in colour, or whose
labels lie on another grid is refused with an :class:`InputError` naming the study.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, no_progress

#: Characters kept in a file name made from a study's name; anything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
IMAGES, LABELS = "images", "labels"


def export_training_pairs(studies: Iterable[tuple[str, Volume, object]], folder: str | Path,
                          progress: Progress | None = None, cancel: CancelToken | None = None) -> Path:
    """Write each ``(name, image, labels)`` as an image / label NIfTI pair under ``folder``; returns ``folder``.

    ``labels`` is an integer array of the image's shape, a label :class:`Volume` or a ``LabelMap``
    (its table is kept). Every study is checked before anything is written; when writing fails or is
    cancelled, the files this call (over)wrote are removed again, so a new folder never holds half an export.
    """
    from ctviewer.imaging.orientation import to_stored
    from ctviewer.io.label_files import table_sidecar
    from ctviewer.io.writers import write_label_map, write_volume

    progress = progress or no_progress
    folder = Path(folder)
    pairs = [_checked(name, image, labels) for name, image, labels in studies]
    if not pairs:
        raise InputError("no studies to export for training", folder)
    names = file_names([name for name, _, _ in pairs])
    written: list[Path] = []
    try:
        for sub in (IMAGES, LABELS):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for n, ((study, image, label_map), name) in enumerate(zip(pairs, names)):
            progress(n / len(pairs), f"writing {study}")
            if cancel is not None:
                cancel.raise_if_cancelled()
            label_path, image_path = folder / LABELS / f"{name}.nii.gz", folder / IMAGES / f"{name}.nii.gz"
            written += [label_path, table_sidecar(label_path), image_path]   # before writing: removed on failure
            # labels first: an image that is already there always has its labels beside it
            # both on the grid of the image's file, as nnU-Net and TotalSegmentator pairs are
            write_label_map(label_map, label_path, image=image)
            write_volume(to_stored(image), image_path)
    except BaseException as exc:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):   # a folder that cannot be made (read-only place): the user's to fix
            raise InputError(f"cannot write training files: {exc.strerror or exc}", folder) from None
        raise
    progress(1.0, "")
    return folder


def _checked(name: str, image: Volume, labels):
    """(name, image, LabelMap on the image's exact grid), or InputError naming the study."""
    from ctviewer.data.labels import LabelMap, LabelTable
    from ctviewer.workflows.segmentation.cases import case_from_study

    name = str(name)
    if image.is_rgb:
        raise InputError(f"study '{name}' is a colour image; segmentation models train on scans")
    try:
        case = case_from_study(name, image, labels)
    except InputError as exc:
        raise InputError(f"study '{name}': {exc.reason}") from None
    if not np.any(case.labels):
        raise InputError(f"study '{name}' has an empty label map: nothing to learn from it")
    table = getattr(labels, "table", None) or LabelTable()
    volume = image.with_array(case.labels, modality="", window=None, name=f"{name} labels", source="")
    return name, image, LabelMap(volume, table)


def studies_folder(model_name: str) -> Path:
    """A new folder for the studies a model is trained on, in the user's models folder
    (``training_studies/MODEL``; ``MODEL-2``… when that name was trained on studies before)."""
    from ctviewer.ml.registry import user_models_dir

    base = user_models_dir() / "training_studies"
    folder, n = base / file_names([model_name])[0], 2
    while folder.exists():
        folder, n = base / f"{file_names([model_name])[0]}-{n}", n + 1
    return folder


def file_names(names: list[str]) -> list[str]:
    """Safe, distinct file names (without suffix) for study names, in the same order."""
    out: list[str] = []
    taken: set[str] = set()
    for name in names:
        base = _UNSAFE.sub("_", name).strip("._-") or "study"
        # find_cases drops nnU-Net's "_0000" channel suffix from image names only
        base = re.sub(r"_0000$", "_0000-study", base)
        candidate, n = base, 2
        while candidate.lower() in taken:   # distinct on case-insensitive file systems too
            candidate, n = f"{base}-{n}", n + 1
        taken.add(candidate.lower())
        out.append(candidate)
    return out

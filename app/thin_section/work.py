"""What the thin-section dock runs in workers: opening a project photo as a study, thumbnails,
predictions. No Qt here: these functions run on pool threads and hand back plain values.

Networks never run in this process (TensorFlow and VTK's OpenGL crash one process): predictions go
to the shared model process (:func:`ctviewer.ml.child.shared_process`), as issue 5's
``app/docks/segmentation_run.py`` does for CT segmentation.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.layers import LabelLayer
from ctviewer.data.study import Study
from ctviewer.errors import InputError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
PROJECT_FILE = "ctviewer-project.json"
LABELS_LAYER = "labels"
PREDICTION_LAYER = "prediction"
PREDICT = "ctviewer.workflows.thin_section.predict"


def looks_like_project(path) -> bool:
    """A folder opened with ``ctviewer DIR`` is a thin-section project when it has a project file,
    the seed's ``images_prepped_*`` folders, ``images/`` + ``labels/``, or photos and no DICOM files."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / PROJECT_FILE).is_file() or ((path / "images").is_dir() and (path / "labels").is_dir()):
        return True
    entries = list(path.iterdir())
    if any(p.is_dir() and p.name.startswith("images_prepped") for p in entries):
        return True
    suffixes = {p.suffix.lower() for p in entries if p.is_file()}
    from ctviewer.io.tiff_stack import is_slice_folder

    if is_slice_folder(path):  # a scanner's numbered grey slices open as a volume, not as photos
        return False
    return bool(suffixes & set(PHOTO_SUFFIXES)) and ".dcm" not in suffixes


def open_project(folder, progress=None, cancel=None):
    from ctviewer.workflows.thin_section.project import ThinSectionProject

    return ThinSectionProject.open(Path(folder), progress=progress, cancel=cancel)


def copy_table(table: LabelTable) -> LabelTable:
    """Each layer edits its own table (renaming a class in one must not rename it in the project's)."""
    return LabelTable.from_json(table.to_json())


def ids_layer(image, ids: np.ndarray, table: LabelTable, name: str, source: str = "") -> LabelLayer:
    """A label layer on the photo's one-slice grid holding the class ids ``ids`` [y, x]."""
    if ids.shape != tuple(image.shape[1:3]):
        raise InputError(f"is {ids.shape[1]}×{ids.shape[0]} pixels but the photo is "
                         f"{image.shape[2]}×{image.shape[1]}", source or None)
    volume = image.with_array(np.ascontiguousarray(ids, dtype=np.uint8)[None], window=None, modality="",
                              name=name, source=source)
    return LabelLayer(LabelMap(volume, copy_table(table)), name=name)


def open_photo(project, item, progress=None, cancel=None) -> Study:
    """The project photo as a study: its prediction layer (if saved) under its label layer (from the label
    file, else empty with the project's classes). The label layer is last: the one painting edits."""
    from ctviewer.io.registry import examine
    from ctviewer.workflows.open import open_loadable
    from ctviewer.workflows.thin_section.photos import read_label_image

    study = open_loadable(examine(item.image_path)[0], progress=progress, cancel=cancel)
    image = study.image
    if not image.is_photo or image.shape[0] != 1:
        raise InputError("is not a one-image photo", item.image_path)
    prediction = item.prediction_path
    if prediction is not None and Path(prediction).is_file():
        try:
            ids = read_label_image(prediction, project.table)
            study.layers.append(ids_layer(image, ids, project.table, PREDICTION_LAYER, str(prediction)))
        except InputError as exc:   # a stale prediction must not keep the photo from opening
            image.warnings.append(f"prediction not shown: {exc}")
    if item.label_path is not None and Path(item.label_path).is_file():
        # a label file that cannot be read stops the opening: an empty layer saved over it would lose it
        ids = read_label_image(item.label_path, project.table)
        study.layers.append(ids_layer(image, ids, project.table, LABELS_LAYER, str(item.label_path)))
    else:
        blank = np.zeros(image.shape[1:3], np.uint8)
        study.layers.append(ids_layer(image, blank, project.table, LABELS_LAYER))
    return study


def _passable(function, progress, cancel) -> dict:
    """progress/cancel for a function that takes them (segment_photo's contract does not promise it)."""
    names = inspect.signature(function).parameters
    return {k: v for k, v in (("progress", progress), ("cancel", cancel)) if k in names and v is not None}


def predict_photo(image_path, entry, table, progress=None, cancel=None) -> np.ndarray:
    """Class ids [y, x] of one photo by a thin_section model, computed in the model process; a model
    trained with other classes is refused with the reason (before the network is loaded)."""
    import importlib

    from ctviewer.ml.child import shared_process
    from ctviewer.workflows.thin_section.photos import read_photo_rgb

    predict = importlib.import_module(PREDICT)
    predict.check_model_classes(entry.card, table)
    rgb = read_photo_rgb(image_path)
    if progress:
        progress(0.05, "running the model")
    kwargs = _passable(predict.segment_photo, progress, cancel)
    return shared_process().call(f"{PREDICT}:segment_photo", rgb, str(entry.path), **kwargs)


def predict_folder(project, out, entry, progress=None, cancel=None) -> tuple[list[dict], list[str]]:
    """Every photo of the project into ``out`` by :func:`ctviewer.workflows.thin_section.predict.predict_folder`,
    run in the model process: (rows, problems). Its folder reader takes the photos lying in one folder, so a
    project whose photos lie in several (the seed's ``images_prepped_train`` and ``_test``) gets one output
    subfolder each."""
    import importlib

    from ctviewer.ml.child import shared_process

    importlib.import_module(PREDICT).check_model_classes(entry.card, project.table)
    folders = sorted({Path(item.image_path).parent for item in project.images})
    rows, problems = [], []
    for n, folder in enumerate(folders):
        target = Path(out) if len(folders) == 1 else Path(out) / folder.name

        def part(fraction, message="", _n=n):
            if progress:
                progress((_n + fraction) / len(folders), message)

        result = shared_process().call(f"{PREDICT}:predict_folder", str(folder), str(target), str(entry.path),
                                       progress=part, cancel=cancel)
        rows += [dict(row) for row in result]
        problems += list(getattr(result, "problems", []))
    return rows, problems


def thumbnails(paths, size: int, progress=None, cancel=None) -> list[tuple[str, np.ndarray | None, str]]:
    """(path, small RGB [h, w, 3] or None, why not) per photo; a bad photo does not stop the others."""
    from PIL import Image

    from ctviewer.workflows.thin_section.photos import read_photo_rgb

    out = []
    for n, path in enumerate(paths):
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            image = Image.fromarray(read_photo_rgb(path))
        except InputError as exc:
            out.append((str(path), None, exc.reason if hasattr(exc, "reason") else str(exc)))
            continue
        image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        out.append((str(path), np.asarray(image), ""))
        if progress:
            progress((n + 1) / len(paths), Path(path).name)
    return out

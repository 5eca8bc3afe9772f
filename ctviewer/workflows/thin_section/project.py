"""A folder of thin-section photos as a project: each photo with its labels, prediction and status.

Three layouts are read, and written in their own shape so other tools still read them:

* ``seed``: the keras-segmentation layout of the thin-section seed, ``images_prepped_train/`` +
  ``annotations_prepped_train/`` (and ``*_test``); labels are PNGs named by the photo's stem;
* ``pairs``: ``images/`` + ``labels/``;
* ``flat``: photos in the folder itself; labels go to ``labels/`` (``NAME_labels.png`` beside a
  photo, ctviewer's default for a single photo, is read too).

Labels and predictions (``predictions/NAME.png``) are always matched to photos by file stem, never
by listing order. Statuses come from the files present, plus what the user set (reviewed, a split),
kept in ``FOLDER/ctviewer-project.json``; losing that file loses no labels, only those overrides.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctviewer.data.labels import LabelTable
from ctviewer.errors import InputError
from ctviewer.io.label_files import PHOTO_SUFFIXES, base_name
from ctviewer.progress import CancelToken, Progress, step_progress
from ctviewer.workflows.thin_section.photos import image_size, write_label_image

STATUSES = ("unlabelled", "labelled", "predicted", "reviewed")
PROJECT_FILE = "ctviewer-project.json"
PROJECT_FORMAT, PROJECT_VERSION = "ctviewer-thin-section-project", 1
PREDICTIONS = "predictions"
_SEED_SPLITS = ("train", "test")
#: The file each status needs; a stored status whose file is gone falls back to the derived one.
_NEEDS = {"labelled": "label_path", "reviewed": "label_path", "predicted": "prediction_path"}


@dataclass
class ProjectImage:
    name: str                     # file stem, unique in the project
    image_path: Path
    label_path: Path | None       # existing label image, if any
    prediction_path: Path | None
    split: str                    # "train" | "test" | "" (not assigned)
    status: str                   # one of STATUSES


def _is_photo(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in PHOTO_SUFFIXES


def _by_stem(folder: Path) -> dict[str, Path]:
    """Image files of a folder by stem; a PNG wins over another format with the same stem."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir(), key=lambda p: (p.suffix.lower() == ".png", p.name)) if folder.is_dir() else []:
        if _is_photo(path):
            files[base_name(path)] = path
    return files


def detect_layout(folder: Path) -> str:
    if any((folder / f"images_prepped_{s}").is_dir() for s in _SEED_SPLITS):
        return "seed"
    return "pairs" if (folder / "images").is_dir() else "flat"


def _groups(folder: Path, layout: str) -> list[tuple[str, dict[str, Path], Path, dict[str, Path]]]:
    """(split, photos by stem, label folder, labels by stem) for each photo folder of a layout."""
    if layout == "seed":
        return [(s, _by_stem(folder / f"images_prepped_{s}"), folder / f"annotations_prepped_{s}",
                 _by_stem(folder / f"annotations_prepped_{s}"))
                for s in _SEED_SPLITS if (folder / f"images_prepped_{s}").is_dir()]
    if layout == "pairs":
        return [("", _by_stem(folder / "images"), folder / "labels", _by_stem(folder / "labels"))]
    files = _by_stem(folder)
    labels = _by_stem(folder / "labels")
    for stem in [s for s in files if s.endswith("_labels") and s[: -len("_labels")] in files]:
        labels.setdefault(stem[: -len("_labels")], files.pop(stem))
    return [("", files, folder / "labels", labels)]


def _size_problem(photo: Path, labels: Path) -> str | None:
    """Why a label image cannot belong to its photo (different size), or None."""
    photo_size, label_size = image_size(photo), image_size(labels)
    if photo_size == label_size:
        return None
    return (f"{labels}: the label image is {label_size[0]}×{label_size[1]} but its photo {photo} is "
            f"{photo_size[0]}×{photo_size[1]}")


class ThinSectionProject:
    """The photos of a folder with their labels, predictions and statuses."""

    def __init__(self, folder: Path, layout: str, images: list[ProjectImage], table: LabelTable,
                 problems: list[str], stored: dict):
        self.folder, self.layout, self.images, self.table = folder, layout, images, table
        self.problems = problems
        self._stored = stored  # the project file's content, rewritten whole on each change

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, folder, progress: Progress | None = None, cancel: CancelToken | None = None) -> "ThinSectionProject":
        from ctviewer.imaging.bins import thin_section_table

        folder = Path(folder)
        if not folder.is_dir():
            raise InputError("not a folder of thin-section photos", folder)
        problems: list[str] = []
        stored, table = _read_project_file(folder / PROJECT_FILE, problems)
        layout = detect_layout(folder)
        groups = _groups(folder, layout)
        total = sum(len(photos) for _, photos, _, _ in groups)
        if total == 0:
            where = "images_prepped_train/ or images_prepped_test/" if layout == "seed" else \
                "images/" if layout == "pairs" else "the folder"
            raise InputError(f"no photos (PNG, JPEG, TIFF, BMP) in {where}", folder)
        tick = step_progress(progress, cancel, total, "Reading the project's photos")
        images: list[ProjectImage] = []
        predictions = _by_stem(folder / PREDICTIONS)
        for split, photos, _, labels in groups:
            for stem in sorted(photos, key=_natural_key):
                tick(len(images))
                item = _make_item(stem, split, photos[stem], labels.get(stem), {i.name for i in images},
                                  problems)
                if item is None:
                    continue
                item.prediction_path = predictions.get(item.name)
                saved = stored.get("images", {}).get(item.name, {})
                item.split = saved.get("split", item.split) if layout != "seed" else item.split
                item.status = _status(item, saved.get("status"))
                images.append(item)
        for _, photos, _, labels in groups:
            for stem in sorted(set(labels) - set(photos), key=_natural_key):
                problems.append(f"{labels[stem]}: label image without a photo of the same name")
        if not images:
            raise InputError(f"none of the {total} photos could be read: {problems[0]}", folder)
        return cls(folder, layout, images, table or thin_section_table(), problems, stored)

    # -- looking up ---------------------------------------------------------------------------
    def image(self, name) -> ProjectImage:
        for item in self.images:
            if item.name == name:
                return item
        raise InputError(f"no photo named {name!r} in the project", self.folder)

    def label_target(self, item: ProjectImage) -> Path:
        """Where this image's labels are written: its label PNG if it has one, else the layout's place."""
        if item.label_path is not None and item.label_path.suffix.lower() == ".png" \
                and not item.label_path.name.endswith("_labels.png"):
            return item.label_path
        folder = self.folder / f"annotations_prepped_{item.split}" if self.layout == "seed" else self.folder / "labels"
        return folder / f"{base_name(item.image_path)}.png"

    def training_pairs(self, split: str = "train") -> list[tuple[Path, Path]]:
        """(photo, labels) of labelled images in ``split``; photos with no split count as training."""
        wanted = {split, ""} if split == "train" else {split}
        return [(i.image_path, i.label_path) for i in self.images if i.label_path is not None and i.split in wanted]

    def test_pairs(self) -> list[tuple[Path, Path]]:
        return self.training_pairs("test")

    # -- changing -----------------------------------------------------------------------------
    def save_labels(self, item: ProjectImage, ids) -> Path:
        """Write the labels (atomic); the status becomes "labelled" unless it was "reviewed"."""
        target = self.label_target(item)
        self._check_size(item, ids, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        item.label_path = write_label_image(ids, target)
        self.set_status(item, "reviewed" if item.status == "reviewed" else "labelled")
        return target

    def save_prediction(self, item: ProjectImage, ids) -> Path:
        """Write ``predictions/NAME.png``; an unlabelled image becomes "predicted"."""
        target = self.folder / PREDICTIONS / f"{item.name}.png"
        self._check_size(item, ids, target)
        target.parent.mkdir(exist_ok=True)
        item.prediction_path = write_label_image(ids, target)
        self.set_status(item, "predicted" if item.status == "unlabelled" else item.status)
        return target

    def set_status(self, item: ProjectImage, status: str) -> None:
        """Set and save at once (``ctviewer-project.json``, atomic)."""
        if status not in STATUSES:
            raise InputError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        if status in _NEEDS and getattr(item, _NEEDS[status]) is None:
            raise InputError(f"{item.name} cannot be {status}: it has no "
                             f"{'labels' if _NEEDS[status] == 'label_path' else 'prediction'}", item.image_path)
        item.status = status
        self._save()

    def add_to_training(self, item: ProjectImage) -> None:
        """Make a labelled image part of the training set.

        Seed layout: the photo and its labels are copied into ``images_prepped_train/`` and
        ``annotations_prepped_train/`` (where the seed's scripts look); a different file already
        there under that name is never overwritten. Other layouts: the split becomes "train".
        """
        if item.label_path is None:
            raise InputError(f"{item.name} has no labels to train on; label it first", item.image_path)
        if self.layout == "seed" and item.split != "train":
            photo = self.folder / "images_prepped_train" / item.image_path.name
            labels = self.folder / "annotations_prepped_train" / f"{base_name(item.image_path)}.png"
            for source, target in ((item.image_path, photo), (item.label_path, labels)):
                if target.exists() and target.read_bytes() != source.read_bytes():
                    raise InputError(f"a different file with this name is already in the training set; "
                                     f"rename {source.name} first", target)
            for source, target in ((item.image_path, photo), (item.label_path, labels)):
                target.parent.mkdir(exist_ok=True)
                if not target.exists():
                    _copy_atomic(source, target)
            item.image_path, item.label_path = photo, labels
        item.split = "train"
        self._save()

    # -- helpers ------------------------------------------------------------------------------
    def _check_size(self, item: ProjectImage, ids, target: Path) -> None:
        width, height = image_size(item.image_path)
        shape = np.shape(ids)
        if shape != (height, width):
            raise InputError(f"labels of {'×'.join(map(str, shape[::-1]))} pixels do not fit the photo "
                             f"{item.image_path.name} ({width}×{height})", target)

    def _save(self) -> None:
        from ctviewer.io.atomic import atomic_write_text

        path = self.folder / PROJECT_FILE
        if self._stored.get("unreadable") and path.exists():  # keep what could not be read, once
            shutil.copyfile(path, path.with_name(PROJECT_FILE + ".unreadable"))
        self._stored = {
            "format": PROJECT_FORMAT, "version": PROJECT_VERSION, "layout": self.layout,
            "table": json.loads(self.table.to_json()),
            "images": {i.name: {"status": i.status, "split": i.split} for i in self.images},
        }
        atomic_write_text(path, json.dumps(self._stored, indent=1) + "\n")


def _make_item(stem: str, split: str, photo: Path, labels: Path | None, taken: set[str],
               problems: list[str]) -> ProjectImage | None:
    """One image, or None (with a problem line) when its photo or labels cannot be used."""
    name = stem if stem not in taken else f"{split}-{stem}"
    try:
        if name in taken:
            raise InputError(f"another photo is already named {stem}", photo)
        image_size(photo)  # reads the header only: a broken or mislabelled file is caught here
        problem = _size_problem(photo, labels) if labels is not None else None
    except InputError as exc:
        problems.append(str(exc))
        return None
    if problem:  # left out, so nothing ever overwrites labels that may belong to another photo
        problems.append(problem)
        return None
    return ProjectImage(name, photo, labels, None, split, "unlabelled")


def _status(item: ProjectImage, stored) -> str:
    derived = "labelled" if item.label_path else "predicted" if item.prediction_path else "unlabelled"
    if stored not in STATUSES or (stored in _NEEDS and getattr(item, _NEEDS[stored]) is None):
        return derived
    return stored


def _read_project_file(path: Path, problems: list[str]) -> tuple[dict, LabelTable | None]:
    """The stored statuses and table; a broken file costs only those, with one problem line."""
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ValueError(f'not a ctviewer thin-section project (no "format": "{PROJECT_FORMAT}")')
        if not isinstance(data.get("version"), int) or data["version"] > PROJECT_VERSION:
            raise ValueError(f"version {data.get('version')!r} is not one this ctviewer reads (1..{PROJECT_VERSION})")
        if not isinstance(data.get("images", {}), dict):
            raise ValueError('"images" is not a mapping of photo names')
        data["images"] = {k: v for k, v in data.get("images", {}).items() if isinstance(v, dict)}
        table = LabelTable.from_json(json.dumps(data["table"]), path) if "table" in data else None
        if table is not None:   # a project saved with a former class name shows today's
            from ctviewer.imaging.bins import current_class_name

            for label in table:
                label.name = current_class_name(label.name)
        return data, table
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # InputError and JSONDecodeError too
        why = exc.reason if isinstance(exc, InputError) else (str(exc) or type(exc).__name__).splitlines()[0]
        problems.append(f"{path}: {why}; statuses are taken from the files (labels are safe)")
        return {"unreadable": True}, None


def _copy_atomic(source: Path, target: Path) -> None:
    from ctviewer.io.atomic import atomic_path

    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _natural_key(text: str):
    import re

    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


# -- pairs for training and evaluation ---------------------------------------------------------
def find_pairs(path) -> list[tuple[Path, Path]]:
    """(photo, labels) pairs from a project folder of any layout, or a text file of
    ``image,label`` lines (relative to the file). Never writes anything."""
    path = Path(path)
    if path.is_dir():
        layout = detect_layout(path)
        pairs = [(photos[stem], labels[stem]) for _, photos, _, labels in _groups(path, layout)
                 for stem in sorted(photos, key=_natural_key) if stem in labels]
        if not pairs:
            raise InputError(f"no photos with label images in this folder ({layout} layout)", path)
        for photo, labels in pairs:
            problem = _size_problem(photo, labels)
            if problem:
                raise InputError(problem)
        return pairs
    if not path.is_file():
        raise InputError("no such file or folder", path)
    if path.suffix.lower() in PHOTO_SUFFIXES:
        raise InputError("is a photo; give a folder of photos with labels, or a text file of "
                         "'image,label' lines", path)
    return _pairs_from_list(path)


def _pairs_from_list(path: Path) -> list[tuple[Path, Path]]:
    from ctviewer.io.pair_lists import read_pair_list

    pairs = []
    for number, photo, labels in read_pair_list(path):
        if not (photo.is_file() and labels.is_file()):
            raise InputError(f"line {number}: a photo and a label image are files, not folders", path)
        try:
            problem = _size_problem(photo, labels)
        except InputError as exc:
            raise InputError(f"line {number}: {exc}", path) from None
        if problem:
            raise InputError(f"line {number}: {problem}", path)
        pairs.append((photo, labels))
    return pairs

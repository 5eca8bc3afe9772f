"""Opening a study headless: the same steps the GUI runs in its workers, for CLI and tests."""

from __future__ import annotations

from pathlib import Path

from ctviewer.data.layers import LabelLayer
from ctviewer.data.study import Study
from ctviewer.errors import InputError
from ctviewer.io.registry import Loadable, examine, load
from ctviewer.progress import CancelToken, Progress


def open_loadable(item: Loadable, progress: Progress | None = None, cancel: CancelToken | None = None) -> Study:
    """Load one loadable (a series, a file) as a study in display orientation."""
    return Study(load(item, progress=progress, cancel=cancel))


def open_study(path: str | Path, label_paths=(), series: int = 0, progress: Progress | None = None,
               cancel: CancelToken | None = None) -> Study:
    """Open ``path`` (its ``series``-th loadable, largest first) with label maps as layers."""
    items = examine(path)
    if not 0 <= series < len(items):
        raise InputError(f"series {series} does not exist; {len(items)} found", path)
    study = open_loadable(items[series], progress=progress, cancel=cancel)
    for label_path in label_paths:
        study.layers.append(load_labels_for(study, Path(label_path)))
    if not label_paths:
        attach_found_labels(study, items[series].path)
    return study


def attach_found_labels(study: Study, image_path: str | Path) -> LabelLayer | None:
    """Open the label file that belongs to the image, if there is one (the seed layout
    ``images_prepped_train/x.png`` -> ``annotations_prepped_train/x.png``, ``NAME_labels.*``, or a
    DICOM-SEG in a DICOM folder that references the series opened).

    A found file that does not fit is not an error of the opening: it becomes a warning of the
    image, and the image opens without it.
    """
    from ctviewer.io.label_files import find_label_file

    found = find_label_file(image_path) if Path(image_path).is_file() else None
    segmentations = study.image.meta.get("segmentations") or []  # DICOM-SEGs beside a series, drawn on it
    if found is None and segmentations:
        found = Path(segmentations[0])
        if len(segmentations) > 1:
            study.image.warnings.append(f"{len(segmentations) - 1} more DICOM-SEG file(s) reference this series "
                                        f"(opened: {found.name}); open them as labels to see them")
    if found is None:
        return None
    try:
        layer = load_labels_for(study, found)
    except InputError as exc:
        study.image.warnings.append(f"labels found beside the image were not opened: {exc}")
        return None
    study.layers.append(layer)
    return layer


def load_labels_for(study: Study, path: str | Path, map_colours: bool = False) -> LabelLayer:
    """A label map file as a layer of ``study``, on the image's grid voxel for voxel: labels stored on
    a part of it (a cropped Slicer seg.nrrd, a DICOM-SEG without its empty frames) are placed by
    their geometry; labels between the image's voxels or outside it are refused, never resampled
    (:func:`ctviewer.io.label_grid.read_labels_over`).

    A colour (RGB) label image is refused with :class:`~ctviewer.io.label_files.ColourLabelsError`
    unless ``map_colours`` (each colour becomes one label id).
    """
    from ctviewer.io.label_grid import read_labels_over

    path = Path(path)
    labels = read_labels_over(study.image, path, map_colours=map_colours)
    if getattr(labels, "warnings", None):
        study.image.warnings.extend(labels.warnings)
    return LabelLayer(labels, name=path.name.split(".")[0] or "labels")


def open_demo(progress: Progress | None = None, cancel: CancelToken | None = None,
              cache_dir: Path | None = None) -> Study:
    """The built-in demo study (synthetic torso CT and its labels), generated on first use."""
    from ctviewer.synth.demo import demo_paths

    if progress:
        progress(0.0, "Preparing the demo study")
    image_path, labels_path = demo_paths(cache_dir, progress=progress, cancel=cancel)
    study = open_study(image_path, [labels_path], progress=progress, cancel=cancel)
    # Fat and muscle (ids 201, 202, 204) wrap the whole body: shown, they hide every organ and
    # the spine, in the slices and in 3D. They open hidden; the layers dock shows them again.
    for layer in study.layers.by_kind("labels"):
        for label_id in DEMO_HIDDEN_LABELS:
            if label_id in layer.labels.table:
                layer.labels.table.update(label_id, visible=False)
    return study


DEMO_HIDDEN_LABELS = (201, 202, 204)


def open_demo_soil(progress: Progress | None = None, cancel: CancelToken | None = None,
                   cache_dir: Path | None = None) -> Study:
    """The demo soil cube (synthetic micro-CT on the seed's 0..4096 scale) with its truth labels,
    generated on first use."""
    from ctviewer.synth.demo import demo_soil_paths
    from ctviewer.synth.soil import MATRIX, SOIL_WINDOW

    if progress:
        progress(0.0, "Preparing the demo soil cube")
    image_path, labels_path = demo_soil_paths(cache_dir, progress=progress, cancel=cancel)
    study = open_study(image_path, [labels_path], progress=progress, cancel=cancel)
    # Not Hounsfield units: the CT presets would show it all white. The matrix fills most of the
    # cube, so its label opens hidden, leaving pores, channels, roots and stones over the image.
    study.image.window = SOIL_WINDOW
    study.image.modality = "CT"
    for layer in study.layers.by_kind("labels"):
        if MATRIX in layer.labels.table:
            layer.labels.table.update(MATRIX, visible=False)
    return study

"""Predicting thin-section photos at full resolution, one photo or a whole folder.

The seed resized every photo to the network's 416×608 input and back, losing the grain edges; here
the network runs on overlapping tiles of the photo as it is, and the class probabilities of the
tiles are blended with a Gaussian weight (the tiling and weighting of the CT sliding window,
``ctviewer.workflows.segmentation.inference``), so a pixel's class comes mostly from the tiles that
see it near their centre. Photos smaller than a tile are padded by reflection, never stretched.

- :func:`predict_photo` — Keras-free: any ``predict_fn`` on batches of ``[n, h, w, 3]`` floats in [0, 1].
- :func:`segment_photo` — a thin_section model (name, path or registry entry) on one photo: table ids.
- :func:`predict_folder` — ``ctviewer thin-section predict``: per photo the class-id PNG, a recoloured
  PNG and a row of class fractions; then ``fractions.csv`` and ``fractions_histogram.png``.
- :func:`check_model_classes` — refuses a model trained with other classes than a project's table.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.progress import no_progress

TASK = "thin_section"
#: The network's four poolings (``ctviewer.ml.vgg_unet.SIZE_MULTIPLE``, kept here so this module
#: does not import Keras).
SIZE_MULTIPLE = 16
COLOUR_CHOICES = ("mean", "table")
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: What predict_folder writes; never read back as photos when the output folder is the input folder.
OUTPUT_ENDINGS = ("_classes.png", "_recolour.png", "fractions_histogram.png")


def predict_photo(rgb, predict_fn, n_classes: int, tile: int = 512, overlap: int = 64, batch_size: int = 4,
                  multiple: int = SIZE_MULTIPLE, progress=None, cancel=None) -> np.ndarray:
    """Class indices ``[y, x]`` (uint8, 0..n_classes-1) of ``predict_fn`` over overlapping tiles of ``rgb``.

    ``tile`` is rounded up to ``multiple``; along a side at most a quarter longer than that, one
    tile covers the whole side (a seed-size 416×608 photo is one tile, not two overlapping 416×512
    ones: 40 % less work), and a side shorter than a tile is padded. ``overlap`` pixels are shared
    by neighbouring tiles (at most half a tile); the last tile of a row or column is shifted inside
    the photo rather than padded. Tiles go through ``predict_fn`` ``batch_size`` at a time.
    """
    from ctviewer.workflows.segmentation.inference import (_as_probabilities, _round_up, _split, _starts,
                                                           gaussian_weight)

    rgb = _check_rgb(rgb)
    progress = progress or no_progress
    ny, nx = rgb.shape[:2]
    if tile is None or int(tile) < 1 or int(overlap) < 0:
        raise InputError(f"tile must be a positive size and overlap not negative, got tile {tile}, overlap {overlap}")
    tile = _round_up(int(tile), multiple)
    size = tuple(_round_up(n, multiple) if _round_up(n, multiple) <= 1.25 * tile else tile for n in (ny, nx))
    pads = [_split(max(0, s - n)) for s, n in zip(size, (ny, nx))]
    if any(sum(p) for p in pads):   # smaller than a tile: mirror the photo's own texture into the margin
        rgb = np.pad(rgb, [*pads, (0, 0)], mode="reflect" if min(ny, nx) > 1 else "edge")
    shape = rgb.shape[:2]
    starts = [_starts(n, s, min(int(overlap), s // 2) / s) for n, s in zip(shape, size)]
    corners = list(itertools.product(*starts))
    weight = gaussian_weight((1, *size))[0][..., None]   # the 3-D weight with a one-pixel z axis
    scores = np.zeros((*shape, int(n_classes)), dtype=np.float32)
    batch_size = max(1, int(batch_size))
    for first in range(0, len(corners), batch_size):
        if cancel is not None:
            cancel.raise_if_cancelled()
        group = corners[first:first + batch_size]
        # The last batch is filled up with repeats of its last tile: a batch of another size makes
        # Keras trace the network again (2-3 s on 2 CPUs, more than the few repeated tiles cost).
        filled = group + group[-1:] * (batch_size - len(group) if len(corners) > batch_size else 0)
        batch = np.stack([rgb[y:y + size[0], x:x + size[1]] for y, x in filled]).astype(np.float32) / 255.0
        probs = _as_probabilities(predict_fn(batch), batch.shape[:-1])
        if probs.shape[-1] != n_classes:
            raise ValueError(f"the network gave {probs.shape[-1]} class probabilities per pixel, expected {n_classes}")
        for (y, x), p in zip(group, probs):
            scores[y:y + size[0], x:x + size[1]] += p * weight
        progress(min(1.0, (first + len(group)) / len(corners)), "predicting tiles")
    # The blended probability is scores / summed weight; the weight is the same for every class of
    # a pixel, so the class with the highest score is the answer without dividing.
    scores = scores[pads[0][0]:pads[0][0] + ny, pads[1][0]:pads[1][0] + nx]
    return scores.argmax(axis=-1).astype(np.uint8)


def _check_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or 0 in rgb.shape:
        raise InputError(f"expected a colour photo [y, x, 3], got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise InputError(f"expected an 8-bit photo (uint8), got {rgb.dtype}: read it with read_photo_rgb")
    return rgb


# -- models ----------------------------------------------------------------------------------------

def find_thin_section_model(model=None):
    """The registry entry of a thin_section model (name, path or entry; ``None``: the newest one),
    checked from its card alone (Keras not started)."""
    from ctviewer.ml import registry

    if model is None:
        entries = registry.list_models(TASK)
        if not entries:
            where = " or ".join(str(folder) for folder, _ in registry._folders())
            raise InputError(f"no thin_section model in {where}: train one (ctviewer train "
                             "models/configs/thin_section_vggunet.toml) or name one with --model")
        return max(entries, key=lambda e: (e.card.created, e.path.stat().st_mtime))
    entry = model if isinstance(model, registry.ModelEntry) else registry.find_model(model)
    if entry.card.task != TASK:
        raise InputError(f"is a {entry.card.task} model, not a thin_section model", entry.path)
    model_table(entry.card)   # a card without classes is refused before Keras starts
    return entry


def model_table(card):
    """The model's classes as a LabelTable (the card's ``outputs.classes``: id, name, colour)."""
    from ctviewer.data.labels import Label, LabelTable, default_colour
    from ctviewer.imaging.bins import current_class_name   # cards saved with a former class name

    classes = (card.outputs or {}).get("classes") or []
    try:
        labels = [Label(int(c["id"]), current_class_name(str(c.get("name") or f"class {c['id']}")),
                        tuple(int(v) for v in c.get("colour") or default_colour(int(c["id"])))) for c in classes]
    except (KeyError, TypeError, ValueError):
        labels = []
    if not labels or len({lab.id for lab in labels}) != len(labels) or not all(0 < lab.id < 256 for lab in labels):
        raise InputError(f"model '{card.name}' has no usable class list in its card (outputs.classes: id, name, "
                         "colour; ids 1-255, each once)")
    return LabelTable(labels)


def check_model_classes(card, table) -> None:
    """InputError naming the differences when the model's classes are not ``table``'s (ids and names)."""
    ours, theirs = {lab.id: lab.name for lab in table}, {lab.id: lab.name for lab in model_table(card)}

    def same(a: str, b: str) -> bool:
        return " ".join(a.lower().split()) == " ".join(b.lower().split())

    reasons = []
    if missing := sorted(set(ours) - set(theirs)):
        reasons.append("it has no " + ", ".join(f"{i} {ours[i]}" for i in missing))
    if extra := sorted(set(theirs) - set(ours)):
        reasons.append("it predicts " + ", ".join(f"{i} {theirs[i]}" for i in extra) + ", not classes here")
    reasons += [f"its class {i} is '{theirs[i]}', here '{ours[i]}'"
                for i in sorted(set(ours) & set(theirs)) if not same(ours[i], theirs[i])]
    if reasons:
        raise InputError(f"model '{card.name}' was trained with other classes: {'; '.join(reasons)}")


def _load(model):
    """(predict_fn, card); the last model stays loaded (a folder or the dock runs one model many times)."""
    from ctviewer.ml import registry
    from ctviewer.workflows.segmentation.segment import keras_predict_fn

    network, card = registry.load_model_kept(find_thin_section_model(model), task=TASK)
    return keras_predict_fn(network), card


def segment_photo(rgb, model_path, tile: int | None = None, overlap: int = 64, batch_size: int = 4, progress=None,
                  cancel=None) -> np.ndarray:
    """Class ids (the model card's table ids) of one photo ``[y, x, 3]`` uint8; what the model child runs.

    ``tile`` None: the card's ``inputs.tile`` (what the model was evaluated with), else 512.
    """
    predict_fn, card = _load(model_path)
    tile = tile or int((card.inputs or {}).get("tile") or 512)
    ids = np.array(model_table(card).ids, dtype=np.uint8)
    index = predict_photo(rgb, predict_fn, len(ids), tile=tile, overlap=overlap, batch_size=batch_size,
                          progress=progress, cancel=cancel)
    return ids[index]


# -- folders ---------------------------------------------------------------------------------------

class FolderPrediction(list):
    """What :func:`predict_folder` did: one dict per predicted photo (a list), plus ``problems`` (one
    line per photo that could not be read) and the paths of the table and chart it wrote."""

    def __init__(self, rows=(), problems=(), csv_path=None, histogram_path=None, model: str = ""):
        super().__init__(rows)
        self.problems, self.csv_path, self.histogram_path, self.model = list(problems), csv_path, histogram_path, model


def list_photos(path) -> list[Path]:
    """``path`` itself if it is a file, else the photos in the folder (by name; not our own outputs)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or folder", path)
    photos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
                    and not p.name.startswith(".") and not p.name.endswith(OUTPUT_ENDINGS))
    # a flat project keeps NAME_labels.png beside NAME.png (project.py): labels, not a photo
    stems = {p.stem for p in photos}
    photos = [p for p in photos if not (p.stem.endswith("_labels") and p.stem[: -len("_labels")] in stems)]
    if not photos:
        raise InputError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in the folder", path)
    return photos


def predict_folder(folder, out, model_path=None, porosity_class: int = 3, colours: str = "mean",
                   tile: int | None = None, progress=None, cancel=None, batch=None) -> FolderPrediction:
    """Predict every photo of ``folder`` (or one photo) into the folder ``out``; see the module docstring.

    Each row: ``image``, ``width``, ``height``, ``fractions`` ({class id: % of the photo}),
    ``porosity`` (% of ``porosity_class``), ``classes_path``, ``recolour_path``. A photo that fails
    is noted in ``batch`` (a :class:`ctviewer.workflows.batch.Batch`; the CLI passes its own to list
    the failures and pick the exit code) and in ``problems``, and the others go on; ``fractions.csv``
    is rewritten (atomically) after every photo, so a stopped run keeps the rows it made.
    """
    from ctviewer.workflows.batch import Batch
    from ctviewer.workflows.thin_section.fraction_chart import write_fractions_csv, write_fractions_histogram

    progress = progress or no_progress
    if colours not in COLOUR_CHOICES:
        raise InputError(f"colours must be one of {', '.join(COLOUR_CHOICES)}, not '{colours}'")
    photos = list_photos(folder)
    entry = find_thin_section_model(model_path)
    table = model_table(entry.card)
    if int(porosity_class) not in table:
        raise InputError(f"porosity class {porosity_class} is not a class of model '{entry.name}' "
                         f"({', '.join(f'{lab.id} {lab.name}' for lab in table)})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("the output must be a folder, and this is a file", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror or exc}", out) from exc
    _load(entry)   # a model that cannot be loaded ends the run here, not once per photo
    names = _unique_names(photos)
    batch = batch if batch is not None else Batch(noun="photo", plural="photos")
    result = FolderPrediction(model=entry.name)
    for n, photo in enumerate(photos):
        if cancel is not None:
            cancel.raise_if_cancelled()

        def part(fraction, message="", _n=n, _photo=photo):
            progress((_n + fraction) / len(photos), f"{_photo.name}: {message}".rstrip(": "))

        row = batch.attempt(photo, _predict_file, photo, entry, table, out / names[photo], int(porosity_class),
                            colours, tile, part, cancel)
        if row is not None:
            result.append(row)
            result.csv_path = write_fractions_csv(result, table, int(porosity_class), out / "fractions.csv")
    result.problems = [failure.line for failure in batch.failures]
    if result:
        result.histogram_path = write_fractions_histogram(result, table, out / "fractions_histogram.png")
    progress(1.0, "done")
    return result


def _predict_file(photo: Path, entry, table, stem: Path, porosity_class: int, colours: str, tile, progress,
                  cancel) -> dict:
    """One photo: its class-id PNG and recoloured PNG (``STEM_classes.png``, ``STEM_recolour.png``), and its row."""
    from ctviewer.workflows.thin_section.classes import class_fractions, class_mean_colours, recolour
    from ctviewer.workflows.thin_section.photos import read_photo_rgb, write_label_image, write_rgb_png

    rgb = read_photo_rgb(photo)
    ids = segment_photo(rgb, entry, tile=tile, progress=progress, cancel=cancel)
    palette = (class_mean_colours(rgb, ids, table.ids, table) if colours == "mean"
               else {lab.id: tuple(lab.colour) for lab in table})
    fractions = class_fractions(ids, table.ids)
    return {"image": photo.name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
            "fractions": {i: float(fractions.get(i, 0.0)) for i in table.ids},
            "porosity": float(fractions.get(porosity_class, 0.0)),
            "classes_path": write_label_image(ids, stem.with_name(f"{stem.name}_classes.png")),
            "recolour_path": write_rgb_png(recolour(ids, palette), stem.with_name(f"{stem.name}_recolour.png"))}


def _unique_names(photos) -> dict:
    """Output names by photo: the stem, or the whole name where two photos share a stem (1.png, 1.tif)."""
    stems = [p.stem for p in photos]
    return {p: p.stem if stems.count(p.stem) == 1 else p.name.replace(".", "_") for p in photos}

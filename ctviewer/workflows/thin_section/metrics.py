"""How good a thin-section segmentation is: per-class IoU, mean IoU and pixel accuracy.

Everything comes from a confusion matrix over the labelled pixels (truth != 0: unlabelled pixels
are not judged). A class absent from both the truth and the prediction has no IoU (NaN) and is left
out of the mean, so a photo without epoxy is not scored 0 or 1 for it. Per photo and overall; the
overall figures come from the summed confusion matrix (pixels pooled), so a large photo counts by
its pixels, like the seed's and keras-segmentation's evaluation.

:func:`evaluate_folders` is ``ctviewer thin-section eval``: labels (anything ``find_pairs`` reads)
against a folder of ``NAME_classes.png`` predictions, or against a model run on the photos.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.io.csv_safe import write_csv
from ctviewer.progress import no_progress


def confusion_matrix(pred, truth, class_ids) -> np.ndarray:
    """``cm[t, p]``: pixels of true class ``class_ids[t]`` predicted as ``class_ids[p]`` (int64),
    over the pixels where ``truth != 0``."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise InputError(f"prediction is {_size(pred)} but the labels are {_size(truth)}")
    class_ids = [int(i) for i in class_ids]
    lookup = np.full(max(class_ids + [int(pred.max(initial=0)), int(truth.max(initial=0))]) + 1, -1, np.int64)
    lookup[class_ids] = np.arange(len(class_ids))
    labelled = truth != 0
    t, p = lookup[truth[labelled]], lookup[pred[labelled]]
    for name, index, values in (("the labels have", t, truth[labelled]), ("the prediction has", p, pred[labelled])):
        if np.any(index < 0):
            odd = np.unique(values[index < 0])
            raise InputError(f"{name} values {', '.join(str(v) for v in odd[:8])} that are not classes "
                             f"({', '.join(str(i) for i in class_ids)})")
    k = len(class_ids)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def class_iou(cm) -> np.ndarray:
    """IoU per class: TP / (TP + FP + FN); NaN for a class in neither the truth nor the prediction."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(cm) -> float:
    """Mean IoU over the classes that occur (in truth or prediction); NaN when no pixel is labelled."""
    iou = class_iou(cm)
    return float(np.mean(iou[~np.isnan(iou)])) if np.any(~np.isnan(iou)) else math.nan


def pixel_accuracy(cm) -> float:
    """Share of labelled pixels predicted right; NaN when no pixel is labelled."""
    cm = np.asarray(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else math.nan


def scores(cm, class_ids) -> dict:
    """pixels, pixel_accuracy, mean_iou and iou ({class id: IoU}) of one confusion matrix."""
    iou = class_iou(cm)
    return {"pixels": int(np.asarray(cm).sum()), "pixel_accuracy": pixel_accuracy(cm), "mean_iou": mean_iou(cm),
            "iou": {int(i): float(v) for i, v in zip(class_ids, iou)}}


def evaluate(pairs, class_ids, class_names=None, image_names=None) -> dict:
    """Scores of ``(pred ids, truth ids)`` pairs: ``{"classes", "images": [...], "overall": {...}}``.

    ``overall`` also carries the summed ``confusion_matrix`` (rows truth, columns prediction).
    """
    class_ids = [int(i) for i in class_ids]
    names = dict(class_names or {})
    total = np.zeros((len(class_ids), len(class_ids)), dtype=np.int64)
    images = []
    for n, (pred, truth) in enumerate(pairs):
        cm = confusion_matrix(pred, truth, class_ids)
        total += cm
        name = image_names[n] if image_names is not None else str(n + 1)
        images.append({"image": name, **scores(cm, class_ids)})
    return {"classes": [{"id": i, "name": names.get(i, f"class {i}")} for i in class_ids], "images": images,
            "overall": {**scores(total, class_ids), "images": len(images), "confusion_matrix": total.tolist()}}


def evaluate_folders(pred_dir_or_model, labels_path, table=None, tile: int | None = None, progress=None,
                     cancel=None, batch=None) -> dict:
    """:func:`evaluate` of predictions against the labels of ``labels_path`` (anything ``find_pairs`` reads).

    ``pred_dir_or_model``: a folder of ``NAME_classes.png`` (matched to each photo by its stem), or a
    thin_section model (name, path or registry entry) run on the photos. The classes are the
    model's, else ``table``'s, else the thin-section table's plus any other id found. Photos
    without a prediction or with unreadable files are noted in ``batch`` (a
    :class:`ctviewer.workflows.batch.Batch`), listed in ``problems`` and left out.
    """
    from ctviewer.workflows.batch import Batch
    from ctviewer.imaging.bins import thin_section_table
    from ctviewer.workflows.thin_section.project import find_pairs
    from ctviewer.workflows.thin_section.predict import find_thin_section_model, model_table

    progress = progress or no_progress
    pairs = find_pairs(labels_path)
    folder = Path(pred_dir_or_model) if isinstance(pred_dir_or_model, (str, Path)) else None
    from_files = folder is not None and folder.is_dir()
    entry = None if from_files else find_thin_section_model(pred_dir_or_model)
    if entry is not None:
        table = model_table(entry.card)
    batch = batch if batch is not None else Batch(noun="photo", plural="photos")
    names, preds, truths = [], [], []
    for n, (photo, label) in enumerate(pairs):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(n / max(len(pairs), 1), photo.name)
        scored = batch.attempt(photo, _pair, photo, label, folder if from_files else None, entry, table, tile, cancel)
        if scored is not None:
            names.append(photo.stem)
            preds.append(scored[0])
            truths.append(scored[1])
    problems = [f"{failure.line}; left out" for failure in batch.failures]
    if not names:
        raise InputError("no photo could be scored: " + (problems[0] if problems else "no labelled photos"),
                         labels_path)
    if table is None:
        table = thin_section_table()
        for i in sorted(set().union(*(np.unique(a).tolist() for a in preds + truths)) - {0} - set(table.ids)):
            table.add(int(i), f"class {i}")
    result = evaluate(zip(preds, truths), table.ids, {lab.id: lab.name for lab in table}, names)
    result["problems"] = problems
    result["model"] = entry.name if entry is not None else None
    progress(1.0, "done")
    return result


def _pair(photo: Path, label: Path, folder: Path | None, entry, table, tile, cancel):
    """(prediction, labels) of one photo: from ``folder``'s ``NAME_classes.png``, else from the model."""
    from ctviewer.workflows.thin_section.photos import read_label_image, read_photo_rgb
    from ctviewer.workflows.thin_section.predict import segment_photo

    truth = read_label_image(label, table if entry is not None else None)
    if folder is not None:
        pred_path = folder / f"{photo.stem}_classes.png"
        if not pred_path.is_file():
            raise InputError(f"no prediction {pred_path.name} in {folder}", photo)
        pred = read_label_image(pred_path)
        if pred.shape == truth.shape and np.any(pred[truth != 0] == 0):
            raise InputError("prediction has unlabelled (0) pixels where the labels have classes", pred_path)
    else:
        pred = segment_photo(read_photo_rgb(photo), entry, tile=tile, cancel=cancel)
    if pred.shape != truth.shape:
        raise InputError(f"labels are {_size(truth)} but the prediction is {_size(pred)}", label)
    return pred, truth


def metrics_columns(result) -> list[str]:
    return ["image", "pixels", "pixel_accuracy", "mean_iou", *(f"iou {c['id']} {c['name']}" for c in result["classes"])]


def write_metrics_csv(path, result) -> Path:
    """One row per photo and a last row ``overall``; an IoU that does not exist is left empty (atomic)."""
    rows = [*result["images"], {"image": "overall", **result["overall"]}]
    # csv_safe: a photo or class named =..., +..., -..., @... is written as text, not a formula
    return write_csv(path, ([row["image"], row["pixels"], _number(row["pixel_accuracy"]), _number(row["mean_iou"]),
                             *(_number(row["iou"][c["id"]]) for c in result["classes"])] for row in rows),
                     header=metrics_columns(result))


def _number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def _size(array) -> str:
    return f"{array.shape[1]}x{array.shape[0]} px" if array.ndim >= 2 else str(array.shape)

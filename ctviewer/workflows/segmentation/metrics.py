"""How good a segmentation is: Dice and Jaccard per study and per label, summaries, 2D-vs-3D tables.

Scores are always per study first (one row per study and label) and summarised over studies
after, so one large study cannot hide a bad small one, and a held-out study is one data point
whatever its slice count (the seeds pooled slices of the same patient into train and test).

A group names the voxels one score is about, as in ``Target.groups``: ``(name, ids)`` where ids
``None`` means "every non-zero label"; the card's form ``{"name", "ids", "label_id"}`` is also
accepted, where the prediction carries ``label_id`` and the truth carries ``ids``.

Both empty (no liver in truth nor prediction) scores 1.0: the network was right.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ctviewer.errors import InputError
from ctviewer.io.csv_safe import write_csv

SCORE_COLUMNS = ("case", "label", "dice", "jaccard", "truth_voxels", "predicted_voxels")
COMPARISON_COLUMNS = ("model", "label", "mean_dice", "median_dice", "mean_jaccard", "cases")


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|P ∩ T| / (|P| + |T|) of two masks (non-zero = inside); 1.0 when both are empty."""
    p, t = _masks(pred, truth)
    both = np.count_nonzero(p & t)
    total = np.count_nonzero(p) + np.count_nonzero(t)
    return 1.0 if total == 0 else 2.0 * both / total


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float:
    """|P ∩ T| / |P ∪ T| of two masks (non-zero = inside); 1.0 when both are empty."""
    p, t = _masks(pred, truth)
    union = np.count_nonzero(p | t)
    return 1.0 if union == 0 else np.count_nonzero(p & t) / union


def case_scores(case_id: str, pred_labels: np.ndarray, truth_labels: np.ndarray, groups) -> list[dict]:
    """One row per group: ``{"case", "label", "dice", "jaccard", "truth_voxels", "predicted_voxels"}``.

    ``pred_labels`` and ``truth_labels`` are label maps on the same grid; ``groups`` a list of
    groups (see the module docstring) or anything with a ``groups`` attribute (a ``Target``).
    """
    groups = getattr(groups, "groups", groups)
    names, pred_masks, truth_masks = [], [], []
    for group in groups:
        name, ids, label_id = _group(group)
        names.append(name)
        pred_masks.append(_select(pred_labels, ids if label_id is None else (label_id,)))
        truth_masks.append(_select(truth_labels, ids))
    return _rows(case_id, names, pred_masks, truth_masks)


def mask_scores(case_id: str, pred_masks: np.ndarray, truth_masks: np.ndarray,
                names: Sequence[str]) -> list[dict]:
    """Rows as :func:`case_scores` for stacks of masks ``[..., G]`` (one channel per named group)."""
    pred_masks, truth_masks = np.asarray(pred_masks), np.asarray(truth_masks)
    if pred_masks.shape != truth_masks.shape or pred_masks.shape[-1] != len(names):
        raise InputError(f"masks of shapes {pred_masks.shape} and {truth_masks.shape} do not match "
                         f"{len(names)} group(s)")
    g = range(len(names))
    return _rows(case_id, list(names), [pred_masks[..., i] for i in g], [truth_masks[..., i] for i in g])


def summary(rows: Iterable[dict]) -> dict:
    """Per label (in order of first appearance): n, and mean / median / min of dice and of jaccard."""
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    out = {}
    for label, group in by_label.items():
        stats = {"n": len(group)}
        for metric in ("dice", "jaccard"):
            values = np.array([float(r[metric]) for r in group])
            stats[f"mean_{metric}"] = float(values.mean())
            stats[f"median_{metric}"] = float(np.median(values))
            stats[f"min_{metric}"] = float(values.min())
        out[label] = stats
    return out


def comparison_table(scores_by_model: dict[str, list[dict]]) -> list[dict]:
    """Rows ``{"model", "label", "mean_dice", "median_dice", "mean_jaccard", "cases"}``, model by model.

    The spine seed's 2D-vs-3D table, but over studies: ``cases`` says how many each mean is over.
    """
    table = []
    for model, rows in scores_by_model.items():
        for label, s in summary(rows).items():
            table.append({"model": model, "label": label, "mean_dice": s["mean_dice"],
                          "median_dice": s["median_dice"], "mean_jaccard": s["mean_jaccard"],
                          "cases": s["n"]})
    return table


def write_scores_csv(path: str | Path, rows: Iterable[dict]) -> Path:
    """Save per-study rows (``SCORE_COLUMNS``) as a CSV, atomically; rows that name their model (scores
    of several models in one file) get a leading ``model`` column."""
    rows = list(rows)
    columns = (("model",) if any("model" in row for row in rows) else ()) + SCORE_COLUMNS
    return _write_csv(path, columns, rows)


def write_comparison_csv(path: str | Path, rows: Iterable[dict]) -> Path:
    """Save :func:`comparison_table` rows (``COMPARISON_COLUMNS``) as a CSV, atomically."""
    return _write_csv(path, COMPARISON_COLUMNS, rows)


# -- helpers -------------------------------------------------------------------------------------

def _masks(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred) != 0, np.asarray(truth) != 0
    if p.shape != t.shape:
        raise InputError(f"prediction and truth have different shapes ({p.shape} and {t.shape})")
    return p, t


def _group(group) -> tuple[str, tuple[int, ...] | None, int | None]:
    if isinstance(group, dict):
        ids = group.get("ids")
        return str(group["name"]), None if ids is None else tuple(ids), group.get("label_id")
    name, ids = group
    return str(name), None if ids is None else tuple(ids), None


def _select(labels: np.ndarray, ids: tuple[int, ...] | None) -> np.ndarray:
    labels = np.asarray(labels)
    return labels != 0 if ids is None else np.isin(labels, ids)


def _rows(case_id, names, pred_masks, truth_masks) -> list[dict]:
    rows = []
    for name, p, t in zip(names, pred_masks, truth_masks):
        rows.append({"case": case_id, "label": name, "dice": dice(p, t), "jaccard": jaccard(p, t),
                     "truth_voxels": int(np.count_nonzero(t)), "predicted_voxels": int(np.count_nonzero(p))})
    return rows


def _write_csv(path, columns, rows) -> Path:
    # csv_safe: a case id or label name like =HYPERLINK(...) is written as text, not a formula
    return write_csv(path, ([_cell(row.get(c, "")) for c in columns] for row in rows), header=columns)


def _cell(value) -> str:
    # Scores to 4 decimals: a Dice of 0.91234567 is not more true than 0.9123.
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value)

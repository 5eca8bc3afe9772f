"""Training data helpers shared by every task: splitting samples into training and validation by study.

Slices or projections of one study are near-copies of each other; if some went to training and
others to validation, validation would measure memory, not skill. So the split is by study.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ctviewer.errors import InputError


def split_by_study(study_ids: Sequence[str], validation_fraction: float,
                   seed: int = 0) -> tuple[list[str], list[str]]:
    """Split the distinct studies in ``study_ids`` into (training studies, validation studies).

    Every sample of a study goes to one side; at least one study goes to each side. The split is
    reproducible for a given seed and does not depend on the order of ``study_ids``.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise InputError(f"validation fraction must be between 0 and 1, not {validation_fraction}")
    studies = sorted({str(s) for s in study_ids})
    if len(studies) < 2:
        raise InputError("a training set with one study cannot be split into training and validation studies"
                         if studies else "the training set is empty: no studies to split")
    order = np.random.default_rng(seed).permutation(len(studies))
    n_val = min(len(studies) - 1, max(1, round(validation_fraction * len(studies))))
    val = sorted(studies[i] for i in order[:n_val])
    train = sorted(studies[i] for i in order[n_val:])
    return train, val


def split_indices_by_study(study_ids: Sequence[str], validation_fraction: float,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`split_by_study`, but returns the sample indices of each side (one id per sample)."""
    _, val = split_by_study(study_ids, validation_fraction, seed)
    in_val = np.isin(np.asarray([str(s) for s in study_ids]), val)
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)

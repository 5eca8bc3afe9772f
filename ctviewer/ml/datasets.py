"""Training data helpers shared by every task: splitting samples into training and validation by
study, and batches of samples drawn at random.

Slices or projections of one study are near-copies of each other; if some went to training and
others to validation, validation would measure memory, not skill. So the split is by study.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

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


def sample_batches(make_pair: Callable, batch_size: int, steps: int, seed, fresh_each_epoch: bool = True):
    """A Keras ``PyDataset`` of ``steps`` batches; sample ``i`` is ``make_pair(rng, i) -> (x, y)``.

    Each sample gets its own generator seeded by (``seed``, epoch, ``i``), so batches are the same
    whichever worker makes them. With ``fresh_each_epoch`` (training) every epoch draws new samples;
    without it (validation) every epoch sees the same ones.
    """
    return _sample_batches_class()(make_pair, batch_size, steps, seed, fresh_each_epoch)


@functools.cache
def _sample_batches_class():
    from ctviewer.ml.backend import keras   # made on first use: Keras is imported lazily

    class SampleBatches(keras().utils.PyDataset):
        def __init__(self, make_pair, batch_size, steps, seed, fresh_each_epoch):
            super().__init__()
            self.make_pair, self.seed, self.fresh_each_epoch = make_pair, seed, fresh_each_epoch
            self.batch_size, self.steps = int(batch_size), int(steps)
            self.epoch = 0
            self.num_samples = self.steps * self.batch_size

        def __len__(self):
            return self.steps

        def __getitem__(self, index):
            pairs = []
            for k in range(self.batch_size):
                i = index * self.batch_size + k
                rng = np.random.default_rng([self.seed, self.epoch if self.fresh_each_epoch else 0, i])
                pairs.append(self.make_pair(rng, i))
            return np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs])

        def on_epoch_end(self):
            self.epoch += 1

    return SampleBatches

"""A tiny training task for the ctviewer.ml tests: 8 numbers in, "is x0 + x1 positive?" out.

Samples come in studies (16 per study) so the split by study is exercised; the training data is a
``keras.utils.PyDataset`` and the validation data a numpy tuple, the two kinds ``fit`` accepts.
``extra`` knobs: ``frozen`` (no trainable weights: the loss cannot improve, so early stopping must
stop), ``oom`` (the train step fails as TensorFlow does when the GPU is out of memory).
Imported through ``TASK_MODULES`` by the CLI test, so it defines ``TASK``.
"""

from __future__ import annotations

import numpy as np

from ctviewer.ml.backend import keras
from ctviewer.ml.datasets import split_indices_by_study
from ctviewer.ml.tasks import TaskSpec

keras = keras()
FEATURES = 8


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, seed):
        super().__init__()
        self.x, self.y, self.batch_size, self.num_samples = x, y, batch_size, len(x)
        self.order = np.random.default_rng(seed).permutation(len(x))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.x[rows], self.y[rows]


class OutOfMemoryModel(keras.Sequential):
    def train_step(self, data):
        import tensorflow as tf

        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[64,512,512,16]")


def make_data(samples: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, FEATURES)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")[:, None]
    studies = [f"study{i // 16}" for i in range(samples)]
    return x, y, studies


def build_model(config):
    cls = OutOfMemoryModel if config.extra.get("oom") else keras.Sequential
    model = cls([keras.Input((FEATURES,)), keras.layers.Dense(8, activation="relu"),
                 keras.layers.Dense(1, activation="sigmoid")])
    model.trainable = not config.extra.get("frozen", False)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def load_data(config, progress=None, cancel=None):
    x, y, studies = make_data(int(config.data.get("samples", 256)), config.seed)
    train, val = split_indices_by_study(studies, config.validation_fraction, config.seed)
    info = {"description": f"{len(x)} random samples in {len(set(studies))} studies",
            "train_studies": len({studies[i] for i in train}), "val_studies": len({studies[i] for i in val}),
            "test": make_data(128, config.seed + 1)[:2]}
    return Batches(x[train], y[train], config.batch_size, config.seed), (x[val], y[val]), info


def evaluate(model, config, info, progress=None, cancel=None):
    x, y = info["test"]
    predicted = np.asarray(model.predict(x, verbose=0)) > 0.5
    return {"held_out": {"accuracy": float(np.mean(predicted == (y > 0.5))), "samples": len(x)}}


def card_fields(config, info):
    return {"description": "tiny test model", "inputs": {"features": FEATURES},
            "outputs": {"classes": ["negative", "positive"], "threshold": 0.5}}


TASK = TaskSpec("tiny", "is x0 + x1 positive (tests only)", build_model, load_data, evaluate, card_fields)

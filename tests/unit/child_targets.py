"""Functions the child-process tests run in the child (importable by module path; not collected)."""

from __future__ import annotations

import os
import signal
import time

from ctviewer.errors import InputError

def count_to(n, slow=0.0, progress=None, cancel=None, on_step=None):
    for i in range(n):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if on_step is not None:
            on_step(i)
        if progress is not None:
            progress((i + 1) / n, f"step {i}")
        time.sleep(slow)
    return {"counted": n}


def pid():
    return os.getpid()


def fail(reason, path):
    raise InputError(reason, path)


def crash():
    os.kill(os.getpid(), signal.SIGSEGV)


def tiny_keras_fit():
    import numpy as np

    from ctviewer.ml.backend import keras

    k = keras()
    model = k.Sequential([k.Input((4,)), k.layers.Dense(1)])
    model.compile(k.optimizers.Adam(0.05), "mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    history = model.fit(x, x.sum(axis=1, keepdims=True), epochs=20, verbose=0)
    return float(history.history["loss"][0]), float(history.history["loss"][-1])

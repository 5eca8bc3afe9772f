"""The one way into Keras: picks the backend, turns on GPU memory growth, describes the device.

``keras()`` must be the first thing in a process that touches TensorFlow: memory growth can only
be set before TensorFlow initialises the GPU, and without it TensorFlow takes all GPU memory at
once, leaving nothing to a second model (inference while a training runs) or to other programs.
"""

from __future__ import annotations

import os
import re
import sys
import threading

_lock = threading.Lock()
_ready = False

#: Words the backends put in their out-of-memory errors (TensorFlow: "OOM when allocating tensor";
#: JAX/XLA: "RESOURCE_EXHAUSTED: Out of memory"; PyTorch: "CUDA out of memory").
_OOM_WORDS = re.compile(r"(?-i:\bOOM\b)|RESOURCE_EXHAUSTED|out of memory", re.IGNORECASE)


def keras():
    """Return the keras module, set up: KERAS_BACKEND=tensorflow unless the user chose another."""
    global _ready
    if _ready:
        import keras as module

        return module
    with _lock:
        if not _ready:
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            # TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise on a user's terminal.
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            if os.environ["KERAS_BACKEND"] == "tensorflow":
                _gpu_memory_growth()
            import keras as module  # noqa: F401  (first import selects the backend)

            _ready = True
    import keras as module

    return module


def _gpu_memory_growth() -> None:
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            # The GPU was initialised before us (someone imported TensorFlow and ran an op first):
            # growth can no longer be changed, and training still works, only greedier on memory.
            pass


def backend_name() -> str:
    """The Keras backend in use: "tensorflow", "jax", "torch" or "numpy"."""
    return keras().backend.backend()


def gpu_names() -> list[str]:
    """The GPUs the backend sees, by name (empty on a CPU-only machine)."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    if name == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if name == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def device_description() -> str:
    """Where training and inference run, in words: "CPU (2 threads)" or "GPU: NVIDIA H100 ..."."""
    gpus = gpu_names()
    if gpus:
        return "GPU: " + ", ".join(gpus)
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU ({threads} threads)"


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) says the device ran out of memory, or is
    Python's MemoryError (numpy: "Unable to allocate 12 GiB ..."), also when tf.data wrapped one raised
    while making a batch in its own thread (then only its text says so)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError) or "MemoryError" in str(exc):
            return True
        if "tensorflow" in sys.modules:
            import tensorflow as tf

            if isinstance(exc, tf.errors.ResourceExhaustedError):
                return True
        if _OOM_WORDS.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def value_and_gradient(fn, x):
    """``(fn(x), d sum(fn(x)) / dx)`` as numpy arrays, by the backend's own automatic differentiation.

    Models stay ``keras.ops``-only; what differs between backends is how a gradient is asked for
    (TensorFlow: a GradientTape, JAX: a vector-Jacobian product), kept here.
    Summing the outputs gives each sample of a batch its own gradient (samples do not interact at
    inference). Used by Grad-CAM (:mod:`ctviewer.workflows.soil.explain`).
    """
    import numpy as np

    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            total = tf.reduce_sum(y)
        return np.asarray(y), np.asarray(tape.gradient(total, x))
    if name == "jax":
        import jax
        import jax.numpy as jnp

        y, pullback = jax.vjp(fn, jnp.asarray(x))
        return np.asarray(y), np.asarray(pullback(jnp.ones_like(y))[0])
    raise RuntimeError(f"the Keras backend '{name}' gives no gradients here; use tensorflow or jax")

"""Training tasks and :func:`run_training`, the one call behind ``ctviewer train`` and the GUI's Train….

A task (slice_locator, segmentation, ...) says how to build its model, load its data (split by
study), evaluate a trained model on held-out data, and what its model card describes. Tasks are
found through ``TASK_MODULES`` (name -> module defining ``TASK = TaskSpec(...)``), imported only when
asked for, so ``ctviewer.ml`` never imports the workflows at start-up. Tests and plug-ins add tasks
with :func:`register_task`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import math
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable

from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import sub_progress
from ctviewer.ml.training import (TrainConfig, TrainingCancelled, TrainResult, batch_size_of, fit, monitored,
                                  out_of_memory_error)

TASK_MODULES = {"slice_locator": "ctviewer.workflows.slice_locator.task",
                "segmentation_2d": "ctviewer.workflows.segmentation.task:TASK_2D",
                "segmentation_3d": "ctviewer.workflows.segmentation.task:TASK_3D",
                "thin_section": "ctviewer.workflows.thin_section.task",
                "soil_fraction": "ctviewer.workflows.soil.task"}


@dataclass
class TaskSpec:
    name: str
    description: str
    build_model: Callable       # (config) -> compiled keras.Model
    load_data: Callable         # (config, progress=, cancel=) -> (train_data, val_data, info dict)
    evaluate: Callable          # (model, config, info, progress=, cancel=) -> metrics for the card
    card_fields: Callable       # (config, info) -> {"inputs":..., "outputs":..., "description":..., ...}


# Tasks added at run time (tests, plug-ins): explicit calls only, never an import side effect.
_registered: dict[str, TaskSpec] = {}
_registered_lock = threading.Lock()

#: info keys a task's load_data may fill for the card: a description of the data and the counts.
INFO_KEYS = ("description", "train_samples", "val_samples", "train_studies", "val_studies")
_CARD_FIELDS = ("description", "inputs", "outputs", "notes", "extra", "version")


def register_task(spec: TaskSpec) -> None:
    with _registered_lock:
        _registered[spec.name] = spec


def task_names() -> list[str]:
    with _registered_lock:
        return sorted(set(TASK_MODULES) | set(plugin_task_modules()) | set(_registered))


def get_task(name: str) -> TaskSpec:
    with _registered_lock:
        if name in _registered:
            return _registered[name]
    modules = {**TASK_MODULES, **plugin_task_modules()}
    if name not in modules:
        raise InputError(f"unknown task '{name}'; known tasks: {', '.join(task_names())}")
    module_name, _, attribute = modules[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise InputError(f"task '{name}' is not available in this installation ({module_name} is missing)") \
                from exc
        raise
    return getattr(module, attribute or "TASK")


def plugin_task_modules() -> dict[str, str]:
    """Tasks named in ``$CTVIEWER_TASK_MODULES`` ("name=module" or "name=module:ATTRIBUTE", comma-separated).

    Tasks given to :func:`register_task` live in one process only; the GUI trains in a child process
    (:mod:`ctviewer.ml.child`), which finds plug-in tasks through this variable, inherited by children.
    """
    found = {}
    for item in os.environ.get("CTVIEWER_TASK_MODULES", "").split(","):
        name, sep, target = item.strip().partition("=")
        if sep and name.strip() and target.strip():
            found[name.strip()] = target.strip()
    return found


def run_training(config: TrainConfig, *, progress=None, cancel=None, on_batch=None, on_epoch=None,
                 log: Callable[[str], None] | None = None) -> TrainResult:
    """Build, train (best checkpoint, early stopping, TensorBoard), evaluate on held-out data, save with a card.

    Progress: loading data 0-10 %, training 10-90 %, evaluating 90-100 %. Cancelling raises
    :class:`TrainingCancelled` naming the best checkpoint written so far (in the run's log folder).
    Safe to call from a worker thread, one training after another in the same process.
    """
    from ctviewer.ml import registry
    from ctviewer.ml.backend import backend_name, device_description, is_out_of_memory, keras
    from ctviewer.ml.cards import ModelCard

    log = log or (lambda line: None)
    task = get_task(config.task)
    keras_module = keras()
    device, backend = device_description(), backend_name()
    log(f"training '{config.name}' ({task.name}) on {device}, Keras {keras_module.__version__} ({backend})")
    out_dir = Path(config.out_dir) if config.out_dir is not None else registry.user_models_dir()
    log_dir = Path(config.log_dir) if config.log_dir is not None else (
        out_dir / "logs" / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}")
    config = dataclasses.replace(config, out_dir=out_dir, log_dir=log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the training log folder: {exc.strerror or exc}", log_dir) from exc
    checkpoint = log_dir / "best.keras"
    # Seeds Python, numpy and the backend for a reproducible run. This is process-wide, but only
    # reseeds generators, which a model running inference in another thread does not use.
    keras_module.utils.set_random_seed(config.seed)
    # No keras.utils.clear_session() here: it swaps Keras' per-thread state for every thread at once
    # and would break a model another thread is using (inference while training). Models of earlier
    # runs are freed by Python once unreferenced; only layer-name counters grow, which is harmless.
    started = time.monotonic()
    try:
        model = task.build_model(config)
        train_data, val_data, info = task.load_data(config, progress=_part(progress, 0.0, 0.1), cancel=cancel)
        info = dict(info or {})
        if info.get("description"):
            log(f"data: {info['description']}")
        epoch_line = _epoch_logger(log, monitored(val_data), on_epoch)
        history = fit(model, train_data, val_data, config, progress=_part(progress, 0.1, 0.9), cancel=cancel,
                      on_batch=on_batch, on_epoch=epoch_line, checkpoint_path=checkpoint)
        seconds = time.monotonic() - started
        epochs_run = len(history.get("loss", []))
        best_epoch = _best_epoch(history, monitored(val_data))
        stopped_early = epochs_run < config.epochs
        if stopped_early:
            log(f"stopped early after epoch {epochs_run}: {monitored(val_data)} did not improve for "
                f"{config.patience} epochs (best: epoch {best_epoch})")
        if checkpoint.exists():
            model.load_weights(checkpoint)  # back to the best epoch's weights
        if cancel is not None:
            cancel.raise_if_cancelled()
        log("evaluating on held-out data")
        if progress is not None:
            progress(0.9, "evaluating on held-out data")
        metrics = task.evaluate(model, config, info, progress=_part(progress, 0.9, 1.0), cancel=cancel)
    except TrainingCancelled:
        raise
    except Cancelled:
        raise TrainingCancelled(checkpoint if checkpoint.exists() else None) from None
    except Exception as exc:  # building the model or evaluating it can exhaust the GPU too
        if isinstance(exc, InputError) or not is_out_of_memory(exc):
            raise
        raise out_of_memory_error(config.batch_size) from exc
    fields = {k: v for k, v in (task.card_fields(config, info) or {}).items() if k in _CARD_FIELDS}
    card = ModelCard(name=config.name, task=task.name, created=date.today().isoformat(), metrics=metrics or {},
                     training=_training_section(config, info, train_data, val_data, history, best_epoch,
                                                seconds, device, backend, keras_module.__version__),
                     **fields)
    if (out_dir / f"{config.name}.keras").exists():
        log(f"replacing the model already at {out_dir / f'{config.name}.keras'}")
    entry = registry.save_model(model, card, out_dir)
    if card.key_metrics():
        log(f"held-out: {card.key_metrics(limit=8)}")
    log(f"saved {entry.path} (card {entry.card_path.name}); TensorBoard logs in {log_dir}")
    if progress is not None:
        progress(1.0, f"saved {entry.name}")
    return TrainResult(entry, card, history, best_epoch, stopped_early, log_dir)


def _part(progress, start: float, end: float):
    """A progress callable mapping 0..1 onto start..end of the whole run's bar (None stays None: the
    steps then report nothing)."""
    return None if progress is None else sub_progress(progress, start, end)


def _epoch_logger(log, monitor: str, on_epoch):
    def report(epoch):
        names = sorted((k for k in epoch.logs if k != "learning_rate"), key=lambda k: (k not in ("loss", monitor), k))
        numbers = ", ".join(f"{k} {epoch.logs[k]:.4g}" for k in names)
        log(f"epoch {epoch.epoch}/{epoch.epochs}: {numbers}{' (best)' if epoch.improved else ''}, "
            f"{epoch.seconds:.1f} s")
        if on_epoch is not None:
            on_epoch(epoch)
    return report


def _best_epoch(history: dict, monitor: str) -> int:
    values = history.get(monitor) or []
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    return min(finite)[1] + 1 if finite else 0


def _known(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if v is not None}


def _samples(data) -> int | None:
    if data is None:
        return 0
    if isinstance(data, tuple):
        return len(data[0])
    count = getattr(data, "num_samples", None)
    return int(count) if count is not None else None


def _training_section(config, info, train_data, val_data, history, best_epoch, seconds, device, backend,
                      keras_version) -> dict:
    import ctviewer

    at_best = {k: round(v[best_epoch - 1], 6) for k, v in history.items() if best_epoch and len(v) >= best_epoch}
    section = {
        "data": info.get("description") or config.data,
        "samples": _known({"train": info.get("train_samples", _samples(train_data)),
                           "validation": info.get("val_samples", _samples(val_data))}),
        "studies": _known({"train": info.get("train_studies"), "validation": info.get("val_studies")}),
        "validation_fraction": config.validation_fraction,
        "epochs": len(history.get("loss", [])), "epochs_planned": config.epochs, "best_epoch": best_epoch,
        "at_best_epoch": at_best,
        # the curves stay with the model: per-epoch values of every logged quantity
        "history": {k: [round(float(x), 6) for x in v] for k, v in history.items() if k != "learning_rate"},
        "batch_size": batch_size_of(train_data, config),
        "learning_rate": config.learning_rate, "augmentation": config.augmentation, "patience": config.patience,
        "seed": config.seed, "seconds": round(seconds, 1), "device": device, "backend": backend,
        "keras_version": keras_version, "ctviewer_version": ctviewer.__version__,
    }
    if backend == "tensorflow":
        import tensorflow as tf

        section["tensorflow_version"] = tf.__version__
    if config.extra:
        section["extra"] = config.extra
    return section

"""The training loop every task shares: Keras ``Model.fit`` with what a user watching it needs.

Per batch: loss, metrics, samples/s and the time left for the whole run (to ``on_batch`` and
``progress``). Between batches: the cancel token (``Cancelled`` out of :func:`fit`; the best
checkpoint so far stays on disk). Per epoch: the best model saved (on val_loss), early stopping,
TensorBoard logs. Running out of memory (the GPU's, or a MemoryError while making batches) becomes
an InputError suggesting a smaller batch, and smaller inputs where the data names them.

The training settings come from a :class:`TrainConfig`, read from a TOML file (``ctviewer train``)
or filled by the GUI's Train dialog. Data may be ``keras.utils.PyDataset`` objects (any backend) or
numpy ``(x, y)`` tuples.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ctviewer.errors import Cancelled, InputError
from ctviewer.io.atomic import atomic_path
from ctviewer.ml.registry import ModelEntry, _NAME

#: Keys of a config's [data] table whose values are paths, resolved against the config's folder:
#: those named like this or ending in "_" + one of these words.
PATH_WORDS = ("path", "paths", "dir", "dirs", "folder", "folders", "file", "files", "csv", "npz")


@dataclass
class TrainConfig:
    task: str
    name: str
    data: dict = field(default_factory=dict)    # task-specific: sources, paths, counts
    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 1e-3
    validation_fraction: float = 0.2
    augmentation: bool = True
    patience: int = 6                            # epochs without a better val_loss before stopping; 0: never
    seed: int = 0
    out_dir: Path | None = None                  # default: registry.user_models_dir()
    log_dir: Path | None = None                  # default: <out_dir>/logs/<name>-<time>
    extra: dict = field(default_factory=dict)    # task-specific knobs
    base_dir: Path | None = None                 # the config file's folder (relative data paths start here)

    def __post_init__(self):
        _check_values(self, None)

    def check_keys(self, data_keys, extra_keys) -> None:
        """InputError naming any [data] / [extra] key the task does not know (a misspelt option would
        otherwise be ignored silently), with the keys it does know."""
        for table, keys, name in ((self.data, data_keys, "data"), (self.extra, extra_keys, "extra")):
            unknown = sorted(set(table) - set(keys))
            if unknown:
                raise InputError(f"unknown key(s) in [{name}] for the {self.task} task: {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(keys))})")

    def resolve(self, value: str | Path) -> Path:
        """A path from the config: relative ones start at the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Read a training config (top-level keys, [data] and [extra] tables; see models/README.md)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("training config not found", path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"training config cannot be read: {exc}", path) from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"not a valid TOML file: {exc}", path) from None
        return cls.from_dict(data, base_dir=path.resolve().parent, source=path)

    @classmethod
    def from_dict(cls, data: dict, *, base_dir: Path | None = None, source=None) -> TrainConfig:
        """Check keys and types (InputError naming ``source`` and the key), resolve relative paths."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "base_dir"}
        values = {}
        for key, value in data.items():
            if key not in fields:
                hint = " (write the settings at the top level, not in a table)" if isinstance(value, dict) else ""
                raise InputError(f"unknown key '{key}'{hint}; known keys: {', '.join(fields)}", source)
            values[key] = _typed(key, value, source)
        for key in ("task", "name"):
            if key not in values:
                raise InputError(f"missing key '{key}'", source)
        base = Path(base_dir) if base_dir is not None else None
        for key in ("out_dir", "log_dir"):
            if values.get(key) is not None and base is not None and not values[key].is_absolute():
                values[key] = base / values[key]
        if base is not None:
            values["data"] = {k: _resolve_paths(k, v, base) for k, v in values.get("data", {}).items()}
        try:
            return cls(**values, base_dir=base)
        except InputError as exc:  # a value out of range: name the file it came from
            raise InputError(exc.reason, source) from None


_TYPES = {"task": str, "name": str, "data": dict, "epochs": int, "batch_size": int, "learning_rate": float,
          "validation_fraction": float, "augmentation": bool, "patience": int, "seed": int,
          "out_dir": Path, "log_dir": Path, "extra": dict}
_TYPE_WORDS = {str: "text", dict: "a table", int: "a whole number", float: "a number", bool: "true or false",
               Path: "a path (text)"}


def _typed(key: str, value, source):
    wanted = _TYPES[key]
    ok = {int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          Path: isinstance(value, (str, Path))}.get(wanted, isinstance(value, wanted))
    if not ok:
        raise InputError(f"key '{key}' should be {_TYPE_WORDS[wanted]}, not {value!r}", source)
    return float(value) if wanted is float else Path(value).expanduser() if wanted is Path else value


def _check_values(config: TrainConfig, source) -> None:
    problems = [(config.epochs >= 1, "epochs", "at least 1"), (config.batch_size >= 1, "batch_size", "at least 1"),
                (config.learning_rate > 0, "learning_rate", "above 0"), (config.patience >= 0, "patience", "0 or more"),
                (0 < config.validation_fraction < 1, "validation_fraction", "between 0 and 1")]
    for ok, key, rule in problems:
        if not ok:
            raise InputError(f"key '{key}' should be {rule}, not {getattr(config, key)}", source)
    if not _NAME.fullmatch(config.name or ""):
        raise InputError(f"key 'name' should be usable as a file name (letters, digits, '.', '_', '-'), "
                         f"not {config.name!r}", source)


def _resolve_paths(key: str, value, base: Path):
    is_path = key in PATH_WORDS or key.rsplit("_", 1)[-1] in PATH_WORDS
    if not is_path:
        return value
    if isinstance(value, str):
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else base / path)
    if isinstance(value, list):
        return [_resolve_paths(key, v, base) for v in value]
    return value


@dataclass
class BatchReport:
    epoch: int           # 1-based
    epochs: int
    batch: int           # 1-based, within the epoch
    batches: int
    loss: float
    metrics: dict
    samples_per_s: float
    eta_s: float         # for the whole run (all epochs left), not just this epoch


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    logs: dict           # loss, val_loss and the metrics, as floats
    improved: bool       # a new best: the checkpoint was written
    seconds: float


@dataclass
class TrainResult:
    entry: ModelEntry | None
    card: object         # ModelCard
    history: dict        # name -> one float per epoch
    best_epoch: int      # 1-based
    stopped_early: bool
    log_dir: Path


class TrainingCancelled(Cancelled):
    """Training was cancelled; ``checkpoint`` is the best model saved before that (None if none yet)."""

    def __init__(self, checkpoint: Path | None):
        self.checkpoint = checkpoint
        super().__init__(f"training cancelled; best checkpoint kept at {checkpoint}" if checkpoint
                         else "training cancelled before the first epoch ended; nothing was saved")

    def __reduce__(self):  # crosses from the training process to the GUI's (ctviewer.ml.child)
        return (type(self), (self.checkpoint,))


def batch_size_of(data, config: TrainConfig) -> int:
    """The batch size the data is served in (a PyDataset may say so through a ``batch_size`` attribute)."""
    return int(config.batch_size if isinstance(data, tuple) else getattr(data, "batch_size", None)
               or config.batch_size)


def monitored(val_data) -> str:
    """The number that picks the best epoch: val_loss when there is validation data."""
    return "loss" if val_data is None else "val_loss"


def _can_write_tensorboard() -> bool:
    """Keras' TensorBoard callback writes through ``tensorflow.summary`` on every backend: a machine with
    only JAX (a lent GPU machine) trains without the logs rather than failing at the first epoch."""
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def fit(model, train_data, val_data, config: TrainConfig, *, progress=None, cancel=None,
        on_batch: Callable[[BatchReport], None] | None = None,
        on_epoch: Callable[[EpochReport], None] | None = None,
        checkpoint_path: Path | None = None) -> dict:
    """Train a compiled ``model``; return its history (name -> one float per epoch).

    TensorBoard logs go to ``config.log_dir`` when it is set. Raises :class:`TrainingCancelled`
    (a ``Cancelled``) when ``cancel`` is set, and InputError when the device runs out of memory or
    the loss stops being a number.
    """
    from ctviewer.ml.backend import is_out_of_memory, keras

    keras_module = keras()
    batch_size = batch_size_of(train_data, config)
    reporter = _reporter_class()(batch_size, monitored(val_data), checkpoint_path, progress, cancel, on_batch, on_epoch)
    callbacks = [reporter]
    if config.patience > 0:
        callbacks.append(keras_module.callbacks.EarlyStopping(monitor=monitored(val_data), patience=config.patience))
    if config.log_dir is not None and _can_write_tensorboard():
        callbacks.append(keras_module.callbacks.TensorBoard(log_dir=str(config.log_dir), write_graph=False))
    if isinstance(train_data, tuple):
        x, y, kwargs = train_data[0], train_data[1], {"batch_size": batch_size, "shuffle": True}
    else:
        x, y, kwargs = train_data, None, {}
    try:
        history = model.fit(x, y, validation_data=val_data, epochs=config.epochs, callbacks=callbacks,
                            verbose=0, **kwargs)
    except BaseException as exc:
        for callback in callbacks[1:]:  # Keras skips on_train_end on an error: flush the TensorBoard files
            if isinstance(callback, keras_module.callbacks.TensorBoard):
                callback.on_train_end()
        if isinstance(exc, Cancelled):
            raise TrainingCancelled(reporter.saved) from None
        if isinstance(exc, Exception) and not isinstance(exc, InputError) and is_out_of_memory(exc):
            raise out_of_memory_error(batch_size, getattr(train_data, "memory_hint", "")) from exc
        raise
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def out_of_memory_error(batch_size: int, sizes: str = "") -> InputError:
    """What to tell a user whose training ran out of memory: try half the batch, or smaller inputs.

    ``sizes`` names what else to shrink in the config's words, e.g. "smaller patches ([extra] patch,
    now [32, 64, 64])"; training data gives it to :func:`fit` as a ``memory_hint`` attribute.
    """
    from ctviewer.ml.backend import device_description

    where = "GPU memory" if device_description().startswith("GPU") else "memory"
    if batch_size > 1:
        hint = f"try a smaller batch ({batch_size // 2})" + (f" or {sizes}" if sizes else "")
    else:
        hint = f"try {sizes}" if sizes else "the model or its input is too large for this device"
    return InputError(f"out of {where} with batch size {batch_size}; {hint}")


@functools.cache
def _reporter_class():
    """The Keras callback class, made on first use since Keras is imported lazily."""
    from ctviewer.ml.backend import keras

    return type("TrainingReporter", (_Reporter, keras().callbacks.Callback), {})


class _Reporter:
    """Per-batch reports, cancel between batches, the best checkpoint (mixed into a Keras Callback)."""

    def __init__(self, batch_size, monitor, checkpoint_path, progress, cancel, on_batch, on_epoch):
        super().__init__()
        self.batch_size, self.monitor, self.checkpoint_path = batch_size, monitor, checkpoint_path
        self.progress, self.cancel, self.on_batch, self.on_epoch = progress, cancel, on_batch, on_epoch
        self.best, self.saved, self.done = math.inf, None, 0

    def _check_cancel(self) -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()

    def on_train_begin(self, logs=None):
        self.epochs, self.steps = self.params["epochs"], self.params["steps"] or 1
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_started = epoch, time.monotonic()

    def on_train_batch_begin(self, batch, logs=None):
        self._check_cancel()

    def on_test_batch_end(self, batch, logs=None):
        self._check_cancel()

    def on_train_batch_end(self, batch, logs=None):
        logs = dict(logs or {})
        loss = float(logs.pop("loss", math.nan))
        if not math.isfinite(loss):
            raise InputError(f"the loss became {loss} in epoch {self.epoch + 1}, batch {batch + 1}: training "
                             f"diverged; try a smaller learning rate")
        self.done += 1
        elapsed = time.monotonic() - self.started
        left = self.epochs * self.steps - self.done
        report = BatchReport(self.epoch + 1, self.epochs, batch + 1, self.steps, loss,
                             {k: float(v) for k, v in logs.items()}, self.done * self.batch_size / max(elapsed, 1e-9),
                             elapsed / self.done * left)
        if self.on_batch is not None:
            self.on_batch(report)
        if self.progress is not None:
            self.progress(self.done / (self.epochs * self.steps),
                          f"epoch {report.epoch}/{self.epochs}, batch {report.batch}/{self.steps}, "
                          f"loss {loss:.4g}, {format_seconds(report.eta_s)} left")
        self._check_cancel()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        value = logs.get(self.monitor, math.nan)
        improved = value < self.best  # False for NaN
        if improved:
            self.best = value
            if self.checkpoint_path is not None:
                with atomic_path(self.checkpoint_path) as tmp:  # a crash mid-save keeps the previous best
                    self.model.save(tmp)
                self.saved = self.checkpoint_path
        if self.on_epoch is not None:
            self.on_epoch(EpochReport(epoch + 1, self.epochs, logs, improved, time.monotonic() - self.epoch_started))


def format_seconds(seconds: float) -> str:
    """Time for people: "45 s", "3 min 20 s", "2 h 05 min"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"

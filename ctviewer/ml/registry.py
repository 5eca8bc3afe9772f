"""The models a user can run: the shipped ones (``<repo>/models``) and their own (the user models folder).

Each model is ``NAME.keras`` with its card ``NAME.json`` beside it. Listing never fails on a broken
entry: it is skipped and described in ``list_problems()``. Loading refuses, with the reason, a model
without a card, of another task, from a newer ctviewer, or that Keras cannot read; it always uses
``safe_mode=True`` so a model file cannot run arbitrary code (no pickled lambdas).
"""

from __future__ import annotations

import importlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ctviewer.errors import InputError
from ctviewer.io.atomic import atomic_path
from ctviewer.io.guards import check_archive
from ctviewer.ml.cards import FORMAT_VERSION, ModelCard

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models"

#: Modules whose custom layers (registered with package="ctviewer") models may contain; imported
#: before loading so that Keras finds them by name.
ARCHITECTURE_MODULES = ["ctviewer.ml.locator", "ctviewer.ml.unet", "ctviewer.ml.vgg_unet"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def user_models_dir() -> Path:
    """Where trained models go: $CTVIEWER_MODELS_DIR, else the user's data folder (…/ctviewer/models)."""
    configured = os.environ.get("CTVIEWER_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ctviewer")) / "models"


@dataclass
class ModelEntry:
    card: ModelCard
    path: Path        # NAME.keras
    card_path: Path   # NAME.json
    shipped: bool

    @property
    def name(self) -> str:
        return self.path.stem


def _folders() -> list[tuple[Path, bool]]:
    """The model folders, the user's first (a user's model shadows a shipped one of the same name)."""
    user = user_models_dir()
    folders = [(user, False)]
    if not (SHIPPED_DIR.exists() and user.exists() and SHIPPED_DIR.samefile(user)):
        folders.append((SHIPPED_DIR, True))
    return folders


def _read_entry(model_path: Path, shipped: bool) -> ModelEntry:
    card_path = model_path.with_suffix(".json")
    if not card_path.is_file():
        raise InputError(f"no model card beside the model (expected {card_path.name})", model_path)
    card = ModelCard.read(card_path)
    # The archive is judged from its zip directory (milliseconds) before Keras or TensorFlow start:
    # Keras would unpack a 3 MB zip bomb to gigabytes before noticing anything wrong.
    if zipfile.is_zipfile(model_path):  # anything else Keras refuses by itself, without unpacking
        check_archive(model_path, what="model file")
    return ModelEntry(card, model_path, card_path, shipped)


def _check(entry: ModelEntry, task: str | None) -> ModelEntry:
    card = entry.card
    if card.format_version > FORMAT_VERSION:
        raise InputError(f"made by a newer ctviewer (format {card.format_version}); this one reads up to "
                         f"{FORMAT_VERSION}", entry.path)
    if task is not None and card.task != task:
        raise InputError(f"is a {card.task} model, not a {task} model", entry.path)
    return entry


def task_problem(entry: ModelEntry) -> str | None:
    """Why a listed model cannot be run here (its card names a task this ctviewer has no code for), or None."""
    from ctviewer.ml.tasks import task_names

    known = task_names()
    if entry.card.task in known:
        return None
    return (f"{entry.path}: card names the task '{entry.card.task}', which this ctviewer does not know "
            f"(known: {', '.join(known)}); unusable")


def scan_models(task: str | None = None) -> tuple[list[ModelEntry], list[str]]:
    """Both at once: the usable models (as :func:`list_models`) and the skipped entries (:func:`list_problems`)."""
    entries, problems = [], []
    for folder, shipped in reversed(_folders()):  # shipped first in listings
        if not folder.is_dir():
            continue
        for model_path in sorted(folder.glob("*.keras")):
            try:
                entry = _check(_read_entry(model_path, shipped), None)
            except InputError as exc:
                problems.append(f"{exc}; skipped")
                continue
            if (why := task_problem(entry)) is not None:   # a card of a newer or foreign ctviewer
                problems.append(why)
                continue
            if task is None or entry.card.task == task:
                entries.append(entry)
        for card_path in sorted(folder.glob("*.json")):
            if not card_path.with_suffix(".keras").exists():
                problems.append(f"{card_path}: model card without its model {card_path.stem}.keras; skipped")
    return entries, problems


def list_models(task: str | None = None) -> list[ModelEntry]:
    """Every usable model (shipped first, then the user's), optionally only those of one task."""
    return scan_models(task)[0]


def list_problems(task: str | None = None) -> list[str]:
    """One line per skipped entry of the model folders: "PATH: what is wrong; skipped"."""
    return scan_models(task)[1]


def find_model(name_or_path, task: str | None = None) -> ModelEntry:
    """A model by name (the user's folder first, then the shipped one) or by the path of its .keras/.json."""
    if isinstance(name_or_path, ModelEntry):
        return _check(name_or_path, task)
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".keras", ".json") or os.sep in text or path.is_file():
        model_path = path.with_suffix(".keras")
        if not model_path.is_file():
            raise InputError("model file not found", model_path)
        shipped = SHIPPED_DIR.exists() and model_path.resolve().parent == SHIPPED_DIR.resolve()
        return _check(_read_entry(model_path, shipped), task)
    for folder, shipped in _folders():
        model_path = folder / f"{text}.keras"
        if model_path.is_file():
            return _check(_read_entry(model_path, shipped), task)
    known = ", ".join(sorted({e.name for e in list_models(task)})) or "none"
    where = " or ".join(str(f) for f, _ in _folders())
    raise InputError(f"no model named '{text}' in {where} (models{' for ' + task if task else ''}: {known})")


def import_architectures() -> None:
    """Register the custom layers of ctviewer's architectures with Keras (needed before loading)."""
    for module in ARCHITECTURE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but something it needs is missing: a real fault
                raise


def load_model(name_or_path_or_entry, task: str | None = None, *, compile: bool = False):
    """Load a model and its card: ``(keras.Model, ModelCard)``; InputError with the reason if refused.

    ``compile=False`` by default: inference needs no optimizer or loss, and a model then loads even
    when its training loss is not registered with Keras.
    """
    from ctviewer.ml.backend import keras

    entry = find_model(name_or_path_or_entry, task)  # the archive is judged there, before Keras starts
    keras_module = keras()
    import_architectures()
    try:
        model = keras_module.saving.load_model(entry.path, safe_mode=True, compile=compile)
    except Exception as exc:  # zip, HDF5, config and safe-mode errors all mean: this file cannot be used
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise InputError(f"cannot be read as a Keras model ({reason})", entry.path) from exc
    return model, entry.card


#: task -> ((path, mtime), (model, card)): the last model of each task stays loaded.
_KEPT: dict = {}


def load_model_kept(name_or_path_or_entry, task: str | None = None):
    """:func:`load_model`, keeping the last model of each task loaded while its file stays the same: the
    dock and the folder commands run one model on study after study, and loading costs seconds."""
    entry = find_model(name_or_path_or_entry, task)
    key = task or entry.card.task
    stamp = (str(entry.path), entry.path.stat().st_mtime)
    kept = _KEPT.get(key)
    if kept is None or kept[0] != stamp:
        _KEPT.pop(key, None)   # let the old model go before the new one loads
        _KEPT[key] = (stamp, load_model(entry, task))
    return _KEPT[key][1]


def _without_optimizer_state(model):
    """The model with the same weights and compile settings but a fresh optimizer.

    A trained optimizer's moments (Adam keeps two per weight) would triple the file for nothing:
    shipped and user models are run, and a new training starts its own optimizer.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built:
        return model
    from ctviewer.ml.backend import keras

    k = keras()
    copy = k.models.clone_model(model)
    copy.set_weights(model.get_weights())
    # compile(), not compile_from_config(): the latter builds the optimizer's variables at once
    copy.compile(**k.saving.deserialize_keras_object(model.get_compile_config()))
    return copy


def save_model(model, card: ModelCard, folder: str | Path) -> ModelEntry:
    """Save ``NAME.keras`` and its card ``NAME.json`` in ``folder`` (created if needed), each atomically."""
    if not _NAME.fullmatch(card.name or ""):
        raise InputError(f"model name '{card.name}' cannot be a file name: use letters, digits, '.', '_', '-'")
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the models folder: {exc.strerror or exc}", folder) from exc
    model_path, card_path = folder / f"{card.name}.keras", folder / f"{card.name}.json"
    with atomic_path(model_path) as tmp:  # the temporary name keeps the .keras suffix Keras insists on
        _without_optimizer_state(model).save(tmp)
    card.write(card_path)
    shipped = SHIPPED_DIR.exists() and folder.resolve() == SHIPPED_DIR.resolve()
    return ModelEntry(card, model_path, card_path, shipped)

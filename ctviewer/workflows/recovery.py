"""Never lose label edits: autosave to a recovery folder, restore after a crash.

While the user edits a label layer, the GUI notes what changed (:meth:`LabelRecovery.note_edit`,
a few set operations). When :class:`Autosaver` says a save is due it takes a
:meth:`~LabelRecovery.snapshot` on the GUI thread - a copy of only the chunks of slices that
changed - and a worker :meth:`~LabelRecovery.write`\\ s it. After a crash, reopening the same image
finds the autosave (:func:`find_recoveries`) and :func:`restore` rebuilds the label map.

On disk, ``<root>/<image key>/<layer>/`` holds chunk files ``cNNNNN-gGGGGGG.npy`` (chunk NNNNN,
slices ``NNNNN*16 ...`` along axis 0, as saved by write number GGGGGG) and ``manifest.json``,
written last and atomically. A write never overwrites a chunk file the current manifest names
and only deletes old ones after its manifest is in place, so a crash at any moment leaves the
last complete autosave restorable exactly. Chunks overlay the label file the layer was opened
from (``base_path``) or zeros - never the image: a layer made from the image (a new layer, bins, a
prediction) has no label file, and a manifest that names the image (earlier versions wrote
such) is read as naming none, so image values never become label ids. Temporary files of a write
that was killed are removed when the image's autosaves are next looked for or written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.atomic import atomic_path, atomic_write_text, remove_leftovers
from ctviewer.io.opened import is_image_file
from ctviewer.progress import CancelToken, Progress, step_progress

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_CHUNK_FILE = re.compile(r"^c(\d{5})-g(\d+)\.npy$")
#: What the user is told where an autosave named the image as the labels' own file.
IMAGE_AS_BASE = ("the autosave named the image itself as the labels' file; only the painted slices "
                 "are restored, the rest starts empty")


def recovery_root() -> Path:
    """Where autosaves live: ``$CTVIEWER_RECOVERY_DIR``, else the user's state folder."""
    env = os.environ.get("CTVIEWER_RECOVERY_DIR")
    if env:
        return Path(env)
    import platformdirs

    return platformdirs.user_state_path("ctviewer") / "recovery"


def image_key(image: Volume) -> str:
    """A stable id of "the same image" across sessions: its file (resolved) and shape, and its
    DICOM series or 4D volume index where it has one; generated images go by name and shape."""
    where = f"file:{Path(image.source).expanduser().resolve()}" if image.source else f"name:{image.name}"
    parts = [where, "x".join(str(n) for n in image.shape)]
    parts += [f"{k}={image.meta[k]}" for k in ("series_uid", "volume_index") if image.meta.get(k) not in (None, "")]
    return hashlib.sha1("\n".join(parts).encode("utf-8")).hexdigest()[:20]


def _layer_folder(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:40] or "labels"
    return f"{slug}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def _file_stat(path: str | None) -> tuple[int, int] | None:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st else None


def _table_to_json(table: LabelTable) -> list[dict]:
    return [{"id": lab.id, "name": lab.name, "colour": list(lab.colour), "visible": lab.visible,
             "locked": lab.locked, "opacity": lab.opacity} for lab in table]


def _table_from_json(items: list[dict]) -> LabelTable:
    return LabelTable([Label(int(d["id"]), str(d["name"]), tuple(int(c) for c in d["colour"]),
                             visible=bool(d.get("visible", True)), locked=bool(d.get("locked", False)),
                             opacity=float(d.get("opacity", 1.0))) for d in items])


class _WriteState:
    """Shared by a layer's recovery and its snapshots: writes of one layer run one at a time,
    in order, and none lands after :meth:`LabelRecovery.discard`."""

    def __init__(self, generation: int) -> None:
        self.lock = threading.Lock()  # one write at a time
        self.manifest_lock = threading.Lock()  # held only while a manifest is replaced
        self.written = generation
        self.discarded_through = 0


@dataclass
class RecoverySnapshot:
    """What one autosave writes: the changed chunks (copies) and the manifest to write after them."""

    folder: Path
    generation: int
    chunks: dict[int, np.ndarray]
    files: dict[int, str]  # every chunk saved so far -> its file, after this write
    manifest: dict
    _state: _WriteState = field(repr=False)
    _requeue: object = field(repr=False)  # callable(indices): mark chunks dirty again

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.chunks.values())


class LabelRecovery:
    """Autosave of one label layer of one image. Chunks of CHUNK slices along axis 0."""

    CHUNK = 16

    def __init__(self, image: Volume, layer_name: str, base_path: str | None = None, root: Path | None = None):
        self.image = image
        self.layer_name = layer_name
        self.key = image_key(image)
        self.folder = Path(root if root is not None else recovery_root()) / self.key / _layer_folder(layer_name)
        self._set_base(base_path)
        self._files: dict[int, str] = {}
        self._dirty: set[int] = set()
        self._table_dirty = False
        self._dirty_lock = threading.Lock()  # the worker re-marks chunks of a failed write
        self.edit_count = 0
        # continue numbering after an autosave left by an earlier session, so ours supersede it
        previous = _read_manifest(self.folder / MANIFEST)
        self._generation = int(previous.get("generation", 0)) if previous else 0
        self._state = _WriteState(self._generation)

    def _set_base(self, base_path) -> None:
        if is_image_file(base_path, self.image):   # the image is never the labels' file
            base_path = None
        self.base_path = str(Path(base_path).resolve()) if base_path else None
        self._base_stat = _file_stat(self.base_path)

    @property
    def n_chunks(self) -> int:
        return -(-self.image.shape[0] // self.CHUNK)

    # -- GUI thread ------------------------------------------------------------------------------
    def note_edit(self, bbox=None) -> None:
        """Mark the chunks a change touched (``bbox``: 3 slices; ``None`` = everything)."""
        n = self.image.shape[0]
        start, stop = (0, n) if bbox is None else bbox[0].indices(n)[:2]
        with self._dirty_lock:
            self._dirty.update(range(start // self.CHUNK, -(-stop // self.CHUNK)))
        self.edit_count += 1

    def note_table_edit(self) -> None:
        """A label was renamed, recoloured, added or removed: the next autosave keeps the table."""
        self._table_dirty = True
        self.edit_count += 1

    @property
    def dirty(self) -> bool:
        return bool(self._dirty) or self._table_dirty

    def snapshot(self, labels: LabelMap) -> RecoverySnapshot:
        """Copy the changed chunks and the table; cheap (one brush stroke: a chunk or two)."""
        array = labels.array
        if array.shape[:3] != self.image.shape:
            raise ValueError(f"labels {array.shape} are not on the grid of the image {self.image.shape}")
        with self._dirty_lock:
            dirty, self._dirty = sorted(self._dirty), set()
        self._table_dirty = False
        self._generation += 1
        gen = self._generation
        chunks = {i: array[i * self.CHUNK:(i + 1) * self.CHUNK].copy() for i in dirty}
        for i in dirty:
            self._files[i] = f"c{i:05d}-g{gen:06d}.npy"
        img = self.image
        manifest = {
            "format": 1, "image_source": img.source, "image_name": img.name, "image_key": self.key,
            "shape": list(img.shape), "dtype": array.dtype.name, "spacing": list(img.spacing),
            "origin": list(img.origin), "direction": np.asarray(img.direction).tolist(),
            "layer_name": self.layer_name, "base_path": self.base_path,
            "base_stat": list(self._base_stat) if self._base_stat else None,
            "table": _table_to_json(labels.table), "chunk_size": self.CHUNK,
            "generation": gen, "edit_count": self.edit_count,
        }
        return RecoverySnapshot(self.folder, gen, chunks, dict(self._files), manifest, self._state, self._requeue)

    def _requeue(self, indices) -> None:
        with self._dirty_lock:
            self._dirty.update(int(i) for i in indices)

    def resume(self, entry: RecoveredLabels) -> None:
        """Go on autosaving into a restored autosave: its chunks stay part of the next ones."""
        if entry.folder.resolve() != self.folder.resolve():  # restored into a layer of another name
            self.note_edit(None)
            return
        self._files = {i: name for i, name in entry.chunks.items() if (entry.folder / name).is_file()}
        self._generation = max(self._generation, entry.generation)
        self._state.written = max(self._state.written, entry.generation)
        self._set_base(entry.base_path)  # the restored map stands on the base file as it is now

    def discard(self, saved_to: str | Path | None = None) -> None:
        """The user saved the labels: drop the autosave. With ``saved_to``, later autosaves
        overlay that file. Call it on the GUI thread (it only removes files), like snapshot()."""
        with self._state.manifest_lock:
            self._state.discarded_through = self._generation
            shutil.rmtree(self.folder, ignore_errors=True)
        _remove_if_empty(self.folder.parent)
        with self._dirty_lock:
            self._dirty.clear()
        self._files.clear()
        self._table_dirty = False
        if saved_to is not None:
            self._set_base(saved_to)

    # -- worker thread ---------------------------------------------------------------------------
    @staticmethod
    def write(snapshot: RecoverySnapshot, progress: Progress | None = None,
              cancel: CancelToken | None = None) -> Path:
        """Write the snapshot's chunks, then its manifest; returns the manifest's path."""
        state, folder = snapshot._state, snapshot.folder
        target = folder / MANIFEST
        try:
            with state.lock:
                if snapshot.generation <= max(state.written, state.discarded_through):
                    return target  # a later autosave or a save by the user already covers it
                folder.mkdir(parents=True, exist_ok=True)
                tick = step_progress(progress, cancel, len(snapshot.chunks) + 1, "Autosaving labels")
                for n, (i, data) in enumerate(sorted(snapshot.chunks.items())):
                    tick(n)
                    with atomic_path(folder / snapshot.files[i]) as tmp, open(tmp, "wb") as fh:
                        np.save(fh, data, allow_pickle=False)
                missing = [i for i, name in snapshot.files.items()
                           if i not in snapshot.chunks and not (folder / name).is_file()]
                if missing:
                    snapshot._requeue(missing)  # the next autosave copies them from the live map
                    raise OSError(f"autosave incomplete: {len(missing)} chunk files of an earlier autosave "
                                  f"are missing in {folder}; the next autosave rewrites them")
                tick(len(snapshot.chunks))
                manifest = dict(snapshot.manifest, saved_at=datetime.now().astimezone().isoformat(timespec="seconds"),
                                chunks=[[i, name] for i, name in sorted(snapshot.files.items())])
                with state.manifest_lock:
                    if snapshot.generation <= state.discarded_through:
                        shutil.rmtree(folder, ignore_errors=True)  # discarded while we wrote
                        return target
                    atomic_write_text(target, json.dumps(manifest, indent=1))
                state.written = snapshot.generation
                _remove_unused(folder, set(snapshot.files.values()))
        except BaseException:
            snapshot._requeue(snapshot.chunks)  # nothing of this write can be relied on
            raise
        return target


def _remove_unused(folder: Path, keep: set[str]) -> None:
    for path in folder.iterdir():
        try:
            if _CHUNK_FILE.match(path.name) and path.name not in keep:
                path.unlink()
        except OSError as exc:  # another process may hold it; the next write tries again
            log.debug("could not remove %s: %s", path, exc)
    remove_leftovers(folder)


def remove_leftover_files(root: Path | None = None) -> None:
    """At start: the temporary files that writes killed mid-way left in any autosave folder."""
    root = Path(root if root is not None else recovery_root())
    try:
        layers = [layer for image in root.iterdir() if image.is_dir() for layer in image.iterdir() if layer.is_dir()]
    except OSError:
        return   # no recovery folder yet, or not readable: nothing of ours to tidy
    for layer in layers:
        remove_leftovers(layer)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # other layers of the image still have autosaves


def _read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable autosave manifest %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


# -- after a crash -----------------------------------------------------------------------------
@dataclass
class RecoveredLabels:
    """One autosave found for an image: what to tell the user, and what :func:`restore` reads."""

    image_key: str
    layer_name: str
    base_path: str | None
    saved_at: str
    folder: Path
    shape: tuple[int, int, int]
    dtype: str
    edit_count: int
    generation: int
    chunks: dict[int, str]
    chunk_size: int
    table: list[dict]
    geometry: dict
    base_changed: bool = False
    #: things the user must know before restoring (the label file changed or is gone)
    messages: list[str] = field(default_factory=list)


def find_recoveries(image: Volume, root: Path | None = None) -> list[RecoveredLabels]:
    """Autosaves of ``image``'s label layers, newest first."""
    key = image_key(image)
    folder = Path(root if root is not None else recovery_root()) / key
    if not folder.is_dir():
        return []
    found = []
    for layer in sorted(p for p in folder.iterdir() if p.is_dir()):
        remove_leftovers(layer)   # what a write killed mid-way left
        m = _read_manifest(layer / MANIFEST)  # none: only chunks of a first save cut short
        if not m or m.get("image_key") != key or tuple(m.get("shape", ())) != image.shape:
            continue
        try:
            entry = RecoveredLabels(
                key, str(m["layer_name"]), m.get("base_path"), str(m.get("saved_at", "")), layer,
                tuple(m["shape"]), str(m["dtype"]), int(m.get("edit_count", 0)), int(m["generation"]),
                {int(i): str(name) for i, name in m["chunks"]}, int(m["chunk_size"]), list(m.get("table", [])),
                {k: m[k] for k in ("spacing", "origin", "direction")})
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring autosave %s with an incomplete manifest: %s", layer, exc)
            continue
        if is_image_file(entry.base_path, image):
            entry.base_path = None
            entry.messages.append(IMAGE_AS_BASE)
        if entry.base_path:
            recorded = tuple(m["base_stat"]) if m.get("base_stat") else None
            now = _file_stat(entry.base_path)
            if now is None:
                entry.base_changed = True
                entry.messages.append(f"the label file {entry.base_path} is gone: only the edited slices "
                                      "can be recovered, the rest starts empty")
            elif recorded is not None and now != recorded:
                entry.base_changed = True
                entry.messages.append(f"the label file {entry.base_path} changed after the autosave; "
                                      "the recovered slices are laid over its current content")
        found.append(entry)
    return sorted(found, key=lambda e: e.saved_at, reverse=True)


def restore(entry: RecoveredLabels, image: Volume) -> LabelMap:
    """The autosaved label map on ``image``'s grid; its ``warnings`` say what the user should check."""
    from ctviewer.io.label_files import read_label_map

    if tuple(entry.shape) != image.shape:
        raise InputError(f"the autosaved labels are {entry.shape[::-1]} voxels (x, y, z) but the image is "
                         f"{image.shape[::-1]}; refusing to restore them", entry.folder)
    g = entry.geometry
    saved = Volume(np.broadcast_to(np.zeros((), np.uint8), image.shape), spacing=g["spacing"],
                   origin=g["origin"], direction=g["direction"])
    if not image.same_grid(saved):
        raise InputError("the autosaved labels were made on another position or spacing of this image; "
                         "refusing to restore them", entry.folder)
    messages = list(entry.messages)
    array = None
    if is_image_file(entry.base_path, image):
        messages += [] if IMAGE_AS_BASE in messages else [IMAGE_AS_BASE]
    elif entry.base_path and Path(entry.base_path).is_file():
        try:
            base = read_label_map(entry.base_path, canonical=not image.is_photo).array
        except InputError as exc:
            messages.append(f"the label file cannot be read ({exc.reason}); the rest starts empty")
        else:
            if base.shape == image.shape:
                array = base.copy()
            else:
                messages.append(f"the label file {entry.base_path} no longer fits the image; the rest starts empty")
    if array is None:
        array = np.zeros(image.shape, np.dtype(entry.dtype))
    for i, name in sorted(entry.chunks.items()):
        start = i * entry.chunk_size
        try:
            data = np.load(entry.folder / name, allow_pickle=False)
            if data.shape[1:] != image.shape[1:] or start + data.shape[0] > image.shape[0]:
                raise ValueError(f"it holds {data.shape}")
        except (OSError, ValueError) as exc:
            messages.append(f"slices {start}-{start + entry.chunk_size - 1} could not be recovered ({exc})")
            continue
        if np.can_cast(array.dtype, data.dtype) and data.dtype.itemsize > array.dtype.itemsize:
            array = array.astype(data.dtype)  # a label id above 255 was added while editing
        array[start:start + data.shape[0]] = data
    volume = image.with_array(array, window=None, name=entry.layer_name)
    volume.warnings = []
    volume.meta = {"recovered_from": str(entry.folder)}
    labels = LabelMap(volume, _table_from_json(entry.table))
    labels.warnings = [*getattr(labels, "warnings", []), *messages]
    return labels


class Autosaver:
    """Rate limiter: due() once `interval_s` seconds have passed since the first unsaved edit (default 30 s).

    Call :meth:`saved` when the snapshot is taken: edits after it start the next interval.
    """

    def __init__(self, interval_s: float = 30.0, clock=time.monotonic):
        self.interval_s = float(interval_s)
        self._clock = clock
        self._first_edit: float | None = None

    @property
    def pending(self) -> bool:
        return self._first_edit is not None

    def note_edit(self) -> None:
        if self._first_edit is None:
            self._first_edit = self._clock()

    def due(self) -> bool:
        return self._first_edit is not None and self._clock() - self._first_edit >= self.interval_s

    def saved(self) -> None:
        self._first_edit = None

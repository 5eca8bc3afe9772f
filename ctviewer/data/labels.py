"""Label maps and their tables of names and colours.

A :class:`LabelMap` is a ``uint8``/``uint16`` array on the grid of its image with a
:class:`LabelTable` (id, name, colour, visible, locked, opacity). Tables are saved as ctviewer's
JSON label table (every field kept; the sidecar ``NAME.labels.json`` of a label map) or as an
ITK-SNAP label description file (``.txt`` / ``.label``; no ``locked``), so names and colours
survive a round trip through other tools.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from psygnal import Signal

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError

# Distinct, colour-blind-friendlier defaults for new labels (ids 1..); 0 is background.
_DEFAULT_COLOURS = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
]


def default_colour(label_id: int) -> tuple[int, int, int]:
    if label_id <= 0:
        return (0, 0, 0)
    return _DEFAULT_COLOURS[(label_id - 1) % len(_DEFAULT_COLOURS)]


@dataclass
class Label:
    id: int
    name: str
    colour: tuple[int, int, int]
    visible: bool = True
    locked: bool = False
    opacity: float = 1.0


class LabelTable:
    """Ordered labels by id. Emits ``changed`` whenever a label is added, edited or removed."""

    changed = Signal()

    def __init__(self, labels: list[Label] | None = None):
        self._labels: dict[int, Label] = {}
        for lab in labels or []:
            self._labels[lab.id] = lab

    # -- access ------------------------------------------------------------------------------
    def __iter__(self):
        return iter(sorted(self._labels.values(), key=lambda lab: lab.id))

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, label_id: int) -> bool:
        return label_id in self._labels

    def __getitem__(self, label_id: int) -> Label:
        return self._labels[label_id]

    @property
    def ids(self) -> list[int]:
        return sorted(self._labels)

    def name(self, label_id: int) -> str:
        lab = self._labels.get(int(label_id))
        return lab.name if lab else f"label {label_id}"

    # -- editing -----------------------------------------------------------------------------
    def add(self, label_id: int | None = None, name: str | None = None,
            colour: tuple[int, int, int] | None = None) -> Label:
        if label_id is None:
            label_id = max(self._labels, default=0) + 1
        lab = Label(int(label_id), name or f"Label {label_id}", tuple(colour or default_colour(label_id)))
        self._labels[lab.id] = lab
        self.changed.emit()
        return lab

    def update(self, label_id: int, **fields) -> None:
        lab = self._labels[label_id]
        for key, value in fields.items():
            setattr(lab, key, value)
        self.changed.emit()

    def remove(self, label_id: int) -> None:
        self._labels.pop(label_id, None)
        self.changed.emit()

    # -- colours for drawing -----------------------------------------------------------------
    def lut(self, size: int = 256) -> np.ndarray:
        """RGBA lookup table (``size`` x 4, uint8); hidden and unknown ids are transparent."""
        lut = np.zeros((size, 4), dtype=np.uint8)
        for lab in self._labels.values():
            if 0 < lab.id < size and lab.visible:
                lut[lab.id, :3] = lab.colour
                lut[lab.id, 3] = int(round(255 * lab.opacity))
        return lut

    @classmethod
    def for_ids(cls, ids, names: dict[int, str] | None = None) -> "LabelTable":
        names = names or {}
        return cls([Label(int(i), names.get(int(i), f"Label {int(i)}"), default_colour(int(i)))
                    for i in sorted(set(int(i) for i in ids)) if int(i) != 0])

    # -- ITK-SNAP label description files ----------------------------------------------------
    def to_itksnap(self) -> str:
        lines = [
            "################################################",
            "# ITK-SnAP Label Description File",
            "# File format: ",
            "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
            "# Fields: ",
            "#    IDX:   Zero-based index ",
            "#    -R-:   Red color component (0..255)",
            "#    -G-:   Green color component (0..255)",
            "#    -B-:   Blue color component (0..255)",
            "#    -A-:   Label transparency (0.00 .. 1.00)",
            "#    VIS:   Label visibility (0 or 1)",
            "#    IDX:   Label mesh visibility (0 or 1)",
            "#  LABEL:   Label description ",
            "################################################",
            '    0     0    0    0        0  0  0    "Clear Label"',
        ]
        for lab in self:
            r, g, b = lab.colour
            name = lab.name.replace('"', "'")
            lines.append(f"{lab.id:5d} {r:5d} {g:4d} {b:4d} {lab.opacity:8.2f} "
                         f"{int(lab.visible):2d} {int(lab.visible):2d}    \"{name}\"")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_itksnap(cls, text: str, path: str | Path | None = None) -> "LabelTable":
        labels = []
        for n, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                parts = shlex.split(line)
                idx, r, g, b = (int(p) for p in parts[:4])
                alpha, vis = float(parts[4]), int(parts[5])
                name = parts[7] if len(parts) > 7 else f"Label {idx}"
            except (ValueError, IndexError) as exc:
                raise InputError(f"line {n} is not 'IDX R G B A VIS MSH \"NAME\"': {raw!r}", path) from exc
            if not all(0 <= c <= 255 for c in (r, g, b)) or idx < 0:
                raise InputError(f"line {n} has a colour outside 0..255 or a negative id", path)
            if idx == 0:
                continue
            labels.append(Label(idx, name, (r, g, b), visible=bool(vis), opacity=min(max(alpha, 0.0), 1.0)))
        return cls(labels)

    # -- ctviewer JSON label tables ----------------------------------------------------------
    def to_json(self) -> str:
        """ctviewer's JSON label table, one label a line (easy to read, edit and diff)."""
        labels = [json.dumps({"id": lab.id, "name": lab.name, "colour": [int(c) for c in lab.colour],
                              "visible": bool(lab.visible), "locked": bool(lab.locked),
                              "opacity": round(float(lab.opacity), 4)}, ensure_ascii=False) for lab in self]
        head = json.dumps({"format": JSON_FORMAT, "version": JSON_VERSION})[:-1]
        body = "\n" + ",\n".join("  " + line for line in labels) + "\n" if labels else ""
        return head + f', "labels": [{body}]}}\n'

    @classmethod
    def from_json(cls, text: str, path: str | Path | None = None) -> "LabelTable":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"label table is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}",
                             path) from exc
        if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
            raise InputError(f'not a ctviewer label table (expected "format": "{JSON_FORMAT}")', path)
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version > JSON_VERSION:
            raise InputError(f"label table version {version!r} is not one this ctviewer reads "
                             f"(1..{JSON_VERSION})", path)
        if not isinstance(data.get("labels"), list):
            raise InputError('label table has no "labels" list', path)
        labels: dict[int, Label] = {}
        for n, item in enumerate(data["labels"]):
            lab = _label_from_json(item, f"labels[{n}]", path)
            if lab.id in labels:
                raise InputError(f"labels[{n}]: id {lab.id} appears twice", path)
            if lab.id != 0:  # 0 is background, never a label (as in ITK-SNAP files)
                labels[lab.id] = lab
        return cls(list(labels.values()))

    # -- files -------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> "LabelTable":
        """A table from ctviewer JSON (``.json``) or an ITK-SNAP label description (other suffixes)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read label table: {exc.strerror}", path) from exc
        if path.suffix.lower() == ".json":
            return cls.from_json(text, path)
        return cls.from_itksnap(text, path)

    def write(self, path: str | Path) -> Path:
        """Save atomically: ``.json`` as ctviewer JSON, ``.txt`` / ``.label`` as ITK-SNAP."""
        from ctviewer.io.atomic import atomic_write_text

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            atomic_write_text(path, self.to_json())
        elif suffix in (".txt", ".label"):
            atomic_write_text(path, self.to_itksnap())
        else:
            raise InputError(f"cannot save a label table as '{suffix or path.name}': "
                             "use .json (ctviewer) or .txt / .label (ITK-SNAP)", path)
        return path


JSON_FORMAT = "ctviewer-label-table"
JSON_VERSION = 1


def _label_from_json(item, where: str, path) -> Label:
    """One label of a JSON table, every field checked so a broken file names what is wrong."""
    if not isinstance(item, dict):
        raise InputError(f"{where} must be an object like {{\"id\": 1, \"name\": ..., \"colour\": [r, g, b]}}",
                         path)

    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    label_id = item.get("id")
    if not whole(label_id) or not 0 <= label_id <= 65535:
        raise InputError(f"{where}.id must be a whole number 0..65535, got {label_id!r}", path)
    name = item.get("name", f"Label {label_id}")
    if not isinstance(name, str):
        raise InputError(f"{where}.name must be text, got {name!r}", path)
    colour = item.get("colour", item.get("color", list(default_colour(label_id))))
    if not (isinstance(colour, list) and len(colour) == 3 and all(whole(c) and 0 <= c <= 255 for c in colour)):
        raise InputError(f"{where}.colour must be three whole numbers 0..255, got {colour!r}", path)
    flags = {}
    for key, default in (("visible", True), ("locked", False)):
        flags[key] = item.get(key, default)
        if not isinstance(flags[key], bool):
            raise InputError(f"{where}.{key} must be true or false, got {flags[key]!r}", path)
    opacity = item.get("opacity", 1.0)
    if isinstance(opacity, bool) or not isinstance(opacity, (int, float)) or not 0 <= opacity <= 1:
        raise InputError(f"{where}.opacity must be a number 0..1, got {opacity!r}", path)
    return Label(label_id, name, tuple(colour), visible=flags["visible"], locked=flags["locked"],
                 opacity=float(opacity))


def id_ranges(ids, separator: str = ", ") -> str:
    """Label ids with runs written as ranges, for messages and target texts: 1, 2, 3, 5 -> "1-3, 5"."""
    runs: list[list[int]] = []
    for i in sorted(int(v) for v in ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return separator.join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def present_ids(array: np.ndarray) -> list[int]:
    """The label ids (0 included) that occur in ``array``, counted in slabs so that a large
    uint16 map does not need a 64-bit copy of itself (np.bincount casts to intp)."""
    if array.size == 0:
        return []
    if array.dtype not in (np.uint8, np.uint16):
        return [int(v) for v in np.unique(array)]
    seen = np.zeros(256 if array.dtype == np.uint8 else 65536, dtype=bool)
    step = max(1, 8_000_000 // max(1, array[0].size))
    for start in range(0, array.shape[0], step):
        counts = np.bincount(array[start:start + step].ravel())
        seen[: counts.size] |= counts > 0
    return [int(v) for v in np.flatnonzero(seen)]


@dataclass
class LabelMap:
    """Label ids on the grid of an image (a :class:`Volume` whose array is integer)."""

    volume: Volume
    table: LabelTable = field(default_factory=LabelTable)
    #: What the user should know about how this was read (ids missing from the table, ...).
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.volume.array.dtype not in (np.uint8, np.uint16):
            arr = self.volume.array
            if arr.size and (arr.min() < 0 or arr.max() > 65535 or not np.issubdtype(arr.dtype, np.integer)
                             and not np.all(np.mod(arr, 1) == 0)):
                raise InputError("a label map must hold whole numbers 0..65535", self.volume.source or None)
            dtype = np.uint8 if (arr.size == 0 or arr.max() < 256) else np.uint16
            self.volume = self.volume.with_array(arr.astype(dtype), source=self.volume.source)
        if len(self.table) == 0:
            self.table = LabelTable.for_ids(present_ids(self.volume.array))

    @property
    def array(self) -> np.ndarray:
        return self.volume.array

    def add_missing_labels(self, source: str = "") -> list[int]:
        """Give ids that occur in the array but not in the table a "Label N" entry, and say so
        in :attr:`warnings` (one line naming ``source`` and the ids). Returns the ids added."""
        missing = [i for i in present_ids(self.array) if i != 0 and i not in self.table]
        for label_id in missing:
            self.table.add(label_id)
        if missing:
            shown = ", ".join(str(i) for i in missing[:10])
            if len(missing) > 10:
                shown += f" and {len(missing) - 10} more"
            many = len(missing) > 1
            self.warnings.append(f"{source + ': ' if source else ''}label id{'s' * many} {shown} "
                                 f"{'are' if many else 'is'} not in its label table; added as 'Label N'")
        return missing

    @classmethod
    def empty_like(cls, image: Volume, table: LabelTable | None = None) -> "LabelMap":
        arr = np.zeros(image.shape, dtype=np.uint8)
        return cls(image.with_array(arr, window=None, name=f"{image.name} labels"), table or LabelTable())

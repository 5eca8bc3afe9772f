"""Label maps and their tables of names and colours.

A :class:`LabelMap` is a ``uint8``/``uint16`` array on the grid of its image with a
:class:`LabelTable` (id, name, colour, visible, locked). Tables read and write ITK-SNAP label
description files, so names and colours survive a round trip through other tools.
"""

from __future__ import annotations

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

    @classmethod
    def read(cls, path: str | Path) -> "LabelTable":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read label table: {exc.strerror}", path) from exc
        return cls.from_itksnap(text, path)


@dataclass
class LabelMap:
    """Label ids on the grid of an image (a :class:`Volume` whose array is integer)."""

    volume: Volume
    table: LabelTable = field(default_factory=LabelTable)

    def __post_init__(self) -> None:
        if self.volume.array.dtype not in (np.uint8, np.uint16):
            arr = self.volume.array
            if arr.size and (arr.min() < 0 or arr.max() > 65535 or not np.issubdtype(arr.dtype, np.integer)
                             and not np.all(np.mod(arr, 1) == 0)):
                raise InputError("a label map must hold whole numbers 0..65535", self.volume.source or None)
            dtype = np.uint8 if (arr.size == 0 or arr.max() < 256) else np.uint16
            self.volume = self.volume.with_array(arr.astype(dtype))
        if len(self.table) == 0:
            self.table = LabelTable.for_ids(np.unique(self.volume.array))

    @property
    def array(self) -> np.ndarray:
        return self.volume.array

    @classmethod
    def empty_like(cls, image: Volume, table: LabelTable | None = None) -> "LabelMap":
        arr = np.zeros(image.shape, dtype=np.uint8)
        return cls(image.with_array(arr, window=None, name=f"{image.name} labels"), table or LabelTable())

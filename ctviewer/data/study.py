"""A study: one opened image with its layers and the cursor the linked views share."""

from __future__ import annotations

import hashlib

import numpy as np
from psygnal import Signal

from ctviewer.data.layers import LayerList
from ctviewer.data.volume import Volume


class Study:
    """An opened document: the image, its overlay layers, and the shared cursor.

    ``cursor`` is the (k, j, i) voxel the crosshair marks; every slice view follows it.
    """

    cursor_changed = Signal(tuple)

    def __init__(self, image: Volume, study_id: str | None = None):
        self.image = image
        self.layers = LayerList()
        self.id = study_id or self._default_id(image)
        z, y, x = image.shape
        self._cursor = (z // 2, y // 2, x // 2)

    @staticmethod
    def _default_id(image: Volume) -> str:
        uid = image.meta.get("series_uid")
        if uid:
            return str(uid)
        if image.source:
            return hashlib.sha1(image.source.encode()).hexdigest()[:12]
        return image.name or "study"

    @property
    def cursor(self) -> tuple[int, int, int]:
        return self._cursor

    @cursor.setter
    def cursor(self, index) -> None:
        shape = np.asarray(self.image.shape)
        clipped = tuple(int(v) for v in np.clip(np.round(np.asarray(index, dtype=float)), 0, shape - 1))
        if clipped != self._cursor:
            self._cursor = clipped
            self.cursor_changed.emit(clipped)

    def value_at(self, index) -> float | tuple:
        k, j, i = (int(v) for v in index)
        v = self.image.array[k, j, i]
        return tuple(int(c) for c in v) if np.ndim(v) else v.item()

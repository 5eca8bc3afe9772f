"""Undo/redo as sparse deltas: the voxels one edit changed, their old and their new values.

Never a copy of the volume: a brush stroke on a 512x512x600 map costs a few kilobytes, so
thousands of steps fit in memory. The history is bounded by bytes and by steps, dropping the
oldest steps first, but the newest edit is always kept, however big, so it can be undone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import psygnal


def index_dtype(size: int) -> type:
    """Flat indices fit in uint32 for maps under 4 G voxels (half the memory of int64)."""
    return np.uint32 if size < 2**32 else np.int64


def flat_index(mask: np.ndarray, region: tuple, shape) -> np.ndarray:
    """Flat indices into an array of ``shape`` of the True voxels of ``mask`` placed at ``region``.

    Slice by slice from a small table of in-slice offsets: no per-axis coordinate arrays and no
    integer division, which cost most of the time on a fill of millions of voxels.
    """
    dtype = index_dtype(int(np.prod(shape, dtype=np.int64)))
    (k0, j0, i0), (ny, nx) = (r.start for r in region), shape[1:]
    in_slice = (np.arange(j0, j0 + mask.shape[1], dtype=dtype) * nx)[:, None] \
        + np.arange(i0, i0 + mask.shape[2], dtype=dtype)
    counts = np.count_nonzero(mask.reshape(mask.shape[0], -1), axis=1)
    index = np.empty(int(counts.sum()), dtype=dtype)
    pos = 0
    for k, count in enumerate(counts):
        if count:
            np.add(in_slice[mask[k]], dtype((k0 + k) * ny * nx), out=index[pos:pos + count])
            pos += count
    return index


def bbox_of_index(index: np.ndarray, shape) -> tuple:
    coords = np.unravel_index(index, shape)
    return tuple(slice(int(c.min()), int(c.max()) + 1) for c in coords)


def bbox_of_mask(mask: np.ndarray) -> tuple | None:
    """The tightest box holding every True voxel, or None; narrows axis by axis to read less."""
    region = [slice(0, n) for n in mask.shape]
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask[tuple(region)].any(axis=others))
        if hits.size == 0:
            return None
        start = region[axis].start
        region[axis] = slice(start + int(hits[0]), start + int(hits[-1]) + 1)
    return tuple(region)


@dataclass
class Delta:
    """One undo step: ``index`` (flat, unique) voxels went from ``old`` to ``new``."""

    index: np.ndarray
    old: np.ndarray
    #: An int when every voxel got the same value (a brush, a fill), else one value per voxel.
    new: np.ndarray | int
    description: str
    bbox: tuple[slice, slice, slice]

    @property
    def nbytes(self) -> int:
        new = self.new.nbytes if isinstance(self.new, np.ndarray) else 0
        return int(self.index.nbytes + self.old.nbytes + new)

    @property
    def size(self) -> int:
        return int(self.index.size)

    def apply(self, array: np.ndarray) -> None:
        """Write the new values into ``array``."""
        put_flat(array, self.index, self.new)

    def revert(self, array: np.ndarray) -> None:
        """Write the old values back into ``array``."""
        put_flat(array, self.index, self.old)


def put_flat(array: np.ndarray, index: np.ndarray, values) -> None:
    """``array.flat[index] = values``, fast on contiguous arrays, correct on any view."""
    if array.flags.c_contiguous:
        array.reshape(-1)[index] = values  # a view of contiguous memory: writes land in array
    else:
        array.flat[index] = values  # reshape would copy, and the write would be lost


def take_flat(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    return array.reshape(-1)[index] if array.flags.c_contiguous else array.flat[index]


class EditHistory:
    """Bounded undo/redo stacks of :class:`Delta`. Emits ``changed`` after push/undo/redo/clear."""

    changed = psygnal.Signal()

    def __init__(self, max_bytes: int = 512 * 2**20, max_steps: int = 10_000):
        self.max_bytes = int(max_bytes)
        self.max_steps = int(max_steps)
        self._undo: deque[Delta] = deque()
        self._redo: list[Delta] = []
        self._nbytes = 0

    def push(self, delta: Delta) -> None:
        """Record a new edit; it ends any redo, and the oldest steps go beyond the limits."""
        self._nbytes -= sum(d.nbytes for d in self._redo)
        self._redo.clear()
        self._undo.append(delta)
        self._nbytes += delta.nbytes
        while len(self._undo) > 1 and (len(self._undo) > self.max_steps or self._nbytes > self.max_bytes):
            self._nbytes -= self._undo.popleft().nbytes
        self.changed.emit()

    def undo(self, array: np.ndarray) -> Delta | None:
        """Revert the newest edit in ``array`` and return it (None when there is nothing)."""
        if not self._undo:
            return None
        delta = self._undo.pop()
        delta.revert(array)
        self._redo.append(delta)
        self.changed.emit()
        return delta

    def redo(self, array: np.ndarray) -> Delta | None:
        """Apply again the last undone edit and return it (None when there is nothing)."""
        if not self._redo:
            return None
        delta = self._redo.pop()
        delta.apply(array)
        self._undo.append(delta)
        self.changed.emit()
        return delta

    def peek_redo(self) -> Delta | None:
        return self._redo[-1] if self._redo else None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._nbytes = 0
        self.changed.emit()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        return self._undo[-1].description if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1].description if self._redo else ""

    @property
    def nbytes(self) -> int:
        """Bytes held by all recorded steps (undo and redo)."""
        return self._nbytes

    def __len__(self) -> int:
        """The number of steps that can be undone."""
        return len(self._undo)

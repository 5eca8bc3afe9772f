"""Turning a :class:`~ctviewer.workflows.segmentation.cases.Case` into what a network sees.

* :class:`Target` says which label ids the network learns, one output channel per group
  ("liver=5", "vertebrae=26-50", "nonzero", "5;spine=26-50").
* :func:`window01` maps HU to [0, 1] with a fixed window (the liver seed's -1000..400 HU).
* :func:`resample` / :func:`resample_to_shape` change the grid, with a Gaussian prefilter when
  shrinking (the seeds strided, which aliases fine structure into noise) and nearest neighbour
  for labels.
* :func:`prepare` does all three for one case. The image is scaled by the fixed window only: never
  by statistics taken inside the mask (the spine seed did, which leaks the answer into the input).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ctviewer.data.labels import id_ranges
from ctviewer.errors import InputError

#: The liver seed's window, in HU.
DEFAULT_WINDOW = (-1000.0, 400.0)
_NONZERO_WORDS = {"nonzero", "all", "allnonzero"}
_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass
class Target:
    """Which labels the network learns: one output channel per group; ids None = every non-zero id."""

    groups: list[tuple[str, tuple[int, ...] | None]]

    @classmethod
    def parse(cls, text: str) -> "Target":
        """Read "5", "liver=5", "vertebrae=26-50", "kidneys=2,3", "nonzero", or several joined by ";"."""
        parts = [part.strip() for part in str(text).split(";")]
        if not any(parts):
            raise InputError("the target is empty: give label ids such as 'liver=5' or 'nonzero'")
        groups = [_parse_group(part, text) for part in parts if part]
        names = [name for name, _ in groups]
        if len(set(names)) != len(names):
            raise InputError(f"target {text!r} names a group twice")
        return cls(groups)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.groups]

    def text(self) -> str:
        """The target written back the way :meth:`parse` reads it."""
        return ";".join(f"{name}={_ids_text(ids)}" for name, ids in self.groups)

    def masks(self, labels: np.ndarray) -> np.ndarray:
        """uint8 masks [..., n_groups]: 1 where a voxel's id belongs to the group."""
        channels = [labels != 0 if ids is None else np.isin(labels, ids) for _, ids in self.groups]
        return np.stack(channels, axis=-1).astype(np.uint8)

    def check(self, cases) -> None:
        """Refuse a target that cannot be learnt from ``cases``: ids in no study, or nothing to learn."""
        from ctviewer.data.labels import present_ids

        if not cases:
            raise InputError("no studies to learn from")
        found = sorted(set().union(*(present_ids(case.labels) for case in cases)) - {0})
        if not found:
            raise InputError(f"every study's label map is empty for target {self.text()!r}: nothing to learn")
        shown = ", ".join(str(i) for i in found[:40]) + (", ..." if len(found) > 40 else "")
        for name, ids in self.groups:
            if ids is not None and not set(ids) & set(found):
                what = f"label {ids[0]} is" if len(ids) == 1 else f"labels {_ids_text(ids)} ({name}) are"
                raise InputError(f"{what} in no study (found: {shown})")

    def to_dict(self) -> dict:
        return {"groups": [{"name": name, "ids": None if ids is None else list(ids)} for name, ids in self.groups]}

    @classmethod
    def from_dict(cls, data: dict) -> "Target":
        try:
            groups = [(str(g["name"]), None if g["ids"] is None else tuple(int(i) for i in g["ids"]))
                      for g in data["groups"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a target description ({exc})") from None
        return cls(groups)


def _parse_group(part: str, text: str) -> tuple[str, tuple[int, ...] | None]:
    """One "name=ids" / "ids" / "nonzero" group."""
    name, sep, ids_text = part.partition("=")
    if not sep:
        name, ids_text = "", part
    name, ids_text = name.strip(), ids_text.strip()
    if sep and not re.fullmatch(r"[\w .-]+", name):
        raise InputError(f"target {text!r}: {name!r} is not a group name")
    if re.sub(r"[\s-]", "", ids_text.lower()) in _NONZERO_WORDS:
        return name or "foreground", None
    ids: list[int] = []
    for item in ids_text.split(","):
        match = _ITEM.match(item.replace(" ", ""))
        if not match:
            raise InputError(f"target {text!r}: {item.strip()!r} is not a label id or range (e.g. 5 or 26-50)")
        first, last = int(match[1]), int(match[2] or match[1])
        if not 1 <= first <= last <= 65535:
            raise InputError(f"target {text!r}: {item.strip()!r} is not ids from 1 to 65535, low to high")
        ids.extend(i for i in range(first, last + 1) if i not in ids)
    return name or _default_name(ids, ids_text), tuple(ids)


def _default_name(ids: list[int], ids_text: str) -> str:
    from ctviewer.workflows.segmentation.cases import ORGAN_IDS

    if len(ids) == 1:
        return next((organ for organ, i in ORGAN_IDS.items() if i == ids[0]), f"label_{ids[0]}")
    return "labels_" + ids_text.replace(" ", "")


def _ids_text(ids: tuple[int, ...] | None) -> str:
    """"nonzero", or ids with runs written as ranges: (2, 3, 26, 27, 28) -> "2-3,26-28"."""
    return "nonzero" if ids is None else id_ranges(ids, ",")


def window01(hu: np.ndarray, window=DEFAULT_WINDOW) -> np.ndarray:
    """HU clipped to ``window`` (low, high) and scaled to [0, 1], float32."""
    low, high = (float(v) for v in (window or DEFAULT_WINDOW))
    if not high > low:
        raise InputError(f"window {low:g}..{high:g} HU: the upper end must be above the lower")
    out = np.clip(np.asarray(hu, dtype=np.float32), low, high)
    out -= low
    out *= 1.0 / (high - low)
    return out


def resample(array: np.ndarray, spacing, new_spacing, order: int = 1) -> np.ndarray:
    """``array`` (spacing in mm per leading axis) on a grid of ``new_spacing`` (None keeps an axis).

    Trailing axes beyond ``spacing`` (channels) are kept as they are.
    """
    shape = tuple(n if new is None else max(1, int(round(n * float(old) / float(new))))
                  for n, old, new in zip(array.shape, spacing, new_spacing))
    return resample_to_shape(array, shape, order)


def resample_to_shape(array: np.ndarray, shape, order: int = 1) -> np.ndarray:
    """``array`` with its leading axes resized to ``shape`` (voxel centres aligned, as in
    scikit-image). Order 0 picks the nearest voxel and keeps the dtype (labels); order >= 1 is
    float32 with a Gaussian prefilter along every axis that shrinks (sigma = (factor - 1) / 2)."""
    shape = tuple(int(n) for n in shape) + array.shape[len(shape):]
    if shape == array.shape:
        return array
    if order == 0:
        index = [np.minimum(((np.arange(m) + 0.5) * n / m).astype(np.intp), n - 1)
                 for n, m in zip(array.shape, shape)]
        return array[np.ix_(*index)]
    from scipy.ndimage import gaussian_filter

    out = array.astype(np.float32, copy=False)
    sigma = [max(0.0, (n / m - 1) / 2) for n, m in zip(array.shape, shape)]
    if any(sigma):
        out = gaussian_filter(out, sigma, mode="nearest")
    if order > 1:
        from skimage.transform import resize

        return resize(out, shape, order=order, mode="edge", preserve_range=True).astype(np.float32, copy=False)
    for axis, (n, m) in enumerate(zip(array.shape, shape)):
        if n != m:   # linear interpolation is separable: one sparse matrix product per axis (fast)
            moved = np.moveaxis(out, axis, 0)
            out = np.moveaxis((_linear_weights(n, m) @ moved.reshape(n, -1)).reshape((m,) + moved.shape[1:]), 0, axis)
    return np.ascontiguousarray(out, dtype=np.float32)


def _linear_weights(n: int, m: int):
    """Sparse (m, n) matrix of linear interpolation from n to m samples, centres aligned, edges held."""
    from scipy.sparse import csr_matrix

    position = np.clip((np.arange(m) + 0.5) * n / m - 0.5, 0, n - 1)
    low = np.minimum(np.floor(position).astype(np.intp), n - 1)
    high = np.minimum(low + 1, n - 1)
    weight = (position - low).astype(np.float32)
    rows = np.repeat(np.arange(m), 2)
    return csr_matrix((np.stack([1 - weight, weight], 1).ravel(), (rows, np.stack([low, high], 1).ravel())),
                      shape=(m, n))


@dataclass
class Prepared:
    """A case ready for the network."""

    case_id: str
    image: np.ndarray           # float32 [z, y, x] in [0, 1]
    masks: np.ndarray           # uint8 [z, y, x, G], one channel per target group
    spacing: tuple              # mm per axis of the arrays above


def prepare(case, target: Target, window=DEFAULT_WINDOW, spacing_mm=None) -> Prepared:
    """Window the image (HU from the loader) to [0, 1], then resample image (linear, anti-aliased)
    and masks (nearest) to ``spacing_mm`` (None: keep the scan's grid; a None entry keeps that axis).

    Only the fixed window scales the image, so nothing about the mask reaches the input.
    """
    image = window01(case.image.array, window)
    masks = target.masks(case.labels)
    spacing = tuple(case.image.spacing)
    if spacing_mm is not None:
        image = np.clip(resample(image, spacing, spacing_mm, order=1), 0.0, 1.0)
        masks = resample_to_shape(masks, image.shape, order=0)
        spacing = tuple(old * n / m for old, n, m in zip(spacing, case.image.shape, image.shape))
    return Prepared(case.case_id, image, masks, spacing)

"""The image of a study: a voxel array with its place in the patient.

Conventions (DESIGN.md, "Data conventions"):

* ``array`` is indexed ``[z, y, x]`` (slice, row, column) and kept in its stored dtype
  (int16 HU for CT). A photo is ``[1, y, x, 3]`` uint8 RGB: a one-slice study.
* Geometry is in DICOM patient coordinates (LPS: +x to the patient's Left, +y Posterior,
  +z Superior), everything in *array axis order*:

  - ``spacing`` = (sz, sy, sx) in mm, the step between voxel centres along axes 0, 1, 2;
  - ``origin`` = the LPS position (x, y, z) in mm of the centre of voxel ``[0, 0, 0]``;
  - ``direction`` = 3x3 matrix whose column ``c`` is the LPS unit vector of array axis ``c``.

  So ``lps = origin + direction @ (index * spacing)`` with ``index = (k, j, i)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

#: The orientation views expect: axis 0 towards Superior, axis 1 Posterior, axis 2 Left.
CANONICAL_DIRECTION = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: CANONICAL_DIRECTION.copy())
    #: "CT", "MR", ... from the header; "" where unknown; "XC" (external camera) for photos.
    modality: str = ""
    #: What the user calls it: series description, file name.
    name: str = ""
    #: Where it was read from ("" for generated volumes).
    source: str = ""
    #: Display window (width, level) stored with the image, e.g. from the DICOM header.
    window: tuple[float, float] | None = None
    #: DICOM InstanceNumber of each slice (axis 0) where there is one.
    instance_numbers: list[int | None] | None = None
    #: Nominal slice thickness in mm from the header (the spacing comes from positions).
    slice_thickness: float | None = None
    #: Things the user must know about how this was read (uneven spacing, gantry tilt, ...).
    warnings: list[str] = field(default_factory=list)
    #: Format-specific facts worth showing in ``ctviewer info`` (series UID, patient id, ...).
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if self.array.ndim not in (3, 4):
            raise ValueError(f"a volume is [z, y, x] or [z, y, x, 3], got shape {self.array.shape}")
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive, got {self.spacing}")

    # -- shape -------------------------------------------------------------------------------
    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4 and self.array.shape[-1] in (3, 4)

    @property
    def is_photo(self) -> bool:
        return self.is_rgb or (self.modality == "XC" and self.shape[0] == 1)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The grid shape (z, y, x), without the colour axis of a photo."""
        return tuple(self.array.shape[:3])  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    # -- geometry ----------------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping a (k, j, i, 1) index to (x, y, z, 1) in LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        a[:3, 3] = self.origin
        return a

    def index_to_lps(self, index) -> np.ndarray:
        """LPS position (mm) of one or many (k, j, i) indices (fractional allowed)."""
        idx = np.asarray(index, dtype=float)
        return idx @ (self.direction * np.asarray(self.spacing)).T + np.asarray(self.origin)

    def lps_to_index(self, point) -> np.ndarray:
        """Fractional (k, j, i) index of one or many LPS positions (mm)."""
        p = np.asarray(point, dtype=float) - np.asarray(self.origin)
        m = self.direction * np.asarray(self.spacing)
        return np.linalg.solve(m, p.T).T if p.ndim > 1 else np.linalg.solve(m, p)

    def same_grid(self, other: "Volume", tol: float = 1e-3) -> bool:
        """True where ``other`` covers exactly the same voxels (shape and geometry)."""
        return (self.shape == other.shape
                and np.allclose(self.spacing, other.spacing, atol=tol)
                and np.allclose(self.origin, other.origin, atol=tol * 10)
                and np.allclose(self.direction, other.direction, atol=tol))

    def with_array(self, array: np.ndarray, **changes) -> "Volume":
        """A volume on the same grid holding other voxels (a label map, a prediction).

        Its ``source`` is "" unless ``changes`` names one: other voxels are not the file this volume
        was read from, and a label map that kept the image's path would be saved over the image.
        Code that only reorders or retypes the same voxels passes ``source=volume.source``.
        """
        changes.setdefault("source", "")
        return replace(self, array=array, warnings=list(self.warnings), meta=dict(self.meta), **changes)

    # -- values ------------------------------------------------------------------------------
    def value_range(self) -> tuple[float, float]:
        if self.array.size == 0:
            return (0.0, 0.0)
        return float(self.array.min()), float(self.array.max())

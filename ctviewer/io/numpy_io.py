"""NumPy ``.npy`` / ``.npz`` arrays and headerless ``.raw`` volumes.

Arrays are read with ``allow_pickle=False`` always: a pickled object array can run code.
A ``.npy`` knows its shape and dtype but not where it is, so geometry comes from a JSON sidecar
beside it (``NAME.npy.json`` or ``NAME.json``)::

    {"spacing": [sz, sy, sx], "origin": [x, y, z], "direction": [[...], [...], [...]], "modality": "CT"}

A ``.raw`` needs the sidecar too, with ``"shape": [z, y, x]`` and ``"dtype": "int16"`` (optional
``"byte_order": "little"|"big"`` and ``"offset"`` in bytes).
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io import guards
from ctviewer.io.atomic import atomic_write_text
from ctviewer.io.label_files import base_name, format_suffix, read_json_sidecar
from ctviewer.io.registry import Loadable

_SUFFIXES = (".npy", ".npz", ".raw")


# -- headers -----------------------------------------------------------------------------------
def _npy_header(fh, path: Path, label: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header size) of a .npy stream, refusing object arrays before any data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        # Version 3.0 differs from 2.0 only in decoding the header as utf-8 instead of latin-1, which
        # changes nothing but the names of structured fields (refused below anyway): numpy's public
        # 2.0 reader reads it. Other versions do not exist.
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0,
                  (3, 0): fmt.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"format version {version[0]}.{version[1]} does not exist (numpy writes 1.0 to 3.0)")
        shape, _, dtype = reader(fh)
    except Exception as exc:  # numpy parses the header with ast/tokenize: any failure means a broken header
        raise InputError(f"{label} is not a valid .npy array: {_why(exc)}", path) from exc
    if any(s < 0 for s in shape):
        raise InputError(f"{label} has a negative size in its shape {shape}", path)
    if dtype.hasobject:
        raise InputError(f"{label} contains Python objects; refused for safety", path)
    return tuple(int(s) for s in shape), dtype, fh.tell()


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _check_size(path: Path, label: str, expected: int, actual: int) -> None:
    if actual < expected:
        raise InputError(f"{label} is truncated or the wrong size: header says {expected} bytes, "
                         f"file holds {actual}", path)


def describe_shape(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    """How an array of this shape is shown ('volume', 'slice', 'photo'), or None if it cannot be."""
    if len(shape) == 3 and shape[-1] in (3, 4) and dtype == np.uint8 and min(shape[:2]) > 4:
        return "photo"
    if len(shape) == 3:
        return "volume"
    if len(shape) == 2:
        return "slice"
    if len(shape) == 4 and shape[-1] == 3 and dtype == np.uint8:
        return "rgb volume"
    return None


# -- geometry from the sidecar -----------------------------------------------------------------
def geometry_from_sidecar(path: Path, name: str, warnings: list[str]) -> dict:
    """Volume keyword arguments from the JSON sidecar of ``path`` (1 mm and a warning without one)."""
    side = read_json_sidecar(path)
    kwargs: dict = {}
    try:
        if "spacing" in side:
            kwargs["spacing"] = tuple(float(s) for s in side["spacing"])[:3]
            if len(kwargs["spacing"]) != 3 or min(kwargs["spacing"]) <= 0:
                raise ValueError("spacing must be three positive numbers [z, y, x]")
        if "origin" in side:
            kwargs["origin"] = tuple(float(s) for s in side["origin"])
        if "direction" in side:
            kwargs["direction"] = np.asarray(side["direction"], dtype=float).reshape(3, 3)
    except (TypeError, ValueError) as exc:
        raise InputError(f"sidecar JSON has a bad geometry field: {exc}", path) from exc
    if "spacing" not in side:
        warnings.append(f"spacing unknown: assumed 1 mm (add {name}.json with \"spacing\": [z, y, x])")
    if isinstance(side.get("modality"), str):
        kwargs["modality"] = side["modality"]
    return kwargs


def _as_volume(array: np.ndarray, path: Path, label: str) -> Volume:
    kind = describe_shape(array.shape, array.dtype)
    warnings: list[str] = []
    if kind == "photo":
        if array.shape[-1] == 4:
            array = array[..., :3]
        return Volume(np.ascontiguousarray(array[None]), modality="XC", name=label, source=str(path),
                      meta={"format": "numpy", "pixel_units": True})
    if kind == "slice":
        array = array[None]
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)  # masks: 0/1 label ids
    kwargs = geometry_from_sidecar(path, base_name(path), warnings)
    kwargs.setdefault("modality", "XC" if kind == "rgb volume" else "")
    try:
        return Volume(np.ascontiguousarray(array), name=label, source=str(path), warnings=warnings,
                      meta={"format": "numpy", "spacing_unknown": "spacing" not in kwargs}, **kwargs)
    except ValueError as exc:
        raise InputError(str(exc), path) from exc


def _refuse_dtype(dtype: np.dtype, path: Path, label: str) -> None:
    if dtype.kind in "cVOUSMm":
        raise InputError(f"{label} holds {dtype} values: not an image", path)


# -- reader ------------------------------------------------------------------------------------
class NumpyReader:
    name = "numpy"

    def examine(self, path: Path) -> list[Loadable]:
        path = Path(path)
        suffix = format_suffix(path)
        if path.is_dir() or suffix not in _SUFFIXES:
            return []
        if path.stat().st_size == 0:
            raise InputError("file is empty", path)
        if suffix == ".npy":
            return [self._npy(path)]
        if suffix == ".npz":
            return self._npz(path)
        return [self._raw(path)]

    def _npy(self, path: Path) -> Loadable:
        with open(path, "rb") as fh:
            shape, dtype, offset = _npy_header(fh, path, path.name)
        _check_size(path, path.name, offset + math.prod(shape) * dtype.itemsize, path.stat().st_size)
        _refuse_dtype(dtype, path, path.name)
        guards.check_memory(math.prod(shape) * dtype.itemsize, path)
        if describe_shape(shape, dtype) is None:
            raise InputError(f"array of shape {shape} is not an image (need 2-D, 3-D or [y, x, 3])", path)
        name = base_name(path)
        return Loadable(path, f"{name} — {shape} {dtype}", "numpy", 0.9,
                        lambda progress=None, cancel=None: _as_volume(_load_npy(path), path, name),
                        n_slices=shape[0] if len(shape) == 3 else 1)

    def _npz(self, path: Path) -> list[Loadable]:
        found = []
        for key, shape, dtype in _npz_members(path):
            if describe_shape(shape, dtype) is None or dtype.kind in "cVOUSMm":
                continue
            found.append(Loadable(path, f"{base_name(path)}: {key} — {shape} {dtype}", "numpy", 0.9,
                                  (lambda key: lambda progress=None, cancel=None:
                                   _as_volume(_load_npz_member(path, key), path, key))(key),
                                  n_slices=shape[0] if len(shape) == 3 else 1, meta={"array": key}))
        if not found:
            raise InputError("no 2-D or 3-D image array in this .npz", path)
        return found

    def _raw(self, path: Path) -> Loadable:
        shape, dtype, offset = raw_layout(path)
        name = base_name(path)
        return Loadable(path, f"{name} — {shape} {dtype} (raw)", "numpy", 0.8,
                        lambda progress=None, cancel=None: _as_volume(_load_raw(path), path, name),
                        n_slices=shape[0] if len(shape) == 3 else 1)


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"cannot read .npy: {exc}", path) from exc
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _npz_members(path: Path) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    guards.check_archive(path, what=".npz archive")  # a zip bomb is refused before any member inflates
    try:
        with zipfile.ZipFile(path) as archive:
            members = []
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[:-4]
                with archive.open(info) as fh:
                    shape, dtype, offset = _npy_header(fh, path, f"array '{key}'")
                _check_size(path, f"array '{key}'", offset + math.prod(shape) * dtype.itemsize,
                            info.file_size)
                members.append((key, shape, dtype))
            return members
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, zlib.error) as exc:
        raise InputError(f"not a valid .npz archive: {exc}", path) from exc


def _load_npz_member(path: Path, key: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            array = archive[key]
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read array '{key}': {exc}", path) from exc
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


# -- raw ---------------------------------------------------------------------------------------
def raw_layout(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset) of a ``.raw`` from its sidecar; checks the file size against them."""
    side = read_json_sidecar(path)
    if "shape" not in side or "dtype" not in side:
        raise InputError(f"a .raw file needs {base_name(path)}.json beside it with \"shape\": [z, y, x] "
                         "and \"dtype\" (e.g. \"int16\")", path)
    try:
        shape = tuple(int(s) for s in side["shape"])
        dtype = np.dtype(side["dtype"])
        if side.get("byte_order") in ("big", "little"):
            dtype = dtype.newbyteorder(">" if side["byte_order"] == "big" else "<")
        offset = int(side.get("offset", 0))
    except (TypeError, ValueError) as exc:
        raise InputError(f"sidecar JSON has a bad shape or dtype: {exc}", path) from exc
    _refuse_dtype(dtype, path, path.name)
    if len(shape) not in (2, 3) or min(shape) <= 0:
        raise InputError(f"raw shape {shape} is not a 2-D or 3-D image", path)
    expected = offset + math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise InputError(f"raw file is the wrong size: shape {list(shape)} of {dtype.name} needs "
                         f"{expected} bytes, file holds {actual}", path)
    return shape, dtype, offset


def _load_raw(path: Path) -> np.ndarray:
    shape, dtype, offset = raw_layout(path)
    array = np.fromfile(path, dtype=dtype, offset=offset).reshape(shape)
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


# -- writing -----------------------------------------------------------------------------------
def sidecar_for(volume: Volume) -> dict:
    return {"spacing": list(volume.spacing), "origin": list(volume.origin),
            "direction": np.asarray(volume.direction).tolist(), "modality": volume.modality}


def write_npy(volume: Volume, path: Path, sidecar_path: Path) -> None:
    """The array to ``path`` (a temporary name) and its geometry to ``sidecar_path`` (atomically)."""
    np.save(path, volume.array, allow_pickle=False)
    atomic_write_text(sidecar_path, json.dumps(sidecar_for(volume), indent=2) + "\n")


def save_spacing_sidecar(path: str | Path, spacing_zyx) -> Path:
    """Remember the spacing the user gave for ``path`` in ``NAME.json`` beside it (atomically),
    keeping whatever else an existing sidecar holds."""
    import json

    from ctviewer.io.atomic import atomic_write_text
    from ctviewer.io.label_files import json_sidecar

    path = Path(path)
    spacing = [float(s) for s in spacing_zyx]
    if len(spacing) != 3 or min(spacing) <= 0:
        raise InputError("spacing must be three positive numbers (z, y, x) in mm", path)
    target = json_sidecar(path) or path.with_name(base_name(path) + ".json")
    data = read_json_sidecar(path) if json_sidecar(path) else {}
    data["spacing"] = spacing
    atomic_write_text(target, json.dumps(data, indent=2))
    return target

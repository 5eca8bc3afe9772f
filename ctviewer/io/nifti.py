"""NIfTI-1/-2 (``.nii``, ``.nii.gz``, ``.hdr``/``.img`` pairs) read and written with nibabel.

nibabel gives voxels indexed ``(i, j, k)`` and an affine to RAS mm. Our arrays are ``[z, y, x]``
(nibabel's axes reversed) in LPS, so array axis ``c`` is nibabel axis ``2 - c`` and
``LPS = diag(-1, -1, 1) @ RAS``. Voxels keep their stored dtype; the header's scaling is applied
only where it is not the identity, and stays integer when it can.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.imaging.orientation import FILE_GEOMETRY
from ctviewer.io import guards
from ctviewer.io.label_files import base_name, format_suffix, read_json_sidecar
from ctviewer.io.registry import Loadable

#: RAS <-> LPS: negate x and y (its own inverse).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
#: More 3-D volumes than this in one 4-D file is a time series or a DWI, not something to view.
MAX_VOLUMES = 64
#: Intents whose last axis holds vector components, not voxels.
_VECTOR_INTENTS = {"vector", "rgb vector", "rgba vector", "displacement vector", "symmetric matrix",
                   "general matrix", "point set", "triangle", "quaternion", "dimensionless"}
_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img")
_SPATIAL_UNIT_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001}


def _nib():
    import nibabel  # heavy-ish: imported where used

    return nibabel


def _load_errors() -> tuple[type[BaseException], ...]:
    nib = _nib()
    return (nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError,
            OSError, EOFError, ValueError, zlib.error, MemoryError)


# -- geometry ----------------------------------------------------------------------------------
def affine_to_geometry(affine: np.ndarray) -> tuple[tuple, tuple, np.ndarray]:
    """(spacing, origin, direction) in our conventions from nibabel's (i, j, k) -> RAS affine."""
    affine = np.asarray(affine, dtype=float)
    columns = (RAS_TO_LPS @ affine[:3, :3])[:, ::-1]  # our axis c = nibabel axis 2 - c
    spacing = np.linalg.norm(columns, axis=0)
    spacing[spacing == 0] = 1.0  # a degenerate header; the direction below stays finite
    direction = columns / spacing
    origin = RAS_TO_LPS @ affine[:3, 3]
    return tuple(spacing), tuple(origin), direction


def geometry_to_affine(volume: Volume) -> np.ndarray:
    """nibabel's (i, j, k) -> RAS affine for ``volume`` (inverse of :func:`affine_to_geometry`)."""
    columns = volume.direction * np.asarray(volume.spacing)[None, :]
    affine = np.eye(4)
    affine[:3, :3] = RAS_TO_LPS @ columns[:, ::-1]
    affine[:3, 3] = RAS_TO_LPS @ np.asarray(volume.origin)
    return affine


# -- values ------------------------------------------------------------------------------------
def apply_scaling(raw: np.ndarray, slope: float, inter: float) -> np.ndarray:
    """``raw * slope + inter``, integer where slope and intercept are whole and the result fits
    (CT stored as uint16 with intercept -1024 becomes int16), else float32 — never float64."""
    if slope is None or not np.isfinite(slope) or slope == 0:
        slope = 1.0
    if inter is None or not np.isfinite(inter):
        inter = 0.0
    if slope == 1 and inter == 0:
        return raw
    if np.issubdtype(raw.dtype, np.integer) and float(slope).is_integer() and float(inter).is_integer():
        ends = [float(raw.min()) * slope + inter, float(raw.max()) * slope + inter] if raw.size else [0, 0]
        for dtype in (raw.dtype, np.dtype(np.int16), np.dtype(np.int32)):
            info = np.iinfo(dtype)
            if info.min <= min(ends) and max(ends) <= info.max:
                return (raw.astype(np.int64) * int(slope) + int(inter)).astype(dtype)
    return raw.astype(np.float32) * np.float32(slope) + np.float32(inter)


def _native(arr: np.ndarray) -> np.ndarray:
    """Native byte order (big-endian files exist), same kind and size."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def guess_modality(arr: np.ndarray, sidecar: dict, descrip: str) -> str:
    """NIfTI has no modality field: a sidecar ('modality' / BIDS 'Modality') or our own
    ``modality=CT`` in ``descrip`` decide. Otherwise int16 voxels of which at least 1 % lie
    below -500 are taken as CT in Hounsfield units: air in and around the body is -1000 HU, while
    MR and PET are essentially never negative (nibabel's MR 'anatomical.nii' has 2 voxels below
    -500 out of 34 000, so a bare minimum would misfire)."""
    for key in ("modality", "Modality"):
        if isinstance(sidecar.get(key), str):
            return sidecar[key]
    for word in descrip.split():
        if word.startswith("modality="):
            return word.split("=", 1)[1]
    return "CT" if looks_like_hu(arr) else ""


def looks_like_hu(arr: np.ndarray) -> bool:
    """int16 with at least 1 % of voxels below -500: air in Hounsfield units (see above)."""
    if arr.dtype != np.int16 or arr.size == 0:
        return False
    sample = arr.ravel()[:: max(1, arr.size // 1_000_000)]  # a million voxels decide
    return float(np.mean(sample < -500)) >= 0.01


# -- reading -----------------------------------------------------------------------------------
class NiftiReader:
    name = "nifti"

    def examine(self, path: Path) -> list[Loadable]:
        path = Path(path)
        if path.is_dir() or format_suffix(path) not in _SUFFIXES:
            return []
        if format_suffix(path) in (".hdr", ".img") and not _is_analyze_pair(path):
            return []
        img = _open(path)
        return _loadables(img, path)


def _is_analyze_pair(path: Path) -> bool:
    other = path.with_suffix(".img" if path.suffix.lower() == ".hdr" else ".hdr")
    return other.is_file() or path.with_suffix(other.suffix.upper()).is_file()


def _open(path: Path):
    nib = _nib()
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)
    try:
        img = nib.load(str(path))
    except _load_errors() as exc:
        raise InputError(f"cannot read NIfTI header: {_why(exc)}", path) from exc
    _check_header(img, path)
    return img


def _check_header(img, path: Path) -> None:
    """Refuse, before any voxel is read, a header that cannot describe a real image: a negative or
    zero axis, complex values, a NaN affine, or more voxel bytes than the file (or memory) holds."""
    if getattr(img, "affine", None) is None:
        return  # not a grid in space: _plan says so
    shape = tuple(int(s) for s in img.header.get_data_shape())
    if not 1 <= len(shape) <= 7:
        raise InputError(f"header gives the image {len(shape)} dimensions (dim[0] {int(img.header['dim'][0])}): "
                         "NIfTI allows 1 to 7", path)
    if any(s <= 0 for s in shape):
        raise InputError(f"header gives the image {shape} voxels: every axis needs a length of at least 1",
                         path)
    dtype = img.get_data_dtype()
    if dtype.kind == "c":
        raise InputError(f"NIfTI holds complex ({dtype}) values (raw MR data?): not an image to view", path)
    try:  # both, as results written for this image keep them (a broken qform fails only when asked)
        if hasattr(img.header, "get_qform"):
            img.header.get_qform(), img.header.get_sform()
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise InputError(f"NIfTI orientation (qform / sform) is not a valid transform: {_why(exc)}", path) from exc
    affine = np.asarray(img.affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        which = "sform" if int(img.header.get("sform_code", 0) or 0) > 0 else "qform / pixdim"
        raise InputError(f"NIfTI {which} holds NaN or infinite values: the image has no valid position", path)
    if hasattr(img.header, "get_xyzt_units"):
        try:
            img.header.get_xyzt_units()
        except KeyError:  # a code NIfTI does not define: read as 'unknown' (mm), as other readers do
            warnings.warn(f"NIfTI xyzt_units code {int(img.header['xyzt_units'])} is not a NIfTI unit: "
                          "taken as mm", stacklevel=2)
            img.header["xyzt_units"] = 0
    offset = int(getattr(img.dataobj, "offset", 0) or 0)
    claimed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    data_file = Path(img.file_map["image"].filename or path)
    if data_file.name.lower().endswith(".gz"):
        guards.check_gzip_size(data_file, offset + claimed, "NIfTI header")
    elif data_file.is_file():
        guards.check_plain_size(data_file, claimed, offset, "NIfTI header")
    guards.check_memory(claimed, path)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _plan(img, path: Path) -> tuple[tuple[int, ...], str]:
    """The 3-D shape (i, j, k) of one volume and how to read it: 'scalar', 'series' or 'rgb'."""
    if getattr(img, "affine", None) is None:  # CIFTI-2 and the like: matrices, not a grid in space
        raise InputError(f"{type(img).__name__.replace('Image', '')} file: not an image volume", path)
    shape = tuple(int(s) for s in img.shape)
    dtype = img.get_data_dtype()
    intent = img.header.get_intent()[0] if hasattr(img.header, "get_intent") else "none"
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    is_flat = len(shape) <= 2 or shape[2] == 1
    if dtype.names:  # RGB24 / RGBA32 records
        if is_flat and len(shape) <= 3:
            return (shape + (1, 1))[:3], "rgb"
        raise InputError("RGB NIfTI volume: only 2-D RGB images can be read", path)
    if intent in _VECTOR_INTENTS or len(shape) == 5:
        if len(shape) == 5 and is_flat and shape[3] == 1 and shape[4] == 3 and dtype == np.uint8:
            return shape[:3], "rgb"
        raise InputError(f"{len(shape)}-D NIfTI of shape {shape} (intent '{intent}') holds vectors "
                         "or matrices per voxel: not an image volume", path)
    if len(shape) > 4:
        raise InputError(f"{len(shape)}-D NIfTI of shape {shape}: not an image volume", path)
    if len(shape) == 4:
        if shape[3] > MAX_VOLUMES:
            raise InputError(f"4-D NIfTI with {shape[3]} volumes: not an image volume", path)
        return shape[:3], "series"
    return (shape + (1, 1))[:3], "scalar"


def _loadables(img, path: Path) -> list[Loadable]:
    shape3, kind = _plan(img, path)
    name = base_name(path)
    k, j, i = shape3[2], shape3[1], shape3[0]
    if kind != "series":
        return [Loadable(path, f"{name} — {i}×{j}×{k}", "nifti", 0.95,
                         lambda progress=None, cancel=None: _load(path, None, kind), n_slices=k)]
    n = int(img.shape[3])
    return [Loadable(path, f"{name} — volume {t + 1} of {n}", "nifti", 0.95 - 0.001 * t,
                     (lambda t: lambda progress=None, cancel=None: _load(path, t, kind))(t),
                     n_slices=k, meta={"volume_index": t})
            for t in range(n)]


def _read_voxels(img, path: Path) -> np.ndarray:
    """The stored voxels. ``.nii.gz`` is inflated by ISA-L (isal), 2-3x faster than zlib: on a
    512x512x300 scan that is most of the time a user waits."""
    if not path.name.lower().endswith(".gz"):
        return np.asanyarray(img.dataobj.get_unscaled())
    from isal import igzip

    with igzip.open(path, "rb") as stream:
        fast = type(img).from_stream(stream)
        return np.asanyarray(fast.dataobj.get_unscaled())


def _load(path: Path, t: int | None, kind: str) -> Volume:
    img = _open(path)
    shape3, _ = _plan(img, path)
    try:
        raw = _read_voxels(img, path)
        slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)
    except (*_load_errors(), OSError, EOFError) as exc:
        raise InputError(f"cannot read NIfTI voxels (truncated or corrupt file?): {_why(exc)}", path) from exc
    if t is not None:
        raw = raw.reshape(raw.shape[:3] + (-1,))[..., t]
    if kind == "rgb":
        array = _rgb_array(raw, shape3)
    else:
        array = np.ascontiguousarray(_native(raw.reshape(shape3)).T)
        array = apply_scaling(array, slope, inter)
    return _volume(img, path, array, t)


def _rgb_array(raw: np.ndarray, shape3) -> np.ndarray:
    """RGB24 records or a (i, j, 1, 1, 3) vector image -> [1, y, x, 3] uint8."""
    if raw.dtype.names:
        rgb = np.stack([raw[c] for c in raw.dtype.names[:3]], axis=-1)
    else:
        rgb = raw
    rgb = rgb.reshape(shape3[0], shape3[1], 3)  # (i, j, c)
    return np.ascontiguousarray(np.transpose(rgb, (1, 0, 2))[None]).astype(np.uint8)


def _volume(img, path: Path, array: np.ndarray, t: int | None) -> Volume:
    hdr = img.header
    affine = np.asarray(img.affine, dtype=float)
    warnings: list[str] = []
    unit = hdr.get_xyzt_units()[0] if hasattr(hdr, "get_xyzt_units") else "unknown"
    if unit in _SPATIAL_UNIT_MM and unit != "mm":
        affine[:3, :] *= _SPATIAL_UNIT_MM[unit]  # nibabel leaves the unit to us
    if hasattr(hdr, "get_sform") and int(hdr["sform_code"]) == 0 and int(hdr["qform_code"]) == 0:
        warnings.append("NIfTI header has no orientation (sform and qform unset): axes assumed")
    spacing, origin, direction = affine_to_geometry(affine)
    sidecar = read_json_sidecar(path) if format_suffix(path) != ".img" else {}
    descrip = _descrip(hdr)
    rgb = array.ndim == 4
    name = base_name(path) + ("" if t is None else f" [{t + 1}/{img.shape[3]}]")
    meta = {"format": "nifti", "dtype_stored": str(img.get_data_dtype()), FILE_GEOMETRY: _header_geometry(hdr, affine)}
    if t is not None:
        meta["volume_index"] = t
    return Volume(array, spacing=spacing, origin=origin, direction=direction,
                  modality="XC" if rgb else guess_modality(array, sidecar, descrip),
                  name=name, source=str(path), warnings=warnings, meta=meta)


def _header_geometry(hdr, affine_mm: np.ndarray) -> dict | None:
    """The header's own geometry fields, so a result written for this image gets them unchanged
    (sform, qform, their codes and the unit; ``affine_mm`` is what they mean in mm)."""
    if not hasattr(hdr, "get_sform"):
        return None  # Analyze: no orientation fields to keep
    return {"format": "nifti", "affine_mm": affine_mm.copy(),
            "sform": hdr.get_sform(), "sform_code": int(hdr["sform_code"]),
            "qform": hdr.get_qform(), "qform_code": int(hdr["qform_code"]),
            "units": hdr.get_xyzt_units()[0]}


def _descrip(hdr) -> str:
    try:
        value = hdr["descrip"]
    except (KeyError, ValueError):
        return ""
    raw = value.item() if hasattr(value, "item") else value
    return raw.decode("latin-1", "replace").strip("\x00 ") if isinstance(raw, bytes) else str(raw)


# -- writing -----------------------------------------------------------------------------------
def write_nifti(volume: Volume, path: Path) -> None:
    """Write ``volume`` to ``path`` (.nii or .nii.gz) with sform and qform both set (code 1, scanner).

    A volume on the grid of a NIfTI it was read from (or made from, see ``FILE_GEOMETRY``) gets
    that file's sform, qform, codes and unit unchanged, as TotalSegmentator reuses its input's header.
    """
    nib = _nib()
    if volume.is_rgb:
        raise InputError("colour (RGB) images are saved as PNG, not NIfTI", path)
    if volume.array.dtype == np.bool_:
        data = volume.array.astype(np.uint8).T
    else:
        data = volume.array.T  # [z, y, x] -> (i, j, k); nibabel writes it in Fortran order
    affine = geometry_to_affine(volume)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    same = _same_header_geometry(volume, affine)
    if same is not None:  # a result of a NIfTI image: exactly that image's orientation fields
        img.set_sform(same["sform"], code=same["sform_code"])
        img.set_qform(same["qform"], code=same["qform_code"])
        img.header.set_xyzt_units(same["units"] if same["units"] != "unknown" else "mm")
    else:
        img.set_sform(affine, code=1)
        img.set_qform(affine, code=1)  # a non-orthogonal affine is approximated here; sform is exact
        img.header.set_xyzt_units("mm")
    if volume.modality:
        img.header["descrip"] = f"ctviewer modality={volume.modality}"[:79].encode("ascii", "replace")
    img.header["scl_slope"], img.header["scl_inter"] = 1.0, 0.0
    nib.save(img, str(path))


def _same_header_geometry(volume: Volume, affine: np.ndarray) -> dict | None:
    """The NIfTI header geometry ``volume`` was read with (or inherited from its image), where it
    still describes ``volume``'s grid; else None."""
    found = volume.meta.get(FILE_GEOMETRY)
    if not isinstance(found, dict) or found.get("format") != "nifti":
        return None
    return found if np.allclose(found["affine_mm"], affine, rtol=0, atol=1e-5) else None

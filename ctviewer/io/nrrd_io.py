"""NRRD (``.nrrd``, ``.nhdr``) and 3D Slicer segmentations (``.seg.nrrd``) with pynrrd.

NRRD lists axes fastest first; read in C index order the array is ``[slowest, ..., fastest]``,
so array axis ``c`` of a 3-D image is NRRD axis ``2 - c``. Row ``a`` of 'space directions' is the
step vector of NRRD axis ``a`` in the file's space (LPS, RAS, LAS, ...), converted here to LPS.

A ``.seg.nrrd`` keeps one label map (or several layers along a 'list' axis) plus
``Segment{N}_Name / _Color / _LabelValue / _Layer / _Extent ...`` fields; these become a
:class:`LabelTable`. Files are written as 3D Slicer 5 writes them (``vtkMRMLSegmentationStorageNode``;
fields documented in Slicer's developer guide, "Segmentation labelmap file format"): one layer, each
segment's ``_LabelValue`` our label id, colour as 0..1 floats. Read are Slicer files of every
version: segments sharing layer 0 with their own label values (Slicer >= 4.11), one binary layer per
segment (older), and ``Segmentation_ReferenceImageExtentOffset`` is ignored because the space
origin already places the stored voxels.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from ctviewer.data.labels import Label, LabelMap, LabelTable, present_ids
from ctviewer.data.volume import CANONICAL_DIRECTION, Volume
from ctviewer.errors import InputError
from ctviewer.imaging.orientation import FILE_GEOMETRY
from ctviewer.io import guards
from ctviewer.io.label_files import base_name, format_suffix
from ctviewer.io.nifti import looks_like_hu
from ctviewer.io.registry import Loadable

_SUFFIXES = (".nrrd", ".nhdr", ".seg.nrrd")
#: Sign that takes each space's axes to LPS.
_SPACE_TO_LPS = {
    "left-posterior-superior": (1, 1, 1), "lps": (1, 1, 1),
    "right-anterior-superior": (-1, -1, 1), "ras": (-1, -1, 1),
    "left-anterior-superior": (1, -1, 1), "las": (1, -1, 1),
    "right-posterior-superior": (-1, 1, 1), "rps": (-1, 1, 1),
}
#: Spaces without patient axes; taken as LPS with a warning.
_GENERIC_SPACES = ("3d-right-handed", "3d-left-handed", "scanner-xyz", "3d-right-handed-time",
                   "3d-left-handed-time", "scanner-xyz-time")
_SEGMENT_FIELD = re.compile(r"^Segment(\d+)_(\w+)$")
MAX_VOLUMES = 64


def _nrrd():
    import nrrd

    return nrrd


def _errors() -> tuple[type[BaseException], ...]:
    return (_nrrd().NRRDError, OSError, EOFError, ValueError, KeyError, UnicodeDecodeError, IndexError,
            TypeError, zlib.error)


def read_header(path: Path) -> dict:
    with open(path, "rb") as fh:
        return _header_of(fh, path)


def _header_of(fh, path: Path) -> dict:
    """The header read from an open file (left at the data), checked for what the reading relies on."""
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)
    try:
        header = dict(_nrrd().read_header(fh))
    except (*_errors(), StopIteration) as exc:  # StopIteration: the file ended inside the header
        raise InputError(f"cannot read NRRD header: {_why(exc) if str(exc) else 'file ends inside it'}",
                         path) from exc
    _check_header(header, path, fh.tell())
    return header


def _check_header(header: dict, path: Path, data_start: int) -> None:
    """Fields the reading relies on, and sizes claimed against the bytes present and free memory."""
    missing = [key for key in ("type", "dimension", "sizes", "encoding") if key not in header]
    if missing:
        raise InputError(f"NRRD header lacks the required field{'s' * (len(missing) > 1)} "
                         f"{', '.join(missing)} (cut short?)", path)
    try:
        ndim = int(header["dimension"])
        sizes = [int(s) for s in np.ravel(header["sizes"])]
    except (TypeError, ValueError) as exc:
        raise InputError(f"NRRD dimension or sizes are not whole numbers: {_why(exc)}", path) from exc
    if len(sizes) != ndim:
        raise InputError(f"NRRD header says dimension {ndim} but lists {len(sizes)} sizes {sizes}", path)
    if ndim < 1 or any(s <= 0 for s in sizes):
        raise InputError(f"NRRD sizes {sizes} are not an image: every axis needs at least 1 sample", path)
    directions = header.get("space directions")
    if directions is not None and len(directions) != ndim:
        raise InputError(f"NRRD 'space directions' has {len(directions)} rows for {ndim} axes", path)
    claimed = int(np.prod(sizes, dtype=np.int64)) * _item_size(header, path)
    guards.check_memory(claimed, path)
    encoding = str(header["encoding"]).lower()
    data_file = header.get("data file", header.get("datafile"))
    if data_file is not None:
        data_path = Path(str(data_file).split()[0])
        data_path = data_path if data_path.is_absolute() else path.parent / data_path
        if "%" in str(data_file) or str(data_file).startswith("LIST"):
            return  # a list of slice files: pynrrd refuses it with its own message
        if not data_path.is_file():
            raise InputError(f"the detached data file {data_path.name} is missing", path)
        data_start = 0
    else:
        data_path = path
    skip = int(header.get("byte skip", header.get("byteskip", 0)) or 0)
    try:
        if encoding == "raw" and skip >= 0 and not header.get("line skip", header.get("lineskip")):
            guards.check_plain_size(data_path, claimed, data_start + skip, "NRRD header")
        elif encoding in ("gzip", "gz") and skip == 0 and not header.get("line skip", header.get("lineskip")):
            guards.check_gzip_size(data_path, claimed, "NRRD header", data_start)
    except InputError as exc:
        if data_path == path:
            raise
        raise InputError(f"{exc.reason} (its data file {data_path.name})", path) from None


def _item_size(header: dict, path: Path) -> int:
    """Bytes per sample of an NRRD 'type' (all the spellings the format allows)."""
    kind = " ".join(str(header["type"]).lower().replace("_t", "").split())
    for size, words in ((1, ("char", "int8")), (2, ("short", "int16")), (8, ("long long", "longlong", "int64",
                                                                               "double")),
                        (4, ("int", "float"))):
        if any(word in kind for word in words):
            return size
    raise InputError(f"NRRD type '{header['type']}' is not a number type", path)


def _read(path: Path) -> tuple[np.ndarray, dict]:
    try:
        with open(path, "rb") as fh:
            header = _header_of(fh, path)
            data = _nrrd().read_data(header, fh, str(path), index_order="C")
    except InputError:
        raise
    except _errors() as exc:
        raise InputError(f"cannot read NRRD voxels (truncated or corrupt file?): {_why(exc)}", path) from exc
    return (data if data.dtype.isnative else data.astype(data.dtype.newbyteorder("="))), header


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# -- geometry ----------------------------------------------------------------------------------
def _space_directions(header: dict) -> np.ndarray | None:
    """'space directions' as an (ndim, 3) array; rows of non-spatial axes hold NaN."""
    sd = header.get("space directions")
    if sd is None:
        return None
    rows = []
    for row in sd:
        vec = np.full(3, np.nan) if row is None else np.asarray(row, dtype=float).ravel()
        rows.append(np.pad(vec, (0, max(0, 3 - vec.size)))[:3])  # 2-D spaces get z = 0
    return np.array(rows)


def domain_axes(header: dict) -> list[int]:
    """NRRD axes (fastest first) that are positions in space, not components or layers."""
    ndim = int(header["dimension"])
    sd = _space_directions(header)
    if sd is not None:
        return [a for a in range(ndim) if np.all(np.isfinite(sd[a]))]
    kinds = header.get("kinds")
    if kinds:
        return [a for a, kind in enumerate(kinds) if kind in ("domain", "space", "time", "none", "???")]
    return list(range(ndim))


def header_geometry(header: dict) -> tuple[tuple, tuple, np.ndarray, list[str]]:
    """(spacing, origin, direction, warnings) in our conventions for the spatial axes of ``header``."""
    warnings: list[str] = []
    axes = domain_axes(header)
    space = str(header.get("space", "")).lower()
    sign = np.asarray(_SPACE_TO_LPS.get(space, (1, 1, 1)), dtype=float)
    if space and space not in _SPACE_TO_LPS:
        warnings.append(f"NRRD space '{header['space']}' has no patient axes: taken as LPS")
    sd = _space_directions(header)
    columns = np.zeros((3, 3))
    if sd is not None and len(axes) >= 2:
        for n, a in enumerate(axes[:3]):
            columns[:, 2 - n] = sign * sd[a]
    else:
        spacings = header.get("spacings")
        steps = [float(spacings[a]) if spacings is not None and np.isfinite(spacings[a]) else np.nan
                 for a in axes[:3]]
        if not steps or any(not np.isfinite(s) or s <= 0 for s in steps):
            warnings.append("NRRD header has no space directions or spacings: spacing assumed 1 mm")
            steps = [1.0] * len(axes[:3])
        for n, step in enumerate(steps):
            columns[:, 2 - n] = CANONICAL_DIRECTION[:, 2 - n] * step
    if len(axes) == 2:  # a 2-D image: the slice axis is the normal of its plane, 1 mm
        normal = np.cross(columns[:, 2], columns[:, 1])
        columns[:, 0] = normal / np.linalg.norm(normal) if np.linalg.norm(normal) else CANONICAL_DIRECTION[:, 0]
    spacing = np.linalg.norm(columns, axis=0)
    spacing[spacing == 0] = 1.0
    origin = header.get("space origin")
    origin = np.zeros(3) if origin is None else np.pad(np.asarray(origin, float), (0, 3))[:3]
    if not np.all(np.isfinite(origin)):
        origin = np.zeros(3)
    return tuple(spacing), tuple(sign * origin), columns / spacing, warnings


def geometry_header(volume: Volume) -> dict:
    """'space', 'space directions' and 'space origin' for the spatial axes of ``volume``: LPS, or
    the space and the very numbers of the NRRD header it was read with (or inherited from its
    image) where they still describe its grid."""
    rows = np.array([volume.direction[:, 2 - a] * volume.spacing[2 - a] for a in range(3)])
    origin = np.asarray(volume.origin, dtype=float)
    found = volume.meta.get(FILE_GEOMETRY)
    if isinstance(found, dict) and found.get("format") == "nrrd":
        sign = np.asarray(_SPACE_TO_LPS[str(found["space"]).lower()], dtype=float)
        if np.allclose(rows * sign, found["space directions"], rtol=0, atol=1e-6) \
                and np.allclose(origin * sign, found["space origin"], rtol=0, atol=1e-6):
            return {"space": found["space"], "space directions": found["space directions"].copy(),
                    "space origin": found["space origin"].copy()}
    return {"space": "left-posterior-superior", "space directions": rows, "space origin": origin}


def _file_geometry(header: dict) -> dict | None:
    """The header's space, directions and origin as written, for :func:`geometry_header` (3-D
    images in a patient space only)."""
    space = str(header.get("space", "")).lower()
    sd, axes, origin = _space_directions(header), domain_axes(header), header.get("space origin")
    if space not in _SPACE_TO_LPS or sd is None or len(axes) != 3 or origin is None:
        return None
    rows = sd[axes]
    origin = np.asarray(origin, dtype=float).ravel()
    if origin.size != 3 or not (np.all(np.isfinite(rows)) and np.all(np.isfinite(origin))):
        return None
    return {"format": "nrrd", "space": str(header["space"]), "space directions": rows, "space origin": origin}


# -- segments ----------------------------------------------------------------------------------
def segments(header: dict) -> list[dict]:
    """The ``Segment{N}_*`` fields of a seg.nrrd as one dict per segment, in N order."""
    found: dict[int, dict] = {}
    for key, value in header.items():
        match = _SEGMENT_FIELD.match(str(key))
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = str(value)
    return [found[n] for n in sorted(found)]


def _colour(text: str | None, label_id: int) -> tuple[int, int, int]:
    from ctviewer.data.labels import default_colour

    try:
        rgb = [float(v) for v in (text or "").split()[:3]]
    except ValueError:
        rgb = []
    if len(rgb) != 3:
        return default_colour(label_id)
    return tuple(int(round(min(max(c, 0.0), 1.0) * 255)) for c in rgb)  # type: ignore[return-value]


def flatten_segments(data: np.ndarray, segs: list[dict], path: Path) -> tuple[np.ndarray, LabelTable]:
    """One label map and its table from a seg.nrrd's voxels ``[z, y, x]`` or ``[z, y, x, layers]``.

    A single layer keeps its label values. Several layers are merged when no voxel belongs to two
    segments; label values are kept where they are unique, else segments are numbered 1..N.
    """
    layered = data.ndim == 4
    n_layers = data.shape[3] if layered else 1
    for n, seg in enumerate(segs):
        seg["_value"] = _whole(seg, "LabelValue", 1, n, path)
        # Slicer < 4.11 wrote one binary layer per segment and no _Layer field
        default_layer = n if (layered and "Layer" not in seg and n_layers == len(segs)) else 0
        seg["_layer"] = _whole(seg, "Layer", default_layer, n, path)
        if not 0 <= seg["_layer"] < n_layers:
            raise InputError(f"segment '{seg.get('Name', n)}' is on layer {seg['_layer']}, "
                             f"but the file has {n_layers}", path)
    values = [seg["_value"] for seg in segs]
    if not layered:
        out = data
        ids = values
    else:
        ids = values if len(set(values)) == len(values) else list(range(1, len(segs) + 1))
        out = np.zeros(data.shape[:3], dtype=np.uint16 if max(ids, default=0) > 255 else np.uint8)
        owner = {}
        for seg, new_id in zip(segs, ids):
            mask = data[..., seg["_layer"]] == seg["_value"]
            taken = out[mask]
            if np.any(taken):
                other = owner.get(int(taken[taken != 0][0]), "another segment")
                raise InputError(f"segments '{other}' and '{seg.get('Name', new_id)}' overlap "
                                 "(multi-layer segmentation): export them as separate label maps", path)
            out[mask] = new_id
            owner[new_id] = seg.get("Name", str(new_id))
    table = LabelTable([Label(i, seg.get("Name", f"Segment {i}"), _colour(seg.get("Color"), i))
                        for seg, i in zip(segs, ids) if i != 0])
    return out, table


def _whole(seg: dict, field: str, default: int, n: int, path: Path) -> int:
    """A segment's whole-number field (``Segment{n}_LabelValue``, ``_Layer``), or InputError naming it."""
    text = seg.get(field, default)
    try:
        number = float(text)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or not number.is_integer() or not 0 <= number <= 65535:
        raise InputError(f"Segment{n}_{field} is '{str(text)[:40]}', not a whole number 0..65535 "
                         f"(segment '{str(seg.get('Name', n))[:40]}')", path)
    return int(number)


def _label_array(data: np.ndarray) -> np.ndarray:
    if data.dtype in (np.uint8, np.uint16):
        return data
    if data.size and (data.min() < 0 or data.max() > 65535):
        raise ValueError("label values outside 0..65535")
    return data.astype(np.uint8 if not data.size or data.max() < 256 else np.uint16)


# -- reading -----------------------------------------------------------------------------------
class NrrdReader:
    name = "nrrd"

    def examine(self, path: Path) -> list[Loadable]:
        path = Path(path)
        if path.is_dir() or format_suffix(path) not in _SUFFIXES:
            return []
        header = read_header(path)
        extra = [a for a in range(int(header["dimension"])) if a not in domain_axes(header)]
        sizes = [int(s) for s in header["sizes"]]
        spatial = [sizes[a] for a in domain_axes(header)]
        n_slices = spatial[2] if len(spatial) > 2 else 1
        name = base_name(path)
        if segments(header) or format_suffix(path) == ".seg.nrrd":
            return [Loadable(path, f"{name} — segmentation, {len(segments(header))} segments", "nrrd", 0.95,
                             lambda progress=None, cancel=None: read_label_map(path).volume, n_slices=n_slices,
                             meta={"label_map": True})]
        if len(spatial) not in (2, 3) or len(extra) > 1:
            raise InputError(f"NRRD with {len(spatial)} spatial axes and sizes {sizes}: not an image volume",
                             path)
        if extra and not _is_colour(header, extra[0]):
            n = sizes[extra[0]]
            if n > MAX_VOLUMES:
                raise InputError(f"NRRD with {n} volumes along a '{_kind(header, extra[0])}' axis: "
                                 "not an image volume", path)
            return [Loadable(path, f"{name} — volume {t + 1} of {n}", "nrrd", 0.95 - 0.001 * t,
                             (lambda t: lambda progress=None, cancel=None: _load(path, t))(t),
                             n_slices=n_slices, meta={"volume_index": t}) for t in range(n)]
        return [Loadable(path, f"{name} — {'×'.join(str(s) for s in spatial)}", "nrrd", 0.95,
                         lambda progress=None, cancel=None: _load(path, None), n_slices=n_slices)]


def _kind(header: dict, axis: int) -> str:
    kinds = header.get("kinds") or []
    return str(kinds[axis]) if axis < len(kinds) else "none"


def _is_colour(header: dict, axis: int) -> bool:
    return (_kind(header, axis) in ("RGB-color", "3-color", "RGBA-color", "4-color")
            and int(header["sizes"][axis]) in (3, 4))


def _spatial_array(data: np.ndarray, header: dict) -> np.ndarray:
    """Voxels as ``[z, y, x]`` or ``[z, y, x, extra]``: the non-spatial axis moved last, 2-D made one-slice."""
    ndim = int(header["dimension"])
    extra = [ndim - 1 - a for a in range(ndim) if a not in domain_axes(header)]  # as C axes
    if extra:
        data = np.moveaxis(data, extra[0], -1)
    if len(domain_axes(header)) == 2:
        data = data[None]
    return data


def _load(path: Path, t: int | None) -> Volume:
    data, header = _read(path)
    spacing, origin, direction, warnings = header_geometry(header)
    data = _spatial_array(data, header)
    if t is not None:
        data = data[..., t]
    rgb = data.ndim == 4
    if rgb:
        data = data[..., :3]
    modality = str(header.get("modality", "XC" if rgb else ""))
    if not modality and looks_like_hu(data):
        modality = "CT"  # NRRD has no modality field either: same heuristic as NIfTI
    name = base_name(path) + ("" if t is None else f" [{t + 1}]")
    return Volume(np.ascontiguousarray(data), spacing=spacing, origin=origin, direction=direction,
                  modality=modality, name=name, source=str(path), warnings=warnings,
                  meta={"format": "nrrd", FILE_GEOMETRY: _file_geometry(header)})


def read_label_map(path: str | Path) -> LabelMap:
    """A label map from a ``.seg.nrrd`` (segments become the table) or a plain label NRRD."""
    path = Path(path)
    data, header = _read(path)
    spacing, origin, direction, warnings = header_geometry(header)
    data = _spatial_array(data, header)
    segs = segments(header)
    if segs:
        array, table = flatten_segments(data, segs, path)
    elif data.ndim == 3:
        array, table = data, None
    else:
        raise InputError(f"NRRD of shape {data.shape} has more than one value per voxel: not a label map", path)
    try:
        array = _label_array(np.ascontiguousarray(array))
    except ValueError as exc:
        raise InputError(f"not a label map: {exc}", path) from exc
    meta = {"format": "nrrd", "label_table": table, FILE_GEOMETRY: _file_geometry(header)}
    volume = Volume(array, spacing=spacing, origin=origin, direction=direction, name=base_name(path),
                    source=str(path), warnings=warnings, meta=meta)
    labels = LabelMap(volume, table) if table is not None else LabelMap(volume)
    if table is not None:
        labels.add_missing_labels(path.name)
    return labels


# -- writing -----------------------------------------------------------------------------------
def write_nrrd(volume: Volume, path: Path, label_table: LabelTable | None = None) -> None:
    """Write ``volume`` as gzip NRRD in LPS (or in the space and numbers of the NRRD it was read or
    made from, see :func:`geometry_header`); with ``label_table`` (or a ``.seg.nrrd`` name) it is
    written as a 3D Slicer segmentation with one ``Segment{N}_*`` set per label."""
    header = geometry_header(volume)
    header["encoding"] = "gzip"
    data = volume.array
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    if volume.is_rgb:
        header["space directions"] = [None] + [r for r in header["space directions"]]
        header["kinds"] = ["RGB-color" if data.shape[-1] == 3 else "RGBA-color", "domain", "domain", "domain"]
    else:
        header["kinds"] = ["domain", "domain", "domain"]
    if volume.modality and volume.modality != "SEG":
        header["modality"] = volume.modality
    if label_table is not None or format_suffix(path) == ".seg.nrrd":
        if volume.is_rgb or not np.issubdtype(data.dtype, np.integer):
            raise InputError("a segmentation must hold integer label ids, not colours or fractions", path)
        header.update(segment_fields(data, label_table))
    _nrrd().write(str(path), np.ascontiguousarray(data), header, index_order="C",
                  compression_level=6)


def segment_fields(data: np.ndarray, table: LabelTable | None) -> dict:
    """The fields 3D Slicer writes for a one-layer segmentation (``vtkMRMLSegmentationStorageNode``,
    Slicer 5): one segment per label of the table and per id present without one, on layer 0 with
    its id as label value, so Slicer and ctviewer both read ids, names and colours back."""
    present = [v for v in present_ids(data) if v != 0]
    table = table if table is not None else LabelTable.for_ids(present)
    labels = [lab for lab in table if lab.id != 0]  # 0 is background: never a segment
    labels += [Label(v, f"Label {v}", (128, 128, 128)) for v in present if v not in table]
    boxes = _bounding_boxes(data, max((lab.id for lab in labels), default=0))
    fields = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
        "Segmentation_ConversionParameters": "",
    }
    for n, lab in enumerate(labels):
        r, g, b = (c / 255.0 for c in lab.colour)
        fields.update({
            f"Segment{n}_ID": f"Segment_{lab.id}",
            f"Segment{n}_Name": lab.name,
            f"Segment{n}_NameAutoGenerated": "0",
            f"Segment{n}_Color": f"{r:.6f} {g:.6f} {b:.6f}",
            f"Segment{n}_ColorAutoGenerated": "0",
            f"Segment{n}_LabelValue": str(lab.id),
            f"Segment{n}_Layer": "0",
            f"Segment{n}_Extent": _extent(boxes[lab.id - 1] if lab.id <= len(boxes) else None),
            f"Segment{n}_Tags": "Segmentation.Status:inprogress|",
        })
    return fields


def _bounding_boxes(data: np.ndarray, max_id: int) -> list:
    """Bounding box (slices [z, y, x]) of every id 1..max_id in one pass; None where absent."""
    from scipy import ndimage

    if data.size == 0 or max_id == 0:
        return []
    return ndimage.find_objects(data, max_label=max_id)


def _extent(box) -> str:
    """'i0 i1 j0 j1 k0 k1' of a bounding box (NRRD axis order, fastest first); Slicer's
    '0 -1 0 -1 0 -1' for an empty segment."""
    if box is None:
        return "0 -1 0 -1 0 -1"
    bounds = []
    for axis in (2, 1, 0):  # array [z, y, x] -> NRRD i (x), j (y), k (z)
        bounds += [int(box[axis].start), int(box[axis].stop) - 1]
    return " ".join(str(b) for b in bounds)

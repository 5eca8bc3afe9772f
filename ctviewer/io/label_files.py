"""Label maps on disk, whatever the format, and the sidecar files that travel with images.

One convention for names and colours of labels (see :mod:`ctviewer.io.writers`):

* ``.seg.nrrd`` / ``.nrrd`` carry them inside the header (3D Slicer's ``Segment{N}_*`` fields);
* every other format (NIfTI, NumPy, PNG) gets an ITK-SNAP label description file beside it,
  ``NAME.label.txt`` where ``NAME`` is the file name without its format suffix
  (``liver.nii.gz`` -> ``liver.label.txt``). ITK-SNAP and ctviewer both read it.

Facts about an image that its format cannot hold (spacing of a ``.npy``, modality of a NIfTI)
live in a JSON sidecar ``NAME.json`` (``NAME.npy.json`` is accepted too).
"""

from __future__ import annotations

import json
from pathlib import Path

from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.errors import InputError

#: Format suffixes that are part of the format, longest first (so ``.nii.gz`` beats ``.gz``).
FORMAT_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".hdr", ".img", ".nrrd", ".nhdr", ".npy", ".npz",
                   ".raw", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def format_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` in lower case ('.nii.gz', '.seg.nrrd', '.png'), or ''."""
    name = Path(path).name.lower()
    return next((s for s in FORMAT_SUFFIXES if name.endswith(s)), Path(path).suffix.lower())


def base_name(path: str | Path) -> str:
    """The file name without its format suffix: ``liver.nii.gz`` -> ``liver``."""
    name = Path(path).name
    suffix = format_suffix(path)
    return name[: len(name) - len(suffix)] if suffix and name.lower().endswith(suffix) else Path(path).stem


def table_sidecar(path: str | Path) -> Path:
    """Where the label table of ``path`` lives (``NAME.label.txt`` beside it)."""
    path = Path(path)
    return path.with_name(f"{base_name(path)}.label.txt")


def json_sidecar(path: str | Path) -> Path | None:
    """The JSON sidecar of ``path`` if there is one (``NAME.npy.json`` first, then ``NAME.json``)."""
    path = Path(path)
    for candidate in (path.with_name(path.name + ".json"), path.with_name(base_name(path) + ".json")):
        if candidate.is_file() and candidate != path:
            return candidate
    return None


def read_json_sidecar(path: str | Path) -> dict:
    """The sidecar's content ({} when there is none); a broken sidecar is the user's error."""
    sidecar = json_sidecar(path)
    if sidecar is None:
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"sidecar is not valid JSON: {exc}", sidecar) from exc
    if not isinstance(data, dict):
        raise InputError("sidecar must hold a JSON object like {\"spacing\": [z, y, x]}", sidecar)
    return data


def read_sidecar_table(path: str | Path) -> LabelTable | None:
    sidecar = table_sidecar(path)
    return LabelTable.read(sidecar) if sidecar.is_file() else None


def read_label_map(path: str | Path, canonical: bool = True) -> LabelMap:
    """A label map from any format ctviewer writes: NIfTI (+ ``NAME.label.txt``), NRRD/seg.nrrd,
    a PNG index image, or a ``.npy``.

    With ``canonical`` the axes are reordered exactly as :func:`ctviewer.io.registry.read_volume`
    reorders its image, so a label map and its image read from the same grid line up.
    """
    from ctviewer.imaging.orientation import to_canonical
    from ctviewer.io import nifti, nrrd_io, numpy_io, photo

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    suffix = format_suffix(path)
    if suffix in (".nrrd", ".nhdr", ".seg.nrrd"):
        labels = nrrd_io.read_label_map(path)
    else:
        volume = None
        for reader in (nifti.NiftiReader(), numpy_io.NumpyReader(), photo.PhotoReader()):
            items = reader.examine(path)
            if items:
                volume = items[0].load()
                break
        if volume is None:
            raise InputError("not a label map ctviewer can read (NIfTI, NRRD, .npy, PNG)", path)
        if volume.is_rgb:
            raise InputError("a label image must hold one label id per pixel; this one is colour (RGB)", path)
        volume.modality = ""
        volume.window = None
        table = read_sidecar_table(path) or volume.meta.get("label_table")
        labels = LabelMap(volume, table) if table is not None else LabelMap(volume)
    if canonical:
        labels.volume = to_canonical(labels.volume)
    return labels

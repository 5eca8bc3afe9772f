"""Label maps on disk, whatever the format, and the sidecar files that travel with images.

Where the names and colours of labels live (see :mod:`ctviewer.io.writers`):

* ``.seg.nrrd`` / ``.nrrd`` carry them inside the header (3D Slicer's ``Segment{N}_*`` fields);
* a DICOM-SEG carries them in its segment descriptions (:mod:`ctviewer.io.dicom_seg`);
* every other format (NIfTI, NumPy, PNG) gets ctviewer's JSON label table beside it,
  ``NAME.labels.json`` where ``NAME`` is the file name without its format suffix
  (``liver.nii.gz`` -> ``liver.labels.json``). It keeps every field of a label (id, name,
  colour, visible, locked, opacity).

Reading a label map looks for ``NAME.labels.json`` first, then for an ITK-SNAP label description
``NAME.label.txt`` (older ctviewer files, ITK-SNAP users). ITK-SNAP files are still read and written
on request through :meth:`LabelTable.read` / :meth:`LabelTable.write`.

Facts about an image that its format cannot hold (spacing of a ``.npy``, modality of a NIfTI)
live in a JSON sidecar ``NAME.json`` (``NAME.npy.json`` is accepted too).

Where labels of an image are looked for and saved by default (:func:`default_label_path`,
:func:`find_label_file`): the thin-section layout of the seed scripts
(``images_prepped_test/43.jpg`` -> ``annotations_prepped_test/43.png``), else
``NAME_labels.png`` beside a photo and ``NAME_labels.nii.gz`` beside a volume.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError

#: Format suffixes that are part of the format, longest first (so ``.nii.gz`` beats ``.gz``).
FORMAT_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".hdr", ".img", ".nrrd", ".nhdr", ".npy", ".npz",
                   ".raw", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm")
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: A label image by colour may hold at most this many colours (besides black).
MAX_COLOURS = 255
_PREPPED_IMAGES, _PREPPED_LABELS = "images_prepped_", "annotations_prepped_"


class ColourLabelsError(InputError):
    """A label image in colour (RGB) where label ids were expected; it can be mapped by colour."""


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
    """Where the label table of ``path`` is written (``NAME.labels.json`` beside it)."""
    path = Path(path)
    return path.with_name(f"{base_name(path)}.labels.json")


def itksnap_sidecar(path: str | Path) -> Path:
    """The ITK-SNAP label description beside ``path`` that older files have (``NAME.label.txt``)."""
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
    """The table beside ``path``: ``NAME.labels.json``, else ``NAME.label.txt``, else None."""
    for sidecar in (table_sidecar(path), itksnap_sidecar(path)):
        if sidecar.is_file():
            return LabelTable.read(sidecar)
    return None


# -- reading -----------------------------------------------------------------------------------
def read_label_map(path: str | Path, canonical: bool = True, map_colours: bool = False) -> LabelMap:
    """:func:`_read_label_map`, with what libraries warn while reading kept in ``LabelMap.warnings``
    (or folded into the one-line error) instead of printed on stderr."""
    from ctviewer.io.guards import collected_warnings
    from ctviewer.io.registry import with_library_warnings

    with collected_warnings() as said:
        try:
            labels = _read_label_map(path, canonical, map_colours)
        except InputError as exc:
            raise with_library_warnings(exc, said) from exc
    labels.warnings.extend(w for w in said if w not in labels.warnings)
    return labels


def _read_label_map(path: str | Path, canonical: bool = True, map_colours: bool = False) -> LabelMap:
    """A label map from any format ctviewer writes: NIfTI / ``.npy`` / PNG (+ ``NAME.labels.json``),
    NRRD / ``.seg.nrrd``, or a DICOM-SEG.

    Ids that occur in the array but not in its table are added as "Label N" and named in
    ``LabelMap.warnings``. A colour (RGB) image raises :class:`ColourLabelsError` unless
    ``map_colours``, which turns each colour into an id (see :func:`labels_from_colours`).
    With ``canonical`` the axes are reordered exactly as :func:`ctviewer.io.registry.read_volume`
    reorders its image, so a label map and its image read from the same grid line up.
    """
    from ctviewer.imaging.orientation import to_canonical
    from ctviewer.io import dicom_seg, nifti, nrrd_io, numpy_io, photo

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    suffix = format_suffix(path)
    if suffix in (".nrrd", ".nhdr", ".seg.nrrd"):
        labels = nrrd_io.read_label_map(path)
        if labels.volume.meta.get("label_table") is None:  # a plain label NRRD: a sidecar may name it
            table = read_sidecar_table(path)
            labels = LabelMap(labels.volume, table) if table is not None else labels
    elif dicom_seg.is_dicom_seg(path):
        labels = dicom_seg.read_dicom_seg(path)
    else:
        volume = None
        for reader in (nifti.NiftiReader(), numpy_io.NumpyReader(), photo.PhotoReader()):
            items = reader.examine(path)
            if items:
                volume = items[0].load()
                break
        if volume is None:
            raise InputError("not a label map ctviewer can read (NIfTI, NRRD, .npy, PNG, DICOM-SEG)", path)
        table = read_sidecar_table(path)
        if volume.is_rgb:
            if not map_colours:
                raise ColourLabelsError("the file is a colour (RGB) image, not label ids; "
                                        "it can be mapped by colour", path)
            labels = labels_from_colours(volume, table, path)
        else:
            volume = volume.with_array(volume.array, modality="", window=None, source=volume.source)
            labels = LabelMap(volume, table) if table is not None else LabelMap(volume)
    labels.add_missing_labels(path.name)
    if canonical:
        labels.volume = to_canonical(labels.volume)
    return labels


def labels_from_colours(volume: Volume, table: LabelTable | None = None,
                        path: str | Path | None = None) -> LabelMap:
    """Label ids from a colour image: a colour equal to a colour of ``table`` gets that label's id,
    black is background (0), every other colour a new id (1, 2, ... by how often it occurs, ids of
    ``table`` skipped). The table returned has those colours."""
    rgb = volume.array[..., :3]
    if rgb.dtype != np.uint8:
        raise InputError(f"a label image by colour must be 8-bit colour, not {rgb.dtype}", path)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    known = {lab.colour: lab for lab in (table or [])}
    n_new = sum(1 for c in colours if c != 0 and _rgb(c) not in known)
    if n_new > MAX_COLOURS:
        raise InputError(f"has {n_new} colours; a label image by colour may have at most {MAX_COLOURS} "
                         "(is it a photo rather than a label image?)", path)
    ids = np.zeros(colours.size, dtype=np.int64)
    labels: list[Label] = []
    for n, colour in enumerate(colours):
        if _rgb(colour) in known:
            lab = known[_rgb(colour)]
            ids[n] = lab.id
            labels.append(Label(lab.id, lab.name, lab.colour, lab.visible, lab.locked, lab.opacity))
    taken = {lab.id for lab in (table or [])} | {0}
    next_id = 1
    for n in np.argsort(-counts, kind="stable"):  # the commonest colour gets the lowest free id
        if colours[n] == 0 or _rgb(colours[n]) in known:
            continue
        while next_id in taken:
            next_id += 1
        ids[n] = next_id
        taken.add(next_id)
        labels.append(Label(next_id, f"Label {next_id}", _rgb(colours[n])))
    dtype = np.uint8 if ids.max(initial=0) < 256 else np.uint16
    array = ids.astype(dtype)[inverse].reshape(packed.shape)
    return LabelMap(volume.with_array(array, modality="", window=None, source=volume.source), LabelTable(labels))


def _rgb(packed) -> tuple[int, int, int]:
    packed = int(packed)
    return (packed >> 16) & 255, (packed >> 8) & 255, packed & 255


# -- where labels of an image live -------------------------------------------------------------
def default_label_path(image_path: str | Path, photo: bool) -> Path:
    """Where labels of ``image_path`` are saved unless the user says otherwise.

    A photo in a folder ``images_prepped_<X>`` (the seed scripts' training layout) gets
    ``annotations_prepped_<X>/<name>.png`` beside that folder; another photo ``<name>_labels.png``
    beside it; a volume (file or DICOM folder) ``<name>_labels.nii.gz`` beside it.
    """
    image_path = Path(image_path)
    name = image_path.name if image_path.is_dir() else base_name(image_path)
    if photo:
        annotation = _prepped_annotation(image_path)
        return annotation if annotation is not None else image_path.with_name(f"{name}_labels.png")
    return image_path.with_name(f"{name}_labels.nii.gz")


def find_label_file(image_path: str | Path) -> Path | None:
    """The label file that belongs to ``image_path`` if one exists: the annotation of a
    seed-layout image, the same name in a sibling ``labels`` folder of an ``images`` folder, or a
    file with the default name (``<name>_labels`` in any format ctviewer writes)."""
    image_path = Path(image_path)
    name = image_path.name if image_path.is_dir() else base_name(image_path)
    candidates = [_prepped_annotation(image_path)]
    if image_path.parent.name.lower() == "images":
        labels_folder = image_path.parent.with_name("labels")
        candidates += [labels_folder / image_path.name, labels_folder / f"{name}.png"]
    candidates += [image_path.with_name(f"{name}_labels{suffix}")
                   for suffix in (".png", ".nii.gz", ".seg.nrrd", ".nrrd", ".nii", ".npy", ".dcm")]
    return next((c for c in candidates if c is not None and c.is_file() and c != image_path), None)


def _prepped_annotation(image_path: Path) -> Path | None:
    folder = image_path.parent
    if not folder.name.startswith(_PREPPED_IMAGES):
        return None
    labels_folder = folder.with_name(_PREPPED_LABELS + folder.name[len(_PREPPED_IMAGES):])
    return labels_folder / f"{base_name(image_path)}.png"

"""Training cases for segmentation: a study with its label map on the same grid.

:func:`find_cases` looks at what the user pointed at and lists :class:`CaseRef` items (found, not
yet read); :meth:`CaseRef.load` reads one into a :class:`Case`. What it understands:

* the 3D-IRCADb layout: ``PATIENT_DICOM/`` (the CT series) and ``MASKS_DICOM/<organ>/`` (one DICOM
  slice per image slice, non-zero = organ), for one patient or a folder of patients. Mask slices are
  put on the image slice at their ``ImagePositionPatient``, never paired by file order (the liver
  seed paired sorted file lists, which breaks as soon as names do not sort like positions);
* a text file of ``image,label`` lines (the spine seed's format), paths relative to the file;
* NIfTI (or NRRD) pairs: ``images/`` + ``labels/`` (nnU-Net's ``imagesTr``/``labelsTr`` and ``_0000``
  suffix too), or ``NAME.nii.gz`` beside ``NAME_labels.nii.gz`` / ``NAME_seg.nii.gz``.

Images are read by :func:`ctviewer.io.read_volume` (HU, LPS, display orientation) and label files by
:func:`ctviewer.io.label_files.read_label_map`, so a label map lines up with its image exactly.
Studies open in the app become cases through :func:`case_from_study`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, no_progress

#: Organ folder names (3D-IRCADb's and TotalSegmentator's spellings, compared without case, spaces,
#: ``_`` or ``-``) -> TotalSegmentator v2 label ids. Organs not listed get ids from 200 up.
ORGAN_IDS: dict[str, int] = {
    "spleen": 1, "rightkidney": 2, "kidneyright": 2, "leftkidney": 3, "kidneyleft": 3,
    "gallbladder": 4, "liver": 5, "stomach": 6, "pancreas": 7,
    "rightsurrenalgland": 8, "adrenalglandright": 8, "leftsurrenalgland": 9, "adrenalglandleft": 9,
    "esophagus": 15, "oesophagus": 15, "trachea": 16, "smallintestin": 18, "smallbowel": 18,
    "duodenum": 19, "colon": 20, "bladder": 21, "urinarybladder": 21, "heart": 51, "aorta": 52,
    "venacava": 63, "inferiorvenacava": 63, "portalvein": 64, "portalveinandsplenicvein": 64,
}
#: First id given to an organ that :data:`ORGAN_IDS` does not know (tumours, bone, skin, ...).
FIRST_UNKNOWN_ORGAN_ID = 200
#: Vessels run through organs; they are painted before the organs so an organ mask stays whole.
_VESSEL_IDS = {52, 63, 64}
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")
_LABEL_ENDINGS = ("_labels", "_seg")


@dataclass
class Case:
    """One study with its label map on the same grid."""

    case_id: str
    image: Volume
    labels: np.ndarray          # integer ids, same shape as image.array
    source: str
    label_names: dict[int, str] = field(default_factory=dict)


@dataclass
class CaseRef:
    """A case found on disk, not read yet."""

    case_id: str
    kind: str                   # "ircadb" | "pairs" | "nifti" | "study"
    image_path: Path
    label_path: Path | None
    #: For "ircadb": organ name -> label id, shared by every patient found together.
    organ_ids: dict[str, int] = field(default_factory=dict)

    def load(self, resample_labels: bool = False, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> Case:
        """Read the image and its labels (resampled onto the image only when asked)."""
        if self.kind == "ircadb":
            return _load_ircadb(self, progress, cancel)
        return _load_pair(self, resample_labels, progress, cancel)


# -- finding -----------------------------------------------------------------------------------
def find_cases(path: str | Path) -> list[CaseRef]:
    """Every case at ``path`` (see the module docstring for the layouts understood)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_file():
        return _cases_from_list(path)
    for finder in (_ircadb_cases, _split_folder_cases, _side_by_side_cases):
        refs = finder(path)
        if refs:
            return refs
    raise InputError("holds no training cases: expected 3D-IRCADb folders (PATIENT_DICOM/, MASKS_DICOM/), "
                     "images/ + labels/, or NAME.nii.gz with NAME_labels.nii.gz", path)


def _natural_key(text: str):
    """Sort "patient2" before "patient10"."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _ircadb_cases(folder: Path) -> list[CaseRef]:
    patients = [folder] if _is_ircadb_patient(folder) else sorted(
        (p for p in folder.iterdir() if p.is_dir() and _is_ircadb_patient(p)), key=lambda p: _natural_key(p.name))
    organs = sorted({o.name for p in patients for o in _organ_folders(p)}, key=_natural_key)
    unknown = [name for name in organs if _organ_key(name) not in ORGAN_IDS]
    ids = {name: ORGAN_IDS.get(_organ_key(name), 0) for name in organs}
    ids.update({name: FIRST_UNKNOWN_ORGAN_ID + n for n, name in enumerate(unknown)})
    return [CaseRef(p.name, "ircadb", p / "PATIENT_DICOM", p / "MASKS_DICOM", dict(ids)) for p in patients]


def _is_ircadb_patient(folder: Path) -> bool:
    if (folder / "PATIENT_DICOM").is_dir():
        return True
    if (folder / "PATIENT_DICOM.zip").is_file():
        raise InputError("the 3D-IRCADb archives are still zipped: unzip PATIENT_DICOM.zip and MASKS_DICOM.zip", folder)
    return False


def _organ_folders(patient: Path) -> list[Path]:
    masks = patient / "MASKS_DICOM"
    if not masks.is_dir():
        raise InputError("a 3D-IRCADb patient needs a MASKS_DICOM folder beside PATIENT_DICOM", patient)
    return sorted((p for p in masks.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: _natural_key(p.name))


def _organ_key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.lower())


def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_IMAGE_SUFFIXES) and not path.name.startswith(".")


def _stem(path: Path) -> str:
    from ctviewer.io.label_files import base_name

    return base_name(path)


def _split_folder_cases(folder: Path) -> list[CaseRef]:
    """images/ + labels/ (or nnU-Net's imagesTr/ + labelsTr/), matched by name."""
    for images_name, labels_name in (("images", "labels"), ("imagesTr", "labelsTr")):
        images, labels = folder / images_name, folder / labels_name
        if not (images.is_dir() and labels.is_dir()):
            continue
        label_files = {_stem(p): p for p in labels.iterdir() if _is_image_file(p)}
        refs = []
        for image in sorted(images.iterdir(), key=lambda p: _natural_key(p.name)):
            name = re.sub(r"_0000$", "", _stem(image)) if _is_image_file(image) else None
            if name in label_files:
                refs.append(CaseRef(name, "nifti", image, label_files[name]))
        if not refs:
            raise InputError(f"no image in {images_name}/ has a label file of the same name in {labels_name}/", folder)
        return refs
    return []


def _side_by_side_cases(folder: Path) -> list[CaseRef]:
    """NAME.nii.gz beside NAME_labels.nii.gz or NAME_seg.nii.gz."""
    files = {_stem(p): p for p in folder.iterdir() if _is_image_file(p)}
    refs = []
    for name in sorted(files, key=_natural_key):
        label = next((files[name + end] for end in _LABEL_ENDINGS if name + end in files), None)
        if label is not None:
            refs.append(CaseRef(name, "nifti", files[name], label))
    return refs


def _cases_from_list(path: Path) -> list[CaseRef]:
    """The spine seed's text file: one ``image,label`` pair a line, relative to the file."""
    from ctviewer.io.pair_lists import read_pair_list

    refs: list[CaseRef] = []
    seen: set[str] = set()
    for number, image, label in read_pair_list(path):
        case_id = _stem(image) if _stem(image) not in seen else f"{_stem(image)}@{number}"
        seen.add(case_id)
        refs.append(CaseRef(case_id, "pairs", image, label))
    return refs


# -- reading -----------------------------------------------------------------------------------
def _read_image(path: Path, progress, cancel) -> Volume:
    from ctviewer.io import read_volume

    image = read_volume(path, progress=progress, cancel=cancel)
    if image.is_rgb:
        raise InputError("is a colour image, not a scan to segment", path)
    return image


def _load_pair(ref: CaseRef, resample_labels: bool, progress, cancel) -> Case:
    from ctviewer.io.label_files import read_label_map

    image = _read_image(ref.image_path, progress, cancel)
    label_map = read_label_map(ref.label_path)
    names = {lab.id: lab.name for lab in label_map.table if lab.id != 0}
    try:
        case = case_from_study(ref.case_id, image, label_map.volume, names, resample_labels=resample_labels)
    except InputError as exc:
        raise InputError(exc.reason, ref.label_path) from None
    case.source = str(ref.image_path)
    return case


def case_from_study(case_id: str, image: Volume, labels, names: dict[int, str] | None = None,
                    resample_labels: bool = False) -> Case:
    """A case from an image and its labels: an array of the image's shape, or a label :class:`Volume`
    (or ``LabelMap``) with its own geometry, which must be the image's grid unless ``resample_labels``
    (then it is resampled, nearest neighbour, onto the image grid)."""
    volume = getattr(labels, "volume", labels)
    if isinstance(volume, Volume):
        if not image.same_grid(volume):
            if not resample_labels:
                raise InputError(f"label map and image have different grids ({_grid_difference(image, volume)}); "
                                 "resample the labels onto the image explicitly (resample_labels)", image.source or None)
            volume = volume.with_array(_nearest_onto(image, volume))
        array = volume.array
    else:
        array = np.asarray(labels)
        if array.shape != image.shape:
            raise InputError(f"label map and image have different grids (shape {array.shape} vs {image.shape})",
                             image.source or None)
    return Case(case_id, image, _whole_numbers(array, image), image.source, dict(names or {}))


def _whole_numbers(array: np.ndarray, image: Volume) -> np.ndarray:
    """Label ids as integers; a float map (some tools save labels so) is accepted when whole."""
    if np.issubdtype(array.dtype, np.integer):
        return array
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.size and (np.any(array < 0) or np.any(array > 65535) or np.any(np.mod(array, 1) != 0)):
        raise InputError("a label map must hold whole numbers 0..65535", image.source or None)
    return array.astype(np.uint8 if array.size == 0 or array.max() < 256 else np.uint16)


def _grid_difference(image: Volume, labels: Volume) -> str:
    """Which of shape / spacing / origin / direction differ, with both values."""
    def fmt(values):
        return "(" + ", ".join(f"{v:g}" for v in np.ravel(values)) + ")"

    parts = []
    if image.shape != labels.shape:
        parts.append(f"shape {fmt(labels.shape)} vs {fmt(image.shape)}")
    if not np.allclose(image.spacing, labels.spacing, atol=1e-3):
        parts.append(f"spacing {fmt(labels.spacing)} vs {fmt(image.spacing)}")
    if not np.allclose(image.origin, labels.origin, atol=1e-2):
        parts.append(f"origin {fmt(labels.origin)} vs {fmt(image.origin)}")
    if not np.allclose(image.direction, labels.direction, atol=1e-3):
        parts.append("direction differs")
    return "; ".join(parts) + " (labels vs image)"


def _nearest_onto(image: Volume, labels: Volume) -> np.ndarray:
    """Label ids at each image voxel centre (nearest neighbour, 0 outside the label map)."""
    from scipy.ndimage import affine_transform

    image_to_label = np.linalg.solve(labels.affine, image.affine)  # image index -> label index
    return affine_transform(labels.array, image_to_label[:3, :3], offset=image_to_label[:3, 3],
                            output_shape=image.shape, order=0, mode="constant", cval=0)


# -- 3D-IRCADb masks ---------------------------------------------------------------------------
def _load_ircadb(ref: CaseRef, progress, cancel) -> Case:
    """The CT series and every organ's mask slices, painted into one label map.

    A voxel holds one id, so where masks overlap the one painted last wins: organs not in
    :data:`ORGAN_IDS` (lesions, bone, skin) first, then vessels, then organs, so that the liver mask
    stays whole even where a tumour or the portal vein lies inside it.
    """
    progress = progress or no_progress
    image = _read_image(ref.image_path, lambda f, m="": progress(0.5 * f, m), cancel)
    organs = _organ_folders(ref.image_path.parent)
    ids = ref.organ_ids or {o.name: ORGAN_IDS.get(_organ_key(o.name), 0) for o in organs}
    tier = {name: 0 if i >= FIRST_UNKNOWN_ORGAN_ID or i == 0 else 1 if i in _VESSEL_IDS else 2
            for name, i in ids.items()}
    organs.sort(key=lambda o: (tier.get(o.name, 0), _natural_key(o.name)))
    labels = np.zeros(image.shape, np.uint8 if max(ids.values(), default=0) < 256 else np.uint16)
    names = {}
    for n, organ in enumerate(organs):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(0.5 + 0.5 * n / max(len(organs), 1), f"reading the {organ.name} mask")
        if organ.name not in ids:
            raise InputError("organ mask found after the cases were listed; list them again", organ)
        labels[_organ_mask(organ, image)] = ids[organ.name]
        names[ids[organ.name]] = organ.name
    progress(1.0, "")
    return Case(ref.case_id, image, labels, str(ref.image_path.parent), names)


def _organ_mask(folder: Path, image: Volume) -> np.ndarray:
    """Boolean [z, y, x] mask of one organ folder on the image grid."""
    import pydicom

    mask = np.zeros(image.shape, bool)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError("organ mask folder holds no DICOM slices", folder)
    for file in files:
        try:
            ds = pydicom.dcmread(file, force=True)
            pixels = ds.pixel_array
        except Exception as exc:  # pydicom raises many kinds for a bad file
            raise InputError(f"not a readable DICOM mask slice ({exc})", file) from None
        k, plane = _place_slice(ds, pixels, image, file)
        mask[k] |= plane != 0
    return mask


def _place_slice(ds, pixels: np.ndarray, image: Volume, file: Path) -> tuple[int, np.ndarray]:
    """Image slice index of a mask slice (by ImagePositionPatient) and its pixels in the image's
    [y, x] order, however the image was reoriented for display."""
    try:
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    except (AttributeError, TypeError, ValueError):
        raise InputError("mask slice lacks ImagePositionPatient, ImageOrientationPatient or PixelSpacing",
                         file) from None
    origin = image.lps_to_index(position)
    along_row = image.lps_to_index(position + orientation[:3] * column_spacing) - origin   # next column
    along_column = image.lps_to_index(position + orientation[3:] * row_spacing) - origin   # next row
    k = int(round(origin[0]))
    if abs(origin[0] - k) > 0.05 or not 0 <= k < image.shape[0]:
        raise InputError(f"mask slice at {_mm(position)} lies on no slice of the image", file)
    steps = np.stack([along_column, along_row])          # rows of: index step per pixel row / column
    unit = np.round(np.abs(steps[:, 1:]))                  # a pixel step must be one image pixel along y or x
    if (not np.allclose(np.abs(steps[:, 1:]), unit, atol=0.01) or not np.allclose(steps[:, 0], 0, atol=0.01)
            or np.any(unit.sum(axis=0) != 1) or np.any(unit.sum(axis=1) != 1)):
        raise InputError("mask slice pixels do not fall on the image's pixels (other spacing or orientation)", file)
    plane = pixels if abs(steps[0, 1]) > 0.5 else pixels.T           # plane rows now run along image y
    start = np.round(origin[1:]).astype(int)
    for axis in (0, 1):
        if steps[:, axis + 1].sum() < 0:
            plane = np.flip(plane, axis=axis)
            start[axis] -= plane.shape[axis] - 1
    if plane.shape != image.shape[1:] or np.any(start != 0) or not np.allclose(origin[1:], np.round(origin[1:]), atol=0.05):
        raise InputError(f"mask slice ({pixels.shape[0]}x{pixels.shape[1]} pixels) does not cover the image "
                         f"slice ({image.shape[1]}x{image.shape[2]}) pixel for pixel", file)
    return k, plane


def _mm(position) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in position) + ") mm"

"""Find the reader for a path by asking every reader what it can load (Slicer's DICOMPlugin idea).

Each reader's ``examine(path)`` returns :class:`Loadable` items — for a DICOM folder one per
series — each with a confidence. ``examine`` must be cheap (headers only); ``Loadable.load``
does the real work and reports progress. Readers are listed here explicitly, never registered
as an import side effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.guards import collected_warnings
from ctviewer.progress import CancelToken, Progress


@dataclass
class Loadable:
    """Something a reader found at a path and can load: a series, a file, a photo."""

    path: Path
    #: What the user sees when choosing, e.g. "CT ABDOMEN 2.5 mm — 312 slices".
    description: str
    #: Short format name: "dicom", "nifti", "nrrd", "numpy", "photo".
    format: str
    #: How sure the reader is (0..1); the highest wins when nothing else decides.
    confidence: float
    #: Reads the voxels: ``load(progress=None, cancel=None) -> Volume`` (as stored, not reoriented).
    load: Callable[..., Volume]
    n_slices: int | None = None
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


class Reader(Protocol):
    name: str

    def examine(self, path: Path) -> list[Loadable]:
        """Loadables found at ``path`` (empty if this reader cannot read it).

        Raise :class:`InputError` when the path is this reader's format but broken.
        """


def readers() -> list[Reader]:
    # Imported here so that `ctviewer info` on a photo does not pay for pydicom, and so the
    # list is built when asked for, never as an import side effect.
    from ctviewer.io.dicom import DicomReader
    from ctviewer.io.nifti import NiftiReader
    from ctviewer.io.nrrd_io import NrrdReader
    from ctviewer.io.numpy_io import NumpyReader
    from ctviewer.io.photo import PhotoReader
    from ctviewer.io.tiff_stack import TiffStackReader

    return [NiftiReader(), NrrdReader(), NumpyReader(), TiffStackReader(), PhotoReader(), DicomReader()]


def examine(path: str | Path) -> list[Loadable]:
    """Everything any reader can load from ``path``, most confident first."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    found: list[Loadable] = []
    errors: list[InputError] = []
    for reader in readers():
        before = len(found)
        with collected_warnings() as said:
            try:
                found.extend(reader.examine(path))
            except InputError as exc:
                errors.append(exc)
        for item in found[before:]:  # what the library said about the file belongs to what was found in it
            item.warnings.extend(w for w in said if w not in item.warnings)
            item.load = _folding_warnings(item.load)
        if errors and said:
            errors[-1] = with_library_warnings(errors[-1], said)
    # A reader that knows a file better names the format it supersedes there (a TIFF of grey
    # pages is a volume, not a photo whose pages are 1 pixel apart): that one is not offered too.
    superseded = {(item.path, item.meta["supersedes"]) for item in found if item.meta.get("supersedes")}
    found = [item for item in found if (item.path, item.format) not in superseded]
    if found:
        return sorted(found, key=lambda item: (-item.confidence, -(item.n_slices or 0)))
    if errors:
        raise errors[0]
    if path.is_dir():
        raise InputError("folder holds no image ctviewer can read (DICOM, NIfTI, NRRD, NumPy, photo, "
                         "numbered TIFF/PNG slices)", path)
    raise InputError("not a format ctviewer can read (DICOM, NIfTI, NRRD, NumPy .npy/.npz, PNG/JPEG/TIFF)", path)


def with_library_warnings(exc: InputError, said: list[str]) -> InputError:
    """The error with what the library warned folded into its one line (the first thing it said)."""
    extra = [w for w in said if w.split(";")[0] not in exc.reason]
    if not extra:
        return exc
    folded = type(exc).__new__(type(exc))
    InputError.__init__(folded, f"{exc.reason} (the reader also said: {extra[0]})", exc.path)
    return folded


def _folding_warnings(load: Callable[..., Volume]) -> Callable[..., Volume]:
    """``load`` with what libraries warn while it reads put in the Volume's warnings (or in the
    one-line error) instead of on stderr, whoever calls it."""
    def load_quietly(*args, **kwargs) -> Volume:
        with collected_warnings() as said:
            try:
                volume = load(*args, **kwargs)
            except InputError as exc:
                raise with_library_warnings(exc, said) from exc
        volume.warnings.extend(w for w in said if w not in volume.warnings)
        return volume

    return load_quietly


def read_volume(path: str | Path, series: int | str | None = None, progress: Progress | None = None,
                cancel: CancelToken | None = None, canonical: bool = True) -> Volume:
    """Read one volume from ``path``: the chosen series (index or UID) or the best one.

    With ``canonical`` (the default) the axes are reordered for display (see
    :func:`ctviewer.imaging.orientation.to_canonical`); geometry stays exact either way.
    """
    items = examine(path)
    if series is None:
        item = items[0]
    elif isinstance(series, int):
        if not 0 <= series < len(items):
            raise InputError(f"series {series} does not exist; found {len(items)}", path)
        item = items[series]
    else:
        matches = [it for it in items if it.meta.get("series_uid") == series]
        if not matches:
            raise InputError(f"no series with UID {series}", path)
        item = matches[0]
    return load(item, progress=progress, cancel=cancel, canonical=canonical)


def load(item: Loadable, progress: Progress | None = None, cancel: CancelToken | None = None,
         canonical: bool = True) -> Volume:
    """Load one loadable, keep what examining it warned about, reorient for display."""
    from ctviewer.imaging.orientation import to_canonical

    volume = item.load(progress=progress, cancel=cancel)
    for warning in item.warnings:
        if warning not in volume.warnings:
            volume.warnings.append(warning)
    return to_canonical(volume) if canonical else volume

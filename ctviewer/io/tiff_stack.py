"""Micro-CT as it comes from the scanner: a multi-page TIFF of grey pages, or a folder of 2-D slices.

* A TIFF whose first series is grey pages of one size along one axis (ImageJ's ``ZYX``, tifffile's
  ``IYX``/``QYX``) is a volume, z = page. It supersedes the photo reader's reading of the same file,
  which kept pages 1 pixel apart. A single page, a colour image, a hyperstack with channels stay
  photos, exactly as before.
* A folder of TIFF/PNG slices, 8/16-bit or float, one image per file, is a volume with the slices
  ordered by the last number in their names (``slice_2`` before ``slice_10``). Files whose names
  differ only in that number are one stack; a folder with two such groups offers both.

Voxels are read straight into one array of the files' own dtype (uint16 stays uint16), one slice
at a time, reporting progress and checking cancel between slices. The voxel size: see
:mod:`ctviewer.io.tiff_spacing`.

Refused, one line naming the folder and the file: missing slice numbers (the slices either side
would be drawn one step apart, so every distance along z would be wrong), two files with the same
number, slices of another size or type. Files that are not slices are left out with a note.

NaN or infinite voxels in a float volume (reconstructions often mark the outside of the field of
view so) are opened, shown as the lowest real value, and counted in a warning and in
``meta['nonfinite_voxels']``: every window and view needs real numbers, and a measurement (porosity)
can see how many voxels had none and refuse or leave them out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.io import guards
from ctviewer.io.label_files import format_suffix
from ctviewer.io.registry import Loadable
from ctviewer.io.tiff_spacing import scanner_log_spacing, tag_spacing, volume_spacing
from ctviewer.progress import checked_progress

_TIFF = (".tif", ".tiff")
_SLICE_SUFFIXES = _TIFF + (".png",)
#: Pillow modes of grey PNG slices and the dtype they are read as.
_PNG_GREY = {"L": np.uint8, "I;16": np.uint16, "I;16B": np.uint16, "I": np.uint16, "F": np.float32}
_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last run of digits in a name


class TiffStackReader:
    name = "tiff-stack"

    def examine(self, path: Path) -> list[Loadable]:
        path = Path(path).resolve()   # "." names no folder: the sidecar beside it is found by the real name
        if path.is_dir():
            return _examine_folder(path)
        if format_suffix(path) not in _TIFF or not path.is_file():
            return []
        return _examine_multipage(path)


# -- a multi-page TIFF ---------------------------------------------------------------------------
def _examine_multipage(path: Path) -> list[Loadable]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, tuple(int(s) for s in series.shape)
            if not _grey_stack(axes, shape, tif.pages.first):
                return []
            depth, height, width = _zyx(axes, shape)
            dtype = np.dtype(series.dtype)
            _check_same_size(tif, series, path, (height, width))
    except InputError as exc:
        # offered, so that opening it says what is wrong instead of the photo reader showing some pages
        return [Loadable(path, f"{path.name} — {exc.reason}", "tiff-stack", 0.95, _refusing(exc),
                         meta={"supersedes": "photo"})]
    except Exception:  # a TIFF tifffile cannot parse: the photo reader reads it or says why not
        return []
    what = f"{path.name} — {depth} slices of {width}×{height} {dtype}"
    return [Loadable(path, what, "tiff-stack", 0.95, lambda progress=None, cancel=None:
                     _load_multipage(path, progress, cancel), n_slices=depth, meta={"supersedes": "photo"})]


def _refusing(exc: InputError):
    def load(progress=None, cancel=None) -> Volume:
        raise exc

    return load


def _grey_stack(axes: str, shape: tuple[int, ...], page) -> bool:
    """One axis of pages over grey 2-D images (no samples, no channels, not a palette)."""
    if not axes.endswith("YX") or "S" in axes or page.samplesperpixel != 1:
        return False
    # min-is-black only: a min-is-white page stores dark as high values, and "pores are the low grey
    # values" would pick the solid; such files stay with the photo reader (as before stacks were read)
    if int(page.photometric) != 1:
        return False
    if np.dtype(page.dtype).kind not in "uif":
        return False
    pages = [(a, n) for a, n in zip(axes[:-2], shape[:-2]) if n > 1]
    return len(pages) == 1 and pages[0][0] != "C"


def _zyx(axes: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    return int(np.prod(shape[:-2])), shape[-2], shape[-1]


def _check_same_size(tif, series, path: Path, size: tuple[int, int]) -> None:
    """Pages of another size make another series in tifffile; a stack with them is broken."""
    for other in tif.series[1:]:
        page = other.pages[0] if len(other.pages) else None
        if page is None or getattr(page, "is_reduced", False) or len(other.shape) < 2:
            continue  # thumbnails and pyramid levels are not slices
        if tuple(other.shape[-2:]) != size:
            h, w = (int(s) for s in other.shape[-2:])
            raise InputError(f"pages of mixed sizes: page {page.index + 1} is {w}×{h}, the other "
                             f"{len(series.pages)} pages are {size[1]}×{size[0]}; a volume's slices "
                             "must all be one size", path)


def _load_multipage(path: Path, progress=None, cancel=None) -> Volume:
    import tifffile

    step = checked_progress(progress, cancel)
    warnings: list[str] = []
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            depth, height, width = _zyx(series.axes, tuple(int(s) for s in series.shape))
            array = _allocate((depth, height, width), series.dtype, path)
            pages = [p for p in series.pages if p is not None]
            nonfinite = _Nonfinite(array)
            if len(pages) == depth:
                for k, page in enumerate(pages):
                    step(k / depth, f"Reading {path.name}: slice {k + 1} of {depth}")
                    page.asarray(out=array[k])
                    nonfinite.count(k)
            else:  # ImageJ's files over 4 GB: one page, the slices after it without pages of their own
                step(0.0, f"Reading {path.name}")
                series.asarray(out=array)
                for k in range(depth):
                    nonfinite.count(k)
            z_y_x = tag_spacing(tif.pages.first, tif.imagej_metadata)
    except (InputError, Cancelled):
        raise
    except Exception as exc:  # tifffile raises many kinds on a broken file: all mean 'cannot read'
        raise InputError(f"cannot read the TIFF stack: {_why(exc)}", path) from exc
    step(1.0, f"Read {path.name}")
    facts = nonfinite.replace(path, warnings)
    return _volume(array, path, path.name, z_y_x, warnings, facts=facts)


# -- a folder of slices ----------------------------------------------------------------------------
@dataclass
class _Slice:
    path: Path
    number: int
    width: int = 0
    height: int = 0
    dtype: np.dtype | None = None


def _examine_folder(folder: Path) -> list[Loadable]:
    groups, left_out = _group_slices(folder)
    found = []
    for slices in groups.values():
        if len(slices) < 2:
            left_out.extend(s.path.name for s in slices)
            continue
        slices.sort(key=lambda s: s.number)
        if not _read_headers(slices, folder):
            left_out.extend(s.path.name for s in slices)  # colour photos: not slices of a volume
            continue
        _check_numbers(slices, folder)
        found.append(slices)
    notes = [_left_out_note(left_out)] if left_out and found else []
    return [_folder_loadable(folder, slices, notes) for slices in found]


def is_slice_folder(folder: Path) -> bool:
    """Cheap (file names and one header): does ``folder`` hold numbered grey slices of a volume?
    For the app to tell a scanner's folder from a folder of photos before reading it."""
    groups, _ = _group_slices(Path(folder))
    return any(len(group) > 1 and _slice_header(min(group, key=lambda s: s.number).path) is not None
               for group in groups.values())


def _group_slices(folder: Path) -> tuple[dict[tuple, list[_Slice]], list[str]]:
    """Slice files by their name with the number taken out, and the names of the files left out."""
    groups: dict[tuple, list[_Slice]] = {}
    left_out = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() == ".log":
            continue  # a scanner's reconstruction log: read for the voxel size, not a file left out
        match = _NUMBER.search(path.stem)
        if path.suffix.lower() not in _SLICE_SUFFIXES or match is None:
            left_out.append(path.name)
            continue
        key = (path.stem[:match.start()], path.stem[match.end():], path.suffix.lower())
        groups.setdefault(key, []).append(_Slice(path, int(match.group(1))))
    return groups, left_out


def _read_headers(slices: list[_Slice], folder: Path) -> bool:
    """Every slice's size and dtype from its header; False if the first is not a grey image.
    Slices unlike the most of them are named, with what they are."""
    for item in slices:
        header = _slice_header(item.path)
        if header is None:
            if item is slices[0]:
                return False
            raise InputError(f"{item.path.name} is not a grey image like {slices[0].path.name} "
                             "(colour, several pages, or unreadable)", folder)
        item.width, item.height, item.dtype = header
    kinds = [(s.width, s.height, s.dtype) for s in slices]
    usual = max(set(kinds), key=kinds.count)
    odd = [s for s, kind in zip(slices, kinds) if kind != usual]
    if odd:
        what = "sizes" if any((s.width, s.height) != usual[:2] for s in odd) else "types"
        named = ", ".join(f"{s.path.name} is {s.width}×{s.height} {s.dtype}" for s in odd[:3])
        more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
        raise InputError(f"slices of mixed {what}: {named}{more}; the other {len(slices) - len(odd)} are "
                         f"{usual[0]}×{usual[1]} {usual[2]}", folder)
    return True


def _slice_header(path: Path) -> tuple[int, int, np.dtype] | None:
    """(width, height, dtype) of a one-page grey image, None for anything else."""
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                if len(tif.pages) != 1 or page.samplesperpixel != 1 or int(page.photometric) != 1:
                    return None
                dtype = np.dtype(page.dtype)
                return (int(page.imagewidth), int(page.imagelength), dtype) if dtype.kind in "uif" else None
        from PIL import Image

        with Image.open(path) as im:
            dtype = _PNG_GREY.get(im.mode)
            return (im.size[0], im.size[1], np.dtype(dtype)) if dtype else None
    except Exception:  # Pillow and tifffile raise many kinds on a broken file: it is not a slice
        return None


def _check_numbers(slices: list[_Slice], folder: Path) -> None:
    for a, b in zip(slices, slices[1:]):
        if a.number == b.number:
            raise InputError(f"two slices numbered {a.number}: {a.path.name} and {b.path.name}", folder)
    # gaps from neighbours, never a set of every number: names may hold dates or scan ids
    gaps = [(a.number + 1, b.number - 1) for a, b in zip(slices, slices[1:]) if b.number - a.number > 1]
    if gaps:
        raise InputError(f"slice numbers missing between {slices[0].path.name} and {slices[-1].path.name}: "
                         f"{_gap_list(gaps)}; refused, since the slices either side of a gap would be "
                         "put one step apart and every length along z would be wrong", folder)


def _gap_list(gaps: list[tuple[int, int]]) -> str:
    """'4, 7–8 (3 slices)': the first ten gaps, how many more, and the count of missing slices."""
    pieces = [f"{lo}" if lo == hi else f"{lo}–{hi}" for lo, hi in gaps]
    more = f" and {len(pieces) - 10} more gaps" if len(pieces) > 10 else ""
    missing = sum(hi - lo + 1 for lo, hi in gaps)
    return ", ".join(pieces[:10]) + more + f" ({missing} slice{'s' if missing > 1 else ''})"


def _left_out_note(names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{len(names)} file(s) in the folder are not slices of this stack and were left out: {shown}"


def _folder_loadable(folder: Path, slices: list[_Slice], notes: list[str]) -> Loadable:
    first, last = slices[0], slices[-1]
    what = (f"{folder.name} — {len(slices)} slices of {first.width}×{first.height} {first.dtype} "
            f"({first.path.name} … {last.path.name})")
    return Loadable(folder, what, "tiff-stack", 0.9, lambda progress=None, cancel=None:
                    _load_folder(folder, slices, progress, cancel), n_slices=len(slices),
                    warnings=list(notes), meta={"first_slice": first.path.name})


def _load_folder(folder: Path, slices: list[_Slice], progress=None, cancel=None) -> Volume:
    step = checked_progress(progress, cancel)
    first = slices[0]
    array = _allocate((len(slices), first.height, first.width), first.dtype, folder)
    nonfinite = _Nonfinite(array)
    for k, item in enumerate(slices):
        step(k / len(slices), f"Reading {folder.name}: slice {k + 1} of {len(slices)}")
        _read_slice(item.path, array[k], folder)
        nonfinite.count(k)
    step(1.0, f"Read {folder.name}")
    warnings: list[str] = []
    facts = nonfinite.replace(folder, warnings)
    said, said_by = _first_slice_spacing(first.path), "the TIFF tags"
    logged = scanner_log_spacing(folder) if said[2] is None else None
    if logged:
        said, said_by = (logged[0],) * 3, f"the scanner's log {logged[1]}"
    return _volume(array, folder, folder.name, said, warnings, said_by, facts)


def _read_slice(path: Path, out: np.ndarray, folder: Path) -> None:
    """One slice into ``out`` (a view of the volume): no array of its own for a TIFF."""
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                if (page.imagelength, page.imagewidth) != out.shape or np.dtype(page.dtype) != out.dtype:
                    raise InputError(f"{path.name} changed since the folder was read: it is now "
                                     f"{page.imagewidth}×{page.imagelength} {page.dtype}", folder)
                page.asarray(out=out)
            return
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            pixels = np.asarray(im)
        if pixels.shape != out.shape:
            raise InputError(f"{path.name} changed since the folder was read: it is now "
                             f"{pixels.shape[1]}×{pixels.shape[0]}", folder)
        out[...] = pixels
    except InputError:
        raise
    except Exception as exc:  # tifffile and Pillow raise many kinds on a broken file
        raise InputError(f"cannot read slice {path.name}: {_why(exc)}", folder) from exc


def _first_slice_spacing(path: Path):
    if path.suffix.lower() not in _TIFF:
        return None, None, None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return tag_spacing(tif.pages.first, tif.imagej_metadata)
    except Exception:  # tags that cannot be read say nothing about the size
        return None, None, None


# -- shared ----------------------------------------------------------------------------------------
def _allocate(shape: tuple[int, int, int], dtype, path: Path) -> np.ndarray:
    dtype = np.dtype(dtype).newbyteorder("=")
    guards.check_memory(int(np.prod(shape)) * dtype.itemsize, path, "the volume")
    return np.empty(shape, dtype)


class _Nonfinite:
    """NaN and infinite voxels of a float volume, counted slice by slice as it is read (no mask of
    the whole volume), then replaced by the lowest real value."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.float = array.dtype.kind == "f"
        self.per_slice: dict[int, int] = {}
        self.lowest = np.inf

    def count(self, k: int) -> None:
        if not self.float:
            return
        plane = self.array[k]
        bad = ~np.isfinite(plane)
        n = int(bad.sum())
        if n:
            self.per_slice[k] = n
            if n < plane.size:
                self.lowest = min(self.lowest, float(plane[~bad].min()))
        else:
            self.lowest = min(self.lowest, float(plane.min()))

    def replace(self, path: Path, warnings: list[str]) -> dict:
        """Replace them; the facts for the volume's meta, so that a measurement can refuse or leave
        them out (``nonfinite_voxels``, ``nonfinite_shown_as``)."""
        total = sum(self.per_slice.values())
        if not total:
            return {}
        if not np.isfinite(self.lowest):
            raise InputError("every voxel is NaN or infinite: there is no image to show", path)
        for k in self.per_slice:
            plane = self.array[k]
            plane[~np.isfinite(plane)] = self.lowest
        share = 100 * total / self.array.size
        warnings.append(f"{total:,} voxels ({share:.3g} %) in {len(self.per_slice)} slices are NaN or infinite "
                        f"(no value; often the outside of the reconstructed field): shown as the lowest "
                        f"value, {self.lowest:g}, so histogram thresholds count them in the darkest phase")
        return {"nonfinite_voxels": total, "nonfinite_shown_as": self.lowest}


def _volume(array: np.ndarray, source: Path, name: str, said, warnings: list[str],
            said_by: str = "the TIFF tags", facts: dict | None = None) -> Volume:
    kwargs, spacing_from = volume_spacing(source, said, warnings, said_by)
    kwargs.setdefault("modality", "")
    meta = {"format": "tiff-stack", "spacing_unknown": spacing_from == "unknown", "spacing_from": spacing_from,
            **(facts or {})}
    try:
        return Volume(array, name=name, source=str(source), warnings=warnings, meta=meta, **kwargs)
    except ValueError as exc:
        raise InputError(str(exc), source) from exc


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]

"""Soil cubes: a box cut from a CT stack and put on the seed's 0..4096 density scale.

The seed (``gen_cube.py``) cut slices 100..499 and rows / columns 150..349 of its DICOM stack,
clipped the values at -1000, shifted them by +1000 and capped them at 4096. That box and scale are
the defaults here (:class:`CubeSpec`); unlike the seed, the values are Hounsfield units first (the
DICOM reader applies RescaleSlope / RescaleIntercept) and the stack is read in position order.

Slice order: slice index 0 is the first slice of the volume as ctviewer reads and shows it. The
reader orders DICOM slices by their position along the slice normal (never by file name, as the
seed did), lowest first, and turns the volume to the display orientation, which leaves an axial
stack in that order. So ``--slices 100:500`` and a slice range drawn on the viewer's slices mean
the same slices.

A DICOM stack that is not one regular stack is refused rather than cut, since the reader would
otherwise make it regular in ways a density analysis must not see: a missing slice (filled with a
blank one), uneven steps (interpolated), two slices at one place (one dropped), or images of mixed
sizes (some left out). Only the slices inside the box are read from the files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, step_progress

#: What a cube can be saved as (.npy gets NAME.json beside it with spacing, origin and direction).
CUBE_SUFFIXES = (".npy", ".nii", ".nii.gz", ".nrrd")


@dataclass
class CubeSpec:
    """The box ([start, stop) per axis, in the volume's indices; stop None = to the end) and the scale."""

    slices: tuple[int, int | None] = (100, 500)
    rows: tuple[int, int | None] = (150, 350)
    cols: tuple[int, int | None] = (150, 350)
    clip_low: float = -1000.0
    shift: float = 1000.0
    cap: float = 4096.0
    #: False keeps the values as read (HU, the source's dtype): no clip, shift or cap.
    clip: bool = True

    def box_text(self) -> str:
        def text(pair):
            return f"{pair[0]}:{'' if pair[1] is None else pair[1]}"
        return f"slices {text(self.slices)}, rows {text(self.rows)}, cols {text(self.cols)}"


def build_cube(source: Volume | str | Path, spec: CubeSpec | None = None,
               progress: Progress | None = None, cancel: CancelToken | None = None) -> Volume:
    """The cube ``spec`` asks for, from a volume or a path (a DICOM folder or file, NIfTI, NRRD, .npy).

    The result keeps the crop's spacing, direction and origin (the LPS position of its first voxel);
    on the density scale it is int16 with values ``min(max(HU, clip_low) + shift, cap)``.
    """
    spec = spec or CubeSpec()
    progress = progress or (lambda fraction, message="": None)
    where = Path(source) if not isinstance(source, Volume) else (source.source or source.name or None)
    if isinstance(source, Volume):
        volume, first_slice = source, None
        _check_volume_stack(volume, where)
    else:
        volume, first_slice = _read_box(Path(source), spec, lambda f, m="": progress(0.8 * f, m), cancel)
    if volume.array.ndim != 3:
        raise InputError("a cube needs a grey-value volume; this is a colour image", where)
    if first_slice is None:  # the whole stack is here: cut the slices too
        z, first_slice = _axis_range(spec.slices, volume.shape[0]), spec.slices[0]
        _check_box(spec, volume.shape, where)
    else:                    # only the box's slices were read
        z = slice(0, volume.shape[0])
    y, x = _axis_range(spec.rows, volume.shape[1]), _axis_range(spec.cols, volume.shape[2])
    crop = volume.array[z, y, x]
    values = _on_density_scale(crop, spec, lambda f, m="": progress(0.8 + 0.2 * f, m), cancel)
    origin = volume.index_to_lps((z.start, y.start, x.start))
    numbers = volume.instance_numbers[z] if volume.instance_numbers else None
    meta = dict(volume.meta, cube={"slices": [first_slice, first_slice + crop.shape[0]],
                                   "rows": [y.start, y.stop], "cols": [x.start, x.stop], "clipped": spec.clip})
    meta.pop("dicom_files", None)  # the cube is no longer those files' voxels
    cube = volume.with_array(values, origin=tuple(origin), instance_numbers=numbers, source=volume.source,
                             name=f"{volume.name or 'stack'} cube",
                             window=volume.window if not spec.clip else None)
    cube.meta = meta
    progress(1.0, "cube built")
    return cube


def write_cube(volume: Volume, path: str | Path) -> Path:
    """Save a cube atomically: ``.npy`` (+ ``NAME.json`` with spacing, origin, direction), NIfTI or NRRD."""
    from ctviewer.io.writers import write_volume

    return write_volume(volume, check_cube_path(path))


def check_cube_path(path: str | Path) -> Path:
    """InputError unless a cube can be saved at ``path`` (checked before the work, not after it)."""
    from ctviewer.io.label_files import format_suffix

    path = Path(path)
    if format_suffix(path) not in CUBE_SUFFIXES:
        raise InputError(f"cannot save a cube as '{format_suffix(path) or path.name}': use "
                         f"{', '.join(CUBE_SUFFIXES)}", path)
    if not path.parent.is_dir():
        raise InputError("folder does not exist", path.parent)
    return path


def describe_cube(cube: Volume) -> str:
    """One line: size, spacing, value range and dtype."""
    z, y, x = cube.shape
    lo, hi = cube.value_range()
    sz, sy, sx = cube.spacing
    return (f"{z} x {y} x {x} voxels (slices x rows x cols), spacing {sz:.4g} x {sy:.4g} x {sx:.4g} mm, "
            f"values {lo:g} .. {hi:g} ({cube.array.dtype})")


# -- the box and the scale ------------------------------------------------------------------------

def _axis_range(pair, size: int) -> slice:
    return slice(pair[0], size if pair[1] is None else pair[1])


def _check_box(spec: CubeSpec, shape, where) -> None:
    """The box must be non-empty and lie inside the stack; say the stack's size where it does not."""
    for name, pair, size in zip(("slices", "rows", "cols"), (spec.slices, spec.rows, spec.cols), shape):
        part = _axis_range(pair, size)
        if part.start < 0 or part.stop <= part.start:
            raise InputError(f"{name} {part.start}:{part.stop} is empty; give START:STOP with "
                             f"0 <= START < STOP", where)
    if any(_axis_range(pair, size).stop > size
           for pair, size in zip((spec.slices, spec.rows, spec.cols), shape)):
        z, y, x = shape
        raise InputError(f"the stack is {z} slices of {y} x {x} (rows x cols), smaller than the box asked "
                         f"for ({spec.box_text()}); choose a box inside it (--slices, --rows, --cols)", where)


def _on_density_scale(crop: np.ndarray, spec: CubeSpec, progress, cancel) -> np.ndarray:
    """The seed's scale, slice by slice in float32 (no whole-volume float copy); a copy as read without clip."""
    if not spec.clip:
        return np.array(crop)  # a copy: a view would keep the whole stack in memory
    if spec.cap <= spec.clip_low + spec.shift:
        raise InputError(f"the cap {spec.cap:g} must lie above clip_low + shift ({spec.clip_low + spec.shift:g})")
    fits = np.iinfo(np.int16).min <= spec.clip_low + spec.shift and spec.cap <= np.iinfo(np.int16).max
    out = np.empty(crop.shape, np.int16 if fits else np.float32)
    tick = step_progress(progress, cancel, len(crop), "clipping to the density scale")
    for k in range(len(crop)):
        tick(k)
        plane = np.clip(crop[k].astype(np.float32), spec.clip_low, spec.cap - spec.shift)
        plane += np.float32(spec.shift)
        out[k] = np.rint(plane) if fits else plane
    return out


# -- reading a stack ------------------------------------------------------------------------------

def _read_box(path: Path, spec: CubeSpec, progress, cancel) -> tuple[Volume, int | None]:
    """The volume at ``path`` and the index of its first slice: for a regular DICOM stack only the
    box's slices are read (first slice = the box's start); other formats are read whole (None)."""
    from ctviewer.imaging.orientation import canonical_permutation, to_canonical
    from ctviewer.io.dicom_geometry import plan_layout
    from ctviewer.io.dicom_series import load_series
    from ctviewer.io.registry import read_volume

    if not path.exists():
        raise InputError("no such file or folder", path)
    frames, warnings = _stack_frames(path)
    if not frames:  # NIfTI, NRRD, NumPy: already one regular grid
        return read_volume(path, progress=progress, cancel=cancel), None
    if any(f.position is None for f in frames):  # cannot be checked or cut before reading: the reader warns
        volume = load_series(frames, _name(path), path, warnings, {}, progress, cancel)
        return to_canonical(volume), None
    layout = plan_layout(np.array([f.position for f in frames]), frames[0].orientation, 1.0)
    stack = [frames[i] for i in layout.slots]
    perm, flips = canonical_permutation(layout.direction)
    shape = tuple((len(stack), frames[0].rows, frames[0].columns)[p] for p in perm)
    _check_box(spec, shape, path)
    z = _axis_range(spec.slices, shape[0])
    if perm[0] != 0 or z.stop - z.start < 2:  # the slice axis is not the stack's: read it whole
        volume = load_series(stack, _name(path), path, warnings, {}, progress, cancel)
        return to_canonical(volume), None
    chosen = stack[len(stack) - z.stop:len(stack) - z.start] if flips[0] else stack[z]
    volume = load_series(chosen, _name(path), path, warnings, {}, progress, cancel)
    return to_canonical(volume), z.start


def _name(path: Path) -> str:
    return path.name or str(path)


def _stack_frames(path: Path) -> tuple[list, list[str]]:
    """The frames of the folder's largest image series, checked to be one regular stack."""
    from ctviewer.io.dicom_series import consistent_frames, frames_of

    series: dict[str, list] = {}
    for header in _image_headers(path):
        uid = str(header.dataset.get("SeriesInstanceUID", "") or "") if header.frame_count == 1 else ""
        series.setdefault(uid or f"file:{header.path}", []).append(header)
    if not series:
        return [], []
    chosen = max(series.values(), key=lambda headers: sum(h.frame_count for h in headers))
    warnings = []
    if len(series) > 1:
        warnings.append(f"the folder holds {len(series)} image series; used the largest "
                        f"({sum(h.frame_count for h in chosen)} slices)")
    frames = [frame for header in chosen for frame in frames_of(header)]
    kept, mixed = consistent_frames(frames, path)
    if mixed:
        sizes = Counter(f"{f.rows}x{f.columns}" for f in frames)
        kinds = ", ".join(f"{n} slices of {size}" for size, n in sizes.most_common())
        raise InputError(f"the stack mixes image sizes or orientations ({kinds}): a cube from part of it "
                         "would be wrong; move the odd files out of the folder", path)
    check_regular_stack(kept, path)
    return kept, warnings


def _image_headers(path: Path):
    from ctviewer.io.dicom import files_under
    from ctviewer.io.dicom_headers import read_header
    from ctviewer.io.dicom_seg import SEG_SOP_CLASSES

    files = [path] if path.is_file() else files_under(path)
    for file in files:
        header = read_header(file)
        if header is not None and not header.is_dicomdir and header.has_image \
                and header.sop_class not in SEG_SOP_CLASSES:
            yield header


def check_regular_stack(frames: list, where) -> None:
    """InputError unless the frames' positions make one stack with equal steps (the reader's rule:
    :func:`ctviewer.io.dicom_geometry.plan_layout`), naming the first two slices that break it."""
    from ctviewer.io.dicom_geometry import SAME_PLACE_MM, in_plane_axes, plan_layout

    if len(frames) < 2 or any(f.position is None for f in frames):
        return
    positions = np.array([f.position for f in frames], dtype=float)
    layout = plan_layout(positions, frames[0].orientation, 1.0)
    if None not in layout.slots and layout.resample_to is None and len(layout.slots) == len(frames):
        return
    normal = in_plane_axes(frames[0].orientation if frames[0].orientation is not None else (1, 0, 0, 0, 1, 0))[2]
    order = np.argsort(positions @ normal, kind="stable")
    steps = np.linalg.norm(np.diff(positions[order], axis=0), axis=1)
    usual = float(np.median(steps))
    if steps.min() <= SAME_PLACE_MM:
        k = int(np.argmin(steps))
        problem = "at the same position (two acquisitions in one series?)"
    else:
        k = int(np.argmax(np.abs(steps - usual)))
        missing = int(round(steps[k] / usual)) - 1
        what = ("the spacing is uneven" if abs(steps[k] - (missing + 1) * usual) > 0.01 * usual or missing < 1
                else "a slice is missing" if missing == 1 else f"{missing} slices are missing")
        problem = f"{steps[k]:.3g} mm apart where the others are {usual:.3g} mm: {what}"
    a, b = frames[order[k]].header.path.name, frames[order[k + 1]].header.path.name
    raise InputError(f"slices {k} and {k + 1} ({a}, {b}) are {problem}; refusing to build a cube "
                     "from a stack that is not regular", where)


def _check_volume_stack(volume: Volume, where) -> None:
    """A volume read from DICOM (the viewer's study): check its files' stack as for a folder."""
    from ctviewer.io.dicom_headers import read_header
    from ctviewer.io.dicom_series import frames_of

    files = [Path(p) for p in volume.meta.get("dicom_files") or []]
    if len(files) < 2 or not all(p.is_file() for p in files):
        return
    frames = [frame for p in files if (h := read_header(p)) is not None for frame in frames_of(h)]
    check_regular_stack(frames, where)

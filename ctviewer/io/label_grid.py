"""Labels written by other tools, put on the grid of the image they were drawn on.

Other tools store less than the whole grid: 3D Slicer crops a ``.seg.nrrd`` to the extent of its
segments (its space origin then places the first stored voxel, so no private field is needed), and
dcmqi or highdicom leave the empty frames out of a DICOM-SEG (each frame carries its own position).
Both keep exact geometry, so every stored voxel, or every pixel of a frame, is put on the image
voxel at the same place in the patient; the rest of the image gets no label.

Nothing is interpolated. Labels whose voxels fall between the image's voxels (another spacing, a
shifted grid) or outside the image are refused with one line that says so: label ids cannot be
averaged, and labels cut off at the border would be lost without a word.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctviewer.data.labels import LabelMap
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.imaging.orientation import FILE_GEOMETRY, STORED_GRID, STORED_ORIENTATION

#: A label voxel (or frame pixel) lies on an image voxel when their centres are this close (in voxels).
ON_VOXEL = 0.05
#: Keys of ``Volume.meta`` that describe the file's own grid: wrong once the labels are placed.
_GRID_RECORDS = (STORED_GRID, STORED_ORIENTATION, FILE_GEOMETRY)


def read_labels_over(image: Volume, path: str | Path, map_colours: bool = False) -> LabelMap:
    """The label file ``path`` as labels of ``image`` (as opened, in display orientation): on its
    grid voxel for voxel. A DICOM-SEG is placed frame by frame; every other format is read whole
    and placed (or padded) by its geometry. A photo's labels must have the photo's size.
    """
    from ctviewer.imaging.orientation import to_canonical
    from ctviewer.io.dicom_seg import is_dicom_seg, read_dicom_seg_over
    from ctviewer.io.label_files import read_label_map

    path = Path(path)
    if not image.is_photo and path.is_file() and is_dicom_seg(path):
        labels = read_dicom_seg_over(path, image)
        labels.add_missing_labels(path.name)
        return labels
    labels = read_label_map(path, map_colours=map_colours)
    if image.is_photo:
        if labels.volume.shape != image.shape:
            raise InputError(f"label map is {labels.volume.shape[::-1]} pixels (x, y, z) but the photo is "
                             f"{image.shape[::-1]}; refusing to resample silently", path)
        return labels
    labels.volume = onto_image_grid(to_canonical(labels.volume), image, path)
    return labels


def onto_image_grid(labels: Volume, image: Volume, path: str | Path) -> Volume:
    """``labels`` on ``image``'s grid: as they are where the grids agree, padded with 0 where the
    labels cover a part of the image (a cropped seg.nrrd). InputError where they cannot be placed."""
    path = Path(path)
    if labels.shape == image.shape and image.same_grid(labels):
        return labels
    mapping = _index_mapping(labels, image)
    if mapping is None:
        raise InputError("label map has another position or spacing than the image (label spacing "
                         f"{_mm(labels.spacing)} mm, image {_mm(image.spacing)} mm): its voxels are not "
                         "the image's voxels; refusing to resample silently", path)
    axes, signs, start = mapping
    first = np.array([start[b] for b in axes])
    last = first + np.array(signs) * (np.array(labels.shape) - 1)
    low, high = np.minimum(first, last), np.maximum(first, last)
    image_shape = np.array([image.shape[b] for b in axes])
    if np.any(low < 0) or np.any(high >= image_shape):
        raise InputError(f"label map is {labels.shape[::-1]} voxels (x, y, z) and reaches outside the image "
                         f"({image.shape[::-1]}); refusing to resample or crop it silently", path)
    # label axis a runs along image axis axes[a]: reorder, reverse where it runs backwards, place
    order = [axes.index(b) for b in range(3)]
    array = np.transpose(labels.array, order)
    for b in range(3):
        if signs[order[b]] < 0:
            array = np.flip(array, axis=b)
    out = np.zeros(image.shape, dtype=labels.array.dtype)
    out[tuple(slice(int(low[order[b]]), int(high[order[b]]) + 1) for b in range(3))] = array
    return on_grid_of(image, out, labels)


def on_grid_of(image: Volume, array: np.ndarray, labels: Volume) -> Volume:
    """A label volume holding ``array`` on ``image``'s grid, keeping what ``labels`` says of itself
    (name, source, label table) but not the geometry records of its own file."""
    meta = {k: v for k, v in labels.meta.items() if k not in _GRID_RECORDS}
    return Volume(array, spacing=image.spacing, origin=image.origin, direction=image.direction,
                  name=labels.name, source=labels.source, warnings=list(labels.warnings), meta=meta)


def _index_mapping(labels: Volume, image: Volume):
    """(axes, signs, start) with label index ``k`` along axis ``a`` at image index
    ``start[axes[a]] + signs[a] * k``; None where label voxels are not image voxels."""
    to_image = np.linalg.solve(image.affine, labels.affine)  # label index -> image index
    steps, offset = to_image[:3, :3], to_image[:3, 3]
    axes: list[int | None] = [None, None, None]
    signs = [1, 1, 1]
    for a in range(3):
        if labels.shape[a] == 1:
            continue  # one voxel thick: its step never matters
        b = int(np.argmax(np.abs(steps[:, a])))
        unit = np.zeros(3)
        unit[b] = signs[a] = 1 if steps[b, a] > 0 else -1
        if np.abs(steps[:, a] - unit).max() * (labels.shape[a] - 1) > ON_VOXEL:
            return None
        axes[a] = b
    free = [b for b in range(3) if b not in axes]
    axes = [b if b is not None else free.pop(0) for b in axes]
    start = np.rint(offset)
    if len(set(axes)) < 3 or np.abs(offset - start).max() > ON_VOXEL:
        return None
    return axes, signs, start.astype(int)


def plane_on_grid(image: Volume, position, orientation, pixel_spacing, rows: int, columns: int):
    """Where a 2-D frame (DICOM position, orientation, pixel spacing) lies on ``image``'s grid:
    ``(axis, slice index, row indices, column indices, row axis, column axis)`` with row / column
    indices possibly outside the image; None where its pixels are not image voxels."""
    from ctviewer.io.dicom_geometry import in_plane_axes

    if position is None or orientation is None:
        return None
    row_dir, col_dir, _ = in_plane_axes(orientation)
    row_spacing, column_spacing = pixel_spacing or (1.0, 1.0)
    start = image.lps_to_index(position)
    to_index = image.direction * np.asarray(image.spacing)
    found = []
    for step, count in ((np.linalg.solve(to_index, col_dir * row_spacing), rows),
                        (np.linalg.solve(to_index, row_dir * column_spacing), columns)):
        axis = int(np.argmax(np.abs(step)))
        unit = np.zeros(3)
        unit[axis] = 1 if step[axis] > 0 else -1
        if np.abs(step - unit).max() * max(count - 1, 1) > ON_VOXEL:
            return None
        found.append((axis, int(unit[axis])))
    (row_axis, row_sign), (column_axis, column_sign) = found
    if row_axis == column_axis:
        return None
    corner = np.rint(start)
    if np.abs(start - corner).max() > ON_VOXEL:
        return None
    normal = ({0, 1, 2} - {row_axis, column_axis}).pop()
    return (normal, int(corner[normal]),
            int(corner[row_axis]) + row_sign * np.arange(rows),
            int(corner[column_axis]) + column_sign * np.arange(columns), row_axis, column_axis)


def _mm(values) -> tuple:
    return tuple(round(float(v), 3) for v in values[::-1])

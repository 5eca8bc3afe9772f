"""What the 3D panel shows, in plain VTK (no Qt): volume rendering, an isosurface, label surfaces.

Two halves with different threading rules:

* :func:`isosurface` and :func:`label_surfaces` are pure computation on ``vtkImageData`` built
  from our arrays. They touch no render window, so the GUI runs them in a worker thread
  (``app.workers``) and hands the finished ``vtkPolyData`` to :class:`Scene3D` on the GUI thread.
* :class:`Scene3D` owns a ``vtkRenderer`` and its props. Only the thread that owns the render
  window (the GUI thread, or the CLI's main thread) may call it.

World coordinates are LPS millimetres: :func:`to_image_data` gives VTK the volume's origin,
spacing and direction, so every filter and mapper places voxels where the patient is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction, vtkPlane, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D
from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkColorTransferFunction,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkVolume,
    vtkVolumeProperty,
    vtkWindowToImageFilter,
)
from vtkmodules.vtkRenderingVolume import vtkVolumeMapper

# Importing these registers the OpenGL implementations behind the abstract VTK classes above.
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  isort: skip
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  isort: skip
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper  # isort: skip

from ctviewer.data.labels import LabelMap, LabelTable, default_colour
from ctviewer.data.volume import Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken, Progress, no_progress

BACKGROUND = (0.10, 0.11, 0.13)
MODES = ("volume", "isosurface", "labels")
#: While a heatmap cloud is shown, surfaces are drawn at this share of their own opacity. A ray-cast
#: cloud is composited against the depth of opaque geometry, so an opaque surface hides every part of
#: the cloud inside or behind it (all of it, for objects that fill a cube); faded surfaces keep their
#: shapes and colours readable and let the cloud show through, without changing the cloud's own depth.
CLOUD_SURFACE_FADE = 0.3


# -- numpy -> VTK ---------------------------------------------------------------------------------
def scalar_array(volume: Volume) -> np.ndarray:
    """The volume's voxels as one C-contiguous scalar array [z, y, x] that VTK can share.

    A photo's RGB is reduced to its grey level: the 3D panel draws intensities, not colours.
    """
    arr = volume.array
    if volume.is_rgb:
        arr = arr[..., :3].mean(axis=-1).astype(np.uint8)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    return np.ascontiguousarray(arr)


def to_image_data(volume: Volume, array: np.ndarray | None = None,
                  index_offset=(0, 0, 0)) -> vtkImageData:
    """A ``vtkImageData`` over ``array`` (default: the volume's voxels) in LPS mm, sharing memory.

    VTK's point order is x fastest, which is exactly our C-order [z, y, x] flattened, so no copy
    is needed; VTK's dimensions, spacing and direction columns are ours reversed (x, y, z).
    ``index_offset`` (k, j, i) places a crop of the volume: its [0, 0, 0] is that voxel.
    """
    arr = scalar_array(volume) if array is None else np.ascontiguousarray(array)
    if arr.ndim != 3:
        raise InputError(f"3D rendering needs a [z, y, x] array, got shape {arr.shape}", volume.source or None)
    image = vtkImageData()
    image.SetDimensions(*arr.shape[::-1])
    image.SetSpacing(*volume.spacing[::-1])
    image.SetOrigin(*volume.index_to_lps(np.asarray(index_offset, dtype=float)))
    image.SetDirectionMatrix(*volume.direction[:, ::-1].ravel())
    # deep=False shares the buffer; numpy_support keeps a reference to it on the VTK array.
    scalars = numpy_to_vtk(arr.reshape(-1), deep=False)
    scalars.SetName("values")
    image.GetPointData().SetScalars(scalars)
    return image


#: Above this many voxels the volume rendering draws a strided copy: a CPU renderer (llvmpipe,
#: as under Xvfb) needs seconds per frame for a whole 512x512x300 scan, and on screen the
#: panel is a few hundred pixels wide anyway.
MAX_RENDER_VOXELS = 16_000_000


def rendering_image(volume: Volume, max_voxels: int = MAX_RENDER_VOXELS) -> tuple[vtkImageData, int]:
    """The ``vtkImageData`` volume rendering draws, and the stride used (1 = full resolution).

    Pure computation (a contiguous, possibly strided copy): meant to run in a worker thread.
    """
    vol = right_handed(volume)
    stride = render_stride(vol.shape, max_voxels)
    arr = scalar_array(vol)
    if stride > 1:
        arr = np.ascontiguousarray(arr[::stride, ::stride, ::stride])
        vol = vol.with_array(arr, spacing=tuple(s * stride for s in vol.spacing))
    return to_image_data(vol, arr), stride


def render_stride(shape, max_voxels: int) -> int:
    """The smallest step along every axis that keeps a strided copy under ``max_voxels``."""
    stride = 1
    while np.prod([max(1, n // stride) for n in shape]) > max_voxels:
        stride += 1
    return stride


def right_handed(volume: Volume) -> Volume:
    """The same voxels in a right-handed (det +1) VTK frame, flipping columns if needed.

    The GPU ray caster draws nothing when the image's direction matrix is a mirror (measured
    with VTK 9.7); filters handle mirrors fine. Canonical volumes (VTK identity) pass uncopied.
    """
    if np.linalg.det(volume.direction[:, ::-1]) > 0:
        return volume
    direction = volume.direction.copy()
    direction[:, 2] = -direction[:, 2]
    origin = volume.index_to_lps((0, 0, volume.shape[2] - 1))
    return volume.with_array(np.ascontiguousarray(volume.array[:, :, ::-1]), direction=direction,
                             origin=tuple(origin))


def _check_3d(volume: Volume) -> None:
    if min(volume.shape) < 2:
        raise InputError(f"3D rendering needs at least 2 voxels along every axis, got {volume.shape}",
                         volume.source or None)


# -- surfaces (worker-thread safe: no rendering) -------------------------------------------------
def _run_filter(alg, progress: Progress, cancel: CancelToken | None, lo: float, hi: float,
                message: str) -> None:
    """Update a VTK filter, reporting its progress in [lo, hi] and stopping it when cancelled."""

    def on_progress(obj, _event):
        if cancel is not None and cancel.cancelled:
            obj.SetAbortExecute(1)  # VTK checks this flag between its own steps
            return
        try:
            progress(lo + (hi - lo) * obj.GetProgress(), message)
        except Cancelled:  # a worker's progress raises when cancelled; VTK cannot take exceptions
            obj.SetAbortExecute(1)

    tag = alg.AddObserver("ProgressEvent", on_progress)
    try:
        alg.Update()
    finally:
        alg.RemoveObserver(tag)
    if cancel is not None:
        cancel.raise_if_cancelled()


def _detach(poly: vtkPolyData) -> vtkPolyData:
    """The filter's output as a standalone object (the filter can then be dropped)."""
    out = vtkPolyData()
    out.ShallowCopy(poly)
    return out


def isosurface(volume: Volume, value: float, progress: Progress | None = None,
               cancel: CancelToken | None = None) -> vtkPolyData:
    """The surface where the volume crosses ``value`` (HU for CT), in LPS mm, with normals.

    vtkFlyingEdges3D is multithreaded: ~0.15 s on 400×200×200 voxels on 2 cores. Smoothing and
    decimation would cost more than the extraction, so they are left out.
    """
    progress = progress or no_progress
    _check_3d(volume)
    fe = vtkFlyingEdges3D()
    fe.SetInputData(to_image_data(volume))
    fe.SetValue(0, float(value))
    fe.ComputeNormalsOn()  # smooth shading from the volume's gradient, for free
    fe.ComputeScalarsOff()
    _run_filter(fe, progress, cancel, 0.0, 1.0, "isosurface")
    progress(1.0, "isosurface")
    return _detach(fe.GetOutput())


def label_surfaces(label_map: LabelMap, ids=None, progress: Progress | None = None,
                   cancel: CancelToken | None = None) -> dict[int, vtkPolyData]:
    """One closed surface per label id present (or per id in ``ids``), in LPS mm.

    Each label is cropped to its bounding box (one ``find_objects`` pass for all labels),
    padded by one background voxel so surfaces close at the volume's edge, and contoured with
    vtkDiscreteFlyingEdges3D on a 0/1 mask of that label, so its normals point outwards whatever
    ids its neighbours have. When
    every label spans the whole volume this costs about what one filter over all labels costs
    (benchmarks/bench_surfaces.py); when labels are local (organs, pores) the crops make it much
    cheaper, and progress and cancel work per label.
    """
    from scipy import ndimage  # heavy import, only needed here

    progress = progress or no_progress
    volume = label_map.volume
    _check_3d(volume)
    arr = np.ascontiguousarray(label_map.array)
    boxes = ndimage.find_objects(arr)  # boxes[i - 1] is the bounding box of label i, or None
    wanted = sorted({int(i) for i in (ids if ids is not None else range(1, len(boxes) + 1))} - {0})
    present = [i for i in wanted if i <= len(boxes) and boxes[i - 1] is not None]
    surfaces: dict[int, vtkPolyData] = {}
    for n, label_id in enumerate(present):
        if cancel is not None:
            cancel.raise_if_cancelled()
        box = boxes[label_id - 1]
        # A 0/1 mask of this label, not the ids themselves: the filter's normals follow the gradient of
        # the values, so around a label whose neighbours have higher ids (pores inside soil, organs
        # against each other) they pointed inwards and those faces were lit black from the front.
        crop = np.zeros(tuple(s.stop - s.start + 2 for s in box), dtype=np.uint8)
        crop[1:-1, 1:-1, 1:-1] = arr[box] == label_id
        offset = tuple(s.start - 1 for s in box)  # the padded crop starts one voxel earlier
        fe = vtkDiscreteFlyingEdges3D()
        fe.SetInputData(to_image_data(volume, crop, offset))
        fe.SetValue(0, 1)
        fe.ComputeNormalsOn()   # outwards everywhere: outside the mask is always 0
        fe.ComputeScalarsOff()
        lo, hi = n / len(present), (n + 1) / len(present)
        _run_filter(fe, progress, cancel, lo, hi, f"surface of label {label_id}")
        surfaces[label_id] = _detach(fe.GetOutput())
    progress(1.0, "label surfaces")
    return surfaces


#: Triangles the 3D panel draws when still, and while the user turns it: Mesa's llvmpipe on two
#: cores draws about 2–5 M triangles a second (benchmarks/bench_soil_surfaces.py), and a soil cube's
#: density objects have 15+ M at full resolution (noise makes every bin border ragged).
STILL_TRIANGLES = 2_000_000
MOVING_TRIANGLES = 150_000
PROBE_STRIDE = 4


@dataclass
class DisplaySurfaces:
    """Label surfaces sized for drawing: ``still`` at 1/``stride`` resolution, ``moving`` (or None)
    coarser, drawn while the camera turns."""

    still: dict
    moving: dict | None = None
    stride: int = 1
    moving_stride: int = 1

    def __bool__(self) -> bool:
        return bool(self.still)

    def triangles(self, which: str = "still") -> int:
        return sum(p.GetNumberOfCells() for p in (getattr(self, which) or {}).values())


def strided_labels(label_map: LabelMap, stride: int) -> LabelMap:
    """Every ``stride``-th voxel along each axis (nearest neighbour: ids stay ids), on a coarser grid."""
    if stride == 1:
        return label_map
    vol = label_map.volume
    arr = np.ascontiguousarray(label_map.array[::stride, ::stride, ::stride])
    return LabelMap(vol.with_array(arr, spacing=tuple(s * stride for s in vol.spacing)), label_map.table)


def display_surfaces(label_map: LabelMap, ids=None, progress: Progress | None = None,
                     cancel: CancelToken | None = None, still: int = STILL_TRIANGLES,
                     moving: int = MOVING_TRIANGLES) -> DisplaySurfaces:
    """The label surfaces the panel can turn smoothly: full resolution where they are small (organs),
    else extracted from a strided label map so the triangles fit ``still`` and ``moving``.

    A quick extraction at 1/4 resolution estimates the full count (triangles scale with the square
    of the resolution); decimating 15 M triangles would cost more than extracting them again.
    """
    progress = progress or no_progress
    if label_map.array.size < 2_000_000:   # small volumes: no need to probe
        full = label_surfaces(label_map, ids, progress=progress, cancel=cancel)
        return DisplaySurfaces(full)
    probe = label_surfaces(strided_labels(label_map, PROBE_STRIDE), ids, cancel=cancel)
    progress(0.1, "estimating the surfaces' size")
    estimate = sum(p.GetNumberOfCells() for p in probe.values()) * PROBE_STRIDE ** 2

    def stride_for(budget: int) -> int:
        return next(s for s in range(1, 17) if estimate / s ** 2 <= budget or s == 16)

    s_still, s_moving = stride_for(still), stride_for(moving)

    def extract(stride, lo, hi):
        if stride == PROBE_STRIDE:
            return probe
        return label_surfaces(strided_labels(label_map, stride), ids, cancel=cancel,
                              progress=lambda f, m="": progress(lo + (hi - lo) * f, m))

    result = DisplaySurfaces(extract(s_still, 0.1, 0.85), stride=s_still)
    if s_moving > s_still:
        result.moving, result.moving_stride = extract(s_moving, 0.85, 1.0), s_moving
    progress(1.0, "label surfaces")
    return result


# -- volume rendering presets --------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A transfer function in HU: colour points (value, r, g, b) and opacity points (value, a)."""

    colours: tuple[tuple[float, float, float, float], ...]
    opacities: tuple[tuple[float, float], ...]
    mip: bool = False
    shade: bool = True


#: Adapted from 3D Slicer's CT volume-rendering presets (values in HU).
PRESETS: dict[str, Preset] = {
    "CT bone": Preset(
        colours=((-1024, 0.0, 0.0, 0.0), (-16, 0.73, 0.25, 0.30), (641, 0.91, 0.82, 0.55), (3071, 1.0, 1.0, 1.0)),
        opacities=((-1024, 0.0), (-16, 0.0), (641, 0.72), (3071, 0.71))),
    "CT soft tissue": Preset(
        colours=((-1024, 0.0, 0.0, 0.0), (-150, 0.75, 0.45, 0.35), (40, 0.90, 0.50, 0.42),
                 (200, 0.95, 0.75, 0.62), (600, 1.0, 0.95, 0.85), (3071, 1.0, 1.0, 1.0)),
        opacities=((-1024, 0.0), (-300, 0.0), (-100, 0.04), (40, 0.15), (200, 0.3), (600, 0.7), (3071, 0.8))),
    "CT muscle": Preset(
        colours=((-1024, 0.0, 0.0, 0.0), (-155, 0.55, 0.25, 0.15), (218, 0.88, 0.60, 0.29),
                 (420, 1.0, 0.94, 0.95), (3071, 0.83, 0.66, 1.0)),
        opacities=((-1024, 0.0), (-155, 0.0), (218, 0.68), (420, 0.83), (3071, 0.80))),
    "CT lung": Preset(
        colours=((-1024, 0.0, 0.0, 0.0), (-900, 0.55, 0.65, 0.85), (-500, 0.85, 0.75, 0.70),
                 (100, 0.90, 0.45, 0.40), (3071, 1.0, 1.0, 1.0)),
        opacities=((-1024, 0.0), (-950, 0.0), (-850, 0.06), (-600, 0.12), (-400, 0.0), (200, 0.0),
                   (400, 0.3), (3071, 0.4))),
    "MIP": Preset(colours=((-1024, 0.0, 0.0, 0.0), (3071, 1.0, 1.0, 1.0)),
                  opacities=((-1024, 0.0), (3071, 1.0)), mip=True, shade=False),
}
#: The HU span the presets are written for; other data is mapped onto its own value range.
HU_SPAN = (-1024.0, 3071.0)


def default_preset(volume: Volume) -> str:
    return "CT bone" if volume.modality == "CT" else "MIP"


def default_iso_value(volume: Volume) -> float:
    """Bone for CT; for other data, halfway between the dark and bright bulk of the values."""
    if volume.modality == "CT":
        return 300.0
    lo, hi = robust_range(volume)
    return float((lo + hi) / 2.0)


def robust_range(volume: Volume) -> tuple[float, float]:
    """The 0.5–99.5 % value range from a subsample (outliers must not squash the presets)."""
    flat = scalar_array(volume).reshape(-1)
    flat = flat[:: max(1, flat.size // 1_000_000)]
    lo, hi = (float(v) for v in np.percentile(flat, [0.5, 99.5])) if flat.size else (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def preset_mapping(volume: Volume, preset: str):
    """``value -> transfer-function x``: identity in HU for CT, else HU span -> the data's range.

    MIP always spans the data's own range: its ramp is a display window, not a tissue class.
    """
    p = PRESETS[preset]
    if volume.modality == "CT" and not p.mip:
        return lambda hu: float(hu)
    lo, hi = robust_range(volume)
    if volume.modality == "CT" and p.mip:
        lo = max(lo, -200.0)  # air and fat would only add haze to a CT MIP
    a, b = HU_SPAN
    return lambda hu: lo + (float(hu) - a) * (hi - lo) / (b - a)


# -- the scene -------------------------------------------------------------------------------------
class Scene3D:
    """A renderer holding at most one volume rendering, one isosurface and a set of label surfaces."""

    def __init__(self, background=BACKGROUND):
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*background)
        self.volume_prop: vtkVolume | None = None
        self.surface_actor: vtkActor | None = None
        self.label_actors: dict[int, vtkActor] = {}
        self._meshes: dict = {}  # label id -> (still mapper, coarse mapper drawn while moving, or None)
        self.clip_plane = None  # a vtkPlane cutting every surface, or None
        self.heat_prop: vtkVolume | None = None  # a heatmap cloud over the surfaces (app.views.heat3d)
        self._opacity: dict = {}  # actor -> the opacity it has without a cloud (the table's, the caller's)

    # -- content -------------------------------------------------------------------------------
    def clear(self) -> None:
        self.renderer.RemoveAllViewProps()
        self.volume_prop, self.surface_actor, self.label_actors, self.heat_prop = None, None, {}, None
        self._meshes, self._opacity = {}, {}

    def set_volume_rendering(self, volume: Volume, preset: str, image: vtkImageData | None = None) -> vtkVolume:
        """Ray-cast ``volume`` through a preset's transfer functions (GPU where there is one).

        ``image`` is what :func:`rendering_image` prepared (in a worker); without it the whole
        volume is wrapped here.
        """
        if preset not in PRESETS:
            raise InputError(f"unknown volume rendering preset {preset!r}; choose from {', '.join(PRESETS)}")
        _check_3d(volume)
        if self.volume_prop is not None:
            self.renderer.RemoveVolume(self.volume_prop)
        p, x = PRESETS[preset], preset_mapping(volume, preset)
        colour, opacity = vtkColorTransferFunction(), vtkPiecewiseFunction()
        for hu, r, g, b in p.colours:
            colour.AddRGBPoint(x(hu), r, g, b)
        for hu, a in p.opacities:
            opacity.AddPoint(x(hu), a)
        prop = vtkVolumeProperty()
        prop.SetColor(colour)
        prop.SetScalarOpacity(opacity)
        prop.SetInterpolationTypeToLinear()
        prop.SetScalarOpacityUnitDistance(min(volume.spacing))
        if p.shade:
            prop.ShadeOn()
            prop.SetAmbient(0.2)
            prop.SetDiffuse(0.9)
            prop.SetSpecular(0.2)
        mapper = vtkSmartVolumeMapper()
        mapper.SetInputData(image if image is not None else to_image_data(right_handed(volume)))
        mapper.SetBlendMode(vtkVolumeMapper.MAXIMUM_INTENSITY_BLEND if p.mip else vtkVolumeMapper.COMPOSITE_BLEND)
        self.volume_prop = vtkVolume()
        self.volume_prop.SetMapper(mapper)
        self.volume_prop.SetProperty(prop)
        self.renderer.AddVolume(self.volume_prop)
        return self.volume_prop

    def set_heat(self, prop: vtkVolume | None) -> None:
        """Show this heatmap cloud with the surfaces, replacing the previous one (``None``: none).

        The surfaces are faded while it shows, so the cloud inside them is seen by default."""
        if prop is self.heat_prop:
            return
        if self.heat_prop is not None:
            self.renderer.RemoveVolume(self.heat_prop)
        self.heat_prop = prop
        if prop is not None:
            self.renderer.AddVolume(prop)
        for actor, opacity in self._opacity.items():
            self._set_opacity(actor, opacity)

    def _set_opacity(self, actor: vtkActor, opacity: float) -> None:
        """Give a surface its own opacity, faded while a cloud is shown (:data:`CLOUD_SURFACE_FADE`)."""
        self._opacity[actor] = opacity
        fade = CLOUD_SURFACE_FADE if self.heat_prop is not None else 1.0
        actor.GetProperty().SetOpacity(opacity * fade)

    def set_surface(self, polydata: vtkPolyData, colour=(0.95, 0.92, 0.84), opacity: float = 1.0) -> vtkActor:
        """Show one surface (the isosurface), replacing the previous one. Colour in 0..1 RGB."""
        if self.surface_actor is not None:
            self.renderer.RemoveActor(self.surface_actor)
            self._opacity.pop(self.surface_actor, None)
        self.surface_actor = _surface_actor(polydata, colour, opacity)
        self._set_opacity(self.surface_actor, opacity)
        self.renderer.AddActor(self.surface_actor)
        self._apply_clip()
        return self.surface_actor

    def set_label_surfaces(self, surfaces, table: LabelTable | None) -> None:
        """Show one actor per label surface, coloured (and hidden) as the table says.

        ``surfaces`` is ``{id: polydata}`` or :class:`DisplaySurfaces`; the latter's coarse meshes
        are drawn while the camera moves (:meth:`set_moving`).
        """
        moving = (surfaces.moving or {}) if isinstance(surfaces, DisplaySurfaces) else {}
        if isinstance(surfaces, DisplaySurfaces):
            surfaces = surfaces.still
        for actor in self.label_actors.values():
            self.renderer.RemoveActor(actor)
            self._opacity.pop(actor, None)
        self.label_actors, self._meshes = {}, {}
        for label_id, poly in sorted(surfaces.items()):
            actor = _surface_actor(poly, (1.0, 1.0, 1.0), 1.0)
            coarse = _surface_actor(moving[label_id], (1.0, 1.0, 1.0), 1.0).GetMapper() if label_id in moving else None
            self._meshes[label_id] = (actor.GetMapper(), coarse)
            self.label_actors[label_id] = actor
            self.renderer.AddActor(actor)
        self._apply_clip()
        self.update_label_colours(table)

    def set_clip_plane(self, origin=None, normal=None) -> None:
        """Cut every surface with a plane (LPS mm; what ``normal`` points to stays); ``None`` removes it.

        The mappers clip while drawing, so moving the plane costs one render, no new geometry.
        """
        self.clip_plane = None
        if origin is not None and normal is not None:
            self.clip_plane = vtkPlane()
            self.clip_plane.SetOrigin(*origin)
            self.clip_plane.SetNormal(*normal)
        self._apply_clip()

    def _apply_clip(self) -> None:
        actors = list(self.label_actors.values()) + ([self.surface_actor] if self.surface_actor else [])
        coarse = [m for _, m in self._meshes.values() if m is not None]
        for mapper in {id(m): m for m in [a.GetMapper() for a in actors] + coarse}.values():
            mapper.RemoveAllClippingPlanes()
            if self.clip_plane is not None:
                mapper.AddClippingPlane(self.clip_plane)

    def set_moving(self, on: bool) -> None:
        """Draw the coarse label meshes (while the user turns the view) or the finer ones."""
        for label_id, (still, coarse) in self._meshes.items():
            if label_id in self.label_actors:
                self.label_actors[label_id].SetMapper(coarse if on and coarse is not None else still)

    def update_label_colours(self, table: LabelTable | None) -> None:
        """Re-apply colours, opacity and visibility after the table changed (no recomputation)."""
        for label_id, actor in self.label_actors.items():
            lab = table[label_id] if table is not None and label_id in table else None
            colour = lab.colour if lab else default_colour(label_id)
            actor.GetProperty().SetColor(*(c / 255.0 for c in colour))
            self._set_opacity(actor, lab.opacity if lab else 1.0)
            actor.SetVisibility(lab.visible if lab else True)

    # -- camera ---------------------------------------------------------------------------------
    def reset_camera(self) -> None:
        """Anterior view: the camera in front of the patient (−y in LPS) looking posterior, Superior
        up, so the patient's left is on the screen's right (as when facing the patient)."""
        bounds = self.renderer.ComputeVisiblePropBounds()
        if bounds[0] > bounds[1]:  # nothing visible
            bounds = (-1.0, 1.0, -1.0, 1.0, -1.0, 1.0)
        centre = [(bounds[2 * i] + bounds[2 * i + 1]) / 2.0 for i in range(3)]
        camera = self.renderer.GetActiveCamera()
        camera.SetFocalPoint(*centre)
        camera.SetPosition(centre[0], centre[1] - 1.0, centre[2])
        camera.SetViewUp(0.0, 0.0, 1.0)
        self.renderer.ResetCamera(bounds)  # keeps the direction, fits the distance
        self.renderer.ResetCameraClippingRange()

    def orientation_marker(self, interactor):
        """A small cube in the corner labelled with patient directions; needs an interactor.

        The caller keeps the returned widget alive (VTK holds only a weak link to it).
        """
        from vtkmodules.vtkInteractionWidgets import vtkOrientationMarkerWidget
        from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor

        cube = vtkAnnotatedCubeActor()
        # LPS: +x Left, +y Posterior, +z Superior.
        cube.SetXPlusFaceText("L")
        cube.SetXMinusFaceText("R")
        cube.SetYPlusFaceText("P")
        cube.SetYMinusFaceText("A")
        cube.SetZPlusFaceText("S")
        cube.SetZMinusFaceText("I")
        cube.SetFaceTextScale(0.6)
        cube.GetCubeProperty().SetColor(0.35, 0.38, 0.45)
        cube.GetTextEdgesProperty().SetColor(0.9, 0.9, 0.9)
        for prop in (cube.GetXPlusFaceProperty(), cube.GetXMinusFaceProperty(), cube.GetYPlusFaceProperty(),
                     cube.GetYMinusFaceProperty(), cube.GetZPlusFaceProperty(), cube.GetZMinusFaceProperty()):
            prop.SetColor(0.95, 0.95, 0.95)
        widget = vtkOrientationMarkerWidget()
        widget.SetOrientationMarker(cube)
        widget.SetInteractor(interactor)
        widget.SetViewport(0.0, 0.0, 0.16, 0.2)
        widget.SetEnabled(1)
        widget.InteractiveOff()
        return widget


def _surface_actor(polydata: vtkPolyData, colour, opacity: float) -> vtkActor:
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(polydata)
    mapper.ScalarVisibilityOff()  # colour comes from the actor, not from point data
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*colour)
    actor.GetProperty().SetOpacity(opacity)
    actor.GetProperty().SetSpecular(0.2)
    actor.GetProperty().SetAmbient(0.15)  # faces edge-on to the headlight stay their colour, not black
    return actor


def read_pixels(render_window) -> np.ndarray:
    """The render window's own pixels as (H, W, 3) uint8, top row first.

    Reads VTK's back buffer with vtkWindowToImageFilter (QWidget.grab() cannot see GL content).
    Call right after ``render_window.Render()`` on the thread that owns the window.
    """
    grab = vtkWindowToImageFilter()
    grab.SetInput(render_window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.ShouldRerenderOff()  # the caller has just rendered; a re-render here could change size
    grab.Update()
    image = grab.GetOutput()
    w, h, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, -1)[:, :, :3]
    return np.ascontiguousarray(pixels[::-1])  # VTK's rows start at the bottom

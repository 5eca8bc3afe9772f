"""Random changes to training images and their masks, so a segmentation network sees more variety
than a handful of scans hold: Gaussian noise, scaling, blur, rotation, elastic deformation and gamma.

Works on 2-D slices ``[y, x]`` and 3-D patches ``[z, y, x]`` (rotation in the y-x plane, the plane
a patient turns in on the table), each optionally with a trailing channel axis. Geometry changes
move image and mask together, composed into one resampling so the image is interpolated once; the
mask is resampled nearest-neighbour, so it stays binary and never gains values. Intensity changes
touch the image only. Fast enough to run per batch in a training input pipeline (scipy.ndimage).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import fft, ndimage

from ctviewer.errors import InputError


@dataclass
class AugmentSpec:
    """How strongly to change each training pair; each change happens with ``probability``.

    ``noise_std``: Gaussian noise of standard deviation drawn from [0, noise_std] (image in 0..1);
    ``scale``: zoom factor range (>1 enlarges), the result cropped or zero-padded to the same shape;
    ``blur_sigma``: Gaussian blur sigma range in voxels; ``rotate_deg``: rotation up to +-this;
    ``elastic_alpha``: typical (RMS) displacement of the elastic deformation in voxels, 0 = off
    (it is the costly one); ``elastic_sigma``: its smoothness, the distance in voxels over which
    the displacement changes; ``gamma``: range of the exponent applied to the 0..1 image;
    ``contrast``: range of a factor stretching the image about its mean, and ``shift``: range of an
    offset added to it (both off by default): scanners, kernels and bone density move tissues' values
    against each other, which gamma alone does not imitate.
    """

    noise_std: float = 0.03
    scale: tuple[float, float] = (0.85, 1.15)
    blur_sigma: tuple[float, float] = (0.0, 1.0)
    rotate_deg: float = 15.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 8.0
    gamma: tuple[float, float] = (0.8, 1.25)
    contrast: tuple[float, float] = (1.0, 1.0)
    shift: tuple[float, float] = (0.0, 0.0)
    probability: float = 0.5

    def __post_init__(self):
        self.scale = _pair("scale", self.scale, low=1e-3)
        self.blur_sigma = _pair("blur_sigma", self.blur_sigma, low=0.0)
        self.gamma = _pair("gamma", self.gamma, low=1e-3)
        self.contrast = _pair("contrast", self.contrast, low=1e-3)
        self.shift = _pair("shift", self.shift, low=-1.0)
        for name in ("noise_std", "rotate_deg", "elastic_alpha", "elastic_sigma", "probability"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"augmentation {name} must be a number >= 0, not {value!r}")
            setattr(self, name, float(value))
        if self.probability > 1:
            raise InputError(f"augmentation probability must be in 0..1, not {self.probability}")
        if self.elastic_alpha > 0 and self.elastic_sigma < 1:
            raise InputError(f"augmentation elastic_sigma must be >= 1 voxel, not {self.elastic_sigma}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "AugmentSpec":
        """From a config section; unknown keys are a mistake worth telling (a misspelt option)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown augmentation option(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _pair(name, value, low):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"augmentation {name} must be a pair of numbers (low, high), not {value!r}") from None
    if not low <= a <= b:
        raise InputError(f"augmentation {name} must be (low, high) with {low} <= low <= high, not {value!r}")
    return (a, b)


def _spatial_dims(image: np.ndarray, spatial_dims: int | None) -> int:
    if spatial_dims is not None:
        return int(spatial_dims)
    if image.ndim == 2:
        return 2
    if image.ndim == 4:
        return 3
    # [y, x, C] or [z, y, x]: a short last axis is channels (patches are at least 16 voxels wide).
    return 2 if image.shape[-1] <= 4 else 3


def _with_channels(array: np.ndarray, dims: int) -> np.ndarray:
    return array[..., None] if array.ndim == dims else array


def augment_pair(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, spec: AugmentSpec,
                 spatial_dims: int | None = None):
    """A randomly changed copy of ``(image, mask)``: same shapes, the image float32, the mask its own dtype.

    ``image`` float in [0, 1], ``[y, x]`` or ``[z, y, x]``, optionally ``[..., C]``; ``mask`` the same
    spatial shape, uint8 or bool, optionally ``[..., G]``. A 3-D array whose last axis has 4 or fewer
    entries is read as a 2-D image with channels unless ``spatial_dims`` says otherwise. The same
    ``rng`` state gives the same result.
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    dims = _spatial_dims(image, spatial_dims)
    if dims not in (2, 3) or image.ndim not in (dims, dims + 1) or mask.ndim not in (dims, dims + 1) \
            or image.shape[:dims] != mask.shape[:dims]:
        raise ValueError(f"image {image.shape} and mask {mask.shape} are not a {dims}-D pair of one spatial shape")
    p = spec.probability
    # channel-first, contiguous copies: scipy filters one contiguous spatial array at a time
    out_image = np.array(np.moveaxis(_with_channels(image, dims), -1, 0), dtype=np.float32, order="C")
    out_mask = np.moveaxis(_with_channels(mask, dims), -1, 0)
    out_mask = np.array(out_mask.view(np.uint8) if out_mask.dtype == bool else out_mask, order="C")

    matrix = _geometry(rng, spec, dims)
    displacement = None
    if spec.elastic_alpha > 0 and rng.random() < p:
        displacement = _elastic_field(rng, image.shape[:dims], spec.elastic_alpha, spec.elastic_sigma)
    if matrix is not None or displacement is not None:
        out_image, out_mask = _resample(out_image, out_mask, matrix, displacement)

    if spec.noise_std > 0 and rng.random() < p:
        std = rng.uniform(0.0, spec.noise_std)
        out_image += rng.standard_normal(out_image.shape, dtype=np.float32) * np.float32(std)
    if spec.contrast != (1.0, 1.0) and rng.random() < p:
        factor = np.float32(rng.uniform(*spec.contrast))
        for channel in out_image:
            mean = np.float32(channel.mean())
            channel -= mean
            channel *= factor
            channel += mean
    if spec.shift != (0.0, 0.0) and rng.random() < p:
        out_image += np.float32(rng.uniform(*spec.shift))
    if spec.blur_sigma[1] > 0 and rng.random() < p:
        sigma = rng.uniform(*spec.blur_sigma)
        for channel in out_image:  # blur in space only, never across channels
            ndimage.gaussian_filter(channel, sigma, mode="nearest", output=channel)
    np.clip(out_image, 0.0, 1.0, out=out_image)  # gamma needs it, and the contract is an image in 0..1
    if spec.gamma != (1.0, 1.0) and rng.random() < p:
        # log-uniform, so that brightening and darkening are equally likely
        gamma = float(np.exp(rng.uniform(np.log(spec.gamma[0]), np.log(spec.gamma[1]))))
        np.power(out_image, np.float32(gamma), out=out_image)

    out_image = np.moveaxis(out_image, 0, -1).reshape(image.shape)
    out_mask = np.moveaxis(out_mask, 0, -1).reshape(mask.shape)
    return np.ascontiguousarray(out_image), np.ascontiguousarray(out_mask).view(mask.dtype)


def _geometry(rng, spec: AugmentSpec, dims: int):
    """Output-to-input matrix of the random rotation and scaling (about the centre), or None if neither."""
    matrix = np.eye(dims)
    changed = False
    if spec.scale != (1.0, 1.0) and rng.random() < spec.probability:
        zoom = float(np.exp(rng.uniform(np.log(spec.scale[0]), np.log(spec.scale[1]))))
        matrix /= zoom  # an output voxel samples the input closer to the centre when enlarging
        changed = True
    if spec.rotate_deg > 0 and rng.random() < spec.probability:
        angle = np.deg2rad(rng.uniform(-spec.rotate_deg, spec.rotate_deg))
        c, s = np.cos(angle), np.sin(angle)
        rotation = np.eye(dims)
        rotation[-2:, -2:] = [[c, -s], [s, c]]  # the y-x plane (in-plane for 3-D)
        matrix = rotation @ matrix
        changed = True
    return matrix if changed else None


def _elastic_field(rng, shape, alpha: float, sigma: float) -> np.ndarray:
    """``[dims, *shape]`` smooth random displacements with RMS ``alpha`` voxels.

    White noise smoothed by a Gaussian of ``sigma`` voxels (Simard's elastic deformation), the
    smoothing done by multiplying in Fourier space: a 3-D patch costs milliseconds instead of the
    tenth of a second a spatial filter that wide takes. The field wraps around at the borders, which
    only ties opposite edges' displacements together; it stays just as smooth and random.
    """
    dims = len(shape)
    axes = tuple(range(1, dims + 1))
    noise = rng.standard_normal((dims,) + tuple(shape), dtype=np.float32)
    spectrum = fft.rfftn(noise, axes=axes)
    for component in spectrum:
        ndimage.fourier_gaussian(component, sigma, n=shape[-1], output=component)
    field = fft.irfftn(spectrum, s=shape, axes=axes).astype(np.float32, copy=False)
    rms = float(np.sqrt(np.vdot(field, field) / field.size)) or 1.0
    field *= np.float32(alpha / rms)
    return field


def _resample(image, mask, matrix, displacement):
    """Apply the composed geometry to every channel (channel-first arrays): image linear, mask nearest;
    zero (air, background) where the output looks outside the input."""
    shape = image.shape[1:]
    dims = len(shape)
    matrix = np.eye(dims) if matrix is None else matrix
    centre = (np.asarray(shape, float) - 1) / 2
    offset = centre - matrix @ centre
    out_image = np.empty_like(image)
    out_mask = np.empty_like(mask)
    if displacement is None:  # affine only: no coordinate arrays, scipy walks the grid itself
        for src, dst in zip(image, out_image):
            ndimage.affine_transform(src, matrix, offset, order=1, output=dst)
        for src, dst in zip(mask, out_mask):
            ndimage.affine_transform(src, matrix, offset, order=0, output=dst)
        return out_image, out_mask
    # input coordinate = matrix @ output index + offset + displacement, built axis by axis from
    # broadcast ranges into the displacement array (no full index grid, no large matrix product)
    coords = displacement
    ranges = [np.arange(n, dtype=np.float32).reshape([-1 if a == j else 1 for a in range(dims)])
              for j, n in enumerate(shape)]
    for i in range(dims):
        coords[i] += np.float32(offset[i])
        for j in range(dims):
            if matrix[i, j] != 0:
                coords[i] += np.float32(matrix[i, j]) * ranges[j]
    for src, dst in zip(image, out_image):
        ndimage.map_coordinates(src, coords, order=1, output=dst)
    for src, dst in zip(mask, out_mask):
        ndimage.map_coordinates(src, coords, order=0, output=dst)
    return out_image, out_mask

"""The parameters of a synthetic torso scan, and the anatomical ranges they are drawn from.

Every range below comes from ``shared/ANATOMY.md`` (adult values from anatomy and CT references and
from the real TotalSegmentator slab). ``TorsoParams()`` is a sensible default adult: every
anatomical number sits at the middle of its range (``jitter=0``). ``TorsoParams.random(seed)``
draws the scan-level choices (sex, size, fat, phase, variants, geometry) and sets ``jitter=1`` so that
every detailed number (vertebra heights, organ extents, HU values) is drawn from its whole range.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np

from ctviewer.errors import InputError

FieldOfView = Literal["chest", "abdomen", "both"]

#: Vertebral body height, width, depth and the disc below it (mm), per level group (ANATOMY.md "Spine").
#: Cervical C4–C7 are not in ANATOMY.md; they only fill the top of a chest scan (small adult values).
SPINE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "C":      {"height": (13, 15), "width": (18, 24), "depth": (14, 16), "disc": (4, 5)},
    "T1-T4":  {"height": (14, 17), "width": (25, 30), "depth": (15, 20), "disc": (3, 5)},
    "T5-T9":  {"height": (17, 21), "width": (28, 35), "depth": (20, 27), "disc": (4, 6)},
    "T10-T12": {"height": (21, 25), "width": (35, 42), "depth": (27, 32), "disc": (5, 7)},
    "L1-L2":  {"height": (25, 28), "width": (40, 46), "depth": (30, 34), "disc": (8, 11)},
    "L3":     {"height": (26, 29), "width": (45, 50), "depth": (32, 35), "disc": (9, 12)},
    "L4-L5":  {"height": (26, 28), "width": (48, 52), "depth": (33, 36), "disc": (10, 13)},
}

#: CT numbers (HU) per tissue: (low, high) of the reference range in ANATOMY.md "CT values".
TISSUE_HU: dict[str, tuple[float, float]] = {
    "air": (-1000, -1000),
    "lung": (-860, -760),
    "fat": (-115, -80),
    "muscle": (35, 55),
    "back_muscle": (25, 50),        # measured paraspinal muscles are lower (23–26) than iliopsoas (36)
    "liver": (48, 62),
    "liver_pv": (100, 130),
    "spleen": (40, 50),
    "spleen_pv": (105, 125),
    "kidney": (25, 40),
    "kidney_pv": (150, 200),
    "blood": (35, 50),
    "aorta_pv": (160, 200),
    "vein_pv": (120, 160),
    "heart_pv": (120, 160),
    "bowel": (20, 45),
    "bladder": (0, 15),
    "csf": (5, 20),
    "disc": (60, 100),
    "cartilage": (100, 180),
    # compact bone itself; the renderer's partial volume brings a thin shell down. Real thin cortex reads
    # ~1000 HU even at 5 mm slices (ACRIN 001: 99th percentile of bone 1014 HU; chest crop 1591 at 1.5 mm);
    # 700-1100 gave synthetic scans 512-718, and the locator learnt ribs twice too dim in its projections
    # (models/README.md, issue 15). Capped so a whole vertebra's label mean stays in ANATOMY.md's range.
    "cortex": (1300, 1800),
    "cancellous": (150, 260),       # vertebral and pelvic spongy bone
    "yellow_marrow": (-40, 40),     # femoral shaft
    "skin": (20, 50),
    "table_shell": (150, 350),
    "table_foam": (-960, -900),
}

SEXES = ("male", "female")
PHASES = ("none", "portal_venous")
ARMS = ("up", "down")


@dataclass(frozen=True)
class TorsoParams:
    """A validated description of one synthetic torso CT scan.

    Field of view: ``"chest"`` covers T1–L1, ``"abdomen"`` T10 to below the femoral heads, ``"both"``
    T1 to below the femoral heads. ``fov_mm=(bottom, top)`` overrides it with explicit limits in mm in
    the anatomical frame of the generator, whose zero is the superior endplate of S1 (positive = head).
    """

    seed: int = 0
    sex: str = "male"
    #: Scale of the body outline across (width) and front to back (depth); 1 = average adult.
    width_scale: float = 1.0
    depth_scale: float = 1.0
    #: 0 (lean) … 1 (obese): thickness of subcutaneous fat and the share of visceral fat.
    fat_fraction: float = 0.3
    #: Scale of vertebra heights and trunk length; 1 = middle of the ANATOMY.md ranges.
    height_scale: float = 1.0
    field_of_view: str = "both"
    fov_mm: tuple[float, float] | None = None
    #: (rows, columns) of each axial slice and their spacing (mm).
    matrix: tuple[int, int] = (256, 256)
    pixel_spacing: float = 1.5
    slice_spacing: float = 2.5
    #: Reconstructed slice thickness (mm); None = the slice spacing. Simulated by averaging thin
    #: sub-slices along z (partial volume, ANATOMY.md).
    slice_thickness: float | None = None
    #: Standard deviation of the image noise in soft tissue (ANATOMY.md: 10–25 HU).
    noise_sd: float = 15.0
    #: In-plane blur of the reconstruction kernel, sigma in pixels.
    kernel_sigma: float = 0.6
    contrast_phase: str = "none"
    arms: str = "up"
    table: bool = True
    #: Variants that fool level counting (ANATOMY.md "Common variants").
    lumbar_count: int = 5
    thirteenth_ribs: bool = False
    rudimentary_12th_rib: bool = False
    sacralised_l5: bool = False
    #: Sagittal curve amplitudes (mm): thoracic kyphosis and lumbar lordosis.
    kyphosis_mm: float = 30.0
    lordosis_mm: float = 25.0
    #: Tilt of the sacrum backwards from vertical at S1 (ANATOMY.md: 30–45°).
    sacral_tilt_deg: float = 38.0
    #: Cancellous bone density scale (1 = middle of 150–260 HU; lower in osteoporosis).
    bone_density: float = 1.0
    #: Table position: added to every z so that absolute positions carry no anatomy.
    z_offset_mm: float = 0.0
    #: 0 = every detailed anatomical number at mid-range; 1 = drawn from its full range by ``seed``.
    jitter: float = 0.0
    name: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        checks = [
            (self.sex in SEXES, f"sex must be one of {SEXES}, got {self.sex!r}"),
            (0.7 <= self.width_scale <= 1.4, f"width_scale must be in 0.7..1.4, got {self.width_scale}"),
            (0.7 <= self.depth_scale <= 1.4, f"depth_scale must be in 0.7..1.4, got {self.depth_scale}"),
            (0.0 <= self.fat_fraction <= 1.0, f"fat_fraction must be in 0..1, got {self.fat_fraction}"),
            (0.8 <= self.height_scale <= 1.2, f"height_scale must be in 0.8..1.2, got {self.height_scale}"),
            (self.field_of_view in ("chest", "abdomen", "both"),
             f"field_of_view must be 'chest', 'abdomen' or 'both', got {self.field_of_view!r}"),
            (self.fov_mm is None or (len(self.fov_mm) == 2 and self.fov_mm[0] < self.fov_mm[1]),
             f"fov_mm must be (bottom, top) with bottom < top, got {self.fov_mm}"),
            (len(self.matrix) == 2 and all(16 <= int(n) <= 1024 for n in self.matrix),
             f"matrix must be two sizes in 16..1024, got {self.matrix}"),
            (0.3 <= self.pixel_spacing <= 5.0, f"pixel_spacing must be in 0.3..5 mm, got {self.pixel_spacing}"),
            (0.5 <= self.slice_spacing <= 10.0, f"slice_spacing must be in 0.5..10 mm, got {self.slice_spacing}"),
            (self.slice_thickness is None or 0.5 <= self.slice_thickness <= 10.0,
             f"slice_thickness must be in 0.5..10 mm, got {self.slice_thickness}"),
            (0.0 <= self.noise_sd <= 100.0, f"noise_sd must be in 0..100 HU, got {self.noise_sd}"),
            (0.0 <= self.kernel_sigma <= 3.0, f"kernel_sigma must be in 0..3 px, got {self.kernel_sigma}"),
            (self.contrast_phase in PHASES, f"contrast_phase must be one of {PHASES}, got {self.contrast_phase!r}"),
            (self.arms in ARMS, f"arms must be one of {ARMS}, got {self.arms!r}"),
            (self.lumbar_count in (4, 5, 6), f"lumbar_count must be 4, 5 or 6, got {self.lumbar_count}"),
            (0.0 <= self.kyphosis_mm <= 60.0, f"kyphosis_mm must be in 0..60, got {self.kyphosis_mm}"),
            (0.0 <= self.lordosis_mm <= 60.0, f"lordosis_mm must be in 0..60, got {self.lordosis_mm}"),
            (20.0 <= self.sacral_tilt_deg <= 60.0, f"sacral_tilt_deg must be in 20..60, got {self.sacral_tilt_deg}"),
            (0.4 <= self.bone_density <= 1.5, f"bone_density must be in 0.4..1.5, got {self.bone_density}"),
            (0.0 <= self.jitter <= 1.0, f"jitter must be in 0..1, got {self.jitter}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @property
    def thickness(self) -> float:
        return float(self.slice_thickness or self.slice_spacing)

    def with_changes(self, **changes) -> "TorsoParams":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def random(cls, seed: int, **overrides) -> "TorsoParams":
        """A scan drawn at random (deterministically from ``seed``); ``overrides`` fix any field."""
        rng = np.random.default_rng([int(seed), 0x7050])
        u = rng.uniform
        sex = SEXES[int(rng.integers(2))]
        lumbar = int(rng.choice([4, 5, 6], p=[0.04, 0.89, 0.07]))
        spacing = float(rng.choice([2.0, 2.5, 3.0]))
        width = u(0.85, 1.15) * (0.95 if sex == "female" else 1.0)
        values = dict(
            seed=int(seed), sex=sex,
            width_scale=width, depth_scale=u(0.85, 1.2),
            fat_fraction=float(np.clip(rng.beta(2.0, 3.5), 0.02, 0.95)),
            height_scale=u(0.9, 1.1) * (0.95 if sex == "female" else 1.0),
            pixel_spacing=u(1.35, 1.65) * max(1.0, width),
            slice_spacing=spacing,
            slice_thickness=spacing * float(rng.choice([1.0, 1.0, 1.2])),
            noise_sd=u(10.0, 25.0),
            kernel_sigma=u(0.4, 0.9),
            contrast_phase=PHASES[int(rng.random() < 0.5)],
            arms="up" if rng.random() < 0.8 else "down",
            table=bool(rng.random() < 0.9),
            lumbar_count=lumbar,
            thirteenth_ribs=bool(rng.random() < 0.05),
            rudimentary_12th_rib=bool(rng.random() < 0.07),
            sacralised_l5=bool(rng.random() < 0.06),
            kyphosis_mm=u(18.0, 42.0), lordosis_mm=u(12.0, 38.0),
            sacral_tilt_deg=u(30.0, 45.0),
            bone_density=u(0.6, 1.25),
            z_offset_mm=u(-900.0, 200.0),
            jitter=1.0,
            name=f"synthetic torso {seed}",
        )
        if values["arms"] == "down":  # the arms beside the trunk need a wider field of view
            values["pixel_spacing"] *= 1.25
        values.update(overrides)
        return cls(**values)


class Draw:
    """Draws anatomical numbers: the middle of a range, moved by ``jitter`` × a uniform variate.

    The variates come from one seeded generator in a fixed order, so a scan is reproducible.
    """

    def __init__(self, seed: int, jitter: float):
        self.rng = np.random.default_rng([int(seed), 0xA7A7])
        self.jitter = float(jitter)

    def __call__(self, lo: float, hi: float) -> float:
        u = self.rng.random()
        return float((lo + hi) / 2 + self.jitter * (u - 0.5) * (hi - lo))

    def unit(self) -> float:
        """A variate in -0.5..0.5 (0 without jitter)."""
        return float(self.jitter * (self.rng.random() - 0.5))

    def hu(self, tissue: str) -> float:
        return self(*TISSUE_HU[tissue])

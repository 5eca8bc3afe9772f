"""The segmentation training tasks: ``segmentation_2d`` (slice U-Net) and ``segmentation_3d`` (patch U-Net).

A config's ``[data]`` table (all optional, at least one training source):

    sources = ["ircadb/", "spine_list.txt", "nifti_pairs/"]   # anything cases.find_cases reads
    synthetic = 40              # synthetic torsos (ctviewer.synth, seeds 0..N-1) for training + validation
    synthetic_test = 8          # held-out synthetic torsos (seeds from test_seed_start), never trained on
    target = "liver=5"          # Target text: "5", "vertebrae=26-50", "nonzero", "liver=5;spleen=1"
    window = [-1000, 400]       # HU window scaled to [0, 1] (the liver seed's)
    spacing_mm = 3.0            # working spacing: in-plane for 2-D (slices keep their z), isotropic for 3-D
    resample_labels = false     # label maps on another grid than their image: refuse (false) or resample
    real_test = [{image = "ct.nii.gz", labels = "labels.nii.gz"}]   # real scans scored for the card

and ``[extra]`` the network knobs: 2-D ``filters``, ``activation`` ("relu" | "selu"), ``dropout``,
``loss`` ("dice" | "dice_ce"), ``slice_size``; 3-D ``base_filters``, ``depth``, ``patch``; both
``samples_per_epoch`` and ``foreground_fraction`` (share of samples centred on the target); ``augment``
(options of ctviewer.ml.augmentation.AugmentSpec, e.g. ``{contrast = [0.85, 1.15]}``); the clean-up every
output group gets at inference, written into the card: ``drop_islands`` (pieces smaller than this fraction
of the largest are removed, e.g. 0.1) and ``fill_holes`` (true: cavities enclosed by the mask are filled).

Studies are split into training and validation by study (never slices of one study on both sides,
the seeds' mistake). The card's metrics are Dice and Jaccard per study on the held-out synthetic
torsos and on each real scan, measured on the scan's own grid after the full inference path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.ml.tasks import TaskSpec
from ctviewer.progress import no_progress

TEST_SEED_START = 2_000_000
DATA_KEYS = {"sources", "synthetic", "synthetic_test", "test_seed_start", "target", "window", "spacing_mm",
             "resample_labels", "real_test"}
EXTRA_KEYS = {"filters", "activation", "dropout", "loss", "slice_size", "base_filters", "depth", "patch",
              "samples_per_epoch", "foreground_fraction", "val_samples", "augment", "drop_islands", "fill_holes", "grow"}


@dataclass
class SegData:
    """The ``[data]`` and ``[extra]`` settings of a segmentation config, checked."""

    dims: int
    target: object                      # cases/prepare.Target
    sources: list[Path] = field(default_factory=list)
    synthetic: int = 0
    synthetic_test: int = 0
    test_seed_start: int = TEST_SEED_START
    window: tuple[float, float] = (-1000.0, 400.0)
    spacing_mm: float = 3.0
    resample_labels: bool = False
    real_test: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config, dims: int) -> "SegData":
        from ctviewer.workflows.segmentation.prepare import Target

        d, x = dict(config.data), dict(config.extra)
        config.check_keys(DATA_KEYS, EXTRA_KEYS)
        out = cls(dims=dims, target=Target.parse(str(d.get("target", "liver=5"))), extra=x)
        for key in ("synthetic", "synthetic_test", "test_seed_start"):
            value = d.get(key, getattr(out, key))
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"key '{key}' should be a whole number, 0 or more, not {value!r}")
            setattr(out, key, value)
        window = d.get("window", out.window)
        if not (isinstance(window, (list, tuple)) and len(window) == 2 and float(window[0]) < float(window[1])):
            raise InputError(f"key 'window' should be [low, high] in HU with low < high, not {window!r}")
        out.window = (float(window[0]), float(window[1]))
        out.spacing_mm = float(d.get("spacing_mm", out.spacing_mm))
        if not 0.2 <= out.spacing_mm <= 20:
            raise InputError(f"key 'spacing_mm' should be between 0.2 and 20 mm, not {out.spacing_mm}")
        out.resample_labels = bool(d.get("resample_labels", False))
        out.sources = [config.resolve(p) for p in _as_list(d.get("sources"))]
        for item in _as_list(d.get("real_test")):
            if not isinstance(item, dict) or "image" not in item or "labels" not in item:
                raise InputError("each [[data.real_test]] entry needs image = PATH and labels = PATH")
            out.real_test.append({"image": config.resolve(item["image"]), "labels": config.resolve(item["labels"]),
                                  "name": str(item.get("name") or _stem(item["image"]))})
        if not (out.synthetic or out.sources):
            raise InputError("the config names no training data: set data.sources or data.synthetic")
        return out

    @property
    def working_spacing(self) -> tuple[float | None, float, float]:
        s = self.spacing_mm
        return (None, s, s) if self.dims == 2 else (s, s, s)

    @property
    def patch(self) -> tuple[int, int, int]:
        patch = tuple(int(p) for p in self.extra.get("patch", (32, 64, 64)))
        if len(patch) != 3 or any(p < 8 or p % 8 for p in patch):
            raise InputError(f"key 'patch' should be three sizes, multiples of 8, not {patch!r}")
        return patch

    @property
    def slice_size(self) -> int:
        size = int(self.extra.get("slice_size", 128))
        if size < 32 or size % 16:
            raise InputError(f"key 'slice_size' should be a multiple of 16, at least 32, not {size}")
        return size

    def groups(self) -> list[dict]:
        """The card's output groups: name, trained ids, the id painted (its own id, or 100 + channel)."""
        out = []
        for channel, (name, ids) in enumerate(self.target.groups):
            label_id = ids[0] if ids is not None and len(ids) == 1 else 100 + channel
            group = {"name": name, "ids": None if ids is None else list(ids), "label_id": int(label_id)}
            out.append({**group, **self.clean_up()})
        return out

    def clean_up(self) -> dict:
        """``[extra] drop_islands`` / ``fill_holes`` / ``grow``, checked: what segment_volume does to each group's mask."""
        out = {}
        islands = self.extra.get("drop_islands")
        if islands is not None:
            if isinstance(islands, bool) or not isinstance(islands, (int, float)) or not 0 < islands <= 1:
                raise InputError(f"key 'drop_islands' should be a fraction of the largest piece, above 0 and at "
                                 f"most 1 (e.g. 0.1), not {islands!r}")
            out["drop_islands"] = float(islands)
        fill = self.extra.get("fill_holes")
        if fill is not None:
            if not isinstance(fill, bool):
                raise InputError(f"key 'fill_holes' should be true or false, not {fill!r}")
            out["fill_holes"] = fill
        grow = self.extra.get("grow")
        if grow is not None:
            out["grow"] = _checked_grow(grow)
        return out

    def settings(self):
        from ctviewer.workflows.segmentation.segment import SegSettings

        return SegSettings(dims=self.dims, window=self.window, spacing_mm=self.working_spacing,
                           patch=self.patch, multiple=16 if self.dims == 2 else 2 ** (self._depth() - 1),
                           groups=self.groups(), threshold=0.5)

    def _depth(self) -> int:
        return int(self.extra.get("depth", 4))


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# -- cases -------------------------------------------------------------------------------------------

def synthetic_case(seed: int):
    """A synthetic torso (abdomen or whole trunk, coarse 3 mm grid) as a training Case."""
    from ctviewer.synth import TorsoParams, make_torso
    from ctviewer.workflows.segmentation.cases import Case

    rng = np.random.default_rng([seed, 0x5E6])
    params = TorsoParams.random(seed, matrix=(144, 144), pixel_spacing=float(rng.uniform(2.6, 3.2)),
                                slice_spacing=3.0, slice_thickness=3.0,
                                field_of_view="abdomen" if rng.random() < 0.7 else "both")
    torso = make_torso(params)
    return Case(case_id=f"synthetic-{seed}", image=torso.image, labels=torso.labels.volume.array,
                source=f"ctviewer.synth seed {seed}")


def load_cases(data: SegData, progress=None, cancel=None) -> list:
    """Every training case: found sources first, then the synthetic torsos."""
    from ctviewer.workflows.segmentation.cases import find_cases

    progress = progress or no_progress
    refs = [ref for source in data.sources for ref in find_cases(source)]
    total = len(refs) + data.synthetic
    cases = []
    for i, ref in enumerate(refs):
        progress(i / max(total, 1), f"reading {ref.case_id}")
        cases.append(ref.load(resample_labels=data.resample_labels, cancel=cancel))
    for seed in range(data.synthetic):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress((len(refs) + seed) / max(total, 1), f"making synthetic torso {seed + 1}/{data.synthetic}")
        cases.append(synthetic_case(seed))
    return cases


# -- samples -----------------------------------------------------------------------------------------

def _centre(prepared, rng, foreground_fraction: float):
    """A voxel to centre a sample on: inside the target with probability ``foreground_fraction``."""
    inside = prepared.masks.any(axis=-1)
    if rng.random() < foreground_fraction and inside.any():
        where = np.argwhere(inside[:: 2, :: 2, :: 2]) * 2   # subsampled: fast and still unbiased enough
        return tuple(int(v) for v in where[int(rng.integers(len(where)))])
    return tuple(int(rng.integers(n)) for n in prepared.image.shape)


def _crop(array, centre, size, fill=0.0):
    """``size`` box around ``centre`` (padded with ``fill`` where it leaves the array)."""
    out = np.full(tuple(size) + array.shape[len(size):], fill, dtype=array.dtype)
    src, dst = [], []
    for c, s, n in zip(centre, size, array.shape):
        start = c - s // 2
        a, b = max(start, 0), min(start + s, n)
        src.append(slice(a, b))
        dst.append(slice(a - start, b - start))
    out[tuple(dst)] = array[tuple(src)]
    return out


def make_sample(prepared, dims: int, size, rng, foreground_fraction: float):
    """One (image, masks) pair: a 2-D slice crop or a 3-D patch."""
    centre = _centre(prepared, rng, foreground_fraction)
    if dims == 2:
        k = centre[0]
        return (_crop(prepared.image[k], centre[1:], size), _crop(prepared.masks[k], centre[1:], size))
    return _crop(prepared.image, centre, size), _crop(prepared.masks, centre, size)


def _batches(prepared, dims, size, batch_size, steps, augment_spec, foreground_fraction, seed):
    """Random (augmented) samples of random training studies, new every epoch."""
    from ctviewer.ml.augmentation import augment_pair
    from ctviewer.ml.datasets import sample_batches

    def make_pair(rng, i):
        case = prepared[int(rng.integers(len(prepared)))]
        image, masks = make_sample(case, dims, size, rng, foreground_fraction)
        if augment_spec is not None:
            image, masks = augment_pair(image, masks, rng, augment_spec, spatial_dims=dims)
        return image[..., None].astype(np.float32), masks.astype(np.float32)

    batches = sample_batches(make_pair, batch_size, steps, seed)
    batches.memory_hint = memory_hint(dims, size)  # what fit's out-of-memory message suggests shrinking
    return batches


def memory_hint(dims, size) -> str:
    """The config setting that sets a sample's size, in the config's words (for out-of-memory advice)."""
    if dims == 2:
        return f"smaller slices ([extra] slice_size, now {size[-1]})"
    return f"smaller patches ([extra] patch, now {list(size)})"


def _validation_arrays(prepared, dims, size, count, foreground_fraction, seed):
    rng = np.random.default_rng([seed, 0xFA1])
    try:
        pairs = [make_sample(prepared[i % len(prepared)], dims, size, rng, foreground_fraction)
                 for i in range(count)]
        return (np.stack([p[0][..., None] for p in pairs]).astype(np.float32),
                np.stack([p[1] for p in pairs]).astype(np.float32))
    except MemoryError as exc:  # all validation samples are held at once: fewer or smaller ones fit
        raise InputError(f"out of memory making {count} validation samples; try fewer ([extra] val_samples) "
                         f"or {memory_hint(dims, size)}") from exc


# -- the task's four functions -------------------------------------------------------------------

def _build(config, dims):
    from ctviewer.ml.unet import build_unet_2d, build_unet_3d

    data = SegData.from_config(config, dims)
    x, n = data.extra, len(data.target.groups)
    if dims == 2:
        return build_unet_2d(n_outputs=n, filters=tuple(x.get("filters", (16, 32, 64, 128, 256))),
                             activation=str(x.get("activation", "relu")), dropout=float(x.get("dropout", 0.1)),
                             loss=str(x.get("loss", "dice")), learning_rate=config.learning_rate)
    return build_unet_3d(n_outputs=n, base_filters=int(x.get("base_filters", 16)), depth=data._depth(),
                         dropout=float(x.get("dropout", 0.1)), loss=str(x.get("loss", "dice")),
                         learning_rate=config.learning_rate)


def _load_data(config, dims, progress=None, cancel=None):
    from ctviewer.ml.augmentation import AugmentSpec
    from ctviewer.ml.datasets import split_by_study
    from ctviewer.workflows.segmentation.prepare import prepare

    progress = progress or no_progress
    data = SegData.from_config(config, dims)
    cases = load_cases(data, progress=lambda f, m="": progress(0.8 * f, m), cancel=cancel)
    data.target.check(cases)
    train_ids, val_ids = split_by_study([c.case_id for c in cases], config.validation_fraction, config.seed)
    progress(0.8, "resampling to the working spacing")
    prepared = {c.case_id: prepare(c, data.target, data.window, data.working_spacing) for c in cases}
    del cases
    size = (data.slice_size,) * 2 if dims == 2 else data.patch
    fg = float(data.extra.get("foreground_fraction", 0.7))
    steps = max(1, int(data.extra.get("samples_per_epoch", 256 if dims == 2 else 64)) // config.batch_size)
    spec = AugmentSpec.from_dict(data.extra.get("augment")) if config.augmentation else None
    train = _batches([prepared[i] for i in train_ids], dims, size, config.batch_size, steps, spec, fg, config.seed)
    val_count = int(data.extra.get("val_samples", 64 if dims == 2 else 16))
    val = _validation_arrays([prepared[i] for i in val_ids], dims, size, val_count, fg, config.seed)
    where = ", ".join(str(s) for s in data.sources) or "no files"
    description = (f"{len(train_ids)} training and {len(val_ids)} validation studies ({where}; "
                   f"{data.synthetic} synthetic torsos); target {data.target.text()}, window "
                   f"{data.window[0]:g}..{data.window[1]:g} HU, {data.spacing_mm:g} mm")
    return train, val, {"description": description, "train_studies": len(train_ids), "val_studies": len(val_ids),
                        "train_samples": train.num_samples, "val_samples": val_count}


def _evaluate(model, config, dims, info, progress=None, cancel=None):
    """Dice / Jaccard per study: held-out synthetic torsos and each real scan, on the scan's grid."""
    from ctviewer.workflows.segmentation.metrics import case_scores, summary
    from ctviewer.workflows.segmentation.segment import keras_predict_fn, segment_volume

    progress = progress or no_progress
    data = SegData.from_config(config, dims)
    settings, predict = data.settings(), keras_predict_fn(model)
    metrics: dict = {}
    jobs = [("synthetic_test", seed) for seed in range(data.test_seed_start, data.test_seed_start + data.synthetic_test)]
    # real scans absent here (a user's clone has no shared data) are left out of the card, not an error
    jobs += [(f"real_ct:{item['name']}", item) for item in data.real_test if Path(item["image"]).exists()]
    rows_by_set: dict[str, list] = {}
    for i, (name, job) in enumerate(jobs):
        progress(i / max(len(jobs), 1), f"scoring {name}")
        if isinstance(job, int):
            case = synthetic_case(job)
        else:
            case = _real_case(job)
        result = segment_volume(case.image, predict, settings, cancel=cancel)
        rows_by_set.setdefault(name, []).extend(case_scores(case.case_id, result.labels, case.labels, settings.groups))
    for name, rows in rows_by_set.items():
        metrics[name] = {group: {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}
                         for group, stats in summary(rows).items()}
    return metrics


def _real_case(item: dict):
    from ctviewer.io import read_volume
    from ctviewer.workflows.segmentation.cases import case_from_study

    image, labels = read_volume(item["image"]), read_volume(item["labels"])
    return case_from_study(_stem(item["image"]), image, labels)


def _stem(path) -> str:
    name = Path(path).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _card_fields(config, dims, info):
    data = SegData.from_config(config, dims)
    settings = data.settings()
    inputs = {"kind": "volume", "dims": dims, "window_hu": list(data.window),
              "spacing_mm": list(settings.spacing_mm), "multiple": settings.multiple, "channels": 1}
    if dims == 2:
        inputs["slice_size_trained"] = data.slice_size
    else:
        inputs["patch"] = list(data.patch)
    what = ", ".join(g["name"] for g in settings.groups)
    return {"description": f"{'2-D slice' if dims == 2 else '3-D patch'} U-Net segmenting {what} in CT",
            "inputs": inputs, "outputs": {"groups": settings.groups, "threshold": settings.threshold}}


def _spec(dims: int) -> TaskSpec:
    return TaskSpec(
        name=f"segmentation_{dims}d",
        description=f"{dims}-D U-Net segmentation of CT (liver, vertebrae, any labels)",
        build_model=lambda config: _build(config, dims),
        load_data=lambda config, progress=None, cancel=None: _load_data(config, dims, progress, cancel),
        evaluate=lambda model, config, info, progress=None, cancel=None: _evaluate(model, config, dims, info,
                                                                                  progress, cancel),
        card_fields=lambda config, info: _card_fields(config, dims, info))


TASK_2D = _spec(2)
TASK_3D = _spec(3)


def _checked_grow(grow) -> dict:
    """``grow = { mm = 6, low = 100 }`` (a fixed HU band) or ``{ mm = 3, band_sd = 2 }`` (the mask's own)."""
    example = "e.g. { mm = 6, low = 100 } or { mm = 3, band_sd = 2 }"
    if not isinstance(grow, dict) or set(grow) - {"mm", "low", "high", "band_sd"}:
        raise InputError(f"key 'grow' should be a table with mm and low/high or band_sd ({example}), not {grow!r}")
    numbers = dict(grow)
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"key 'grow.{key}' should be a number ({example}), not {value!r}")
    if not 0 < numbers.get("mm", 0) <= 20:
        raise InputError(f"key 'grow.mm' should be a distance above 0 and at most 20 mm ({example})")
    has_band = "band_sd" in numbers
    if has_band == ("low" in numbers or "high" in numbers):
        raise InputError(f"key 'grow' needs either a fixed band (low and/or high HU) or band_sd, not both "
                         f"or neither ({example})")
    if has_band and numbers["band_sd"] <= 0:
        raise InputError(f"key 'grow.band_sd' should be above 0 ({example})")
    return {k: float(v) for k, v in numbers.items()}

"""The ``soil_fraction`` training task: a VGG16-style regressor (``ctviewer.ml.vgg16``) on soil CT slices.

Each sample is one slice of a cube, as three channels made from the cube's density objects (six
equal-width bins of its values, the maximum included, as ``objects.density_objects``): channel k holds
the slice's voxels whose object is in group k (default the seed's: objects 1-2, 3-4, 5-6, which are its
three equal-width bins), at 0.5 + 0.5 x the voxel's place within the group's value range, and 0 where
the voxel is in another group. So a channel says both "in this group" and how dense, also for pores,
whose values are near 0 (the seed scaled raw values, so pores were black like the voxels left out; and
its channel 1 was the whole slice). The target is the seed's: 1 - the fraction of the slice's voxels
in the chosen object (object 5 means objects 5 and 6 together).

A config's ``[data]`` table:

    sources = ["cube.npy"]     # cube files (.npy with JSON sidecar, .nii/.nii.gz, ...), read as stored
    synthetic = 4              # and/or this many synthetic cubes (ctviewer.synth.soil, seeds 0..N-1)
    synthetic_shape = [200, 200, 200]
    object = 1                 # 1..5 (5 = objects 5 and 6)
    channels = [[1, 2], [3, 4], [5, 6]]
    size = 200                 # slice size: larger slices are cropped (randomly in training), smaller padded
    block = 20                 # slices per slab block
    gap = 2                    # slices dropped on each side of a block next to a block of another set
    test_fraction = 0.2        # blocks held out for the card's figures (validation: validation_fraction)

and ``[extra]``: ``base_filters``, ``dense``, ``dropout``, ``samples_per_epoch``, ``val_samples``,
``output_start`` (the fraction the untrained model predicts; see ctviewer.ml.vgg16).

Training, validation and test slices come from contiguous slab blocks along axis 0, never random
slices: neighbouring slices are near-copies, so a random split would test on slices seen in training.
Augmentation: flips and 90° turns (they keep the fraction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.ml.tasks import TaskSpec
from ctviewer.progress import no_progress
from ctviewer.workflows.soil.objects import seed_fraction_target

N_OBJECTS = 6                                  # the seed's six density objects
DEFAULT_CHANNELS = ((1, 2), (3, 4), (5, 6))    # the seed's three equal-width bins
SLICE_SIZE = 200
DATA_KEYS = {"sources", "synthetic", "synthetic_shape", "object", "channels", "size", "block", "gap",
             "test_fraction"}
EXTRA_KEYS = {"base_filters", "dense", "dropout", "samples_per_epoch", "val_samples", "output_start"}
#: Per-slice predictions the card keeps (evenly spread over the test slices).
CARD_EXAMPLES = 12


def object_group(obj: int) -> tuple[int, ...]:
    """The object ids a target counts: object 5 is objects 5 and 6 together (the seed's choice)."""
    if isinstance(obj, bool) or not isinstance(obj, int) or not 1 <= obj <= 5:
        raise InputError(f"the object should be 1, 2, 3, 4 or 5 (5 = objects 5 and 6), not {obj!r}")
    return (5, 6) if obj == 5 else (obj,)


def check_channels(channels) -> tuple[tuple[int, ...], ...]:
    """Three groups of object ids (1..6), no id in two groups."""
    try:
        groups = tuple(tuple(sorted(int(i) for i in g)) for g in channels)
    except (TypeError, ValueError):
        groups = ()
    flat = [i for g in groups for i in g]
    if len(groups) != 3 or not all(groups) or not all(1 <= i <= N_OBJECTS for i in flat) or len(set(flat)) < len(flat):
        raise InputError(f"channels should be three groups of object ids 1..{N_OBJECTS}, no id twice "
                         f"(like [[1, 2], [3, 4], [5, 6]]), not {channels!r}")
    return groups


def value_range(values: np.ndarray) -> tuple[float, float]:
    """The cube's lowest and highest value: the span of its six equal-width bins."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    if not hi > lo:
        raise InputError(f"all voxels have the value {lo:g}: the density bins are degenerate")
    return lo, hi


def object_ids(values: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Object ids 1..6 (uint8) of a slice or cube: equal-width bins of ``span``, as density_objects."""
    from ctviewer.imaging.bins import equal_width_bins

    return equal_width_bins(values, N_OBJECTS, value_range=span)


def slice_channels(values: np.ndarray, ids: np.ndarray, span, channels=DEFAULT_CHANNELS) -> np.ndarray:
    """The network's input for one slice ``[y, x]``: float32 ``[y, x, 3]`` (see the module docstring)."""
    lo, hi = span
    width = (hi - lo) / N_OBJECTS
    out = np.zeros(values.shape + (3,), dtype=np.float32)
    for k, group in enumerate(check_channels(channels)):
        start, stop = lo + width * (min(group) - 1), lo + width * max(group)
        inside = np.isin(ids, group)
        place = np.clip((values[inside].astype(np.float32) - start) / np.float32(stop - start), 0, 1)
        out[..., k][inside] = 0.5 + 0.5 * place
    return out


@dataclass
class SoilData:
    """The ``[data]`` and ``[extra]`` settings of a soil_fraction config, checked."""

    sources: list[Path] = field(default_factory=list)
    synthetic: int = 0
    synthetic_shape: tuple | None = None
    object: int = 1
    channels: tuple = DEFAULT_CHANNELS
    size: int = SLICE_SIZE
    block: int = 20
    gap: int = 2
    test_fraction: float = 0.2
    base_filters: int = 64
    dense: int = 256
    dropout: float = 0.5
    output_start: float = 0.5
    samples_per_epoch: int = 0        # 0: one pass over the training slices
    val_samples: int = 64

    @classmethod
    def from_config(cls, config) -> "SoilData":
        d, x = dict(config.data), dict(config.extra)
        config.check_keys(DATA_KEYS, EXTRA_KEYS)
        sources = d.get("sources", [])
        out = cls(sources=[config.resolve(p) for p in (sources if isinstance(sources, list) else [sources])])
        for key, low in (("synthetic", 0), ("size", 32), ("block", 1), ("gap", 0), ("base_filters", 1),
                         ("dense", 1), ("samples_per_epoch", 0), ("val_samples", 1)):
            value = {**d, **x}.get(key, getattr(out, key))
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"key '{key}' should be a whole number, at least {low}, not {value!r}")
            setattr(out, key, value)
        if not out.sources and not out.synthetic:
            raise InputError("the config names no cubes: set data.sources (cube files) or data.synthetic (a count)")
        if d.get("synthetic_shape") is not None:
            shape = d["synthetic_shape"]
            if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
                raise InputError(f"key 'synthetic_shape' should be [z, y, x], not {shape!r}")
            out.synthetic_shape = tuple(shape)
        out.object = d.get("object", 1)
        object_group(out.object)
        out.channels = check_channels(d.get("channels", DEFAULT_CHANNELS))
        out.test_fraction = float(d.get("test_fraction", out.test_fraction))
        out.dropout = float(x.get("dropout", out.dropout))
        out.output_start = float(x.get("output_start", out.output_start))
        if not 0 <= out.test_fraction < 1:
            raise InputError(f"key 'test_fraction' should be 0 or more and below 1, not {out.test_fraction}")
        return out


# -- cubes and their split ------------------------------------------------------------------------------

@dataclass
class Cube:
    name: str
    values: np.ndarray          # [z, y, x] as stored (int16 on the seed's 0..4096 scale)
    ids: np.ndarray             # [z, y, x] uint8 object ids 1..6
    span: tuple[float, float]   # the value range the bins divide


def read_cubes(data: SoilData, progress=None, cancel=None) -> list[Cube]:
    """The configured cube files, then the synthetic cubes, with their object ids."""
    from ctviewer.io.registry import read_volume

    progress = progress or no_progress
    total = len(data.sources) + data.synthetic
    cubes = []
    for i, path in enumerate(data.sources):
        progress(i / total, f"reading {Path(path).name}")
        volume = read_volume(path, canonical=False, cancel=cancel)   # slice 0 = the stack's first slice
        if volume.is_rgb:
            raise InputError("is a colour image, not a CT cube", path)
        cubes.append(_cube(Path(path).name, volume))
    if data.synthetic:
        from ctviewer.synth.soil import SoilParams, make_soil_cube

        for seed in range(data.synthetic):
            if cancel is not None:
                cancel.raise_if_cancelled()
            progress((len(data.sources) + seed) / total, f"making synthetic cube {seed + 1}/{data.synthetic}")
            params = SoilParams(seed=seed) if data.synthetic_shape is None else SoilParams(
                seed=seed, shape=data.synthetic_shape)
            cubes.append(_cube(f"synthetic-{seed}", make_soil_cube(params, cancel=cancel).image))
    progress(1.0, "cubes ready")
    return cubes


def _cube(name: str, volume) -> Cube:
    from ctviewer.workflows.soil.objects import density_objects

    return Cube(name, volume.array, density_objects(volume).array, value_range(volume.array))


def slab_blocks(n_slices: int, block: int, gap: int, validation_fraction: float, test_fraction: float,
                seed: int = 0) -> dict[str, list[range]]:
    """Contiguous runs of slices for "train", "validation" and "test".

    Axis 0 is cut into blocks of ``block`` slices; whole blocks go to each set (chosen at random,
    reproducibly for ``seed``), and ``gap`` slices are dropped on each side of a block that borders a
    block of another set, so no test slice has a training slice for a near neighbour.
    """
    n_blocks = math.ceil(n_slices / block)
    n_val = max(1, round(validation_fraction * n_blocks))
    n_test = max(1, round(test_fraction * n_blocks)) if test_fraction > 0 else 0
    if n_blocks < n_val + n_test + 1:
        raise InputError(f"a cube of {n_slices} slices makes {n_blocks} blocks of {block}: too few for "
                         f"{n_val} validation, {n_test} test and at least one training block (use a smaller block)")
    order = np.random.default_rng(seed).permutation(n_blocks)
    role = np.array(["train"] * n_blocks, dtype=object)
    role[order[:n_val]] = "validation"
    role[order[n_val:n_val + n_test]] = "test"
    sets = {"train": [], "validation": [], "test": []}
    for b in range(n_blocks):
        start, stop = b * block, min((b + 1) * block, n_slices)
        if b > 0 and role[b - 1] != role[b]:
            start += gap
        if b < n_blocks - 1 and role[b + 1] != role[b]:
            stop -= gap
        if stop > start:
            sets[role[b]].append(range(start, stop))
    return sets


def split_cubes(cubes: list[Cube], data: SoilData, validation_fraction: float, seed: int):
    """{"train"|"validation"|"test": [(cube index, slice), ...]}, each cube split on its own."""
    sets = {"train": [], "validation": [], "test": []}
    for c, cube in enumerate(cubes):
        for name, runs in slab_blocks(cube.values.shape[0], data.block, data.gap, validation_fraction,
                                      data.test_fraction, seed + c).items():
            sets[name] += [(c, z) for run in runs for z in run]
    return sets


def sample(cube: Cube, z: int, data: SoilData, rng=None, augment: bool = False):
    """(input [size, size, 3] float32, target float32) for slice ``z``: a window of ``size`` (random with
    ``rng``, else centred), zero-padded where the slice is smaller; the target counts real voxels only."""
    size = data.size
    values, ids = cube.values[z], cube.ids[z]
    starts = [int(rng.integers(n - size + 1)) if rng is not None and n > size else max(0, (n - size) // 2)
              for n in values.shape]
    window = tuple(slice(s, s + size) for s in starts)
    values, ids = values[window], ids[window]
    x = slice_channels(values, ids, cube.span, data.channels)
    target = 1.0 - seed_fraction_target(ids, data.object)
    pad = [(0, size - values.shape[0]), (0, size - values.shape[1]), (0, 0)]
    if pad[0][1] or pad[1][1]:
        x = np.pad(x, pad)
    if augment:
        x = np.rot90(x, int(rng.integers(4)))
        if rng.random() < 0.5:
            x = x[:, ::-1]
    return np.ascontiguousarray(x), np.float32(target)


def _arrays(cubes, picks, data: SoilData):
    pairs = [sample(cubes[c], z, data) for c, z in picks]
    return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=np.float32)


def _spread(picks: list, count: int) -> list:
    """At most ``count`` picks, evenly spread (a validation set that sees every block)."""
    if len(picks) <= count:
        return picks
    return [picks[int(i)] for i in np.linspace(0, len(picks) - 1, count).round()]


# -- the task's four functions ------------------------------------------------------------------------

def build(config):
    from ctviewer.ml.vgg16 import build_vgg16_regressor

    data = SoilData.from_config(config)
    return build_vgg16_regressor((data.size, data.size, 3), base_filters=data.base_filters, dense=data.dense,
                                 dropout=data.dropout, learning_rate=config.learning_rate,
                                 output_start=data.output_start)


def load_data(config, progress=None, cancel=None):
    from ctviewer.ml.datasets import sample_batches

    data = SoilData.from_config(config)
    cubes = read_cubes(data, progress, cancel)
    sets = split_cubes(cubes, data, config.validation_fraction, config.seed)
    train = sets["train"]
    augment = bool(config.augmentation)

    def make_pair(rng, i):
        c, z = train[int(rng.integers(len(train)))]
        return sample(cubes[c], z, data, rng, augment)

    steps = max(1, (data.samples_per_epoch or len(train)) // config.batch_size)
    batches = sample_batches(make_pair, config.batch_size, steps, config.seed)
    batches.memory_hint = f"smaller slices ([data] size, now {data.size})"
    val = _arrays(cubes, _spread(sets["validation"], data.val_samples), data)
    names = ", ".join(c.name for c in cubes)
    description = (f"{len(cubes)} cube(s) ({names}) split by slab blocks of {data.block} slices: "
                   f"{len(train)} training, {len(sets['validation'])} validation and {len(sets['test'])} test "
                   f"slices; object {data.object}, {data.size}x{data.size} slices")
    # the cubes and their split go to evaluate() too: making a synthetic cube costs seconds, and the
    # training batches keep the cubes in memory until then anyway
    return batches, val, {"description": description, "train_samples": batches.num_samples,
                          "val_samples": len(val[1]), "train_studies": len(cubes), "val_studies": len(cubes),
                          "cubes_and_sets": (cubes, sets)}


def evaluate(model, config, info, progress=None, cancel=None):
    """MSE, MAE and R² on the test blocks' slices (centred windows), and a few slices' predictions.

    Without test blocks (test_fraction = 0) the validation slices are scored, under a name that says so.
    """
    progress = progress or no_progress
    data = SoilData.from_config(config)
    held = (info or {}).get("cubes_and_sets")
    if held is not None:
        cubes, sets = held
    else:
        cubes = read_cubes(data, cancel=cancel)
        sets = split_cubes(cubes, data, config.validation_fraction, config.seed)
    picks, dataset = (sets["test"], "test_slices") if sets["test"] else (sets["validation"], "validation_slices")
    truth, predicted = [], []
    for start in range(0, len(picks), 32):
        if cancel is not None:
            cancel.raise_if_cancelled()
        x, y = _arrays(cubes, picks[start:start + 32], data)
        predicted.append(np.asarray(model.predict_on_batch(x)).reshape(-1))
        truth.append(y)
        progress(min(1.0, (start + 32) / len(picks)), f"scoring {dataset.replace('_', ' ')}")
    truth, predicted = np.concatenate(truth).astype(np.float64), np.concatenate(predicted).astype(np.float64)
    error = predicted - truth
    spread = float(np.sum((truth - truth.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error ** 2)) / spread if spread > 0 else None
    examples = [{"cube": cubes[picks[i][0]].name, "slice": picks[i][1], "truth": round(float(truth[i]), 4),
                 "predicted": round(float(predicted[i]), 4)} for i in _spread(list(range(len(picks))), CARD_EXAMPLES)]
    return {dataset: {"mse": round(float(np.mean(error ** 2)), 6), "mae": round(float(np.mean(np.abs(error))), 5),
                      "r2": None if r2 is None else round(r2, 4), "slices": len(picks)},
            "examples": {"slices": examples}}


def card_fields(config, info):
    data = SoilData.from_config(config)
    group = object_group(data.object)
    what = " and ".join(f"object {i}" for i in group)
    inputs = {"kind": "soil_slices", "size": data.size, "channels": [list(g) for g in data.channels],
              "objects": N_OBJECTS, "bins": "equal-width over the cube's value range, the maximum included",
              "value_in_channel": "0.5 + 0.5 x place within the group's value range; 0 outside the group",
              # what the GUI's layer chooser lists without loading the model (Keras lives in a child process)
              "conv_layers": _conv_layer_names()}
    return {"description": f"VGG16-style regressor (base {data.base_filters} filters): 1 - the fraction of a "
                           f"soil CT slice's voxels in {what}",
            "inputs": inputs, "outputs": {"object": data.object, "object_ids": list(group),
                                          "value": f"1 - fraction of the slice's voxels in {what}"}}


TASK = TaskSpec(name="soil_fraction",
                description="VGG16-style regression of an object's fraction per soil CT slice (the seed's target)",
                build_model=build, load_data=load_data, evaluate=evaluate, card_fields=card_fields)


def _conv_layer_names() -> list[str]:
    from ctviewer.ml.vgg16 import conv_layer_names

    return conv_layer_names()

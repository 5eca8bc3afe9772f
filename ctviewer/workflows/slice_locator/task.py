"""The slice-locator training task: what ``ctviewer train`` and the GUI's Train… run for "slice_locator".

A config's ``[data]`` table says where the scans come from (all optional, at least one source):

    synthetic = 400            # synthetic scans for training + validation (seeds 0..N-1)
    synthetic_test = 60        # held-out synthetic scans (seeds from test_seed_start), never trained on
    cache_dir = "..."          # where rendered projections are kept (default: the user cache)
    thesis_npz = ["a.npz"]     # the thesis's MIP archives (see dataset.read_thesis_npz)
    picks_csv = ["picks.csv"]  # reviewed studies (accepted / corrected rows)
    real_test = [{image = "ct.nii.gz", labels = "labels.nii.gz"}, {image = "chest.nii.gz", absent = ["L3"]}]

and ``[extra]`` the model and sampling knobs (levels, width_px, crop_rows, base_filters,
samples_per_epoch, sigma_mm). Validation is split by study; the threshold under which a level is
"not in scan" is chosen on the validation scans; the card's metrics are measured on the held-out
synthetic scans and on the real CT listed in ``real_test``.

Keras is imported only inside the functions, so importing this module (to read TASK) stays light.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.ml.tasks import TaskSpec
from ctviewer.progress import no_progress
from ctviewer.workflows.slice_locator import dataset
from ctviewer.workflows.slice_locator.picks import KNOWN_LEVELS

TEST_SEED_START = 1_000_000


@dataclass
class LocatorData:
    """The ``[data]`` and ``[extra]`` settings of a slice-locator config, checked."""

    levels: tuple[str, ...] = ("L3", "T12")
    synthetic: int = 400
    synthetic_test: int = 60
    test_seed_start: int = TEST_SEED_START
    cache_dir: Path = field(default_factory=dataset.default_cache_dir)
    thesis_npz: list[Path] = field(default_factory=list)
    thesis_allow_pickle: bool = False
    picks_csv: list[Path] = field(default_factory=list)
    real_test: list[dict] = field(default_factory=list)
    workers: int | None = None
    width_px: int = 256
    crop_rows: int = 384
    base_filters: int = 12
    samples_per_epoch: int = 800
    val_windows_per_scan: int = 3
    sigma_mm: float = 4.0

    @classmethod
    def from_config(cls, config) -> "LocatorData":
        d, x = dict(config.data), dict(config.extra)
        known_data = {"synthetic", "synthetic_test", "test_seed_start", "cache_dir", "thesis_npz",
                      "thesis_allow_pickle", "picks_csv", "real_test", "workers"}
        known_extra = {"levels", "width_px", "crop_rows", "base_filters", "samples_per_epoch",
                       "val_windows_per_scan", "sigma_mm"}
        config.check_keys(known_data, known_extra)
        out = cls()
        for key in ("synthetic", "synthetic_test", "test_seed_start", "workers", "width_px", "crop_rows",
                    "base_filters", "samples_per_epoch", "val_windows_per_scan"):
            value = d.get(key, x.get(key))
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InputError(f"key '{key}' should be a whole number, 0 or more, not {value!r}")
                setattr(out, key, value)
        if "sigma_mm" in x:
            out.sigma_mm = float(x["sigma_mm"])
        if "levels" in x:
            out.levels = tuple(str(lv) for lv in x["levels"])
            bad = [lv for lv in out.levels if lv not in KNOWN_LEVELS]   # each has a TotalSegmentator id
            if bad or not out.levels:
                raise InputError(f"key 'levels' should list vertebral levels such as L3, T12, not {x['levels']!r}")
        if out.crop_rows % 16 or out.crop_rows < 64:
            raise InputError(f"key 'crop_rows' should be a multiple of 16, at least 64, not {out.crop_rows}")
        if d.get("cache_dir"):
            out.cache_dir = config.resolve(d["cache_dir"])
        out.thesis_npz = [config.resolve(p) for p in _as_list(d.get("thesis_npz"))]
        out.thesis_allow_pickle = bool(d.get("thesis_allow_pickle", False))
        out.picks_csv = [config.resolve(p) for p in _as_list(d.get("picks_csv"))]
        for item in _as_list(d.get("real_test")):
            if not isinstance(item, dict) or "image" not in item:
                raise InputError("each [[data.real_test]] entry needs image = PATH (and labels = PATH or absent = [...])")
            entry = dict(item, image=config.resolve(item["image"]))
            if item.get("labels"):
                entry["labels"] = config.resolve(item["labels"])
            out.real_test.append(entry)
        if not (out.synthetic or out.thesis_npz or out.picks_csv):
            raise InputError("the config names no training data: set data.synthetic, data.thesis_npz or data.picks_csv")
        return out

    def train_seeds(self) -> range:
        return range(self.synthetic)

    def test_seeds(self) -> range:
        return range(self.test_seed_start, self.test_seed_start + self.synthetic_test)

    def augment_settings(self):
        from ctviewer.workflows.slice_locator.augment import AugmentSettings

        return AugmentSettings(crop_rows=self.crop_rows, width_px=self.width_px, sigma_mm=self.sigma_mm)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# -- batches -----------------------------------------------------------------------------------------

def _batches(samples, levels, settings, batch_size, steps, augment, seed):
    """Random augmented windows (training) or a fixed set of plain windows (validation)."""
    from ctviewer.ml.datasets import sample_batches
    from ctviewer.workflows.slice_locator.augment import make_sample

    levels = tuple(levels)

    def make_pair(rng, i):
        sample = samples[int(rng.integers(len(samples)))] if augment else samples[i % len(samples)]
        x, y = make_sample(sample.frontal, sample.sagittal, sample.centre_cols, sample.rows_for(levels), rng,
                           settings, augment=augment)
        y[:, ~sample.known_for(levels)] = np.nan
        return x, y

    return sample_batches(make_pair, batch_size, steps, seed, fresh_each_epoch=augment)


# -- the task's four functions -------------------------------------------------------------------------

def build_model(config):
    from ctviewer.ml.locator import build_locator

    data = LocatorData.from_config(config)
    steps = config.epochs * max(1, data.samples_per_epoch // config.batch_size)
    return build_locator(data.levels, width_px=data.width_px, base_filters=data.base_filters,
                         learning_rate=config.learning_rate, decay_steps=steps)


def load_data(config, progress=None, cancel=None):
    """(training batches, validation batches, info) with every source the config names, split by study."""
    from ctviewer.ml.datasets import split_by_study

    progress = progress or no_progress
    data = LocatorData.from_config(config)
    samples, warnings = [], []
    if data.synthetic:
        samples += dataset.synthetic_samples(data.train_seeds(), data.cache_dir, data.levels, data.workers,
                                             progress=lambda f, m="": progress(0.8 * f, m), cancel=cancel)
    for path in data.thesis_npz:
        samples += dataset.read_thesis_npz(path, data.levels, allow_pickle=data.thesis_allow_pickle)
    for path in data.picks_csv:
        samples += dataset.samples_from_picks(path, data.levels, data.cache_dir, cancel=cancel, warnings=warnings)
    if not samples:
        raise InputError("no training samples: the sources in the config gave no scans")
    train_ids, val_ids = split_by_study([s.study for s in samples], config.validation_fraction, config.seed)
    val_set = set(val_ids)
    train = [s for s in samples if s.study not in val_set]
    val = [s for s in samples if s.study in val_set]
    settings = data.augment_settings()
    batch = config.batch_size
    train_batches = _batches(train, data.levels, settings, batch, max(1, data.samples_per_epoch // batch),
                                     config.augmentation, config.seed)
    val_steps = max(1, math.ceil(len(val) * data.val_windows_per_scan / batch))
    val_batches = _batches(val, data.levels, settings, batch, val_steps, False, config.seed + 1)
    sources = [f"{data.synthetic} synthetic scans" if data.synthetic else ""] + \
              [f"thesis {p.name}" for p in data.thesis_npz] + [f"reviewed studies of {p.name}" for p in data.picks_csv]
    progress(1.0, "")
    info = {
        "description": ", ".join(s for s in sources if s) + f"; windows of {data.crop_rows} mm drawn afresh every epoch",
        "train_samples": train_batches.num_samples, "val_samples": val_batches.num_samples,
        "train_studies": len(train_ids), "val_studies": len(val_ids), "warnings": warnings,
        "val_scans": val, "settings": data,
    }
    return train_batches, val_batches, info


def evaluate(model, config, info, progress=None, cancel=None):
    """Held-out figures for the card; also chooses the "not in scan" threshold on the validation scans."""
    progress = progress or no_progress
    data: LocatorData = info.get("settings") or LocatorData.from_config(config)
    threshold = choose_threshold(model, info.get("val_scans") or [], data)
    info["threshold"] = threshold
    metrics = {"threshold": threshold}
    if data.synthetic_test:
        test = dataset.synthetic_samples(data.test_seeds(), data.cache_dir, data.levels, data.workers,
                                         progress=lambda f, m="": progress(0.5 * f, m), cancel=cancel)
        metrics["synthetic_test"] = measure(model, test, data, threshold)
        by_kind = {seed: dataset.synthetic_kind(seed) for seed in data.test_seeds()}
        chest = [s for s, seed in zip(test, data.test_seeds()) if by_kind[seed] == "chest"]
        if chest:  # chest-only scans: L3 must come out "not in scan", T12 (at their lower edge) found
            metrics["synthetic_test_chest_only"] = measure(model, chest, data, threshold)
    for i, item in enumerate(data.real_test):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(0.5 + 0.5 * i / max(len(data.real_test), 1), "measuring on real CT")
        sample = real_sample(item, data.levels)
        if sample is not None:
            metrics[f"real_ct:{sample.id}"] = measure(model, [sample], data, threshold, per_scan=True)
    progress(1.0, "")
    return metrics


def real_sample(item: dict, levels):
    """A real CT listed in ``real_test``: truth from its labels, or only the levels it lacks."""
    image = Path(item["image"])
    if not image.exists():
        return None  # the team's real data is not in a user's checkout
    if item.get("labels"):
        return dataset.sample_from_labelled_ct(image, item["labels"], levels, name=item.get("name"))
    from ctviewer.io.registry import read_volume
    from ctviewer.workflows.slice_locator.projections import make_projections

    absent = set(item.get("absent", []))
    sample = dataset.from_projections(make_projections(read_volume(image)), {lv: None for lv in levels},
                                      id=item.get("name") or image.name.split(".")[0], study=image.name,
                                      source="real CT")
    sample.known = {lv: lv in absent for lv in levels}
    return sample


# -- held-out figures ------------------------------------------------------------------------------------

def scan_heatmaps(model, sample, data: LocatorData) -> np.ndarray:
    from ctviewer.ml.locator import predict_rows

    return predict_rows(model, sample.frontal, sample.sagittal, sample.centre_cols, data.width_px)


def choose_threshold(model, val_samples, data: LocatorData, windows_rows: int = 160) -> float:
    """The peak value that best separates "in scan" from "not in scan" on the validation scans (whole
    scans and short windows of them, which leave levels out), by balanced accuracy."""
    peaks, present = [], []
    for sample in val_samples:
        rows = sample.rows_for(data.levels)
        known = sample.known_for(data.levels)
        views = [(0, sample.rows)] + [(int(a), int(a) + windows_rows) for a in
                                      np.linspace(0, max(sample.rows - windows_rows, 0), 3)]
        for a, b in views:
            part = dataclasses.replace(sample, frontal=sample.frontal[a:b], sagittal=sample.sagittal[a:b])
            h = scan_heatmaps(model, part, data)
            for i in np.flatnonzero(known):
                peaks.append(float(h[:, i].max()))
                present.append(bool(np.isfinite(rows[i]) and a - 0.5 <= rows[i] <= min(b, sample.rows) - 0.5))
    peaks, present = np.asarray(peaks), np.asarray(present)
    if not present.any() or present.all():
        return 0.3
    candidates = np.linspace(0.02, 0.9, 89)
    score = [0.5 * ((peaks[present] >= t).mean() + (peaks[~present] < t).mean()) for t in candidates]
    best = np.flatnonzero(np.isclose(score, max(score)))
    return round(float(candidates[best].mean()), 3)


def measure(model, samples, data: LocatorData, threshold: float, per_scan: bool = False) -> dict:
    """Errors (mm, slices) where a level is in the scan; "not in scan" correctness where it is not."""
    from ctviewer.ml.locator import find_peak

    out = {}
    for i, level in enumerate(data.levels):
        errors_mm, errors_slices, detected, absent_ok, scans = [], [], [], [], []
        for sample in samples:
            if not sample.known_for(data.levels)[i]:
                continue
            peak = find_peak(scan_heatmaps(model, sample, data)[:, i], threshold, level)
            truth = float(sample.rows_for(data.levels)[i])
            said = {"confidence": round(peak.confidence, 4), "says_in_scan": bool(peak.in_scan),
                    "predicted_z_mm": round(float(sample.top_z_mm - peak.row), 2)}
            if np.isfinite(truth):
                err = abs(peak.row - truth)  # rows are 1 mm
                errors_mm.append(err)
                errors_slices.append(err / sample.slice_spacing_mm)
                detected.append(peak.in_scan)
                said.update(true_z_mm=round(sample.top_z_mm - truth, 2), error_mm=round(err, 2),
                            error_slices=round(err / sample.slice_spacing_mm, 3))
            else:
                absent_ok.append(not peak.in_scan)
                said.update(in_scan=False, not_in_scan_correct=not peak.in_scan)
            scans.append(said)
        if per_scan:
            if scans:
                out[level] = scans[0]
            continue
        figures = {"scans_with_level": len(errors_mm), "scans_without_level": len(absent_ok)}
        if errors_mm:
            e, s = np.asarray(errors_mm), np.asarray(errors_slices)
            figures.update(median_error_mm=round(float(np.median(e)), 2), mean_error_mm=round(float(e.mean()), 2),
                           p90_error_mm=round(float(np.percentile(e, 90)), 2), max_error_mm=round(float(e.max()), 2),
                           median_error_slices=round(float(np.median(s)), 3),
                           mean_error_slices=round(float(s.mean()), 3),
                           within_1_slice=round(float((s <= 1.0).mean()), 3),
                           detection_rate=round(float(np.mean(detected)), 3))
        if absent_ok:
            figures["not_in_scan_correct"] = round(float(np.mean(absent_ok)), 3)
        out[level] = figures
    return out


def card_fields(config, info):
    data: LocatorData = info.get("settings") or LocatorData.from_config(config)
    return {
        "description": "Finds the L3 and T12 vertebral levels in a CT scan from its frontal and sagittal "
                       "bone projections (1-D heatmap over the body's height, one channel per level).",
        "inputs": {"kind": "projections", "channels": ["frontal", "sagittal"], "spacing_mm": 1.0,
                   "window_hu": [100.0, 1500.0], "width_px": data.width_px, "row_multiple": 16,
                   "centred_on": "body_centre_col", "trained_window_rows": data.crop_rows},
        "outputs": {"levels": list(data.levels), "threshold": float(info.get("threshold", 0.3)),
                    "heatmap": "per projection row, 0..1; pick = best row, confidence = its value",
                    "target_sigma_mm": data.sigma_mm},
        "notes": "Trained on synthetic torso CT (ctviewer.synth) unless the data says otherwise; check the "
                 "real-CT metrics before trusting it on a new kind of scan.",
        "extra": {"augmentation": data.augment_settings().as_dict() if config.augmentation else {}},
    }


TASK = TaskSpec(
    name="slice_locator",
    description="L3 / T12 slice locator on frontal + sagittal projections (synthetic, thesis .npz or reviewed "
                "studies)",
    build_model=build_model, load_data=load_data, evaluate=evaluate, card_fields=card_fields,
)

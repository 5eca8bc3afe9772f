"""Measure the shipped models on the team's real data, per scan and per photo (inference only).

The figures the model cards' ``real_data`` sections and models/README.md quote come from this script.
It reads ``../shared/data`` (see its README; never copied into the project) and prints one JSON
object: per thin-section photo, per CT scan, per micro-CT volume. Usage:

    python scripts/measure_real_data.py [--only thin,seg,locator,soil] [--data ../shared/data] [-o out.json]

Nothing is tuned here: the models are run exactly as users run them (the same functions the CLI
verbs call), and every figure is measured against the data's own labels or read-by-eye levels.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Photos of the thin-section set and what the shipped model did with them (its card's split).
THIN_ROLES = {**{n: "trained on" for n in range(1, 7)}, 7: "validation (chose the epoch)",
              8: "held out", 9: "held out"}
#: The ACRIN series' levels as read by eye (../shared/data/README.md): slice index sorted by position,
#: 0 = most inferior; body from / to and centre.
ACRIN_TRUTH = {"L3": (47.5, 55.0, 51.0), "T12": (71.5, 78.5, 75.0)}


def r(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


# -- thin sections ---------------------------------------------------------------------------------

def thin_sections(data: Path) -> dict:
    from ctviewer.workflows.thin_section.metrics import evaluate_folders

    result = evaluate_folders("thin_section_vggunet", data / "thin_sections")
    photos = {}
    for image in result["images"]:
        n = int(image["image"])
        photos[n] = {"role": THIN_ROLES.get(n, "?"), "mean_iou": r(image["mean_iou"]),
                     "pixel_accuracy": r(image["pixel_accuracy"]),
                     "iou": {str(k): r(v) for k, v in image["iou"].items()}}
    return {"photos": dict(sorted(photos.items()))}


# -- segmentation on the real slab ----------------------------------------------------------------

def segmentation(data: Path) -> dict:
    from scipy import ndimage

    from ctviewer.io import read_volume
    from ctviewer.workflows.segmentation.metrics import dice, jaccard
    from ctviewer.workflows.segmentation.segment import segment
    from ctviewer.workflows.segmentation.vertebra_levels import LEVEL_IDS

    image = read_volume(data / "ct" / "abdomen_slab_ct.nii.gz")
    labels = read_volume(data / "ct" / "abdomen_slab_labels.nii.gz").array
    voxel_ml = float(np.prod(image.spacing)) / 1000.0
    out = {"grid": {"shape": list(image.array.shape), "spacing_mm": [r(s, 3) for s in image.spacing]}}

    truth = labels == 5
    pred = segment(image, "liver_unet2d").labels == 5
    z_axis = _z_axis(image)
    per_slice = []
    for k in _head_to_feet(image, z_axis):
        t, p = np.take(truth, k, axis=z_axis), np.take(pred, k, axis=z_axis)
        if t.any() or p.any():
            per_slice.append({"slice": int(k), "truth_ml": r(t.sum() * voxel_ml, 1), "found_ml": r(p.sum() * voxel_ml, 1),
                              "dice": r(dice(p, t), 3) if t.any() else None})
    with_liver = [s for s in per_slice if s["dice"] is not None]
    half = len(with_liver) // 2
    spine = (labels >= 26) & (labels <= 50)
    near_spine = ndimage.binary_dilation(spine, iterations=5)   # 15 mm at 3 mm voxels
    false = pred & ~truth
    out["liver"] = {"dice": r(dice(pred, truth)), "jaccard": r(jaccard(pred, truth)),
                    "truth_ml": r(truth.sum() * voxel_ml, 1), "found_ml": r(pred.sum() * voxel_ml, 1),
                    "dice_upper_half_of_slices": r(_dice_of(with_liver[:half]), 3),
                    "dice_lower_half_of_slices": r(_dice_of(with_liver[half:]), 3),
                    "false_positive_ml": r(false.sum() * voxel_ml, 1),
                    "false_positive_within_15mm_of_spine_ml": r((false & near_spine).sum() * voxel_ml, 1),
                    "missed_ml": r((truth & ~pred).sum() * voxel_ml, 1),
                    "per_slice_head_to_feet": per_slice}

    spine_result = segment(image, "spine_unet3d")
    pred_v = spine_result.labels > 0
    per_level = {}
    for name, lab in sorted(LEVEL_IDS.items(), key=lambda item: item[1]):   # S1 up to C1, as the ids go
        mask = labels == lab
        if mask.any():
            per_level[name] = {"truth_ml": r(mask.sum() * voxel_ml, 1), "found_fraction": r((pred_v & mask).sum() / mask.sum(), 3)}
    false_v = pred_v & ~spine
    ribs = (labels >= 92) & (labels <= 117)
    out["vertebrae"] = {"dice": r(dice(pred_v, spine)), "jaccard": r(jaccard(pred_v, spine)),
                        "truth_ml": r(spine.sum() * voxel_ml, 1), "found_ml": r(pred_v.sum() * voxel_ml, 1),
                        "per_vertebra": per_level, "false_positive_ml": r(false_v.sum() * voxel_ml, 1),
                        "false_positive_on_ribs_ml": r((false_v & ribs).sum() * voxel_ml, 1),
                        "level_labels": spine_result.note or "by level (ids 26-50)"}
    return out


def _z_axis(volume) -> int:
    """The array axis that runs along the patient's height (largest |z| of the direction)."""
    return int(np.argmax(np.abs(np.asarray(volume.direction)[2])))


def _head_to_feet(volume, axis: int):
    n = volume.array.shape[axis]
    z = [float(volume.index_to_lps(np.array([[k if a == axis else 0 for a in range(3)]]))[0, 2]) for k in range(n)]
    return list(np.argsort(z)[::-1])


def _dice_of(rows) -> float | None:
    if not rows:
        return None
    # Dice over the slices together, rebuilt from per-slice sizes: 2|A∩B| = dice × (|A| + |B|).
    inter = sum(s["dice"] * (s["truth_ml"] + s["found_ml"]) / 2 for s in rows)
    total = sum(s["truth_ml"] + s["found_ml"] for s in rows)
    return 2 * inter / total if total else None


# -- the locator and the count ---------------------------------------------------------------------

def locator(data: Path) -> dict:
    from ctviewer.io import read_volume
    from ctviewer.ml.locator import Locator
    from ctviewer.workflows.slice_locator.locate import locate, locate_and_count, read_ct
    from ctviewer.workflows.slice_locator.projections import make_projections

    model = Locator.load()
    out = {}
    scans = {"acrin_001": data / "ct" / "acrin_001_dicom", "abdomen_slab": data / "ct" / "abdomen_slab_ct.nii.gz",
             "chest_ct": data / "ct" / "chest_ct.nii.gz"}
    for name, path in scans.items():
        volume = read_ct(path)
        projections = make_projections(volume)
        started = time.perf_counter()
        alone = locate(volume, model, ("L3", "T12"), exam_id=name, projections=projections)
        picks, notes, count = locate_and_count(volume, model, ("L3", "T12"), exam_id=name, projections=projections)
        seconds = time.perf_counter() - started
        truth = _truth(name, data, volume, projections)
        entry = {"slices": int(len(projections.slice_z_mm)), "slice_spacing_mm": r(projections.slice_spacing_mm, 3),
                 "count": count.summary() if count is not None else "not counted", "seconds_both_runs": r(seconds, 2),
                 "levels": {}}
        for level in ("L3", "T12"):
            net = next(p for p in alone if p.level == level)
            final = next(p for p in picks if p.level == level)
            entry["levels"][level] = {"truth": truth.get(level),
                                      "network": _pick(net, truth.get(level)),
                                      "with_count": {**_pick(final, truth.get(level)), "status": final.status,
                                                     "source": final.source, "note": notes.get(level, "")}}
        out[name] = entry
    return out


def _pick(p, truth) -> dict:
    d = {"in_scan": p.in_scan, "confidence": r(p.confidence), "slice": p.slice_index, "z_mm": r(p.z_mm, 2)}
    if truth and truth.get("z_mm") is not None and p.z_mm is not None:
        d["error_mm"] = r(p.z_mm - truth["z_mm"], 1)
        d["within_body"] = truth["bottom_mm"] <= p.z_mm <= truth["top_mm"]
    return d


def _truth(name: str, data: Path, volume, projections) -> dict:
    z = projections.slice_z_mm
    if name == "acrin_001":
        def at(k: float) -> float:
            k0 = int(np.floor(k))
            return float(z[k0] + (k - k0) * (z[min(k0 + 1, len(z) - 1)] - z[k0]))
        return {lv: {"z_mm": r(at(c), 2), "bottom_mm": r(at(lo), 2), "top_mm": r(at(hi), 2), "slice": c,
                     "from": "read by eye (data README)"} for lv, (lo, hi, c) in ACRIN_TRUTH.items()}
    if name == "abdomen_slab":
        from ctviewer.io import read_volume

        labels = read_volume(data / "ct" / "abdomen_slab_labels.nii.gz")
        out = {}
        for lv, lab in (("L3", 29), ("T12", 32)):
            idx = np.argwhere(labels.array == lab)
            if not len(idx):
                out[lv] = {"z_mm": None, "from": "not in the labels (not in scan)"}
                continue
            zs = labels.index_to_lps(idx)[:, 2]
            out[lv] = {"z_mm": r(np.mean(zs), 2), "bottom_mm": r(zs.min(), 2), "top_mm": r(zs.max(), 2),
                       "from": "TotalSegmentator labels (centroid, extent)"}
        return out
    return {}


# -- soil on real micro-CT -------------------------------------------------------------------------

def soil(data: Path) -> dict:
    from ctviewer.ml.registry import SHIPPED_DIR, load_model
    from ctviewer.ml.training import TrainConfig
    from ctviewer.workflows.soil import task

    config = TrainConfig.from_toml(SHIPPED_DIR / "configs" / "soil_vgg16.toml")
    base = task.SoilData.from_config(config)
    model, _ = load_model(SHIPPED_DIR / "soil_vgg16.keras")
    out = {}
    for name in ("snow.tif", "concrete_x-ray-bin16.tif", "concrete_neutron-bin16.tif"):
        path = data / "microct" / name
        cubes = task.read_cubes(task.SoilData(**{**base.__dict__, "sources": [str(path)], "synthetic": 0}))
        cube = cubes[0]
        picks = [(0, z) for z in range(cube.values.shape[0])]
        x, truth = task._arrays(cubes, picks, base)
        pred = np.concatenate([np.asarray(model.predict_on_batch(x[i:i + 16])).reshape(-1) for i in range(0, len(x), 16)])
        err = pred - truth
        ss = np.sum((truth - truth.mean()) ** 2)
        out[name] = {"slices": int(len(truth)), "truth_mean": r(truth.mean()), "truth_range": [r(truth.min()), r(truth.max())],
                     "predicted_mean": r(pred.mean()), "mae": r(np.abs(err).mean()),
                     "r2": r(1 - np.sum(err ** 2) / ss) if ss > 0 else None}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--only", default="thin,seg,locator,soil")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"measure_real_data: {args.data}: no such folder (the team's real data)", file=sys.stderr)
        return 2
    parts = {"thin": thin_sections, "seg": segmentation, "locator": locator, "soil": soil}
    result = {}
    for key in args.only.split(","):
        started = time.monotonic()
        result[key] = parts[key](args.data)
        print(f"{key}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    text = json.dumps(result, indent=1)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

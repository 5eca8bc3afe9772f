"""Real CT beside synthetic CT, as the slice locator sees them: one PNG to compare by eye.

For each scan: the frontal and the sagittal bone projection the locator reads
(``ctviewer.workflows.slice_locator.projections``, 1 mm per pixel, 100..1500 HU), and the axial slice
at T12 (−200..1200 HU), with T12 and L3 marked where they are known. The real scans are the team's
(``../shared/data``: the ACRIN-FLT-Breast 001 series, the TotalSegmentator slab and chest crop); the
synthetic ones are ``ctviewer.synth`` torsos with the abdomen field of view (T10 to the hips), like
the ACRIN series. It also prints, per scan, the numbers the figure is compared by (field of view,
slice spacing, rib and vertebra brightness, noise). Usage:

    python scripts/compare_projections.py [-o models/figures/projections_real_vs_synthetic.png]
                                          [--seeds 1,2,3] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
#: ACRIN 001's levels read by eye (../shared/data/README.md), slices sorted by position, 0 = lowest.
ACRIN_SLICES = {"T12": 75, "L3": 51}


@dataclass
class Shown:
    """One scan ready to draw: its projections, an axial slice at T12 and the levels' rows."""

    title: str
    frontal: np.ndarray
    sagittal: np.ndarray
    axial: np.ndarray           # HU, [y, x], resampled to 1 mm
    level_rows: dict            # level -> projection row
    numbers: dict


def from_volume(title: str, volume, level_z: dict) -> Shown:
    from ctviewer.imaging.orientation import to_canonical
    from ctviewer.workflows.slice_locator.projections import make_projections

    p = make_projections(volume)
    canon = to_canonical(volume)
    a = canon.array
    z_of = p.slice_z_mm
    rows = {lv: p.z_to_row(z) for lv, z in level_z.items() if z is not None}
    k = p.z_to_slice(level_z["T12"]) if level_z.get("T12") is not None else len(z_of) // 2
    axial = _to_mm(a[k].astype(np.float32), canon.spacing[1], canon.spacing[2])
    return Shown(title, p.frontal, p.sagittal, axial, rows, _numbers(p, canon, a, k))


def _to_mm(image: np.ndarray, row_mm: float, col_mm: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.zoom(image, (row_mm, col_mm), order=1)


def _numbers(p, canon, a: np.ndarray, k: int) -> dict:
    """What differs in numbers: field of view, slices, bone brightness, noise in soft tissue."""
    sy, sx = canon.spacing[1], canon.spacing[2]
    sl = a[k].astype(np.float32)
    soft = (sl > -80) & (sl < 120)
    # noise: spread of the difference of horizontal neighbours inside soft tissue (sd ≈ that / √2)
    diff = (sl[:, 1:] - sl[:, :-1])[soft[:, 1:] & soft[:, :-1]]
    noise = float(np.median(np.abs(diff - np.median(diff))) * 1.4826 / np.sqrt(2)) if diff.size else float("nan")
    bone = sl[sl > 200]
    dense = a[a > 200]
    return {"fov_mm": f"{a.shape[2] * sx:.0f}×{a.shape[1] * sy:.0f}", "height_mm": f"{p.rows:.0f}",
            "slice_mm": f"{p.slice_spacing_mm:.2f}" + (f" (thick {p.slice_thickness_mm:g})" if p.slice_thickness_mm else ""),
            "pixel_mm": f"{sx:.2f}", "bone_p50_hu": f"{np.percentile(bone, 50):.0f}" if bone.size else "-",
            "bone_p99_hu": f"{np.percentile(dense, 99):.0f}" if dense.size else "-",
            "frontal_mean": f"{p.frontal.mean():.3f}", "noise_sd_hu": f"{noise:.0f}"}


def real_scans(data: Path) -> list[Shown]:
    from ctviewer.io import read_volume
    from ctviewer.workflows.slice_locator.locate import read_ct
    from ctviewer.workflows.slice_locator.projections import make_projections

    shown = []
    acrin = read_ct(data / "ct" / "acrin_001_dicom")
    z = make_projections(acrin).slice_z_mm
    shown.append(from_volume("ACRIN 001 (real, 5 mm, low dose)", acrin,
                             {lv: float(z[k]) for lv, k in ACRIN_SLICES.items()}))
    slab = read_volume(data / "ct" / "abdomen_slab_ct.nii.gz")
    labels = read_volume(data / "ct" / "abdomen_slab_labels.nii.gz")
    level_z = {}
    for lv, lab in (("T12", 32), ("L3", 29)):
        idx = np.argwhere(labels.array == lab)
        level_z[lv] = float(labels.index_to_lps(idx)[:, 2].mean()) if len(idx) else None
    shown.append(from_volume("TotalSegmentator slab (real, 3 mm)", slab, level_z))
    chest = read_volume(data / "ct" / "chest_ct.nii.gz")
    shown.append(from_volume("TotalSegmentator chest crop (real)", chest, {}))
    return shown


def synthetic_scans(seeds, matrix: int = 512) -> list[Shown]:
    import dataclasses

    from ctviewer.synth.params import TorsoParams
    from ctviewer.synth.torso import make_torso

    shown = []
    for seed in seeds:
        params = TorsoParams.random(seed, field_of_view="abdomen")
        if matrix != params.matrix[0]:  # the same field of view on another matrix (real CT: 512)
            scale = params.matrix[0] / matrix
            params = dataclasses.replace(params, matrix=(matrix, matrix), pixel_spacing=params.pixel_spacing * scale)
        torso = make_torso(params)
        what = (f"{params.contrast_phase.replace('_', ' ')}, arms {params.arms}, {params.slice_spacing:g} mm, "
                f"{matrix}²")
        shown.append(from_volume(f"synthetic {seed} ({what})", torso.image,
                                 {lv: torso.levels[lv].z_mm for lv in ("T12", "L3") if lv in torso.levels}))
    return shown


def draw(scans: list[Shown], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows_mm = max(s.frontal.shape[0] for s in scans)
    fig, axes = plt.subplots(3, len(scans), figsize=(2.6 * len(scans), 9.6),
                             gridspec_kw={"height_ratios": [1.25, 1.25, 1.0]})
    for col, s in enumerate(scans):
        for row, (image, name) in enumerate(((s.frontal, "frontal"), (s.sagittal, "sagittal"))):
            ax = axes[row, col]
            padded = np.zeros((rows_mm, image.shape[1]), np.float32)
            padded[:image.shape[0]] = image      # the same mm scale everywhere; a short scan leaves black
            ax.imshow(padded, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
            for lv, r in s.level_rows.items():
                ax.axhline(r, color="#ff5050" if lv == "T12" else "#50c0ff", lw=0.8, ls="--")
                ax.text(2, r - 4, lv, color="#ff5050" if lv == "T12" else "#50c0ff", fontsize=7)
            ax.set_title(f"{s.title}\n{name}" if row == 0 else name, fontsize=7)
            ax.axis("off")
        ax = axes[2, col]
        ax.imshow(s.axial, cmap="gray", vmin=-200, vmax=1200, interpolation="bilinear")
        ax.set_title("axial at T12" if "T12" in s.level_rows else "axial, middle slice", fontsize=7)
        ax.axis("off")
    fig.suptitle("Locator projections (1 mm/px, 100–1500 HU), real CT (left) vs synthetic (right); "
                 "dashed: T12 (red), L3 (blue)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    _shrink(out)


def _shrink(path: Path) -> None:
    """Grey PNG with a reduced palette: the figure is for reading, and README figures stay small."""
    from PIL import Image

    image = Image.open(path).convert("RGB").quantize(colors=64)
    image.save(path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "models" / "figures" / "projections_real_vs_synthetic.png")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--matrix", type=int, default=512,
                        help="synthetic matrix (512 as real CT and half the locator's data; 256 the other half)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"compare_projections: {args.data}: no such folder (the team's real data)", file=sys.stderr)
        return 2
    scans = real_scans(args.data) + synthetic_scans((int(s) for s in args.seeds.split(",")), args.matrix)
    draw(scans, args.output)
    keys = list(scans[0].numbers)
    print("| scan | " + " | ".join(keys) + " |")
    print("| --- " * (len(keys) + 1) + "|")
    for s in scans:
        print(f"| {s.title} | " + " | ".join(s.numbers[k] for k in keys) + " |")
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Draw the histograms of the real micro-CT volumes with the thresholds the soil workflow offers.

For the README: per volume, the histogram (the whole field of view, and the sample inside its
detected outline where there is one) with the valley (the default), Otsu's and the seed's
equal-bins thresholds, and the middle slice with the pores found by the default method.

Run: ``.venv/bin/python scripts/soil_histograms.py [--data DIR] [-o docs/figures/soil_histograms.png]``
Needs matplotlib (a script-only tool here, as for ``compare_projections.py``); the volumes are read with
``ctviewer.io.read_volume``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ctviewer.io.registry import read_volume  # noqa: E402
from ctviewer.workflows.soil import phases, porosity  # noqa: E402

VOLUMES = (("snow.tif", "snow (X-ray)"), ("concrete_x-ray-bin16.tif", "concrete core (X-ray)"),
           ("concrete_neutron-bin16.tif", "same concrete core (neutrons)"))
LINES = (("valley", "#d62728", "-"), ("otsu", "#1f77b4", "--"), ("equal-bins", "#7f7f7f", ":"))


def panel(ax_hist, ax_slice, values: np.ndarray, title: str) -> None:
    whole = phases.histogram(values)
    found, pores = porosity.measure(values)
    counts, centres = whole.regrouped(256)
    ax_hist.fill_between(centres, counts, step="mid", color="#cccccc", label="whole view")
    if found.sample.mask is not None:
        inside, _ = found.histogram.regrouped(256)
        ax_hist.plot(centres, inside, drawstyle="steps-mid", color="black", lw=0.8, label="inside the sample")
    for method, colour, style in LINES:
        # thresholds come from the whole view (the air around a core is the pore peak); the porosity
        # is counted inside the sample, as `ctviewer soil pores` does
        t = phases.choose_threshold(whole, method).value
        p = found.histogram.porosity_at(t)
        ax_hist.axvline(t, color=colour, ls=style, lw=1.4, label=f"{method}: {t:.0f} → {100 * p:.2f} %")
    ax_hist.set_yscale("log")
    ax_hist.set_ylim(bottom=1)
    ax_hist.set_xlabel("grey value")
    ax_hist.set_ylabel("voxels per bin (log)")
    ax_hist.set_title(title, fontsize=10)
    ax_hist.legend(fontsize=7, loc="upper left")
    z = values.shape[0] // 2
    ax_slice.imshow(values[z], cmap="gray")
    overlay = np.ma.masked_where(~pores[z], pores[z])
    ax_slice.imshow(overlay, cmap="autumn", alpha=0.8, interpolation="nearest")
    if found.sample.mask is not None:
        ax_slice.contour(found.sample.mask[z], [0.5], colors="#2ca02c", linewidths=0.8)
    ax_slice.set_title(f"slice {z}: pores by the valley ({100 * found.porosity:.2f} % of the sample)", fontsize=8)
    ax_slice.axis("off")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "microct")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "figures" / "soil_histograms.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [(args.data / name, title) for name, title in VOLUMES if (args.data / name).exists()]
    if not present:
        print(f"no micro-CT volumes in {args.data}", file=sys.stderr)
        return 2
    fig, axes = plt.subplots(len(present), 2, figsize=(11, 3.6 * len(present)),
                             gridspec_kw={"width_ratios": [2.2, 1]}, squeeze=False)
    for (path, title), (ax_hist, ax_slice) in zip(present, axes):
        panel(ax_hist, ax_slice, read_volume(path, canonical=False).array, f"{title} — {path.name}")
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=90)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""3D surfaces: label surfaces for six density bins of a 400×200×200 volume (target: under 2 s).

References measured in the same run, on the same data:
  * vtkDiscreteFlyingEdges3D, all six labels in one filter (the obvious alternative design);
  * skimage.measure.marching_cubes on one label's mask (the seed scripts' tool), times six;
  * vtkFlyingEdges3D isosurface of the grey volume (for scale).

Run: ``.venv/bin/python benchmarks/bench_surfaces.py [--repeat N] [--no-record]``; replaces its section
of benchmarks/RESULTS.md (through benchmarks/results.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from app.views import scene3d  # noqa: E402
from ctviewer.data.labels import LabelMap  # noqa: E402
from ctviewer.data.volume import Volume  # noqa: E402
from results import record  # noqa: E402

def density_bins(shape=(400, 200, 200), bins: int = 6, seed: int = 0) -> tuple[Volume, LabelMap]:
    """Smooth random 'density' (blobs a few voxels across) cut into equal-count bins 1..6."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = ndimage.gaussian_filter(rng.standard_normal(tuple(s // 4 for s in shape)).astype(np.float32), 2)
    grey = ndimage.zoom(coarse, 4, order=1)
    grey = (grey - grey.min()) / (grey.max() - grey.min()) * 3000 - 1000
    edges = np.quantile(grey[::4, ::4, ::4], np.linspace(0, 1, bins + 1)[1:-1])
    labels = (np.digitize(grey, edges) + 1).astype(np.uint8)
    vol = Volume(grey.astype(np.int16), modality="CT")
    return vol, LabelMap(vol.with_array(labels))


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def discrete_fe_all(labels: LabelMap):
    from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D

    f = vtkDiscreteFlyingEdges3D()
    f.SetInputData(scene3d.to_image_data(labels.volume))
    for n, label_id in enumerate(labels.table.ids):
        f.SetValue(n, label_id)
    f.ComputeNormalsOn()
    f.Update()
    return f.GetOutput()


def skimage_one(labels: LabelMap):
    from skimage.measure import marching_cubes

    return marching_cubes((labels.array == 1).view(np.uint8), 0.5, spacing=labels.volume.spacing)


def render_labels(surfaces, table, size=(800, 600)):
    from app.views.render_offscreen import offscreen_window

    scene = scene3d.Scene3D()
    scene.set_label_surfaces(surfaces, table)
    scene.reset_camera()
    window = offscreen_window(size)
    window.AddRenderer(scene.renderer)
    t = time.perf_counter()
    window.Render()
    first = time.perf_counter() - t
    camera = scene.renderer.GetActiveCamera()
    t = time.perf_counter()
    for _ in range(5):
        camera.Azimuth(10)
        window.Render()
    orbit = (time.perf_counter() - t) / 5
    window.Finalize()
    return first, orbit


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    vol, labels = density_bins()
    ours, surfaces = best_of(args.repeat, lambda: scene3d.label_surfaces(labels))
    triangles = sum(p.GetNumberOfCells() for p in surfaces.values())
    dfe, _ = best_of(args.repeat, lambda: discrete_fe_all(labels))
    sk1, _ = best_of(1, lambda: skimage_one(labels))
    iso, poly = best_of(args.repeat, lambda: scene3d.isosurface(vol, 500.0))
    first, orbit = render_labels(surfaces, labels.table)
    from app.views.render_offscreen import render_3d

    vr, _ = best_of(1, lambda: render_3d(vol, mode="volume", preset="CT bone", size=(800, 600)))

    rows = [
        ("label_surfaces, 6 labels (ours: per-label padded crop + vtkDiscreteFlyingEdges3D)", ours, 1.0),
        ("vtkDiscreteFlyingEdges3D, 6 labels in one filter", dfe, dfe / ours),
        ("skimage marching_cubes, 1 label × 6 (extrapolated)", 6 * sk1, 6 * sk1 / ours),
        ("isosurface of the grey volume at 500 (vtkFlyingEdges3D)", iso, iso / ours),
    ]
    lines = [f"| {name} | {t:.2f} s | {r:.1f}× |" for name, t, r in rows]
    verdict = "PASS" if ours < 2.0 else "FAIL"
    report = "\n".join([
        f"Best of {args.repeat}. Volume 400×200×200 (16 M voxels), "
        f"six equal-count density bins of smooth noise: {triangles / 1e6:.1f} M triangles in all.",
        "",
        "| what | time | vs ours |",
        "| --- | --- | --- |",
        *lines,
        "",
        f"Target: all six label surfaces under 2 s — **{verdict}** ({ours:.2f} s).",
        f"Offscreen render (EGL, Mesa llvmpipe, 800×600) of those {triangles / 1e6:.1f} M triangles: "
        f"first frame {first:.2f} s, then {orbit:.2f} s per orbit step. Volume rendering of the grey "
        f"volume (CT bone, render_3d from scratch, 800×600): {vr:.2f} s.",
        "",
    ])
    print(report)
    if not args.no_record:
        record(__file__, "3D surfaces", report.splitlines())
    return 0 if ours < 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

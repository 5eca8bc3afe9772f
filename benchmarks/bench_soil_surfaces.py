"""Density-object surfaces of a soil cube: extraction time and how smoothly the 3D panel turns.

A 400×200×200 synthetic soil cube (``ctviewer.synth.soil.make_soil_cube``) split into the seed's six
equal-width density objects. Measured in one run:
  * ``label_surfaces`` of all six objects at full resolution (target: under 2 s), with triangles;
  * ``display_surfaces``, what the 3D panel extracts (full-resolution estimate from a 1/4 probe, the
    still meshes at 1/s resolution, the coarse meshes drawn while the camera moves);
  * reference: skimage ``marching_cubes`` on object 1's mask (the seed's kind of tool);
  * a 30-frame orbit (12° per frame, 800×600, offscreen Mesa) with the coarse meshes, as while the
    user drags, and the still render after the drag; the full-resolution meshes for comparison.

Run: ``.venv/bin/python benchmarks/bench_soil_surfaces.py [--no-record]``; replaces its section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from app.views import scene3d  # noqa: E402
from app.views.render_offscreen import offscreen_window  # noqa: E402
from ctviewer.synth.soil import SoilParams, make_soil_cube  # noqa: E402
from ctviewer.workflows.soil.objects import density_objects  # noqa: E402
from results import record  # noqa: E402

SHAPE = (400, 200, 200)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def orbit(surfaces, table, moving: bool, frames: int = 30) -> tuple[float, float]:
    """(first frame s, median ms per frame) of an orbit offscreen."""
    scene = scene3d.Scene3D()
    scene.set_label_surfaces(surfaces, table)
    scene.reset_camera()
    window = offscreen_window((800, 600))
    window.AddRenderer(scene.renderer)
    try:
        _, first = timed(window.Render)
        scene.set_moving(moving)
        camera, times = scene.renderer.GetActiveCamera(), []
        for _ in range(frames):
            camera.Azimuth(12)
            times.append(timed(window.Render)[1])
        return first, 1000 * float(np.median(times))
    finally:
        window.Finalize()


def mtri(n: int) -> str:
    return f"{n / 1e6:.2f} M"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    cube, t_cube = timed(make_soil_cube, SoilParams(shape=SHAPE))
    objects, t_split = timed(density_objects, cube.image, 6, "equal")
    full, t_full = timed(scene3d.label_surfaces, objects)
    n_full = {k: p.GetNumberOfCells() for k, p in full.items()}
    shown, t_shown = timed(scene3d.display_surfaces, objects)
    from skimage.measure import marching_cubes

    mask = (objects.array == 1).view(np.uint8)
    _, t_mc = timed(marching_cubes, mask, 0.5, spacing=objects.volume.spacing)
    first_moving, ms_moving = orbit(shown, objects.table, moving=True)
    first_still, ms_still = orbit(shown, objects.table, moving=False, frames=3)
    first_full, ms_full = orbit(full, objects.table, moving=False, frames=2)
    load = max(load, os.getloadavg()[0])

    rows = [
        ("label_surfaces, 6 objects, full resolution (vtkDiscreteFlyingEdges3D per object)",
         f"{t_full:.2f} s", mtri(sum(n_full.values())), f"{first_full:.1f} s first, {ms_full:.0f} ms/frame"),
        (f"display_surfaces (what the panel extracts: 1/4 probe, still at 1/{shown.stride}, "
         f"moving at 1/{shown.moving_stride})", f"{t_shown:.2f} s",
         f"{mtri(shown.triangles())} still / {mtri(shown.triangles('moving'))} moving",
         f"still {ms_still:.0f} ms/frame; moving {ms_moving:.0f} ms/frame (30-frame orbit)"),
        ("reference: skimage marching_cubes, object 1 only", f"{t_mc:.2f} s", "", ""),
    ]
    target = "PASS" if t_full < 2.0 else "FAIL"
    smooth = "PASS" if ms_moving < 50 else "FAIL"
    text = "\n".join([
        f"Load average up to {load:.1f} during the run. "
        f"make_soil_cube {SHAPE[0]}×{SHAPE[1]}×{SHAPE[2]} ({t_cube:.1f} s), six equal-width density objects "
        f"({t_split:.2f} s; voxels per object {np.bincount(objects.array.ravel(), minlength=7)[1:].tolist()}); "
        f"triangles per object at full resolution {[n_full[k] for k in sorted(n_full)]}. Offscreen Mesa 800×600.",
        "",
        "| what | time | triangles | rendering |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        f"Target (six surfaces under 2 s): **{target}** ({t_full:.2f} s at full resolution; the panel's "
        f"display_surfaces {t_shown:.2f} s). Turning: **{smooth}** against 50 ms/frame ({ms_moving:.0f} ms/frame "
        f"with the coarse meshes while dragging; {ms_full:.0f} ms/frame for the full-resolution meshes).",
        "",
    ])
    print(text)
    if not args.no_record:
        record(__file__, "Soil density objects in 3D", text.splitlines())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soil Phases tab: from a threshold change to the updated pore overlay on the slice views.

A 400³ uint16 bimodal cube (pores about 1500, solid about 9000, noise; 122 MiB) opened in the real main
window (1500×1000, no 3D panel: the 3D surface follows the release of the line, not the drag), the
Phases tab shown, its histogram counted in the worker. Then 40 threshold positions across the range,
each set on the histogram's line as a drag sets it (``InfiniteLine.setValue`` -> ``sigPositionChanged``),
timed until Qt has processed the events it posted (the label items repainted): the porosity label by
lookup and the pore phase on the three planes the views show. Each step is checked against
``plane <= threshold`` (outside the timing).

Reference, in the same run: the overlay updated by a full-volume comparison (``volume <= t`` into the
layer, every view redrawn), what a preview without the plane trick would cost per step.

Run once under Xvfb: ``xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_soil_drag.py``
(``--no-record`` prints only); replaces its section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from results import Report  # noqa: E402

SIDE = 400
STEPS = 40


def bimodal_cube(side: int) -> np.ndarray:
    """Blocky pores (a 100³ random pattern, each voxel a 4³ block) in a solid, with noise."""
    rng = np.random.default_rng(0)
    coarse = rng.random((side // 4,) * 3) < 0.35
    pores = coarse.repeat(4, 0).repeat(4, 1).repeat(4, 2)
    cube = np.where(pores, np.uint16(1500), np.uint16(9000))
    cube += rng.integers(0, 800, cube.shape, dtype=np.uint16)
    return cube


def wait(app, condition, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise TimeoutError("the panel did not get there in time")
        app.processEvents()
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from app.main_window import MainWindow
    from ctviewer.data import Study, Volume
    from ctviewer.imaging import slicing

    out = Report(__file__, "Soil threshold drag to slice preview")
    cube = bimodal_cube(SIDE)
    settings = QSettings(str(Path("/tmp") / "bench_soil_drag.ini"), QSettings.Format.IniFormat)
    win = MainWindow(with_3d=False, settings=settings)
    win.ask_unsaved = lambda names: "discard"
    win.resize(1500, 1000)
    win.show()
    win.set_study(Study(Volume(cube, spacing=(0.05, 0.05, 0.05), modality="CT", name="bench cube")))
    win.soil_dock.show_tab(title="Phases")
    panel = win.soil_dock.phases
    start = time.perf_counter()
    wait(app, lambda: panel.found is not None)
    counted = time.perf_counter() - start
    wait(app, lambda: panel.layer is not None and not panel.layers.stale)
    layer, line = panel.layer, panel.histogram.line
    views = win.viewer.views
    out(f"cube {SIDE}x{SIDE}x{SIDE} uint16 ({cube.nbytes / 2 ** 20:.0f} MiB); histogram counted in the worker "
        f"in {counted:.2f} s (once)")

    values = np.linspace(1000, 10000, STEPS)
    drag_ms, wrong = [], 0
    for v in values:
        t0 = time.perf_counter()
        line.setValue(float(v))          # what a mouse drag does to the line
        app.processEvents()              # the label items repaint the planes drawn
        drag_ms.append(1000 * (time.perf_counter() - t0))
        t = panel.threshold
        k = win.study.cursor[0]
        shown = views["axial"].overlays._items[id(layer)].rgba[..., 3] > 0
        wrong += not np.array_equal(shown, slicing.extract(cube, "axial", k) <= t)
        counted_now = np.count_nonzero(cube <= t) / cube.size     # a recount, to check the lookup shown
        wrong += not panel.porosity.text().startswith(f"Porosity {100 * counted_now:.2f} %")

    full_ms = []
    for v in values[::4]:                # the reference: the whole volume compared at every step
        t0 = time.perf_counter()
        np.less_equal(cube, float(v), out=layer.array, casting="unsafe")
        layer.data_changed.emit(None)
        app.processEvents()
        full_ms.append(1000 * (time.perf_counter() - t0))

    med, worst, ref = float(np.median(drag_ms)), float(np.max(drag_ms)), float(np.median(full_ms))
    out(f"threshold change -> porosity label + pore phase on the 3 shown planes, {STEPS} steps:")
    out(f"  median {med:7.1f} ms   worst {worst:7.1f} ms   ({wrong} steps shown wrong)")
    out(f"reference: whole-volume comparison + redraw, {len(full_ms)} steps: median {ref:7.1f} ms")
    out(f"ratio preview / reference: {med / ref:.3f} ({ref / med:.0f}x faster)")
    out.verdict("threshold drag to updated slice preview under 50 ms", med < 50 and wrong == 0,
                f"median {med:.1f} ms, worst {worst:.1f} ms")
    win.close()
    return 0 if out.save(not args.no_record) else 1


if __name__ == "__main__":
    sys.exit(main())

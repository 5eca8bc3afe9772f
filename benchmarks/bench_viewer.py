"""Viewer speed: slice redraw rate with overlays, and time to a window showing a volume.

Figures to reach (issue 2): redraw of a 512x512 slice with window/level, a label overlay and a
heatmap >= 60 fps (goal 200) through the real widgets offscreen; main window with a volume open
< 3 s from process start, without TensorFlow. Each figure is printed with a reference measured in
the same run (a bare pyqtgraph ImageItem; a bare Qt window), so the ratios travel across machines.

    .venv/bin/python benchmarks/bench_viewer.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    # slice views render offscreen; the start-up figure needs a display for the VTK panel (run
    # this script under xvfb-run, as `make bench` does)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

import numpy as np  # noqa: E402


def make_study(n_slices=64):
    from ctviewer.data import HeatmapLayer, LabelLayer, LabelMap, Study, Volume

    rng = np.random.default_rng(0)
    arr = rng.normal(40, 200, size=(n_slices, 512, 512)).astype(np.int16)
    vol = Volume(arr, spacing=(2.5, 0.7, 0.7), modality="CT")
    study = Study(vol)
    labels = np.zeros(arr.shape, np.uint8)
    labels[:, 100:300, 150:350] = 5
    labels[:, 300:400, 200:260] = 30
    study.layers.append(LabelLayer(LabelMap(vol.with_array(labels)), opacity=0.5))
    heat = vol.with_array(rng.random(arr.shape, dtype=np.float32))
    study.layers.append(HeatmapLayer(heat, value_range=(0, 1), opacity=0.3))
    return study


def bench_redraw(frames=300):
    from PySide6.QtWidgets import QApplication

    import pyqtgraph as pg
    from app.views.display import DisplayState
    from app.views.slice_view import SliceView

    app = QApplication.instance() or QApplication([])
    study = make_study()
    display = DisplayState(350, 40)
    view = SliceView("axial")
    view.resize(700, 700)
    view.set_study(study, display)
    view.show()
    app.processEvents()

    def run_ours():
        t0 = time.perf_counter()
        for n in range(frames):
            view.set_slice(n % study.image.shape[0])
            display.set_window(350 + (n % 2), 40)   # window/level changes too
            view.viewport().repaint()
        return frames / (time.perf_counter() - t0)

    # reference: a bare pyqtgraph ImageItem showing the same slices with levels, no overlays
    ref = pg.GraphicsView()
    box = pg.ViewBox(lockAspect=True)
    ref.setCentralItem(box)
    item = pg.ImageItem(axisOrder="row-major")
    box.addItem(item)
    ref.resize(700, 700)
    ref.show()
    app.processEvents()

    def run_ref():
        t0 = time.perf_counter()
        for n in range(frames):
            item.setImage(study.image.array[n % study.image.shape[0]], autoLevels=False, levels=(-135, 215 + n % 2))
            ref.viewport().repaint()
        return frames / (time.perf_counter() - t0)

    ours = max(run_ours() for _ in range(3))
    bare = max(run_ref() for _ in range(3))
    view.set_study(None, None)
    view.close()
    ref.close()
    return ours, bare


STARTUP_OURS = r"""
import time, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.main_window import MainWindow
from ctviewer.workflows.open import open_study
win = MainWindow()
win.set_study(open_study(sys.argv[1]))
win.show()
app.processEvents()
print("TF" if "tensorflow" in sys.modules else "NOTF")
win.close(); win.deleteLater(); app.processEvents()
"""

STARTUP_BARE = r"""
import sys
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
w = QMainWindow(); w.show(); app.processEvents()
print("NOTF")
"""


def bench_startup():
    import nibabel as nib

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ct.nii.gz"
        arr = np.random.default_rng(0).normal(0, 100, (200, 512, 512)).astype(np.int16)
        nib.save(nib.Nifti1Image(np.transpose(arr), np.diag([0.7, 0.7, 2.5, 1])), path)

        def timed(code, *args):
            best, out = 1e9, ""
            for _ in range(3):
                t0 = time.perf_counter()
                res = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True)
                best = min(best, time.perf_counter() - t0)
                out = res.stdout.strip()
                if res.returncode != 0:
                    raise RuntimeError(f"start-up run failed ({res.returncode}): {res.stderr[-500:]}")
            return best, out

        ours, out = timed(STARTUP_OURS, str(path))
        bare, _ = timed(STARTUP_BARE)
        return ours, bare, out


def main():
    out = Report(__file__, "Slice redraw and start-up")
    fps, ref_fps = bench_redraw()
    out(f"redraw 512x512 + labels + heatmap + window change: {fps:.0f} fps "
        f"(bare pyqtgraph image: {ref_fps:.0f} fps; ratio {fps / ref_fps:.2f}); "
        f"goal 200: {'met' if fps >= 200 else 'not met'}")
    out.verdict("redraw at 60 fps or more", fps >= 60, f"{fps:.0f} fps")
    t, ref_t, child_out = bench_startup()
    out(f"start-up to a window showing a 512x512x200 CT: {t:.2f} s (bare Qt window: {ref_t:.2f} s; "
        f"ratio {t / ref_t:.2f}); TensorFlow imported: {'yes' if 'NOTF' not in child_out else 'no'}")
    out.verdict("start-up under 3 s without TensorFlow", t < 3 and "NOTF" in child_out, f"{t:.2f} s")
    out.save("--no-record" not in sys.argv)


if __name__ == "__main__":
    main()

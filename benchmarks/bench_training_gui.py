"""GUI responsiveness while a model trains in the model dock's worker (issue 4).

Figure to reach: no event-loop stall over 100 ms while a model trains. The main window is opened on a
512x512x64 CT-like volume; the slice locator network (ctviewer.ml.locator, 1.6 M parameters, 384x256
two-channel projections, batch 4) trains on random projections through ``ModelDock.start_training``
(the code path of Train…), while a 10 ms QTimer records the gaps between its ticks and moves the axial
slice every fifth tick (a user scrolling at 20 slices/s). References measured in the same run:
- the stalls of the same scrolling with nothing training;
- samples/s of the same training without the GUI (``run_training`` on the main thread, no event loop).
Samples/s are steady-state figures (batch ends of the epochs after the first), so the first run's
TensorFlow import and graph tracing do not bias the ratio. The stalls of the start-up (TensorFlow import,
model build, tracing, up to the end of the first batch) are reported on their own line.

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_training_gui.py

The window is opened without its 3D panel: TensorFlow's bundled LLVM and the one Mesa's llvmpipe
OpenGL uses collide in one process (a crash) unless TensorFlow is imported with its symbols kept local.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

ROWS, WIDTH, BATCH, TRAIN_SAMPLES, VAL_SAMPLES, EPOCHS = 384, 256, 4, 24, 6, 3
TICK_MS, SCROLL_EVERY = 10, 5


def steady_rate(batch_ends) -> float:
    """Samples/s from (epoch, time) of each batch's end, within the epochs after the first."""
    epochs: dict[int, list[float]] = {}
    for epoch, t in batch_ends:
        epochs.setdefault(epoch, []).append(t)
    later = [times for epoch, times in epochs.items() if epoch > 1]
    return sum(len(t) - 1 for t in later) * BATCH / sum(t[-1] - t[0] for t in later)


def tap_batch_ends(tasks, batch_ends: list) -> None:
    """Record when each batch ends, for the dock's training and the reference alike."""
    run_training = tasks.run_training

    def tapped(config, **kwargs):
        forward = kwargs.get("on_batch")

        def on_batch(report):
            batch_ends.append((report.epoch, time.perf_counter()))
            if forward is not None:
                forward(report)

        return run_training(config, **{**kwargs, "on_batch": on_batch})

    tasks.run_training = tapped   # the dock's worker looks run_training up when it starts


def make_task():
    """A training task: the locator network on random projections, one study per sample.

    Keras is imported only inside the task's functions, which run in the dock's worker: the start-up
    stalls then include TensorFlow's import, as they do for a user's first training.
    """
    from ctviewer.ml.datasets import split_indices_by_study
    from ctviewer.ml.tasks import TaskSpec

    def build_model(config):
        from ctviewer.ml.locator import build_locator

        return build_locator(width_px=WIDTH, learning_rate=config.learning_rate)

    def load_data(config, progress=None, cancel=None):
        from ctviewer.ml.backend import keras

        class Projections(keras().utils.PyDataset):
            def __init__(self, x, y):
                super().__init__()
                self.x, self.y, self.batch_size = x, y, BATCH

            def __len__(self):
                return len(self.x) // BATCH

            def __getitem__(self, index):
                rows = slice(index * BATCH, (index + 1) * BATCH)
                return self.x[rows], self.y[rows]

        rng = np.random.default_rng(config.seed)
        n = TRAIN_SAMPLES + VAL_SAMPLES
        x = rng.random((n, ROWS, WIDTH, 2), dtype=np.float32)
        y = (rng.random((n, ROWS, 2)) > 0.99).astype(np.float32)
        train, val = split_indices_by_study([f"s{i}" for i in range(n)], VAL_SAMPLES / n, config.seed)
        return Projections(x[train], y[train]), (x[val], y[val]), {"description": f"{n} random projections"}

    return TaskSpec("bench_locator", "benchmark only", build_model, load_data, lambda *a, **k: {},
                    lambda config, info: {"description": "benchmark", "outputs": {"levels": ["L3", "T12"]}})


def make_study():
    from ctviewer.data import Study, Volume

    arr = np.random.default_rng(0).normal(40, 200, size=(64, 512, 512)).astype(np.int16)
    return Study(Volume(arr, spacing=(2.5, 0.7, 0.7), modality="CT", name="bench"))


class Scroller:
    """The 10 ms probe: records tick times and scrolls the axial slice every SCROLL_EVERY ticks."""

    def __init__(self, study):
        from PySide6.QtCore import QTimer

        self.study, self.ticks = study, []
        self.timer = QTimer(interval=TICK_MS)
        self.timer.timeout.connect(self.tick)

    def tick(self):
        self.ticks.append(time.perf_counter())
        if len(self.ticks) % SCROLL_EVERY == 0:
            k, j, i = self.study.cursor
            self.study.cursor = ((k + 1) % self.study.image.shape[0], j, i)

    def gaps_ms(self, start=-np.inf, end=np.inf) -> np.ndarray:
        t = np.asarray(self.ticks)
        keep = (t[1:] > start) & (t[:-1] < end)
        return np.diff(t)[keep] * 1000


def run_loop(app, seconds=None, until=None):
    t0 = time.perf_counter()
    while (until is None or not until()) and (seconds is None or time.perf_counter() - t0 < seconds):
        app.processEvents()
        time.sleep(0.001)


def main():
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    import pyqtgraph as pg
    from app.main_window import MainWindow
    from ctviewer.ml import tasks
    from ctviewer.ml.training import TrainConfig

    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="ctviewer-bench-"))
    os.environ["CTVIEWER_MODELS_DIR"] = str(tmp / "models")
    batch_ends: list = []
    tap_batch_ends(tasks, batch_ends)
    win = MainWindow(with_3d=False, settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1400, 900)
    win.show()
    win.set_study(make_study())
    run_loop(app, 1.0)

    # reference 1: scrolling with nothing training
    idle = Scroller(win.study)
    idle.timer.start()
    run_loop(app, 5.0)
    idle.timer.stop()

    # training in the dock (cold: TensorFlow is imported in the worker)
    print("training in the model dock (TensorFlow is imported in its worker)…", flush=True)
    tf_loaded_before = "tensorflow" in sys.modules
    tasks.register_task(make_task())
    config = TrainConfig(task="bench_locator", name="bench-locator", epochs=EPOCHS, batch_size=BATCH,
                         patience=0, validation_fraction=VAL_SAMPLES / (TRAIN_SAMPLES + VAL_SAMPLES))
    results = []
    win.model_dock.training_finished.connect(results.append)
    probe = Scroller(win.study)
    probe.timer.start()
    started = time.perf_counter()
    win.model_dock.start_training(config)
    run_loop(app, until=lambda: bool(results))
    ended = time.perf_counter()
    probe.timer.stop()
    if results[0] is None:
        raise SystemExit(f"training failed:\n{win.model_dock.log_view.toPlainText()}")
    first_batch = batch_ends[0][1]
    training = probe.gaps_ms(first_batch, ended)
    warmup = probe.gaps_ms(started, first_batch)
    gui_rate = steady_rate(batch_ends)

    # reference 2: the same training without the GUI (main thread, no event loop)
    batch_ends.clear()
    tasks.run_training(dataclasses.replace(config, name="bench-reference"))
    ref_rate = steady_rate(batch_ends)
    win.close()
    win.deleteLater()
    app.processEvents()

    idle_gaps = idle.gaps_ms()
    worst, p99 = float(training.max()), float(np.percentile(training, 99))
    print(f"slice locator (384x256x2 projections, batch {BATCH}) training in the model dock's worker, "
          f"user scrolling the axial view at {1000 // (TICK_MS * SCROLL_EVERY)} slices/s, "
          f"{TICK_MS} ms probe timer:")
    print(f"  event-loop stalls while training: max {worst:.0f} ms, 99th percentile {p99:.0f} ms "
          f"({len(training)} ticks over {ended - first_batch:.0f} s); "
          f"target no stall over 100 ms: {'PASS' if worst <= 100 else 'FAIL'}")
    print(f"  scrolling with nothing training (reference): max {idle_gaps.max():.0f} ms, "
          f"99th percentile {np.percentile(idle_gaps, 99):.0f} ms")
    print(f"  start of the training ({'' if tf_loaded_before else 'TensorFlow import, '}model build, data, "
          f"first-batch tracing; {first_batch - started:.1f} s): max stall {warmup.max():.0f} ms, "
          f"99th percentile {np.percentile(warmup, 99):.0f} ms")
    print(f"  training speed in the dock: {gui_rate:.2f} samples/s; same training without the GUI: "
          f"{ref_rate:.2f} samples/s; ratio {gui_rate / ref_rate:.2f}")


if __name__ == "__main__":
    main()

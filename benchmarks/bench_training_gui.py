"""GUI responsiveness while a model trains from the model dock (issue 4).

Figure to reach: no event-loop stall over 100 ms while a model trains. The main window is opened on a
512x512x64 CT-like volume; the slice locator network (ctviewer.ml.locator, 1.6 M parameters, 384x256
two-channel projections, batch 4) trains on random projections through ``ModelDock.start_training``
(the code path of Train…: a worker thread drives a child process, ``ctviewer.ml.child``, where Keras
runs), while a 10 ms QTimer records the gaps between its ticks and moves the axial slice every fifth
tick (a user scrolling at 20 slices/s). References measured in the same run:
- the stalls of the same scrolling with nothing training;
- samples/s of the same training in a child process with no GUI running (``train_in_child``).
Samples/s are steady-state figures (batch ends of the epochs after the first, timed as the reports
arrive here), so the child's TensorFlow start-up and graph tracing do not bias the ratio. The stalls of
the start-up (child start, TensorFlow import, model build, tracing, up to the end of the first batch)
are reported on their own line.

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_training_gui.py

The child finds the benchmark's task through ``$CTVIEWER_TASK_MODULES`` (this module's ``TASK``).
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

from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

ROWS, WIDTH, BATCH, TRAIN_SAMPLES, VAL_SAMPLES, EPOCHS = 384, 256, 4, 24, 6, 3
TICK_MS, SCROLL_EVERY = 10, 5


def steady_rate(batch_ends) -> float:
    """Samples/s from (epoch, time) of each batch's end, within the epochs after the first."""
    epochs: dict[int, list[float]] = {}
    for epoch, t in batch_ends:
        epochs.setdefault(epoch, []).append(t)
    later = [times for epoch, times in epochs.items() if epoch > 1]
    return sum(len(t) - 1 for t in later) * BATCH / sum(t[-1] - t[0] for t in later)


def tap_dock(batch_ends: list) -> None:
    """Record when each batch report reaches the GUI process, as the dock's timer will read it."""
    import app.docks.model_dock as dock_module

    train_model = dock_module.train_model

    class Tap:
        def __init__(self, events):
            self.events = events

        def put(self, item):
            if item[0] == "batch":
                batch_ends.append((item[1].epoch, time.perf_counter()))
            self.events.put(item)

    def tapped(config, events, progress=None, cancel=None):
        return train_model(config, Tap(events), progress=progress, cancel=cancel)

    dock_module.train_model = tapped   # start_training looks train_model up when it starts


def make_task():
    """A training task: the locator network on random projections, one study per sample.

    Keras is imported only inside the task's functions, which run in the training's child process.
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


TASK = make_task()
TASK_MODULES = f"{TASK.name}={Path(__file__).stem}:TASK"   # the child imports this file (its folder is on sys.path)


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
    from ctviewer.ml.child import train_in_child
    from ctviewer.ml.training import TrainConfig

    pg.setConfigOptions(imageAxisOrder="row-major")
    os.environ["CTVIEWER_TASK_MODULES"] = TASK_MODULES
    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="ctviewer-bench-"))
    os.environ["CTVIEWER_MODELS_DIR"] = str(tmp / "models")
    batch_ends: list = []
    tap_dock(batch_ends)
    win = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1400, 900)
    win.show()
    win.set_study(make_study())
    run_loop(app, 1.0)

    # reference 1: scrolling with nothing training
    idle = Scroller(win.study)
    idle.timer.start()
    run_loop(app, 5.0)
    idle.timer.stop()

    print("training in the model dock (Keras in a child process)…", flush=True)
    config = TrainConfig(task=TASK.name, name="bench-locator", epochs=EPOCHS, batch_size=BATCH,
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
    tf_in_gui = "tensorflow" in sys.modules
    win.close()
    win.deleteLater()
    app.processEvents()

    # reference 2: the same training in a child process with no GUI running
    batch_ends.clear()
    train_in_child(dataclasses.replace(config, name="bench-reference"),
                   on_batch=lambda report: batch_ends.append((report.epoch, time.perf_counter())))
    ref_rate = steady_rate(batch_ends)

    idle_gaps = idle.gaps_ms()
    out = Report(__file__, "GUI while a model trains")
    worst, p99 = float(training.max()), float(np.percentile(training, 99))
    out(f"slice locator (384x256x2 projections, batch {BATCH}) training from the model dock (child process), "
        f"user scrolling the axial view at {1000 // (TICK_MS * SCROLL_EVERY)} slices/s, "
        f"{TICK_MS} ms probe timer; TensorFlow imported into the GUI process: {tf_in_gui}")
    out(f"  event-loop stalls while training: max {worst:.0f} ms, 99th percentile {p99:.0f} ms "
        f"({len(training)} ticks over {ended - first_batch:.0f} s)")
    out(f"  scrolling with nothing training (reference): max {idle_gaps.max():.0f} ms, "
        f"99th percentile {np.percentile(idle_gaps, 99):.0f} ms")
    out(f"  start of the training (child start, TensorFlow import, model build, data, first-batch tracing; "
        f"{first_batch - started:.1f} s): max stall {warmup.max():.0f} ms, "
        f"99th percentile {np.percentile(warmup, 99):.0f} ms")
    t = np.asarray(probe.ticks)
    gaps = np.diff(t) * 1000
    worst_three = [(float(t[i] - started), float(gaps[i])) for i in np.argsort(gaps)[-3:][::-1]]
    out("  longest stalls (s after Train, ms): " + ", ".join(f"{at:.2f} s: {ms:.0f}" for at, ms in worst_three))
    out(f"  training speed in the dock: {gui_rate:.2f} samples/s; same training in a child without the GUI: "
        f"{ref_rate:.2f} samples/s; ratio {gui_rate / ref_rate:.2f}")
    out.verdict("no stall over 100 ms while a model trains", worst <= 100, f"max {worst:.0f} ms")
    out.save("--no-record" not in sys.argv)


if __name__ == "__main__":
    main()

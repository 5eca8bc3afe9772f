"""Labels dock: how long the GUI thread is busy when a scan's statistics first fill the table.

A synthetic torso labelled with TotalSegmentator's ids (86 labels) is shown in the labels dock; the
statistics are computed beforehand (in the app a worker does it) and the figure is the redraw that
follows, as the dock does it when the worker's result arrives, until Qt has processed the events.
References in the same run: the same fill for 5 of those labels, and the fill of the 86 labels with
the column header in ResizeToContents mode (the dock's behaviour before issue 5's review: every
cell's setText re-measured its whole column). Target: no visible stall (under 50 ms; a frame at 20
fps). Also printed: building the dock on that study (its rows before any statistics) against
building it with no study. Best of 5, each on a fresh dock.

    xvfb-run -a .venv/bin/python benchmarks/bench_labels_dock.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

REPEATS = 5


def make_study(n_labels: int | None = None):
    """The torso with its label layer; ``n_labels`` keeps only the first few labels in the table."""
    from ctviewer.data import LabelLayer, LabelMap, Study
    from ctviewer.data.labels import LabelTable
    from ctviewer.synth import TorsoParams, make_torso

    torso = make_torso(TorsoParams(seed=3, matrix=(96, 96), pixel_spacing=4.0, slice_spacing=5.0))
    labels = torso.labels
    if n_labels is not None:
        table = LabelTable(list(labels.table)[:n_labels])
        labels = LabelMap(labels.volume, table)
    study = Study(torso.image)
    study.layers.append(LabelLayer(labels, name="reference"))
    return study


def first_fill(app, study, live_resize: bool = False) -> float:
    """Seconds from the statistics' arrival to the table drawn with them, on a fresh dock."""
    from PySide6.QtWidgets import QHeaderView

    from app.annotation import Annotator
    from app.docks.labels_dock import COLUMNS, NAME, LabelsDock
    from ctviewer.imaging.label_stats import label_statistics

    annotator = Annotator()
    annotator.set_study(study)
    dock = LabelsDock(annotator)
    dock.resize(600, 700)
    dock.show()
    while dock.computing:            # let the dock's own first run finish, then replay its result
        app.processEvents()
    if live_resize:
        for col in range(len(COLUMNS)):
            if col != NAME:
                dock.table.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
    stats = label_statistics(study.image, study.layers[0].labels)
    dock.stats = {}
    dock._sync_rows()                # rows without statistics, as before the first run ends
    app.processEvents()
    t0 = time.perf_counter()
    dock.stats = {s.id: s for s in stats}   # what LabelsDock._show_stats does with a result
    dock._sync_rows()
    app.processEvents()
    elapsed = time.perf_counter() - t0
    dock.close()
    dock.deleteLater()
    app.processEvents()
    return elapsed


def creation(app, study) -> float:
    """Seconds to build and show the dock on ``study`` (its rows without statistics); None: no study."""
    from app.annotation import Annotator
    from app.docks.labels_dock import LabelsDock

    annotator = Annotator()
    if study is not None:
        annotator.set_study(study)
    t0 = time.perf_counter()
    dock = LabelsDock(annotator)
    dock.resize(600, 700)
    dock.show()
    app.processEvents()
    elapsed = time.perf_counter() - t0
    while dock.computing:
        app.processEvents()
    dock.close()
    dock.deleteLater()
    app.processEvents()
    return elapsed


def main() -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    many, few = make_study(), make_study(5)
    n = len(many.layers[0].labels.table)
    ours = min(first_fill(app, many) for _ in range(REPEATS))
    small = min(first_fill(app, few) for _ in range(REPEATS))
    live = min(first_fill(app, many, live_resize=True) for _ in range(REPEATS))
    built = min(creation(app, many) for _ in range(REPEATS))
    bare = min(creation(app, None) for _ in range(REPEATS))
    out = Report(__file__, "Labels dock, first fill with statistics")
    out(f"labels dock, first fill with statistics (best of {REPEATS})")
    out(f"  {n} labels                                   {1000 * ours:7.1f} ms   (target < 50 ms)")
    out(f"  reference: 5 labels                         {1000 * small:7.1f} ms   ratio {ours / small:.1f}")
    out(f"  reference: {n} labels, ResizeToContents live {1000 * live:7.1f} ms   ratio {ours / live:.3f}")
    out("labels dock, built and shown (rows before any statistics)")
    out(f"  {n} labels                                   {1000 * built:7.1f} ms")
    out(f"  reference: no study                         {1000 * bare:7.1f} ms   ratio {built / bare:.1f}")
    out.verdict("first fill with statistics under 50 ms", ours < 0.050, f"{1000 * ours:.1f} ms")
    out.save("--no-record" not in sys.argv)


if __name__ == "__main__":
    main()

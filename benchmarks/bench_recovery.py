"""Autosave cost: what the GUI thread pays per autosave, and what the worker pays.

On a 512x512x600 uint8 label map (150 MiB): the snapshot of one brush stroke (GUI thread; goal:
a few ms), the write of that snapshot (worker), and a full first save of the whole map (snapshot
+ write). Each is printed with its ratio to ``labels.copy()`` of the whole map measured in the same
run, so the figures travel across machines. Best of 5 (full save: best of 3).

    .venv/bin/python benchmarks/bench_recovery.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

import numpy as np  # noqa: E402

from ctviewer.data.labels import LabelMap  # noqa: E402
from ctviewer.data.volume import Volume  # noqa: E402
from ctviewer.workflows.recovery import LabelRecovery, find_recoveries, restore  # noqa: E402

SHAPE = (600, 512, 512)


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def brush(labels: LabelMap, recovery: LabelRecovery, z: int, radius: int = 12) -> None:
    """One stroke: a line of discs across slice z, as the paint tool leaves it."""
    yy, xx = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    disc = yy ** 2 + xx ** 2 <= radius ** 2
    for x in range(100, 400, 6):
        labels.array[z, 250 - radius:250 + radius + 1, x - radius:x + radius + 1][disc] = 3
    recovery.note_edit((slice(z, z + 1), slice(250 - radius, 250 + radius + 1), slice(100 - radius, 400 + radius)))


def main() -> None:
    image = Volume(np.zeros(SHAPE, np.int16), spacing=(1.0, 0.7, 0.7), source="/data/bench-ct.nii.gz", name="bench")
    labels = LabelMap(image.with_array(np.zeros(SHAPE, np.uint8)))
    labels.array[100:500, 100:400, 100:400] = 1
    reference = best(lambda: labels.array.copy())

    with tempfile.TemporaryDirectory() as tmp:
        recovery = LabelRecovery(image, "labels", root=Path(tmp))

        def timed_stroke(then_write: bool) -> float:
            brush(labels, recovery, 300)  # painting is the paint tool's cost, not the autosave's
            t0 = time.perf_counter()
            snapshot = recovery.snapshot(labels)
            t1 = time.perf_counter()
            LabelRecovery.write(snapshot)
            t2 = time.perf_counter()
            return t2 - t1 if then_write else t1 - t0

        snap_s = min(timed_stroke(False) for _ in range(5))
        write_s = min(timed_stroke(True) for _ in range(5))

        def full_save():
            recovery.note_edit(None)
            LabelRecovery.write(recovery.snapshot(labels))

        def full_snapshot():
            recovery.note_edit(None)
            return recovery.snapshot(labels)

        full_snap_s = best(full_snapshot, 3)
        full_s = best(full_save, 3)
        restored = []
        restore_s = best(lambda: restored.append(restore(find_recoveries(image, root=Path(tmp))[0], image)), 3)
        assert np.array_equal(restored[-1].array, labels.array)

    mib = labels.array.nbytes / 2 ** 20
    out = Report(__file__, "Crash recovery: autosave and restore")
    out(f"label map {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} uint8 ({mib:.0f} MiB); chunk = {LabelRecovery.CHUNK} slices "
        f"({LabelRecovery.CHUNK * SHAPE[1] * SHAPE[2] / 2 ** 20:.0f} MiB)")
    out(f"{'what':52s} {'time':>10s} {'vs copy()':>10s}")
    rows = [
        ("reference: labels.copy() of the whole map", reference),
        ("brush stroke: snapshot (GUI thread)", snap_s),
        ("brush stroke: write (worker)", write_s),
        ("full first save: snapshot (GUI thread)", full_snap_s),
        ("full first save: snapshot + write", full_s),
        ("restore after a crash (find + restore)", restore_s),
    ]
    for what, seconds in rows:
        out(f"{what:52s} {seconds * 1000:8.1f} ms {seconds / reference:9.3f}x")
    # the autosave must not add a visible stall to painting: the paint benchmark's budget per dab
    out.verdict("a stroke's snapshot on the GUI thread under 10 ms", snap_s < 0.010, f"{snap_s * 1000:.1f} ms")
    out.save("--no-record" not in sys.argv)


if __name__ == "__main__":
    main()

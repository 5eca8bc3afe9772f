"""Label-editing speed and undo memory on a 512x512x600 label map (no GUI).

Figures to reach (editing issue): one brush dab well under 1 ms; a 3-D flood fill of a
~10-million-voxel region under 1 s; the history of 1000 strokes (radius 10 px, 10 dabs each)
under 50 MB. Each time is printed with a reference measured in the same run, so the ratios
travel across machines: a dab against copying one 512x512 slice, a fill against one
``np.count_nonzero(volume == value)`` pass over the whole volume.

    .venv/bin/python benchmarks/bench_editing.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from ctviewer.data import LabelLayer, LabelMap, LabelTable, Volume  # noqa: E402
from ctviewer.editing import LabelEditor  # noqa: E402
from results import Report  # noqa: E402

SHAPE = (600, 512, 512)


def make_editor(labels: np.ndarray) -> LabelEditor:
    # the image is a broadcast view: no 300 MB of int16 to allocate, and no threshold is used
    image = Volume(np.broadcast_to(np.int16(40), SHAPE), spacing=(1.0, 0.7, 0.7), modality="CT")
    return LabelEditor(LabelLayer(LabelMap(image.with_array(labels), LabelTable.for_ids([1, 2, 3]))), image)


def median_time(fn, repeats: int) -> float:
    times = []
    for n in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_dab(labels: np.ndarray) -> tuple[float, float]:
    ed = make_editor(labels)
    # a path across slice 300, one dab every 3 voxels as a drag would give, each its own stroke
    dab = median_time(lambda n: ed.dab((300, 100 + n, 100 + 2 * (n % 100)), 10), 200)
    slice_copy = median_time(lambda n: labels[n % SHAPE[0]].copy(), 200)
    return dab, slice_copy


def bench_fill(labels: np.ndarray) -> tuple[float, float, int]:
    labels[:] = 0
    # a ball of ~10 M voxels (radius 134) in label 1, inside a volume of 157 M voxels
    centre, radius = np.array([300, 256, 256]), 134
    z, y, x = np.ogrid[tuple(slice(c - radius, c + radius + 1) for c in centre)]
    ball = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
    labels[tuple(slice(c - radius, c + radius + 1) for c in centre)][ball] = 1
    fills = []
    for _ in range(3):
        ed = make_editor(labels)
        t0 = time.perf_counter()
        ed.fill(tuple(centre), plane=None, value=2)
        fills.append(time.perf_counter() - t0)
        ed.undo()
    counts = []
    for _ in range(3):
        t0 = time.perf_counter()
        np.count_nonzero(labels == 1)
        counts.append(time.perf_counter() - t0)
    return min(fills), min(counts), int(ball.sum())


def bench_background_fill(labels: np.ndarray) -> tuple[float, int]:
    """Not a target: the worst case, a 3-D fill of the background around the ball."""
    ed = make_editor(labels)
    t0 = time.perf_counter()
    ed.fill((0, 0, 0), plane=None, value=3)
    seconds = time.perf_counter() - t0
    voxels = ed.history.nbytes // 5  # uint32 index + uint8 old value per voxel
    ed.undo()
    return seconds, voxels


def bench_history(labels: np.ndarray) -> float:
    labels[:] = 0
    ed = make_editor(labels)
    rng = np.random.default_rng(0)
    for n in range(1000):
        k, j, i = rng.integers(0, SHAPE[0]), *rng.integers(40, 450, size=2)
        ed.begin_stroke()
        for d in range(10):  # dabs 5 voxels apart (radius / 2), as line() spaces them
            ed.dab((k, j + 3 * d, i + 4 * d), 10)
        ed.end_stroke()
    assert len(ed.history) == 1000
    return ed.history.nbytes / 2**20


def main() -> None:
    labels = np.zeros(SHAPE, np.uint8)
    dab, slice_copy = bench_dab(labels)
    fill, count, voxels = bench_fill(labels)
    background, background_voxels = bench_background_fill(labels)
    history_mb = bench_history(labels)
    out = Report(__file__, "Label editing: brush, flood fill, undo history")
    out(f"label map {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} uint8 ({labels.nbytes / 2**20:.0f} MiB)")
    out()
    out("| what | ours | reference (same run) | ratio | target |")
    out("| --- | --- | --- | --- | --- |")
    out(f"| brush dab, radius 10 px (median of 200) | {dab * 1e3:.3f} ms | "
        f"copy of one 512x512 slice {slice_copy * 1e3:.3f} ms | {dab / slice_copy:.1f} slice copies | "
        f"< 1 ms: {'PASS' if dab < 1e-3 else 'FAIL'} |")
    out(f"| 3-D flood fill, {voxels / 1e6:.1f} M voxels (best of 3) | {fill:.3f} s | "
        f"count_nonzero(volume == 1) {count:.3f} s | {fill / count:.1f} passes | "
        f"< 1 s: {'PASS' if fill < 1 else 'FAIL'} |")
    out(f"| 3-D fill of the background around it, {background_voxels / 1e6:.0f} M voxels | {background:.2f} s | "
        f"count_nonzero(volume == 1) {count:.3f} s | {background / count:.0f} passes | (no target) |")
    out(f"| history of 1000 strokes (10 dabs, radius 10 px) | {history_mb:.1f} MB | | | "
        f"< 50 MB: {'PASS' if history_mb < 50 else 'FAIL'} |")
    out.save(markdown=True)


if __name__ == "__main__":
    main()

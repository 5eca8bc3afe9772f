"""Per-label statistics of a large scan: how long the labels dock waits for counts, volumes, mean and sd.

600×512×512 int16 CT-like values with two labels (157 M voxels); best of 3. Reference in the same run:
one `np.bincount` of the label ids (a single pass that only counts). Target: under 3 s (about 1 s on a
laptop; the statistics run in a worker, so this is the wait before the dock fills in).
Run: ``.venv/bin/python benchmarks/bench_label_stats.py [--no-record]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ctviewer.data.labels import LabelMap
from ctviewer.data.volume import Volume
from ctviewer.imaging.label_stats import label_statistics
from results import Report

TARGET_S = 3.0


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    image = Volume(rng.integers(-1000, 2000, (600, 512, 512), dtype=np.int16), spacing=(1, 0.7, 0.7))
    ids = np.zeros(image.shape, np.uint8)
    ids[100:400, 100:300, 100:400], ids[300:, 400:, 400:] = 1, 7
    labels = LabelMap(image.with_array(ids))
    ours = best_of(args.repeat, lambda: label_statistics(image, labels))
    reference = best_of(args.repeat, lambda: np.bincount(ids.ravel(), minlength=256))
    out = Report(__file__, "Label statistics of a large scan")
    out(f"scan 600x512x512 int16, 2 labels; best of {args.repeat}")
    out(f"  label_statistics (counts, ml, mean, sd)   {ours:6.2f} s   {ours / reference:5.1f}x")
    out(f"  reference: np.bincount of the label ids   {reference:6.2f} s    1.0x")
    out.verdict(f"under {TARGET_S:g} s", ours < TARGET_S, f"{ours:.2f} s")
    return 0 if out.save(not args.no_record) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: open a scanner's folder of 16-bit TIFF slices, ctviewer against tifffile.imread.

Targets (issue 16): a folder of 1000x1000 16-bit TIFFs opens with progress per slice, in memory as
uint16 (no float copy): peak allocation under 1.5x the volume's bytes, and the time within 1.5x
that of tifffile reading the same files into one stack (``tifffile.imread(files)``, its own
sequence reader), measured in the same run.

The slices are written into a temporary folder (uncompressed, one page each, named ``rec_0001.tif``
as reconstruction software does) and removed afterwards. Ours goes the way a user's open goes:
``registry.read_volume`` on the folder (examine every header, then read). Both run best of
``--repeat`` on warm files, interleaved.

    .venv/bin/python benchmarks/bench_tiff_stack.py [--slices 200] [--size 1000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from results import Report  # noqa: E402  benchmarks/, the script's own folder


def write_slices(folder: Path, slices: int, size: int) -> list[Path]:
    import tifffile

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    core = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (0.45 * size) ** 2  # a cylindrical sample
    paths = []
    for k in range(slices):
        plane = np.where(core, 30000, 8000) + rng.integers(0, 4000, (size, size))
        path = folder / f"rec_{k + 1:04d}.tif"
        tifffile.imwrite(path, plane.astype(np.uint16), photometric="minisblack")
        paths.append(path)
    return paths


def read_ours(folder: Path, progress=None):
    from ctviewer.io.registry import read_volume

    return read_volume(folder, progress=progress)


def read_tifffile(paths: list[Path]):
    import tifffile

    return tifffile.imread(paths)


def best_of(fn, arg, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn(arg)
        times.append(time.perf_counter() - start)
        del result
    return min(times)


def peak_ratio(folder: Path) -> tuple[float, int, int]:
    """Peak traced allocation of one open over the volume's bytes, the bytes, the progress calls."""
    calls = []
    gc.collect()
    tracemalloc.start()
    volume = read_ours(folder, progress=lambda fraction, message="": calls.append(fraction))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / volume.nbytes, volume.nbytes, len(calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=1000, help="rows and columns of each slice")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ctviewer-bench-tiff-") as tmp:
        folder = Path(tmp) / "scan"
        folder.mkdir()
        start = time.perf_counter()
        paths = write_slices(folder, args.slices, args.size)
        written = time.perf_counter() - start
        volume = read_ours(folder)  # also warms the page cache
        assert volume.array.dtype == np.uint16 and volume.shape == (args.slices, args.size, args.size)
        reference = read_tifffile(paths)
        assert np.array_equal(volume.array, reference)
        del volume, reference

        ours = best_of(read_ours, folder, args.repeat)
        theirs = best_of(read_tifffile, paths, args.repeat)
        ratio, nbytes, calls = peak_ratio(folder)

    out = Report(__file__, "TIFF slice folder load")
    out(f"folder: {args.slices} slices of {args.size}x{args.size} uint16 TIFF ({nbytes / 2**20:.0f} MiB), "
        f"written in {written:.1f} s")
    out(f"ctviewer read_volume(folder)   best of {args.repeat}: {ours:.3f} s  ({nbytes / 2**20 / ours:.0f} MiB/s)")
    out(f"tifffile.imread(files)         best of {args.repeat}: {theirs:.3f} s")
    out(f"time ratio ctviewer / tifffile: {ours / theirs:.2f}")
    out(f"volume in memory as uint16; peak allocation {ratio:.2f}x its bytes; progress reported {calls} times")
    out.verdict("time within 1.5x tifffile's", ours <= 1.5 * theirs, f"ratio {ours / theirs:.2f}")
    out.verdict("peak memory under 1.5x the volume's bytes (no float copy)", ratio < 1.5, f"{ratio:.2f}x")
    out.verdict("progress once per slice or more", calls >= args.slices, f"{calls} calls")
    return 0 if out.save(not args.no_record) else 1


if __name__ == "__main__":
    raise SystemExit(main())

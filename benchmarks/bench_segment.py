"""Segmentation inference: a 2-D liver U-Net on a 512×512×200 scan, a 3-D U-Net over a 256³ volume.

Figures to reach (issue 5), on this 2-core CPU: 2-D inference under 20 s including the resampling
to the network's 3 mm pixels and back to the scan's grid; 3-D sliding-window inference under 60 s;
peak memory (resident set of the whole process) under 3 GB.

References measured in the same run, so the ratios travel across machines: for 2-D, one
``np.copy`` of the windowed float32 scan (what any pass over the scan must cost); for 3-D, one
forward pass of the network on one patch (the sliding window cannot cost less than that times
the number of patches: the ratio shows what blending and padding add).

The scan is the synthetic torso of ``bench_locate.py`` (512×512, 0.8 mm pixels, 401 slices of
1.25 mm; cached in ``$TMPDIR/ctviewer-bench/``): every other slice makes 512×512×201 at 2.5 mm,
and slices 72..327 of every other row and column a 256³ volume. The 2-D model is a shipped
``segmentation_2d`` model when there is one, else an untrained network of the same architecture
(the same time); the 3-D model is an untrained ``build_unet_3d(base_filters=16, depth=4)``. Each
network runs once before timing (the first call traces it; that time is printed too).

    .venv/bin/python benchmarks/bench_segment.py [--patch 64] [--overlap 0.25] [--batch 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench_locate import best, scan  # noqa: E402  (same folder: the cached synthetic torso)
from results import Report  # noqa: E402  (benchmarks/, the script's own folder)
from ctviewer.data.volume import Volume  # noqa: E402
from ctviewer.workflows.segmentation.inference import predict_sliding_window  # noqa: E402
from ctviewer.workflows.segmentation.prepare import resample, resample_to_shape, window01  # noqa: E402
from ctviewer.workflows.segmentation.segment import SegSettings, keras_predict_fn, segment_volume  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # kB on Linux


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def liver_model():
    from ctviewer.ml import registry

    shipped = [e for e in registry.list_models("segmentation_2d") if e.shipped]
    if shipped:
        model, card = registry.load_model(shipped[0])
        return model, SegSettings.from_card(card), f"shipped {shipped[0].name}"
    from ctviewer.ml.unet import build_unet_2d, size_multiple

    model = build_unet_2d()
    return model, SegSettings(dims=2, multiple=size_multiple(model)), "untrained 2-D U-Net (16..256 filters)"


def bench_2d(out, torso: Volume) -> tuple[float, float]:
    vol = Volume(torso.array[::2].copy(), spacing=(torso.spacing[0] * 2, *torso.spacing[1:]),
                 origin=torso.origin, modality="CT", name="synthetic torso 512x512, 2.5 mm slices")
    model, settings, which = liver_model()
    predict = keras_predict_fn(model)
    working = settings.working_spacing(vol.spacing)
    image = window01(vol.array, settings.window)
    reference = best(lambda: np.copy(image), repeats=3)
    small, down = timed(lambda: resample(image, vol.spacing, working, order=1))
    del image
    pad = [-(-n // settings.multiple) * settings.multiple for n in small.shape[1:]]
    batch = np.zeros((8, *pad, 1), np.float32)
    _, first_call = timed(lambda: predict(batch))
    _, one_batch = timed(lambda: predict(batch))
    probs = np.zeros(small.shape, np.float32)
    _, up = timed(lambda: resample_to_shape(probs, vol.shape, order=1))
    del probs, small
    result, total = timed(lambda: segment_volume(vol, predict, settings))
    out(f"2-D: {vol.name}: {vol.shape[0]} slices of {vol.shape[1]}x{vol.shape[2]}, working spacing "
        f"{working[1]:g} mm ({pad[0]}x{pad[1]} px after padding), model: {which}, {os.cpu_count()} CPUs")
    out(f"  reference np.copy of the windowed scan    {reference:7.2f} s    1.0x")
    out(f"  resample to the working grid (alone)      {down:7.2f} s   {down / reference:5.1f}x")
    out(f"  one batch of 8 slices through the network {one_batch:7.2f} s   {one_batch / reference:5.1f}x"
        f"   (first call, tracing: {first_call:.2f} s)")
    out(f"  resample probabilities back (alone)       {up:7.2f} s   {up / reference:5.1f}x")
    out(f"  segment the scan, all of it               {total:7.2f} s   {total / reference:5.1f}x"
        f"   ({sum(result.voxels.values())} voxels painted)")
    out.verdict("2-D segmentation of the scan under 20 s", total < 20, f"{total:.1f} s")
    out(f"  peak memory so far {peak_rss_gb():.2f} GB")
    return total, peak_rss_gb()


def bench_3d(out, torso: Volume, patch: int, overlap: float, batch_size: int) -> float:
    from ctviewer.ml.unet import build_unet_3d, size_multiple

    image = window01(torso.array[72:328, ::2, ::2], (-1000.0, 400.0))
    model = build_unet_3d(base_filters=16, depth=4)
    predict = keras_predict_fn(model)
    one = np.zeros((batch_size, patch, patch, patch, 1), np.float32)
    _, first_call = timed(lambda: predict(one))
    forward = best(lambda: predict(one[:1]) if batch_size == 1 else predict(one), repeats=3) / batch_size
    calls = []

    def counting(b):
        calls.append(len(b))
        return predict(b)

    _, total = timed(lambda: predict_sliding_window(image, counting, patch=(patch,) * 3, overlap=overlap,
                                                    batch_size=batch_size, multiple=size_multiple(model)))
    n = sum(calls)
    out(f"3-D: {image.shape[0]}x{image.shape[1]}x{image.shape[2]} volume, untrained 3-D U-Net (base 16, "
        f"depth 4), patches {patch}^3, overlap {overlap:g}, batches of {batch_size}: {n} patches")
    out(f"  reference: one patch through the network  {forward:7.2f} s    1.0x   (first call, tracing: "
        f"{first_call:.2f} s)")
    out(f"  sliding window, all of it                 {total:7.2f} s   {total / forward:5.1f}x   "
        f"({total / forward / n:.2f}x the bare network time of its {n} patches)")
    out.verdict("3-D sliding window under 60 s", total < 60, f"{total:.1f} s")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--only", choices=("2d", "3d"))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    torso = scan()
    out = Report(__file__, "Segmentation inference")
    if args.only != "3d":
        bench_2d(out, torso)
    if args.only != "2d":
        bench_3d(out, torso, args.patch, args.overlap, args.batch)
    peak = peak_rss_gb()
    out.verdict("peak memory (resident, whole process) under 3 GB", peak < 3, f"{peak:.2f} GB")
    out.save(not args.no_record)


if __name__ == "__main__":
    main()

"""Grad-CAM for one soil slice once the model is loaded: the issue's figure is under 0.5 s.

The network is the shipped ``soil_vgg16`` when it exists, else one built from its config
(``models/configs/soil_vgg16.toml``: base_filters 16, 200x200x3 slices); untrained weights cost the
same time. The slice is from a synthetic soil cube (``ctviewer.synth.soil``). What is timed is what the
GUI and ``ctviewer soil explain`` do per slice: the slice's input channels and ``grad_cam`` (splitting
the model at the layer, the forward pass, the gradient, the weighted sum, the upsampling). The reference,
measured in the same run so the ratio travels across machines, is one plain forward pass of the same
slice (``predict_on_batch``). Each figure: the median of 7 runs after 2 warm-ups.

    .venv/bin/python benchmarks/bench_grad_cam.py [--layer block5_conv3] [--runs 7] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import Report  # noqa: E402  (benchmarks/, the script's folder)

CONFIG = REPO / "models" / "configs" / "soil_vgg16.toml"
TARGET_S = 0.5


def median_time(fn, runs: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="block5_conv3")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from ctviewer.ml import registry
    from ctviewer.ml.training import TrainConfig
    from ctviewer.synth.soil import SoilParams, make_soil_cube
    from ctviewer.workflows.soil import explain, task

    try:
        model, card = registry.load_model("soil_vgg16", task="soil_fraction")
        which, channels = "shipped soil_vgg16", card.inputs.get("channels", task.DEFAULT_CHANNELS)
    except Exception:
        config = TrainConfig.from_toml(CONFIG)
        model, which, channels = task.build(config), "untrained, from soil_vgg16.toml", task.DEFAULT_CHANNELS
    cube = make_soil_cube(SoilParams(seed=7)).image.array
    span = task.value_range(cube)
    index = cube.shape[0] // 2

    def one_grad_cam():
        return explain.grad_cam(model, explain.slice_input(cube, index, channels, span), args.layer)

    image = explain.slice_input(cube, index, channels, span)[None]
    grad_cam_s = median_time(one_grad_cam, args.runs)
    forward_s = median_time(lambda: model.predict_on_batch(image), args.runs)
    early_s = median_time(lambda: explain.grad_cam(model, image[0], "block1_conv2"), args.runs)
    load = os.getloadavg()[0]
    out = Report(__file__, "Grad-CAM for one soil slice")
    out(f"model: {which}; slice {index} of a {cube.shape[0]}x{cube.shape[1]}x{cube.shape[2]} synthetic cube; "
        f"load average {load:.1f}")
    out(f"Grad-CAM of {args.layer} (input + map): {grad_cam_s * 1000:.0f} ms")
    out(f"Grad-CAM of block1_conv2 (largest maps): {early_s * 1000:.0f} ms")
    out(f"reference, one forward pass: {forward_s * 1000:.0f} ms  (Grad-CAM = {grad_cam_s / forward_s:.1f}x)")
    out.verdict(f"Grad-CAM under {TARGET_S} s", grad_cam_s < TARGET_S, f"{grad_cam_s:.2f} s")
    out.save(not args.no_record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

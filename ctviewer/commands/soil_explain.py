"""``ctviewer soil explain``: what a trained soil model looks at in one slice, as a PNG, headless.

    ctviewer soil explain CUBE --model NAME [--layer block3_conv1] [--slice 120] [--method heatmap|activation]
                          [--thresh 100] [--signed] [--opacity 0.4] [--columns N] -o OUT.png

``heatmap``: the slice in grey (the cube's value range) with the Grad-CAM map over it through a colour
map (inferno; blue-white-red around 0 with ``--signed``); ``activation``: the layer's channels whose
activation sum exceeds ``--thresh`` in a near-square grid (grey levels, blank cells white). Slices are
numbered as stored in the file (0 = the first), like the seed's ``--slice``. The channels are the ones
the model was trained on (its card's ``inputs.channels``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError

EXIT_OK = 0
TASK = "soil_fraction"
#: Colour-map anchors (position, RGB), interpolated linearly: matplotlib's inferno and the ends of
#: coolwarm (Moreland's diverging map), so the PNG needs no plotting library.
INFERNO = ((0.0, (0, 0, 4)), (0.25, (87, 16, 110)), (0.5, (188, 55, 84)), (0.75, (249, 142, 9)),
           (1.0, (252, 255, 164)))
DIVERGING = ((0.0, (59, 76, 192)), (0.5, (221, 221, 221)), (1.0, (180, 4, 38)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cube", type=Path, metavar="CUBE", help="the soil cube (.npy, NIfTI, NRRD, DICOM folder)")
    parser.add_argument("--model", required=True, help="soil_fraction model name or .keras path")
    parser.add_argument("--layer", default="block3_conv1", help="a convolutional layer (default block3_conv1)")
    parser.add_argument("--slice", type=int, default=None, help="slice index as stored (default: the middle one)")
    parser.add_argument("--method", choices=("heatmap", "activation"), default="heatmap",
                        help="Grad-CAM heatmap (default) or the activation-map grid")
    parser.add_argument("--thresh", type=float, default=100.0,
                        help="activation: show channels whose activation sum exceeds this (default 100, the seed's)")
    parser.add_argument("--signed", action="store_true",
                        help="heatmap: keep the map's sign (no ReLU), as the seed showed it")
    parser.add_argument("--opacity", type=float, default=0.4, help="heatmap: opacity of the map (default 0.4)")
    parser.add_argument("--columns", type=int, default=None, help="activation: grid columns (default: near-square)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")


def colour_map(values: np.ndarray, anchors) -> np.ndarray:
    """Values in 0..1 -> uint8 RGB ``[..., 3]`` through linearly interpolated anchors."""
    positions = [p for p, _ in anchors]
    rgb = [np.interp(values, positions, [c[k] for _, c in anchors]) for k in range(3)]
    return np.clip(np.stack(rgb, axis=-1), 0, 255).round().astype(np.uint8)


def heatmap_png(plane: np.ndarray, span, heat: np.ndarray, signed: bool, opacity: float) -> np.ndarray:
    """The slice in grey with ``heat`` blended over it (0..max, or -max..max when signed)."""
    grey = np.clip((plane.astype(np.float32) - span[0]) / np.float32(span[1] - span[0]), 0, 1)
    top = float(np.max(np.abs(heat))) or 1.0
    scaled = (heat / top + 1) / 2 if signed else np.clip(heat / top, 0, 1)
    colour = colour_map(scaled, DIVERGING if signed else INFERNO).astype(np.float32)
    out = (1 - opacity) * (grey[..., None] * 255) + opacity * colour
    return np.clip(out, 0, 255).round().astype(np.uint8)


def grid_png(grid: np.ndarray) -> np.ndarray:
    """The activation grid in grey levels, blank cells and gaps white."""
    grey = np.where(np.isnan(grid), 1.0, 0.85 * np.nan_to_num(grid))   # maps stop short of white
    return np.repeat((grey * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def run(args) -> int:
    from ctviewer.io.registry import read_volume
    from ctviewer.ml import registry
    from ctviewer.workflows.soil import explain
    from ctviewer.workflows.soil.task import value_range
    from ctviewer.workflows.thin_section.photos import write_rgb_png

    if not 0 <= args.opacity <= 1:
        raise InputError(f"--opacity should be between 0 and 1, not {args.opacity:g}")
    if args.output.suffix.lower() != ".png":
        raise InputError("the output should be a .png file", args.output)
    cube = read_volume(args.cube, canonical=False)          # slice numbers as stored, like the seed's
    values = cube.array
    if cube.is_rgb or values.ndim != 3:
        raise InputError("is not a gray CT cube", args.cube)
    index = values.shape[0] // 2 if args.slice is None else args.slice
    model, card = registry.load_model(args.model, task=TASK)
    try:
        span = value_range(values)
        image = explain.slice_input(values, index, explain.card_channels(card), span)
        if args.method == "heatmap":
            heat = explain.grad_cam(model, image, args.layer, relu=not args.signed)
            rgb = heatmap_png(values[index], span, heat, args.signed, args.opacity)
            fraction = float(np.asarray(model.predict_on_batch(image[None])).reshape(-1)[0])
            text = (f"Grad-CAM{' (signed)' if args.signed else ''} of {args.layer} on slice {index}: map "
                    f"{heat.min():.3g}..{heat.max():.3g}, model output {fraction:.3f}")
        else:
            maps = explain.activation_maps(model, image, args.layer, args.thresh)
            if not maps:
                sums = [float(m.sum()) for _, m in explain.activation_maps(model, image, args.layer, -np.inf)]
                raise InputError(f"no channel of {args.layer} has an activation sum above {args.thresh:g} on "
                                 f"slice {index} (largest: {max(sums):.4g}); lower --thresh")
            rgb = grid_png(explain.activation_grid(maps, args.columns))
            rows, cols = explain.grid_shape(len(maps), args.columns)
            text = (f"{len(maps)} channels of {args.layer} above {args.thresh:g} on slice {index}, "
                    f"in {rows}x{cols}")
    except InputError as exc:
        if exc.path is None:   # say which cube the size or layer problem is about
            raise InputError(exc.reason, args.cube) from None
        raise
    write_rgb_png(rgb, args.output)
    print(f"wrote {args.output}: {text}")
    return EXIT_OK

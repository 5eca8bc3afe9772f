"""Pictures of the L3/T12 workflow, drawn with Pillow (no plotting library needed):

- the frontal and sagittal projections side by side with a line per level at its pick, labelled with
  the level and the confidence (the seed's ``VISUALIZE``; ``ctviewer locate --png``);
- a histogram of the errors in slices, one panel per level (the seed README's ``errors_hist``
  figures; ``ctviewer locate-eval --png``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ctviewer.io.atomic import atomic_path
from ctviewer.workflows.slice_locator.combine import NOT_FOUND_TEXT
from ctviewer.workflows.slice_locator.picks import NOT_FOUND

#: One colour per level, the same in every picture (and for the review window to reuse).
LEVEL_COLOURS = {"L3": (255, 90, 70), "T12": (70, 190, 255)}
_OTHER_COLOUR = (255, 220, 64)
_GAP = 6
_HEADER = 22
_FONT_SIZE = 13
#: Projections shorter than this are enlarged so that the labels fit beside the lines.
_MIN_HEIGHT = 240

HIST_WIDTH = 640
HIST_PANEL_HEIGHT = 320
#: Errors beyond this many slices are counted in the outermost bars (marked <= / >=).
HIST_MAX_SLICES = 25


def _font(size: int = _FONT_SIZE):
    return ImageFont.load_default(size=size)


def projections_image(projections, picks, title: str = "") -> Image.Image:
    """Frontal | sagittal projection (gray) with one coloured, labelled line per located level."""
    frontal = (np.clip(projections.frontal, 0, 1) * 255).astype(np.uint8)
    sagittal = (np.clip(projections.sagittal, 0, 1) * 255).astype(np.uint8)
    rows = frontal.shape[0]
    scale = max(1, math.ceil(_MIN_HEIGHT / max(rows, 1)))
    width = frontal.shape[1] + _GAP + sagittal.shape[1]
    canvas = Image.new("RGB", (width * scale, rows * scale + _HEADER), (0, 0, 0))
    for image, x0 in ((frontal, 0), (sagittal, frontal.shape[1] + _GAP)):
        tile = Image.fromarray(image, "L").convert("RGB")
        if scale > 1:
            tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
        canvas.paste(tile, (x0 * scale, _HEADER))
    draw = ImageDraw.Draw(canvas)
    font = _font()
    notes = [title] if title else []
    label_x = 3  # labels side by side, so that two levels picked on one row stay readable
    for pick in picks:
        colour = LEVEL_COLOURS.get(pick.level, _OTHER_COLOUR)
        confidence = "" if pick.confidence is None else f" {pick.confidence:.2f}"
        if not pick.in_scan:
            absent = NOT_FOUND_TEXT if pick.status == NOT_FOUND else "not in scan"
            notes.append(f"{pick.level}: {absent}{confidence}")
            continue
        z = pick.z_mm if pick.z_mm is not None else float(projections.slice_z_mm[pick.slice_index])
        y = _HEADER + int(round((projections.z_to_row(z) + 0.5) * scale))
        draw.line([(0, y), (canvas.width - 1, y)], fill=colour, width=max(1, scale))
        label = pick_label(pick)
        box = draw.textbbox((label_x, 0), label, font=font)
        top = max(_HEADER, y - (box[3] - box[1]) - 4)
        draw.rectangle([box[0] - 2, top, box[2] + 2, top + box[3] - box[1] + 3], fill=(0, 0, 0))
        draw.text((label_x, top + 1 - box[1]), label, fill=colour, font=font)
        label_x = box[2] + 12
    draw.text((3, 4), "   ".join(notes), fill=(230, 230, 230), font=font)
    return canvas


def pick_label(pick) -> str:
    """``L3 0.91 slice 51``; a pick the reader must check says so in words: ``(levels disagree — check)``,
    ``(from the spine count)``, ``(corrected)``."""
    from ctviewer.workflows.slice_locator.combine import level_remark

    confidence = "" if pick.confidence is None else f" {pick.confidence:.2f}"
    remark = level_remark(pick) or ("" if pick.status == "predicted" else pick.status.replace("_", " "))
    return f"{pick.level}{confidence}{f' ({remark})' if remark else ''} slice {pick.slice_index}"


def write_projections_png(projections, picks, path: str | Path, title: str = "") -> Path:
    """Save :func:`projections_image` as a PNG (atomically)."""
    path = Path(path)
    image = projections_image(projections, picks, title)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def error_histogram(errors_by_level: dict[str, np.ndarray], unit: str = "slices") -> Image.Image:
    """One panel per level: how many picks were off by each whole number of ``unit`` (signed)."""
    levels = list(errors_by_level)
    canvas = Image.new("RGB", (HIST_WIDTH, HIST_PANEL_HEIGHT * max(1, len(levels))), "white")
    draw = ImageDraw.Draw(canvas)
    for n, level in enumerate(levels):
        _histogram_panel(draw, np.asarray(errors_by_level[level], dtype=float), level, unit,
                         top=n * HIST_PANEL_HEIGHT)
    return canvas


def write_error_histogram(errors_by_level: dict[str, np.ndarray], path: str | Path, unit: str = "slices") -> Path:
    path = Path(path)
    image = error_histogram(errors_by_level, unit)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def _histogram_panel(draw: ImageDraw.ImageDraw, errors: np.ndarray, level: str, unit: str, top: int) -> None:
    font, small = _font(15), _font(11)
    errors = errors[np.isfinite(errors)]
    left, right, plot_top, bottom = 50, HIST_WIDTH - 20, top + 36, top + HIST_PANEL_HEIGHT - 40
    if errors.size:
        title = (f"{level}: {errors.size} picks, error median {np.median(np.abs(errors)):.2f}, "
                 f"mean {np.mean(np.abs(errors)):.2f}, max {np.max(np.abs(errors)):.2f} {unit}")
    else:
        title = f"{level}: no matched picks"
    draw.text((left, top + 10), title, fill="black", font=font)
    reach = int(min(HIST_MAX_SLICES, max(3, math.ceil(np.max(np.abs(errors))) if errors.size else 3)))
    bins = np.arange(-reach, reach + 1)
    counts = np.bincount((np.clip(np.rint(errors), -reach, reach) + reach).astype(int), minlength=bins.size) \
        if errors.size else np.zeros(bins.size, int)
    highest = max(1, int(counts.max()))
    step = (right - left) / bins.size
    colour = LEVEL_COLOURS.get(level, (90, 90, 200))
    for i, (value, count) in enumerate(zip(bins, counts)):
        x0 = left + i * step
        if count:
            y0 = bottom - (bottom - plot_top) * count / highest
            draw.rectangle([x0 + 1, y0, x0 + step - 1, bottom], fill=colour, outline=(40, 40, 40))
        if bins.size <= 21 or value % 5 == 0:
            mark = ("<=" if value == -reach and np.any(errors < -reach) else
                    ">=" if value == reach and np.any(errors > reach) else "") + str(value)
            draw.text((x0 + step / 2, bottom + 4), mark, fill="black", font=small, anchor="mt")
    draw.line([(left, bottom), (right, bottom)], fill="black")
    draw.line([(left, plot_top), (left, bottom)], fill="black")
    for tick in range(0, highest + 1, max(1, math.ceil(highest / 5))):
        y = bottom - (bottom - plot_top) * tick / highest
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((left - 6, y), str(tick), fill="black", font=small, anchor="rm")
    draw.text(((left + right) / 2, bottom + 20), f"error ({unit}; predicted - truth, + = towards the head)",
              fill="black", font=small, anchor="mt")

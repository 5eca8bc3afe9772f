"""The class fractions of a predicted folder as a table (``fractions.csv``) and a chart
(``fractions_histogram.png``), drawn with Pillow like ``slice_locator/drawing.py``.

The chart shows, for a few photos, grouped bars (one group per photo, one bar per class, in the
class colours); for many photos the bars would be unreadable, so it shows instead one histogram per
class of its fraction across the photos (with mean and median in each panel's title).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ctviewer.io.atomic import atomic_path
from ctviewer.io.csv_safe import write_csv

#: Up to this many photos the chart has one group of bars per photo; beyond, one histogram per class.
MAX_GROUPED = 12
WIDTH = 720
PANEL_HEIGHT = 220
_BAR_MAX, _GROUP_GAP = 16, 14
_OUTLINE = (60, 60, 60)


def fraction_columns(table) -> list[str]:
    """``1 black grains %`` … : the per-class columns of fractions.csv."""
    return [f"{lab.id} {lab.name} %" for lab in table]


def write_fractions_csv(rows, table, porosity_class: int, path) -> Path:
    """image, width, height, one "<id> <name> %" column per class, porosity % — one row per photo (atomic)."""
    # csv_safe: a photo or class named =..., +..., -..., @... is written as text, not a formula
    return write_csv(path, ([row["image"], row["width"], row["height"],
                             *(f"{row['fractions'].get(i, 0.0):.3f}" for i in table.ids), f"{row['porosity']:.3f}"]
                            for row in rows),
                     header=["image", "width", "height", *fraction_columns(table), "porosity %"])


def fractions_chart(rows, table) -> Image.Image:
    """Grouped bars per photo (up to MAX_GROUPED photos), else one histogram per class across photos."""
    return _grouped_bars(rows, table) if len(rows) <= MAX_GROUPED else _histograms(rows, table)


def write_fractions_histogram(rows, table, path) -> Path:
    path = Path(path)
    image = fractions_chart(rows, table)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def _font(size: int):
    return ImageFont.load_default(size=size)


def _grouped_bars(rows, table) -> Image.Image:
    labels = list(table)
    left, right = 50, WIDTH - 20
    top_margin = 40 + 18 * math.ceil(len(labels) / 2)
    height = top_margin + PANEL_HEIGHT + 40
    canvas = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _font(15), _font(11)
    draw.text((left, 8), "Class fractions per photo (% of its pixels)", fill="black", font=font)
    _legend(draw, labels, left, 30, small)
    bottom, plot_top = height - 40, top_margin
    highest = max([v for row in rows for v in row["fractions"].values()] + [1.0])
    top_value = min(100.0, math.ceil(highest / 10) * 10)
    _y_axis(draw, left, right, plot_top, bottom, top_value, small)
    group = (right - left) / max(1, len(rows))
    bar = min(_BAR_MAX, (group - _GROUP_GAP) / len(labels))
    for n, row in enumerate(rows):
        centre = left + (n + 0.5) * group
        x0 = centre - bar * len(labels) / 2
        for k, lab in enumerate(labels):
            value = row["fractions"].get(lab.id, 0.0)
            y = bottom - (bottom - plot_top) * min(value, top_value) / top_value
            draw.rectangle([x0 + k * bar, y, x0 + (k + 1) * bar - 1, bottom], fill=tuple(lab.colour), outline=_OUTLINE)
        fits = max(4, int(group / 6.5))   # characters of an 11-px font that fit under the group
        name = row["image"] if len(row["image"]) <= fits else row["image"][:fits - 1] + "…"
        draw.text((centre, bottom + 5), name, fill="black", font=small, anchor="mt")
    return canvas


def _histograms(rows, table) -> Image.Image:
    labels = list(table)
    canvas = Image.new("RGB", (WIDTH, PANEL_HEIGHT * len(labels)), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _font(14), _font(11)
    left, right = 50, WIDTH - 20
    for n, lab in enumerate(labels):
        top = n * PANEL_HEIGHT
        values = np.array([row["fractions"].get(lab.id, 0.0) for row in rows], dtype=float)
        draw.text((left, top + 8), f"{lab.id} {lab.name}: {len(values)} photos, mean {values.mean():.1f} %, "
                                    f"median {np.median(values):.1f} %, range {values.min():.1f}-{values.max():.1f} %",
                  fill="black", font=font)
        edges = np.linspace(0, 100, 21)
        counts, _ = np.histogram(values, bins=edges)
        plot_top, bottom = top + 34, top + PANEL_HEIGHT - 36
        highest = max(1, int(counts.max()))
        _y_axis(draw, left, right, plot_top, bottom, highest, small, whole=True)
        step = (right - left) / len(counts)
        for i, count in enumerate(counts):
            if count:
                y = bottom - (bottom - plot_top) * count / highest
                draw.rectangle([left + i * step + 1, y, left + (i + 1) * step - 1, bottom],
                               fill=tuple(lab.colour), outline=_OUTLINE)
        for i, edge in enumerate(edges[::2]):
            draw.text((left + 2 * i * step, bottom + 4), f"{edge:.0f}", fill="black", font=small, anchor="mt")
        draw.text(((left + right) / 2, bottom + 18), "% of the photo (photos per 5 % bin)", fill="black",
                  font=small, anchor="mt")
    return canvas


def _legend(draw, labels, left: int, top: int, font) -> None:
    for k, lab in enumerate(labels):
        x, y = left + (k % 2) * 320, top + (k // 2) * 18
        draw.rectangle([x, y + 2, x + 11, y + 13], fill=tuple(lab.colour), outline=_OUTLINE)
        draw.text((x + 16, y + 1), f"{lab.id} {lab.name}"[:48], fill="black", font=font)


def _y_axis(draw, left, right, plot_top, bottom, top_value, font, whole: bool = False) -> None:
    draw.line([(left, bottom), (right, bottom)], fill="black")
    draw.line([(left, plot_top), (left, bottom)], fill="black")
    if whole:
        step = max(1, math.ceil(top_value / 5))
    else:   # percentages: ticks every 10 (20 above 60), at most 6 of them
        step = 10 if top_value <= 60 else 20
    tick = 0.0
    while tick <= top_value + 1e-9:
        y = bottom - (bottom - plot_top) * tick / top_value
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((left - 6, y), f"{tick:.0f}", fill="black", font=font, anchor="rm")
        tick += step

"""Thin sections dock: the photo list, the class-fractions table and a live chart share a splitter, so the
list keeps its room; the table fits the dock without scrolling sideways; the chart's bars are the table's
numbers and follow each new prediction; the classes read the same everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tests.gui.conftest import make_main_window

from ctviewer.imaging.bins import thin_section_table
from ctviewer.workflows.thin_section.classes import POROSITY_CLASS, class_fractions
from ctviewer.workflows.thin_section.photos import read_label_image

pytestmark = pytest.mark.gui
NAMES = ["black grains", "darker grains", "blue-dye epoxy (visual porosity)", "darker bright grains",
         "bright quartz grains"]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    import platformdirs

    from ctviewer.synth import demo

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "thin_section_demo_size", lambda: (96, 128))
    return make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))


def _open_demo(window, qtbot):
    file_menu = window.menuBar().actions()[0].menu()
    (action,) = [a for a in file_menu.actions() if a.text().replace("&", "") == "Open demo thin sections"]
    dock = window.thin_section_dock
    with qtbot.waitSignal(dock.project_opened, timeout=30000):
        action.trigger()
    dock.raise_()
    qtbot.waitUntil(lambda: dock.photos.isVisible(), timeout=5000)
    return dock


def _rows_from_labels(project) -> list[dict]:
    """What a folder run returns, with the demo's own labels standing in for a model's classes."""
    rows = []
    for item in project.images:
        if item.label_path is None:
            continue
        ids = read_label_image(item.label_path)
        fractions = class_fractions(ids, [lab.id for lab in project.table])
        rows.append({"image": Path(item.image_path).name, "width": ids.shape[1], "height": ids.shape[0],
                     "fractions": fractions, "porosity": fractions[POROSITY_CLASS]})
    return rows


def _table_numbers(table) -> dict[str, list[float]]:
    return {table.item(r, 0).text(): [float(table.item(r, c).text()) for c in range(1, 6)]
            for r in range(table.rowCount())}


def _chart_numbers(chart, photos) -> dict[str, list[float]]:
    per_class = [chart.heights(lab.id) for lab in thin_section_table()]
    return {name: [round(h[n], 1) for h in per_class] for n, name in enumerate(photos)}


def test_list_table_and_live_chart_share_a_splitter(window, qtbot, tmp_path):
    dock = _open_demo(window, qtbot)
    results = dock.results
    splitter = dock.splitter
    assert [splitter.widget(n) for n in range(splitter.count())] == [dock.photos, results.table, results.chart]

    rows = _rows_from_labels(dock.project)
    dock._folder_done(rows, [], tmp_path / "out")   # what a "Predict folder…" run hands the dock
    qtbot.wait(100)
    table, chart = results.table, results.chart
    assert table.isVisible() and chart.isVisible() and table.rowCount() == len(rows) == 5
    # the list keeps its room: several photo rows show, not one
    row_height = dock.photos.visualItemRect(dock.photos.topLevelItem(0)).height()
    assert dock.photos.viewport().height() >= 3 * row_height
    # the table fits the dock's width: nothing to scroll sideways, full names in the header tooltips
    assert table.horizontalScrollBar().maximum() == 0, f"dock {dock.width()} px wide"
    headers = [table.horizontalHeaderItem(c) for c in range(1, 6)]
    assert [h.text().replace("\n", " ") for h in headers] == ["black", "darker", "blue-dye epoxy", "darker bright", "bright quartz"]
    assert [h.toolTip() for h in headers] == [f"{n + 1} {name} % of the labelled pixels" for n, name in enumerate(NAMES)]
    # the chart's bars are the table's numbers, each class in its colour
    photos = [row["image"] for row in rows]
    assert _chart_numbers(chart, photos) == _table_numbers(table)
    for lab in thin_section_table():
        assert chart.bars[lab.id].opts["brush"].color().getRgb()[:3] == tuple(lab.colour)

    # a new prediction of one photo changes its row and its bar, and nothing else
    item = next(im for im in dock.project.images if Path(im.image_path).name == photos[0])
    with qtbot.waitSignal(dock.photo_opened, timeout=20000):
        dock.open_photo(item.name)
    before = _table_numbers(table)
    ids = np.full(read_label_image(item.label_path).shape, POROSITY_CLASS, np.uint8)
    ids[: ids.shape[0] // 4] = 5                     # a quarter bright quartz, the rest epoxy
    with qtbot.waitSignal(dock.predicted, timeout=5000):
        dock._predicted(item, window.study, None, ids)
    after = _table_numbers(table)
    assert after[photos[0]] == [0.0, 0.0, 75.0, 0.0, 25.0]
    assert {k: v for k, v in after.items() if k != photos[0]} == {k: v for k, v in before.items() if k != photos[0]}
    assert _chart_numbers(chart, photos) == after
    assert table.horizontalScrollBar().maximum() == 0

    shot = dock.grab()
    out = Path(os.environ.get("CTVIEWER_SHOTS", tmp_path))
    assert shot.save(str(out / "thin_section_fractions.png"))


def test_class_names_read_the_same_in_the_photo_labels_and_the_table(window, qtbot, tmp_path):
    dock = _open_demo(window, qtbot)
    assert [lab.name for lab in dock.project.table] == NAMES
    item = next(im for im in dock.project.images if im.label_path is not None)
    with qtbot.waitSignal(dock.photo_opened, timeout=20000):
        dock.open_photo(item.name)
    assert [lab.name for lab in dock.label_layer().labels.table] == NAMES


def test_another_project_starts_without_the_last_ones_fractions(window, qtbot, tmp_path):
    dock = _open_demo(window, qtbot)
    dock._folder_done(_rows_from_labels(dock.project), [], tmp_path / "out")
    assert dock.results.table.rowCount() == 5
    with qtbot.waitSignal(dock.project_opened, timeout=30000):
        dock.open_folder(dock.project.folder)
    assert dock.results.rows == {} and dock.results.table.isHidden() and dock.results.chart.isHidden()


def test_a_big_folder_names_every_nth_bar_so_the_names_never_overlap(qtbot):
    from app.thin_section.fractions_chart import MAX_NAMES, FractionsChart

    chart = FractionsChart()
    qtbot.addWidget(chart)
    photos = [f"photo_{n}.png" for n in range(40)]
    chart.show_fractions(photos, [{3: float(n), 5: 100.0 - n} for n in range(40)], thin_section_table())
    (ticks,) = chart.getAxis("bottom")._tickLevels
    assert len(ticks) <= MAX_NAMES and ticks[0] == (0, "photo_0.png")
    assert chart.heights(3) == [float(n) for n in range(40)] and chart.heights(1) == [0.0] * 40

"""Room for the images: the views' share of the window, layouts that do not depend on what was shown
before, dock tabs at the top, and the window reopening where it was closed."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QTabBar, QTabWidget

from tests.gui.conftest import make_main_window

KEYS = {"grid": Qt.Key.Key_1, "one_plus_two": Qt.Key.Key_2, "single": Qt.Key.Key_3}


def _settle(qtbot, ms: int = 150) -> None:
    QApplication.processEvents()
    qtbot.wait(ms)


def _press(qtbot, win, layout: str) -> None:
    """Ctrl+1 / Ctrl+2 / Ctrl+3 as the user types them (the View menu's shortcuts)."""
    win.activateWindow()
    qtbot.keyClick(win, KEYS[layout], Qt.KeyboardModifier.ControlModifier)
    _settle(qtbot)
    assert win.viewer.layout_name == layout


def _view_rects(win) -> dict[str, QRect]:
    """Each shown view (slices and 3D) in window coordinates."""
    out = {}
    for name, panel in win.viewer._panels().items():
        if panel.isVisible():
            out[name] = QRect(panel.mapTo(win, panel.rect().topLeft()), panel.size())
    return out


def test_the_views_cover_two_thirds_of_the_window_in_every_layout(qtbot, tmp_path, monkeypatch, stamp_study):
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    win.set_study(stamp_study)
    _settle(qtbot, 300)
    assert win.size().toTuple() == (1600, 1000)
    window_area = win.width() * win.height()
    for layout in ("grid", "one_plus_two", "single"):
        _press(qtbot, win, layout)
        rects = _view_rects(win)
        block = QRect()
        for rect in rects.values():
            block = block.united(rect)
        # the block of views (with the thin splitter handles between them) is the images' room
        share = block.width() * block.height() / window_area
        assert share >= 2 / 3, f"{layout}: the views cover {share:.1%} of the window"
        # ...and that block is all views: handles take under 1 % of it
        covered = sum(r.width() * r.height() for r in rects.values())
        assert covered >= 0.99 * block.width() * block.height(), layout
    # what the user sees: the screenshot on disk, the views' area black CT background beside the docks
    _press(qtbot, win, "grid")
    path = tmp_path / "window.png"
    assert win.grab().save(str(path))
    shot = QImage(str(path))
    assert (shot.width(), shot.height()) == (1600, 1000)
    docks_left = win.labels_dock.mapTo(win, win.labels_dock.rect().topLeft()).x()
    assert docks_left >= 1600 * 2 / 3, "the side docks take more than a third of the width"


def test_each_layout_looks_the_same_whatever_was_shown_before(qtbot, tmp_path, monkeypatch, stamp_study):
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    win.set_study(stamp_study)
    _settle(qtbot, 300)
    first: dict[str, dict] = {}
    for layout in ("grid", "single", "grid", "one_plus_two", "single", "one_plus_two", "grid", "single",
                   "one_plus_two"):
        _press(qtbot, win, layout)
        sizes = {name: (r.width(), r.height()) for name, r in _view_rects(win).items()}
        if layout not in first:
            first[layout] = sizes
            continue
        assert sizes.keys() == first[layout].keys(), layout
        for name, (w, h) in sizes.items():
            w0, h0 = first[layout][name]
            assert abs(w - w0) <= 3 and abs(h - h0) <= 3, f"{layout}: {name} is {w}x{h}, was {w0}x{h0}"
    grid = first["grid"]
    assert set(grid) == {"axial", "coronal", "sagittal", "3d"}
    widths, heights = [w for w, _ in grid.values()], [h for _, h in grid.values()]
    assert max(widths) - min(widths) <= 2 and max(heights) - min(heights) <= 2, f"grid quarters differ: {grid}"
    big = first["one_plus_two"]["axial"]
    small = [s for n, s in first["one_plus_two"].items() if n != "axial"]
    assert len(small) == 2 and all(abs(2 * w - big[0]) <= 8 and abs(2 * h - big[1]) <= 8 for w, h in small)
    assert first["single"] == {"axial": (win.viewer.width(), win.viewer.height())}


def test_a_dragged_splitter_stays_when_the_window_is_resized(qtbot, tmp_path, monkeypatch):
    """Layouts reset their proportions when chosen; after that, the user's own sizes are kept."""
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    root = win.viewer._root
    root.moveSplitter(300, 1)   # what a handle drag does; it emits splitterMoved
    _settle(qtbot)
    win.resize(1500, 1000)
    _settle(qtbot)
    assert abs(win.viewer.views["axial"].width() - 300) <= 40


def test_the_dock_tabs_are_at_the_top_of_their_area(qtbot, tmp_path, monkeypatch):
    win = make_main_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    _settle(qtbot)
    assert win.tabPosition(Qt.DockWidgetArea.RightDockWidgetArea) == QTabWidget.TabPosition.North
    bars = [b for b in win.findChildren(QTabBar) if b.parent() is win and b.isVisible()]
    assert bars, "the tabbed docks show no tab bar"
    titles = [bars[0].tabText(n) for n in range(bars[0].count())]
    assert {"Labels", "Models", "Thin sections", "Soil"} <= set(titles)
    bar_bottom = bars[0].geometry().bottom()
    assert bar_bottom <= win.labels_dock.geometry().top() + 2, "the tabs sit below the Labels dock"


def test_the_first_window_opens_maximised(qtbot, tmp_path):
    from app.main_window import MainWindow

    win = MainWindow(settings=QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show_as_last_time()
    qtbot.waitExposed(win)
    assert win.windowState() & Qt.WindowState.WindowMaximized


def test_the_window_reopens_where_it_was_closed(qtbot, tmp_path, monkeypatch):
    from app.main_window import MainWindow

    ini = tmp_path / "settings.ini"
    first = MainWindow(settings=QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(first)
    first.resize(1100, 720)
    first.move(60, 40)
    first.show()
    qtbot.waitExposed(first)
    _settle(qtbot)
    first.resizeDocks([first.labels_dock], [300], Qt.Orientation.Horizontal)
    _settle(qtbot)
    assert first.close()
    _settle(qtbot)

    stored = QSettings(str(ini), QSettings.Format.IniFormat)   # what is in the file on disk
    assert ini.stat().st_size > 0
    assert stored.value("window/geometry") and stored.value("window/state")

    again = MainWindow(settings=QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    again.show_as_last_time()
    qtbot.waitExposed(again)
    _settle(qtbot, 300)
    assert not again.windowState() & Qt.WindowState.WindowMaximized
    assert again.size().toTuple() == (1100, 720)
    assert abs(again.labels_dock.width() - 300) <= 4

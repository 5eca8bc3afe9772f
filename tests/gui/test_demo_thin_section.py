"""The demo thin sections from the File menu and from `ctviewer demo --thin-section`: six synthetic photos
open as a project in the Thin sections dock, so the workflow can be tried without photos of one's own."""

from __future__ import annotations

import pytest
from tests.gui.conftest import make_main_window


pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    import platformdirs

    from ctviewer.synth import demo

    # small photos in a cache of this test's own
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "thin_section_demo_size", lambda: (96, 128))
    return make_main_window(qtbot, tmp_path, monkeypatch)


def test_file_menu_opens_the_demo_thin_sections_in_their_dock(window, qtbot, tmp_path):
    file_menu = window.menuBar().actions()[0].menu()
    (action,) = [a for a in file_menu.actions() if a.text().replace("&", "") == "Open demo thin sections"]
    dock = window.thin_section_dock
    with qtbot.waitSignal(dock.project_opened, timeout=30000) as opened:
        action.trigger()
    project = opened.args[0]
    assert project.layout == "seed" and project.folder.parent == tmp_path / "cache"
    assert dock.photos.topLevelItemCount() == 6 and dock.isVisible()
    assert sorted(im.status for im in project.images) == ["labelled"] * 5 + ["unlabelled"]


def test_ctviewer_demo_thin_section_starts_the_gui_on_the_demo_photos(monkeypatch):
    from app import main

    started = []   # the real run_gui would wait in the event loop: the command line is what this test checks
    monkeypatch.setattr(main, "run_gui", lambda paths, demo=False, thin_section=False: started.append(demo) or 0)
    assert main.main(["demo", "--thin-section"]) == 0 and main.main(["demo"]) == 0
    assert started == ["thin-section", True]          # plain `ctviewer demo` (make run) stays the torso

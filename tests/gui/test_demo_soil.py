"""The demo soil cube from the File menu and from `ctviewer demo --soil`: it opens with its truth
labels and a window that shows air, roots, matrix and stones apart (not a CT preset)."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.synth.soil import BIOPORES, MATRIX, SOIL_WINDOW, SoilParams
from tests.gui.conftest import make_main_window

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    import platformdirs

    from ctviewer.synth import demo

    # a small cube in a cache of this test's own
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "soil_demo_params", lambda: SoilParams(shape=(48, 40, 40), voxel_mm=0.4, seed=0))
    return make_main_window(qtbot, tmp_path, monkeypatch)


def test_file_menu_opens_the_demo_soil_cube_with_its_truth(window, qtbot, tmp_path):
    file_menu = window.menuBar().actions()[0].menu()
    (action,) = [a for a in file_menu.actions() if a.text().replace("&", "") == "Open demo soil cube"]
    with qtbot.waitSignal(window.opener.opened, timeout=30000):
        action.trigger()
    study = window.study
    assert study.image.shape == (48, 40, 40) and study.image.array.dtype == np.int16
    assert window.viewer.display.window == SOIL_WINDOW
    (layer,) = study.layers.by_kind("labels")
    assert np.any(layer.array == BIOPORES) and not layer.labels.table[MATRIX].visible
    assert list((tmp_path / "cache").glob("demo-soil-v*/demo_soil_cube.npy"))   # cached for next time


def test_ctviewer_demo_soil_starts_the_gui_on_the_soil_cube(monkeypatch, capsys):
    from app import main

    started = []   # the real run_gui would wait in the event loop: the command line is what this test checks
    monkeypatch.setattr(main, "run_gui", lambda paths, demo=False, thin_section=False: started.append(demo) or 0)
    assert main.main(["demo", "--soil"]) == 0 and main.main(["demo"]) == 0
    assert started == ["soil", True]          # plain `ctviewer demo` (make run) stays the torso
    assert main.main(["demo", "--soill"]) == 2 and "ctviewer demo [--soil | --thin-section]" in capsys.readouterr().err

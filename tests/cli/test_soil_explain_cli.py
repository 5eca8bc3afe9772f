"""`ctviewer soil explain`, in-process, with a tiny untrained VGG16 regressor saved through the registry:
a heatmap PNG (grey slice + colour map), an activation grid PNG, and one-line refusals (exit 2) for a
wrong layer, a cube of another size, and a threshold no channel passes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ctviewer.cli import main
from ctviewer.ml import registry

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.vgg16 import build_vgg16_regressor

    folder = tmp_path_factory.mktemp("models")
    card = ModelCard(name="soil-tiny", task="soil_fraction", created="2026-01-02",
                     inputs={"kind": "soil_slices", "size": 32, "channels": [[1, 2], [3, 4], [5, 6]]})
    registry.save_model(build_vgg16_regressor((32, 32, 3), base_filters=2, dense=4), card, folder)
    return folder


@pytest.fixture
def models_dir(saved_model, user_models, monkeypatch):
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(saved_model))   # the session's model, no shipped ones
    return saved_model


def _cube(tmp_path, shape=(12, 32, 32)):
    from ctviewer.synth.soil import SoilParams, make_soil_cube

    path = tmp_path / f"cube{shape[1]}.npy"
    np.save(path, make_soil_cube(SoilParams(shape=shape, seed=4)).image.array)
    return path


def test_heatmap_writes_the_slice_with_the_map_over_it(models_dir, tmp_path, capsys):
    cube, out = _cube(tmp_path), tmp_path / "heat.png"
    args = ["soil", "explain", str(cube), "--model", "soil-tiny", "--layer", "block2_conv1", "--slice", "3", "-o"]
    assert main([*args, str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "block2_conv1" in lines[0] and "slice 3" in lines[0] and str(out) in lines[0]
    rgb = np.asarray(Image.open(out).convert("RGB"))
    assert rgb.shape == (32, 32, 3)
    plain = tmp_path / "plain.png"          # opacity 0: the grey slice alone
    assert main([*args, str(plain), "--opacity", "0", "--signed"]) == 0
    grey = np.asarray(Image.open(plain).convert("RGB")).astype(int)
    assert np.all(grey[..., 0] == grey[..., 1]) and np.ptp(grey) > 50


def test_activation_writes_a_grid_of_the_channels_above_the_threshold(models_dir, tmp_path, capsys):
    cube, out = _cube(tmp_path), tmp_path / "grid.png"
    assert main(["soil", "explain", str(cube), "--model", "soil-tiny", "--layer", "block1_conv1", "--method",
                 "activation", "--thresh", "-1", "-o", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "2 channels of block1_conv1" in line and "1x2" in line     # base_filters=2: both channels
    assert np.asarray(Image.open(out)).shape == (32, 2 * 32 + 1, 3)


def test_mistakes_are_one_line_refusals(models_dir, tmp_path, capsys):
    cube = _cube(tmp_path)
    base = ["soil", "explain", str(cube), "--model", "soil-tiny", "-o", str(tmp_path / "x.png")]
    assert main([*base, "--layer", "fraction"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(cube) in err and "not a convolutional layer" in err
    assert "block1_conv1, block1_conv2" in err and "block5_conv3" in err
    assert main(["soil", "explain", str(_cube(tmp_path, (8, 40, 40))), "--model", "soil-tiny",
                 "-o", str(tmp_path / "x.png")]) == 2
    assert "takes 32x32 slices" in capsys.readouterr().err
    assert main([*base, "--method", "activation", "--thresh", "1e12"]) == 2
    assert "lower --thresh" in capsys.readouterr().err
    assert main([*base, "--slice", "99"]) == 2
    assert "slices 0..11" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()

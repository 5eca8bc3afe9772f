"""The L3/T12 locator network: its custom layer survives a safe-mode save/load, the heatmap has one
value per projection row whatever the height, a tiny model learns to find a level, the loss ignores
levels nobody confirmed, and the shipped model finds L3/T12 on a synthetic scan."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.ml import locator as loc
from ctviewer.ml.cards import ModelCard
from ctviewer.ml.registry import SHIPPED_DIR
from ctviewer.workflows.slice_locator.projections import Projections

keras = loc.keras


def _tiny(levels=("L3", "T12"), width=32):
    return loc.build_locator(levels, width_px=width, base_filters=4, depth=2, context_dilations=(1, 2),
                             compile=False)


def _projections(rows: int, cols: int = 40, rng=None) -> Projections:
    rng = rng or np.random.default_rng(0)
    image = rng.random((rows, cols)).astype(np.float32)
    return Projections(frontal=image, sagittal=image[:, ::-1].copy(), top_z_mm=100.0, spacing_mm=1.0,
                       slice_z_mm=np.linspace(100.0 - rows + 1, 100.0, rows), body_centre_col=(cols / 2, cols / 2))


def test_max_over_width_takes_the_row_maximum():
    x = np.zeros((1, 3, 5, 2), np.float32)
    x[0, 1, 3, 0], x[0, 2, 0, 1] = 7.0, -1.0
    out = keras.ops.convert_to_numpy(loc.MaxOverWidth()(x))
    assert out.shape == (1, 3, 2)
    assert out[0, 1, 0] == 7.0 and out[0, 2, 1] == 0.0 and out[0, 0, 0] == 0.0


def test_model_round_trip_with_safe_mode(tmp_path):
    model = _tiny()
    x = np.random.default_rng(1).random((1, 48, 32, 2)).astype(np.float32)
    path = tmp_path / "tiny.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert any(isinstance(layer, loc.MaxOverWidth) for layer in again.layers)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x, training=False)),
                               keras.ops.convert_to_numpy(model(x, training=False)),
                               atol=1e-5)


@pytest.mark.parametrize("rows", [37, 101, 128])
def test_heatmap_has_one_value_per_projection_row(rows):
    model = _tiny()
    card = ModelCard(name="tiny", task="slice_locator", inputs={"width_px": 32, "row_multiple": 4},
                     outputs={"levels": ["L3", "T12"], "threshold": 0.5})
    locator = loc.Locator(model, card)
    projections = _projections(rows)
    heat = locator.heatmaps(projections)
    assert set(heat) == {"L3", "T12"}
    assert all(h.shape == (rows,) for h in heat.values())
    # the rows kept are the scan's own rows: the zero padding went at the bottom and was cut off there
    padded = locator.input_for(projections)
    assert padded.shape[0] % 4 == 0 and padded.shape[0] - rows < 4
    full = keras.ops.convert_to_numpy(model(padded[None], training=False))[0]
    np.testing.assert_allclose(heat["L3"], full[:rows, 0], atol=1e-6)


def test_find_peak_refines_between_rows_and_applies_the_threshold():
    h = np.zeros(50)
    h[20], h[21] = 0.8, 0.8
    peak = loc.find_peak(h, threshold=0.5, level="L3")
    assert peak.in_scan and abs(peak.row - 20.5) < 1e-6 and peak.confidence == pytest.approx(0.8)
    assert not loc.find_peak(h * 0.5, threshold=0.5).in_scan


def test_loss_leaves_out_levels_nobody_confirmed():
    rng = np.random.default_rng(2)
    pred = rng.uniform(0.05, 0.95, (2, 16, 2)).astype(np.float32)
    truth = rng.uniform(0, 1, (2, 16, 2)).astype(np.float32)
    unknown = truth.copy()
    unknown[:, :, 1] = np.nan
    only_first = float(np.mean(np.asarray(loc.masked_binary_crossentropy(truth[..., :1], pred[..., :1]))))
    masked = float(np.mean(np.asarray(loc.masked_binary_crossentropy(unknown, pred))))
    assert masked == pytest.approx(only_first, rel=1e-5)
    import tensorflow as tf

    p = tf.Variable(pred)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(loc.masked_binary_crossentropy(unknown, p))
    grad = tape.gradient(loss, p).numpy()
    assert np.isfinite(grad).all() and np.all(grad[..., 1] == 0)


def _toy_scan(rng, rows=96, cols=40):
    """A body (dim) with evenly spaced "vertebrae" and one wide bright bar: the level to find."""
    image = np.zeros((rows, cols), np.float32)
    image[:, 6:34] = 0.08
    for r in range(4, rows, 14):
        image[r:r + 8, 14:26] = 0.3
    level = int(rng.integers(16, rows - 16))
    image[level - 2:level + 3, 8:32] = 0.9
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    return np.clip(image, 0, 1), level


def test_tiny_model_learns_to_find_a_level():
    from ctviewer.workflows.slice_locator.augment import row_targets

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(3)
    scans = [_toy_scan(rng) for _ in range(16)]
    x = np.stack([np.stack([img[:, 4:36], img[:, 4:36]], -1) for img, _ in scans])
    y = np.stack([row_targets(96, [lv], 3.0) for _, lv in scans])
    model = loc.build_locator(("L3",), width_px=32, base_filters=4, depth=3, context_dilations=(1, 2),
                              learning_rate=5e-3)
    model.fit(x, y, batch_size=8, epochs=20, verbose=0)
    errors = []
    for _ in range(4):
        img, level = _toy_scan(rng)
        heat = loc.predict_rows(model, img, img, (20, 20), width_px=32, stride=8)[:, 0]
        errors.append(abs(loc.find_peak(heat, 0.3).row - level))
    assert np.median(errors) <= 3.0, errors


def _shipped():
    if not (SHIPPED_DIR / f"{loc.SHIPPED_NAME}.keras").exists():
        pytest.skip("no shipped slice_locator model in models/ (train it with models/configs/slice_locator.toml)")
    return loc.Locator.load()


def test_shipped_model_finds_levels_on_a_held_out_synthetic_scan():
    """On a held-out synthetic scan each level is found within 25 % above the card's largest error on
    its held-out scans (1.17 mm for L3, 1.48 mm for T12); the middle of the scan, a constant guess, is not."""
    import json

    locator = _shipped()
    from ctviewer.synth import TorsoParams, make_torso
    from ctviewer.workflows.slice_locator.projections import make_projections

    card = json.loads((SHIPPED_DIR / f"{loc.SHIPPED_NAME}.json").read_text())["metrics"]["synthetic_test"]
    torso = make_torso(TorsoParams.random(1_000_500, field_of_view="both"))  # a seed outside the training range
    projections = make_projections(torso.image)
    peaks = locator.peaks(projections)
    for level in ("L3", "T12"):
        bound = 1.25 * card[level]["max_error_mm"]
        assert peaks[level].in_scan, (level, peaks[level])
        error = abs(projections.row_to_z(peaks[level].row) - torso.levels[level].z_mm)
        assert error <= bound, (level, error, bound)
        middle = abs(projections.row_to_z(projections.rows / 2) - torso.levels[level].z_mm)
        assert middle > bound, (level, middle)


def test_shipped_model_says_not_in_scan_for_l3_on_a_chest_scan():
    locator = _shipped()
    from ctviewer.synth import TorsoParams, make_torso
    from ctviewer.workflows.slice_locator.projections import make_projections

    torso = make_torso(TorsoParams.random(1_000_501, field_of_view="chest"))
    assert "L3" not in torso.levels
    assert not locator.peaks(make_projections(torso.image))["L3"].in_scan

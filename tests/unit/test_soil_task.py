"""The soil_fraction task: slices as three channels, each its own group of density objects (the seed's
channel 1 was the whole slice), the seed's target 1 - fraction (object 5 = 5 and 6), train / validation /
test as contiguous slab blocks that never touch, and a tiny training end to end to a card with test metrics."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.ml.tasks import get_task
from ctviewer.ml.training import TrainConfig
from ctviewer.workflows.soil import task

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _cube(seed=0, shape=(40, 40, 40)):
    from ctviewer.synth.soil import SoilParams, make_soil_cube

    return make_soil_cube(SoilParams(shape=shape, seed=seed)).image


def _config(tmp_path, **data) -> TrainConfig:
    np.save(tmp_path / "cube.npy", _cube(1).array)
    return TrainConfig(task="soil_fraction", name="soil_tiny", epochs=1, batch_size=4, patience=0,
                       validation_fraction=0.2, out_dir=tmp_path / "models", log_dir=tmp_path / "logs",
                       data={"sources": [str(tmp_path / "cube.npy")], "synthetic": 1, "synthetic_shape": [40, 40, 40],
                             "size": 32, "block": 5, "gap": 1, **data},
                       extra={"base_filters": 1, "dense": 4, "samples_per_epoch": 8, "val_samples": 4})


def test_slab_blocks_never_overlap_or_touch_and_each_run_is_contiguous():
    for n, block, gap, seed in ((200, 20, 2, 0), (97, 10, 3, 5), (30, 5, 0, 1)):
        sets = task.slab_blocks(n, block, gap, 0.2, 0.2, seed)
        where = {}
        for name, runs in sets.items():
            assert runs, name
            for run in runs:
                assert run.step == 1 and len(run) >= 1 and run.stop <= n   # contiguous runs of slices
                for z in run:
                    assert z not in where, f"slice {z} in {where.get(z)} and {name}"
                    where[z] = name
        # a slice of one set is at least 2 * gap + 1 slices from every slice of another set
        others = sorted(where)
        for a, b in zip(others, others[1:]):
            if where[a] != where[b]:
                assert b - a > 2 * gap
        assert task.slab_blocks(n, block, gap, 0.2, 0.2, seed) == sets        # reproducible
    with pytest.raises(InputError, match="too few"):
        task.slab_blocks(10, 5, 1, 0.2, 0.2)


def test_each_channel_holds_its_own_group_of_objects_and_the_target_is_one_minus_the_fraction():
    values = np.repeat(np.arange(0, 600, 10, dtype=np.int16)[None], 60, axis=0)   # 60x60, all six bins
    span = (0.0, 590.0)
    ids = task.object_ids(values, span)
    assert set(np.unique(ids)) == {1, 2, 3, 4, 5, 6}
    x = task.slice_channels(values, ids, span)
    assert x.dtype == np.float32 and x.shape == (60, 60, 3)
    for k, group in enumerate(task.DEFAULT_CHANNELS):
        inside = np.isin(ids, group)
        assert np.all(x[..., k][inside] >= 0.5) and np.all(x[..., k][~inside] == 0)   # never the whole slice
        assert np.all(x[..., k] <= 1) and np.ptp(x[..., k][inside]) > 0.3             # density within the group
    swapped = task.slice_channels(values, ids, span, [[5, 6], [3, 4], [1, 2]])
    np.testing.assert_array_equal(swapped[..., 0], x[..., 2])

    cube = task.Cube("toy", values[None].repeat(3, axis=0), ids[None].repeat(3, axis=0), span)
    data = task.SoilData(size=60, object=1)
    _, target = task.sample(cube, 1, data)
    assert target == pytest.approx(1 - np.mean(ids == 1))
    data.object = 5                                             # object 5 is objects 5 and 6 together
    _, target = task.sample(cube, 1, data)
    assert target == pytest.approx(1 - np.mean(ids >= 5))
    # a larger window pads with "no object": the target counts the real voxels only
    data.size = 64
    x_padded, padded_target = task.sample(cube, 1, data)
    assert x_padded.shape == (64, 64, 3) and padded_target == pytest.approx(target)
    # turns and flips keep the target and move the pixels
    rng = np.random.default_rng(3)
    turned = [task.sample(cube, 1, data, rng, augment=True) for _ in range(6)]
    assert all(t == pytest.approx(target) for _, t in turned)
    assert any(not np.array_equal(a, x_padded) for a, _ in turned)


def test_bad_settings_are_input_errors(tmp_path):
    base = _config(tmp_path)
    for data, words in (({"object": 6}, "object should be"), ({"channels": [[1, 2], [2, 3], [4]]}, "no id twice"),
                        ({"channels": [[1], [2]]}, "three groups"), ({"colour": 1}, "unknown key"),
                        ({"sources": [], "synthetic": 0}, "names no cubes"), ({"size": 8}, "'size'")):
        config = TrainConfig(task="soil_fraction", name="x", data={**base.data, **data})
        with pytest.raises(InputError, match=words):
            task.SoilData.from_config(config)


def test_a_tiny_training_runs_end_to_end_and_writes_a_card_with_test_metrics(tmp_path, monkeypatch):
    from ctviewer.ml import registry
    from ctviewer.ml.tasks import run_training
    from ctviewer.synth import soil

    assert get_task("soil_fraction") is task.TASK
    config = _config(tmp_path)
    made = []
    real_make = soil.make_soil_cube
    monkeypatch.setattr(soil, "make_soil_cube", lambda *a, **k: made.append(1) or real_make(*a, **k))
    result = run_training(config)
    assert len(made) == 1   # the synthetic cube is made once: the test figures reuse the training's cubes
    card = result.card
    metrics = card.metrics["test_slices"]
    assert set(metrics) == {"mse", "mae", "r2", "slices"} and metrics["slices"] > 0
    assert 0 <= metrics["mae"] <= 1 and metrics["mse"] <= metrics["mae"] + 1e-9
    examples = card.metrics["examples"]["slices"]
    assert 0 < len(examples) <= task.CARD_EXAMPLES
    assert {e["cube"] for e in examples} <= {"cube.npy", "synthetic-0"}
    assert all(0 <= e["truth"] <= 1 and 0 <= e["predicted"] <= 1 for e in examples)
    assert card.inputs["kind"] == "soil_slices" and card.inputs["size"] == 32
    assert card.inputs["channels"] == [[1, 2], [3, 4], [5, 6]] and card.outputs["object_ids"] == [1]
    assert "2 cube(s)" in card.training["data"]
    model, _ = registry.load_model(result.entry.path, task="soil_fraction")
    assert model.inputs[0].shape[1:] == (32, 32, 3)

"""The training loop and run_training on a tiny task (tests/unit/ml_tiny_task.py): it learns, reports
every batch with the time left, cancels between batches keeping the best checkpoint, stops early,
writes TensorBoard logs and a model card that loads back, and turns out-of-memory into advice."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ctviewer.errors import Cancelled, InputError
from ctviewer.ml import registry
from ctviewer.ml.tasks import register_task, run_training
from ctviewer.ml.training import TrainConfig, TrainingCancelled, fit
from ctviewer.progress import CancelToken
from tests.unit import ml_tiny_task

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(autouse=True)
def tiny_task(tmp_path, monkeypatch):
    register_task(ml_tiny_task.TASK)
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path / "no_shipped_models")


def config(tmp_path, **fields) -> TrainConfig:
    defaults = {"task": "tiny", "name": "tiny", "epochs": 6, "batch_size": 16, "learning_rate": 0.02,
                "out_dir": tmp_path / "out", "data": {"samples": 256}}
    return TrainConfig(**{**defaults, **fields})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One full run_training, watched through every callback the GUI uses."""
    register_task(ml_tiny_task.TASK)
    out = tmp_path_factory.mktemp("run")
    seen = {"batches": [], "epochs": [], "log": [], "progress": []}
    result = run_training(config(out), on_batch=seen["batches"].append, on_epoch=seen["epochs"].append,
                          log=seen["log"].append, progress=lambda f, m="": seen["progress"].append(f))
    return result, seen


def test_training_learns_the_pattern(trained):
    result, _ = trained
    loss = result.history["loss"]
    assert len(loss) == 6 and loss[-1] < 0.7 * loss[0]
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    assert result.card.metrics["held_out"]["accuracy"] > 0.85


def test_every_batch_is_reported_with_the_time_left_for_the_whole_run(trained):
    _, seen = trained
    batches = seen["batches"]
    per_epoch = batches[0].batches
    assert per_epoch == 13 and len(batches) == 6 * per_epoch  # 208 training samples (13 studies) / 16, 6 epochs
    assert [(b.epoch, b.batch) for b in batches[:2]] == [(1, 1), (1, 2)] and batches[-1].epoch == 6
    assert all(b.samples_per_s > 0 and np.isfinite(b.loss) and "accuracy" in b.metrics for b in batches)
    first_epoch_eta = batches[per_epoch - 1].eta_s
    assert first_epoch_eta > batches[3 * per_epoch - 1].eta_s > batches[-1].eta_s == 0
    progress = seen["progress"]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)


def test_epochs_are_reported_and_logged(trained):
    result, seen = trained
    assert [e.epoch for e in seen["epochs"]] == list(range(1, 7)) and seen["epochs"][0].improved
    assert seen["log"][0].startswith("training 'tiny' (tiny) on CPU") or "GPU" in seen["log"][0]
    assert any(line.startswith("epoch 1/6: loss ") and "val_loss" in line and "(best)" in line
               for line in seen["log"])
    assert any(line.startswith("saved ") for line in seen["log"])
    assert not result.stopped_early and result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1


def test_tensorboard_logs_are_written(trained):
    result, _ = trained
    assert list((result.log_dir / "train").glob("events.out.tfevents.*"))
    assert list((result.log_dir / "validation").glob("events.out.tfevents.*"))


def test_the_card_describes_the_training_and_the_model_loads_back(trained):
    result, _ = trained
    card, entry = result.card, result.entry
    assert entry.path.name == "tiny.keras" and entry.card_path.is_file()
    training = card.training
    assert training["epochs"] == 6 and training["best_epoch"] == result.best_epoch
    assert training["batch_size"] == 16 and training["learning_rate"] == 0.02 and training["device"]
    assert training["samples"] == {"train": 208, "validation": 48}
    assert training["studies"] == {"train": 13, "validation": 3}
    assert training["backend"] == "tensorflow" and training["keras_version"] and training["tensorflow_version"]
    assert card.created and card.inputs == {"features": 8} and card.description == "tiny test model"
    model, loaded_card = registry.load_model(entry.path, task="tiny")
    assert loaded_card.metrics == card.metrics
    x, y = ml_tiny_task.make_data(64, seed=5)[:2]
    assert np.mean((model.predict(x, verbose=0) > 0.5) == (y > 0.5)) > 0.85


def test_cancel_stops_within_one_batch_and_keeps_the_best_checkpoint(tmp_path):
    cancel, seen = CancelToken(), []

    def on_batch(report):
        seen.append((report.epoch, report.batch))
        if (report.epoch, report.batch) == (2, 3):
            cancel.cancel()

    with pytest.raises(TrainingCancelled) as err:
        run_training(config(tmp_path, name="cancelled"), cancel=cancel, on_batch=on_batch)
    assert isinstance(err.value, Cancelled) and seen[-1] == (2, 3)
    checkpoint = err.value.checkpoint
    assert checkpoint.name == "best.keras" and str(checkpoint) in str(err.value)
    from ctviewer.ml.backend import keras

    assert keras().saving.load_model(checkpoint, safe_mode=True).count_params() > 0
    assert not (tmp_path / "out" / "cancelled.keras").exists()


def test_cancel_in_the_first_epoch_says_nothing_was_saved(tmp_path):
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(TrainingCancelled, match="before the first epoch ended; nothing was saved") as err:
        run_training(config(tmp_path), cancel=cancel)
    assert err.value.checkpoint is None


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
def test_early_stopping_stops_when_validation_loss_stops_improving(tmp_path):
    lines = []
    result = run_training(config(tmp_path, epochs=20, patience=2, extra={"frozen": True}), log=lines.append)
    assert result.stopped_early and len(result.history["loss"]) == 3 and result.best_epoch == 1
    assert "stopped early after epoch 3: val_loss did not improve for 2 epochs (best: epoch 1)" in lines
    assert result.card.training["epochs"] == 3 and result.entry.path.is_file()


def test_out_of_memory_suggests_a_smaller_batch_and_the_process_keeps_working(tmp_path):
    with pytest.raises(InputError, match=r"out of (GPU )?memory with batch size 64; try a smaller batch \(32\)"):
        run_training(config(tmp_path, batch_size=64, extra={"oom": True}))
    result = run_training(config(tmp_path, epochs=2))
    assert result.entry.path.is_file()


def test_fit_takes_numpy_arrays_in_a_worker_thread(tmp_path):
    """The GUI trains from a worker thread; numpy (x, y) data works as well as a PyDataset."""
    x, y, _ = ml_tiny_task.make_data(96, seed=3)
    cfg = config(tmp_path, epochs=2, batch_size=32)
    model = ml_tiny_task.build_model(cfg)
    outcome, reports = {}, []

    def work():
        outcome["history"] = fit(model, (x, y), None, cfg, on_batch=reports.append,
                                 checkpoint_path=tmp_path / "best.keras")

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=60)
    assert set(outcome["history"]) == {"loss", "accuracy"} and len(outcome["history"]["loss"]) == 2
    assert [r.batches for r in reports] == [3] * 6 and (tmp_path / "best.keras").is_file()


def test_a_diverging_loss_is_reported_with_advice(tmp_path):
    x, y, _ = ml_tiny_task.make_data(32, seed=4)
    y[0, 0] = np.nan  # a broken label poisons the loss as a far too high learning rate would
    cfg = config(tmp_path, epochs=1, batch_size=32)
    with pytest.raises(InputError, match="the loss became nan in epoch 1, batch 1.*smaller learning rate"):
        fit(ml_tiny_task.build_model(cfg), (x, y), None, cfg)

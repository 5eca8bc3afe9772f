"""`ctviewer train CONFIG.toml` and `ctviewer models`, in-process through ctviewer.cli.main, on the tiny
test task (tests/unit/ml_tiny_task.py) reached through the task table as a real task would be."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time

import pytest

from ctviewer.cli import main
from ctviewer.ml import tasks

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def models_dir(user_models, monkeypatch):
    monkeypatch.setitem(tasks.TASK_MODULES, "tiny", "tests.unit.ml_tiny_task")
    return user_models


def write_config(folder, **settings):
    lines = [f"{k} = {json.dumps(v)}" for k, v in {"task": "tiny", "name": "tiny_cli", "epochs": 2,
                                                    "batch_size": 16, "learning_rate": 0.02, **settings}.items()]
    path = folder / "train.toml"
    path.write_text("\n".join(lines) + "\n[data]\nsamples = 128\n")
    return path


def test_train_then_list(models_dir, tmp_path, capsys):
    assert main(["train", str(write_config(tmp_path, epochs=30)), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "training 'tiny_cli' (tiny) on CPU" in out or "GPU" in out
    assert "epoch 1/2: loss " in out and "epoch 2/2: loss " in out and "epoch 3/" not in out
    assert f"saved {models_dir / 'tiny_cli.keras'}" in out
    assert "model tiny_cli (task tiny, version 1, " in out and "held_out: accuracy " in out

    (models_dir / "leftover.keras").write_bytes(b"not a model")
    assert main(["models"]) == 0
    captured = capsys.readouterr()
    [line] = captured.out.splitlines()
    assert line.split()[:3] == ["tiny_cli", "tiny", "v1"] and "held_out: accuracy" in line
    assert line.endswith(str(models_dir / "tiny_cli.keras"))
    assert captured.err == (f"ctviewer: warning: {models_dir / 'leftover.keras'}: no model card beside the model "
                            f"(expected leftover.json); skipped\n")

    assert main(["models", "--json", "--task", "tiny"]) == 0
    data = json.loads(capsys.readouterr().out)
    [model] = data["models"]
    assert model["name"] == "tiny_cli" and model["card"]["training"]["epochs"] == 2 and len(data["problems"]) == 1
    assert main(["models", "--task", "slice_locator"]) == 0
    assert capsys.readouterr().out.startswith("no models for task slice_locator in ")


def test_relative_out_dir_is_next_to_the_config(models_dir, tmp_path, capsys):
    assert main(["train", str(write_config(tmp_path, out_dir="trained", epochs=1))]) == 0
    assert (tmp_path / "trained" / "tiny_cli.keras").is_file() and not models_dir.exists()


def test_ctrl_c_cancels_between_batches_and_keeps_the_checkpoint(models_dir, tmp_path, capsys):
    """The first Ctrl-C (SIGINT) after the first checkpoint stops training cleanly with exit 1."""
    finished = threading.Event()

    def interrupt_after_first_checkpoint():
        while not finished.is_set() and not list(models_dir.glob("logs/*/best.keras")):
            time.sleep(0.02)
        if not finished.is_set():  # never interrupt pytest itself once training is over
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_after_first_checkpoint, daemon=True).start()
    try:
        assert main(["train", str(write_config(tmp_path, epochs=500, patience=0))]) == 1
    finally:
        finished.set()
    err = capsys.readouterr().err
    [checkpoint] = models_dir.glob("logs/*/best.keras")
    assert "cancelling after this batch" in err
    assert f"ctviewer: training cancelled; best checkpoint kept at {checkpoint}" in err
    assert not (models_dir / "tiny_cli.keras").exists()


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: expected a whole number of at least 1, not '0'"),
    ([], "unknown task 'nope'; known tasks: "),
])
def test_train_refuses_bad_input(models_dir, tmp_path, capsys, args, message):
    assert main(["train", str(write_config(tmp_path, task="nope")), *args]) == 2
    assert message in capsys.readouterr().err


def test_train_names_the_config_and_the_unknown_key(models_dir, tmp_path, capsys):
    path = write_config(tmp_path, epoch=3)
    assert main(["train", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"ctviewer: {path}: unknown key 'epoch'; known keys: ")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_is_drawn_in_place_on_a_terminal_and_cleared_for_log_lines(capsys):
    from ctviewer.commands.train import BatchBar
    from ctviewer.ml.training import BatchReport

    terminal = _Terminal()
    bar = BatchBar(terminal, width=10)
    bar.update(BatchReport(2, 4, 5, 10, 0.25, {}, 123.4, 95.0))
    assert terminal.getvalue() == "\r\033[K[###.......] epoch 2/4 batch 5/10 loss 0.25, 123 samples/s, 1 min 35 s left"
    bar.line("epoch 2/4: loss 0.25")
    assert terminal.getvalue().endswith("\r\033[K") and capsys.readouterr().out == "epoch 2/4: loss 0.25\n"
    plain = io.StringIO()
    BatchBar(plain).update(BatchReport(1, 1, 1, 1, 0.5, {}, 1.0, 0.0))
    assert plain.getvalue() == ""  # not a terminal: no bar, only a line every PLAIN_EVERY_S seconds

"""Segmentation training that runs out of memory: the user gets one line naming the problem and the
config settings to shrink (batch_size, [extra] slice_size or patch), and the GUI's training child
reports it as that error instead of dying.

Nothing here really exhausts memory: the batch builder raises numpy's MemoryError (what
``np.full`` raises for a batch that does not fit) or the train step raises the JAX/XLA
RESOURCE_EXHAUSTED error, on tiny networks and two small synthetic torsos.
"""

from __future__ import annotations

import pytest

from ctviewer.errors import InputError
from ctviewer.ml.tasks import TaskSpec, run_training
from ctviewer.ml.training import TrainConfig
from ctviewer.workflows.segmentation import task as seg_task

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

NUMPY_MESSAGE = "Unable to allocate 12.0 GiB for an array with shape (8, 1024, 1024, 384) and data type float32"
SETTINGS = {2: ({"target": "liver=5"}, {"filters": [8, 16], "slice_size": 64, "samples_per_epoch": 12,
                                         "val_samples": 2}),
            3: ({"target": "vertebrae=26-50"}, {"base_filters": 4, "depth": 2, "patch": [16, 32, 32],
                                                 "samples_per_epoch": 4, "val_samples": 1})}


def seg_config(tmp_path, dims: int, task: str | None = None, batch_size: int = 4) -> TrainConfig:
    data, extra = SETTINGS[dims]
    return TrainConfig(task=task or f"segmentation_{dims}d", name=f"oom{dims}d", epochs=2, batch_size=batch_size,
                       patience=0, out_dir=tmp_path / "out", log_dir=tmp_path / "logs",
                       data={**data, "synthetic": 2}, extra=dict(extra))


def run_out_after(calls: int, function):
    """``function``, except that every call after the first ``calls`` raises numpy's MemoryError."""
    count = [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise MemoryError(NUMPY_MESSAGE)
        return function(*args, **kwargs)
    return wrapped


def assert_one_clear_line(error: InputError, *words: str):
    text = str(error)
    assert "\n" not in text and text.startswith("out of memory")
    for word in words:
        assert word in text


def test_running_out_while_making_batches_names_batch_and_slice_size(tmp_path, monkeypatch):
    from ctviewer.ml import augmentation

    # Keras makes the first two batches itself (to learn their shapes); later ones come from tf.data's
    # thread, which wraps errors: run out there, in the middle of the first epoch.
    monkeypatch.setattr(augmentation, "augment_pair", run_out_after(2 * 4 + 2, augmentation.augment_pair))
    with pytest.raises(InputError) as err:
        run_training(seg_config(tmp_path, 2))
    assert_one_clear_line(err.value, "batch size 4", "try a smaller batch (2)", "[extra] slice_size, now 64")


def test_running_out_of_device_memory_in_a_3d_step_names_batch_and_patch(tmp_path, monkeypatch):
    build = seg_task._build

    def build_exhausting(config, dims):
        model = build(config, dims)

        def train_step(data):  # what XLA raises when a 3-D batch does not fit on the GPU
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 4294967296 bytes.")
        model.train_step = train_step
        return model

    monkeypatch.setattr(seg_task, "_build", build_exhausting)
    with pytest.raises(InputError) as err:
        run_training(seg_config(tmp_path, 3, batch_size=1))
    assert_one_clear_line(err.value, "batch size 1", "try smaller patches ([extra] patch, now [16, 32, 32])")


def test_validation_samples_that_do_not_fit_say_which_settings_to_lower(tmp_path, monkeypatch):
    monkeypatch.setattr(seg_task, "make_sample", run_out_after(0, seg_task.make_sample))
    with pytest.raises(InputError, match=r"^out of memory making 1 validation samples; try fewer "
                                         r"\(\[extra\] val_samples\) or smaller patches \(\[extra\] patch"):
        seg_task.TASK_3D.load_data(seg_config(tmp_path, 3))


# -- the GUI's path: training in a child process ------------------------------------------------------

def _load_data_running_out(config, progress=None, cancel=None):
    """The 2-D task's data, whose batch builder runs out of memory on the first batch: in the calling
    thread, so a bare MemoryError (not one tf.data wraps, as in the test above) reaches ``fit``."""
    train, val, info = seg_task.TASK_2D.load_data(config, progress=progress, cancel=cancel)
    train.make_pair = run_out_after(0, train.make_pair)
    return train, val, info


#: The segmentation_2d task with that data; the child finds it through $CTVIEWER_TASK_MODULES.
CHILD_TASK = TaskSpec("segmentation_2d_oom", "segmentation_2d running out of memory (tests only)",
                      seg_task.TASK_2D.build_model, _load_data_running_out, seg_task.TASK_2D.evaluate,
                      seg_task.TASK_2D.card_fields)


def test_the_training_child_reports_running_out_as_the_error_and_survives(tmp_path, monkeypatch):
    from ctviewer.ml.child import train_in_child

    monkeypatch.setenv("CTVIEWER_TASK_MODULES", f"{CHILD_TASK.name}=tests.unit.test_seg_oom:CHILD_TASK")
    lines = []
    with pytest.raises(InputError) as err:
        train_in_child(seg_config(tmp_path, 2, task=CHILD_TASK.name), log=lines.append)
    assert_one_clear_line(err.value, "try a smaller batch (2)", "[extra] slice_size, now 64")
    assert lines and lines[0].startswith("training 'oom2d'")  # it did start training in the child

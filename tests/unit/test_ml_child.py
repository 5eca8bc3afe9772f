"""Keras work in a child process: values, progress, events, errors, cancel and a crashed child."""

from __future__ import annotations

import os

import pytest

from ctviewer.errors import Cancelled, InputError
from ctviewer.ml.child import ModelProcess, ModelProcessDied
from ctviewer.progress import CancelToken


@pytest.fixture
def proc():
    p = ModelProcess()
    yield p
    p.close()


def test_values_progress_and_events_come_back(proc):
    reports, events = [], []
    value = proc.call("tests.unit.child_targets:count_to", 5, progress=lambda f, m="": reports.append(f),
                      events={"on_step": lambda i: events.append(i)})
    assert value == {"counted": 5}
    assert reports[-1] == 1.0 and len(reports) == 5
    assert events == [0, 1, 2, 3, 4]
    # the same child serves the next call (a loaded model stays loaded)
    child = proc.call("tests.unit.child_targets:pid")
    assert child != os.getpid() and proc.call("tests.unit.child_targets:pid") == child


def test_errors_arrive_as_the_same_kind(proc):
    with pytest.raises(InputError, match="scan.nii: no body found"):
        proc.call("tests.unit.child_targets:fail", "no body found", "scan.nii")
    assert proc.call("tests.unit.child_targets:count_to", 1)["counted"] == 1  # still serving


def test_cancel_stops_between_steps(proc):
    token = CancelToken()
    seen = []

    def on_step(i):
        seen.append(i)
        if i == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        proc.call("tests.unit.child_targets:count_to", 10_000, slow=0.01, cancel=token,
                  events={"on_step": on_step})
    assert len(seen) < 100
    assert proc.call("tests.unit.child_targets:count_to", 2)["counted"] == 2  # cancel flag cleared


def test_a_crashed_child_is_reported_and_replaced(proc):
    with pytest.raises(ModelProcessDied, match="exit code -11"):
        proc.call("tests.unit.child_targets:crash")
    assert proc.call("tests.unit.child_targets:pid") != os.getpid()


def test_keras_trains_in_the_child(proc):
    # (that the GUI process never imports TensorFlow is checked after every GUI test: tests/gui/conftest.py)
    first, last = proc.call("tests.unit.child_targets:tiny_keras_fit")
    assert last < first / 10

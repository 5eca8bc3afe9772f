"""`ctviewer train CONFIG.toml [--epochs N] [--out DIR]`: train a model headless, as the GUI's Train… does.

Prints the device, one line per epoch and a summary of the new model card; a progress bar per batch
goes to stderr when it is a terminal (a plain line every few seconds otherwise). Ctrl-C cancels
cleanly between batches and keeps the best checkpoint; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import threading
import time
from pathlib import Path

#: Seconds between progress lines when stderr is not a terminal (a log file, CI).
PLAIN_EVERY_S = 10.0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="train a model from a TOML config (see models/README.md)")
    parser.add_argument("config", type=Path, help="training config: task, name, data, epochs, batch size, ...")
    parser.add_argument("--epochs", type=_positive, default=None, help="override the config's epochs")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the trained model (default: the config's out_dir, else the user "
                             "models folder)")


def run(args) -> int:
    from ctviewer.ml.tasks import run_training
    from ctviewer.ml.training import TrainConfig, TrainingCancelled
    from ctviewer.progress import CancelToken

    config = TrainConfig.from_toml(args.config)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    if args.out is not None:
        config = dataclasses.replace(config, out_dir=args.out)
    cancel = CancelToken()
    bar = BatchBar(sys.stderr)
    with ctrl_c_cancels(cancel):
        try:
            result = run_training(config, cancel=cancel, on_batch=bar.update, log=bar.line)
        except TrainingCancelled as exc:
            bar.clear()
            print(f"ctviewer: {exc}", file=sys.stderr)
            return 1
        finally:
            bar.clear()
    card = result.card
    training = card.training
    print(f"model {card.name} (task {card.task}, version {card.version}, {card.created}): "
          f"{training.get('epochs')} epochs, best epoch {result.best_epoch}, {training.get('seconds')} s on "
          f"{training.get('device')}")
    for dataset, values in card.metrics.items():
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()) \
            if isinstance(values, dict) else values
        print(f"  {dataset}: {shown}")
    return 0


class BatchBar:
    """The per-batch progress: a bar redrawn in place on a terminal, an occasional plain line otherwise."""

    def __init__(self, stream, width: int = 24):
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self.shown = False
        self.last_plain = time.monotonic()

    def update(self, report) -> None:
        from ctviewer.ml.training import format_seconds

        done = ((report.epoch - 1) * report.batches + report.batch) / (report.epochs * report.batches)
        text = (f"epoch {report.epoch}/{report.epochs} batch {report.batch}/{report.batches} "
                f"loss {report.loss:.4g}, {report.samples_per_s:.0f} samples/s, "
                f"{format_seconds(report.eta_s)} left")
        if self.tty:
            filled = int(done * self.width)
            self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (self.width - filled)}] {text}")
            self.stream.flush()
            self.shown = True
        elif time.monotonic() - self.last_plain >= PLAIN_EVERY_S:
            self.last_plain = time.monotonic()
            print(f"{done:.0%} {text}", file=self.stream, flush=True)

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def line(self, text: str) -> None:
        """A log line on stdout, with the bar out of its way."""
        self.clear()
        print(text, flush=True)


@contextlib.contextmanager
def ctrl_c_cancels(cancel):
    """While training, the first Ctrl-C asks to stop after the current batch; the second stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        print("\nctviewer: cancelling after this batch (Ctrl-C again to stop at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

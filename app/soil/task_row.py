"""A progress bar, a Cancel button and one line of text: how a soil panel shows its running work.

The panel starts its work with :meth:`TaskRow.start` (which uses :func:`app.workers.run_worker`); the
row shows progress, offers Cancel while it runs, and says how it ended (errors in one line, as the
core words them).
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.workers import run_worker
from ctviewer.errors import InputError


def one_line(exc: Exception) -> str:
    """The message a user reads: the core's InputError line, or the first line of anything else."""
    text = str(exc).strip()
    if isinstance(exc, InputError) or not text:
        return text or type(exc).__name__
    return text.splitlines()[0][:300]


class TaskRow(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = None
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self._show_running(False)

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.worker.done

    def start(self, what: str, fn, *args, on_result, on_finished=None, **kwargs):
        """Run ``fn(*args, progress=, cancel=, **kwargs)`` in a worker; its error or cancellation ends
        up in the status line, its value in ``on_result``. Returns the worker."""
        self.bar.setValue(0)
        self.bar.setFormat(f"{what} %p%")
        self.say("")
        self._what, self._failed = what, False

        def finished():   # connected before the work starts: a quick worker's signals are not lost
            self._show_running(False)
            if self.worker is not None and self.worker.is_cancelled and not self._failed:
                self.say(f"{self._what}: cancelled")
            if on_finished is not None:
                on_finished()

        self.worker = run_worker(fn, *args, on_result=on_result, on_progress=self._progress,
                                 on_error=self._error, on_finished=finished, **kwargs)
        self._show_running(True)
        return self.worker

    def cancel(self) -> None:
        if self.running:
            self.worker.cancel()
            self.cancel_button.setEnabled(False)

    def _error(self, exc: Exception) -> None:
        self._failed = True
        self.say(one_line(exc), error=True)

    def say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b;" if error else "")
        self.status.setProperty("error", error)

    def _progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(fraction * 1000))
        if message:
            self.bar.setFormat(f"{message} %p%")

    def _show_running(self, on: bool) -> None:
        self.bar.setVisible(on)
        self.cancel_button.setVisible(on)
        self.cancel_button.setEnabled(on)

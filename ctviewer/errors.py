"""Errors a user can act on.

``InputError`` is raised for a user's bad file or bad parameter; its message is one line that
names the file and what is wrong. The CLI turns it into exit code 2 and the GUI into a message,
and neither shows a traceback for it.
"""

from __future__ import annotations

from os import PathLike


class InputError(ValueError):
    """A file or parameter the user gave cannot be used."""

    def __init__(self, message: str, path: str | PathLike | None = None):
        self.path = None if path is None else str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class Cancelled(Exception):
    """Raised inside long work when the user cancelled it."""

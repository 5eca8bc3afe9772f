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
        self.reason = one_line(message)
        super().__init__(f"{self.path}: {self.reason}" if self.path else self.reason)


#: Longest reason kept: a broken file's bytes quoted in a library's message can run to kilobytes.
MAX_REASON = 500


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters (a malformed file's bytes quoted in a
    message, newlines) become spaces or '?', runs of spaces shrink, and it ends after MAX_REASON."""
    text = "".join(c if c.isprintable() else (" " if c in "\t\r\n" else "?") for c in str(text))
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class Cancelled(Exception):
    """Raised inside long work when the user cancelled it."""

"""One study at a time: a failed study is noted and the batch goes on (every batch verb uses this).

    batch = Batch()
    for study in studies:
        result = batch.attempt(study, segment_one, study, ...)   # None when the study failed
        ...write result at once (atomically)...
    return batch.finish()          # the failures listed on stderr, and the exit code

What a failed study counts as, and the exit code it gives (the CLI contract, ``ctviewer.cli``):

- the input's fault (:class:`InputError`: unreadable, truncated, not a CT, ...; or an ``OSError``
  reading it: no permission, a vanished file): listed with its reason, exit 2;
- anything else is our bug (or out of memory): the batch still goes on — one study must not end a
  night's work — and the study is listed as ``internal error: TYPE: message``; exit 1, since a bug
  is worth reporting even when the other studies came out right (``CTVIEWER_DEBUG=1`` prints its
  traceback when it happens);
- Ctrl+C and a cancel end the batch at once.

A run where every study succeeded exits 0, one with nothing to do 2. The failures are listed once,
at the end, one line each (``ctviewer: FILE: reason``), after a count when the batch had more than
one study, so they are not lost among the progress lines of the ones that worked.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from ctviewer.errors import Cancelled, InputError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


@dataclass(frozen=True)
class Failure:
    """One study that failed: the file, why, and whether it is our bug rather than the input's."""

    path: str
    reason: str
    internal: bool = False

    @property
    def line(self) -> str:
        return f"{self.path}: {self.reason}"


def failure_of(path, exc: BaseException) -> Failure:
    """Classify the exception a study raised (see the module docstring)."""
    path = str(path)
    if isinstance(exc, InputError):
        # a reader may name a file inside the study (one slice of a DICOM folder): keep that name
        if exc.path and exc.path != path:
            return Failure(exc.path, exc.reason)
        return Failure(path, exc.reason)
    if isinstance(exc, MemoryError):
        return Failure(path, "internal error: out of memory", internal=True)
    if isinstance(exc, OSError) and getattr(exc, "filename", None) is not None:
        return Failure(str(exc.filename), f"cannot read: {exc.strerror or exc}")
    return Failure(path, f"internal error: {type(exc).__name__}: {exc}", internal=True)


class Batch:
    """The studies of one batch run: which worked, which failed and why; see the module docstring."""

    def __init__(self, noun: str = "study", plural: str = "studies", stream=None):
        self.noun, self.plural = noun, plural
        self.stream = stream
        self.failures: list[Failure] = []
        self._seen: dict[str, None] = {}       # every study tried, in order
        self._failed: dict[str, None] = {}     # studies with at least one failure

    # -- running -------------------------------------------------------------------------------
    def attempt(self, study, work, *args, **kwargs):
        """``work(*args, **kwargs)`` for ``study``; its result, or ``None`` when it failed (noted)."""
        self._seen[str(study)] = None
        try:
            return work(*args, **kwargs)
        except (KeyboardInterrupt, Cancelled):
            raise
        except Exception as exc:
            if os.environ.get("CTVIEWER_DEBUG") and not isinstance(exc, InputError):
                traceback.print_exc()
            self._note(str(study), failure_of(study, exc))
            return None

    def succeeded(self, study) -> None:
        """Count a study that worked outside :meth:`attempt` (results made elsewhere, as ``locate``'s)."""
        self._seen[str(study)] = None

    def fail(self, study, reason: str, internal: bool = False) -> None:
        """Note a study that failed outside :meth:`attempt`; ``reason`` may already start with the file."""
        study = str(study)
        self._seen[study] = None
        prefix = f"{study}: "
        self._note(study, Failure(study, reason[len(prefix):] if reason.startswith(prefix) else reason, internal))

    def _note(self, study: str, failure: Failure) -> None:
        self._failed[study] = None
        self.failures.append(failure)

    # -- the outcome -----------------------------------------------------------------------------
    @property
    def tried(self) -> int:
        return len(self._seen)

    @property
    def done(self) -> int:
        """Studies that worked (no failure noted for them)."""
        return len(self._seen.keys() - self._failed.keys())

    @property
    def internal(self) -> bool:
        return any(f.internal for f in self.failures)

    def exit_code(self) -> int:
        if self.internal:
            return EXIT_INTERNAL
        return EXIT_BAD_INPUT if self.failures or not self.done else EXIT_OK

    def summary_lines(self) -> list[str]:
        """The failures, one line each, after a count when there was more than one study."""
        if not self.failures:
            return []
        lines = [f"ctviewer: {f.line}" for f in self.failures]
        if self.tried > 1:
            failed = len(self._failed)
            lines.insert(0, f"ctviewer: {failed} of {self.tried} {self.plural} failed:")
        return lines

    def finish(self) -> int:
        """Print the failures on stderr; the exit code for the whole run."""
        stream = self.stream or sys.stderr
        for line in self.summary_lines():
            print(line, file=stream)
        return self.exit_code()

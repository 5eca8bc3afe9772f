"""Atomic saves: the user's file is either the old one or the complete new one, never half.

A save that cannot happen (read-only folder, disk full) is the user's to fix, so it becomes an
:class:`InputError` naming the place; the temporary file never stays behind.

A file and its sidecars (a label map and its ``NAME.labels.json``) are saved together by
:func:`atomic_paths`: all are written to temporary files first, then renamed over their targets;
if a rename fails, those already done are put back, so the old pair stays.

Temporary files are hidden (``.NAME.XXXXXXXX.part.SUFFIX``) and locked while they are written; a
process killed mid-write (``kill -9``, power loss) leaves them behind, unlocked, and the next save
into that folder removes them (:func:`remove_leftovers`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from ctviewer.errors import InputError

try:  # POSIX: a lock tells a live write from the leftover of a killed one
    import fcntl
except ImportError:  # pragma: no cover - Windows goes by age alone
    fcntl = None

# mkstemp makes 0600 files; a saved file should get the mode any other program would give it
# (0666 less the umask), or keep the mode of the file it replaces. The umask is read once here,
# at import, because reading it means setting it and that is not safe once threads run.
_UMASK = os.umask(0)
os.umask(_UMASK)

#: ``.NAME.XXXXXXXX.part.SUFFIX`` (a temporary file) and ``.NAME.XXXXXXXX.part.old`` (a backup)
_PART = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part(\..*)?$")
#: A part file younger than this may belong to a write that has not taken its lock yet.
_YOUNG_S = 5.0
#: Without locks (Windows), a part file is left over once it is this old.
_STALE_S = 600.0
#: A folder is looked through at most once this often by one process: a batch writing thousands of
#: results into one folder must not list it thousands of times.
_SWEEP_EVERY_S = 60.0
_last_sweep: dict[str, float] = {}   # folder -> when this process last looked through it


@contextlib.contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path beside ``target``; on success it is flushed and renamed over it.

    The temporary name keeps the target's suffixes (writers pick the format from them).
    """
    with atomic_paths(target) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*targets: str | Path):
    """Yield a temporary path beside each target; when the block ends without error, every one is
    flushed and renamed over its target, or (a rename failed) none is: the old files stay.

    The first target is renamed last, so it needs no backup (it may be big); the others (sidecars)
    are kept as hard links (copies where the file system has none) until all renames are done.
    """
    targets = [Path(t) for t in targets]
    temps: list[tuple[Path, int]] = []
    try:
        for target in targets:
            temps.append(_make_temp(target))
        try:
            yield [tmp for tmp, _fd in temps]
        except OSError as exc:  # raised by the writer (disk full): the user's to fix
            raise _cannot_save(exc, targets[0]) from exc
        except InputError as exc:  # the writer refused: name the user's file, not our temporary one
            for (tmp, _fd), target in zip(temps, targets):
                if exc.path == str(tmp):
                    raise InputError(exc.reason, target) from exc
            raise
        for (tmp, _fd), target in zip(temps, targets):
            _flush(tmp, target)
        _rename_all([tmp for tmp, _fd in temps], targets)
    finally:
        for tmp, fd in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
            with contextlib.suppress(OSError):
                os.close(fd)   # releases the lock


def _make_temp(target: Path) -> tuple[Path, int]:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("folder does not exist", folder)
    _sweep_now_and_then(folder)
    suffix = "".join(target.suffixes)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{suffix}", dir=folder)
    except OSError as exc:
        raise _cannot_save(exc, target) from exc
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)   # held until the temporary file is renamed or removed
    return Path(tmp), fd


def _flush(tmp: Path, target: Path) -> None:
    try:
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(target))
    except OSError as exc:  # raised by the writer (disk full): the user's to fix
        raise _cannot_save(exc, target) from exc


def _rename_all(temps: list[Path], targets: list[Path]) -> None:
    """Rename each temporary file over its target, the first target last; undo all on a failure."""
    done: list[tuple[Path, Path | None]] = []   # (target, backup of the old file or None: it was new)
    locks: list[int] = []
    order = list(zip(temps, targets))[::-1]
    try:
        for n, (tmp, target) in enumerate(order):
            backup = None if n == len(order) - 1 else _backup(target, locks)
            try:
                os.replace(tmp, target)
            except OSError as exc:
                if backup is not None:
                    _quiet_unlink(backup)
                raise _cannot_save(exc, target) from exc
            done.append((target, backup))
    except InputError:
        for target, backup in reversed(done):
            if backup is not None:
                os.replace(backup, target)
            else:
                _quiet_unlink(target)
        raise
    finally:
        for _target, backup in done:
            if backup is not None:
                _quiet_unlink(backup)
        for fd in locks:
            os.close(fd)


def _backup(target: Path, locks: list[int]) -> Path | None:
    """A hidden second name of the file ``target`` holds now (None: there is none), to put it back;
    locked (its fd appended to ``locks``) so that no other save takes it for a leftover."""
    if not target.is_file():
        return None
    backup = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part.old")
    try:
        os.link(target, backup)
    except OSError:
        try:
            shutil.copy2(target, backup)
        except OSError as exc:
            raise _cannot_save(exc, target) from exc
    if fcntl is not None:
        fd = os.open(backup, os.O_RDONLY)
        locks.append(fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return backup


def _quiet_unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _sweep_now_and_then(folder: Path) -> None:
    key, now = os.path.abspath(folder), time.monotonic()
    if now - _last_sweep.get(key, -_SWEEP_EVERY_S) >= _SWEEP_EVERY_S:
        _last_sweep[key] = now
        remove_leftovers(folder)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Remove the temporary files of saves into ``folder`` that were killed mid-write; returns them.

    A live write holds a lock on its temporary file, so only leftovers go. Never raises: a file
    that cannot be removed is tried again at the next save.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not _PART.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat().st_mtime < _YOUNG_S:
                continue
            if _unlocked(entry.path, now - entry.stat().st_mtime):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _unlocked(path: str, age_s: float) -> bool:
    if fcntl is None:
        return age_s > _STALE_S
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False   # a write in progress holds it
    finally:
        os.close(fd)
    return True


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def _cannot_save(exc: OSError, target: Path) -> InputError:
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        folder = target.parent if str(target.parent) else Path(".")
        return InputError(f"cannot save here: {folder} is read-only (permission denied)", target)
    return InputError(f"cannot save: {exc.strerror or exc}", target)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))

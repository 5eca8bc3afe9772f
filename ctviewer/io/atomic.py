"""Atomic saves: the user's file is either the old one or the complete new one, never half.

A save that cannot happen (read-only folder, disk full) is the user's to fix, so it becomes an
:class:`InputError` naming the place; the temporary file never stays behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from ctviewer.errors import InputError

# mkstemp makes 0600 files; a saved file should get the mode any other program would give it
# (0666 less the umask), or keep the mode of the file it replaces. The umask is read once here,
# at import, because reading it means setting it and that is not safe once threads run.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path beside ``target``; on success it is flushed and renamed over it.

    The temporary name keeps the target's suffixes (writers pick the format from them).
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("folder does not exist", folder)
    suffix = "".join(target.suffixes)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{suffix}", dir=folder)
    except OSError as exc:
        raise _cannot_save(exc, target) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _mode_for(target))
        os.replace(tmp_path, target)
    except OSError as exc:  # raised by the writer (disk full) or by the rename: the user's to fix
        raise _cannot_save(exc, target) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


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

"""Checks a reader makes before it believes a file: sizes claimed against bytes present and memory free.

A header is a claim. A 416-byte ``.nii`` may say it holds 2048 x 2048 x 512 int16 voxels; a 3 KB
DICOM may say it has 2^31 - 1 frames; a 3 MB ``.keras`` may inflate to 7 GB. Believing the claim
first and discovering the truth while reading costs gigabytes and seconds before the refusal, so
each reader compares the claim with what the file can hold, and with the memory the machine has,
before it allocates anything. The checks read a few bytes at most, so a good file pays nothing
measurable for them (``benchmarks/bench_open_guards.py``).

Library warnings (nibabel, pydicom, numpy) are collected while a file is read instead of being
printed on stderr before, or instead of, the program's own line: see :func:`collected_warnings`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import warnings
import zipfile
from pathlib import Path

from ctviewer.errors import InputError

#: Deflate's best case is 1032:1 (258-byte matches coded in 2 bits); a gzip stream that claims to
#: inflate further than this is lying, whatever it holds.
DEFLATE_MAX_RATIO = 1032
#: Leave this share of the free memory to everything else (the display, a second copy in a filter).
MEMORY_SHARE = 0.8
#: A model archive inflating more than this many times its size is not weights (HDF5 floats barely
#: compress); real ``.keras`` files here inflate 1.0-1.1x.
ARCHIVE_MAX_RATIO = 100
#: Slack for an archive's small text members (config.json, metadata.json) that compress well.
ARCHIVE_SLACK_BYTES = 16 << 20
ARCHIVE_MAX_MEMBERS = 10_000


def available_memory() -> int | None:
    """Bytes the system can hand out now without swapping (Linux ``MemAvailable``), else None."""
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MB" if nbytes >= 2**20 else f"{nbytes:,} bytes"


def check_memory(nbytes: int, path, what: str = "the image") -> None:
    """InputError where ``nbytes`` would not fit in the memory free now."""
    free = available_memory()
    if free is not None and nbytes > free * MEMORY_SHARE:
        raise InputError(f"{what} would need {_mb(nbytes)} of memory; only {_mb(free)} is free", path)


def check_plain_size(path, claimed: int, offset: int = 0, what: str = "header") -> None:
    """An uncompressed file must hold every byte its header claims after ``offset``."""
    size = Path(path).stat().st_size
    if offset + claimed > size:
        raise InputError(f"{what} claims {_mb(claimed)} of voxels but the file holds "
                         f"{_mb(max(0, size - offset))} after its header (truncated or corrupt)", path)


def gzip_trailer_size(path) -> int | None:
    """ISIZE, the uncompressed length mod 2^32 in the last 4 bytes of a gzip file (of its last member)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() < 18:  # 10-byte header + 8-byte trailer
            return None
        fh.seek(-4, os.SEEK_END)
        return struct.unpack("<I", fh.read(4))[0]


def check_gzip_size(path, claimed: int, what: str = "header", offset: int = 0) -> None:
    """A gzip stream cannot inflate to more than 1032x its size; a single-member one says its length.

    ``claimed`` is every uncompressed byte the header says the stream holds, from ``offset`` (where
    the stream starts in the file) to the end. Where the trailer disagrees the file may still be
    good (bgzip and other multi-member files keep only their last member's length there), so the
    stream is inflated and counted, nothing kept, stopping at the claim (bytes after it are allowed).
    """
    size = Path(path).stat().st_size - offset
    if claimed > size * DEFLATE_MAX_RATIO:
        raise InputError(f"{what} claims {_mb(claimed)} but {_mb(size)} of gzip data cannot hold that much "
                         "(truncated or corrupt)", path)
    if gzip_trailer_size(path) == claimed % 2**32:
        return
    held = _inflated_length(path, claimed, offset)
    if held < claimed:
        raise InputError(f"{what} claims {_mb(claimed)} but the data inflates to {_mb(held)} "
                         "(truncated or corrupt)", path)


def _inflated_length(path, enough: int, offset: int = 0) -> int:
    """Uncompressed bytes in the gzip stream at ``offset``, counted in 1 MB steps up to ``enough``."""
    import gzip
    import zlib

    held = 0
    try:
        with open(path, "rb") as raw:
            raw.seek(offset)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                while held < enough:
                    chunk = stream.read(min(1 << 20, enough - held))
                    if not chunk:
                        break
                    held += len(chunk)
    except (OSError, EOFError, zlib.error):
        pass  # a cut or corrupt stream: what inflated so far is what it holds
    return held


def check_archive(path, *, what: str = "archive") -> None:
    """A zip (``.keras``, ``.npz``) judged member by member from its directory, before unpacking.

    Refused: member names that would land outside the folder they are unpacked to, too many
    members, or declared sizes that inflate beyond :data:`ARCHIVE_MAX_RATIO` times the file or past
    the free memory (a zip bomb). Nothing is inflated here.
    """
    size = Path(path).stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise InputError(f"{what} is not a valid zip archive: {exc}", path) from exc
    if len(members) > ARCHIVE_MAX_MEMBERS:
        raise InputError(f"{what} holds {len(members):,} members; refused (at most {ARCHIVE_MAX_MEMBERS:,})",
                         path)
    total = 0
    for info in members:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in Path(name.replace("\\", "/")).parts or ":" in name:
            raise InputError(f"{what} member '{name[:80]}' would unpack outside its folder; refused", path)
        total += info.file_size
    limit = size * ARCHIVE_MAX_RATIO + ARCHIVE_SLACK_BYTES
    if total > limit:
        raise InputError(f"{what} would uncompress to {_mb(total)} from {_mb(size)} (a zip bomb?); refused",
                         path)
    check_memory(total, path, f"unpacking the {what}")


# -- library warnings ----------------------------------------------------------------------------
class _Collect(logging.Filter):
    """A logger filter that keeps each record's message and stops it there. A filter on the logger
    itself (not a handler) works whatever handlers the library adds when it is first imported."""

    def __init__(self, sink: list[str]):
        super().__init__()
        self.sink = sink

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.sink.append(record.getMessage())
        return False


#: Warnings about the code, not the file being read: kept off stderr, not reported either.
_NOT_ABOUT_THE_FILE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning, ResourceWarning)
#: Libraries that report problems with a file through logging rather than the warnings module.
_LIBRARY_LOGGERS = ("nibabel.global", "nibabel", "pydicom", "nrrd", "PIL", "tifffile")


#: ``warnings.catch_warnings`` swaps process-wide state and restores it on exit: two threads reading at
#: once (GUI workers) could restore each other's recorder and swallow every later warning. One reader
#: at a time collects; re-entrant, since a reader may read another file inside (a label map's image).
_COLLECTING = threading.RLock()


@contextlib.contextmanager
def collected_warnings():
    """Collect what libraries warn while a file is read, as one line each, instead of printing it.

    Yields a list that fills with the messages (duplicates dropped); the caller puts them in the
    Volume's warnings or in its one-line error. Loggers are silenced only inside the block.
    """
    with _COLLECTING:
        with _collecting() as found:
            yield found


@contextlib.contextmanager
def _collecting():
    found: list[str] = []
    collect = _Collect(found)
    loggers = [logging.getLogger(name) for name in _LIBRARY_LOGGERS]
    for logger in loggers:  # first in line, so that the innermost block collects (as warnings do)
        logger.filters.insert(0, collect)
    try:
        with warnings.catch_warnings(record=True) as caught:  # the filters in force still apply
            try:
                yield found
            finally:
                found.extend(str(w.message) for w in caught if not issubclass(w.category, _NOT_ABOUT_THE_FILE))
                found[:] = list(dict.fromkeys(" ".join(m.split())[:200] for m in found if m.strip()))
    finally:
        for logger in loggers:
            logger.removeFilter(collect)

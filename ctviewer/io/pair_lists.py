"""Text files listing training pairs, one ``image,label`` a line (the spine seed's format).

Paths are relative to the list file; blank lines and ``#`` comments are skipped. Segmentation
cases (CT) and thin-section photos read the same format, so both go through :func:`read_pair_list`.
"""

from __future__ import annotations

from pathlib import Path

from ctviewer.errors import InputError


def read_pair_list(path) -> list[tuple[int, Path, Path]]:
    """``(line number, image, label)`` for each line; InputError naming the file and line when a line
    is not two paths, a listed file (or DICOM folder) is missing, or no line lists a pair."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"not a text file of 'image,label' lines ({exc.__class__.__name__})", path) from None
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"line {number}: expected 'image,label', got {line!r}", path)
        image, label = (path.parent / part for part in parts)
        for file in (image, label):
            if not file.exists():
                raise InputError(f"line {number}: no such file {file}", path)
        pairs.append((number, image, label))
    if not pairs:
        raise InputError("lists no 'image,label' lines", path)
    return pairs

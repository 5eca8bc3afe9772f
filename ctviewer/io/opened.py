"""The files an image was read from: nothing the program writes may land on them.

A label map, a prediction or an autosave is made *from* an image; saving it over the image would
destroy the scan the user opened. Every save path of labels asks :func:`refuse_image_file` first.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError


def image_files(image: Volume) -> list[Path]:
    """The image's file, or each file of the DICOM series it was read from."""
    files = [Path(p) for p in image.meta.get("dicom_files") or []]
    if image.source and not Path(image.source).is_dir():
        files.append(Path(image.source))
    return files


def is_image_file(path: str | Path, image: Volume | None) -> bool:
    """True where ``path`` is (a link to, or another name of) a file ``image`` was read from."""
    if image is None or not path:
        return False
    path = Path(path)
    for opened in image_files(image):
        try:
            if os.path.samefile(path, opened):
                return True
        except OSError:   # one of them does not exist (yet): compare the names
            if path.expanduser().resolve() == opened.expanduser().resolve():
                return True
    return False


def refuse_image_file(path: str | Path, image: Volume | None) -> None:
    """Raise the one line the user reads when a save would overwrite the image itself."""
    if is_image_file(path, image):
        raise InputError("is the image you opened; labels are never saved over it: choose another "
                         "name (Labels ▸ Save labels as…)", path)

"""The built-in demo study: a synthetic torso CT (chest to hips, seed 0) cached on first use.

The demo is generated deterministically into ``user_cache_dir("ctviewer")/demo-v{GENERATOR_VERSION}/``
the first time it is asked for; bump :data:`GENERATOR_VERSION` whenever the generator's output changes
so that users get the new demo. Generation writes into a temporary folder beside the cache and renames
it into place, so a crash or a concurrent second process never leaves half a demo behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ctviewer.progress import CancelToken, Progress

#: Bump when the synthetic torso changes, so cached demos are regenerated.
GENERATOR_VERSION = 2
IMAGE_NAME = "demo_torso_ct.nii.gz"
LABELS_NAME = "demo_torso_labels.nii.gz"


def demo_params():
    from ctviewer.synth.params import TorsoParams

    return TorsoParams(seed=0, field_of_view="both", name="ctviewer demo torso (synthetic)")


def demo_dir(cache_dir: Path | None = None) -> Path:
    if cache_dir is None:
        import platformdirs

        cache_dir = Path(platformdirs.user_cache_dir("ctviewer"))
    return Path(cache_dir) / f"demo-v{GENERATOR_VERSION}"


def demo_paths(cache_dir: Path | None = None, progress: Progress | None = None,
               cancel: CancelToken | None = None) -> tuple[Path, Path]:
    """(image .nii.gz, labels .nii.gz) of the demo study, generated on first use."""
    folder = demo_dir(cache_dir)
    image, labels = folder / IMAGE_NAME, folder / LABELS_NAME
    if image.is_file() and labels.is_file():
        return image, labels
    from ctviewer.io.writers import write_volume
    from ctviewer.synth.torso import make_torso

    folder.parent.mkdir(parents=True, exist_ok=True)
    torso = make_torso(demo_params(), progress=progress, cancel=cancel)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write_volume(torso.image, tmp / IMAGE_NAME)
        write_volume(torso.labels.volume, tmp / LABELS_NAME, label_table=torso.labels.table)
        try:
            tmp.rename(folder)
        except OSError:
            if not (image.is_file() and labels.is_file()):  # another process did not finish it first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return image, labels

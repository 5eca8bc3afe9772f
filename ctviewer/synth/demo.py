"""The built-in demo studies, cached on first use: a synthetic torso CT (chest to hips, seed 0) and a
synthetic soil micro-CT cube (400 x 200 x 200 voxels of 0.1 mm like the seed's cubes, seed 0).

Each is generated deterministically into ``user_cache_dir("ctviewer")/demo-v{GENERATOR_VERSION}/``
(the soil cube into ``demo-soil-v{SOIL_GENERATOR_VERSION}/``) the first time it is asked for; bump the
version whenever its generator's output changes so that users get the new demo. Generation writes into
a temporary folder beside the cache and renames it into place, so a crash or a concurrent second
process never leaves half a demo behind. The soil cube is kept as ``.npy`` with its JSON sidecar, the
seed's format, so `ctviewer soil pores` and friends take the cached file as it is.
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
#: Bump when the synthetic soil cube changes.
SOIL_GENERATOR_VERSION = 1
SOIL_IMAGE_NAME = "demo_soil_cube.npy"
SOIL_LABELS_NAME = "demo_soil_cube_labels.npy"


def demo_params():
    from ctviewer.synth.params import TorsoParams

    return TorsoParams(seed=0, field_of_view="both", name="ctviewer demo torso (synthetic)")


def soil_demo_params():
    from ctviewer.synth.soil import SoilParams

    return SoilParams(shape=(400, 200, 200), voxel_mm=0.1, seed=0, name="ctviewer demo soil cube (synthetic)")


def demo_dir(cache_dir: Path | None = None) -> Path:
    if cache_dir is None:
        import platformdirs

        cache_dir = Path(platformdirs.user_cache_dir("ctviewer"))
    return Path(cache_dir) / f"demo-v{GENERATOR_VERSION}"


def soil_demo_dir(cache_dir: Path | None = None) -> Path:
    return demo_dir(cache_dir).with_name(f"demo-soil-v{SOIL_GENERATOR_VERSION}")


def demo_paths(cache_dir: Path | None = None, progress: Progress | None = None,
               cancel: CancelToken | None = None) -> tuple[Path, Path]:
    """(image .nii.gz, labels .nii.gz) of the demo study, generated on first use."""
    def make():
        from ctviewer.synth.torso import make_torso

        torso = make_torso(demo_params(), progress=progress, cancel=cancel)
        return torso.image, torso.labels

    return _cached(demo_dir(cache_dir), IMAGE_NAME, LABELS_NAME, make)


def demo_soil_paths(cache_dir: Path | None = None, progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> tuple[Path, Path]:
    """(image .npy, truth labels .npy) of the demo soil cube, generated on first use."""
    def make():
        from ctviewer.synth.soil import make_soil_cube

        cube = make_soil_cube(soil_demo_params(), progress=progress, cancel=cancel)
        return cube.image, cube.truth

    return _cached(soil_demo_dir(cache_dir), SOIL_IMAGE_NAME, SOIL_LABELS_NAME, make)


def _cached(folder: Path, image_name: str, labels_name: str, make) -> tuple[Path, Path]:
    """The image and label files in ``folder``; ``make()`` -> (Volume, LabelMap) writes them first
    when they are not there (into a temporary folder renamed into place)."""
    image, labels = folder / image_name, folder / labels_name
    if image.is_file() and labels.is_file():
        return image, labels
    from ctviewer.io.writers import write_volume

    folder.parent.mkdir(parents=True, exist_ok=True)
    volume, label_map = make()
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write_volume(volume, tmp / image_name)
        write_volume(label_map.volume, tmp / labels_name, label_table=label_map.table)
        try:
            tmp.rename(folder)
        except OSError:
            if not (image.is_file() and labels.is_file()):  # another process did not finish it first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return image, labels

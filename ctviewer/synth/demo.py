"""The built-in demo studies, cached on first use: a synthetic torso CT (chest to hips, seed 0), a
synthetic soil micro-CT cube (400 x 200 x 200 voxels of 0.1 mm like the seed's cubes, seed 0) and a
thin-section project of six synthetic photos in the seed's folder layout (one training photo unlabelled).

Each is generated deterministically into ``user_cache_dir("ctviewer")/demo-v{GENERATOR_VERSION}/``
(the soil cube into ``demo-soil-v{SOIL_GENERATOR_VERSION}/``, the thin sections into
``demo-thin-section-v{THIN_SECTION_GENERATOR_VERSION}/``) the first time it is asked for; bump the
version whenever its generator's output changes so that users get the new demo. Generation writes into
a temporary folder beside the cache and renames it into place, so a crash or a concurrent second
process never leaves half a demo behind. The soil cube is kept as ``.npy`` with its JSON sidecar, the
seed's format, so `ctviewer soil pores` and friends take the cached file as it is.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ctviewer.progress import CancelToken, Progress, step_progress

#: Bump when the synthetic torso changes, so cached demos are regenerated.
#: 4: every rib drops most of its height just beyond its angle (slopes down from the spine as on real CT).
GENERATOR_VERSION = 4
IMAGE_NAME = "demo_torso_ct.nii.gz"
LABELS_NAME = "demo_torso_labels.nii.gz"
#: Bump when the synthetic soil cube changes.
SOIL_GENERATOR_VERSION = 1
SOIL_IMAGE_NAME = "demo_soil_cube.npy"
SOIL_LABELS_NAME = "demo_soil_cube_labels.npy"
#: Bump when the synthetic thin sections change.
THIN_SECTION_GENERATOR_VERSION = 1
#: The demo photos: (split, photo stem, seed, labelled); the seed's layout and numeric names.
THIN_SECTION_PHOTOS = (("train", "1", 1, True), ("train", "2", 2, True), ("train", "3", 3, True),
                       ("train", "4", 4, False), ("test", "5", 5, True), ("test", "6", 6, True))


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


def thin_section_demo_size() -> tuple[int, int]:
    return (480, 640)


def thin_section_demo_dir(cache_dir: Path | None = None) -> Path:
    return demo_dir(cache_dir).with_name(f"demo-thin-section-v{THIN_SECTION_GENERATOR_VERSION}")


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


def demo_thin_section_dir(cache_dir: Path | None = None, progress: Progress | None = None,
                          cancel: CancelToken | None = None) -> Path:
    """The demo thin-section project folder (seed layout), generated on first use."""
    folder = thin_section_demo_dir(cache_dir)
    if (folder / "images_prepped_test" / f"{THIN_SECTION_PHOTOS[-1][1]}.png").is_file():
        return folder
    from ctviewer.synth.thin_section import make_thin_section
    from ctviewer.workflows.thin_section.photos import write_label_image, write_rgb_png

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    tick = step_progress(progress, cancel, len(THIN_SECTION_PHOTOS), "Making the demo thin sections")
    try:
        for split in dict.fromkeys(split for split, *_ in THIN_SECTION_PHOTOS):
            (tmp / f"images_prepped_{split}").mkdir()
            (tmp / f"annotations_prepped_{split}").mkdir()
        for n, (split, stem, seed, labelled) in enumerate(THIN_SECTION_PHOTOS):
            tick(n)
            photo = make_thin_section(seed=seed, size=thin_section_demo_size())
            write_rgb_png(photo.rgb, tmp / f"images_prepped_{split}" / f"{stem}.png")
            if labelled:
                write_label_image(photo.labels, tmp / f"annotations_prepped_{split}" / f"{stem}.png")
        try:
            tmp.rename(folder)
        except OSError:
            if not folder.is_dir():  # another process did not finish it first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    tick(len(THIN_SECTION_PHOTOS))
    return folder


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

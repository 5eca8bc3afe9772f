"""Micro-CT as it comes from the scanner: multi-page TIFFs and folders of numbered slices, written
here with tifffile and Pillow the way ImageJ and scanner software write them, then read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ctviewer.errors import Cancelled, InputError
from ctviewer.io.registry import examine, read_volume
from ctviewer.progress import CancelToken

REPO = Path(__file__).resolve().parents[2]


def _cube(shape=(6, 9, 11), dtype=np.uint16, seed=1) -> np.ndarray:
    """Every slice different (a slice read twice or out of order shows), off the uint8 range."""
    rng = np.random.default_rng(seed)
    cube = rng.integers(0, 60000, shape).astype(dtype)
    cube[:, 0, 0] = np.arange(shape[0]) * 1000 + 7  # the slice number stamped in a corner
    return cube


def _folder(tmp_path: Path, cube: np.ndarray, numbers=None, name="slice_{}.tif", **tags) -> Path:
    folder = tmp_path / "stack"
    folder.mkdir()
    numbers = numbers or range(1, len(cube) + 1)
    for plane, n in zip(cube, numbers):
        tifffile.imwrite(folder / name.format(n), plane, photometric="minisblack", **tags)
    return folder


# -- a multi-page TIFF --------------------------------------------------------------------------------
def test_imagej_stack_gives_its_voxel_size_in_mm(tmp_path):
    cube = _cube()
    path = tmp_path / "core.tif"
    # what ImageJ writes for a calibrated stack: pixels per micron, unit and slice step in the description
    tifffile.imwrite(path, cube, imagej=True, resolution=(1 / 12.5, 1 / 10.0),
                     metadata={"spacing": 20.0, "unit": "micron", "axes": "ZYX"})
    (item,) = examine(path)
    assert item.format == "tiff-stack" and item.n_slices == 6
    volume = read_volume(path)
    assert volume.array.dtype == np.uint16 and volume.shape == (6, 9, 11)
    np.testing.assert_array_equal(volume.array, tifffile.imread(path))
    np.testing.assert_allclose(volume.spacing, (0.020, 0.010, 0.0125))
    assert not volume.is_photo and not volume.meta["spacing_unknown"]


def test_resolution_tags_in_centimetres_and_no_slice_step(tmp_path):
    cube = _cube(dtype=np.uint8)
    path = tmp_path / "rock.tiff"
    tifffile.imwrite(path, cube, photometric="minisblack", resolution=(400, 400), resolutionunit="CENTIMETER")
    volume = read_volume(path)
    assert volume.array.dtype == np.uint8
    np.testing.assert_allclose(volume.spacing, (0.025, 0.025, 0.025))  # 400 px/cm = 25 µm, cubic voxels
    assert any("voxels taken as cubic" in w for w in volume.warnings)


def test_screen_dpi_is_not_a_voxel_size_and_the_sidecar_is_used(tmp_path):
    cube = _cube()
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, cube, photometric="minisblack", resolution=(72, 72), resolutionunit="INCH")
    volume = read_volume(path)
    assert volume.spacing == (1.0, 1.0, 1.0) and volume.meta["spacing_unknown"]
    assert any("spacing unknown" in w and "scan.json" in w for w in volume.warnings)
    (tmp_path / "scan.json").write_text(json.dumps({"spacing": [0.05, 0.04, 0.04]}))
    volume = read_volume(path)
    assert volume.spacing == (0.05, 0.04, 0.04) and not volume.meta["spacing_unknown"]


def test_single_page_and_rgb_tiffs_stay_photos(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", _cube()[0], photometric="minisblack",
                     resolution=(300, 300), resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((3, 9, 11, 3), np.uint8), photometric="rgb")
    for name in ("one.tif", "rgb.tif"):
        (item,) = examine(tmp_path / name)
        assert item.format == "photo"
        volume = read_volume(tmp_path / name)
        assert volume.meta.get("pixel_units") and volume.spacing == (1.0, 1.0, 1.0)  # DPI is no voxel size


def test_real_snow_micro_ct_opens_as_a_volume(shared_data):
    path = shared_data / "microct" / "snow.tif"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    (item,) = examine(path)
    assert item.format == "tiff-stack"
    seen = []
    volume = read_volume(path, progress=lambda f, m="": seen.append(f))
    assert volume.shape == (100, 100, 100) and volume.array.dtype == np.uint16 and not volume.is_photo
    np.testing.assert_array_equal(volume.array, tifffile.imread(path))
    assert volume.meta["spacing_unknown"]  # the file does not say: the app asks once
    assert len(seen) >= 100 and seen[-1] == 1.0


def test_ctviewer_info_reports_snow_as_a_volume(shared_data):
    path = shared_data / "microct" / "snow.tif"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    done = subprocess.run([sys.executable, "-m", "app.main", "info", str(path), "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={"CTVIEWER_BLOCK_QT": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["kind"] == "volume" and info["format"] == "tiff-stack"
    assert info["shape_zyx"] == [100, 100, 100] and info["dtype"] == "uint16"
    assert any("spacing unknown" in w for w in info["warnings"])


# -- a folder of slices -------------------------------------------------------------------------------
def test_min_is_white_pages_are_not_read_as_a_volume_of_inverted_values(tmp_path):
    """Min-is-white stores dark as high values: read as a volume, "pores are the low grey values" would
    pick the solid. Such a stack is not taken as a micro-CT volume."""
    tifffile.imwrite(tmp_path / "white.tif", _cube(), photometric="miniswhite")
    assert all(item.format != "tiff-stack" for item in examine(tmp_path / "white.tif"))


def test_the_current_folder_given_as_dot_opens(tmp_path, monkeypatch):
    folder = _folder(tmp_path, _cube((4, 9, 11)))
    monkeypatch.chdir(folder)
    assert read_volume(".").array.shape == (4, 9, 11)


def test_folder_of_twelve_slices_in_number_order(tmp_path):
    cube = _cube((12, 9, 11))
    folder = _folder(tmp_path, cube, resolution=(1 / 0.008, 1 / 0.008), resolutionunit="MILLIMETER")
    (tmp_path / "stack" / "notes.txt").write_text("scan notes\n")
    (item,) = examine(folder)
    assert item.n_slices == 12 and "slice_1.tif … slice_12.tif" in item.description
    assert any("notes.txt" in w for w in item.warnings)
    volume = read_volume(folder)
    # slice_2 comes before slice_10 (by name it would come after)
    np.testing.assert_array_equal(volume.array, cube)
    assert volume.array.dtype == np.uint16
    np.testing.assert_allclose(volume.spacing, (0.008, 0.008, 0.008))


def test_folder_of_png_slices_without_size_asks_for_it(tmp_path):
    cube = _cube((4, 9, 11))
    folder = tmp_path / "pngs"
    folder.mkdir()
    for n, plane in enumerate(cube):
        Image.fromarray(plane).save(folder / f"rec{n:04d}.png")
    volume = read_volume(folder)
    np.testing.assert_array_equal(volume.array, cube)
    assert volume.array.dtype == np.uint16 and volume.meta["spacing_unknown"]
    (tmp_path / "pngs.json").write_text(json.dumps({"spacing": [0.03, 0.03, 0.03]}))
    assert read_volume(folder).spacing == (0.03, 0.03, 0.03)


def test_float_slices_with_nan_open_with_the_count(tmp_path):
    cube = _cube((5, 9, 11)).astype(np.float32) / 1000 - 3
    cube[2, :3, :4] = np.nan
    cube[4, 8, 10] = np.inf
    volume = read_volume(_folder(tmp_path, cube))
    assert volume.array.dtype == np.float32 and np.isfinite(volume.array).all()
    lowest = np.nanmin(np.where(np.isfinite(cube), cube, np.nan))
    assert volume.array[2, 0, 0] == lowest and volume.array[4, 8, 10] == lowest
    assert any("13 voxels" in w and "NaN" in w for w in volume.warnings)
    # kept for measurements, which must not count them as pore space unawares
    assert volume.meta["nonfinite_voxels"] == 13 and volume.meta["nonfinite_shown_as"] == lowest


def test_missing_slice_numbers_are_refused_naming_them(tmp_path):
    cube = _cube((9, 9, 11))
    folder = _folder(tmp_path, cube, numbers=[1, 2, 3, 5, 6, 9, 10, 11, 12])
    with pytest.raises(InputError) as err:
        read_volume(folder)
    message = str(err.value)
    assert "stack" in message and "4, 7–8 (3 slices)" in message and "\n" not in message


def test_mixed_sizes_name_the_file_that_differs(tmp_path):
    folder = _folder(tmp_path, _cube((5, 9, 11)))
    tifffile.imwrite(folder / "slice_4.tif", _cube((1, 9, 10))[0], photometric="minisblack")
    with pytest.raises(InputError, match=r"slice_4\.tif is 10×9 uint16; the other 4 are 11×9 uint16"):
        examine(folder)


def test_cancel_stops_between_slices(tmp_path):
    folder = _folder(tmp_path, _cube((8, 9, 11)))
    token = CancelToken()

    def progress(fraction, message=""):
        if fraction >= 0.5:
            token.cancel()

    with pytest.raises(Cancelled):
        read_volume(folder, progress=progress, cancel=token)


def test_folder_of_colour_photos_is_not_a_stack(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(1, 4):
        Image.fromarray(np.zeros((9, 11, 3), np.uint8)).save(folder / f"{n}.png")
    with pytest.raises(InputError, match="folder holds no image"):
        examine(folder)


def test_multipage_tiff_with_a_page_of_another_size_is_refused(tmp_path):
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        for width in (11, 11, 11, 11, 10, 11):
            tif.write(np.zeros((9, width), np.uint16), photometric="minisblack", metadata=None)
    with pytest.raises(InputError, match=r"mixed\.tif: pages of mixed sizes: page 5 is 10×9"):
        read_volume(path)


def test_ctviewer_info_on_a_folder_with_a_gap_exits_2_with_one_line(tmp_path):
    folder = _folder(tmp_path, _cube((3, 9, 11)), numbers=[1, 2, 4])
    done = subprocess.run([sys.executable, "-m", "app.main", "info", str(folder)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={"CTVIEWER_BLOCK_QT": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0] and "missing" in lines[0] and ": 3 (1 slice)" in lines[0]


def test_sidecar_overrides_the_tags_and_says_so(tmp_path):
    path = tmp_path / "core.tif"
    tifffile.imwrite(path, _cube(), imagej=True, resolution=(1 / 12.5, 1 / 12.5),
                     metadata={"spacing": 12.5, "unit": "micron", "axes": "ZYX"})
    (tmp_path / "core.json").write_text(json.dumps({"spacing": [0.02, 0.02, 0.02]}))
    volume = read_volume(path)
    assert volume.spacing == (0.02, 0.02, 0.02)
    assert any("sidecar" in w and "0.0125" in w for w in volume.warnings)


def test_folder_from_a_skyscan_scanner_takes_the_voxel_size_from_its_reconstruction_log(tmp_path):
    cube = _cube((4, 9, 11), dtype=np.uint8)
    folder = tmp_path / "soil_core_Rec"
    folder.mkdir()
    for n, plane in enumerate(cube):
        Image.fromarray(plane).save(folder / f"soil_core__rec{n:08d}.png")  # NRecon's own naming
    # as NRecon writes it: the projections' pixel in [Acquisition], the reconstructed voxel (binned 2x)
    # in [Reconstruction]
    (folder / "soil_core__rec.log").write_text(
        "[System]\nScanner=Skyscan1172\n[Acquisition]\nImage Pixel Size (um)=  6.000000\n"
        "[Reconstruction]\nReconstruction Program=NRecon\nPixel Size (um)=12.00000\nResult File Type=PNG\n",
        encoding="latin-1")
    (item,) = examine(folder)
    assert not item.warnings  # the log is no file left out
    volume = read_volume(folder)
    assert volume.spacing == (0.012, 0.012, 0.012) and volume.array.dtype == np.uint8
    assert volume.meta["spacing_from"] == "the scanner's log soil_core__rec.log" and not volume.meta["spacing_unknown"]
    np.testing.assert_array_equal(volume.array, cube)

"""`ctviewer soil pores --method ...` as a user runs it: on the real snow and concrete micro-CT volumes
the default porosity lies between Otsu's and the valley's (the seed's equal bins do not), and on
small cubes written to disk every option says what it did; bad input is one line and exit code 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from ctviewer.cli import main
from ctviewer.data.volume import Volume
from ctviewer.io.writers import write_volume

ROOT = Path(__file__).resolve().parents[2]
MICROCT = ROOT.parent / "shared" / "data" / "microct"
SNOW = MICROCT / "snow.tif"


def _pores(path, *options, capsys) -> dict:
    code = main(["soil", "pores", str(path), *options, "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return json.loads(printed.out)


@pytest.mark.skipif(not SNOW.exists(), reason=f"the real snow micro-CT is not here ({SNOW})")
def test_snow_by_a_user_default_porosity_between_otsu_and_valley():
    env = dict(os.environ, CTVIEWER_BLOCK_QT="1")
    run = subprocess.run([sys.executable, "-m", "ctviewer.cli", "soil", "pores", str(SNOW), "--voxel-mm", "0.03",
                          "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    methods = data["porosity_uncertainty"]["methods"]
    low, high = sorted([methods["otsu"]["porosity"], methods["valley"]["porosity"]])
    assert low <= data["porosity"] <= high
    assert methods["otsu"]["porosity"] == pytest.approx(0.41, abs=0.01)     # the figure
    assert data["phases"]["method"] == "valley" and data["phases"]["threshold"] == methods["valley"]["threshold"]
    assert data["sample"]["detected"] is False and "fills the field of view" in data["sample"]["note"]
    assert data["voxel_mm"] == [0.03, 0.03, 0.03] and data["rev"]["sides_mm"][-1] == pytest.approx(3.0)
    assert [len(data["profiles"][a]) for a in "zyx"] == [100, 100, 100]
    assert data["porosity_by_slice"] == data["profiles"]["z"]
    assert data["clusters"] >= 1 and data["percolates"] is True          # the pore statistics are there too


@pytest.mark.parametrize("name", ["snow.tif", "concrete_x-ray-bin16.tif", "concrete_neutron-bin16.tif"])
def test_real_volumes_default_lies_in_the_histogram_methods_range_and_equal_bins_does_not(name, capsys):
    path = MICROCT / name
    if not path.exists():
        pytest.skip(f"the real micro-CT volume is not here ({path})")
    data = _pores(path, capsys=capsys)
    low, high = data["porosity_uncertainty"]["method_range"]
    assert low <= data["porosity"] <= high
    if name == "snow.tif":      # the figures: the seed's six bins count the darkest sixth only
        seed = _pores(path, "--method", "equal-bins", capsys=capsys)
        assert seed["phases"]["method"] == "equal-bins" and seed["porosity"] == pytest.approx(0.145, abs=0.002)
    else:                       # a concrete core in a container: the air around it is left out
        assert data["sample"]["detected"] is True and data["porosity"] < 0.02


def _medium(tmp_path, name="medium.npy", core=False):
    rng = np.random.default_rng(7)
    shape = (24, 48, 48)
    field = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    solid = field > 0
    if core:
        _, y, x = np.indices(shape)
        solid &= (y - 24) ** 2 + (x - 24) ** 2 <= 20 ** 2
    values = np.where(solid, 30000, 9000) + rng.integers(0, 1500, shape)
    path = write_volume(Volume(values.astype(np.uint16), spacing=(0.1, 0.1, 0.1), name="medium"), tmp_path / name)
    return path, values.astype(np.uint16), solid


def test_each_method_and_threshold_is_written_with_the_result(tmp_path, capsys):
    path, values, solid = _medium(tmp_path)
    for method in ("otsu", "multiotsu", "valley", "equal-bins"):
        data = _pores(path, "--method", method, capsys=capsys)
        assert data["phases"]["method"] == method
        assert data["porosity"] == np.mean(values <= data["phases"]["threshold"])
    mine = _pores(path, "--method", "threshold:20000", "--sample-mask", "none", capsys=capsys)
    assert mine["phases"]["threshold"] == 20000 and mine["porosity"] == np.mean(values <= 20000)
    assert mine["porosity"] == pytest.approx(1 - solid.mean())
    smooth = _pores(path, "--denoise", "median", capsys=capsys)
    assert smooth["phases"]["denoise"]["method"] == "median"


def test_a_core_in_air_writes_the_samples_porosity_to_the_csv_profile(tmp_path, capsys):
    path, values, solid = _medium(tmp_path, core=True)
    _, y, x = np.indices(values.shape)
    core = (y - 24) ** 2 + (x - 24) ** 2 <= 20 ** 2
    data = _pores(path, "--csv", str(tmp_path / "core"), capsys=capsys)
    assert data["sample"]["detected"] is True
    assert data["porosity"] == pytest.approx(1 - solid[core].mean(), abs=0.01)
    with open(tmp_path / "core_profile.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # the sample is the core less its surface voxels (two in from the side; top and bottom are the
    # view's edges, where the core goes on)
    inner = ndi.binary_erosion(core, ndi.generate_binary_structure(3, 1), iterations=2, border_value=1)
    by_slice = [1 - solid[z][inner[z]].mean() for z in range(values.shape[0])]
    on_disk = [float(r["porosity_percent"]) / 100 for r in rows]
    assert on_disk == pytest.approx(data["profiles"]["z"], abs=1e-6)
    # a hull through the outermost solid voxels cuts into pores at the surface here and there: about a
    # point low on this 50 % porous core; counting the air around it would read ~0.75
    assert on_disk == pytest.approx(by_slice, abs=0.03)
    counted_air = _pores(path, "--sample-mask", "none", capsys=capsys)
    assert counted_air["porosity"] > data["porosity"] + 0.15


def test_text_output_names_method_threshold_and_range(tmp_path, capsys):
    path, _, _ = _medium(tmp_path)
    assert main(["soil", "pores", str(path), "--method", "valley"]) == 0
    out = capsys.readouterr().out
    assert "phases            valley: pores are grey values <= " in out
    assert "one grey step of" in out and "methods           Otsu" in out and "REV " in out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    rng = np.random.default_rng(8)
    one_peak = write_volume(Volume(rng.normal(20000, 2000, (16, 32, 32)).astype(np.uint16)), tmp_path / "one.npy")
    assert main(["soil", "pores", str(one_peak)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one.npy" in err[0] and "the histogram has one peak" in err[0]
    assert "--method threshold:V" in err[0]
    assert main(["soil", "pores", str(one_peak), "--method", "threshold:20000", "--json"]) == 0
    capsys.readouterr()
    holes = rng.random((8, 16, 16)).astype(np.float32)
    holes[0, :2] = np.nan
    nan_path = write_volume(Volume(holes), tmp_path / "holes.npy")
    assert main(["soil", "pores", str(nan_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holes.npy" in err[0] and "32 of 2,048 voxels are NaN" in err[0]
    assert main(["soil", "pores", str(one_peak), "--method", "kmeans"]) == 2
    assert "unknown threshold method 'kmeans'" in capsys.readouterr().err
    assert main(["soil", "pores", str(one_peak), "--method", "otsu", "--label", "3"]) == 2
    assert "--label 3 picks an object" in capsys.readouterr().err


def test_a_float_volume_and_a_voxel_size_given_by_hand(tmp_path, capsys):
    _, values, solid = _medium(tmp_path)
    scaled = write_volume(Volume(values.astype(np.float32) / 65535), tmp_path / "float.npy")
    data = _pores(scaled, "--voxel-mm", "0.2,0.05,0.05", capsys=capsys)
    assert data["phases"]["histogram"]["exact"] is False and data["phases"]["histogram"]["dtype"] == "float32"
    assert data["porosity"] == pytest.approx(1 - solid.mean(), abs=0.001)
    assert data["voxel_mm"] == [0.2, 0.05, 0.05]
    assert main(["soil", "pores", str(scaled), "--voxel-mm", "0,1"]) == 2
    assert "is not a voxel size in mm" in capsys.readouterr().err


def test_a_tiff_whose_nan_voxels_the_reader_filled_in_is_still_refused(tmp_path, capsys):
    import tifffile

    values = np.random.default_rng(9).random((6, 20, 20)).astype(np.float32)
    values[0, 0, :5] = np.nan
    values[2, 2, 2] = np.inf
    tifffile.imwrite(tmp_path / "holes.tif", values)
    assert main(["soil", "pores", str(tmp_path / "holes.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holes.tif" in err[0] and "6 of 2,400 voxels are NaN or infinite in the file" in err[0]


def test_a_float_threshold_at_the_smallest_value_counts_the_voxels_there(tmp_path, capsys):
    rng = np.random.default_rng(10)
    values = rng.uniform(0.5, 3.0, (10, 20, 20)).astype(np.float32)
    values.ravel()[rng.permutation(values.size)[:1200]] = 0.0          # 30 % zeros
    path = write_volume(Volume(values), tmp_path / "z.npy")
    data = _pores(path, "--method", "threshold:0", "--sample-mask", "none", capsys=capsys)
    assert data["phases"]["threshold"] == 0.0
    assert data["porosity"] == pytest.approx(0.3) and data["pore_voxels"] == 1200
    assert np.mean(data["porosity_by_slice"]) == pytest.approx(0.3)


def test_multiotsu_is_three_classes_for_every_label(tmp_path, capsys):
    from ctviewer.io.registry import read_volume
    from ctviewer.workflows.soil.objects import density_objects

    path, _, _ = _medium(tmp_path)
    classes = density_objects(read_volume(path, canonical=False), n=3, method="otsu").array
    first = _pores(path, "--method", "multiotsu", "--sample-mask", "none", capsys=capsys)
    assert len(first["phases"]["all_thresholds"]) == 2                  # 3 classes
    third = _pores(path, "--method", "multiotsu", "--label", "3", capsys=capsys)
    assert third["pore_voxels"] == np.count_nonzero(classes == 3)
    assert "default 3" in " ".join(_help(["soil", "pores", "--help"], capsys).split())


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit):
        main(argv)
    return capsys.readouterr().out


def test_a_voxel_size_given_by_hand_reaches_a_label_maps_statistics(tmp_path, capsys):
    from ctviewer.data.labels import LabelMap
    from ctviewer.io.writers import write_label_map

    path, values, solid = _medium(tmp_path)
    objects = write_label_map(LabelMap(Volume((~solid).astype(np.uint8), spacing=(0.1, 0.1, 0.1))),
                              tmp_path / "objects.nii.gz")
    data = _pores(path, "--objects", str(objects), "--voxel-mm", "0.2,0.05,0.05", capsys=capsys)
    assert data["voxel_mm"] == [0.2, 0.05, 0.05]
    assert data["cluster_volumes_mm3"][0] == pytest.approx(data["pore_voxels"] * 0.2 * 0.05 * 0.05 *
                                                           data["largest_cluster_fraction"])


def test_slices_without_sample_are_empty_cells_in_the_csv_profile(tmp_path, capsys):
    path, values, solid = _medium(tmp_path, core=True)
    values[:8] = 9000                       # air above a core shorter than the scan
    path = write_volume(Volume(values, spacing=(0.1, 0.1, 0.1)), tmp_path / "short.npy")
    data = _pores(path, "--csv", str(tmp_path / "short"), capsys=capsys)
    assert data["profiles"]["z"][:8] == [None] * 8
    with open(tmp_path / "short_profile.csv", newline="") as fh:
        cells = [r["porosity_percent"] for r in csv.DictReader(fh)]
    assert cells[:8] == [""] * 8 and all(cells[10:])    # the outline starts two voxels inside the core

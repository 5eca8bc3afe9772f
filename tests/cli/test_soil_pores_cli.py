"""`ctviewer soil objects` and `ctviewer soil pores`, in-process, on a small hand-made cube: a tube of
air from top to bottom and a stone in a uniform matrix, so every number printed is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctviewer.cli import main
from ctviewer.data.volume import Volume
from ctviewer.io.label_files import read_label_map
from ctviewer.io.writers import write_volume

TUBE = (slice(None), slice(4, 9), slice(4, 9))       # 5 x 5 voxels through all 16 slices
STONE = (slice(6, 10), slice(12, 16), slice(12, 16))  # 4 x 4 x 4


@pytest.fixture
def cube_path(tmp_path):
    values = np.full((16, 20, 20), 2000, dtype=np.int16)
    values[TUBE] = 0
    values[STONE] = 4000
    return write_volume(Volume(values, spacing=(0.1, 0.1, 0.1), name="core"), tmp_path / "cube.npy")


def test_objects_writes_a_named_label_map_and_prints_each_object(cube_path, tmp_path, capsys):
    out = tmp_path / "objects.nii.gz"
    code = main(["soil", "objects", str(cube_path), "-o", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    labels = read_label_map(out, canonical=False)
    assert labels.array.shape == (16, 20, 20)
    assert np.all(labels.array[TUBE] == 1) and np.all(labels.array[STONE] == 6)
    assert labels.table.name(1) == "pores" and labels.table.name(6) == "stones"
    lines = printed.out.splitlines()
    assert "equal-width bins" in lines[0]
    pores_line = next(line for line in lines if " pores " in line)
    assert "400 voxels" in pores_line and "6.25 %" in pores_line   # 400 of 6400


def test_pores_json_computes_the_objects_itself(cube_path, capsys):
    code = main(["soil", "pores", str(cube_path), "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    data = json.loads(printed.out)
    assert data["porosity"] == pytest.approx(400 / 6400)
    assert data["porosity_by_slice"] == pytest.approx([25 / 400] * 16)
    assert data["clusters"] == 1 and data["percolates"] is True and data["euler_number"] == 1
    assert data["cluster_volumes_mm3"] == pytest.approx([400 * 0.001])
    assert data["mean_thickness_mm"] == pytest.approx(0.5, abs=0.1)   # the tube is 5 voxels wide
    assert data["name"] == "pores" and data["connectivity"] == 6


def test_pores_csv_gives_the_depth_profile_clusters_and_sizes_for_a_spreadsheet(cube_path, tmp_path, capsys):
    import csv

    assert main(["soil", "pores", str(cube_path), "--csv", str(tmp_path / "core")]) == 0
    capsys.readouterr()
    with open(tmp_path / "core_profile.csv", newline="") as fh:
        profile = list(csv.DictReader(fh))
    assert len(profile) == 16 and float(profile[3]["depth_mm"]) == pytest.approx(0.3)
    assert all(float(row["porosity_percent"]) == pytest.approx(6.25) for row in profile)   # 25 of 400 a slice
    with open(tmp_path / "core_clusters.csv", newline="") as fh:
        (cluster,) = list(csv.DictReader(fh))
    assert float(cluster["volume_mm3"]) == pytest.approx(0.4) and float(cluster["share_percent"]) == 100
    with open(tmp_path / "core_sizes.csv", newline="") as fh:
        sizes = list(csv.DictReader(fh))
    assert sum(int(row["voxels"]) for row in sizes) == 400


def test_pores_of_another_label_from_a_label_map_in_text(cube_path, tmp_path, capsys):
    objects = tmp_path / "objects.nii.gz"
    assert main(["soil", "objects", str(cube_path), "-o", str(objects)]) == 0
    capsys.readouterr()
    code = main(["soil", "pores", str(cube_path), "--objects", str(objects), "--label", "6",
                 "--connectivity", "26"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    text = printed.out
    assert "stones (label 6 of objects.nii.gz), 26-connectivity" in text
    assert "porosity          1.00 %" in text and "percolates        no" in text


def test_bad_input_is_one_line_and_exit_2(cube_path, tmp_path, capsys):
    flat = write_volume(Volume(np.full((4, 5, 6), 900, dtype=np.int16)), tmp_path / "flat.npy")
    assert main(["soil", "objects", str(flat), "-o", str(tmp_path / "o.nii.gz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "all voxels have the value 900: the six bins are degenerate" in err
    other = write_volume(Volume(np.zeros((4, 5, 6), dtype=np.uint8)), tmp_path / "other.nii.gz")
    assert main(["soil", "pores", str(cube_path), "--objects", str(other)]) == 2
    assert "not on the cube's grid" in capsys.readouterr().err

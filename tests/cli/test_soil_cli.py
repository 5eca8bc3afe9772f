"""`ctviewer soil cube`, in-process: the one line it prints, the files it writes, the one-line refusals
(exit 2), and how the verb wires the actions other modules define (and survives their absence)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctviewer.cli import main
from tests.dicom_series import write_ct_series


@pytest.fixture
def stack(tmp_path):
    """12 slices of 40 x 40, 1.5 mm apart, stored with slope 2 / intercept -1024."""
    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 3000, (40, 40)).astype(np.int16) for _ in range(12)]
    folder = tmp_path / "stack"
    write_ct_series(folder, planes, [(0.0, 0.0, 1.5 * k) for k in range(12)],
                    [f"IM{k:04d}.dcm" for k in range(12)], rescale=(2, -1024))
    return folder


def test_cube_writes_npy_and_sidecar_and_says_what_it_built(stack, tmp_path, capsys):
    out = tmp_path / "cube.npy"
    code = main(["soil", "cube", str(stack), "-o", str(out), "--slices", "2:10", "--rows", "5:30", "--cols", "5:"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    lines = printed.out.strip().splitlines()
    assert len(lines) == 1
    assert "8 x 25 x 35 voxels" in lines[0] and "spacing 1.5 x 0.7 x 0.8 mm" in lines[0]
    assert "values 0 .. 4096 (int16)" in lines[0] and "slices 2:10, rows 5:30, cols 5:40" in lines[0]
    assert np.load(out).shape == (8, 25, 35)
    assert json.loads((tmp_path / "cube.json").read_text())["spacing"] == pytest.approx([1.5, 0.7, 0.8])


def test_cube_to_nifti_without_clip_keeps_hu(stack, tmp_path, capsys):
    out = tmp_path / "cube.nii.gz"
    assert main(["soil", "cube", str(stack), "-o", str(out), "--slices", "0:4", "--rows", "0:40",
                 "--cols", "0:40", "--no-clip"]) == 0
    from ctviewer.io.registry import read_volume

    assert read_volume(out).value_range()[0] < -1000
    assert "cube.nii.gz" in capsys.readouterr().out


def test_default_box_on_a_small_stack_is_one_line_naming_both_sizes(stack, tmp_path, capsys):
    assert main(["soil", "cube", str(stack), "-o", str(tmp_path / "cube.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "12 slices of 40 x 40" in err and "slices 100:500, rows 150:350, cols 150:350" in err
    assert not (tmp_path / "cube.npy").exists()


def test_stack_with_a_gap_is_refused_in_one_line(stack, tmp_path, capsys):
    (stack / "IM0005.dcm").unlink()
    assert main(["soil", "cube", str(stack), "-o", str(tmp_path / "c.npy"), "--slices", "0:3",
                 "--rows", "0:40", "--cols", "0:40"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a slice is missing" in err and str(stack) in err


@pytest.mark.parametrize("args", [["--slices", "5"], ["--rows", "a:b"], ["-o", "cube.png"]])
def test_bad_arguments_exit_2(stack, tmp_path, capsys, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    base = ["soil", "cube", str(stack), "--slices", "0:4", "--rows", "0:40", "--cols", "0:40"]
    assert main(base + (args if args[0] == "-o" else ["-o", "c.npy"] + args)) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_every_soil_action_is_offered(capsys):
    """`objects`/`pores` come from soil_pores, `explain` from soil_explain: all four are listed."""
    with pytest.raises(SystemExit):
        main(["soil", "--help"])
    out = capsys.readouterr().out
    for action in ("cube", "objects", "pores", "explain"):
        assert action in out


def test_objects_written_over_the_cube_itself_are_refused_and_the_cube_is_untouched(tmp_path, capsys):
    """`soil objects cube.nii.gz -o cube.nii.gz` would replace the scan by its label map."""
    import hashlib

    import nibabel as nib

    cube = tmp_path / "cube.nii.gz"
    values = np.random.default_rng(1).integers(0, 4096, (20, 18, 16)).astype(np.int16)
    nib.save(nib.Nifti1Image(values, np.diag([0.1, 0.1, 0.1, 1.0])), cube)
    before = hashlib.sha256(cube.read_bytes()).hexdigest()
    code = main(["soil", "objects", str(cube), "-o", str(cube)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and str(cube) in err[0] and "image you opened" in err[0]
    assert hashlib.sha256(cube.read_bytes()).hexdigest() == before

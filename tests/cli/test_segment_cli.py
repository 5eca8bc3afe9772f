"""`ctviewer segment`, `ctviewer segment-eval` and `ctviewer train` for the segmentation tasks, in-process.

Small untrained U-Nets with threshold 0 (every voxel painted) make the expected output exact for
batch and scoring tests; a 1x1-convolution network that paints the voxels above -300 HU checks that
masks lie on their scan's grid on disk (a flip shows); the shipped liver model is scored on the real
slab; one tiny real training checks the task end to end (split by study, card with groups, Dice and
curves).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctviewer.cli import main
from ctviewer.errors import InputError
from ctviewer.io import read_volume
from ctviewer.io.writers import write_volume
from ctviewer.ml import registry

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def models_dir(user_models):
    return user_models


def save_unet(folder, name="paint-all", dims=2, label_id=5, ids=(5,)):
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.unet import build_unet_2d, build_unet_3d

    model = build_unet_2d(filters=(4, 8)) if dims == 2 else build_unet_3d(base_filters=4, depth=2)
    inputs = {"kind": "volume", "dims": dims, "window_hu": [-1000, 400], "multiple": 2,
              "spacing_mm": [None, 8.0, 8.0] if dims == 2 else [8.0, 8.0, 8.0], "patch": [16, 16, 16]}
    card = ModelCard(name=name, task=f"segmentation_{dims}d", inputs=inputs,
                     outputs={"groups": [{"name": "organ", "ids": list(ids), "label_id": label_id}], "threshold": 0.0})
    return registry.save_model(model, card, folder)


@pytest.fixture
def scans(tmp_path):
    from ctviewer.synth import TorsoParams, make_torso

    folder = tmp_path / "scans"
    folder.mkdir()
    for seed in (1, 2):
        torso = make_torso(TorsoParams(seed=seed, matrix=(80, 80), pixel_spacing=5.0, slice_spacing=8.0))
        write_volume(torso.image, folder / f"case{seed}.nii.gz")
        write_volume(torso.labels.volume, folder / f"case{seed}_labels.nii.gz", label_table=torso.labels.table)
    return folder


def save_threshold_model(folder, name="bright"):
    """A real Keras network whose answer is known voxel by voxel: a 1x1 convolution passing the
    windowed image through, so with threshold 0.5 it paints exactly the voxels of -300 HU and above
    (window -1000..400). Unlike painting everything, a mask flipped against its scan shows."""
    import keras

    from ctviewer.ml.cards import ModelCard

    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros")(inputs)
    card = ModelCard(name=name, task="segmentation_2d",
                     inputs={"kind": "volume", "dims": 2, "window_hu": [-1000, 400], "multiple": 2,
                             "spacing_mm": [None, None, None]},
                     outputs={"groups": [{"name": "bright", "ids": [5], "label_id": 5}], "threshold": 0.5})
    return registry.save_model(keras.Model(inputs, outputs), card, folder)


@pytest.mark.parametrize("kind", ["ras", "lps", "oblique"])
def test_segment_writes_the_mask_on_the_scans_grid(models_dir, tmp_path, capsys, kind):
    """The mask file has the scan file's array order and affine: read raw with nibabel, as any
    array pipeline (nnU-Net, TotalSegmentator, a Dice script) reads it, it covers the right voxels."""
    import nibabel as nib

    from tests.unit.test_written_on_image_grid import affine_of, ct_values, save_nifti

    save_threshold_model(models_dir)
    values = ct_values()
    values[values == -300] = -301   # no voxel on the threshold itself
    scan = save_nifti(tmp_path / "scan.nii.gz", values, affine_of(kind))
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(tmp_path / "scan.nii.gz"), "--model", "bright", "-o", str(out)]) == 0
    assert "scan.nii.gz  bright" in capsys.readouterr().out
    mask = nib.load(str(out))
    assert np.array_equal(np.asarray(mask.dataobj) == 5, values > -300)
    assert np.array_equal(mask.affine, scan.affine)
    assert json.loads((tmp_path / "mask.labels.json").read_text())   # the label table goes with the file


def test_segment_on_the_real_slab_matches_its_liver(shared_data, tmp_path, capsys):
    """The shipped liver model on the real slab (stored RAS): Dice of the mask file read raw with
    nibabel against the slab's own liver label (5). The card says 0.74; a flipped mask gave 0.01."""
    import nibabel as nib

    from tests.conftest import REPO

    model = REPO / "models" / "liver_unet2d.keras"
    if not model.is_file():
        pytest.skip(f"{model} is not in this checkout")
    scan = shared_data / "ct" / "abdomen_slab_ct.nii.gz"
    out = tmp_path / "liver.nii.gz"
    assert main(["segment", str(scan), "--model", str(model), "-o", str(out)]) == 0
    mask, truth = nib.load(str(out)), nib.load(str(shared_data / "ct" / "abdomen_slab_labels.nii.gz"))
    assert mask.shape == truth.shape and np.array_equal(mask.affine, nib.load(str(scan)).affine)
    predicted, liver = np.asarray(mask.dataobj) > 0, np.asarray(truth.dataobj) == 5
    dice = 2 * np.count_nonzero(predicted & liver) / (np.count_nonzero(predicted) + np.count_nonzero(liver))
    assert dice >= 0.70, f"liver Dice {dice:.3f} on the mask as written (card: 0.74)"


def test_segment_one_study_writes_labels_with_their_names(models_dir, scans, tmp_path, capsys):
    save_threshold_model(models_dir)
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(scans / "case1.nii.gz"), "--model", "bright", "-o", str(out)]) == 0
    line = capsys.readouterr().out
    assert "case1.nii.gz  bright" in line and str(out) in line
    mask, image = read_volume(out), read_volume(scans / "case1.nii.gz")
    assert mask.same_grid(image)
    assert np.array_equal(mask.array == 5, image.array >= -300) and 0 < np.mean(mask.array == 5) < 1
    table = json.loads((tmp_path / "mask.labels.json").read_text())   # the label table goes with the file
    assert "bright" in json.dumps(table)


def test_segment_a_folder_goes_on_past_a_bad_file(models_dir, scans, tmp_path, capsys):
    save_unet(models_dir, dims=3)
    (scans / "broken.nii.gz").write_bytes(b"not a nifti")
    out = tmp_path / "masks"
    assert main(["segment", str(scans), "--model", "paint-all", "-o", str(out), "--largest"]) == 2  # one failed
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1].startswith(f"ctviewer: {scans / 'broken.nii.gz'}: ")
    assert (out / "case1_seg.nii.gz").exists() and (out / "case2_seg.nii.gz").exists()


@pytest.mark.parametrize("model, message", [("nowhere", "nowhere"), ("locator", "not a segmentation model")])
def test_segment_refuses_a_missing_or_foreign_model(models_dir, scans, tmp_path, capsys, model, message):
    from ctviewer.ml.cards import ModelCard

    save_unet(models_dir)
    (models_dir / "locator.keras").write_bytes((models_dir / "paint-all.keras").read_bytes())
    ModelCard(name="locator", task="slice_locator").write(models_dir / "locator.json")
    assert main(["segment", str(scans / "case1.nii.gz"), "--model", model, "-o", str(tmp_path / "m.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.nii.gz").exists()


def test_segment_eval_scores_each_study_and_compares_models(models_dir, scans, tmp_path, capsys):
    save_unet(models_dir, name="two-d")
    save_unet(models_dir, name="three-d", dims=3)
    scores, table = tmp_path / "scores.csv", tmp_path / "table.csv"
    assert main(["segment-eval", str(scans), "--model", "two-d", "--model", "three-d",
                 "--scores", str(scores), "--table", str(table)]) == 0
    out = capsys.readouterr().out
    rows = scores.read_text().splitlines()
    assert len(rows) == 1 + 2 * 2                      # header + 2 studies x 2 models
    assert sorted(row.split(",")[0] for row in rows[1:]) == ["three-d", "three-d", "two-d", "two-d"]  # whose score
    assert table.read_text().splitlines()[0] == "model,label,mean_dice,median_dice,mean_jaccard,cases"
    # painting everything: Dice = 2|liver| / (|liver| + |all|), per study
    labels = read_volume(scans / "case1_labels.nii.gz").array
    liver = np.count_nonzero(labels == 5)
    assert f"{2 * liver / (liver + labels.size):.3f}" in out


def write_config(folder, dims=2, data=None, **top):
    settings = {"task": f"segmentation_{dims}d", "name": "tiny-seg", "epochs": 1, "batch_size": 2, **top}
    data = {"synthetic": 3, "synthetic_test": 1, "target": "liver=5", "spacing_mm": 8.0, **(data or {})}
    extra = {"samples_per_epoch": 4, "val_samples": 2}
    extra.update({"filters": [4, 8], "slice_size": 32} if dims == 2 else
                 {"base_filters": 4, "depth": 2, "patch": [16, 16, 16]})
    text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    text += "\n[data]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in data.items())
    text += "\n[extra]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in extra.items()) + "\n"
    path = folder / "seg.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("data, message", [
    ({"synthetic": 1}, "one study"),
    ({"target": "tumour=199"}, "199"),
    ({"colour": 3}, "unknown key"),
    ({"synthetic": 0}, "no training data"),
])
def test_train_refuses_bad_segmentation_configs_in_one_line(models_dir, tmp_path, capsys, data, message):
    assert main(["train", str(write_config(tmp_path, data=data))]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_train_a_tiny_3d_unet_end_to_end(models_dir, tmp_path, capsys):
    assert main(["train", str(write_config(tmp_path, dims=3))]) == 0
    card = json.loads((models_dir / "tiny-seg.json").read_text())
    assert card["task"] == "segmentation_3d" and card["inputs"]["patch"] == [16, 16, 16]
    assert card["outputs"]["groups"] == [{"name": "liver", "ids": [5], "label_id": 5}]
    assert 0.0 <= card["metrics"]["synthetic_test"]["liver"]["mean_dice"] <= 1.0
    assert "val_loss" in card["training"]["history"]                  # the curves stay with the model
    assert card["training"]["studies"] == {"train": 2, "validation": 1}   # split by study


def test_target_check_refuses_studies_with_nothing_to_learn():
    from ctviewer.workflows.segmentation.cases import Case
    from ctviewer.workflows.segmentation.prepare import Target
    from ctviewer.data import Volume

    empty = [Case(f"c{i}", Volume(np.zeros((4, 8, 8), np.int16)), np.zeros((4, 8, 8), np.uint8), "x")
             for i in range(2)]
    with pytest.raises(InputError, match="nothing to learn"):
        Target.parse("nonzero").check(empty)


# -- vertebrae by level ------------------------------------------------------------------------------

def small_lumbar_torso(folder):
    """A lumbar spine from the sacrum up (L2–S1 counted from the sacrum) on a coarse grid: the shipped 3-D
    model runs on it in ~20 s on two cores."""
    from ctviewer.synth import TorsoParams, make_torso

    torso = make_torso(TorsoParams.random(11, fov_mm=(-70.0, 200.0), matrix=(96, 96), pixel_spacing=4.0,
                                          slice_spacing=4.0))
    path = folder / "lumbar.nii.gz"
    write_volume(torso.image, path)
    return torso, path


def test_segment_with_the_shipped_spine_model_labels_each_vertebra_by_level(tmp_path, capsys):
    """What a clinician opens: label 31 named "vertebrae L1", 29 "vertebrae L3" …, on the scan's grid;
    each level's voxels lie mostly on that vertebra of the truth."""
    import nibabel as nib

    from ctviewer.data.labels import LabelTable
    from tests.conftest import REPO

    model = REPO / "models" / "spine_unet3d.keras"
    if not model.is_file():
        pytest.skip(f"{model} is not in this checkout")
    torso, scan = small_lumbar_torso(tmp_path)
    out = tmp_path / "spine.nii.gz"
    assert main(["segment", str(scan), "--model", str(model), "-o", str(out)]) == 0
    assert "levels L2–S1 from the spine count (5 vertebrae)" in capsys.readouterr().out
    written = nib.load(str(out))
    assert np.array_equal(written.affine, nib.load(str(scan)).affine)
    labels = np.asarray(written.dataobj).transpose(2, 1, 0)   # NIfTI's (i, j, k) to the torso's (z, y, x)
    assert {29, 28, 27, 26} <= set(np.unique(labels).tolist()) <= {0, 26, 27, 28, 29, 30, 31, 100}
    table = LabelTable.read(tmp_path / "spine.labels.json")
    assert table.name(29) == "vertebrae L3" and table.name(26) == "vertebrae S1"
    assert len({table[i].colour for i in table.ids}) == len(table)
    truth = torso.labels.array
    for level, label_id in (("L3", 29), ("L4", 28), ("L5", 27)):
        on_bone = (labels == label_id) & (truth >= 26) & (truth <= 50)
        assert np.mean(truth[on_bone] == label_id) >= 0.8, level


def test_segment_no_levels_keeps_the_vertebrae_one_class(models_dir, tmp_path, capsys):
    """--no-levels writes the model's own label (here a tiny network painting every voxel "vertebrae"
    100); without it the same mask is split into levels."""
    import nibabel as nib

    save_unet(models_dir, name="tiny-spine", dims=3, label_id=100, ids=range(26, 51))
    _, scan = small_lumbar_torso(tmp_path)
    one, split = tmp_path / "one.nii.gz", tmp_path / "split.nii.gz"
    assert main(["segment", str(scan), "--model", "tiny-spine", "-o", str(one), "--no-levels"]) == 0
    assert "from the spine count" not in capsys.readouterr().out
    assert set(np.unique(np.asarray(nib.load(str(one)).dataobj)).tolist()) == {100}
    assert main(["segment", str(scan), "--model", "tiny-spine", "-o", str(split)]) == 0
    assert "levels L2–S1 from the spine count" in capsys.readouterr().out
    assert {26, 27, 28, 29} <= set(np.unique(np.asarray(nib.load(str(split)).dataobj)).tolist())


def test_segment_spine_on_the_real_slab_keeps_one_class_and_says_why(shared_data, tmp_path, capsys):
    """The real slab holds parts of T12, L1 and L2 and only two discs, with no ribs' end or sacrum to name
    them from: the counter names none, so the mask keeps the model's one class and the line says why."""
    import nibabel as nib

    from tests.conftest import REPO

    model = REPO / "models" / "spine_unet3d.keras"
    if not model.is_file():
        pytest.skip(f"{model} is not in this checkout")
    out = tmp_path / "spine.nii.gz"
    assert main(["segment", str(shared_data / "ct" / "abdomen_slab_ct.nii.gz"), "--model", str(model),
                 "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "vertebrae kept as one class: " in said and "two disc-like dips" in said and "a short slab" in said
    assert set(np.unique(np.asarray(nib.load(str(out)).dataobj)).tolist()) == {0, 100}

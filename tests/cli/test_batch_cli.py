"""Every batch verb goes on after a failed study, lists the failures at the end (file and reason, one
line each, on stderr), writes what succeeded, and exits 2 (1 when a study failed by our bug).

The folders mix good studies with malformed files (a truncated .nii.gz, a text file named .dcm, a
zero-byte .nrrd, broken photos); the models are real but tiny and untrained (nothing is trained), so
the whole path runs: registry, safe-mode loading, inference, the files on disk read back.
"""

from __future__ import annotations

import os
import subprocess

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from ctviewer.cli import main
from ctviewer.workflows.batch import Batch, failure_of
from ctviewer.errors import Cancelled, InputError
from ctviewer.io.writers import write_volume
from ctviewer.ml import registry
from tests.conftest import REPO

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

GOOD = ("case1", "case3")
BAD = {"empty.nrrd": "file is empty", "notes.dcm": "not a format ctviewer can read",
       "trunc.nii.gz": "truncated"}


def _torso(seed: int):
    from ctviewer.synth import TorsoParams, make_torso

    return make_torso(TorsoParams(seed=seed, matrix=(80, 80), pixel_spacing=5.0, slice_spacing=8.0))


def _malformed(folder, scan) -> None:
    """The three bad studies of BAD, next to the good ones."""
    data = scan.read_bytes()
    (folder / "trunc.nii.gz").write_bytes(data[: int(len(data) * 0.6)])   # a copy cut short
    (folder / "notes.dcm").write_text("Patient called, scan on Tuesday\n")
    (folder / "empty.nrrd").write_bytes(b"")


@pytest.fixture
def studies(tmp_path):
    """case1.nii.gz and case3.nrrd (good, different formats) with the three malformed files of BAD."""
    folder = tmp_path / "studies"
    folder.mkdir()
    write_volume(_torso(1).image, folder / "case1.nii.gz")
    write_volume(_torso(3).image, folder / "case3.nrrd")
    _malformed(folder, folder / "case1.nii.gz")
    return folder


def _failure_lines(err: str, folder, total: int) -> list[str]:
    """The summary at the end of stderr: a count, then one line per bad file naming it and the reason."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[-len(BAD) - 1] == f"ctviewer: {len(BAD)} of {total} studies failed:"
    failures = lines[-len(BAD):]
    for line, (name, reason) in zip(failures, sorted(BAD.items())):
        assert line.startswith(f"ctviewer: {folder / name}: ") and reason in line
    return failures


def _save_segmenter(folder):
    """A tiny untrained 3D U-Net that paints every voxel (threshold 0) as organ 5."""
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.unet import build_unet_3d

    inputs = {"kind": "volume", "dims": 3, "window_hu": [-1000, 400], "multiple": 2,
              "spacing_mm": [8.0, 8.0, 8.0], "patch": [16, 16, 16]}
    card = ModelCard(name="paint-all", task="segmentation_3d", inputs=inputs,
                     outputs={"groups": [{"name": "organ", "ids": [5], "label_id": 5}], "threshold": 0.0})
    return registry.save_model(build_unet_3d(base_filters=4, depth=2), card, folder)


# -- segment -----------------------------------------------------------------------------------------

def test_the_installed_segment_command_goes_on_past_malformed_files_and_exits_2(studies, tmp_path, user_models):
    _save_segmenter(user_models)
    out = tmp_path / "masks"
    env = dict(os.environ, CTVIEWER_MODELS_DIR=str(user_models))
    done = subprocess.run([str(REPO / ".venv" / "bin" / "ctviewer"), "segment", str(studies), "--model", "paint-all",
                           "-o", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr
    _failure_lines(done.stderr, studies, total=5)
    for name, source in (("case1", "case1.nii.gz"), ("case3", "case3.nrrd")):
        mask = nib.load(out / f"{name}_seg.nii.gz")           # read back from disk by another library
        assert mask.shape == _torso(int(name[-1])).image.shape[::-1]   # NIfTI is x, y, z
        assert np.unique(np.asarray(mask.dataobj)).tolist() == [5]  # every voxel painted, as the model does
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".json")) == ["case1_seg.nii.gz",
                                                                                     "case3_seg.nii.gz"]


def test_a_study_that_fails_by_our_bug_is_listed_and_the_batch_goes_on_with_exit_1(studies, tmp_path, user_models,
                                                                                   capsys, monkeypatch):
    from ctviewer.commands import segment as command

    _save_segmenter(user_models)
    for name in BAD:
        (studies / name).unlink()
    real = command.segment_one

    # A bug cannot be made on purpose in real code: this stand-in fails the way a bug does for one
    # study (an exception that is not an InputError) and runs the real segmentation for the other.
    def buggy(study, *args):
        if study.name == "case1.nii.gz":
            raise ZeroDivisionError("division by zero")
        return real(study, *args)

    monkeypatch.setattr(command, "segment_one", buggy)
    assert main(["segment", str(studies), "--model", "paint-all", "-o", str(tmp_path / "masks")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2:] == ["ctviewer: 1 of 2 studies failed:",
                        f"ctviewer: {studies / 'case1.nii.gz'}: internal error: ZeroDivisionError: division by zero"]
    assert nib.load(tmp_path / "masks" / "case3_seg.nii.gz").shape == (80, 80, _torso(3).image.shape[0])


# -- locate ------------------------------------------------------------------------------------------

def _save_locator(folder):
    """A tiny untrained locator (threshold 0: every level found somewhere)."""
    from ctviewer.ml import locator
    from ctviewer.ml.cards import ModelCard

    model = locator.build_locator(("L3", "T12"), width_px=32, base_filters=4, depth=2, context_dilations=(1, 2),
                                  compile=False)
    card = ModelCard(name="tiny-locator", task="slice_locator", inputs={"width_px": 32, "row_multiple": 4},
                     outputs={"levels": ["L3", "T12"], "threshold": 0.0})
    return registry.save_model(model, card, folder)


def test_locate_goes_on_past_malformed_files_writes_the_good_picks_and_exits_2(studies, tmp_path, user_models,
                                                                              capsys):
    from ctviewer.workflows.slice_locator.picks import PicksFile

    _save_locator(user_models)
    out = tmp_path / "picks.csv"
    assert main(["locate", str(studies), "-o", str(out), "--model", "tiny-locator"]) == 2
    captured = capsys.readouterr()
    _failure_lines(captured.err, studies, total=5)
    assert captured.out.splitlines()[-1] == f"wrote {out}: 2 studies located, 3 could not be"
    picks = PicksFile.open(out)                                 # read back from disk
    assert picks.exam_ids() == list(GOOD)
    assert all(p.in_scan and p.source == "tiny-locator v1" for p in picks.picks)


# -- segment-eval ------------------------------------------------------------------------------------

def test_segment_eval_goes_on_past_malformed_cases_writes_the_scores_and_exits_2(tmp_path, user_models, capsys):
    import csv

    _save_segmenter(user_models)
    folder = tmp_path / "cases"
    folder.mkdir()
    for seed in (1, 3):
        torso = _torso(seed)
        write_volume(torso.image, folder / f"case{seed}.nii.gz")
        write_volume(torso.labels.volume, folder / f"case{seed}_labels.nii.gz", label_table=torso.labels.table)
    _malformed(folder, folder / "case1.nii.gz")
    (folder / "notes.dcm").unlink()                             # a case needs an image with labels beside it
    for name in ("trunc_labels.nii.gz", "empty_labels.nrrd"):
        write_volume(_torso(1).labels.volume, folder / name, label_table=_torso(1).labels.table)
    scores = tmp_path / "scores.csv"
    assert main(["segment-eval", str(folder), "--model", "paint-all", "--scores", str(scores)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-3] == "ctviewer: 2 of 4 studies failed:"
    assert err[-2].startswith(f"ctviewer: {folder / 'empty.nrrd'}: ") and "file is empty" in err[-2]
    assert err[-1].startswith(f"ctviewer: {folder / 'trunc.nii.gz'}: ") and "truncated" in err[-1]
    with open(scores, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted({row["case"] for row in rows}) == ["case1", "case3"]
    assert all(0 < float(row["dice"]) < 1 for row in rows)


# -- thin-section predict ----------------------------------------------------------------------------

def test_thin_section_predict_goes_on_past_broken_photos_and_exits_2(tmp_path, user_models, capsys):
    from ctviewer.imaging.bins import thin_section_table
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.vgg_unet import build_vgg_unet
    from ctviewer.workflows.thin_section.photos import read_label_image, write_rgb_png

    classes = [{"id": lab.id, "name": lab.name, "colour": list(lab.colour)} for lab in thin_section_table()]
    card = ModelCard(name="tiny-thin", task="thin_section", inputs={"kind": "rgb_photo"}, outputs={"classes": classes})
    registry.save_model(build_vgg_unet(len(classes), base_filters=4), card, user_models)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(4)
    for name, size in (("a.png", (40, 56)), ("c.png", (48, 32))):
        write_rgb_png(rng.integers(0, 256, (*size, 3), dtype=np.uint8), photos / name)
    whole = (photos / "a.png").read_bytes()
    (photos / "b_cut.png").write_bytes(whole[: len(whole) // 2])      # a PNG cut short
    (photos / "d_empty.png").write_bytes(b"")
    (photos / "e_text.jpg").write_text("not a photo")
    out = tmp_path / "out"
    assert main(["thin-section", "predict", str(photos), "-o", str(out), "--tile", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-4] == "ctviewer: 3 of 5 photos failed:"
    for line, name in zip(err[-3:], ("b_cut.png", "d_empty.png", "e_text.jpg")):
        assert line.startswith(f"ctviewer: {photos / name}: ")
    for name, size in (("a", (40, 56)), ("c", (48, 32))):
        assert read_label_image(out / f"{name}_classes.png").shape == size
        assert Image.open(out / f"{name}_recolour.png").size == size[::-1]
    assert [line.split(",")[0] for line in (out / "fractions.csv").read_text().splitlines()[1:]] == ["a.png", "c.png"]


# -- the helper itself -------------------------------------------------------------------------------

def test_failures_are_classified_as_the_input_s_or_ours(tmp_path):
    study = tmp_path / "s.nii.gz"
    assert failure_of(study, InputError("file is empty", study)).line == f"{study}: file is empty"
    inner = failure_of(study, InputError("bad slice", tmp_path / "s" / "3.dcm"))
    assert inner.path == str(tmp_path / "s" / "3.dcm") and not inner.internal
    assert not failure_of(study, PermissionError(13, "Permission denied", str(study))).internal
    assert failure_of(study, KeyError("x")).internal and failure_of(study, MemoryError()).internal


def test_exit_codes_and_the_summary(capsys):
    def fail(exc):
        raise exc

    ok = Batch()
    assert ok.attempt("a", lambda: 1) == 1 and ok.finish() == 0 and capsys.readouterr().err == ""
    assert Batch().finish() == 2                                     # nothing to do is not a success
    one = Batch()
    assert one.attempt("a", fail, InputError("broken", "a")) is None
    assert one.finish() == 2 and capsys.readouterr().err == "ctviewer: a: broken\n"   # a single study: one line
    mixed = Batch()
    mixed.attempt("a", lambda: 1)
    mixed.attempt("b", fail, InputError("broken", "b"))
    mixed.attempt("c", fail, ValueError("oops"))
    assert mixed.done == 1 and mixed.finish() == 1
    assert capsys.readouterr().err.splitlines() == ["ctviewer: 2 of 3 studies failed:", "ctviewer: b: broken",
                                                    "ctviewer: c: internal error: ValueError: oops"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), Cancelled()])
def test_ctrl_c_and_cancel_end_the_batch(stop):
    def work():
        raise stop

    with pytest.raises(type(stop)):
        Batch().attempt("a", work)


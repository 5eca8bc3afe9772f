"""The locator's training data: augmented windows keep their targets on the image's level, the
thesis's .npz imports, reviewed picks become targets, the sample cache round-trips, and a training
set of one study refuses to split."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.workflows.slice_locator import dataset
from ctviewer.workflows.slice_locator.augment import AugmentSettings, make_sample, row_targets

ROWS, COLS = 500, 300


def _marked_scan(level_row: int, mark_col: int = 100):
    """Projections with a dim body and one bright bar at ``level_row`` (frontal: from ``mark_col`` to
    the body centre, so a left–right flip shows)."""
    frontal = np.zeros((ROWS, COLS), np.float32)
    frontal[:, 60:240] = 0.1
    frontal[level_row - 1:level_row + 2, mark_col:150] = 1.0
    sagittal = np.zeros((ROWS, 200), np.float32)
    sagittal[:, 40:160] = 0.1
    sagittal[level_row - 1:level_row + 2, 80:120] = 1.0
    return frontal, sagittal, (150.0, 100.0)


def _bar_row(x: np.ndarray) -> float:
    profile = x[..., 1].mean(axis=1)
    return float(np.argmax(profile))


def test_row_targets_peak_at_the_level_and_are_zero_when_absent():
    y = row_targets(100, [40.0, np.nan], sigma=4.0)
    assert y.shape == (100, 2)
    assert np.argmax(y[:, 0]) == 40 and y[40, 0] == pytest.approx(1.0)
    assert y[48, 0] == pytest.approx(np.exp(-2.0), rel=1e-4)
    assert not y[:, 1].any()


@pytest.mark.parametrize("seed", range(12))
def test_augmented_window_keeps_the_target_on_the_level(seed):
    frontal, sagittal, centre = _marked_scan(300)
    rng = np.random.default_rng(seed)
    x, y = make_sample(frontal, sagittal, centre, [300.0, np.nan], rng, AugmentSettings(crop_rows=256))
    assert x.shape == (256, 256, 2) and y.shape == (256, 2)
    assert not y[:, 1].any()
    if y[:, 0].max() > 0.99:  # the level is in the window: the bar lies under the target's peak
        assert abs(_bar_row(x) - np.argmax(y[:, 0])) <= 1.5
    else:                     # left out: the bar is not in the visible part of the window
        assert x[..., 1].max() < 0.6 or abs(_bar_row(x) - 0) < 2 or abs(_bar_row(x) - 255) < 2


def test_augmentation_keeps_air_at_zero_and_values_in_range():
    frontal, sagittal, centre = _marked_scan(300)
    for seed in range(6):
        x, _ = make_sample(frontal, sagittal, centre, [300.0], np.random.default_rng(seed),
                           AugmentSettings(crop_rows=256, p_short=0, column_blur_px=(0, 0)))
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert not x[:, :15, 0].any()  # the air left of the body (18+ columns even when shifted) stays black


def test_vertical_scale_moves_the_target_with_the_rows():
    frontal, sagittal, centre = _marked_scan(200)
    fixed = AugmentSettings(crop_rows=512, scale=(1.1, 1.1), p_thickness=0, p_short=0, noise=(0, 0),
                            gamma=(1, 1), gain=(1, 1), offset=(0, 0), centre_shift_px=0, flip=0, p_anywhere=1.0,
                            column_blur_px=(0, 0))
    for seed in range(5):
        x, y = make_sample(frontal, sagittal, centre, [200.0], np.random.default_rng(seed), fixed)
        if y.max() > 0.99:
            peak = np.argmax(y[:, 0])
            assert abs(_bar_row(x) - peak) <= 1.0
            # the window starts at a whole row: the level sits 200 * 1.1 rows below the scan's top
            top = np.flatnonzero(x[..., 1].max(axis=1) > 0)[0]
            assert abs((peak - top) - 220) <= 1.0 or top == 0


def test_flip_mirrors_the_frontal_image_around_the_body_centre():
    frontal, sagittal, centre = _marked_scan(250, mark_col=90)  # bar on the image's left of the centre
    plain = AugmentSettings(crop_rows=128, flip=0.0, centre_shift_px=0, p_thickness=0, p_short=0, noise=(0, 0),
                            gamma=(1, 1), gain=(1, 1), offset=(0, 0), scale=(1, 1), column_blur_px=(0, 0),
                            p_anywhere=0.0)
    flipped = AugmentSettings(**{**plain.__dict__, "flip": 1.0})
    x0, y0 = make_sample(frontal, sagittal, centre, [250.0], np.random.default_rng(0), plain)
    x1, y1 = make_sample(frontal, sagittal, centre, [250.0], np.random.default_rng(0), flipped)
    row = int(np.argmax(y0[:, 0]))
    assert np.argmax(y1[:, 0]) == row
    bright0 = np.flatnonzero(x0[row, :, 0] > 0.5)
    bright1 = np.flatnonzero(x1[row, :, 0] > 0.5)
    assert bright0.mean() < 128 < bright1.mean()  # the bar changed sides
    np.testing.assert_allclose(x0[:, :, 1], x1[:, :, 1])  # the sagittal image has no left and right


def test_window_beyond_the_scan_is_zero_and_has_no_level():
    frontal, sagittal, centre = _marked_scan(20)
    s = AugmentSettings(crop_rows=256)
    absent = 0
    for seed in range(30):
        x, y = make_sample(frontal, sagittal, centre, [20.0], np.random.default_rng(seed), s)
        absent += y[:, 0].max() == 0
    assert absent > 0  # some windows leave the level out ("not in scan" examples)


def _write_thesis_npz(path, keys=("images_f", "images_s", "ids", "spacings", "thicknesses", "l3", "t12")):
    f_key, s_key, id_key, sp_key, th_key, l3_key, t12_key = keys
    rng = np.random.default_rng(0)
    frontal = (rng.random((3, 120, 90)) * 255).astype(np.uint8)
    sagittal = (rng.random((3, 120, 70)) * 255).astype(np.uint8)
    np.savez(path, **{f_key: frontal, s_key: sagittal, id_key: np.array(["a1", "b2", "c3"]),
                      sp_key: np.array([1.0, 1.0, 1.0]), th_key: np.array([2.5, 5.0, 1.25]),
                      l3_key: np.array([80.0, -1.0, 95.5]), t12_key: np.array([10.0, 30.0, np.nan])})


def test_thesis_npz_import(tmp_path):
    path = tmp_path / "mips.npz"
    _write_thesis_npz(path)
    samples = dataset.read_thesis_npz(path)
    assert [s.id for s in samples] == ["a1", "b2", "c3"]
    assert samples[0].rows_for(("L3", "T12")).tolist() == [80.0, 10.0]
    assert np.isnan(samples[1].level_rows["L3"]) and np.isnan(samples[2].level_rows["T12"])  # not in scan
    assert all(s.known == {"L3": True, "T12": True} for s in samples)
    assert samples[1].slice_spacing_mm == 5.0
    assert samples[0].frontal.shape == (120, 90) and 0 <= samples[0].frontal.min() <= samples[0].frontal.max() <= 1


def test_thesis_npz_accepts_other_key_spellings(tmp_path):
    path = tmp_path / "mips.npz"
    _write_thesis_npz(path, ("frontal", "sagittal", "exam_ids", "spacing", "slice_thicknesses", "L3", "T12"))
    assert [s.level_rows["L3"] for s in dataset.read_thesis_npz(path)][0] == 80.0


def test_thesis_npz_without_images_or_with_pickles_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, ids=np.array(["x"]), l3=np.array([1.0]))
    with pytest.raises(InputError, match="no frontal array"):
        dataset.read_thesis_npz(bad)
    ragged = tmp_path / "ragged.npz"
    images = np.empty(2, dtype=object)
    images[0], images[1] = np.zeros((10, 5)), np.zeros((12, 5))
    np.savez(ragged, images_f=images, images_s=images, l3=np.array([1.0, 2.0]))
    with pytest.raises(InputError, match="pickles"):
        dataset.read_thesis_npz(ragged)
    assert len(dataset.read_thesis_npz(ragged, allow_pickle=True)) == 2


def test_sample_cache_round_trip(tmp_path):
    frontal, sagittal, centre = _marked_scan(100)
    sample = dataset.ScanSample("x", "study-x", frontal, sagittal, centre, {"L3": 100.5, "T12": np.nan},
                                {"L3": True, "T12": False}, 2.5, "synthetic", 40.0, np.array([1.0, 3.5]))
    path = tmp_path / "x.npz"
    dataset.save_sample(sample, path)
    again = dataset.load_sample(path)
    assert (again.id, again.study, again.source, again.centre_cols) == ("x", "study-x", "synthetic", centre)
    assert again.level_rows["L3"] == 100.5 and np.isnan(again.level_rows["T12"])
    assert again.known == {"L3": True, "T12": False} and again.top_z_mm == 40.0
    np.testing.assert_allclose(again.frontal, frontal, atol=1e-3)


def test_reviewed_picks_become_targets(tmp_path):
    from ctviewer.io.writers import write_volume
    from ctviewer.synth import TorsoParams, make_torso
    from ctviewer.workflows.slice_locator.picks import Pick, PicksFile

    torso = make_torso(TorsoParams(seed=3, matrix=(96, 96), pixel_spacing=4.0, slice_spacing=5.0,
                                   field_of_view="abdomen"))
    study = tmp_path / "case1.nii.gz"
    write_volume(torso.image, study)
    picks = PicksFile.create(tmp_path / "picks.csv")
    picks.set_study_path("case1", study)
    l3 = torso.levels["L3"]
    picks.set(Pick("case1", "L3", l3.slice, None, None, 5.0, 5.0, "manual", None, "corrected"), "correct")
    picks.set(Pick("case1", "T12", 3, None, None, 5.0, 5.0, "model", 0.4, "predicted"), "predict")
    samples = dataset.samples_from_picks(picks.path, cache_dir=tmp_path / "cache")
    assert len(samples) == 1
    s = samples[0]
    assert s.known == {"L3": True, "T12": False}  # a prediction nobody reviewed teaches nothing
    slice_z = float(s.slice_z_mm[l3.slice])
    assert s.level_rows["L3"] == pytest.approx(s.top_z_mm - slice_z)
    assert abs(slice_z - l3.z_mm) <= 2.5
    assert len(list((tmp_path / "cache" / "reviewed").glob("*.npz"))) == 1  # projected once, cached


def test_a_training_set_of_one_study_refuses_to_split(tmp_path):
    from ctviewer.ml.training import TrainConfig
    from ctviewer.workflows.slice_locator.task import load_data

    path = tmp_path / "one.npz"
    rng = np.random.default_rng(0)
    np.savez(path, images_f=rng.random((2, 64, 40)), images_s=rng.random((2, 64, 40)),
             ids=np.array(["same", "same"]), l3=np.array([30.0, 31.0]))
    config = TrainConfig(task="slice_locator", name="t", data={"synthetic": 0, "thesis_npz": [str(path)]})
    with pytest.raises(InputError, match="one study"):
        load_data(config)


def test_synthetic_scans_are_rendered_once_with_their_levels(tmp_path):
    from ctviewer.synth.torso import make_torso

    seed = 8  # a chest-only scan: quick to render, and its L3 is not in it
    assert dataset.synthetic_kind(seed) == "chest"
    first = dataset.synthetic_samples([seed], tmp_path, workers=1)
    (path,) = dataset.synthetic_folder(tmp_path).glob("*.npz")
    stamp = path.stat().st_mtime_ns
    again = dataset.synthetic_samples([seed], tmp_path, workers=1)
    assert path.stat().st_mtime_ns == stamp  # read from the cache, not rendered again
    torso = make_torso(dataset.synthetic_params(seed))
    for sample in (first[0], again[0]):
        assert np.isnan(sample.level_rows["L3"])
        assert sample.top_z_mm - sample.level_rows["T12"] == pytest.approx(torso.levels["T12"].z_mm, abs=1e-6)

"""The synthetic torso generator, the orientation phantoms and the cached demo study."""

from __future__ import annotations

import hashlib
import importlib.util

import numpy as np
import pytest
from scipy import ndimage

from ctviewer.data.volume import CANONICAL_DIRECTION
from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken
from ctviewer.synth.params import TorsoParams
from ctviewer.synth.phantoms import gradient_volume, orientation_markers, orientation_stamp
from ctviewer.synth.torso import make_torso

# a coarse scan keeps the tests that need many generations fast
SMALL = dict(matrix=(96, 96), pixel_spacing=4.0, slice_spacing=5.0)


def _digest(torso) -> str:
    h = hashlib.sha256(torso.image.array.tobytes())
    h.update(torso.labels.array.tobytes())
    return h.hexdigest()


def _interior(labels: np.ndarray, label_id: int, iterations: int = 2) -> np.ndarray:
    return ndimage.binary_erosion(labels == label_id, iterations=iterations)


@pytest.fixture(scope="module")
def default_torso():
    return make_torso(TorsoParams())


# -- parameters --------------------------------------------------------------------------------

def test_params_are_validated():
    with pytest.raises(InputError, match="sex"):
        TorsoParams(sex="unknown")
    with pytest.raises(InputError, match="lumbar_count"):
        TorsoParams(lumbar_count=7)
    with pytest.raises(InputError, match="fov_mm"):
        TorsoParams(fov_mm=(100.0, 50.0))


def test_random_params_are_reproducible_and_vary():
    assert TorsoParams.random(4) == TorsoParams.random(4)
    draws = [TorsoParams.random(s) for s in range(12)]
    assert len({round(p.width_scale, 6) for p in draws}) == 12
    assert len({round(p.noise_sd, 6) for p in draws}) == 12
    assert all(10 <= p.noise_sd <= 25 for p in draws)
    assert TorsoParams.random(4, lumbar_count=6).lumbar_count == 6
    assert TorsoParams().jitter == 0 and draws[0].jitter == 1


# -- the default scan --------------------------------------------------------------------------

def test_default_scan_geometry(default_torso):
    img, lab = default_torso.image, default_torso.labels
    assert img.array.dtype == np.int16 and lab.array.dtype == np.uint8
    assert img.modality == "CT" and img.name
    assert img.shape[1:] == (256, 256) and 200 <= img.shape[0] <= 300
    assert img.spacing == (2.5, 1.5, 1.5)
    np.testing.assert_allclose(img.direction, CANONICAL_DIRECTION)
    assert lab.volume.same_grid(img)
    # (how long it takes is not a unit test's business: it failed under a training's load, 11.9 s)


def test_labels_use_totalsegmentator_ids(default_torso):
    table = default_torso.labels.table
    present = set(np.unique(default_torso.labels.array).tolist())
    for label_id, name in [(1, "spleen"), (2, "kidney_right"), (3, "kidney_left"), (5, "liver"),
                           (29, "vertebrae_L3"), (32, "vertebrae_T12"), (43, "vertebrae_T1"),
                           (52, "aorta"), (77, "hip_left"), (78, "hip_right"), (92, "rib_left_1"),
                           (115, "rib_right_12"), (26, "vertebrae_S1")]:
        assert label_id in present, name
        assert table.name(label_id) == name


def test_tissue_values_match_anatomy(default_torso):
    hu, lab = default_torso.image.array, default_torso.labels.array
    ranges = {5: (40, 70), 1: (35, 55), 202: (30, 60), 201: (-125, -55), 12: (-880, -700)}
    for label_id, (lo, hi) in ranges.items():
        mean = float(hu[_interior(lab, label_id)].mean())
        assert lo <= mean <= hi, (label_id, mean)
    for name in ("T12", "L1", "L3"):
        level = default_torso.levels[name]
        mean = float(hu[lab == level.label].mean())
        assert 170 <= mean <= 330, (name, mean)  # cortex + cancellous, ANATOMY.md


def test_contrast_phase_brightens_liver_and_aorta():
    torso = make_torso(TorsoParams(contrast_phase="portal_venous", **SMALL))
    hu, lab = torso.image.array, torso.labels.array
    assert 95 <= hu[_interior(lab, 5, 1)].mean() <= 135
    assert hu[_interior(lab, 52, 1)].mean() >= 150


def test_noise_sd_in_homogeneous_tissue():
    torso = make_torso(TorsoParams(noise_sd=20.0, field_of_view="abdomen", matrix=(160, 160), pixel_spacing=2.4))
    liver = torso.image.array[_interior(torso.labels.array, 5, 2)]
    assert 16.0 <= liver.std() <= 24.0


def test_vertebrae_ordered_and_levels_match_labels(default_torso):
    levels, lab = default_torso.levels, default_torso.labels.array
    order = [f"T{n}" for n in range(1, 13)] + [f"L{n}" for n in range(1, 6)] + ["S1"]
    z = [levels[n].z_mm for n in order]
    assert all(a > b for a, b in zip(z, z[1:])), "levels must run head to feet"
    assert [levels[n].slice for n in order] == sorted((levels[n].slice for n in order), reverse=True)
    img = default_torso.image
    for name in order[:-1]:
        level = levels[name]
        assert level.bottom_slice <= level.slice <= level.top_slice
        ks = np.nonzero(lab == level.label)[0]
        assert abs(np.median(ks) - level.slice) <= 2, name
        # the centre in mm is the LPS z of its slice (canonical: axis 0 runs to Superior)
        assert abs(img.index_to_lps((level.slice, 0, 0))[2] - level.z_mm) <= img.spacing[0]


def test_anatomy_is_in_canonical_orientation(default_torso):
    lab, levels = default_torso.labels.array, default_torso.levels
    centroid = {i: np.array(ndimage.center_of_mass(lab == i)) for i in (1, 5, 52, 29, 3, 2)}
    assert centroid[1][2] > centroid[5][2]                  # spleen on the patient's left (+i)
    assert centroid[3][0] > centroid[2][0]                  # left kidney higher (+k = superior)
    assert centroid[52][1] < centroid[29][1]                # aorta in front of (anterior to) L3
    assert centroid[5][0] > levels["L3"].slice              # liver above L3


# -- variants and fields of view ------------------------------------------------------------------

def test_chest_field_of_view_has_no_l3():
    torso = make_torso(TorsoParams(field_of_view="chest", **SMALL))
    assert "L3" not in torso.levels and "T12" in torso.levels and "T1" in torso.levels
    assert 29 not in np.unique(torso.labels.array)


def test_six_lumbar_vertebrae_add_a_level():
    torso = make_torso(TorsoParams(lumbar_count=6, field_of_view="abdomen", **SMALL))
    assert "L6" in torso.levels and 210 in np.unique(torso.labels.array)
    assert torso.levels["L5"].z_mm > torso.levels["L6"].z_mm > torso.levels["S1"].z_mm
    four = make_torso(TorsoParams(lumbar_count=4, field_of_view="abdomen", **SMALL))
    assert "L5" not in four.levels and "L4" in four.levels


def test_thirteenth_rib_variant():
    torso = make_torso(TorsoParams(thirteenth_ribs=True, field_of_view="abdomen", **SMALL))
    present = np.unique(torso.labels.array)
    assert 211 in present and 212 in present


# -- determinism -----------------------------------------------------------------------------------

def test_same_params_give_identical_scans():
    p = TorsoParams.random(11, field_of_view="abdomen", **SMALL)
    assert _digest(make_torso(p)) == _digest(make_torso(p))


def test_seeds_give_different_anatomy():
    a = make_torso(TorsoParams.random(1, field_of_view="abdomen", **SMALL))
    b = make_torso(TorsoParams.random(2, field_of_view="abdomen", **SMALL))
    assert _digest(a) != _digest(b)
    assert a.levels["L1"].z_mm != b.levels["L1"].z_mm


def test_progress_and_cancel():
    seen = []
    make_torso(TorsoParams(field_of_view="chest", **SMALL), progress=lambda f, m="": seen.append(f))
    assert seen and seen[-1] == 1.0
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        make_torso(TorsoParams(**SMALL), cancel=token)


# -- phantoms ----------------------------------------------------------------------------------------

def test_orientation_stamp_markers_where_documented():
    vol = orientation_stamp()
    assert vol.shape == (40, 48, 56) and vol.spacing == (2.0, 1.5, 1.0)
    np.testing.assert_allclose(vol.direction, CANONICAL_DIRECTION)
    markers = orientation_markers(vol.shape)
    for name, m in markers.items():
        assert vol.array[m["centre"]] == m["value"], name
    nz, ny, nx = vol.shape
    assert markers["left_bar"]["centre"][2] > nx / 2             # patient Left = high column
    assert markers["posterior_block"]["centre"][1] > ny / 2      # Posterior = high row
    assert markers["superior_cube"]["centre"][0] > nz / 2        # Superior = high slice
    assert markers["superior_cube"]["centre"][1] < ny / 2        # ... and anterior
    # no flip of the stamp looks like the stamp
    arr = vol.array
    for axis in range(3):
        assert not np.array_equal(np.flip(arr, axis), arr)


def test_gradient_volume_steps():
    vol = gradient_volume((4, 5, 6))
    assert vol.array[1, 0, 0] == 100 and vol.array[0, 1, 0] == 10 and vol.array[0, 0, 1] == 1


# -- the demo study ---------------------------------------------------------------------------------

@pytest.mark.skipif(importlib.util.find_spec("ctviewer.io.writers") is None,
                    reason="ctviewer.io.writers (NIfTI writing) is not available yet")
def test_demo_is_generated_once_and_cached(tmp_path, monkeypatch):
    from ctviewer.synth import demo, torso

    calls = []
    real = torso.make_torso
    monkeypatch.setattr(torso, "make_torso", lambda *a, **k: calls.append(1) or real(*a, **k))
    image, labels = demo.demo_paths(tmp_path)
    assert image.is_file() and labels.is_file() and len(calls) == 1
    assert image.parent.name == f"demo-v{demo.GENERATOR_VERSION}"
    mtime = image.stat().st_mtime_ns
    again = demo.demo_paths(tmp_path)
    assert again == (image, labels) and len(calls) == 1 and image.stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    import nibabel as nib

    img = nib.load(str(image))
    assert len(img.shape) == 3 and list(img.shape).count(256) >= 2



def test_demo_study_opens_with_organs_and_spine_visible(tmp_path):
    """What `ctviewer demo` shows: the torso with its labels; body-wall tissue starts hidden."""
    from ctviewer.workflows.open import DEMO_HIDDEN_LABELS, open_demo

    study = open_demo(cache_dir=tmp_path)
    (layer,) = study.layers.by_kind("labels")
    table = layer.labels.table
    assert study.image.modality == "CT" and study.image.array.dtype == np.int16
    assert layer.array.shape == study.image.shape
    assert all(not table[i].visible for i in DEMO_HIDDEN_LABELS if i in table)
    assert table[5].visible and table[29].visible      # liver and L3 stay on
    assert table.name(5).lower().startswith("liver")


@pytest.mark.parametrize("seed", [11, 12])
def test_liver_reaches_down_beside_the_right_kidney_and_stays_off_the_spine(seed):
    """As on the real slab: the right lobe is still a large wedge at the centres of L1 and L2 (real: 111
    and 41 cm²), on the right in front of and beside the right kidney; no liver within 10 mm of a
    vertebra (real: none; the old two-ellipsoid liver put 15-37 ml there and stopped above L2); the
    gallbladder is labelled 4 and holds fluid."""
    torso = make_torso(TorsoParams.random(seed, field_of_view="abdomen", matrix=(112, 112),
                                          pixel_spacing=3.6, slice_spacing=3.0))
    lab, hu = torso.labels.array, torso.image.array
    sz, sy, sx = torso.image.spacing
    for level, least in (("L1", 50.0), ("L2", 25.0)):
        k = torso.levels[level].slice
        liver = lab[k] == 5
        assert liver.sum() * sy * sx / 100 >= least, (level, liver.sum() * sy * sx / 100)
        cols = np.nonzero(liver)[1]
        assert np.median(cols) < lab.shape[2] / 2, level          # on the patient's right (-i)
    vertebrae = (lab >= 26) & (lab <= 50)
    near = ndimage.binary_dilation(vertebrae, iterations=3)       # 3 voxels: 9-11 mm
    assert not (near & (lab == 5)).any()
    if (lab == 4).any():
        assert torso.labels.table.name(4) == "gallbladder"
        assert hu[_interior(lab, 4, 1)].mean() < 30

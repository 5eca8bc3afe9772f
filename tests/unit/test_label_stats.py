"""Per-label statistics: counts, volumes, mean and sd under each label, class fractions."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.imaging import label_stats
from ctviewer.imaging.label_stats import label_statistics, statistics_table
from ctviewer.progress import CancelToken


def _ct_and_labels(dtype=np.int16, shape=(9, 11, 13)):
    rng = np.random.default_rng(1)
    image = Volume(rng.integers(-1024, 2000, shape).astype(dtype), spacing=(2.0, 0.5, 0.8), modality="CT")
    ids = np.zeros(shape, np.uint8)
    ids[2:7, 3:9, 4:10] = 5
    ids[0, :, :4] = 32
    table = LabelTable()
    table.add(5, "liver", (221, 130, 101))
    table.add(32, "T12", (241, 214, 145))
    table.add(40, "spleen", (157, 108, 162))  # in the table, never painted
    return image, LabelMap(image.with_array(ids), table)


def _expected(image: Volume, labels: LabelMap, label_id: int):
    values = image.array[labels.array == label_id].astype(np.float64)
    return values.size, values.mean(), values.std()


@pytest.mark.parametrize("dtype", [np.int16, np.float32])  # joint histogram, weighted sums
def test_statistics_match_numpy(dtype):
    image, labels = _ct_and_labels(dtype)
    stats = {s.id: s for s in label_statistics(image, labels)}
    assert list(stats) == [0, 5, 32, 40]
    for label_id in (0, 5, 32):
        n, mean, sd = _expected(image, labels, label_id)
        assert stats[label_id].voxels == n
        assert stats[label_id].mean == pytest.approx(mean, abs=1e-6)
        assert stats[label_id].sd == pytest.approx(sd, abs=1e-6)
        assert stats[label_id].volume_ml == pytest.approx(n * 2.0 * 0.5 * 0.8 / 1000)
    assert stats[5].name == "liver" and stats[0].name == "unlabelled"
    assert stats[40].voxels == 0 and stats[40].mean is None and stats[40].fraction_pct == 0
    assert sum(s.fraction_pct for s in stats.values()) == pytest.approx(100.0)
    assert stats[5].fraction_pct == pytest.approx(100.0 * 5 * 6 * 6 / image.array.size)


def test_sd_is_exact_far_from_zero():
    """Values near 30000 with a spread of 1: sums of squares must not swamp the variance."""
    image = Volume(np.array([[[30000, 30001, 30002, 30003]]], np.float64))
    labels = LabelMap(image.with_array(np.array([[[1, 1, 1, 1]]], np.uint8)))
    (stat,) = label_statistics(image, labels)
    assert stat.mean == pytest.approx(30001.5) and stat.sd == pytest.approx(np.std([0, 1, 2, 3]), abs=1e-9)


def test_photo_uses_luminance_and_has_no_volume():
    rgb = np.zeros((1, 2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 0, 255)
    photo = Volume(rgb, modality="XC", meta={"pixel_units": True})
    ids = np.array([[[1, 1, 1], [2, 2, 2]]], np.uint8)
    stats = {s.id: s for s in label_statistics(photo, LabelMap(Volume(ids)))}
    assert stats[1].mean == pytest.approx(0.299 * 255) and stats[2].mean == pytest.approx(0.114 * 255)
    assert stats[1].volume_ml is None and stats[1].fraction_pct == pytest.approx(50.0)
    assert 0 not in stats  # no background pixels: no background row


def test_progress_and_cancel(monkeypatch):
    monkeypatch.setattr(label_stats, "SLAB_VOXELS", 11 * 13)  # one slice a slab
    image, labels = _ct_and_labels()
    seen = []
    label_statistics(image, labels, progress=lambda f, m="": seen.append(f))
    assert seen[0] == 0 and seen[-1] == 1.0 and len(seen) == image.shape[0] + 1
    token = CancelToken()

    def cancel_halfway(fraction, message=""):
        if fraction > 0.5:
            token.cancel()

    with pytest.raises(Cancelled):
        label_statistics(image, labels, progress=cancel_halfway, cancel=token)


def test_other_grid_is_refused():
    image, labels = _ct_and_labels()
    with pytest.raises(InputError, match="label map is"):
        label_statistics(image.with_array(image.array[:-1]), labels)


def test_text_table_lists_every_label():
    image, labels = _ct_and_labels()
    text = statistics_table(label_statistics(image, labels))
    lines = text.splitlines()
    assert lines[0].split() == ["id", "name", "voxels", "volume", "ml", "mean", "sd", "fraction", "%"]
    assert len(lines) == 5 and "liver" in lines[2] and "180" in lines[2] and lines[4].rstrip().endswith("0.000")


def test_real_ct_liver_volume(shared_data):
    from ctviewer.io.label_files import read_label_map
    from ctviewer.io.registry import read_volume

    image = read_volume(shared_data / "ct" / "abdomen_slab_ct.nii.gz")
    labels = read_label_map(shared_data / "ct" / "abdomen_slab_labels.nii.gz")
    liver = next(s for s in label_statistics(image, labels) if s.id == 5)
    n = int(np.count_nonzero(labels.array == 5))
    assert liver.voxels == n and liver.volume_ml == pytest.approx(n * 27 / 1000)
    assert 0 < liver.mean < 200  # soft tissue in HU, not air or bone


def test_a_scan_of_many_slabs_matches_numpy(monkeypatch):
    """Cut into 9 slabs of 7 slices (a large scan's speed is benchmarks/bench_label_stats.py's), every
    label's figures are numpy's over the whole scan: nothing lost or counted twice at the slab borders."""
    monkeypatch.setattr(label_stats, "SLAB_VOXELS", 7 * 256 * 256)
    rng = np.random.default_rng(0)
    image = Volume(rng.integers(-1000, 2000, (60, 256, 256), dtype=np.int16), spacing=(1, 0.7, 0.7))
    ids = np.zeros(image.shape, np.uint8)
    ids[10:40, 50:150, 50:200], ids[30:, 200:, 200:] = 1, 7
    labels = LabelMap(image.with_array(ids))
    stats = {s.id: s for s in label_statistics(image, labels)}
    for label_id in (0, 1, 7):
        n, mean, sd = _expected(image, labels, label_id)
        assert stats[label_id].voxels == n
        assert stats[label_id].mean == pytest.approx(mean, abs=1e-6) and stats[label_id].sd == pytest.approx(sd)

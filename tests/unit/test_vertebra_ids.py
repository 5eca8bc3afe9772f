"""One table of TotalSegmentator vertebra ids (ctviewer.data.vertebra_ids): the synthetic torso paints its
vertebrae with it, the spine model levels its mask with it and the locator reads its truth from a labelled
CT with it, so a label map written by one is read by the others as the same vertebrae."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from ctviewer.data.vertebra_ids import L6_ID, SACRUM_ID, VERTEBRA_IDS, vertebra_id
from ctviewer.io.writers import write_volume
from ctviewer.synth import TorsoParams, make_torso


def test_the_table_is_totalsegmentators():
    assert [VERTEBRA_IDS[lv] for lv in ("S1", "L5", "L1", "T12", "T1", "C7", "C1")] == [26, 27, 31, 32, 43, 44, 50]
    assert sorted(VERTEBRA_IDS.values()) == list(range(26, 51)) and SACRUM_ID == 25
    assert vertebra_id("L3") == 29 and vertebra_id("L6") == L6_ID == 210
    with pytest.raises(KeyError):
        vertebra_id("L7")


def test_the_segmentation_and_the_locator_use_the_same_table():
    from ctviewer.workflows.segmentation import vertebra_levels

    assert vertebra_levels.LEVEL_IDS is VERTEBRA_IDS


def test_a_torso_label_map_on_disk_is_read_back_as_the_same_vertebrae(tmp_path):
    """The generator's label map written as NIfTI: each vertebra's voxels carry the table's id and name, and
    the locator's labelled-CT truth, read through the same table, puts each level on its own body."""
    from ctviewer.workflows.slice_locator.dataset import sample_from_labelled_ct

    t = make_torso(TorsoParams(seed=8, matrix=(96, 96), pixel_spacing=4.0, slice_spacing=5.0,
                               field_of_view="abdomen", lumbar_count=6))
    image = write_volume(t.image, tmp_path / "torso.nii.gz")
    labels = write_volume(t.labels.volume, tmp_path / "torso_labels.nii.gz", label_table=t.labels.table)
    painted = np.unique(np.asarray(nib.load(labels).dataobj))
    names = {int(e["id"]): e["name"] for e in json.loads((tmp_path / "torso_labels.labels.json").read_text())["labels"]}
    levels = [lv for lv in t.levels if lv in VERTEBRA_IDS]
    assert {"L1", "L3", "L5", "S1"} <= set(levels) and L6_ID in painted and names[L6_ID] == "vertebrae_L6"
    for lv in levels:
        assert t.levels[lv].label == VERTEBRA_IDS[lv] and VERTEBRA_IDS[lv] in painted, lv
        assert names[VERTEBRA_IDS[lv]] == f"vertebrae_{lv}"
    sample = sample_from_labelled_ct(image, labels, levels=("L1", "L3", "S1"))
    for lv in ("L1", "L3", "S1"):
        z = sample.top_z_mm - sample.level_rows[lv] * 1.0           # rows of the 1 mm projections
        assert t.levels[lv].bottom_mm - 1 <= z <= t.levels[lv].top_mm + 1, (lv, z, t.levels[lv])

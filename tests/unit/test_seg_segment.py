"""segment_volume: the whole inference path on the scan's grid, with a numpy stand-in for the network."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.data import Volume
from ctviewer.errors import InputError
from ctviewer.ml.cards import ModelCard
from ctviewer.workflows.segmentation.segment import SegSettings, segment_volume


def bright(batch):
    """'Liver' wherever the windowed input is above 0.75 (above 50 HU in -1000..400: the sigmoid's 0.5 is mid-edge)."""
    return (batch > 0.75).astype(np.float32)


def scan():
    hu = np.full((20, 60, 50), -1000, np.int16)
    hu[4:14, 10:40, 10:30] = 300         # the organ
    hu[16:18, 50:54, 40:44] = 300        # a small bright speck elsewhere
    return Volume(hu, spacing=(2.5, 0.8, 0.8), modality="CT", name="scan")


@pytest.mark.parametrize("dims", [2, 3])
def test_labels_come_back_on_the_scans_grid(dims):
    volume = scan()
    settings = SegSettings(dims=dims, spacing_mm=(None, 1.6, 1.6) if dims == 2 else (2.5, 1.6, 1.6),
                           patch=(8, 16, 16), multiple=4,
                           groups=[{"name": "liver", "ids": [5], "label_id": 5}])
    result = segment_volume(volume, bright, settings)
    assert result.labels.shape == volume.shape
    truth = volume.array > 50
    overlap = np.count_nonzero((result.labels == 5) & truth) / np.count_nonzero(truth)
    assert overlap > 0.9 and set(np.unique(result.labels)) == {0, 5}
    assert result.voxels["liver"] == np.count_nonzero(result.labels == 5)


def test_largest_part_only_drops_the_speck():
    volume = scan()
    settings = SegSettings(dims=2, spacing_mm=(None, 0.8, 0.8), multiple=4)
    assert (segment_volume(volume, bright, settings).labels[16:18, 50:54, 40:44] == 5).any()
    kept = segment_volume(volume, bright, settings, keep_largest=True).labels
    assert not (kept[16:18, 50:54, 40:44] == 5).any() and (kept[8, 20, 20] == 5)


def test_the_liver_cards_clean_up_runs_in_the_segmentation_path():
    """The shipped liver card asks for its clean-up; segment_volume does it: islands go, cavities fill."""
    from pathlib import Path

    card = ModelCard.read(Path(__file__).parents[2] / "models" / "liver_unet2d.json")
    settings = SegSettings.from_card(card)
    assert settings.groups[0]["drop_islands"] == 0.1 and settings.groups[0]["fill_holes"] is True
    assert settings.groups[0]["grow"] == {"mm": 3.0, "band_sd": 2.0}
    volume = scan()
    volume.array[8:10, 20:24, 18:22] = -1000   # a dark vessel inside the organ
    settings.spacing_mm, settings.multiple = (None, 0.8, 0.8), 4
    labels = segment_volume(volume, bright, settings).labels
    assert not (labels[16:18, 50:54, 40:44] == 5).any()    # the speck beside it is gone
    assert (labels[8:10, 20:24, 18:22] == 5).all()          # the vessel is liver
    assert (labels[4:14, 10:40, 10:30] == 5).all()


def test_photos_and_cards_without_groups_are_refused():
    photo = Volume(np.zeros((1, 8, 8, 3), np.uint8), name="thin section")
    with pytest.raises(InputError, match="is a photo"):
        segment_volume(photo, bright, SegSettings())
    with pytest.raises(InputError, match="no output groups"):
        SegSettings.from_card(ModelCard(name="odd", task="segmentation_2d"))


def test_the_liver_config_writes_the_clean_up_into_the_card(tmp_path):
    """The config's [extra] drop_islands / fill_holes reach the groups the card is written with; bad values
    are refused with the key named."""
    from pathlib import Path

    from ctviewer.ml.training import TrainConfig
    from ctviewer.workflows.segmentation.task import SegData

    config = TrainConfig.from_toml(Path(__file__).parents[2] / "models" / "configs" / "liver_unet2d.toml")
    groups = SegData.from_config(config, 2).settings().groups
    assert groups == [{"name": "liver", "ids": [5], "label_id": 5, "drop_islands": 0.1, "fill_holes": True,
                       "grow": {"mm": 3.0, "band_sd": 2.0}}]
    bad = tmp_path / "bad.toml"
    for extra, key in (("drop_islands = 2", "drop_islands"), ("grow = { mm = 3 }", "grow"),
                       ("grow = { mm = 3, low = 100, band_sd = 2 }", "grow"), ("grow = { mm = 50, low = 1 }", "grow.mm"),
                       ("grow = 3", "grow")):
        bad.write_text(f'task = "segmentation_2d"\nname = "x"\n[data]\nsynthetic = 2\n[extra]\n{extra}\n')
        with pytest.raises(InputError, match=key):
            SegData.from_config(TrainConfig.from_toml(bad), 2).groups()

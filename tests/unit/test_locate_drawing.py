"""`ctviewer locate --png`: a pick the reader must check is labelled in the reader's words on the picture
("levels disagree — check", "from the spine count"), never with the CSV's status code."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ctviewer.workflows.slice_locator import drawing
from ctviewer.workflows.slice_locator.picks import Pick

COMMON = dict(exam_id="case", instance_number=None, slice_thickness_mm=4.0, spacing_mm=4.0)


def pick(status="predicted", source="slice_locator v1", level="L3", slice_index=30, confidence=0.42):
    return Pick(level=level, slice_index=slice_index, z_mm=None, confidence=confidence, status=status,
                source=source, **COMMON)


@pytest.mark.parametrize("made, label", [
    (pick(), "L3 0.42 slice 30"),
    (pick(status="levels_disagree"), "L3 0.42 (levels disagree — check) slice 30"),
    (pick(source="spine count", confidence=0.9), "L3 0.90 (from the spine count) slice 30"),
    (pick(status="corrected", confidence=None), "L3 (corrected) slice 30"),
])
def test_pick_labels_say_what_to_check_in_words(made, label):
    assert drawing.pick_label(made) == label


def test_the_picture_of_a_disagreeing_pick_is_written_with_its_line(tmp_path):
    from ctviewer.synth import TorsoParams, make_torso
    from ctviewer.workflows.slice_locator.projections import make_projections

    torso = make_torso(TorsoParams.random(11, fov_mm=(-70.0, 200.0), matrix=(96, 96), pixel_spacing=4.0,
                                          slice_spacing=4.0))
    projections = make_projections(torso.image)
    path = drawing.write_projections_png(projections, [pick(status="levels_disagree")], tmp_path / "case.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    l3 = np.all(image == drawing.LEVEL_COLOURS["L3"], axis=-1)
    rows = np.nonzero(l3.all(axis=1))[0]          # the line across the whole picture
    assert rows.size >= 1
    text = l3[:rows[0]]                          # the label sits above its line, in the level's colour
    assert text.any() and np.nonzero(text.any(axis=0))[0].max() > 150   # the label is drawn (the em dash too)

"""Open studies handed to training as files: read back by find_cases as cases on the image's grid with
the same label values; empty label maps, colour images and labels on another grid refused by study
name; a cancelled export leaves no files behind."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.data.labels import LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import Cancelled, InputError
from ctviewer.progress import CancelToken
from ctviewer.workflows.segmentation.cases import find_cases
from ctviewer.workflows.segmentation.export import export_training_pairs, file_names


def scan(shape=(6, 9, 11), spacing=(2.5, 0.8, 0.7), origin=(-40.0, 12.5, 100.0), name="scan") -> Volume:
    values = np.arange(np.prod(shape), dtype=np.int16).reshape(shape) % 900 - 1000   # no two slices alike
    return Volume(values, spacing=spacing, origin=origin, modality="CT", name=name)


def labels_for(image: Volume) -> np.ndarray:
    labels = np.zeros(image.shape, np.uint8)
    labels[1:4, 2:5, 3:9] = 5          # liver
    labels[4, 6:8, 1:3] = 31           # L1, on one slice only: a flip or shift of z would show
    return labels


def test_round_trip_keeps_geometry_values_and_label_names(tmp_path):
    liver = scan(name="liver CT")
    spine = scan(shape=(5, 7, 8), spacing=(3.0, 1.0, 1.0), origin=(0.0, 0.0, -50.0), name="spine")
    table = LabelTable.for_ids([5, 31], {5: "liver", 31: "L1"})
    label_map = LabelMap(liver.with_array(labels_for(liver)), table)
    spine_labels = labels_for(spine).astype(np.float32)   # whole numbers in float: accepted
    seen = []

    folder = export_training_pairs([("liver CT", liver, label_map), ("spine", spine, spine_labels)],
                                   tmp_path / "studies", progress=lambda f, m="": seen.append(f))

    assert folder == tmp_path / "studies" and seen[-1] == 1.0
    refs = find_cases(folder)
    assert [r.case_id for r in refs] == ["liver_CT", "spine"]
    for ref, image, expected in zip(refs, (liver, spine), (labels_for(liver), labels_for(spine))):
        case = ref.load()
        assert case.image.same_grid(image) and np.array_equal(case.image.array, image.array)
        assert case.image.modality == "CT"
        np.testing.assert_allclose(case.image.origin, image.origin, atol=1e-4)
        assert np.array_equal(case.labels, expected)
    assert refs[0].load().label_names == {5: "liver", 31: "L1"}


def test_empty_labels_other_grids_and_colour_are_refused_by_study_name(tmp_path):
    image = scan()
    empty = np.zeros(image.shape, np.uint8)
    with pytest.raises(InputError, match="study 'blank' has an empty label map: nothing to learn"):
        export_training_pairs([("ok", image, labels_for(image)), ("blank", image, empty)], tmp_path)
    assert not any(tmp_path.rglob("*.nii.gz"))   # checked before anything is written

    shifted = LabelMap(image.with_array(labels_for(image), origin=(0.0, 0.0, 0.0)))
    with pytest.raises(InputError, match=r"study 'moved': label map and image have different grids \(.*origin"):
        export_training_pairs([("moved", image, shifted)], tmp_path)
    with pytest.raises(InputError, match="study 'small': label map and image have different grids"):
        export_training_pairs([("small", image, labels_for(image)[:3])], tmp_path)

    photo = Volume(np.zeros((1, 4, 4, 3), np.uint8), modality="XC")
    with pytest.raises(InputError, match="study 'photo' is a colour image"):
        export_training_pairs([("photo", photo, np.ones((1, 4, 4), np.uint8))], tmp_path)
    with pytest.raises(InputError, match="no studies"):
        export_training_pairs([], tmp_path)


def test_cancelled_export_removes_what_it_wrote(tmp_path):
    image = scan()
    token = CancelToken()

    def cancel_after_first(fraction, message=""):
        if fraction > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        export_training_pairs([("a", image, labels_for(image)), ("b", image, labels_for(image))], tmp_path,
                              progress=cancel_after_first, cancel=token)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_file_names_are_safe_and_distinct():
    assert file_names(["Liver CT / 2", "liver ct / 2", "", "../etc", "case_0000", "a.b"]) == \
        ["Liver_CT_2", "liver_ct_2-2", "study", "etc", "case_0000-study", "a.b"]

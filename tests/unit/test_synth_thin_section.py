"""The synthetic thin section: thin-section data that exists in every clone. Its classes are the truth the
live classifier and the demo project are checked against, so they must be what the photo shows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ctviewer.imaging.bins import thin_section_table
from ctviewer.synth import demo, make_thin_section
from ctviewer.synth.thin_section import EPOXY, QUARTZ


@pytest.fixture(scope="module")
def photos():
    return [make_thin_section(seed) for seed in (0, 1, 2)]


def test_the_same_seed_gives_the_same_photo_and_another_seed_another():
    a, b, c = (make_thin_section(seed, size=(120, 160)) for seed in (5, 5, 6))
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def test_photo_and_labels_match_in_size_and_hold_the_five_table_classes(photos):
    ids = {label.id for label in thin_section_table()}
    for photo in photos:
        assert photo.rgb.shape == (480, 640, 3) and photo.rgb.dtype == np.uint8
        assert photo.labels.shape == (480, 640) and photo.labels.dtype == np.uint8
        assert set(np.unique(photo.labels)) == ids == {1, 2, 3, 4, 5}
    assert make_thin_section(0, size=(100, 130)).labels.shape == (100, 130)


def test_porosity_is_the_epoxy_fraction_and_varies_between_seeds_in_a_sandstone_range(photos):
    values = [photo.porosity for photo in photos] + [make_thin_section(s, size=(240, 320)).porosity for s in (3, 4, 5)]
    assert all(0.05 <= p <= 0.25 for p in values)
    assert photos[0].porosity == pytest.approx(np.mean(photos[0].labels == EPOXY))
    assert max(values) - min(values) > 0.03


def test_epoxy_is_blue_and_quartz_bright(photos):
    for photo in photos:
        epoxy = photo.rgb[photo.labels == EPOXY].mean(axis=0)
        quartz = photo.rgb[photo.labels == QUARTZ].mean(axis=0)
        assert epoxy[2] > 170 and epoxy[0] < 120 and epoxy[2] - epoxy[0] > 80
        assert quartz.min() > 180
        black = photo.rgb[photo.labels == 1].mean()
        assert black < 60 < photo.rgb[photo.labels == 2].mean() < photo.rgb[photo.labels == 4].mean() < quartz.mean()


def test_the_live_classifier_separates_epoxy_from_grains_from_a_few_scribbles():
    from ctviewer.workflows.thin_section.classifier import PixelClassifier

    photo = make_thin_section(3, size=(240, 320))
    rng = np.random.default_rng(0)
    scribbles = np.zeros_like(photo.labels)
    for c in range(1, 6):   # a few pixels well inside each class, as a user's strokes would be
        ys, xs = np.nonzero(ndi.binary_erosion(photo.labels == c, iterations=2))
        pick = rng.choice(ys.size, min(30, ys.size), replace=False)
        scribbles[ys[pick], xs[pick]] = c
    classifier = PixelClassifier(seed=0)
    classifier.set_image(photo.rgb)
    predicted = classifier.fit(scribbles).predict()
    agreement = np.mean((predicted == EPOXY) == (photo.labels == EPOXY))
    assert agreement > 0.93     # measured 0.97-0.98 on seeds 0, 3, 7


def test_the_demo_thin_section_folder_is_a_seed_layout_project(tmp_path, monkeypatch):
    from ctviewer.workflows.thin_section.project import ThinSectionProject

    monkeypatch.setattr(demo, "thin_section_demo_size", lambda: (96, 128))
    folder = demo.demo_thin_section_dir(tmp_path)
    project = ThinSectionProject.open(folder)
    assert project.layout == "seed" and not project.problems
    assert [(im.name, im.split, im.status) for im in project.images] == [
        ("1", "train", "labelled"), ("2", "train", "labelled"), ("3", "train", "labelled"),
        ("4", "train", "unlabelled"), ("5", "test", "labelled"), ("6", "test", "labelled")]
    assert len(project.training_pairs()) == 3 and len(project.test_pairs()) == 2
    assert demo.demo_thin_section_dir(tmp_path) == folder                     # cached: made once
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]              # no temporary folder left

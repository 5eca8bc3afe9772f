"""Thin-section projects: the seed, pairs and flat layouts, statuses, the project file, pairs for training."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ctviewer.errors import InputError
from ctviewer.workflows.thin_section.photos import read_label_image
from ctviewer.workflows.thin_section.project import PROJECT_FILE, ThinSectionProject, find_pairs


def _photo(path, w=6, h=4, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


def _labels(path, w=6, h=4, value=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w), value, np.uint8)).save(path)
    return path


@pytest.fixture
def seed(tmp_path):
    """The seed's layout: JPEG photos, PNG labels matched by stem; one test photo unlabelled."""
    root = tmp_path / "dataset1"
    _photo(root / "images_prepped_train" / "10.jpg")
    _photo(root / "images_prepped_train" / "2.jpg", w=8, h=5)  # another size: fine
    _labels(root / "annotations_prepped_train" / "2.png", w=8, h=5, value=3)
    _labels(root / "annotations_prepped_train" / "10.png", value=1)
    _photo(root / "images_prepped_test" / "43.jpg")
    _labels(root / "annotations_prepped_test" / "43.png")
    _photo(root / "images_prepped_test" / "44.jpg")
    return root


def test_seed_layout_matches_labels_by_stem(seed):
    project = ThinSectionProject.open(seed)
    assert project.layout == "seed" and project.problems == []
    assert [(i.name, i.split, i.status) for i in project.images] == [
        ("2", "train", "labelled"), ("10", "train", "labelled"),
        ("43", "test", "labelled"), ("44", "test", "unlabelled")]
    ten = project.image("10")
    assert ten.label_path == seed / "annotations_prepped_train" / "10.png"
    assert read_label_image(ten.label_path)[0, 0] == 1
    train, labels = seed / "images_prepped_train", seed / "annotations_prepped_train"
    assert project.training_pairs() == [(train / "2.jpg", labels / "2.png"), (train / "10.jpg", labels / "10.png")]
    test, labels = seed / "images_prepped_test", seed / "annotations_prepped_test"
    assert project.test_pairs() == [(test / "43.jpg", labels / "43.png")]
    assert project.label_target(project.image("44")) == seed / "annotations_prepped_test" / "44.png"
    assert not (seed / PROJECT_FILE).exists()  # opening writes nothing


def test_statuses_follow_saves_and_persist(seed):
    project = ThinSectionProject.open(seed)
    new = project.image("44")
    pred = np.full((4, 6), 5, np.uint8)
    assert project.save_prediction(new, pred) == seed / "predictions" / "44.png"
    assert new.status == "predicted"
    labelled = project.image("43")
    project.save_prediction(labelled, pred)
    assert labelled.status == "labelled"  # a prediction never demotes labels
    project.save_labels(new, pred)
    assert new.status == "labelled" and np.array_equal(read_label_image(seed / "annotations_prepped_test" / "44.png"), pred)
    project.set_status(new, "reviewed")
    project.save_labels(new, pred)
    assert new.status == "reviewed"  # correcting reviewed labels keeps them reviewed
    stored = json.loads((seed / PROJECT_FILE).read_text())
    assert stored["version"] == 1 and stored["images"]["44"]["status"] == "reviewed"
    again = ThinSectionProject.open(seed)
    assert again.image("44").status == "reviewed" and again.image("44").prediction_path == seed / "predictions" / "44.png"
    with pytest.raises(InputError, match="no labels"):
        ThinSectionProject.open(seed).set_status(_unlabelled(seed), "reviewed")
    with pytest.raises(InputError, match="do not fit the photo 43.jpg"):
        project.save_labels(labelled, np.zeros((5, 5), np.uint8))


def _unlabelled(seed):
    _photo(seed / "images_prepped_test" / "45.jpg")
    return ThinSectionProject.open(seed).image("45")


def test_a_stored_status_whose_file_is_gone_is_derived_again(seed):
    project = ThinSectionProject.open(seed)
    project.set_status(project.image("43"), "reviewed")
    (seed / "annotations_prepped_test" / "43.png").unlink()
    assert ThinSectionProject.open(seed).image("43").status == "unlabelled"


def test_corrupt_project_file_costs_only_the_overrides(seed):
    (seed / PROJECT_FILE).write_text('{"format": "ctviewer-thin-section-project", "version": 1, "images": {')
    project = ThinSectionProject.open(seed)
    assert len(project.problems) == 1 and PROJECT_FILE in project.problems[0] and "\n" not in project.problems[0]
    assert [i.status for i in project.images] == ["labelled", "labelled", "labelled", "unlabelled"]
    project.set_status(project.image("43"), "reviewed")  # the unreadable file is kept aside, then rewritten
    assert (seed / (PROJECT_FILE + ".unreadable")).read_text().endswith('"images": {')
    assert ThinSectionProject.open(seed).problems == []


def test_add_to_training_copies_into_the_train_folders(seed):
    project = ThinSectionProject.open(seed)
    item = project.image("43")
    project.add_to_training(item)
    assert (seed / "images_prepped_train" / "43.jpg").read_bytes() == (seed / "images_prepped_test" / "43.jpg").read_bytes()
    assert (seed / "annotations_prepped_train" / "43.png").is_file()
    assert item.split == "train" and (item.image_path, item.label_path) in project.training_pairs()
    with pytest.raises(InputError, match="no labels to train on"):
        project.add_to_training(project.image("44"))


def test_add_to_training_never_overwrites_a_different_file(seed):
    _labels(seed / "annotations_prepped_train" / "43.png", value=4)  # someone else's 43 is there
    project = ThinSectionProject.open(seed)
    with pytest.raises(InputError, match="a different file with this name is already in the training set") as err:
        project.add_to_training(project.image("43"))
    assert "annotations_prepped_train/43.png" in str(err.value)
    assert read_label_image(seed / "annotations_prepped_train" / "43.png")[0, 0] == 4
    assert not (seed / "images_prepped_train" / "43.jpg").exists()


def test_pairs_layout_of_the_real_photos(shared_data):
    folder = shared_data / "thin_sections"
    project = ThinSectionProject.open(folder)
    assert project.layout == "pairs" and project.problems == [] and len(project.images) == 9
    assert all(i.status == "labelled" and i.label_path.name == i.image_path.name for i in project.images)
    assert [i.name for i in project.images] == [str(n) for n in range(1, 10)]
    assert find_pairs(folder) == [(folder / "images" / f"{n}.png", folder / "labels" / f"{n}.png") for n in range(1, 10)]
    assert not (folder / PROJECT_FILE).exists()


def test_pairs_layout_writes_into_a_copy(shared_data, tmp_path):
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
        shutil.copy(shared_data / "thin_sections" / sub / "1.png", tmp_path / sub)
    shutil.copy(shared_data / "thin_sections" / "images" / "2.png", tmp_path / "images")
    project = ThinSectionProject.open(tmp_path)
    two = project.image("2")
    assert two.status == "unlabelled" and project.label_target(two) == tmp_path / "labels" / "2.png"
    h, w = np.asarray(Image.open(two.image_path)).shape[:2]
    project.save_labels(two, np.ones((h, w), np.uint8))
    project.add_to_training(two)
    again = ThinSectionProject.open(tmp_path)
    assert again.image("2").split == "train" and again.image("2").status == "labelled"
    assert len(again.training_pairs()) == 2 and again.test_pairs() == []


def test_flat_folder_of_photos_of_different_sizes(tmp_path):
    _photo(tmp_path / "a.png")
    _photo(tmp_path / "b.jpg", w=9, h=3)
    _labels(tmp_path / "b_labels.png", w=9, h=3)  # ctviewer's default beside a single photo
    project = ThinSectionProject.open(tmp_path)
    assert project.layout == "flat" and [i.name for i in project.images] == ["a", "b"]
    assert project.image("b").status == "labelled"
    a = project.image("a")
    assert project.label_target(a) == tmp_path / "labels" / "a.png"
    project.save_labels(a, np.ones((4, 6), np.uint8))
    assert [i.status for i in ThinSectionProject.open(tmp_path).images] == ["labelled", "labelled"]


def test_empty_folder_and_unreadable_photo(tmp_path):
    with pytest.raises(InputError, match="no photos") as err:
        ThinSectionProject.open(tmp_path)
    assert str(tmp_path) in str(err.value)
    _photo(tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("not a photo")
    project = ThinSectionProject.open(tmp_path)
    assert [i.name for i in project.images] == ["good"]
    assert len(project.problems) == 1 and "bad.png" in project.problems[0]


def test_label_of_another_size_is_refused_naming_both_files(tmp_path):
    _photo(tmp_path / "images" / "1.png")
    _photo(tmp_path / "images" / "2.png")
    _labels(tmp_path / "labels" / "1.png", w=5)
    _labels(tmp_path / "labels" / "2.png")
    project = ThinSectionProject.open(tmp_path)
    assert [i.name for i in project.images] == ["2"]  # left out, so its labels are never overwritten
    assert "labels/1.png" in project.problems[0] and "images/1.png" in project.problems[0]
    with pytest.raises(InputError, match=r"label image is 5×4 but its photo .*images/1.png is 6×4"):
        find_pairs(tmp_path)


def test_find_pairs_from_a_list_file(tmp_path):
    _photo(tmp_path / "img" / "a.png")
    _labels(tmp_path / "lab" / "a.png")
    _labels(tmp_path / "lab" / "small.png", w=2)
    lst = tmp_path / "pairs.txt"
    lst.write_text("# photo, labels\nimg/a.png, lab/a.png\n\n")
    assert find_pairs(lst) == [(tmp_path / "img" / "a.png", tmp_path / "lab" / "a.png")]
    lst.write_text("img/a.png,lab/a.png\nimg/a.png,lab/missing.png\n")
    with pytest.raises(InputError, match=r"pairs.txt: line 2: no such file .*missing.png"):
        find_pairs(lst)
    lst.write_text("img/a.png lab/a.png\n")
    with pytest.raises(InputError, match="line 1: expected 'image,label'"):
        find_pairs(lst)
    lst.write_text("img/a.png,lab/a.png\nimg/a.png,lab/small.png\n")
    with pytest.raises(InputError, match=r"line 2: .*small.png: the label image is 2×4 but its photo"):
        find_pairs(lst)


def test_find_pairs_reads_the_seed_layout(seed):
    pairs = find_pairs(seed)
    assert [p.name for p, _ in pairs] == ["2.jpg", "10.jpg", "43.jpg"]
    assert all(lab.parent.name.startswith("annotations_prepped_") and lab.stem == p.stem for p, lab in pairs)


def test_same_stem_in_train_and_test_stays_two_images(seed):
    _photo(seed / "images_prepped_test" / "2.jpg")
    project = ThinSectionProject.open(seed)
    assert [i.name for i in project.images] == ["2", "10", "test-2", "43", "44"]
    assert project.image("test-2").image_path == seed / "images_prepped_test" / "2.jpg"


def test_open_reports_progress_and_can_be_cancelled(seed):
    from ctviewer.errors import Cancelled
    from ctviewer.progress import CancelToken

    seen = []
    ThinSectionProject.open(seed, progress=lambda f, m="": seen.append(f))
    assert seen and seen == sorted(seen) and max(seen) < 1.0 + 1e-9
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        ThinSectionProject.open(seed, cancel=token)

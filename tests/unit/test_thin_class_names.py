"""The five thin-section classes read as what they are (as models/README.md names them), and projects
and model cards saved under a former name are still read, under today's name."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from ctviewer.imaging.bins import thin_section_table
from ctviewer.ml.cards import ModelCard
from ctviewer.workflows.thin_section.predict import check_model_classes, model_table
from ctviewer.workflows.thin_section.project import PROJECT_FILE, ThinSectionProject

OLD = "darker grains (bright)"


def test_the_five_classes_keep_their_ids_and_colours_under_clear_names():
    assert [(lab.id, lab.name, tuple(lab.colour)) for lab in thin_section_table()] == [
        (1, "black grains", (20, 20, 20)), (2, "darker grains", (170, 90, 30)),
        (3, "blue-dye epoxy (visual porosity)", (30, 110, 255)), (4, "darker bright grains", (245, 160, 50)),
        (5, "bright quartz grains", (255, 235, 80))]


def _old_table() -> list[dict]:
    return [{"id": lab.id, "name": OLD if lab.id == 4 else lab.name, "colour": list(lab.colour)}
            for lab in thin_section_table()]


def test_a_model_card_saved_with_the_former_name_is_accepted_and_shown_under_todays():
    card = ModelCard(name="rocks", task="thin_section", outputs={"classes": _old_table()})
    check_model_classes(card, thin_section_table())
    assert model_table(card)[4].name == "darker bright grains"


def test_a_project_file_saved_with_the_former_name_opens_under_todays(tmp_path):
    folder = tmp_path / "rocks"
    (folder / "images").mkdir(parents=True)
    Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / "a.png")
    (folder / PROJECT_FILE).write_text(json.dumps({
        "format": "ctviewer-thin-section-project", "version": 1, "images": {}, "table": {"format": "ctviewer-label-table", "version": 1, "labels": _old_table()}}))
    project = ThinSectionProject.open(folder)
    assert project.problems == [] and project.table[4].name == "darker bright grains"
    assert [lab.name for lab in project.table] == [lab.name for lab in thin_section_table()]

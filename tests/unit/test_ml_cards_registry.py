"""Model cards, the model registry (list / find / load / save), the split by study, training configs,
the task table and the out-of-memory check: what a user relies on when picking and loading a model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ctviewer.errors import InputError
from ctviewer.ml import registry
from ctviewer.ml.backend import is_out_of_memory
from ctviewer.ml.cards import FORMAT_VERSION, ModelCard
from ctviewer.ml.datasets import split_by_study, split_indices_by_study
from ctviewer.ml.tasks import get_task, register_task, task_names
from ctviewer.ml.training import TrainConfig
from tests.conftest import REPO

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """An empty user models folder (through $CTVIEWER_MODELS_DIR) and an empty shipped folder."""
    user, shipped = tmp_path / "user", tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(user))
    monkeypatch.setattr(registry, "SHIPPED_DIR", shipped)
    # the cards here name test tasks; a card of a task this ctviewer does not know is listed unusable
    monkeypatch.setenv("CTVIEWER_TASK_MODULES", "tiny=tests.unit.ml_tiny_task,tiny2=tests.unit.ml_tiny_task")
    return user, shipped


def tiny_model(units: int = 3):
    from ctviewer.ml.backend import keras

    keras = keras()
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])


def card(name="m", task="tiny", **fields) -> ModelCard:
    return ModelCard(name=name, task=task, created="2025-01-02", metrics={"held_out": {"accuracy": 0.9}}, **fields)


# --- cards -------------------------------------------------------------------------------------------

def test_card_round_trip_keeps_everything_and_unknown_fields(tmp_path):
    original = card(inputs={"spacing_mm": np.float32(1.5), "window_hu": (100, 1500)},
                    outputs={"levels": ["L3", "T12"]})
    original.write(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["inputs"] == {"spacing_mm": 1.5, "window_hu": [100, 1500]} and data["format_version"] == FORMAT_VERSION
    data["from_the_future"] = {"x": 1}
    (tmp_path / "m.json").write_text(json.dumps(data))
    back = ModelCard.read(tmp_path / "m.json")
    assert back.outputs == original.outputs and back.metrics == original.metrics and back.created == "2025-01-02"
    assert back.extra == {"from_the_future": {"x": 1}}
    assert back.key_metrics() == "held_out: accuracy 0.9"


@pytest.mark.parametrize("text, reason", [
    ('{"name": "m", "task": ', "not valid JSON"),
    ('["m"]', "not a JSON object"),
    ('{"name": "m"}', "misses the required field 'task'"),
    ('{"name": "m", "task": "t", "inputs": [1]}', "field 'inputs' should be an object, not a list"),
    ('{"name": "m", "task": "t", "format_version": "2"}', "field 'format_version' should be a whole number"),
    ('{"name": "m", "task": "t", "real_data": [1]}', "field 'real_data' should be an object, not a list"),
    ('{"name": "m", "task": "t", "real_data": {"cases": [{"figures": {}}]}}',
     r"field 'real_data.cases\[0\]' should be an object with a 'case' name"),
    ('{"name": "m", "task": "t", "real_data": {"cases": [{"case": "a", "figures": [1]}]}}',
     r"'real_data.cases\[0\]'.figures should be an object"),
    ('{"name": "m", "task": "t", "do_not_trust": "T12"}', "field 'do_not_trust' should be a list of text"),
])
def test_bad_card_names_the_file_and_the_field(tmp_path, text, reason):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(InputError, match=reason) as err:
        ModelCard.read(path)
    assert err.value.path == str(path)


REAL = {"summary": "photo 9 0.86, photo 2 0.91 (trained on)",
        "sources": ["Craig Phillips, thin sections (MIT)"],
        "cases": [{"case": "photo 9", "role": "held out", "figures": {"mean_iou": 0.8612, "found": True}},
                  {"case": "photo 2", "role": "trained on (not a held-out figure)",
                   "figures": {"mean_iou": 0.91}, "remark": "seen in training"}]}


def test_real_data_and_do_not_trust_come_first_on_disk_and_in_the_listing_line(tmp_path):
    card(real_data=REAL, do_not_trust=["photos of another rock"]).write(tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    data = json.loads(text)
    assert list(data)[:8] == ["name", "task", "version", "created", "format_version", "description", "real_data",
                              "do_not_trust"]
    assert text.index('"real_data"') < text.index('"metrics"')
    back = ModelCard.read(tmp_path / "m.json")
    assert back.real_data == REAL and back.do_not_trust == ["photos of another rock"] and back.extra == {}
    assert back.key_metrics() == "real data: photo 9 0.86, photo 2 0.91 (trained on); held_out: accuracy 0.9"
    assert back.real_data_lines() == ["photo 9 [held out]: mean_iou 0.8612, found yes",
                                      "photo 2 [trained on (not a held-out figure)]: mean_iou 0.91 — seen in training"]
    assert back.sources() == ["Craig Phillips, thin sections (MIT)"]


def test_models_lists_the_real_data_per_case_and_what_not_to_trust(folders, capsys):
    from ctviewer.cli import main

    registry.save_model(tiny_model(), card(real_data=REAL, do_not_trust=["photos of another rock"]), folders[0])
    registry.save_model(tiny_model(), card(name="plain"), folders[0])
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("m ") and "real data: photo 9 0.86" in lines[0]
    assert lines[1:4] == ["    real data: photo 9 [held out]: mean_iou 0.8612, found yes",
                          "    real data: photo 2 [trained on (not a held-out figure)]: mean_iou 0.91 — seen in training",
                          "    do not trust: photos of another rock"]
    assert lines[4].startswith("plain ") and len(lines) == 5   # a card without real data: its one line


def test_every_shipped_card_tells_its_real_data_first_and_where_not_to_trust_it():
    """The shipped cards as a user reads them: real-data cases (credited) and do-not-trust lines."""
    cards = sorted(registry.SHIPPED_DIR.glob("*.json"))
    assert cards, "no shipped cards"
    for path in cards:
        data = json.loads(path.read_text())
        shipped = ModelCard.read(path)
        assert list(data).index("real_data") < list(data).index("metrics"), path.name
        assert shipped.real_data.get("summary") and shipped.real_data_lines(), path.name
        assert shipped.sources() and shipped.do_not_trust, path.name


def test_thin_section_card_gives_every_photo_and_says_which_were_trained_on():
    path = registry.SHIPPED_DIR / "thin_section_vggunet.json"
    if not path.exists():
        pytest.skip("no shipped thin_section_vggunet card")
    cases = {c["case"]: c for c in ModelCard.read(path).real_data["cases"]}
    assert sorted(cases) == [f"photo {n}" for n in range(1, 10)]
    for n in range(1, 7):
        assert "trained on" in cases[f"photo {n}"]["role"] and "not held out" in cases[f"photo {n}"]["role"]
    assert "validation" in cases["photo 7"]["role"]
    assert cases["photo 8"]["role"] == cases["photo 9"]["role"] == "held out"


# --- registry ----------------------------------------------------------------------------------------

def test_saved_model_loads_back_with_its_card_and_is_listed(folders):
    user, _ = folders
    model = tiny_model()
    entry = registry.save_model(model, card(), user)
    assert entry.path == user / "m.keras" and entry.card_path == user / "m.json" and not entry.shipped
    assert sorted(p.name for p in user.iterdir()) == ["m.json", "m.keras"]  # no temporary files left
    loaded, loaded_card = registry.load_model("m", task="tiny")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert loaded_card.metrics == {"held_out": {"accuracy": 0.9}}
    assert [e.name for e in registry.list_models()] == ["m"] and registry.list_models("other") == []
    assert registry.load_model(entry.card_path)[1].name == "m"  # by the card's path too


def test_the_last_model_of_each_task_stays_loaded_until_its_file_changes(folders, monkeypatch):
    import os

    monkeypatch.setattr(registry, "_KEPT", {})
    entry = registry.save_model(tiny_model(), card(), folders[0])
    registry.save_model(tiny_model(), card(name="other", task="tiny2"), folders[0])
    first, _ = registry.load_model_kept("m", task="tiny")
    assert registry.load_model_kept("m", task="tiny")[0] is first          # not loaded again
    other, _ = registry.load_model_kept("other", task="tiny2")
    assert registry.load_model_kept("m", task="tiny")[0] is first          # another task's model kept beside it
    registry.save_model(tiny_model(units=5), card(), folders[0])           # retrained: a new file
    stat = entry.path.stat()
    os.utime(entry.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again, _ = registry.load_model_kept("m", task="tiny")
    assert again is not first and again.output_shape == (None, 5)
    assert registry.load_model_kept("other", task="tiny2")[0] is other


def test_load_refuses_another_task(folders):
    registry.save_model(tiny_model(), card(task="tiny"), folders[0])
    with pytest.raises(InputError, match="is a tiny model, not a slice_locator model"):
        registry.load_model("m", task="slice_locator")


def test_load_refuses_a_card_from_a_newer_ctviewer(folders):
    registry.save_model(tiny_model(), card(format_version=FORMAT_VERSION + 1), folders[0])
    with pytest.raises(InputError, match=rf"made by a newer ctviewer \(format {FORMAT_VERSION + 1}\); this one "
                                         rf"reads up to {FORMAT_VERSION}"):
        registry.load_model("m")


def test_load_refuses_a_corrupt_model_file(folders):
    entry = registry.save_model(tiny_model(), card(), folders[0])
    entry.path.write_bytes(entry.path.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot be read as a Keras model") as err:
        registry.load_model(entry.path)
    assert err.value.path == str(entry.path)


def test_load_refuses_a_model_without_its_card(folders):
    entry = registry.save_model(tiny_model(), card(), folders[0])
    entry.card_path.unlink()
    with pytest.raises(InputError, match=r"no model card beside the model \(expected m.json\)"):
        registry.load_model(entry.path)


def test_load_refuses_code_in_a_model_file(folders):
    """safe_mode: a Lambda layer's Python code in a model file is never run."""
    from ctviewer.ml.backend import keras

    keras = keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    registry.save_model(model, card(), folders[0])
    with pytest.raises(InputError, match="cannot be read as a Keras model.*(unsafe|safe_mode)"):
        registry.load_model("m")


def test_unknown_name_says_where_it_looked(folders):
    registry.save_model(tiny_model(), card(name="present"), folders[0])
    with pytest.raises(InputError, match=r"no model named 'absent' in .*user or .*shipped \(models: present\)"):
        registry.find_model("absent")


def test_listing_skips_broken_entries_and_reports_each(folders):
    user, shipped = folders
    registry.save_model(tiny_model(), card(name="good"), user)
    registry.save_model(tiny_model(), card(name="newer", format_version=FORMAT_VERSION + 1), user)
    (user / "no_card.keras").write_bytes(b"x")
    (user / "bad_card.keras").write_bytes(b"x")
    (user / "bad_card.json").write_text('{"name": "bad_card"}')
    (shipped / "orphan.json").write_text(json.dumps(card(name="orphan").to_json()))
    entries, problems = registry.scan_models()
    assert [e.name for e in entries] == ["good"]
    assert len(problems) == 4 and all(p.endswith("; skipped") for p in problems)
    text = "\n".join(problems)
    assert f"{user / 'no_card.keras'}: no model card beside the model" in text
    assert f"{user / 'bad_card.json'}: model card misses the required field 'task'" in text
    assert f"{user / 'newer.keras'}: made by a newer ctviewer" in text
    assert f"{shipped / 'orphan.json'}: model card without its model orphan.keras" in text


def test_a_users_model_shadows_a_shipped_one_of_the_same_name(folders):
    user, shipped = folders
    registry.save_model(tiny_model(), card(notes="shipped"), shipped)
    registry.save_model(tiny_model(), card(notes="mine"), user)
    assert [(e.shipped, e.card.notes) for e in registry.list_models()] == [(True, "shipped"), (False, "mine")]
    assert registry.find_model("m").card.notes == "mine"
    assert registry.find_model(shipped / "m.keras").shipped


def test_save_refuses_a_name_that_is_not_a_file_name(folders):
    with pytest.raises(InputError, match="cannot be a file name"):
        registry.save_model(tiny_model(), card(name="../escape"), folders[0])


def test_missing_architecture_module_is_tolerated(monkeypatch):
    monkeypatch.setattr(registry, "ARCHITECTURE_MODULES", ["ctviewer.ml.not_written_yet"])
    registry.import_architectures()
    monkeypatch.setattr(registry, "ARCHITECTURE_MODULES", ["tests.unit.no_such_package.module"])
    with pytest.raises(ModuleNotFoundError):  # a module whose own import fails is a real fault
        registry.import_architectures()


# --- split by study ----------------------------------------------------------------------------------

def test_split_keeps_every_study_whole_and_is_reproducible():
    ids = [f"s{i % 10}" for i in range(100)]
    train, val = split_by_study(ids, 0.3, seed=1)
    assert len(val) == 3 and len(train) == 7 and not set(train) & set(val) and set(train) | set(val) == set(ids)
    assert split_by_study(list(reversed(ids)), 0.3, seed=1) == (train, val)
    assert split_by_study(ids, 0.3, seed=2) != (train, val)
    train_idx, val_idx = split_indices_by_study(ids, 0.3, seed=1)
    assert {ids[i] for i in val_idx} == set(val) and {ids[i] for i in train_idx} == set(train)
    assert len(train_idx) + len(val_idx) == 100


def test_split_leaves_at_least_one_study_on_each_side():
    assert all(len(side) == 1 for f in (0.01, 0.99) for side in split_by_study(["a", "b"], f))
    ten = [str(i) for i in range(10)]
    assert [len(side) for side in split_by_study(ten, 0.01)] == [9, 1]
    assert [len(side) for side in split_by_study(ten, 0.99)] == [1, 9]


def test_a_training_set_with_one_study_refuses_to_split():
    with pytest.raises(InputError, match="a training set with one study cannot be split into training and "
                                         "validation studies"):
        split_by_study(["only"] * 40, 0.2)
    with pytest.raises(InputError, match="between 0 and 1"):
        split_by_study(["a", "b"], 1.0)


# --- training configs --------------------------------------------------------------------------------

def write_config(tmp_path, text: str):
    path = tmp_path / "cfg" / "train.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_config_reads_settings_and_resolves_relative_paths(tmp_path):
    path = write_config(tmp_path, 'task = "tiny"\nname = "t1"\nepochs = 3\nlearning_rate = 1\nout_dir = "out"\n'
                                  'augmentation = false\n[data]\nnpz_path = "d/x.npz"\nstudy_dirs = ["a", "/abs"]\n'
                                  'count = 4\nlabel = "kept"\n[extra]\nwidth = 64\n')
    config = TrainConfig.from_toml(path)
    base = path.parent.resolve()
    assert (config.task, config.name, config.epochs, config.learning_rate, config.augmentation) == \
        ("tiny", "t1", 3, 1.0, False)
    assert config.out_dir == base / "out" and config.log_dir is None and config.batch_size == 8
    assert config.data == {"npz_path": str(base / "d/x.npz"), "study_dirs": [str(base / "a"), "/abs"],
                           "count": 4, "label": "kept"}
    assert config.extra == {"width": 64} and config.resolve("more.csv") == base / "more.csv"


@pytest.mark.parametrize("text, reason", [
    ('task = "t"\nname = "n"\nepoch = 3\n', "unknown key 'epoch'; known keys: task, name, data"),
    ('[train]\ntask = "t"\nname = "n"\n', "unknown key 'train' \\(write the settings at the top level"),
    ('task = "t"\nname = "n"\nepochs = "3"\n', "key 'epochs' should be a whole number, not '3'"),
    ('task = "t"\nname = "n"\naugmentation = 1\n', "key 'augmentation' should be true or false"),
    ('task = "t"\nname = "n"\nbatch_size = 0\n', "key 'batch_size' should be at least 1, not 0"),
    ('task = "t"\nname = "a/b"\n', "key 'name' should be usable as a file name"),
    ('name = "n"\n', "missing key 'task'"),
    ('task = "t\nname = "n"\n', "not a valid TOML file"),
])
def test_bad_config_names_the_file_and_the_key(tmp_path, text, reason):
    path = write_config(tmp_path, text)
    with pytest.raises(InputError, match=reason) as err:
        TrainConfig.from_toml(path)
    assert err.value.path == str(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="training config not found"):
        TrainConfig.from_toml(tmp_path / "absent.toml")


# --- tasks and the backend ---------------------------------------------------------------------------

def test_unknown_task_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown task 'nope'; known tasks: .*slice_locator"):
        get_task("nope")


def test_registered_task_is_found_by_name():
    from tests.unit.ml_tiny_task import TASK

    register_task(TASK)
    assert get_task("tiny") is TASK and "tiny" in task_names() and "slice_locator" in task_names()


def test_out_of_memory_is_recognised_through_chained_errors():
    import tensorflow as tf

    oom = tf.errors.ResourceExhaustedError(None, None, "failed to allocate")
    try:
        try:
            raise oom
        except Exception as inner:
            raise RuntimeError("training step failed") from inner
    except RuntimeError as outer:
        assert is_out_of_memory(outer)
    assert is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(ValueError("zoom level must be positive"))


def test_importing_the_ml_core_and_its_verbs_does_not_import_keras():
    code = ("import sys, ctviewer.ml, ctviewer.ml.registry, ctviewer.ml.tasks, ctviewer.ml.training, "
            "ctviewer.ml.datasets, ctviewer.commands.train, ctviewer.commands.models, ctviewer.cli\n"
            "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_a_card_of_an_unknown_task_is_a_problem_not_a_model(folders):
    """The GUI's model list and `ctviewer models` both read scan_models: neither may offer it to run."""
    user, _ = folders
    registry.save_model(tiny_model(), card(name="good"), user)
    registry.save_model(tiny_model(), card(name="alien", task="nonesuch"), user)
    entries, problems = registry.scan_models()
    assert [e.name for e in entries] == ["good"]
    assert len(problems) == 1 and "alien.keras" in problems[0] and "'nonesuch'" in problems[0]

from __future__ import annotations

from pathlib import Path

import pytest

from kdnlp.pipeline import recipe
from kdnlp.core.errors import KdnlpError

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))


def test_recipes_folder_is_found_and_complete():
    assert recipe.recipe_dir().resolve() == RECIPES[0].parent.resolve()
    assert {"hinton", "distilbert", "baseline", "finetune"} <= set(recipe.available())


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates_and_round_trips(path):
    r = recipe.load(str(path))
    assert r.name == path.stem and r.stages and all(s.losses for s in r.stages)
    again = recipe.parse(r.to_dict())
    assert again == r


def write(tmp_path, text: str) -> str:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return str(p)


BASE = "name: x\ndescription: y\nlosses:\n  - {loss: hinton, weight: 0.5, temperature: 2}\n  - {loss: ce}\n"


def test_overrides_win_and_reach_list_elements_by_name():
    r = recipe.load("distilbert", ["losses.hinton.temperature=4", "training.learning_rate=3e-5",
                                   "student.layers=[1,3,6]", "training.save_strategy=no"])
    terms = {t.name: t for t in r.stages[0].losses}
    assert terms["hinton"].params == {"temperature": 4.0}
    assert r.training["learning_rate"] == 3e-5 and r.training["save_strategy"] == "no"
    assert r.student.layers == [1, 3, 6]


def test_yaml_strings_like_5e_5_become_numbers(tmp_path):
    r = recipe.load(write(tmp_path, BASE + "training: {learning_rate: 5e-5, num_train_epochs: '2'}\n"))
    assert r.training["learning_rate"] == 5e-5 and r.training["num_train_epochs"] == 2.0


@pytest.mark.parametrize(
    "text, message",
    [
        (BASE + "lerning_rate: 1\n", "unknown recipe key 'lerning_rate'"),
        (BASE + "training: {learnin_rate: 1}\n", "unknown key 'training.learnin_rate'"),
        (BASE + "training: {output_dir: x}\n", "'training.output_dir' is set by kdnlp"),
        (BASE + "training: {save_strategy: no}\n", "quote it"),
        (BASE + "training: {learning_rate: fast}\n", "bad value 'fast' for training.learning_rate"),
        (BASE + "student: {layers: 3, stratgy: first}\n", "unknown key 'student.stratgy'"),
        (BASE + "student: {strategy: random}\n", "bad value 'random' for student.strategy"),
        ("name: x\ndescription: y\nlosses: [{loss: hintn}]\n", "unknown loss 'hintn'; valid: ce, cosine, crd, fitnets, hinton"),
        ("name: x\ndescription: y\nlosses: [{loss: hinton, temprature: 2}]\n", "unknown key 'stages.distill.losses[0](hinton).temprature'"),
        ("name: x\ndescription: y\nlosses: [{loss: hinton, temperature: 0}]\n", "must be > 0"),
        ("name: x\ndescription: y\nlosses: [{loss: ce}, {loss: ce}]\n", "two terms named 'ce'"),
        ("name: x\nlosses: [{loss: ce}]\n", "missing the key 'description'"),
        ("name: x\ndescription: y\n", "no stages"),
        ("name: x\ndescription: y\nlosses: [ce]\n", "must be a mapping with a 'loss' key"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("name: [unclosed\n", "is not valid YAML"),
    ],
)
def test_bad_recipes_name_the_bad_key_or_value(tmp_path, text, message):
    with pytest.raises(KdnlpError, match=None) as e:
        recipe.load(write(tmp_path, text))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"name: caf\xe9\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff"], ids=["latin-1", "binary"])
def test_a_file_that_is_not_utf8_text_is_named_in_one_line(tmp_path, content):
    p = tmp_path / "r.yaml"
    p.write_bytes(content)
    with pytest.raises(KdnlpError) as e:
        recipe.load(str(p))
    assert f"recipe file '{p}' is not UTF-8 text" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ("losses.cosine.layer=1", "no element 'cosine' here; have: hinton, ce"),
        ("training", "expected key.path=value"),
        ("description.x=1", "inside a value"),
    ],
)
def test_bad_overrides(tmp_path, override, message):
    with pytest.raises(KdnlpError) as e:
        recipe.load(write(tmp_path, BASE), [override])
    assert message in str(e.value)


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(KdnlpError, match="unknown recipe 'tinybrt'; valid: .*hinton"):
        recipe.load("tinybrt")


def test_multi_stage_recipe(tmp_path):
    text = ("name: x\ndescription: y\ntraining: {learning_rate: 1e-4}\nstages:\n"
            "  - {name: one, losses: [{loss: cosine}], training: {num_train_epochs: 2}}\n"
            "  - {name: two, losses: [{loss: hinton}, {loss: ce}]}\n")
    r = recipe.load(write(tmp_path, text), ["stages.two.training.learning_rate=2e-5"])
    assert [s.name for s in r.stages] == ["one", "two"]
    assert r.stage_training(r.stages[0]) == {"learning_rate": 1e-4, "num_train_epochs": 2}
    assert r.stage_training(r.stages[1]) == {"learning_rate": 2e-5}
    assert r.uses_teacher
    assert not recipe.load("finetune").uses_teacher


def test_stage_overrides_reach_a_single_stage_recipe():
    r = recipe.load("hinton", ["stages.distill.training.num_train_epochs=2", "losses.hinton.temperature=3"])
    assert r.stages[0].training == {"num_train_epochs": 2}
    assert {t.name: t.params for t in r.stages[0].losses}["hinton"] == {"temperature": 3.0}
    whole = recipe.load("hinton", ["losses=[{loss: tinybert_prediction, temperature: 2}]"])
    assert [(t.name, t.params) for t in whole.stages[0].losses] == [("tinybert_prediction", {"temperature": 2.0})]


def test_text_stages_take_only_label_free_losses(tmp_path):
    ok = recipe.load("tinybert-narrow")
    assert [s.data for s in ok.stages] == ["text", "task", "task"]
    bad = "name: x\ndescription: y\nstages:\n  - {name: g, data: text, losses: [{loss: ce}]}\n"
    with pytest.raises(KdnlpError, match="stage 'g' trains on unlabeled text, but its loss 'ce' needs labels"):
        recipe.load(write(tmp_path, bad))
    with pytest.raises(KdnlpError, match="unknown stage data 'web'; valid: generated, task, text"):
        recipe.load(write(tmp_path, bad.replace("data: text", "data: web")))


def test_generated_stages_take_a_validated_generator_section_and_no_labels(tmp_path):
    r = recipe.load("data-free", ["stages.distill.generator.losses.info_entropy.weight=2", "training.max_steps=10"])
    (st,) = r.stages
    assert st.data == "generated" and st.generator["combination"] == "exponential"
    assert [(t["name"], t["weight"]) for t in st.generator["losses"]] == [("one_hot", 1.0), ("info_entropy", 2.0),
                                                                         ("diversity", 1.0)]
    assert recipe.parse(r.to_dict()).to_dict() == r.to_dict()  # the resolved recipe reads back the same
    with pytest.raises(KdnlpError, match="stage 'distill' trains on generated inputs, but its loss 'ce' needs labels"):
        recipe.load("data-free", ["losses=[{loss: ce}]"])
    with pytest.raises(KdnlpError, match="unknown generator loss 'hinton'; valid: diversity, info_entropy, one_hot"):
        recipe.load("data-free", ["stages.distill.generator.losses=[{loss: hinton}]"])
    with pytest.raises(KdnlpError, match="bad value 'sum' for stages.distill.generator.combination; valid: exponential, fixed"):
        recipe.load("data-free", ["stages.distill.generator.combination=sum"])
    with pytest.raises(KdnlpError, match="stages.distill.generator: only stages with 'data: generated'"):
        recipe.load("hinton", ["stages.distill.generator.seq_length=16"])


def test_top_level_training_override_wins_over_each_stages_value():
    r = recipe.load("tinybert", ["training.num_train_epochs=1"])
    assert [r.stage_training(s)["num_train_epochs"] for s in r.stages] == [1, 1]
    r = recipe.load("tinybert", ["training.num_train_epochs=1", "stages.prediction.training.num_train_epochs=2"])
    assert [r.stage_training(s)["num_train_epochs"] for s in r.stages] == [1, 2]
    assert recipe.load("tinybert").stage_training(recipe.load("tinybert").stages[0])["num_train_epochs"] == 10

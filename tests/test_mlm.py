"""`kdnlp train-mlm`: a masked LM made from the teacher's backbone, trained on the task's text, used by augment."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import write_sst2
from test_cli import assert_user_error, kdnlp

from kdnlp.tools.augment import augment_glue, augment_texts, load_fill_mask
from kdnlp.tasks.glue.data import get_task, load_split, read_tsv
from kdnlp.core.errors import KdnlpError
from kdnlp.tools.mlm import train_mlm


@pytest.fixture(scope="module")
def trained(tiny_teacher_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlm")
    glue = write_sst2(root / "glue")
    result = train_mlm(str(tiny_teacher_dir), "sst2", root / "mlm", data_dir=str(glue), max_steps=40,
                       learning_rate=2e-3, batch_size=8)
    return {"root": root, "glue": glue, "result": result, "teacher": tiny_teacher_dir}


def test_training_lowers_the_masked_lm_loss_on_the_tasks_text(trained):
    r = trained["result"]
    assert r["texts"] == 32 and r["steps"] == 40
    assert r["loss_after"] < r["loss_before"] - 1.0  # from a random head over 30k words to a few known ones
    assert json.loads((trained["root"] / "mlm" / "mlm.json").read_text())["loss_after"] == r["loss_after"]


def test_the_masked_lm_starts_from_the_teachers_backbone_with_a_tied_decoder(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    still = train_mlm(str(trained["teacher"]), "sst2", tmp_path / "still", data_dir=str(trained["glue"]), max_steps=1,
                      learning_rate=1e-12, batch_size=8)  # one step that moves nothing: the weights it started from
    model, _ = load_fill_mask(still["path"])  # refused if its head were missing
    teacher = AutoModelForSequenceClassification.from_pretrained(trained["teacher"])
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    theirs = teacher.bert.state_dict()
    for name, tensor in model.bert.state_dict().items():
        assert torch.allclose(tensor, theirs[name], atol=1e-6), name


def test_augment_with_the_trained_folder_writes_each_example_and_its_new_texts(trained, tmp_path):
    mlm = str(trained["root"] / "mlm")
    info = augment_glue("sst2", str(trained["glue"]), tmp_path / "aug", mlm, n=4, m=3, max_samples=8)
    ds = load_split(get_task("sst2"), "train", str(trained["glue"]), 8, 42)
    model, tokenizer = load_fill_mask(mlm)
    new = augment_texts(ds["sentence"], model, tokenizer, n=4, m=3, progress=False)
    rows = read_tsv(get_task("sst2"), tmp_path / "aug" / "SST-2" / "train.tsv")
    assert info["examples"] == 8 and info["written"] == len(rows["sentence"]) == 8 + sum(map(len, new)) > 8


def test_bad_settings_are_one_line_errors(trained, tmp_path):
    with pytest.raises(KdnlpError, match="mlm probability"):
        train_mlm(str(trained["teacher"]), "sst2", tmp_path / "x", data_dir=str(trained["glue"]), mlm_probability=1.5)
    assert_user_error(kdnlp("train-mlm", "--teacher", trained["teacher"], "--task", "sst2", "--data-dir",
                            trained["glue"], "--batch-size", "0", "-o", tmp_path / "y"), "batch size 0")
    assert not (tmp_path / "y").exists()

"""Transfer-set distillation: the `transfer` recipe's text stage trains on unlabeled text with the teacher's cached
logits as its only target."""
from __future__ import annotations

import json

import pytest

from conftest import write_sst2

from kdnlp.training import cache
from kdnlp.pipeline import recipe as recipes
from kdnlp.pipeline.runner import run_recipe
from kdnlp.pipeline.seeds import control_recipe

TINY = ["training.num_train_epochs=1", "training.per_device_train_batch_size=8", "student.layers=2"]


def test_the_recipe_distills_soft_targets_on_text_before_the_task():
    rec = recipes.load("transfer")
    transfer, task = rec.stages
    assert transfer.data == "text" and [t.loss for t in transfer.losses] == ["hinton"]
    assert task.data == "task" and sorted(t.loss for t in task.losses) == ["ce", "hinton"]
    assert control_recipe(rec).training["num_train_epochs"] == 3  # the text stage adds nothing to the twin's budget


@pytest.fixture()
def computed(monkeypatch, tmp_path):
    """The datasets whose teacher logits were computed (not read from the cache), one per call; the cache starts
    empty (its own folder), so entries other tests made for the same tiny teacher and data are not read back."""
    monkeypatch.setenv("KDNLP_CACHE", str(tmp_path / "teacher-cache"))
    real, calls = cache.compute, []

    def counted(teacher, ds, *args, **kwargs):
        calls.append(ds)
        return real(teacher, ds, *args, **kwargs)

    monkeypatch.setattr(cache, "compute", counted)
    return calls


def test_the_text_stage_trains_without_labels_and_its_teacher_logits_are_cached(tiny_teacher_dir, tmp_path, computed):
    glue = write_sst2(tmp_path / "glue")
    texts = [f"a {w} story about {v} people" for w in ("dull", "warm", "odd", "sharp") for v in ("old", "young", "kind")]
    (tmp_path / "a.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(reversed(texts[:7])) + "\n")
    kwargs = dict(teacher=str(tiny_teacher_dir), data_dir=str(glue), overrides=TINY)

    first = run_recipe("transfer", "sst2", tmp_path / "r1", text=[str(tmp_path / "a.txt")], **kwargs)
    assert [len(ds) for ds in computed] == [12, 32]  # the text, then the task's train split
    assert "labels" not in computed[0].column_names and "labels" in computed[1].column_names
    stage = first["stages"]["transfer"]
    assert stage["train"]["train_loss"] > 0 and stage["loss"]["formula"] == "1 * hinton(temperature=2.0)"
    run = json.loads((tmp_path / "r1" / "run.json").read_text())
    assert run["train_examples"] == {"text": 12, "task": 32}

    run_recipe("transfer", "sst2", tmp_path / "r2", text=[str(tmp_path / "a.txt")], **kwargs)
    assert len(computed) == 2  # the same teacher and text: both read back
    run_recipe("transfer", "sst2", tmp_path / "r3", text=[str(tmp_path / "b.txt")], **kwargs)
    assert len(computed) == 3 and len(computed[2]) == 7  # another text file is another entry; the task's is still cached


def test_a_student_that_reads_text_differently_leaves_the_teacher_its_own_reading_of_the_text(
        tiny_teacher_dir, tmp_path, minilm_path, computed):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizer

    student = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4,
                                                                   hidden_dim=64, max_position_embeddings=128))
    student.save_pretrained(tmp_path / "student")
    DistilBertTokenizer(vocab_file=f"{minilm_path}/vocab.txt").save_pretrained(tmp_path / "student")
    (tmp_path / "t.txt").write_text("a quiet town\nthe long road home\n")
    run_recipe("transfer", "sst2", tmp_path / "r", teacher=str(tiny_teacher_dir), student=str(tmp_path / "student"),
               data_dir=str(write_sst2(tmp_path / "glue")), text=[str(tmp_path / "t.txt")],
               overrides=["training.max_steps=1", "training.per_device_train_batch_size=8"])
    text = computed[0]
    assert len(text) == 2 and {"teacher_input_ids", "teacher_token_type_ids"} <= set(text.column_names)
    assert "token_type_ids" not in text.column_names  # the student's own reading has none

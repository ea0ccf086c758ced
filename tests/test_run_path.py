"""The task-neutral run path: each model gets its own inputs, a half-precision stage leaves the shared teacher
alone, loss-term parameters are clipped and counted with the model's, seeded and identical across processes
and interruptions."""
from __future__ import annotations

import json

import datasets
import pytest
import torch
from transformers import DataCollatorWithPadding, TrainerCallback, TrainingArguments

from conftest import tiny_classifier
from kdnlp.losses import LOSSES, CompositeLoss, LossContext
from kdnlp.modeling.students import narrow_student
from kdnlp.training.trainer import DistillationTrainer
from test_cli import kdnlp
from test_scale import distill_args, weights
from test_trainer import dataset, make_trainer


def test_a_half_precision_stage_leaves_the_shared_teacher_in_float32(tmp_path, tokenizer):
    trainer, teacher = make_trainer(tmp_path, tokenizer, {"hinton": 1.0}, steps=1, bf16=True)
    trainer.train()
    assert {p.dtype for p in trainer.teacher.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in teacher.parameters()} == {torch.float32}  # the next stage gets it as it was


class _Grads(TrainerCallback):
    """Records the gradients as the optimizer will use them (after clipping)."""

    def __init__(self, params):
        self.params, self.norms = params, []

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        grads = [p.grad for p in self.params if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())


def projection_trainer(tmp_path, tokenizer, max_grad_norm):
    teacher = tiny_classifier(seed=1)
    student = narrow_student(teacher, [2, 4], "truncate", hidden_size=16, num_attention_heads=2)
    ctx = LossContext(2, student.config, teacher.config)
    cls = LOSSES.get("tinybert_hidden")
    loss = CompositeLoss({"tinybert_hidden": (1.0, cls(cls.Config(), ctx))})
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, logging_steps=1,
                             learning_rate=1e-2, report_to="none", use_cpu=True, seed=0, save_strategy="no",
                             max_grad_norm=max_grad_norm)
    trainer = DistillationTrainer(model=student, args=args, loss=loss, teacher=teacher, train_dataset=dataset(),
                                  data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
    grads = _Grads([*student.parameters(), *loss.parameters()])
    trainer.add_callback(grads)
    return trainer, grads


def test_projection_gradients_are_clipped_and_counted_with_the_models(tmp_path, tokenizer):
    free, seen = projection_trainer(tmp_path / "free", tokenizer, max_grad_norm=1e9)
    free.train()
    logged = [h["grad_norm"] for h in free.state.log_history if "grad_norm" in h]
    assert seen.norms and logged == pytest.approx(seen.norms, rel=1e-4)  # the norm counts the projections
    clipped, seen = projection_trainer(tmp_path / "clipped", tokenizer, max_grad_norm=0.01)
    clipped.train()
    assert max(seen.norms) == pytest.approx(0.01, rel=1e-3)  # student and projections clipped together


def test_each_model_reads_its_own_inputs(tmp_path, tokenizer, minilm_path):
    """A student whose tokenizer gives no token_type_ids (DistilBERT's) and a BERT teacher that needs them: the
    teacher gets its own tokenisation (the `teacher_` columns, kept through column removal), the student its."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizer

    from kdnlp.pipeline.runner import PairedCollator, _teacher_reading
    from kdnlp.tasks.kinds import get_problem
    from kdnlp.pipeline.recipe import load

    problem = get_problem("rte")
    raw = datasets.Dataset.from_dict({"sentence1": ["a man sleeps", "it rains"] * 4,
                                      "sentence2": ["someone sleeps", "the sun shines"] * 4, "label": [0, 1] * 4,
                                      "idx": list(range(8))})
    theirs = DistilBertTokenizer(vocab_file=f"{minilm_path}/vocab.txt")
    assert "token_type_ids" not in theirs.model_input_names
    teacher = tiny_classifier(seed=1)
    teacher.save_pretrained(tmp_path / "t")
    tokenizer.save_pretrained(tmp_path / "t")
    own = _teacher_reading(load("hinton"), problem, str(tmp_path / "t"), "student", theirs, raw)
    assert own is not None  # same vocabulary, but not the same inputs
    enc = datasets.concatenate_datasets([problem.encode(raw, theirs, 32),
                                         problem.encode(raw, own, 32, prefix="teacher_")], axis=1)
    student = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4,
                                                                   hidden_dim=64, max_position_embeddings=128))
    seen = []
    teacher.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs), with_kwargs=True)
    ctx = LossContext(2, student.config, teacher.config)
    loss = CompositeLoss({"hinton": (1.0, LOSSES.get("hinton")(LOSSES.get("hinton").Config(), ctx))})
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=1,
                             report_to="none", use_cpu=True, save_strategy="no")
    trainer = DistillationTrainer(model=student, args=args, loss=loss, teacher=teacher, train_dataset=enc,
                                  data_collator=PairedCollator(DataCollatorWithPadding(theirs),
                                                               DataCollatorWithPadding(own)))
    trainer.train()
    (fed,) = seen
    expected = own(list(raw["sentence1"]), list(raw["sentence2"]), padding=True, return_tensors="pt")
    assert set(fed) >= {"input_ids", "token_type_ids", "attention_mask"}
    assert fed["token_type_ids"].sum() > 0  # second sentences are marked for the teacher
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(fed[k].cpu().sort(0).values, expected[k].sort(0).values)  # batch order is shuffled


SECOND_STAGE_PROJECTIONS = """name: two
description: a second stage with projections
student: {layers: 2, hidden_size: 16, init: truncate, intermediate_size: 32}
max_length: 32
training: {num_train_epochs: 1, per_device_train_batch_size: 8, optim: sgd, learning_rate: 0.1, eval_strategy: 'no',
           save_strategy: 'no'}
stages:
  - {name: first, losses: [{loss: hinton}]}
  - {name: second, losses: [{loss: tinybert_hidden}]}
"""


def run_cli(*args) -> None:
    r = kdnlp(*args)
    assert r.returncode == 0, r.stderr[-3000:]


def test_later_stage_projections_are_seeded_and_shared_across_processes(still_teacher_dir, glue_dir, tmp_path):
    """Projections built after an earlier stage trained: the same in 1 and 2 processes (with SGD, so the students
    differ only by float32 rounding: test_scale's two-process test says why), and in a run stopped after its first
    stage and continued later."""
    recipe = tmp_path / "two.yaml"
    recipe.write_text(SECOND_STAGE_PROJECTIONS)
    common = ["--recipe", recipe, "--max-train-samples", "32"]
    run_cli(*distill_args(still_teacher_dir, glue_dir, tmp_path / "p1", *common))
    run_cli(*distill_args(still_teacher_dir, glue_dir, tmp_path / "p2", *common, "--num-processes", "2",
                          "--set", "training.per_device_train_batch_size=4"))
    torch.testing.assert_close(weights(tmp_path / "p2"), weights(tmp_path / "p1"), rtol=1e-4, atol=1e-5)
    run_cli(*distill_args(still_teacher_dir, glue_dir, tmp_path / "split", *common, "--stage", "first"))
    run_cli(*distill_args(still_teacher_dir, glue_dir, tmp_path / "split", *common))
    torch.testing.assert_close(weights(tmp_path / "split"), weights(tmp_path / "p1"), rtol=0, atol=1e-6)
    assert not torch.equal(weights(tmp_path / "p1"), weights(tmp_path / "p1" / "stages" / "first"))
    assert json.loads((tmp_path / "p1" / "metrics.json").read_text())["finished"]

"""The DistillationTrainer contract: frozen teacher outside the student, exact gradient accumulation,
per-term logs, logits-only evaluation, hidden states only when a loss needs them."""
from __future__ import annotations

import datasets
import pytest
import torch
from transformers import DataCollatorWithPadding, TrainingArguments

from conftest import tiny_classifier
from kdnlp.losses import LOSSES, CompositeLoss, LossContext
from kdnlp.modeling.students import init_student
from kdnlp.training.trainer import DistillationTrainer


def dataset(n: int = 12):
    g = torch.Generator().manual_seed(0)
    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    for i in range(n):
        length = 4 + i % 5
        rows["input_ids"].append(torch.randint(1000, 3000, (length,), generator=g).tolist())
        rows["attention_mask"].append([1] * length)
        rows["labels"].append(i % 2)
    return datasets.Dataset.from_dict(rows)


def composite(model, teacher, terms):
    ctx = LossContext(2, model.config, teacher.config)
    return CompositeLoss({n: (w, LOSSES.get(n)(LOSSES.get(n).Config(), ctx)) for n, w in terms.items()})


def make_trainer(tmp_path, tokenizer, terms, batch=4, accumulation=1, steps=2, teacher_cache=False, train_batches=None,
                 attention_dropout=0.1, **kw):
    teacher = tiny_classifier(seed=1, attention_dropout=attention_dropout)
    student = init_student(teacher, [1, 4])
    torch.manual_seed(3)
    for p in student.parameters():  # a student that differs from the teacher, so every term is non-zero
        p.data.add_(0.05 * torch.randn_like(p))
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
        max_steps=steps, learning_rate=1e-2, logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=True, seed=0, warmup_steps=0, lr_scheduler_type="constant", **kw,
    )
    return DistillationTrainer(
        model=student, args=args, loss=composite(student, teacher, terms), teacher=teacher,
        train_dataset=dataset(), eval_dataset=dataset(6), data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer, teacher_cache=teacher_cache, train_batches=train_batches,
    ), teacher


def test_per_term_losses_are_logged(tmp_path, tokenizer):
    trainer, _ = make_trainer(tmp_path, tokenizer, {"hinton": 0.5, "ce": 0.5, "cosine": 1.0})
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all({"loss/hinton", "loss/ce", "loss/cosine"} <= set(h) for h in logged)
    assert all(h["loss/hinton"] > 0 and h["loss/cosine"] > 0 for h in logged)


def test_evaluation_returns_logits_only_and_hidden_states_only_when_needed(tmp_path, tokenizer):
    inputs = DataCollatorWithPadding(tokenizer)([dataset(2)[i] for i in range(2)])
    trainer, _ = make_trainer(tmp_path, tokenizer, {"hinton": 1.0})
    assert trainer._forward(trainer.model, inputs).hidden_states is None
    out = trainer.predict(dataset(6))
    assert isinstance(out.predictions, __import__("numpy").ndarray) and out.predictions.shape == (6, 2)
    cos, _ = make_trainer(tmp_path / "c", tokenizer, {"cosine": 1.0})
    assert len(cos._forward(cos.model, inputs).hidden_states) == 3
    assert cos.predict(dataset(6)).predictions.shape == (6, 2)


def test_a_loss_needing_a_teacher_without_one_is_an_error(tmp_path, tokenizer):
    from kdnlp.core.errors import KdnlpError

    student = tiny_classifier()
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(KdnlpError, match="needs a teacher"):
        DistillationTrainer(model=student, args=args, loss=composite(student, student, {"hinton": 1.0}))


@pytest.mark.parametrize("name", ["tinybert_hidden", "fitnets", "crd", "vid"])
def test_projections_train_with_the_student_are_checkpointed_and_restored_but_never_exported(tmp_path, tokenizer, name):
    """Every term with parameters (projections, regressors, heads, variances), on a narrower student."""
    from kdnlp.modeling.students import narrow_student
    from kdnlp.training.trainer import LOSS_STATE

    teacher = tiny_classifier(seed=1)
    student = narrow_student(teacher, [2, 4], "truncate", hidden_size=16, num_attention_heads=2)
    ctx = LossContext(2, student.config, teacher.config)
    cls = LOSSES.get(name)
    loss = CompositeLoss({name: (1.0, cls(cls.Config(), ctx))})
    before = [p.detach().clone() for p in loss.parameters()]

    def trainer(steps, model, loss):
        args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=steps,
                                 save_steps=2, learning_rate=1e-2, report_to="none", use_cpu=True, seed=0)
        return DistillationTrainer(model=model, args=args, loss=loss, teacher=teacher, train_dataset=dataset(),
                                   data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)

    first = trainer(2, student, loss)
    first.train()
    optimised = {id(p) for g in first.optimizer.param_groups for p in g["params"]}
    assert {id(p) for p in loss.parameters()} <= optimised
    assert all(not torch.equal(a, b) for a, b in zip(before, loss.parameters()))
    checkpoint = tmp_path / "out" / "checkpoint-2"
    saved = torch.load(checkpoint / LOSS_STATE)
    assert all(torch.equal(saved[k], v) for k, v in loss.state_dict().items())
    from safetensors.torch import load_file

    assert set(load_file(str(checkpoint / "model.safetensors"))) <= set(student.state_dict())  # no loss parameter

    # resuming from step 2 gives the projections (and student) of an uninterrupted 3-step run
    def fresh():
        model = narrow_student(teacher, [2, 4], "truncate", hidden_size=16, num_attention_heads=2)
        torch.manual_seed(5)
        return model, CompositeLoss({name: (1.0, cls(cls.Config(), ctx))})

    straight_model, straight_loss = fresh()
    trainer(3, straight_model, straight_loss).train()
    resumed_model, resumed_loss = fresh()
    trainer(3, resumed_model, resumed_loss).train(resume_from_checkpoint=str(checkpoint))
    for a, b in zip([*straight_loss.parameters(), *straight_model.parameters()],
                    [*resumed_loss.parameters(), *resumed_model.parameters()]):
        torch.testing.assert_close(a, b)

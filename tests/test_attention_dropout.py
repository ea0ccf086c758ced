"""The attention terms see the student's attention before dropout.

In training mode a model returns its attention probabilities after attention dropout (rows no longer sum to 1), so a
term that matched them would not be zero for a student identical to its teacher, and would be minimised by a flattened
copy of the teacher's attention. kdnlp recomputes the attention from the captured queries and keys
(kdnlp.losses.attention): these tests run the trainer's own path with attention dropout on.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import tiny_classifier
from test_trainer import dataset
from transformers import DataCollatorWithPadding, TrainingArguments

from kdnlp.losses import LOSSES, CompositeLoss, LossContext
from kdnlp.training.trainer import DistillationTrainer

TERMS = [("tinybert_attention", {}), ("tinybert_attention", {"form": "probs"}), ("minilm", {}),
         ("minilm", {"version": "v2"})]


def trainer(tmp_path, tokenizer, student, teacher, terms: dict[str, tuple[str, dict]]):
    """A DistillationTrainer whose loss is the given terms (key: (registered name, config)), each of weight 1."""
    c = LossContext(2, student.config, teacher.config)
    loss = CompositeLoss({key: (1.0, LOSSES.get(name)(LOSSES.get(name).Config(**params), c))
                          for key, (name, params) in terms.items()})
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True, save_strategy="no")
    return DistillationTrainer(model=student, args=args, loss=loss, teacher=teacher, train_dataset=dataset(),
                               data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)


def batch(tokenizer, rows=(0, 1, 2, 3)):
    ds = dataset()
    return DataCollatorWithPadding(tokenizer)([ds[i] for i in rows])  # lengths 4..7: padding in the batch


@pytest.mark.parametrize("name, params", TERMS)
def test_a_student_identical_to_its_teacher_scores_exactly_zero_in_training_mode(tmp_path, tokenizer, name, params):
    teacher = tiny_classifier(seed=1, layers=1, attention_dropout=0.3)
    student = copy.deepcopy(teacher).train()
    t = trainer(tmp_path, tokenizer, student, teacher, {name: (name, params)})
    inputs = batch(tokenizer)
    torch.manual_seed(0)
    _, terms = t.distill_loss(t._forward(student, inputs), t.teacher_outputs(inputs), inputs)
    assert terms[name].item() == 0.0
    # what the model returns is after dropout, and differs from the teacher's: a term reading it could not be 0
    for model in (student, teacher):
        model.set_attn_implementation("eager")
    with torch.no_grad():
        torch.manual_seed(0)
        dropped = student(**inputs, output_attentions=True).attentions[0]
        clean = teacher(**inputs, output_attentions=True).attentions[0]
    assert (dropped - clean).abs().max() > 0.05


def projected(model, hidden, layer):
    """Layer `layer`'s queries, keys and values (batch, heads, seq, d), recomputed by hand from the hidden states it
    read, without the capture hooks."""
    attn = model.bert.encoder.layer[layer - 1].attention.self
    heads = model.config.num_attention_heads
    b, n, width = hidden[layer - 1].shape
    return [f(hidden[layer - 1]).view(b, n, heads, width // heads).transpose(1, 2)
            for f in (attn.query, attn.key, attn.value)]


def relation(a, b):
    return a @ b.transpose(-1, -2) / math.sqrt(a.shape[-1])


def kl(p_scores, q_scores):
    p, q = p_scores.softmax(-1), q_scores.softmax(-1)
    return (p * (p.log() - q.log())).sum(-1).mean().item()


def test_terms_agree_with_an_independent_computation_with_dropout_on(tmp_path, tokenizer):
    """A 2-layer student in training mode against a 4-layer teacher: each attention term equals the same quantity
    computed by hand from the hidden states of the same forward pass, example by example over the real tokens."""
    teacher = tiny_classifier(seed=1, attention_dropout=0.3)
    student = tiny_classifier(seed=2, layers=2, attention_dropout=0.3).train()
    t = trainer(tmp_path, tokenizer, student, teacher, {
        "hidden": ("tinybert_hidden", {}), "scores": ("tinybert_attention", {}),
        "probs": ("tinybert_attention", {"form": "probs"}), "minilm": ("minilm", {})})
    inputs = batch(tokenizer)
    torch.manual_seed(0)
    s_out = t._forward(student, inputs)
    t_out = t.teacher_outputs(inputs)
    _, got = t.distill_loss(s_out, t_out, inputs)
    with torch.no_grad():
        s_qkv = {layer: projected(student, s_out.hidden_states, layer) for layer in (1, 2)}
        t_qkv = {layer: projected(teacher, t_out.hidden_states, layer) for layer in (2, 4)}
    want = dict.fromkeys(("scores", "probs", "minilm"), 0.0)
    lengths = inputs["attention_mask"].sum(1).tolist()
    for i, n in enumerate(lengths):
        real = lambda x: x[i, :, :n]  # noqa: E731
        for s, tl in ((1, 2), (2, 4)):  # the uniform map
            a, b = (relation(real(x[0]), real(x[1])) for x in (s_qkv[s], t_qkv[tl]))
            want["scores"] += ((a - b) ** 2).mean().item() / 2
            want["probs"] += ((a.softmax(-1) - b.softmax(-1)) ** 2).mean().item() / 2
        (qs, ks, vs), (qt, kt, vt) = ([real(x) for x in qkv[layer]] for qkv, layer in ((s_qkv, 2), (t_qkv, 4)))
        want["minilm"] += kl(relation(qt, kt), relation(qs, ks)) + kl(relation(vt, vt), relation(vs, vs))
    for key, value in want.items():
        assert got[key].item() == pytest.approx(value / len(lengths), rel=1e-4), key

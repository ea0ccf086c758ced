"""MiniLM's attention and relation KLs: a hand computation, real tiny models read through the capture hooks (zero
for the teacher itself, positive otherwise, gradients to the student only, any widths), the teacher layer option,
and the errors for pairs it cannot compare."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from conftest import tiny_classifier
from kdnlp.modeling.capture import capture, projections
from kdnlp.core.errors import KdnlpError
from kdnlp.losses import LOSSES, LossContext
from kdnlp.modeling.students import init_student, narrow_student
from test_trainer import make_trainer


def make(student_config, teacher_config, **options):
    cls = LOSSES.get("minilm")
    return cls(cls.Config(**options), LossContext(2, student_config, teacher_config))


def softmax(row):
    e = [math.exp(v - max(row)) for v in row]
    return [v / sum(e) for v in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def hand_relation_kl(xs, xt, heads, length, ys=None, yt=None):
    """Mean over heads and the first `length` queries of KL over the first `length` keys, one example, lists: of the
    relations softmax(x_i . y_j / sqrt(d)) (y = x by default; x = Q, y = K: the attention)."""
    def rows(x, y, a):
        d = len(x[0]) // heads
        u, v = ([r[a * d:(a + 1) * d] for r in z[:length]] for z in (x, y))
        return [softmax([sum(p * q for p, q in zip(u[i], v[j])) / math.sqrt(d) for j in range(length)])
                for i in range(length)]

    total = sum(kl(t, s) for a in range(heads) for t, s in zip(rows(xt, yt or xt, a), rows(xs, ys or xs, a)))
    return total / (heads * length)


def hand_outputs(seed, hidden):
    g = torch.Generator().manual_seed(seed)
    return SimpleNamespace(qkv=(tuple(torch.randn(1, 3, hidden, generator=g) for _ in range(3)),))


def test_v1_and_v2_match_a_hand_computation_on_small_tensors():
    s, t = hand_outputs(0, 4), hand_outputs(1, 6)  # student width 4, teacher 6, 2 heads each
    batch = {"attention_mask": torch.tensor([[1, 1, 0]])}  # key 3 is padding
    cfg = lambda hidden: SimpleNamespace(model_type="bert", hidden_size=hidden, num_attention_heads=2,  # noqa: E731
                                         num_hidden_layers=1)
    (qs, ks, vs), (qt, kt, vt) = ([x[0].tolist() for x in o.qkv[0]] for o in (s, t))
    attention = hand_relation_kl(qs, qt, 2, 2, ks, kt)
    values = hand_relation_kl(vs, vt, 2, 2)
    v1 = make(cfg(4), cfg(6))(s, t, batch).item()
    assert v1 == pytest.approx(attention + values, rel=1e-5)
    v2 = make(cfg(4), cfg(6), version="v2", num_relation_heads=1)(s, t, batch).item()
    expected = sum(hand_relation_kl(a[0].tolist(), b[0].tolist(), 1, 2) for a, b in zip(s.qkv[0], t.qkv[0]))
    assert v2 == pytest.approx(expected, rel=1e-5)


def run(model, batch, grad=False):
    """The model's outputs as the trainer gives them to the losses, Q/K/V through the capture hooks."""
    with torch.set_grad_enabled(grad), capture(model) as qkv:
        out = model(**batch)
    return SimpleNamespace(logits=out.logits, qkv=tuple(map(tuple, qkv)))


def pair(student, teacher):
    """Both models in eval mode (no dropout: the values compared are deterministic), and a padded batch."""
    student.eval()
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 6 + [0]])
    return student, teacher, {"input_ids": torch.randint(1000, 3000, (3, 7), generator=g), "attention_mask": mask}


@pytest.mark.parametrize("options", [{}, {"version": "v2", "num_relation_heads": 2}])
def test_zero_for_the_teacher_itself_positive_for_a_student_with_gradients_to_it_only(options):
    student, teacher, batch = pair(init_student(tiny_classifier(seed=1), [1, 4]), tiny_classifier(seed=1))
    loss = make(student.config, teacher.config, **options)
    assert loss(run(teacher, batch), run(teacher, batch), batch).item() == pytest.approx(0.0, abs=1e-6)
    value = loss(run(student, batch, grad=True), run(teacher, batch), batch)
    assert value.item() > 0
    value.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.bert.encoder.layer[-1].attention.self.value.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in student.parameters() if p.grad is not None)


@pytest.mark.parametrize("options", [{}, {"version": "v2"}])
def test_students_of_another_width_and_a_batch_is_the_mean_of_its_examples(options):
    """Teacher hidden 32 with 4 heads; student hidden 16 (v1: 4 heads, v2: 2 heads and 4 relation heads)."""
    teacher = tiny_classifier(seed=1)
    heads = 4 if not options else 2
    student, teacher, batch = pair(narrow_student(teacher, [1, 4], hidden_size=16, num_attention_heads=heads), teacher)
    loss = make(student.config, teacher.config, **options)
    whole = loss(run(student, batch), run(teacher, batch), batch).item()
    assert whole > 0
    parts = []
    for rows in (slice(0, 1), slice(1, 3)):
        sub = {k: v[rows] for k, v in batch.items()}
        parts.append(loss(run(student, sub), run(teacher, sub), sub).item() * (rows.stop - rows.start))
    assert whole == pytest.approx(sum(parts) / 3, rel=1e-4, abs=1e-7)  # near-equal maps: the KL's cancellation


def test_teacher_layer_picks_the_layer_the_student_learns_from():
    """A student made of the teacher's two bottom layers matches teacher layer 2 exactly, not the last one."""
    teacher = tiny_classifier(seed=1)
    student, teacher, batch = pair(init_student(teacher, [1, 2]), teacher)
    s, t = run(student, batch), run(teacher, batch)
    assert make(student.config, teacher.config, teacher_layer=2)(s, t, batch).item() == pytest.approx(0.0, abs=1e-6)
    assert make(student.config, teacher.config)(s, t, batch).item() > 1e-5  # random weights: near-uniform maps


@pytest.mark.parametrize("options, student, message", [
    ({}, {"heads": 2}, "student has 2 heads and the teacher 4"),
    ({"teacher_layer": 9}, {}, "bad value 9 for minilm teacher_layer: the teacher has layers 1..4"),
    ({"version": "v2", "num_relation_heads": 3}, {}, "num_relation_heads 3 does not divide the student's hidden size 32"),
    ({"num_relation_heads": 2}, {}, "num_relation_heads is for version v2"),
])
def test_pairs_it_cannot_compare_are_one_line_errors(options, student, message):
    with pytest.raises(KdnlpError, match=message):
        make(tiny_classifier(**student).config, tiny_classifier().config, **options)


def test_capture_finds_each_family_and_leaves_no_hooks():
    from transformers import DistilBertConfig, DistilBertModel

    distil = DistilBertModel(DistilBertConfig(vocab_size=100, dim=16, n_layers=2, n_heads=2, hidden_dim=32))
    assert [tuple(type(m).__name__ for m in t) for t in projections(distil)] == [("Linear",) * 3] * 2
    model = tiny_classifier()
    with capture(model) as qkv:
        model(input_ids=torch.tensor([[5, 6, 7]]))
    assert len(qkv) == 4 and all(x.shape == (1, 3, 32) for layer in qkv for x in layer)
    assert not any(m._forward_hooks for t in projections(model) for m in t)


def test_the_trainer_feeds_minilm_through_the_hooks(tmp_path, tokenizer):
    trainer, teacher = make_trainer(tmp_path, tokenizer, {"minilm": 1.0}, steps=2)
    before = [p.clone() for p in trainer.model.parameters()]
    trainer.train()
    logged = [h["loss/minilm"] for h in trainer.state.log_history if "loss/minilm" in h]
    assert len(logged) == 2 and all(v > 0 for v in logged)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert not any(m._forward_hooks for model in (trainer.model, teacher) for t in projections(model) for m in t)

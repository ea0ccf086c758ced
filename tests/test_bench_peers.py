"""bench/peers.py: the TextBrewer objective built from a kdnlp loss trains the student as kdnlp's does, so the
benchmark compares the same work."""
from __future__ import annotations

import dataclasses
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, tiny_classifier, tiny_config

from kdnlp.losses import CompositeLoss, LossContext
from kdnlp.losses import LossTerm
from kdnlp.training.trainer import Outputs

pytest.importorskip("textbrewer", reason="TextBrewer (the `bench` extra: pip install textbrewer==0.2.1) is not installed")
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402


def _distiller(loss, teacher, student, tmp_path):
    from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig

    config, hard = peers.distillation_config(loss)
    inter = bool(config["intermediate_matches"])
    return GeneralDistiller(TrainingConfig(device="cpu", output_dir=str(tmp_path), log_dir=None),
                            DistillationConfig(**config), teacher, student,
                            peers.adaptor(inter, False), peers.adaptor(inter, hard))


@pytest.mark.parametrize("terms", [
    [LossTerm("hinton", 1.0, "hinton", {"temperature": 4.0})],
    [LossTerm("hinton", 0.5, "hinton", {"temperature": 2.0}), LossTerm("ce", 0.5, "ce")],
])
def test_soft_targets_give_kdnlps_gradient(terms, tmp_path):
    from textbrewer.distiller_utils import post_adaptor

    ctx = LossContext(2, tiny_config(layers=2), tiny_config())
    loss = CompositeLoss.build(terms, ctx)
    distiller = _distiller(loss, tiny_classifier(), tiny_classifier(layers=2), tmp_path)
    torch.manual_seed(0)
    student = (3 * torch.randn(8, 2)).requires_grad_()
    teacher, labels = 3 * torch.randn(8, 2), torch.randint(0, 2, (8,))
    batch = {"labels": labels, "attention_mask": torch.ones(8, 5, dtype=torch.long)}
    ours, _ = loss(Outputs(logits=student), Outputs(logits=teacher), batch)
    out_s = SimpleNamespace(logits=student, loss=F.cross_entropy(student, labels))  # what the model returns
    theirs, _ = distiller.compute_loss(post_adaptor(distiller.adaptor_S(batch, out_s)),
                                       post_adaptor(distiller.adaptor_T(batch, SimpleNamespace(logits=teacher))))
    # soft cross-entropy and KL differ by the teacher's entropy: the values differ, the gradients must not
    grad_ours, = torch.autograd.grad(ours, student)
    grad_theirs, = torch.autograd.grad(theirs, student)
    assert not torch.allclose(ours, theirs)
    torch.testing.assert_close(grad_theirs, grad_ours)


def test_tinybert_stage_one_matches_are_kdnlps(tmp_path):
    """TextBrewer reads the attention probabilities the model returns (eager attention; in eval mode, before any
    dropout), so it matches kdnlp's `form: probs`, which recomputes them from the captured queries and keys."""
    from textbrewer.distiller_utils import post_adaptor

    from kdnlp.pipeline import recipe as recipes
    from kdnlp.modeling.capture import capture

    teacher, student = tiny_classifier(), tiny_classifier(seed=1, layers=2)
    for model in (teacher, student):
        model.set_attn_implementation("eager")
    stage = recipes.load("tinybert").stages[0]
    terms = [dataclasses.replace(t, params={**t.params, "form": "probs"}) if t.loss == "tinybert_attention" else t
             for t in stage.losses]
    loss = CompositeLoss.build(terms, LossContext(2, student.config, teacher.config))
    distiller = _distiller(loss, teacher, student, tmp_path)
    matches = distiller.d_config.intermediate_matches
    assert [(m.feature, m.layer_S, m.layer_T) for m in matches] == [
        ("hidden", 0, 0), ("hidden", 1, 2), ("hidden", 2, 4), ("attention", 0, 1), ("attention", 1, 3)]
    torch.manual_seed(0)
    batch = {"input_ids": torch.randint(0, 1000, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long)}
    kw = {"output_hidden_states": True, "output_attentions": True}
    with torch.no_grad(), capture(teacher) as qkv_t, capture(student) as qkv_s:
        out_t, out_s = teacher(**batch, **kw), student(**batch, **kw)
    ours, _ = loss(Outputs(logits=out_s.logits, hidden_states=out_s.hidden_states, qkv=tuple(map(tuple, qkv_s))),
                   Outputs(logits=out_t.logits, hidden_states=out_t.hidden_states, qkv=tuple(map(tuple, qkv_t))), batch)
    theirs, _ = distiller.compute_loss(post_adaptor(distiller.adaptor_S(batch, out_s)),
                                       post_adaptor(distiller.adaptor_T(batch, out_t)))
    assert ours > 0
    torch.testing.assert_close(theirs, ours)  # no padding: per-token and per-example means agree


def test_projection_where_widths_differ():
    ctx = LossContext(2, tiny_config(layers=2, hidden=16), tiny_config())
    loss = CompositeLoss.build([LossTerm("tinybert_embedding", 1.0, "emb"),
                                LossTerm("tinybert_hidden", 1.0, "hid", {"layers": "uniform"})], ctx)
    config, _ = peers.distillation_config(loss)
    assert [m["proj"] for m in config["intermediate_matches"]] == [["linear", 16, 32]] * 3


def test_term_without_equivalent_is_refused():
    ctx = LossContext(2, tiny_config(layers=2), tiny_config())
    with pytest.raises(ValueError, match="pkd"):
        peers.distillation_config(CompositeLoss.build([LossTerm("pkd", 1.0, "pkd")], ctx))

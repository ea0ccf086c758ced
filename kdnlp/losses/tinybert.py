"""TinyBERT's losses (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language Understanding").

Intermediate-layer distillation matches, layer by mapped layer (kdnlp.modeling.layers, TinyBERT's map is `uniform`):
- `tinybert_embedding`: MSE(E_S W_e, E_T) on the embedding outputs;
- `tinybert_hidden`: MSE(H_S W_h, H_T) on each mapped layer's output;
- `tinybert_attention`: MSE between the attention matrices of mapped layers.
Prediction-layer distillation (`tinybert_prediction`) matches the teacher's temperature-softened outputs.

Choices (the paper leaves them open or the released code differs):
- Projections W are learnable linear maps from the student's hidden size to the teacher's, used only when
  the sizes differ; `tinybert_hidden` has one per mapped layer, or one shared (`shared_projection: true`).
  They start as the identity onto the teacher's first units (`projection`), TinyBERT's at random.
  They are trained with the student, saved with each checkpoint, and never part of the exported student.
- Padding is left out of every MSE (TinyBERT's code averages over padded positions too), and each example
  weighs the same (mean over its real tokens, then over examples), so gradient accumulation and multi-process
  batches give exactly the one-batch loss.
- Attention (`form`): TinyBERT's code matches the pre-softmax scores Q K^T / sqrt(d) with masked entries zeroed;
  `scores`, the default, does that over real (query, key) pairs; `probs` matches the softmax probabilities over the
  real keys (bounded, as MiniLM's distributions are). Either is recomputed from the captured queries and keys
  (kdnlp.losses.attention): the attention a model returns in training mode is after dropout. With equal head counts
  each head is matched to its twin and the MSE is averaged over heads; with different counts, the head-averaged
  maps are matched (a note is printed).
- Prediction: TinyBERT's soft cross-entropy -sum softmax(t/T) log softmax(s/T) equals KL(t||s) plus the
  teacher's entropy, a constant for the student: kdnlp reports the KL (same gradients, 0 at a perfect
  match), with no T^2 factor, as in TinyBERT. Regression tasks: MSE to the teacher's predictions.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from kdnlp.losses import attention
from kdnlp.losses.base import LOSSES, DistillationLoss, MappedLoss
from kdnlp.losses.hinton import HintonConfig, item_mask, kl_at_temperature

PAPER = "Jiao et al. TinyBERT: Distilling BERT for Natural Language Understanding. Findings of EMNLP 2020. arXiv:1909.10351"


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over examples of the MSE over each example's real tokens; inputs (batch, seq, hidden), mask (batch, seq).
    Each example weighs the same whatever its length, so the value of a batch is the mean of its examples' values
    (exact under gradient accumulation and multi-process splits of the batch)."""
    mask = mask.to(torch.float32).unsqueeze(-1)
    sq = (student.float() - teacher.float()).pow(2) * mask
    return (sq.sum((1, 2)) / (mask.sum((1, 2)) * student.shape[-1]).clamp(min=1.0)).mean()


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between attention maps (batch, heads, seq, seq) over (query, key) pairs of real tokens, averaged over
    heads, then over examples; when head counts differ, between the head-averaged maps."""
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    m = mask.to(torch.float32)
    pairs = (m.unsqueeze(-1) * m.unsqueeze(-2)).unsqueeze(1)  # (batch, 1, seq, seq)
    sq = (student.float() - teacher.float()).pow(2) * pairs
    return (sq.sum((1, 2, 3)) / (pairs.sum((1, 2, 3)) * student.shape[1]).clamp(min=1.0)).mean()


def projection(student_size: int, teacher_size: int) -> nn.Module:
    """A learnable map from the student's hidden size to the teacher's (none for equal sizes), started as the identity
    onto the teacher's first `student_size` units (zeros elsewhere, no bias). A truncated student's units are those
    units of the teacher (kdnlp.modeling.students), so each is first compared with the unit it was cut from, and the student's
    features stay where its truncated pooler, classifier and upper layers read them. From a random start (TinyBERT's
    students have a fresh head anyway) the intermediate stages are free to turn the student's features away from the
    head they never train."""
    if student_size == teacher_size:
        return nn.Identity()
    proj = nn.Linear(student_size, teacher_size)
    with torch.no_grad():
        proj.weight.copy_(torch.eye(teacher_size, student_size))
        proj.bias.zero_()
    return proj


@dataclass
class EmbeddingConfig:
    pass


@LOSSES.register("tinybert_embedding")
class EmbeddingLoss(DistillationLoss):
    name = "tinybert_embedding"
    paper = PAPER
    Config = EmbeddingConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.proj = projection(ctx.student_config.hidden_size, ctx.teacher_config.hidden_size)

    def forward(self, student_out, teacher_out, batch):
        return masked_mse(self.proj(student_out.hidden_states[0]), teacher_out.hidden_states[0], batch["attention_mask"])


@dataclass
class HiddenConfig:
    layers: str | list[int] = "uniform"
    shared_projection: bool = False


@LOSSES.register("tinybert_hidden")
class HiddenLoss(MappedLoss):
    name = "tinybert_hidden"
    paper = PAPER
    Config = HiddenConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        sizes = (ctx.student_config.hidden_size, ctx.teacher_config.hidden_size)
        count = 1 if config.shared_projection else len(self.pairs)
        self.projs = nn.ModuleList(projection(*sizes) for _ in range(count))

    def forward(self, student_out, teacher_out, batch):
        mask = batch["attention_mask"]
        losses = [
            masked_mse(self.projs[i % len(self.projs)](student_out.hidden_states[s]), teacher_out.hidden_states[t], mask)
            for i, (s, t) in enumerate(self.pairs)
        ]
        return torch.stack(losses).mean()


@dataclass
class AttentionConfig:
    layers: str | list[int] = "uniform"
    form: Literal["scores", "probs"] = "scores"  # TinyBERT's code: scores


@LOSSES.register("tinybert_attention")
class AttentionLoss(MappedLoss):
    name = "tinybert_attention"
    paper = PAPER
    Config = AttentionConfig
    needs = frozenset({"qkv"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        for c in (ctx.student_config, ctx.teacher_config):
            attention.check_supported(c, self.name)
        self.heads = ctx.student_config.num_attention_heads, ctx.teacher_config.num_attention_heads
        if self.heads[0] != self.heads[1]:
            print(f"kdnlp: student has {self.heads[0]} attention heads, teacher {self.heads[1]}: matching head-averaged "
                  "maps", file=sys.stderr)

    def maps(self, qkv, count: int, mask: torch.Tensor) -> torch.Tensor:
        s = attention.scores(qkv[0], qkv[1], count)
        return s if self.config.form == "scores" else attention.log_softmax(s, mask).exp()

    def forward(self, student_out, teacher_out, batch):
        mask = batch["attention_mask"]
        losses = [attention_mse(self.maps(student_out.qkv[s - 1], self.heads[0], mask),
                                self.maps(teacher_out.qkv[t - 1], self.heads[1], mask), mask) for s, t in self.pairs]
        return torch.stack(losses).mean()


@dataclass
class PredictionConfig(HintonConfig):
    temperature: float = 1.0  # TinyBERT's default


@LOSSES.register("tinybert_prediction")
class PredictionLoss(DistillationLoss):
    name = "tinybert_prediction"
    paper = PAPER
    Config = PredictionConfig

    def forward(self, student_out, teacher_out, batch):
        if self.ctx.regression:
            return F.mse_loss(student_out.logits.float(), teacher_out.logits.float())
        return kl_at_temperature(student_out.logits, teacher_out.logits, self.config.temperature, item_mask(batch))

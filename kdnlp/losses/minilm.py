"""MiniLM's deep self-attention distillation (Wang et al. 2020; v2: Wang et al. 2021).

Only the last student layer learns, from one teacher layer (the last by default, `teacher_layer` to pick another:
MiniLMv2 takes an upper-middle layer of large teachers), so there is no layer map, and everything compared is a
(seq x seq) distribution per head and query, so there is no projection and the widths may differ.

- v1: KL(teacher || student) between the self-attention distributions softmax(Q_a K_a^T / sqrt(d_a)) of each head a
  (recomputed from the captured queries and keys, kdnlp.losses.attention: a model's returned attention is after
  dropout in training mode), plus KL between the value relations softmax(V_a V_a^T / sqrt(d_a)). Heads are matched
  one to one, so teacher and student must have the same number of heads (an error says so otherwise).
- v2 (`version: v2`): the queries, keys and values of all heads, concatenated, are split into `num_relation_heads`
  relation heads (the same count for both models, whatever their own head counts), and the term is the sum of the
  KLs of the Q-Q, K-K and V-V relations. `num_relation_heads` defaults to the teacher's attention head count.

Each KL is taken per (head, real query) over the real keys, averaged over heads and the example's real queries,
then over examples: a batch's value is the mean of its examples' values. Q, K and V come from kdnlp.modeling.capture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.layers import num_layers
from kdnlp.losses import attention
from kdnlp.losses.base import LOSSES, DistillationLoss

PAPER = ("Wang et al. MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained "
         "Transformers. NeurIPS 2020. arXiv:2002.10957; Wang et al. MiniLMv2: Multi-Head Self-Attention Relation "
         "Distillation for Compressing Pretrained Transformers. Findings of ACL 2021. arXiv:2012.15828")


def distribution_kl(log_t: torch.Tensor, log_s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over examples of the mean over heads and real queries of KL(t || s) over the real keys; the inputs are
    log-probabilities (batch, heads, seq, seq), `mask` is the attention mask (batch, seq)."""
    m = mask.to(torch.float32)
    keys = m.bool()[:, None, None, :]
    kl = torch.where(keys, log_t.exp() * (log_t - log_s), 0.0).sum(-1)  # (batch, heads, queries)
    return ((kl * m[:, None, :]).sum((1, 2)) / (m.sum(1) * kl.shape[1]).clamp(min=1.0)).mean()


def relation(a: torch.Tensor, b: torch.Tensor, heads: int, mask: torch.Tensor) -> torch.Tensor:
    """log softmax(A_a B_a^T / sqrt(d_a)) over the real keys for each of `heads` slices of a, b (batch, seq, width):
    (batch, heads, seq, seq). With a = Q, b = K it is the self-attention; with a = b, a relation."""
    return attention.log_softmax(attention.scores(a, b, heads), mask)


def relation_kl(student: torch.Tensor, teacher: torch.Tensor, heads: int, mask: torch.Tensor) -> torch.Tensor:
    return distribution_kl(relation(teacher, teacher, heads, mask), relation(student, student, heads, mask), mask)


@dataclass
class MiniLMConfig:
    version: Literal["v1", "v2"] = "v1"
    teacher_layer: int | None = None  # 1..N; None: the teacher's last layer
    num_relation_heads: int | None = None  # v2 only; None: the teacher's attention head count

    def validate(self, where: str) -> None:
        if self.teacher_layer is not None and self.teacher_layer < 1:
            raise KdnlpError(f"bad value {self.teacher_layer} for {where}.teacher_layer: layers count from 1")
        if self.num_relation_heads is not None and self.version != "v2":
            raise KdnlpError(f"{where}.num_relation_heads is for version v2; version is {self.version}")
        if self.num_relation_heads is not None and self.num_relation_heads < 1:
            raise KdnlpError(f"bad value {self.num_relation_heads} for {where}.num_relation_heads: must be at least 1")


@LOSSES.register("minilm")
class MiniLMLoss(DistillationLoss):
    name = "minilm"
    paper = PAPER
    Config = MiniLMConfig
    needs = frozenset({"qkv"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        config.validate("minilm")
        s, t = ctx.student_config, ctx.teacher_config
        for c in (s, t):
            attention.check_supported(c, self.name)
        depth = num_layers(t)
        self.layer = config.teacher_layer or depth
        if self.layer > depth:
            raise KdnlpError(f"bad value {self.layer} for minilm teacher_layer: the teacher has layers 1..{depth}")
        if config.version == "v1":
            if s.num_attention_heads != t.num_attention_heads:
                raise KdnlpError(
                    f"minilm v1 matches attention heads one to one, but the student has {s.num_attention_heads} heads "
                    f"and the teacher {t.num_attention_heads}; use version: v2 (relation heads) or equal head counts")
            self.heads = t.num_attention_heads
        else:
            self.heads = config.num_relation_heads or t.num_attention_heads
            for who, c in (("student", s), ("teacher", t)):
                if c.hidden_size % self.heads:
                    raise KdnlpError(f"minilm num_relation_heads {self.heads} does not divide the {who}'s hidden size "
                                     f"{c.hidden_size}; choose a common divisor of {s.hidden_size} and {t.hidden_size}")

    def forward(self, student_out, teacher_out, batch):
        mask = batch["attention_mask"]
        s, t = student_out.qkv[-1], teacher_out.qkv[self.layer - 1]
        if self.config.version == "v2":
            return torch.stack([relation_kl(a, b, self.heads, mask) for a, b in zip(s, t)]).sum()
        maps = distribution_kl(relation(t[0], t[1], self.heads, mask), relation(s[0], s[1], self.heads, mask), mask)
        return maps + relation_kl(s[2], t[2], self.heads, mask)

"""Soft-target distillation (Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network").

KL(softmax(t/T) || softmax(s/T)) * T^2, in float32 and in log space (no softmax underflow, no NaN from
half-precision logits). The T^2 factor keeps the gradient scale of the soft term independent of T (the
paper's advice), so the weights in a recipe mean the same thing at any temperature. For regression tasks
the "soft target" is the teacher's output itself: MSE between the logits. On seq2seq outputs it is word-level
KD (Kim & Rush 2016): the KL at every real target token under teacher forcing, averaged over those tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdnlp.core.errors import KdnlpError
from kdnlp.losses.base import LOSSES, DistillationLoss


def kl_at_temperature(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over rows (examples, or target tokens) of KL(softmax(t/T) || softmax(s/T)), in float32 and log space.
    Logits are (..., classes); `mask` (the leading shape) keeps only real rows, such as target tokens that are
    not padding."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(s, t, log_target=True, reduction="none").sum(-1)
    if mask is None:
        return kl.mean()
    mask = mask.to(kl.dtype)
    return (kl * mask).sum() / mask.sum().clamp(min=1.0)


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    return kl_at_temperature(student_logits, teacher_logits, temperature, mask) * temperature**2


def item_mask(batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The rows a per-row term averages over: those whose label is not -100 (padding of seq2seq targets; every
    example of a classification batch), or all rows of an unlabeled batch."""
    labels = batch.get("labels")
    return None if labels is None else labels.ne(-100)


@dataclass
class HintonConfig:
    temperature: float = 2.0

    def validate(self, where: str) -> None:
        if self.temperature <= 0:
            raise KdnlpError(f"bad value {self.temperature} for {where}.temperature: must be > 0")


@LOSSES.register("hinton")
class HintonLoss(DistillationLoss):
    name = "hinton"
    paper = "Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. 2015. arXiv:1503.02531"
    Config = HintonConfig

    def forward(self, student_out, teacher_out, batch):
        if self.ctx.regression:
            return F.mse_loss(student_out.logits.float(), teacher_out.logits.float())
        return soft_target_kl(student_out.logits, teacher_out.logits, self.config.temperature, item_mask(batch))

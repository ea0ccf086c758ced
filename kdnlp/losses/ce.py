"""Hard-label loss: cross-entropy against the gold labels or target tokens, MSE for regression tasks (STS-B)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdnlp.losses.base import LOSSES, DistillationLoss


def hard_label_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    if regression:
        return F.mse_loss(logits.float().squeeze(-1), labels.float())
    # (examples, classes) or (examples, tokens, vocabulary): one row per item; -100 marks padding of targets
    return F.cross_entropy(logits.float().flatten(0, -2), labels.long().flatten(), ignore_index=-100)


@dataclass
class CEConfig:
    pass


@LOSSES.register("ce")
class CELoss(DistillationLoss):
    name = "ce"
    Config = CEConfig
    uses_teacher = False

    def forward(self, student_out, teacher_out, batch):
        return hard_label_loss(student_out.logits, batch["labels"], self.ctx.regression)

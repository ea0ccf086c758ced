"""DistilBERT's cosine loss (Sanh et al. 2019, "DistilBERT, a distilled version of BERT").

Aligns the directions of the student's and teacher's hidden-state vectors, token by token, with padded
positions left out: mean over real tokens of 1 - cos(h_s, h_t), per example, then over examples. DistilBERT applies it to the last hidden
layer (`layer: -1`); any index into the models' `hidden_states` tuple (0 = embeddings) may be chosen.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdnlp.core.errors import KdnlpError
from kdnlp.losses.base import LOSSES, DistillationLoss


def masked_cosine_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over examples of the mean of 1 - cos over each example's real tokens (`mask` 1); inputs are
    (batch, seq, hidden). Per example, so a batch's value is the mean of its examples' values."""
    cos = F.cosine_similarity(student.float(), teacher.float(), dim=-1)
    mask = mask.to(cos.dtype)
    return (((1.0 - cos) * mask).sum(1) / mask.sum(1).clamp(min=1.0)).mean()


@dataclass
class CosineConfig:
    layer: int = -1


@LOSSES.register("cosine")
class CosineLoss(DistillationLoss):
    name = "cosine"
    paper = "Sanh, Debut, Chaumond, Wolf. DistilBERT, a distilled version of BERT. 2019. arXiv:1910.01108"
    Config = CosineConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        s, t = ctx.student_config.hidden_size, getattr(ctx.teacher_config, "hidden_size", None)
        if t is not None and s != t:
            raise KdnlpError(
                f"the cosine loss needs equal hidden sizes, but the student has {s} and the teacher {t}; "
                "use a student initialised from the teacher"
            )

    def forward(self, student_out, teacher_out, batch):
        layer = self.config.layer
        return masked_cosine_loss(
            student_out.hidden_states[layer], teacher_out.hidden_states[layer], batch["attention_mask"]
        )

"""Patient knowledge distillation (Sun, Cheng, Gan, Liu 2019, "Patient Knowledge Distillation for BERT
Model Compression").

The student's [CLS] vectors at intermediate layers follow the teacher's mapped layers: for each mapped
pair, the squared difference of the L2-normalised [CLS] hidden states, averaged over the hidden dimension,
the examples and the mapped layers, as the PKD reference code's `F.mse_loss` computes it. PKD-Skip and
PKD-Last are the `skip` and `last` layer maps (kdnlp.modeling.layers). The paper's beta = 100..500 weights this
mean: a sum over the hidden dimension would make the term hidden_size times stronger at the same beta.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdnlp.core.errors import KdnlpError
from kdnlp.losses.base import LOSSES, MappedLoss


def normalised_cls_mse(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers, examples and hidden units of (s/|s| - t/|t|)^2 for the [CLS] (first) position of each layer."""
    losses = [
        (F.normalize(s[:, 0].float(), dim=-1) - F.normalize(t[:, 0].float(), dim=-1)).pow(2).mean()
        for s, t in zip(student, teacher)
    ]
    return torch.stack(losses).mean()


@dataclass
class PKDConfig:
    layers: str | list[int] = "skip"


@LOSSES.register("pkd")
class PKDLoss(MappedLoss):
    name = "pkd"
    paper = "Sun, Cheng, Gan, Liu. Patient Knowledge Distillation for BERT Model Compression. EMNLP 2019. arXiv:1908.09355"
    Config = PKDConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        s, t = ctx.student_config.hidden_size, ctx.teacher_config.hidden_size
        if s != t:
            raise KdnlpError(f"the pkd loss compares [CLS] vectors of equal size, but the student has {s} and the teacher {t}")

    def forward(self, student_out, teacher_out, batch):
        return normalised_cls_mse(
            [student_out.hidden_states[s] for s, _ in self.pairs], [teacher_out.hidden_states[t] for _, t in self.pairs]
        )

"""Relational knowledge distillation (Park, Kim, Lu, Cho 2019, "Relational Knowledge Distillation").

The student keeps the teacher's relations between the examples of a batch rather than its vectors: with one
vector per example (the [CLS] vector of a chosen layer, or the mean of its real tokens), t_i for the teacher and
s_i for the student,
- distance-wise: psi_D(i, j) = ||t_i - t_j|| / mu, mu the mean distance over the batch's pairs;
  rkd_distance = mean over pairs i != j of huber(psi_D(s), psi_D(t));
- angle-wise: psi_A(i, j, k) = <e_ji, e_ki>, e_ji = (t_j - t_i) / ||t_j - t_i||, the cosine of the angle at
  vertex i; rkd_angle = mean over triplets of distinct i, j, k of huber(psi_A(s), psi_A(t));
rkd = distance_weight * rkd_distance + angle_weight * rkd_angle (the paper's 25 and 50), with huber the smooth
L1 loss at delta 1 (the paper's Huber loss). Relations need no projection: the widths may differ.

Choices:
- The paper sums over pairs and triplets; its code averages over all b^2 pairs and b^3 triplets, trivial ones
  (i = j, ...) included. kdnlp averages over the non-trivial ones only, which differs from the code's scale by
  (b-1)/b for distances and (b-1)(b-2)/b^2 for angles (0.97 and 0.91 at b = 32).
- A batch with fewer than 2 examples has no distance, with fewer than 3 no angle: that part is 0.
- Distances are sqrt(max(d^2, 1e-12)) (as the paper's code clamps them), so duplicate examples give finite gradients.

A batch statistic: the value of a batch is not the mean of its examples' values (nor of its halves'). Under
gradient accumulation and in multi-process runs, each micro-batch on each process forms relations only among its
own examples: the loss is the mean of per-micro-batch relation losses, and relations across micro-batches or
processes are never seen; a smaller per-device batch means fewer, noisier relations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.layers import hidden_index, num_layers
from kdnlp.losses.base import LOSSES, DistillationLoss


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """One row per example from hidden states (batch, seq, hidden): the [CLS] (first) vector (`cls`), the mean
    of the real tokens' vectors (`mean`), or all positions concatenated with padding zeroed (`flatten`)."""
    if how == "cls":
        return hidden[:, 0]
    m = mask.to(hidden.dtype).unsqueeze(-1)
    if how == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    return (hidden * m).flatten(1)


def pair_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances of the b(b-1)/2 pairs i < j of rows of x (b, d), divided by their mean."""
    i, j = torch.triu_indices(len(x), len(x), 1, device=x.device)
    d = (x[i] - x[j]).pow(2).sum(-1).clamp(min=1e-12).sqrt()
    return d / d.mean().clamp(min=1e-12)


def triplet_cosines(x: torch.Tensor) -> torch.Tensor:
    """cos of the angle at vertex i between x_j and x_k for every triplet of distinct rows (i, j, k) of x (b, d)."""
    b = len(x)
    unit = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), dim=-1)  # unit[i, j]: direction from x_i to x_j
    cos = unit @ unit.transpose(1, 2)  # cos[i, j, k]
    eye = torch.eye(b, dtype=torch.bool, device=x.device)
    distinct = ~(eye.unsqueeze(2) | eye.unsqueeze(1) | eye.unsqueeze(0))
    return cos[distinct]


def rkd_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    if len(student) < 2:
        return student.sum() * 0.0
    return F.smooth_l1_loss(pair_distances(student.float()), pair_distances(teacher.float()))


def rkd_angle(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    if len(student) < 3:
        return student.sum() * 0.0
    return F.smooth_l1_loss(triplet_cosines(student.float()), triplet_cosines(teacher.float()))


@dataclass
class RKDConfig:
    student_layer: int = -1
    teacher_layer: int = -1
    pooling: Literal["cls", "mean"] = "cls"
    distance_weight: float = 25.0
    angle_weight: float = 50.0

    def validate(self, where: str) -> None:
        for field in ("distance_weight", "angle_weight"):
            if getattr(self, field) < 0:
                raise KdnlpError(f"bad value {getattr(self, field)} for {where}.{field}: must be >= 0")
        if self.distance_weight == self.angle_weight == 0:
            raise KdnlpError(f"{where}: distance_weight and angle_weight are both 0; give one a positive weight")


@LOSSES.register("rkd")
class RKDLoss(DistillationLoss):
    name = "rkd"
    paper = "Park, Kim, Lu, Cho. Relational Knowledge Distillation. CVPR 2019. arXiv:1904.05068"
    Config = RKDConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.student_layer = hidden_index(config.student_layer, num_layers(ctx.student_config), "rkd.student_layer")
        self.teacher_layer = hidden_index(config.teacher_layer, num_layers(ctx.teacher_config), "rkd.teacher_layer")

    def forward(self, student_out, teacher_out, batch):
        mask, how = batch["attention_mask"], self.config.pooling
        s = pool(student_out.hidden_states[self.student_layer], mask, how)
        t = pool(teacher_out.hidden_states[self.teacher_layer], mask, how)
        return self.config.distance_weight * rkd_distance(s, t) + self.config.angle_weight * rkd_angle(s, t)

"""FitNets hints (Romero, Ballas, Kahou, Chassang, Gatta, Bengio 2014, "FitNets: Hints for Thin Deep Nets").

The student's "guided" layer, passed through a learnable regressor r, learns to predict the teacher's "hint"
layer: fitnets = MSE(r(h_S^(g)), h_T^(h)) over real tokens, as `tinybert_hidden` computes it (`masked_mse`:
mean over each example's real tokens and the teacher's hidden units, then over examples).

FitNets trains in two stages: first the student up to its guided layer with the hint loss alone, then the whole
student with soft targets (the `fitnets` recipe: a `hint` stage, then a `kd` stage). Only the layers up to the
guided one get gradients from this term, so in a hint stage with no other term the layers above and the
classifier keep their weights (the Trainer skips parameters without gradients, weight decay included).

Choices (the paper's networks are convolutional; it leaves these open for transformers):
- Layers are counted as in `hidden_states` (0 = embeddings, negative from the top); by default the middle
  layer of each model, floor((L+1)/2): FitNets guides the student's middle layer with the teacher's middle one.
- The regressor is a linear map per token (the paper's convolutional regressor with a 1x1 kernel), always
  learnable, even for equal widths; for equal widths it starts as the identity, so a student copied from the
  teacher starts from its own layer's meaning rather than from a random rotation. It is trained with the
  student, checkpointed, and never part of the exported student (kdnlp.training.trainer).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kdnlp.modeling.layers import hidden_index, num_layers
from kdnlp.losses.base import LOSSES, DistillationLoss
from kdnlp.losses.tinybert import masked_mse


def regressor(student_size: int, teacher_size: int) -> nn.Linear:
    """A learnable linear map student width -> teacher width, the identity when the widths are equal."""
    layer = nn.Linear(student_size, teacher_size)
    if student_size == teacher_size:
        with torch.no_grad():
            layer.weight.copy_(torch.eye(teacher_size))
            layer.bias.zero_()
    return layer


def middle(layers: int) -> int:
    return (layers + 1) // 2


@dataclass
class FitNetsConfig:
    student_layer: int | None = None  # the guided layer; None: the student's middle layer
    teacher_layer: int | None = None  # the hint layer; None: the teacher's middle layer


@LOSSES.register("fitnets")
class FitNetsLoss(DistillationLoss):
    name = "fitnets"
    paper = "Romero, Ballas, Kahou, Chassang, Gatta, Bengio. FitNets: Hints for Thin Deep Nets. ICLR 2015. arXiv:1412.6550"
    Config = FitNetsConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        m, n = num_layers(ctx.student_config), num_layers(ctx.teacher_config)
        self.student_layer = hidden_index(middle(m) if config.student_layer is None else config.student_layer, m,
                                          "fitnets.student_layer")
        self.teacher_layer = hidden_index(middle(n) if config.teacher_layer is None else config.teacher_layer, n,
                                          "fitnets.teacher_layer")
        self.regressor = regressor(ctx.student_config.hidden_size, ctx.teacher_config.hidden_size)

    def forward(self, student_out, teacher_out, batch):
        guided = self.regressor(student_out.hidden_states[self.student_layer])
        return masked_mse(guided, teacher_out.hidden_states[self.teacher_layer], batch["attention_mask"])

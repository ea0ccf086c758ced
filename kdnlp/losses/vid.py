"""Variational information distillation (Ahn, Hu, Damianou, Lawrence, Dai 2019, "Variational Information
Distillation for Knowledge Transfer").

For each mapped pair of layers (kdnlp.modeling.layers, default `uniform`), the teacher's hidden state t is modelled as a
Gaussian given the student's, with mean mu(s) (a learnable regressor) and a learned per-dimension variance
sigma_d^2 = softplus(alpha_d) + eps (the paper's parametrisation, eps = 1e-5); the student maximises the
likelihood of the teacher's t:
nll = mean over real tokens and teacher dimensions d of [ log sigma_d + (t_d - mu_d(s))^2 / (2 sigma_d^2) ]
(per example, then over examples, as `masked_mse`; the constant log(2 pi)/2 is dropped), averaged over mapped pairs.

What kdnlp reports: nll minus its minimum for the current variance, mean_d log sigma_d, taken as a constant (no
gradient): vid = mean over real tokens and d of (t_d - mu_d(s))^2 / (2 sigma_d^2), so the logged value is 0 at a
perfect match and positive otherwise, while every gradient (student, regressor, and alpha: the log sigma term is
what keeps the variance from growing without bound) is exactly that of the nll.

Choices:
- mu is a linear map per token (student width -> teacher width), the identity at the start when the widths are
  equal (as `fitnets`); the paper uses small stacks of 1x1 convolutions with ReLUs. A linear regressor makes vid a
  variance-weighted FitNets hint and lets a student copied from the teacher start at its own layer's meaning.
- sigma^2 starts at `init_variance` (5.0, the default of the VID loss in RepDistiller, the CRD authors' code).
- One regressor and one variance vector per mapped pair; all are trained with the student, checkpointed, and
  never exported (kdnlp.training.trainer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kdnlp.core.errors import KdnlpError
from kdnlp.losses.base import LOSSES, MappedLoss
from kdnlp.losses.fitnets import regressor
from kdnlp.losses.tinybert import masked_mse

EPS = 1e-5


def vid_excess_nll(mean: torch.Tensor, teacher: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The Gaussian nll of teacher (batch, seq, d) under N(mean, softplus(alpha) + EPS) per dimension, over real
    tokens (mask), minus its minimum mean_d log sigma_d held constant: the value is the variance-weighted half MSE,
    the gradients are the nll's."""
    variance = F.softplus(alpha.float()) + EPS
    log_sigma = 0.5 * variance.log().mean()
    scale = variance.sqrt()
    return masked_mse(mean.float() / scale, teacher.float() / scale, mask) / 2 + log_sigma - log_sigma.detach()


@dataclass
class VIDConfig:
    layers: str | list[int] = "uniform"
    init_variance: float = 5.0

    def validate(self, where: str) -> None:
        if self.init_variance <= EPS:
            raise KdnlpError(f"bad value {self.init_variance} for {where}.init_variance: must be > {EPS}")


@LOSSES.register("vid")
class VIDLoss(MappedLoss):
    name = "vid"
    paper = ("Ahn, Hu, Damianou, Lawrence, Dai. Variational Information Distillation for Knowledge Transfer. "
             "CVPR 2019. arXiv:1904.05835")
    Config = VIDConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        s, t = ctx.student_config.hidden_size, ctx.teacher_config.hidden_size
        self.regressors = nn.ModuleList(regressor(s, t) for _ in self.pairs)
        alpha = math.log(math.expm1(config.init_variance - EPS))  # softplus(alpha) + EPS = init_variance
        self.alphas = nn.ParameterList(nn.Parameter(torch.full((t,), alpha)) for _ in self.pairs)

    def forward(self, student_out, teacher_out, batch):
        mask = batch["attention_mask"]
        losses = [
            vid_excess_nll(mu(student_out.hidden_states[s]), teacher_out.hidden_states[t], alpha, mask)
            for mu, alpha, (s, t) in zip(self.regressors, self.alphas, self.pairs)
        ]
        return torch.stack(losses).mean()

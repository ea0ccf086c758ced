"""Contrastive representation distillation (Tian, Krishnan, Isola 2019, "Contrastive Representation Distillation").

Learnable linear heads map the student's and the teacher's last-layer [CLS] vectors into a shared space of
`feature_dim` dimensions (the paper's 128), where they are L2-normalised: z_S = g_S(s) / |g_S(s)|,
z_T = g_T(t) / |g_T(t)|. Each example's student vector must pick out the teacher vector of the same example among
negatives (InfoNCE, temperature tau, the paper's 0.07):
crd_S = mean_i -log( exp(z_S,i . z_T,i / tau) / (exp(z_S,i . z_T,i / tau) + sum_{j in N(i)} exp(z_S,i . z_T,j / tau)) )
and, `symmetric` (the default), the same with the teacher as anchor and student negatives, crd_T; crd is then
(crd_S + crd_T) / 2, or crd_S alone with `symmetric: false`.

Choices:
- Negatives are the other examples of the batch (N(i): all b - 1 of them, or `num_negatives` drawn at random),
  not the paper's memory bank of 16384 momentum-updated embeddings of the whole training set. A bank is state
  indexed by example ids that would have to be checkpointed with each stage, resumed, and kept identical across
  processes (the Trainer shuffles a different shard to each), and its embeddings lag the heads by up to an epoch;
  in-batch negatives need no state, and with the trainer's batch of 32 each anchor sees 31 negatives.
  `num_negatives` cannot exceed b - 1: a batch with fewer examples than num_negatives + 1 is an error (set
  `dataloader_drop_last: true` in the stage's training if only the last batch of an epoch is smaller).
- InfoNCE, the softmax form of the contrastive objective, instead of the paper's NCE critic with its N/M prior:
  without a bank of M data points there is no sampling ratio to correct for.
- Symmetric by default, as the paper's released code (both directions summed there; kdnlp averages them so the
  term's scale does not depend on `symmetric`).
- Both heads are trained with the student, checkpointed, and never exported (kdnlp.training.trainer).

Not zero at a perfect match: InfoNCE is the cross-entropy of picking the positive, which is positive unless the
negatives are infinitely far away. When student and teacher (and heads) agree it equals the teacher's own
contrastive loss, which is low when the batch's examples are well separated; the term asks the student to keep
examples apart as the teacher does, not only to copy it.

A batch statistic: an example's loss depends on the other examples of its batch, so a batch's value is not the
mean of its halves'. Under gradient accumulation and in multi-process runs, each micro-batch on each process draws
its negatives from its own examples only (b_micro - 1 of them, not the whole step's).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kdnlp.core.errors import KdnlpError
from kdnlp.losses.base import LOSSES, DistillationLoss


def info_nce(scores: torch.Tensor, temperature: float, num_negatives: int | None = None) -> torch.Tensor:
    """Mean over rows i of -log softmax(scores[i] / temperature) at the positive scores[i, i], the negatives of row i
    being the other entries of the row: all of them, or `num_negatives` drawn at random."""
    b = len(scores)
    if num_negatives is not None and num_negatives > b - 1:
        raise KdnlpError(f"crd.num_negatives={num_negatives} needs batches of at least {num_negatives + 1} examples "
                         f"(negatives come from the batch), but a batch has {b}; lower num_negatives, raise "
                         "per_device_train_batch_size, or set dataloader_drop_last: true")
    eye = torch.eye(b, dtype=torch.bool, device=scores.device)
    negatives = scores.masked_select(~eye).view(b, b - 1)
    if num_negatives is not None and num_negatives < b - 1:
        chosen = torch.rand(b, b - 1, device=scores.device).argsort(1)[:, :num_negatives]
        negatives = negatives.gather(1, chosen)
    logits = torch.cat([scores.diagonal().unsqueeze(1), negatives], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(b, dtype=torch.long, device=scores.device))


@dataclass
class CRDConfig:
    feature_dim: int = 128
    temperature: float = 0.07
    num_negatives: int | None = None  # None: every other example of the batch
    symmetric: bool = True

    def validate(self, where: str) -> None:
        if self.feature_dim < 1:
            raise KdnlpError(f"bad value {self.feature_dim} for {where}.feature_dim: must be >= 1")
        if self.temperature <= 0:
            raise KdnlpError(f"bad value {self.temperature} for {where}.temperature: must be > 0")
        if self.num_negatives is not None and self.num_negatives < 1:
            raise KdnlpError(f"bad value {self.num_negatives} for {where}.num_negatives: must be >= 1 "
                             "(or null for every other example of the batch)")


@LOSSES.register("crd")
class CRDLoss(DistillationLoss):
    name = "crd"
    paper = "Tian, Krishnan, Isola. Contrastive Representation Distillation. ICLR 2020. arXiv:1910.10699"
    Config = CRDConfig
    needs = frozenset({"hidden_states"})

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.student_head = nn.Linear(ctx.student_config.hidden_size, config.feature_dim)
        self.teacher_head = nn.Linear(ctx.teacher_config.hidden_size, config.feature_dim)

    def forward(self, student_out, teacher_out, batch):
        zs = F.normalize(self.student_head(student_out.hidden_states[-1][:, 0]), dim=-1)
        zt = F.normalize(self.teacher_head(teacher_out.hidden_states[-1][:, 0]), dim=-1)
        scores = zs @ zt.T
        c = self.config
        loss = info_nce(scores, c.temperature, c.num_negatives)
        if c.symmetric:
            loss = (loss + info_nce(scores.T, c.temperature, c.num_negatives)) / 2
        return loss

"""Similarity-preserving KD (Tung & Mori 2019, "Similarity-Preserving Knowledge Distillation").

For each mapped pair of layers (kdnlp.modeling.layers, default `uniform`), with A (b, d) one row per example of the batch,
G = A A^T (b x b) with each row L2-normalised, for the student and for the teacher:
sp = mean over mapped pairs of ||G_S - G_T||_F^2 / b^2. The paper's gamma (3000 on CIFAR-10) weights it.
Only similarities between examples are compared, so the widths may differ.

Choice of A (`pooling`): the paper flattens a convolutional activation map, whose spatial positions mean the same
place in every image. Token positions do not mean the same thing across sentences (position 5 is a different word
in each), so by default A is the mean of each example's real tokens (`mean`); `flatten` is the paper's literal
recipe (positions concatenated, padding zeroed), `cls` the [CLS] vectors.

A batch statistic: the value of a batch is not the mean of its examples' (or its halves') values. Under gradient
accumulation and in multi-process runs, each micro-batch on each process builds its own b x b matrices from its own
examples: similarities across micro-batches or processes are never compared, and the loss is the mean of the
per-micro-batch values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from kdnlp.losses.base import LOSSES, MappedLoss
from kdnlp.losses.rkd import pool


def similarity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """||G_S - G_T||_F^2 / b^2 for rows student (b, d_s) and teacher (b, d_t), G = row-normalised A A^T."""
    gs = F.normalize(student.float() @ student.float().T, dim=1)
    gt = F.normalize(teacher.float() @ teacher.float().T, dim=1)
    return (gs - gt).pow(2).sum() / len(student) ** 2


@dataclass
class SPConfig:
    layers: str | list[int] = "uniform"
    pooling: Literal["mean", "flatten", "cls"] = "mean"


@LOSSES.register("sp")
class SPLoss(MappedLoss):
    name = "sp"
    paper = "Tung, Mori. Similarity-Preserving Knowledge Distillation. ICCV 2019. arXiv:1907.09682"
    Config = SPConfig
    needs = frozenset({"hidden_states"})

    def forward(self, student_out, teacher_out, batch):
        mask, how = batch["attention_mask"], self.config.pooling
        losses = [
            similarity_loss(pool(student_out.hidden_states[s], mask, how), pool(teacher_out.hidden_states[t], mask, how))
            for s, t in self.pairs
        ]
        return torch.stack(losses).mean()

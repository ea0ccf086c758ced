"""Distillation losses, one module per method, all registered in `LOSSES` by name."""
from kdnlp.losses import ce, cosine, crd, fitnets, hinton, minilm, pkd, rkd, sp, tinybert, vid  # noqa: F401  (registers the losses)
from kdnlp.losses.base import LOSSES, DistillationLoss, LossContext
from kdnlp.losses.composite import CompositeLoss, LossTerm, parse_term, parse_terms

__all__ = ["LOSSES", "CompositeLoss", "DistillationLoss", "LossContext"]

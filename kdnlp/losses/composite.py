"""The one way losses combine: total = sum of weight * term, each term reported under its name."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from kdnlp.losses.base import DistillationLoss


class CompositeLoss(nn.Module):
    def __init__(self, terms: dict[str, tuple[float, DistillationLoss]]):
        super().__init__()
        self.weights = {name: weight for name, (weight, _) in terms.items()}
        self.terms = nn.ModuleDict({name: loss for name, (_, loss) in terms.items()})

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(t.needs for t in self.terms.values()))

    @property
    def uses_teacher(self) -> bool:
        return any(t.uses_teacher for t in self.terms.values())

    def forward(self, student_out: Any, teacher_out: Any, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {name: term(student_out, teacher_out, batch) for name, term in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        return total, {name: v.detach() for name, v in values.items()}

    def formula(self) -> str:
        return " + ".join(f"{self.weights[n]:g} * {t.describe()}" for n, t in self.terms.items())

"""The one way losses combine: total = sum of weight * term, each term reported under its name.

Every term is computed in float32 with autocast off, whatever precision the models ran in: half-precision
logits and hidden states are cast up first, so large values give no overflow, NaN or inf in the loss.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from kdnlp.core.config import coerce, from_dict
from kdnlp.core.errors import KdnlpError
from kdnlp.losses.base import LOSSES, DistillationLoss


@dataclass
class LossTerm:
    loss: str
    weight: float = 1.0
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def parse_term(raw: Any, where: str, registry=None) -> LossTerm:
    """One loss term of `registry` (default: the student's losses, kdnlp.losses.LOSSES)."""
    if not isinstance(raw, dict) or "loss" not in raw:
        raise KdnlpError(f"{where} must be a mapping with a 'loss' key, got {raw!r}")
    raw = dict(raw)
    loss = coerce(raw.pop("loss"), str, f"{where}.loss")
    cls = (registry or LOSSES).get(loss)
    weight = coerce(raw.pop("weight", 1.0), float, f"{where}.weight")
    name = coerce(raw.pop("name", None) or loss, str, f"{where}.name")
    config = from_dict(cls.Config, raw, f"{where}({loss})")
    return LossTerm(loss=loss, weight=weight, name=name, params=dataclasses.asdict(config))


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
        student_out, teacher_out = fp32(student_out), fp32(teacher_out)
        device = next(v for v in batch.values() if torch.is_tensor(v)).device
        with torch.autocast(device.type, enabled=False):
            values = {name: term(student_out, teacher_out, batch) for name, term in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        return total, {name: v.detach() for name, v in values.items()}

    @classmethod
    def build(cls, terms: list, ctx) -> "CompositeLoss":
        """The loss of a stage's terms (LossTerm), each built for the models `ctx` describes."""
        built = {}
        for term in terms:
            loss = LOSSES.get(term.loss)
            built[term.name] = (term.weight, loss(loss.Config(**term.params), ctx))
        return cls(built)

    def formula(self) -> str:
        return " + ".join(f"{self.weights[n]:g} * {t.describe()}" for n, t in self.terms.items())


def fp32(out: Any) -> Any:
    """A model output with its floating-point tensors (and tuples of them, one per layer) in float32."""
    if out is None:
        return None

    def cast(v):
        if isinstance(v, tuple):
            return tuple(cast(x) for x in v)
        return v.float() if torch.is_tensor(v) and v.is_floating_point() else v

    fields = out.items() if hasattr(out, "items") else vars(out).items()
    return type(out)(**{k: cast(v) for k, v in fields})

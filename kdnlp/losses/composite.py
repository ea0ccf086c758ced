"""The one way losses combine: total = sum of weight * term, each term reported under its name.

Every term is computed in float32 with autocast off, whatever precision the models ran in: half-precision
logits and hidden states are cast up first, so large values give no overflow, NaN or inf in the loss.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from kdnlp.core.config import coerce, first_repeat, from_dict
from kdnlp.core.errors import KdnlpError
from kdnlp.core.registry import Registry
from kdnlp.losses.base import LOSSES, DistillationLoss


@dataclass
class LossTerm:
    loss: str
    weight: float = 1.0
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The term as a recipe writes it (`parse_term` reads it back)."""
        return {"loss": self.loss, "name": self.name, "weight": self.weight, **self.params}


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


def parse_terms(raw: list, where: str, owner: str, registry=None) -> list[LossTerm]:
    """The list of loss terms at `where` (each as `parse_term` reads it), their names unique: each is reported under
    its name. `owner` names the list's holder in the message."""
    terms = [parse_term(t, f"{where}[{i}]", registry) for i, t in enumerate(raw)]
    dup = first_repeat([t.name for t in terms])
    if dup is not None:
        raise KdnlpError(f"{owner} has two terms named '{dup}'; give one of them a 'name'")
    return terms


class WeightedSum(nn.Module):
    """Named terms, each with a weight: the total is the sum of weight * the term's value (as `scaled` makes it),
    and each term's value is reported under its name. The student's loss (`CompositeLoss`) and the data-free
    generator's (kdnlp.methods.datafree.losses.GeneratorLoss) are both one."""

    #: Where `build` finds the terms' classes.
    registry: ClassVar[Registry] = LOSSES

    def __init__(self, terms: dict[str, tuple[float, nn.Module]]):
        super().__init__()
        self.weights = {name: weight for name, (weight, _) in terms.items()}
        self.terms = nn.ModuleDict({name: loss for name, (_, loss) in terms.items()})

    @classmethod
    def build(cls, terms: list[LossTerm], *args: Any, **kwargs: Any):
        """The loss of `terms` (LossTerm of `cls.registry`), each term made from its config and `args`; `kwargs`
        go to the loss."""
        built = {}
        for term in terms:
            loss = cls.registry.get(term.loss)
            built[term.name] = (term.weight, loss(loss.Config(**term.params), *args))
        return cls(built, **kwargs)

    def total(self, values: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted sum of the terms' `values`, and the values detached (to log)."""
        return sum(self.contributions(values).values()), {name: v.detach() for name, v in values.items()}

    def contributions(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What each term adds to the total: its value, scaled, times its weight."""
        return {name: self.weights[name] * self.scaled(name, value) for name, value in values.items()}

    def scaled(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """What the term `name` adds to the total before its weight: its value."""
        return value

    def shown(self, name: str) -> str:
        """The term `name` as `formula` writes it."""
        return self.terms[name].describe()

    def formula(self) -> str:
        return " + ".join(f"{self.weights[n]:g} * {self.shown(n)}" for n in self.terms)


class StudentTerms:
    """What a loss made of student terms (`terms`, DistillationLoss) reads: the outputs its terms need, and whether
    any reads the teacher's."""

    terms: Any

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(t.needs for t in self.terms.values()))

    @property
    def uses_teacher(self) -> bool:
        return any(t.uses_teacher for t in self.terms.values())


class CompositeLoss(StudentTerms, WeightedSum):
    """A stage's loss: its terms (DistillationLoss) on the student's and teacher's outputs for a batch."""

    def forward(self, student_out: Any, teacher_out: Any, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.total(self.values(student_out, teacher_out, batch))

    def values(self, student_out: Any, teacher_out: Any, batch: dict) -> dict[str, torch.Tensor]:
        """Each term's value on the batch, in float32."""
        student_out, teacher_out = fp32(student_out), fp32(teacher_out)
        device = next(v for v in batch.values() if torch.is_tensor(v)).device
        with torch.autocast(device.type, enabled=False):
            return {name: term(student_out, teacher_out, batch) for name, term in self.terms.items()}


#: A term whose gradient is this many times every other term's dominates the loss (kdnlp warns).
DOMINANCE = 100.0


def gradient_norms(contributions: dict[str, torch.Tensor], params: list[torch.Tensor]) -> dict[str, float]:
    """The norm of the gradient each term's contribution gives the parameters `params` (0 for a term that does not
    reach them); the graph is kept for the step's own backward pass."""
    out = {}
    for name, value in contributions.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True) if value.requires_grad else []
        out[name] = math.sqrt(sum(float((g.float() ** 2).sum()) for g in grads if g is not None))
    return out


def dominant(norms: dict[str, float], factor: float = DOMINANCE) -> tuple[str, float] | None:
    """The term whose gradient norm is more than `factor` times that of every other term that has one, and by how
    much (None when no term dominates, or fewer than two terms reach the parameters)."""
    ranked = sorted(((v, k) for k, v in norms.items() if v > 0), reverse=True)
    if len(ranked) < 2 or ranked[0][0] <= factor * ranked[1][0]:
        return None
    return ranked[0][1], ranked[0][0] / ranked[1][0]


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

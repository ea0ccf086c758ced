"""The interface every distillation loss implements."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.layers import describe, layer_map, num_layers
from kdnlp.core.registry import Registry


@dataclass(frozen=True)
class LossContext:
    """What a loss may need to know about the pair of models it compares."""

    num_labels: int
    student_config: Any
    teacher_config: Any | None = None
    outputs: str = ""  # kdnlp.tasks.base.Outputs: classes, scalar or tokens; by default from num_labels

    def __post_init__(self):
        if not self.outputs:
            object.__setattr__(self, "outputs", "scalar" if self.num_labels == 1 else "classes")

    @property
    def regression(self) -> bool:
        return self.outputs == "scalar"


class DistillationLoss(nn.Module):
    """One named loss term. `forward` returns a float32 scalar.

    `needs` lists the model outputs the term reads (``logits``, ``hidden_states``, ``qkv``: each layer's
    self-attention query/key/value vectors, kdnlp.modeling.capture; attention maps are computed from them, since a model
    returns its attention after dropout in training mode: kdnlp.losses.attention), so the trainer asks the models for them only
    when some term reads them;
    `uses_teacher` is False for terms that read only the labels, so a recipe made of them runs no teacher.
    A subclass is an nn.Module so that learnable projections are trained with the student.
    """

    name: ClassVar[str]
    paper: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})
    uses_teacher: ClassVar[bool] = True

    def __init__(self, config: Any, ctx: LossContext):
        super().__init__()
        self.config = config
        self.ctx = ctx
        if self.uses_teacher and self.needs - {"logits"} and ctx.teacher_config is None:
            raise KdnlpError(f"the {self.name} loss needs a teacher")

    def forward(self, student_out: Any, teacher_out: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def aligns(cls, outputs: str) -> bool:
        """Whether the term compares teacher and student position by position (layers, tokens, per-token
        logits), so both must read text into the same tokens; terms on per-example outputs need not."""
        return cls.uses_teacher and (bool(cls.needs - {"logits"}) or outputs == "tokens")

    def describe(self) -> str:
        """The term as it appears in the printed formula, e.g. ``hinton(temperature=2.0)``."""
        fields = ", ".join(f"{k}={v}" for k, v in vars(self.config).items())
        return f"{self.name}({fields})" if fields else self.name


class MappedLoss(DistillationLoss):
    """A term over the (student layer, teacher layer) pairs of the layer map its config's `layers` names
    (kdnlp.modeling.layers); the map is printed when the term is built."""

    def __init__(self, config: Any, ctx: LossContext):
        super().__init__(config, ctx)
        self.pairs = layer_map(config.layers, num_layers(ctx.student_config), num_layers(ctx.teacher_config))
        if not self.pairs:
            raise KdnlpError(f"layer map '{config.layers}' maps no layers for a 1-layer student; use uniform or a list")
        print(f"kdnlp: {self.name} layer map ({config.layers}): {describe(self.pairs)}", file=sys.stderr)


LOSSES: Registry[type[DistillationLoss]] = Registry("loss")

"""The generator's loss in data-free distillation: terms on the teacher's outputs for generated inputs, and the two
ways to combine them (kdnlp.methods.datafree.trainer trains the generator with it).

RDSKD (Han et al. 2021, "Robustness and Diversity Seeking Data-Free Knowledge Distillation", arXiv:2011.03749)
asks for inputs the teacher classifies with certainty (`one_hot`), whose predictions cover the classes
(`info_entropy`) and differ from each other as much as their latent vectors do (`diversity`). It combines the first
two by their exponential increments over the previous epoch, exp(L - L_prev): the gradient of a term is scaled by
exp(L - L_prev), so a rising term is pushed back hard and a falling one is followed almost linearly. DAFL (Chen et
al. 2019, "Data-Free Learning of Student Networks", arXiv:1904.01186) adds the terms with fixed weights.

The generator terms read the teacher's logits (B, classes) and the latent vectors (B, latent) of one batch; they
are batch statistics, not means of per-example values. They live in their own registry: they train the generator,
never the student, so they take no student output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from kdnlp.core.registry import Registry
from kdnlp.losses.composite import WeightedSum

Combination = Literal["exponential", "fixed"]


class GeneratorTerm(nn.Module):
    """One named term of the generator's loss; `forward(teacher_logits, latents)` returns a float32 scalar."""

    name: ClassVar[str]
    #: Whether RDSKD's exponential-increment combination applies to the term (else it is added with its weight).
    increments: ClassVar[bool] = True

    @dataclass
    class Config:
        pass

    def __init__(self, config: Any):
        super().__init__()
        self.config = config

    def forward(self, teacher_logits: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


GENERATOR_LOSSES: Registry[type[GeneratorTerm]] = Registry("generator loss")


@GENERATOR_LOSSES.register("one_hot")
class OneHot(GeneratorTerm):
    """Authenticity: cross-entropy between the teacher's prediction and its own arg-max, mean over the batch."""

    name = "one_hot"

    def forward(self, teacher_logits, latents):
        logits = teacher_logits.float()
        return F.cross_entropy(logits, logits.argmax(-1))


@GENERATOR_LOSSES.register("info_entropy")
class InfoEntropy(GeneratorTerm):
    """Class diversity: sum_k p_k log p_k of the teacher's mean prediction p over the batch (the negative entropy,
    in nats; DAFL's code uses log10, which only divides it by ln 10). Lowest, -log(classes), when the batch's
    predictions are spread evenly over the classes."""

    name = "info_entropy"

    def forward(self, teacher_logits, latents):
        logp = F.log_softmax(teacher_logits.float(), dim=-1)
        log_mean = torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])
        return (log_mean.exp() * log_mean).sum()


@GENERATOR_LOSSES.register("diversity")
class Diversity(GeneratorTerm):
    """Inter-sample diversity, in the style of mode seeking (Mao et al. 2019, MSGAN): over every pair of the batch,
    the ratio of the mean absolute difference of the teacher's softmax outputs to that of the latent vectors. The
    loss is minus the mean ratio, so it falls as samples from distant latents are told apart. (MSGAN minimises the
    reciprocal, 1 / (ratio + eps); with an unsure teacher the ratio is near 0 and the reciprocal, and its gradient,
    explode, while minus the ratio stays within [-2 / d_z, 0].)"""

    name = "diversity"
    increments = False

    def forward(self, teacher_logits, latents):
        p, z = teacher_logits.float().softmax(-1), latents.float()
        i, j = torch.triu_indices(len(p), len(p), offset=1, device=p.device)
        ratio = (p[i] - p[j]).abs().mean(-1) / (z[i] - z[j]).abs().mean(-1)
        return -ratio.mean()


def increment(value: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """RDSKD's exponential increment exp(value - previous): its gradient is exp(value - previous) times the
    term's, so an increase is penalised exponentially and a small decrease counts almost linearly."""
    return torch.exp(value - previous)


class GeneratorLoss(WeightedSum):
    """The terms combined: `fixed` (DAFL) is sum weight * term; `exponential` (RDSKD) is sum weight * exp(term -
    term_prev) over the terms with `increments`, plus weight * term for the others (diversity).

    term_prev is the term's mean over the previous window of `epoch_steps` generator steps (the paper's previous
    epoch); during the first window there is none, and the term's own value stands in for it (exp(0) = 1, the
    gradient of the plain sum). The running sums and previous means are buffers: checkpointed with the generator.
    """

    registry = GENERATOR_LOSSES

    def __init__(self, terms: dict[str, tuple[float, GeneratorTerm]], combination: Combination = "exponential",
                 epoch_steps: int = 100):
        super().__init__(terms)
        self.combination = combination
        self.epoch_steps = epoch_steps
        n = len(terms)
        self.register_buffer("previous", torch.zeros(n))
        self.register_buffer("sums", torch.zeros(n))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("epochs", torch.zeros((), dtype=torch.long))

    def forward(self, teacher_logits: torch.Tensor, latents: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.total({name: term(teacher_logits, latents) for name, term in self.terms.items()})

    def _increments(self, name: str) -> bool:
        return self.combination == "exponential" and self.terms[name].increments

    def scaled(self, name, value):
        if not self._increments(name):
            return value
        previous = self.previous[list(self.terms).index(name)] if self.epochs > 0 else value.detach()
        return increment(value, previous)

    @torch.no_grad()
    def end_step(self, values: dict[str, torch.Tensor], reduce: Callable[[torch.Tensor], torch.Tensor] | None = None):
        """Adds one step's term values to the window; at its end the window's means (averaged over processes by
        `reduce`) become the previous values."""
        self.sums += torch.stack([values[name] for name in self.terms]).to(self.sums)
        self.steps += 1
        if self.steps >= self.epoch_steps:
            means = self.sums / self.steps
            self.previous.copy_(reduce(means) if reduce is not None else means)
            self.sums.zero_()
            self.steps.zero_()
            self.epochs += 1

    def shown(self, name):
        return f"exp({name} - {name}_prev)" if self._increments(name) else name

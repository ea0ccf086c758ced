"""Self-attention recomputed from a layer's captured queries and keys (kdnlp.modeling.capture).

In training mode a model's returned attention probabilities are taken after attention dropout (transformers'
eager attention; sdpa returns none): rows no longer sum to 1, and a term matching them is minimised by a
flattened copy of the target. The scores Q K^T / sqrt(d) computed again from the projections' outputs are the ones
the layer used before its dropout, so the attention terms (TinyBERT's, MiniLM's) see the student's attention as it
is, while the model keeps its dropout everywhere else. This holds for the model families kdnlp.modeling.capture supports
whose scores are Q K^T / sqrt(d) plus the padding mask: BERT and its kin, DistilBERT, BART, Marian; not for T5,
whose scores are unscaled and add a relative position bias (`check_supported`).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from kdnlp.core.errors import KdnlpError


def check_supported(config: Any, term: str) -> None:
    if config.model_type == "t5":
        raise KdnlpError(f"the {term} loss recomputes attention as Q K^T / sqrt(d), which T5's unscaled, "
                         f"position-biased attention is not; use it with BERT-like, DistilBERT, BART or Marian models")


def heads(x: torch.Tensor, count: int) -> torch.Tensor:
    """(batch, seq, count * d) -> (batch, count, seq, d), in float32."""
    b, n, width = x.shape
    return x.float().view(b, n, count, width // count).transpose(1, 2)


def scores(q: torch.Tensor, k: torch.Tensor, count: int) -> torch.Tensor:
    """The attention scores A_a B_a^T / sqrt(d_a) of each of `count` heads (slices of the last axis): q, k are
    (batch, seq, width), the result (batch, count, seq, seq)."""
    q, k = heads(q, count), heads(k, count)
    return q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])


def log_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the real keys (mask (batch, seq), 1 for real tokens) of scores (batch, heads, seq, seq)."""
    return scores.masked_fill(~mask.bool()[:, None, None, :], torch.finfo(scores.dtype).min).log_softmax(-1)

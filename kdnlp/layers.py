"""Layer maps: which teacher layer each student layer learns from.

Layers are counted as in the models' `hidden_states` tuple: 0 is the embedding output, 1..N the
encoder layers. A map is a list of (student layer, teacher layer) pairs.

- `uniform` (TinyBERT): student layer m <- teacher layer g(m) = floor(m*N/M), m = 1..M, so the top layers
  always meet (g(M) = N) and a teacher with N not a multiple of M is spread as evenly as integers allow.
- `skip` (PKD-Skip): student layers 1..M-1 <- teacher layers floor(j*N/M): every (N/M)-th layer; the top
  layer is left to the prediction loss (for N=12, M=6: 2, 4, 6, 8, 10).
- `last` (PKD-Last): student layers 1..M-1 <- the M-1 teacher layers below the top (N=12, M=6: 7..11).
- a list: teacher layer for each student layer 1..M, in order.
"""
from __future__ import annotations

from typing import Any

from kdnlp.errors import KdnlpError

LayerMap = list[tuple[int, int]]
STRATEGIES = ("uniform", "skip", "last")


def num_layers(config: Any) -> int:
    for field in ("num_hidden_layers", "n_layers", "num_layers"):
        if hasattr(config, field):
            return int(getattr(config, field))
    raise KdnlpError(f"cannot tell how many layers a '{getattr(config, 'model_type', '?')}' model has")


def layer_map(spec: str | list[int], student_layers: int, teacher_layers: int) -> LayerMap:
    m, n = student_layers, teacher_layers
    if isinstance(spec, list):
        if len(spec) != m:
            raise KdnlpError(f"layer map {spec} gives {len(spec)} teacher layers for a student with {m} layers")
        bad = [t for t in spec if not 1 <= t <= n]
        if bad:
            raise KdnlpError(f"layer map {spec}: teacher layer {bad[0]} is out of range 1..{n}")
        return list(zip(range(1, m + 1), spec))
    if m > n:
        raise KdnlpError(f"a student with {m} layers cannot map onto a teacher with {n}")
    if spec == "uniform":
        return [(j, j * n // m) for j in range(1, m + 1)]
    if spec == "skip":
        return [(j, j * n // m) for j in range(1, m)]
    if spec == "last":
        return [(j, n - m + j) for j in range(1, m)]
    raise KdnlpError(f"unknown layer map '{spec}'; valid: {', '.join(STRATEGIES)}, or a list of teacher layers")


def describe(pairs: LayerMap) -> str:
    return ", ".join(f"s{s}<-t{t}" for s, t in pairs) or "(no layers)"


def hidden_index(index: int, layers: int, where: str) -> int:
    """`index` into a `hidden_states` tuple of a model with `layers` layers (0 = embeddings, negative from the
    top as in Python), as a non-negative index; out of range is an error naming `where`."""
    if not -(layers + 1) <= index <= layers:
        raise KdnlpError(f"bad value {index} for {where}: a model with {layers} layers has hidden states "
                         f"0..{layers} (or {-(layers + 1)}..-1 from the top)")
    return index % (layers + 1)

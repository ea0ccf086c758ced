"""Layers, counted everywhere as in the models' `hidden_states` tuple: 0 is the embedding output, 1..N the encoder
(or decoder) layers.

Named rules give, for a student with M layers and a teacher with N, the teacher layer of each student layer
m = 1..M. A student built from the teacher (kdnlp.modeling.students, `student.strategy`) copies those layers; a layer map
(the layer pairs of pkd, tinybert_hidden, ...: `layers:`) pairs student layer m with the same teacher layer, so a
student built and trained by one name learns each layer toward the layer it was copied from.

- `uniform` (TinyBERT): g(m) = floor(m*N/M), so the top layers always meet (g(M) = N) and a teacher with N not a
  multiple of M is spread as evenly as integers allow (N=12, M=4: 3, 6, 9, 12).
- `spread` (DistilBERT): 1 + round-half-up of (m-1)*(N-1)/(M-1), spread evenly with the first and last layers
  kept (N=12, M=6: 1, 3, 5, 8, 10, 12, DistilBERT's; M=1: the top layer).
- `skip` (PKD-Skip): every (N/M)-th layer, as `uniform`; its map leaves the student's top layer to the prediction
  loss (N=12, M=6: 2, 4, 6, 8, 10).
- `last` (PKD-Last): the top layers N-M+1..N; its map too leaves the top layer out (N=12, M=6: 7..11).
- `first`: the bottom layers 1..M.
- `every_other`: 1, 3, 5, ...; M must be their number.
- a list: the teacher layer of each student layer 1..M, in order.
"""
from __future__ import annotations

from typing import Any

from kdnlp.core.errors import KdnlpError

LayerMap = list[tuple[int, int]]
RULES = ("uniform", "spread", "skip", "first", "last", "every_other")
#: Rules whose layer map leaves the student's top layer to the prediction loss, as PKD's do.
TOP_LEFT_OUT = ("skip", "last")


def num_layers(config: Any) -> int:
    for field in ("num_hidden_layers", "n_layers", "num_layers"):
        if hasattr(config, field):
            return int(getattr(config, field))
    raise KdnlpError(f"cannot tell how many layers a '{getattr(config, 'model_type', '?')}' model has")


def pick(rule: str, m: int, n: int, what: str = "layers") -> list[int]:
    """The teacher layer (1..n) of each student layer 1..m by `rule`, for 1 <= m <= n; `what` names the teacher's
    layers in errors (`decoder layers`)."""
    if rule in ("uniform", "skip"):
        return [j * n // m for j in range(1, m + 1)]
    if rule == "spread":
        return [n] if m == 1 else [1 + int(i * (n - 1) / (m - 1) + 0.5) for i in range(m)]
    if rule == "first":
        return list(range(1, m + 1))
    if rule == "last":
        return list(range(n - m + 1, n + 1))
    if rule == "every_other":
        ids = list(range(1, n + 1, 2))
        if m != len(ids):
            raise KdnlpError(f"every_other keeps {len(ids)} of {n} {what}, not {m}")
        return ids
    raise KdnlpError(f"unknown layer rule '{rule}'; valid: {', '.join(RULES)}, or a list of teacher layers")


def check_layers(ids: list[int], n: int, what: str) -> None:
    """An error unless every teacher layer in `ids` is in 1..n; `what` names the list (`layers [0, 2]`)."""
    if 0 in ids:
        raise KdnlpError(f"bad {what}: layers count from 1 (0 is the embeddings); the teacher has 1..{n}")
    bad = [i for i in ids if not 1 <= i <= n]
    if bad:
        raise KdnlpError(f"bad {what}: teacher layer {bad[0]} is out of range 1..{n}")


def layer_map(spec: str | list[int], student_layers: int, teacher_layers: int) -> LayerMap:
    m, n = student_layers, teacher_layers
    if isinstance(spec, list):
        if len(spec) != m:
            raise KdnlpError(f"layer map {spec} gives {len(spec)} teacher layers for a student with {m} layers")
        check_layers(spec, n, f"layer map {spec}")
        return list(zip(range(1, m + 1), spec))
    if m > n:
        raise KdnlpError(f"a student with {m} layers cannot map onto a teacher with {n}")
    pairs = list(zip(range(1, m + 1), pick(spec, m, n)))
    return pairs[:-1] if spec in TOP_LEFT_OUT else pairs


def describe(pairs: LayerMap) -> str:
    return ", ".join(f"s{s}<-t{t}" for s, t in pairs) or "(no layers)"


def hidden_index(index: int, layers: int, where: str) -> int:
    """`index` into a `hidden_states` tuple of a model with `layers` layers (0 = embeddings, negative from the
    top as in Python), as a non-negative index; out of range is an error naming `where`."""
    if not -(layers + 1) <= index <= layers:
        raise KdnlpError(f"bad value {index} for {where}: a model with {layers} layers has hidden states "
                         f"0..{layers} (or {-(layers + 1)}..-1 from the top)")
    return index % (layers + 1)

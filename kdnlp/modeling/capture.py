"""The query, key and value vectors of each encoder layer's self-attention, which models do not return.

Forward hooks on the layers' query/key/value projections (nn.Linear: BERT's `attention.self.query`, DistilBERT's
`attention.q_lin`, BART's `self_attn.q_proj`, T5's `SelfAttention.q`) keep their outputs while the model runs, one
(query, key, value) triple per layer, bottom to top, each (batch, seq, heads * head size): the heads concatenated.
The hooks live only for one forward pass (`capture`), so a teacher under no_grad and a student with autograd are
served alike, and a recomputation in the backward pass (gradient checkpointing) does not fire them again.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.students import layer_lists

#: The names of the (query, key, value) projections inside a layer, by model family.
NAMES = (("query", "key", "value"), ("q_lin", "k_lin", "v_lin"), ("q_proj", "k_proj", "v_proj"), ("q", "k", "v"))


def projections(model: nn.Module) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
    """The (query, key, value) projections of each layer of the model's encoder (through DDP wrappers)."""
    model = getattr(model, "module", model)
    path = layer_lists(model.config)[0][0]
    stack = next((m for name, m in model.named_modules() if name == path or name.endswith("." + path)), None)
    if stack is None:
        raise KdnlpError(f"no layer list '{path}' in the '{model.config.model_type}' model")
    out = []
    for layer in stack:
        found = {name.rsplit(".", 1)[-1]: m for name, m in layer.named_modules() if isinstance(m, nn.Linear)}
        triple = next((names for names in NAMES if all(n in found for n in names)), None)
        if triple is None:
            raise KdnlpError(f"cannot find the query/key/value projections of a '{model.config.model_type}' layer")
        out.append(tuple(found[n] for n in triple))
    return out


@contextmanager
def capture(model: nn.Module, on: bool = True) -> Iterator[tuple[list, ...] | None]:
    """Within the block, each forward pass of `model` fills the yielded tuple: entry l-1 is layer l's
    [query, key, value] outputs. Yields None (and hooks nothing) when `on` is false."""
    if not on:
        yield None
        return
    layers = projections(model)
    got = tuple([None, None, None] for _ in layers)
    handles = []
    for slots, modules in zip(got, layers):
        for i, module in enumerate(modules):
            handles.append(module.register_forward_hook(_keeper(slots, i)))
    try:
        yield got
    finally:
        for h in handles:
            h.remove()


def _keeper(slots: list, i: int):
    def keep(module, args, out):
        slots[i] = out

    return keep

"""TextBrewer 0.2.1 (`pip install kdnlp[bench]`) doing the work of a kdnlp loss, for bench/distill_speed.py.

The distillation config is read off kdnlp's own built loss (CompositeLoss), so the two train on the same objective:
- `hinton` (weight w, temperature T) -> TextBrewer's soft cross-entropy at T (`kd_loss_type: ce`, no T^2 factor)
  with `kd_loss_weight` w * T^2: soft cross-entropy and KL differ by the teacher's entropy, a constant, so the
  gradients are kdnlp's; `ce` (weight c) -> the student's own label loss through the adaptor, `hard_label_weight` c.
- `tinybert_embedding` -> a `hidden_mse` match of hidden state 0; `tinybert_hidden` and `tinybert_attention` ->
  one `hidden_mse` / `attention_mse` match per pair of kdnlp's layer map, each weighted 1/pairs (kdnlp averages over
  the pairs); TextBrewer reads the attention probabilities the models return (after dropout in training mode), which
  kdnlp's `form: probs` recomputes from the queries and keys before dropout, and its default `form: scores` replaces
  by the pre-softmax scores: the same amount of work, another target; a linear projection student -> teacher width where kdnlp has one (widths differ). TextBrewer's MSEs
  average over all real tokens of the batch where kdnlp averages per example first: the same work, weighted slightly
  differently when lengths differ.

What TextBrewer 0.2.1 needs to run with transformers 5 / torch 2.13 (worked around here, not patched):
- its default device is 'cuda': TrainingConfig(device='cpu');
- it calls `model(**batch)` only when `type(batch) is dict`; the collators' BatchEncoding is a UserDict, so it would
  call `model(*batch)` with the key names as positional arguments: `batch_postprocessor=dict`;
- adaptors read the ModelOutput fields by name (`logits`, `hidden_states`, `attentions`, `loss`), which transformers 5
  still has; the attention maps need eager attention (set by the caller); kdnlp's terms do not;
- it writes the student's state dict at the end of every epoch: the time is measured and reported apart.
"""
from __future__ import annotations

import time


def distillation_config(loss) -> tuple[dict, bool]:
    """TextBrewer DistillationConfig arguments for kdnlp's CompositeLoss `loss`, and whether the student's adaptor must
    return its label loss. Terms TextBrewer has no match for are an error."""
    from kdnlp.losses.ce import CELoss
    from kdnlp.losses.hinton import HintonLoss
    from kdnlp.losses.tinybert import AttentionLoss, EmbeddingLoss, HiddenLoss

    config: dict = {"kd_loss_type": "ce", "kd_loss_weight": 0.0, "hard_label_weight": 0.0, "intermediate_matches": []}
    matches = config["intermediate_matches"]
    for name, term in loss.terms.items():
        weight = loss.weights[name]
        if isinstance(term, HintonLoss):
            config.update(temperature=term.config.temperature, kd_loss_weight=weight * term.config.temperature ** 2)
        elif isinstance(term, CELoss):
            config["hard_label_weight"] = weight
        elif isinstance(term, EmbeddingLoss):
            matches.append(_match(0, 0, "hidden", weight, term.proj))
        elif isinstance(term, HiddenLoss):
            matches += [_match(s, t, "hidden", weight / len(term.pairs), term.projs[i % len(term.projs)])
                        for i, (s, t) in enumerate(term.pairs)]
        elif isinstance(term, AttentionLoss):
            matches += [_match(s - 1, t - 1, "attention", weight / len(term.pairs)) for s, t in term.pairs]
        else:
            raise ValueError(f"no TextBrewer equivalent of the loss term '{name}' ({term.describe()})")
    return config, config["hard_label_weight"] > 0


def _match(student: int, teacher: int, feature: str, weight: float, proj=None) -> dict:
    match = {"layer_S": student, "layer_T": teacher, "feature": feature, "weight": weight,
             "loss": f"{feature}_mse"}
    if getattr(proj, "in_features", None):  # kdnlp projects (an nn.Linear, not nn.Identity): widths differ
        match["proj"] = ["linear", proj.in_features, proj.out_features]
    return match


def adaptor(inter: bool, hard: bool):
    def adapt(batch, out):
        if inter:
            return {"hidden": out.hidden_states, "attention": out.attentions, "inputs_mask": batch["attention_mask"]}
        return {"logits": out.logits, **({"losses": out.loss} if hard else {})}

    return adapt


def _timed(obj, method: str, spent: dict, key: str) -> None:
    """Adds the time spent in `obj.method` to `spent[key]`."""
    inner = getattr(obj, method)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start

    setattr(obj, method, timed)


def textbrewer_train(mode: str, loss, teacher, student, loader, epochs: int, optimizer, out: str) -> dict:
    """Distils `student` from `teacher` with TextBrewer over `loader` for `epochs`, on the objective of kdnlp's `loss`:
    GeneralDistiller, or for `textbrewer-kd-cache` BasicDistiller with its in-memory logit cache. Returns the seconds
    of training, and apart from them those of building TextBrewer's cache and of writing its checkpoints."""
    from textbrewer import BasicDistiller, DistillationConfig, GeneralDistiller, TrainingConfig
    from transformers import get_linear_schedule_with_warmup

    config, hard = distillation_config(loss)
    inter = bool(config["intermediate_matches"])
    cached = mode == "textbrewer-kd-cache"
    distiller = (BasicDistiller if cached else GeneralDistiller)(
        TrainingConfig(device="cpu", output_dir=out, log_dir=None),
        DistillationConfig(**config, is_caching_logits=cached), teacher, student,
        adaptor(inter, False), adaptor(inter, hard))
    spent = {"save": 0.0, "cache": 0.0}
    _timed(distiller, "save_and_callback", spent, "save")
    _timed(distiller, "cache_logits", spent, "cache")
    steps = len(loader) * epochs
    start = time.perf_counter()
    with distiller:
        distiller.train(optimizer, loader, num_epochs=epochs, scheduler_class=get_linear_schedule_with_warmup,
                        scheduler_args={"num_warmup_steps": 0, "num_training_steps": steps}, max_grad_norm=1.0,
                        batch_postprocessor=dict, **({"output_hidden_states": True, "output_attentions": True}
                                                     if inter else {}))
    total = time.perf_counter() - start
    result = {"seconds": total - spent["save"] - spent["cache"], "save_seconds": spent["save"],
              "textbrewer_config": {k: v for k, v in config.items() if k != "intermediate_matches"},
              "textbrewer_matches": config["intermediate_matches"]}
    if cached:
        result["cache_build_seconds"] = spent["cache"]
    return result

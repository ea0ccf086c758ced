"""Data-free distillation for text classifiers: a generator learns inputs from the teacher alone (RDSKD's or DAFL's
loss, kdnlp.methods.datafree.losses) and the student learns the teacher's soft targets on them; the task's train split is
never read.

Text is discrete, so the generator works in a continuous space: for each position it gives a distribution over the
vocabulary the two models share, and each model reads it as the probability-weighted sum of its own word-embedding
rows (`inputs_embeds`; the model adds its position and token-type embeddings as for token ids). Gradients flow from
the teacher's outputs into the generator, and a student of another width reads the same samples. Position 0 and the
segment ends hold the tokenizer's own special tokens as one-hot rows ([CLS] ... [SEP], [CLS] a [SEP] b [SEP] for
sentence pairs), so the classifier's pooled first token and the segments are where the teacher learnt them.

The loop is DAFL's, one step at a time: for each batch of latent vectors the generator makes samples, the teacher
reads them (with gradients), the generator takes one step on its loss, and the student takes one step on the
teacher's (detached) logits for the same samples (one teacher pass serves both). Under gradient accumulation both
accumulate over the micro-batches of an optimizer step and step once, together. The generator lives in the
trainer: its own Adam optimizer, parameters identical across processes (broadcast, gradients averaged), and its
state (weights, optimizer, the combination's previous-epoch values) checkpointed and restored with --resume.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from kdnlp.core.config import from_dict
from kdnlp.core.errors import KdnlpError, say
from kdnlp.losses.composite import parse_term, parse_terms
from kdnlp.methods.datafree.losses import GENERATOR_LOSSES, Combination, GeneratorLoss
from kdnlp.modeling.models import load_tokenizer
from kdnlp.tasks.capabilities import GeneratedInputs
from kdnlp.training import cache
from kdnlp.training.trainer import DistillationTrainer

if TYPE_CHECKING:
    import datasets

#: The column of latent seeds in a generated stage's dataset, and the batch key of the latent vectors made from it.
SEED = "latent_seed"
LATENTS = "latents"
#: File in each checkpoint holding the generator, its optimizer and its loss's previous-epoch values.
GENERATOR_STATE = "kdnlp_generator.pt"


@dataclass
class GeneratorSettings:
    """A `data: generated` stage's `generator` section. `losses` are terms of kdnlp.methods.datafree.losses combined as
    `combination` says (`epoch_steps`: generator steps per epoch of the exponential increments); `samples`: latent
    seeds per epoch (with training.max_steps, at least enough for every step, so no latent vector repeats);
    `vocab_size`: the generator writes only the first that many tokens of `vocabulary` (0: all of them)."""

    losses: list[dict[str, Any]] = field(default_factory=list)
    combination: Combination = "exponential"
    epoch_steps: int = 100
    seq_length: int = 32
    latent_dim: int = 100
    hidden_size: int = 256
    temperature: float = 1.0
    gumbel: bool = False
    learning_rate: float = 1e-3
    samples: int = 64000
    vocab_size: int = 0

    def validate(self, where: str) -> None:
        for key in ("epoch_steps", "seq_length", "latent_dim", "hidden_size", "samples"):
            if getattr(self, key) < 1:
                raise KdnlpError(f"bad value {getattr(self, key)} for {where}.{key}: must be at least 1")
        if self.vocab_size < 0:
            raise KdnlpError(f"bad value {self.vocab_size} for {where}.vocab_size: must be 0 (every token) or more")
        for key in ("temperature", "learning_rate"):
            if getattr(self, key) <= 0:
                raise KdnlpError(f"bad value {getattr(self, key)} for {where}.{key}: must be > 0")
        if not self.losses:
            raise KdnlpError(f"{where}.losses is empty; give terms of: {', '.join(GENERATOR_LOSSES.names())}")


def parse_settings(raw: Any, where: str) -> dict[str, Any]:
    """The `generator` section validated, as plain data in the recipe's shape (terms as {loss, name, weight, ...})."""
    settings = from_dict(GeneratorSettings, raw, where)
    terms = parse_terms(settings.losses, f"{where}.losses", where, GENERATOR_LOSSES)
    settings.losses = [t.to_dict() for t in terms]
    return dataclasses.asdict(settings)


def build_generator_loss(settings: GeneratorSettings) -> GeneratorLoss:
    terms = [parse_term(t, "generator.losses", GENERATOR_LOSSES) for t in settings.losses]
    return GeneratorLoss.build(terms, combination=settings.combination, epoch_steps=settings.epoch_steps)


def latent_seeds(settings: dict[str, Any], args) -> "datasets.Dataset":
    """A generated stage's dataset: one latent seed per sample, so the Trainer's sampler spreads them over processes
    and restores its position on resume like any dataset's."""
    import datasets

    n = settings["samples"]
    if args.max_steps > 0:
        n = max(n, args.max_steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size)
    return datasets.Dataset.from_dict({SEED: list(range(n))})


class LatentCollator:
    """Latent vectors N(0, I) from the rows' seeds (and the run's), the same whatever the batch or process; other
    batches (the dev split's) go to `fallback`."""

    def __init__(self, latent_dim: int, seed: int, fallback):
        self.latent_dim, self.seed, self.fallback = latent_dim, seed, fallback

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if SEED not in features[0]:
            return self.fallback(features)
        z = [torch.randn(self.latent_dim, generator=torch.Generator().manual_seed(self.seed * 2**32 + f[SEED]))
             for f in features]
        return {LATENTS: torch.stack(z)}


@dataclass(frozen=True)
class Layout:
    """A generated input's frame: `ids[i]` is the token at position i, or -1 where the generator chooses."""

    ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]


def layout(tokenizer, segments: int, seq_length: int) -> Layout:
    """The frame the tokenizer gives `segments` texts, each text stretched to its share of `seq_length` free
    positions: a one-token placeholder text is encoded and each placeholder replaced by a run of free positions."""
    (mark,) = tokenizer("a", add_special_tokens=False)["input_ids"]
    enc = tokenizer(*["a"] * segments)
    ids, types = enc["input_ids"], enc.get("token_type_ids") or [0] * len(enc["input_ids"])
    free = seq_length - (len(ids) - segments)
    if free < segments:
        raise KdnlpError(f"bad value {seq_length} for generator.seq_length: the tokenizer's special tokens need "
                         f"{len(ids) - segments}, so at least {len(ids)}")
    shares = [free // segments + (k < free % segments) for k in range(segments)]
    out_ids, out_types = [], []
    for token, kind in zip(ids, types):
        run = shares.pop(0) if token == mark else 0
        out_ids += [-1] * run if run else [token]
        out_types += [kind] * max(run, 1)
    return Layout(tuple(out_ids), tuple(out_types))


#: Placeholder tokens a tokenizer reserves and no text is encoded into (BERT's [unused0] ... [unused993]).
UNUSED = re.compile(r"\[unused\d+\]|<unused\d+>")


def vocabulary(tokenizer, size: int = 0) -> list[int]:
    """The token ids a generator writes at free positions: those the tokenizer encodes text into, so neither its
    special tokens nor its unused placeholders (rows the teacher never read in training, where a generator could
    find inputs that fool it and share nothing with text), in id order; the first `size` of them if `size` > 0."""
    special = set(tokenizer.all_special_ids)
    ids = sorted(i for t, i in tokenizer.get_vocab().items() if i not in special and not UNUSED.fullmatch(t))
    if size > len(ids):
        raise KdnlpError(f"bad value {size} for generator.vocab_size: the tokenizer has {len(ids)} usable tokens")
    return ids[:size] if size > 0 else ids


class TextGenerator(nn.Module):
    """z (latent_dim) -> MLP -> a vector per free position in the teacher's embedding space -> logits over the
    `tokens` it may write by its dot product with each (frozen) teacher word embedding, plus a learnt bias per
    token -> softmax at `temperature` (or Gumbel-softmax) -> (batch, free positions, tokens) probabilities. Tying
    the output layer to the teacher's embeddings keeps the generator small (vocab x hidden parameters saved) and
    starts it where the teacher's inputs live. `embed` turns the probabilities into a model's inputs_embeds, with
    the frame's fixed tokens at their positions."""

    def __init__(self, settings: GeneratorSettings, embedding: torch.Tensor, frame: Layout, tokens: list[int]):
        super().__init__()
        ids = torch.tensor(frame.ids)
        self.free, self.width = int((ids < 0).sum()), embedding.shape[1]
        self.temperature, self.gumbel = settings.temperature, settings.gumbel
        self.net = nn.Sequential(nn.Linear(settings.latent_dim, settings.hidden_size), nn.LayerNorm(settings.hidden_size),
                                 nn.GELU(), nn.Linear(settings.hidden_size, self.free * self.width))
        self.bias = nn.Parameter(torch.zeros(len(tokens)))
        self.register_buffer("tokens", torch.tensor(tokens), persistent=False)
        self.register_buffer("embedding", embedding.detach().float()[self.tokens].clone(), persistent=False)
        self.register_buffer("rows", torch.cat([self.tokens, ids[ids >= 0]]), persistent=False)  # tokens, fixed
        # positions of [free..., fixed...] rows in the frame: the frame from their concatenation
        order = torch.cat([(ids < 0).nonzero()[:, 0], (ids >= 0).nonzero()[:, 0]]).argsort()
        self.register_buffer("order", order, persistent=False)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        h = self.net(latents.float()).view(-1, self.width)
        if self.gumbel:
            p = F.gumbel_softmax(torch.addmm(self.bias, h, self.embedding.T), tau=self.temperature, dim=-1)
        else:  # (h E^T + b) / T in one product: no pass over the (batch, positions, tokens) logits for each step
            t = 1 / self.temperature
            p = torch.addmm(self.bias, h, self.embedding.T, beta=t, alpha=t).softmax(-1)
        return p.view(len(latents), self.free, -1)

    def embed(self, probs: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """`model`'s inputs_embeds (batch, seq_length, hidden) for `probs`: at each free position the probability-
        weighted sum of its embedding rows of `tokens`, at the fixed positions its rows of the frame's tokens."""
        weight = model.get_input_embeddings().weight
        rows = weight[self.rows]  # one gather: a trained matrix gets one dense gradient, not one per gather
        free = probs.to(weight.dtype) @ rows[:len(self.tokens)]
        fixed = rows[len(self.tokens):].expand(len(probs), -1, -1)
        return torch.cat([free, fixed], dim=1)[:, self.order]


class DataFreeTrainer(DistillationTrainer):
    """A DistillationTrainer whose training batches are latent vectors: each step trains the generator one step on
    its loss from the teacher's outputs, then the student on the teacher's logits for the same samples (through the
    cached-logits path of `teacher_outputs`). Evaluation reads the real dev split as in every stage."""

    def __init__(self, *args, generator: TextGenerator, generator_loss: GeneratorLoss, learning_rate: float,
                 token_type_ids: tuple[int, ...], **kwargs):
        super().__init__(*args, **kwargs)
        device = self.args.device
        self.generator, self.generator_loss = generator.to(device), generator_loss.to(device)
        if self.args.world_size > 1:  # every process starts from rank 0's generator
            for p in self.generator.parameters():
                torch.distributed.broadcast(p.data, src=0)
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), lr=learning_rate)
        self.generator_scaler = torch.amp.GradScaler(device.type, enabled=self.args.fp16)
        self.token_type_ids = torch.tensor(token_type_ids, device=device)
        self._generator_values: dict[str, torch.Tensor] = {}  # the step's term values, summed over its micro-batches

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if SEED not in self._signature_columns:
            self._signature_columns.append(SEED)

    def _frame(self, inputs_embeds: torch.Tensor) -> dict[str, torch.Tensor]:
        b, n = inputs_embeds.shape[:2]
        return {"inputs_embeds": inputs_embeds, "attention_mask": torch.ones(b, n, dtype=torch.long, device=inputs_embeds.device),
                "token_type_ids": self.token_type_ids.expand(b, n)}

    def _average(self, t: torch.Tensor) -> torch.Tensor:
        if self.args.world_size > 1:
            torch.distributed.all_reduce(t)
            t /= self.args.world_size
        return t

    def generator_step(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's part of one micro-batch on `latents`: its loss's gradient accumulated and, at the last
        micro-batch of the student's optimizer step, one generator step on their mean. Returns its samples and the
        teacher's logits for them, detached."""
        self.generator.train()
        probs = self.generator(latents)
        teacher = self.accelerator.unwrap_model(self.teacher)
        batch = self._frame(self.generator.embed(probs, teacher))
        logits = self.teacher(**{k: v for k, v in batch.items() if k in self._teacher_inputs}).logits
        with torch.autocast(latents.device.type, enabled=False):
            total, values = self.generator_loss(logits.float(), latents)
        parts = self.current_gradient_accumulation_steps
        self.generator_scaler.scale(total / parts).backward()
        for name, value in values.items():
            self._generator_values[name] = self._generator_values.get(name, 0) + value / parts
        if self.accelerator.sync_gradients:
            for p in self.generator.parameters():
                if p.grad is not None:
                    self._average(p.grad)
            self.generator_scaler.step(self.generator_optimizer)
            self.generator_scaler.update()
            self.generator_optimizer.zero_grad(set_to_none=True)
            self.generator_loss.end_step(self._generator_values, self._average)
            self._generator_values = {}
        for name, value in {**values, "total": total.detach()}.items():
            self._term_sums[f"generator/{name}"] += value
            self._term_steps[f"generator/{name}"] += 1
        return probs.detach(), logits.detach()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if LATENTS not in inputs:  # evaluation on the dev split
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        probs, teacher_logits = self.generator_step(inputs[LATENTS])
        student = self.accelerator.unwrap_model(model)
        batch = {**self._frame(self.generator.embed(probs, student)), cache.COLUMN: teacher_logits}
        return super().compute_loss(model, batch, return_outputs, num_items_in_batch)

    def _state(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "optimizer": self.generator_optimizer.state_dict(),
                "loss": self.generator_loss.state_dict(), "scaler": self.generator_scaler.state_dict()}

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save:
            torch.save(self._state(), os.path.join(output_dir, GENERATOR_STATE))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is not None and os.path.isfile(path := os.path.join(checkpoint, GENERATOR_STATE)):
            state = torch.load(path, map_location=self.args.device)
            self.generator.load_state_dict(state["generator"])
            self.generator_optimizer.load_state_dict(state["optimizer"])
            self.generator_loss.load_state_dict(state["loss"])
            self.generator_scaler.load_state_dict(state["scaler"])
        super()._load_optimizer_and_scheduler(checkpoint)


def check_shared_vocabulary(teacher_name: str, student_name: str, teacher, student, same_tokenizer: bool) -> None:
    """Teacher and student must read the same vocabulary: the generator's distributions are over it."""
    rows = (teacher.get_input_embeddings().weight.shape[0], student.get_input_embeddings().weight.shape[0])
    if rows[0] != rows[1] or not same_tokenizer:
        raise KdnlpError(f"data-free distillation needs one vocabulary for teacher and student; teacher '{teacher_name}' "
                         f"({rows[0]} embedding rows) and student '{student_name}' ({rows[1]}) differ; use a student "
                         "built from the teacher (kdnlp init-student)")


def data_free_trainer(run, st, **kwargs) -> DataFreeTrainer:
    """The trainer of `data: generated` stage `st` (kdnlp.pipeline.sources.GeneratedSource), from run_stage's arguments."""
    segments = run.problem.segments if isinstance(run.problem, GeneratedInputs) else None
    if segments is None:
        raise KdnlpError(f"data-free distillation needs a classification task of single texts or pairs; "
                         f"{run.problem.name} is not one (it has {run.problem.outputs} outputs)")
    teacher = run.teacher_model
    same = run.teacher_tokenizer is None or load_tokenizer(run.teacher).get_vocab() == run.tokenizer.get_vocab()
    check_shared_vocabulary(run.teacher, run.info.get("student") or "built from the teacher", teacher,
                            run.student_model, same)
    settings = from_dict(GeneratorSettings, st.generator, f"stages.{st.name}.generator")
    frame = layout(run.tokenizer, segments, settings.seq_length)
    if segments > 1:
        say(f"warning: {run.problem.name} is a sentence-pair task; on MRPC every data-free student measured 30-32 "
            "points below the student it started from (docs/results.md)")
    tokens = vocabulary(run.tokenizer, settings.vocab_size)
    generator = TextGenerator(settings, teacher.get_input_embeddings().weight, frame, tokens)
    loss = build_generator_loss(settings)
    say(f"stage '{st.name}': generator loss = {loss.formula()}")
    kwargs.update(data_collator=LatentCollator(settings.latent_dim, run.seed, kwargs["data_collator"]), teacher_cache=False)
    return DataFreeTrainer(generator=generator, generator_loss=loss, learning_rate=settings.learning_rate,
                           token_type_ids=frame.token_type_ids, **kwargs)

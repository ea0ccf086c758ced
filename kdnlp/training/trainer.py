"""DistillationTrainer: a transformers.Trainer whose loss is a CompositeLoss over student and teacher outputs.

Contract: the teacher is frozen, in eval mode, run under no_grad, prepared by Accelerate for evaluation
only; it is never `self.model`, so it is neither optimised nor saved. Parameters of the loss terms
(projections) are trained with the student but live outside it: they are in the optimizer, in the gradient
norm and its clipping, averaged over processes, and checkpointed beside the model. Evaluation returns the
student's logits only.

The trainer knows no kind of task. Each model is fed the inputs its own `forward` takes; a teacher with its own
tokenizer reads the columns prefixed `teacher_` (see kdnlp.pipeline.runner). Inputs made from the targets (a
decoder's) the teacher gets as the problem makes them for it (`target_inputs`, kdnlp.tasks.capabilities). The
loss is scaled by the item count the Trainer uses (`labels != -100`: examples for classification, target tokens
for seq2seq), so terms that are means over items are exact under gradient accumulation and multi-process training.
"""
from __future__ import annotations

import copy
import itertools
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import torch
from transformers import Trainer, TrainerCallback
from transformers.utils import ModelOutput

from kdnlp.training import cache
from kdnlp.modeling.capture import capture
from kdnlp.core.errors import KdnlpError, say
from kdnlp.losses import CompositeLoss
from kdnlp.losses.composite import dominant, gradient_norms
from kdnlp.core.names import TEACHER_PREFIX

#: File in each checkpoint holding the loss terms' parameters (projections), so a resumed stage gets them back.
LOSS_STATE = "kdnlp_loss.pt"


@dataclass
class Outputs(ModelOutput):
    """Model outputs as the losses read them, whatever model made them (or the cache)."""

    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    qkv: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...] | None = None  # per layer (kdnlp.modeling.capture)


class _ZeroLossGrads(TrainerCallback):
    """The loss terms' parameters live outside the model, so the Trainer does not zero their gradients."""

    def __init__(self, loss: torch.nn.Module):
        self.loss = loss

    def on_step_end(self, args, state, control, **kwargs):
        self.loss.zero_grad(set_to_none=True)


class DistillationTrainer(Trainer):
    # compute_loss normalises by `num_items_in_batch` itself, so the Trainer must not divide again.
    loss_is_scaled_for_ga = True

    def __init__(self, *args, loss: CompositeLoss, teacher: torch.nn.Module | None = None,
                 teacher_cache: bool = False, train_batches: torch.utils.data.Sampler | None = None,
                 target_inputs: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None, **kwargs):
        """`teacher_cache`: read the teacher's logits for the training set from the disk cache (kdnlp.training.cache),
        computing them once, instead of running the teacher every step; used when the loss reads only logits.
        `train_batches`: a batch sampler of the training set (rows of each mini-batch; a `set_epoch` method
        reshuffles it per epoch; under several processes each process's part in turn, which Accelerate deals out)
        instead of the Trainer's shuffled batches. `target_inputs(batch, teacher_config)`: the teacher's inputs made
        from a batch's targets (kdnlp.tasks.capabilities.TargetInputs), which replace the student's. The loss's
        `progress` is set to the fraction of training steps done before each step (for terms that change over
        training)."""
        super().__init__(*args, **kwargs)
        self.train_batches = train_batches
        self.target_inputs = target_inputs
        # The Trainer counts the items of all accumulated micro-batches only for models that take loss kwargs.
        self.model_accepts_loss_kwargs = True
        self.distill_loss = loss.to(self.args.device)
        self._shares_due = True
        if self.args.world_size > 1:  # every process starts from rank 0's projections
            for p in self.distill_loss.parameters():
                torch.distributed.broadcast(p.data, src=0)
        self.add_callback(_ZeroLossGrads(self.distill_loss))
        self.teacher = None
        if loss.uses_teacher:
            if teacher is None:
                raise KdnlpError(f"the loss {loss.formula()} needs a teacher; pass --teacher")
            if self.args.bf16 or self.args.fp16:  # inference only: half the memory; a copy, so others keep fp32
                teacher = copy.deepcopy(teacher).to(torch.bfloat16 if self.args.bf16 else torch.float16)
            teacher.eval()
            teacher.requires_grad_(False)
            self._teacher_inputs = cache.forward_inputs(teacher)
            self._teacher_config = teacher.config
            self.teacher = self.accelerator.prepare_model(teacher, evaluation_mode=True)
            if teacher_cache and loss.needs == {"logits"} and self.train_dataset is not None:
                with self.args.main_process_first(desc="teacher cache"):
                    logits = cache.load_or_compute(self.teacher, self.train_dataset, self.data_collator,
                                                   self.args.per_device_eval_batch_size, self._teacher_batch)
                self.train_dataset = cache.attach(self.train_dataset, logits)
        self._term_sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.args.device))
        self._term_steps: dict[str, int] = defaultdict(int)  # per term: a term may be absent from some batches
        self._student_inputs: set[str] | None = None

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            super()._set_signature_columns_if_needed()
            # keep what the teacher reads (its own inputs, its prefixed tokenisation) and the cached logits
            extra = [cache.COLUMN]
            if self.teacher is not None:
                extra += [*self._teacher_inputs, *(TEACHER_PREFIX + k for k in self._teacher_inputs)]
            self._signature_columns += [c for c in extra if c not in self._signature_columns]

    def get_train_dataloader(self):
        if self.train_batches is None:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        dataset = self._remove_unused_columns(self.train_dataset, description="training")
        return self.accelerator.prepare(DataLoader(
            dataset, batch_sampler=self.train_batches, collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory))

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        extra = [p for p in self.distill_loss.parameters() if p.requires_grad]
        if extra and not any(p is e for g in optimizer.param_groups for p in g["params"] for e in extra):
            optimizer.add_param_group({"params": extra, "weight_decay": 0.0})
        return optimizer

    def _trained_parameters(self, model):
        """The model's parameters and the loss terms' (projections), whose gradients are first averaged over
        processes: DDP averages the model's only."""
        loss_params = [p for p in self.distill_loss.parameters() if p.grad is not None]
        if self.args.world_size > 1:
            for p in loss_params:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.args.world_size
        return itertools.chain(model.parameters(), loss_params)

    def _clip_grad_norm(self, model):
        return self.accelerator.clip_grad_norm_(self._trained_parameters(model), self.args.max_grad_norm)

    def _get_grad_norm(self, model, grad_norm=None):
        if grad_norm is None:  # not clipped: the gradients still need averaging, and the norm counting them
            grad_norm = self.accelerator.clip_grad_norm_(self._trained_parameters(model), float("inf"))
        return super()._get_grad_norm(model, grad_norm)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save and any(True for _ in self.distill_loss.parameters()):
            torch.save(self.distill_loss.state_dict(), os.path.join(output_dir, LOSS_STATE))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is not None and os.path.isfile(path := os.path.join(checkpoint, LOSS_STATE)):
            self.distill_loss.load_state_dict(torch.load(path, map_location=self.args.device))
        super()._load_optimizer_and_scheduler(checkpoint)

    def _teacher_batch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """What the teacher's forward takes from a batch: its own tokenisation if the batch has one, and what is
        made from the targets."""
        own = {k.removeprefix(TEACHER_PREFIX): v for k, v in inputs.items() if k.startswith(TEACHER_PREFIX)}
        made = self.target_inputs(inputs, self._teacher_config) if self.target_inputs else {}
        return {k: v for k, v in {**(own or inputs), **made}.items() if k in self._teacher_inputs and k != "labels"}

    def teacher_outputs(self, inputs: dict[str, torch.Tensor]) -> Outputs | None:
        """The one place teacher outputs come from: the cached logits that came with the batch, or a forward pass."""
        if self.teacher is None:
            return None
        if cache.COLUMN in inputs:
            return Outputs(logits=inputs[cache.COLUMN])
        with torch.no_grad():
            return self._forward(self.teacher, self._teacher_batch(inputs))

    def _forward(self, model, inputs: dict[str, Any]) -> Outputs:
        """`model`'s outputs on `inputs`, with what the loss terms need beyond logits."""
        with capture(model, "qkv" in self.distill_loss.needs) as qkv:
            out = model(**inputs, output_hidden_states="hidden_states" in self.distill_loss.needs)
        return Outputs(logits=out.logits, hidden_states=out.get("hidden_states"),
                       qkv=None if qkv is None else tuple(map(tuple, qkv)))

    def _reports_shares(self) -> bool:
        """Whether the stage's first batch reports the terms' gradient shares: a weighted sum of two terms or more, in
        one process (autograd.grad is kept away from DDP's gradient hooks)."""
        loss = self.distill_loss
        return isinstance(loss, CompositeLoss) and len(loss.terms) > 1 and self.args.world_size == 1

    def _report_gradient_shares(self, model, values: dict[str, torch.Tensor]) -> None:
        """Says each term's share of the gradient on the student's weights on the stage's first batch, and warns when
        one term gives more than DOMINANCE times any other's: the papers' rkd/sp/crd weights once sent every student
        to the majority class that way."""
        params = [p for p in model.parameters() if p.requires_grad]
        norms = gradient_norms(self.distill_loss.contributions(values), params)
        total = sum(norms.values()) or 1.0
        say("gradient share on the first batch: " + ", ".join(f"{n} {100 * v / total:.1f}%" for n, v in norms.items()))
        if found := dominant(norms):
            say(f"warning: the term '{found[0]}' gives {found[1]:.0f}x the gradient of every other term on the first "
                "batch, so the others barely move the student: a weight out of scale does this (change the weights), "
                "and so does a student that starts at its teacher's outputs (its teacher terms grow as it moves)")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self._student_inputs is None:
            self._student_inputs = cache.forward_inputs(model) - {"labels"}  # labels: the model would add its own loss
        if model.training:
            self.distill_loss.progress = self.state.global_step / max(self.state.max_steps, 1)
        student_out = self._forward(model, {k: v for k, v in inputs.items() if k in self._student_inputs})
        teacher_out = self.teacher_outputs(inputs)
        if model.training and self._shares_due and self._reports_shares():
            self._shares_due = False  # the terms run once, as on every other step (some draw samples or keep a bank)
            values = self.distill_loss.values(student_out, teacher_out, inputs)
            self._report_gradient_shares(model, values)
            loss, terms = self.distill_loss.total(values)
        else:
            loss, terms = self.distill_loss(student_out, teacher_out, inputs)
        if model.training:
            for name, value in terms.items():
                self._term_sums[name] += value
                self._term_steps[name] += 1
            # Terms are means over this micro-batch's items; turn them into this micro-batch's share of the mean
            # over all items of the optimizer step (exact with gradient accumulation and uneven last batches).
            if num_items_in_batch is not None:
                loss = loss * (inputs["labels"].ne(-100).sum() / num_items_in_batch)
                if self.args.average_tokens_across_devices and self.args.world_size > 1:
                    loss = loss * self.args.world_size  # DDP averages gradients over processes
            else:
                loss = loss / self.current_gradient_accumulation_steps
        if return_outputs:
            return loss, Outputs(logits=student_out.logits)
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._term_steps and "loss" in logs:
            for name, total in self._term_sums.items():
                logs[f"loss/{name}"] = round((total / self._term_steps[name]).item(), 6)
            self._term_sums.clear()
            self._term_steps.clear()
        super().log(logs, start_time)

"""DistillationTrainer: a transformers.Trainer whose loss is a CompositeLoss over student and teacher outputs.

Contract: the teacher is frozen, in eval mode, run under no_grad, prepared by Accelerate for evaluation
only; it is never `self.model`, so it is neither optimised nor saved. Parameters of the loss terms
(projections) are trained with the student but live outside it. Evaluation returns the student's logits only.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.modeling_outputs import SequenceClassifierOutput

from kdnlp import cache
from kdnlp.errors import KdnlpError, say
from kdnlp.losses import CompositeLoss


#: File in each checkpoint holding the loss terms' parameters (projections), so a resumed stage gets them back.
LOSS_STATE = "kdnlp_loss.pt"


class _LossGrads(TrainerCallback):
    """What DDP and the Trainer do for the model's gradients, done for the loss terms' parameters (projections),
    which live outside the wrapped model: averaged over processes before each optimizer step (else each
    process would train its own projections), and zeroed after it (else they would accumulate all run long)."""

    def __init__(self, loss: torch.nn.Module):
        self.loss = loss

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if args.world_size > 1:
            for p in self.loss.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= args.world_size

    def on_step_end(self, args, state, control, **kwargs):
        self.loss.zero_grad(set_to_none=True)


class DistillationTrainer(Trainer):
    # compute_loss normalises by `num_items_in_batch` itself, so the Trainer must not divide again.
    loss_is_scaled_for_ga = True

    def __init__(self, *args, loss: CompositeLoss, teacher: torch.nn.Module | None = None,
                 teacher_cache: bool = False, **kwargs):
        """`teacher_cache`: read the teacher's logits for the training set from the disk cache (kdnlp.cache),
        computing them once, instead of running the teacher every step; used when the loss reads only logits."""
        super().__init__(*args, **kwargs)
        # The Trainer counts the examples of all accumulated micro-batches only for models that take loss kwargs.
        self.model_accepts_loss_kwargs = True
        self.distill_loss = loss.to(self.args.device)
        self.add_callback(_LossGrads(self.distill_loss))
        self.teacher = None
        if loss.uses_teacher:
            if teacher is None:
                raise KdnlpError(f"the loss {loss.formula()} needs a teacher; pass --teacher")
            teacher.eval()
            teacher.requires_grad_(False)
            if self.args.bf16 or self.args.fp16:  # inference only: half the memory, no casts per op
                teacher.to(torch.bfloat16 if self.args.bf16 else torch.float16)
            self.teacher = self.accelerator.prepare_model(teacher, evaluation_mode=True)
            if teacher_cache and loss.needs == {"logits"} and self.train_dataset is not None:
                with self.args.main_process_first(desc="teacher cache"):
                    logits = cache.load_or_compute(self.teacher, self.train_dataset, self.data_collator,
                                                   self.args.per_device_eval_batch_size)
                self.train_dataset = cache.attach(self.train_dataset, logits)
        self._term_sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.args.device))
        self._term_steps = 0

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if cache.COLUMN not in self._signature_columns:  # keep the cached logits through column removal
            self._signature_columns.append(cache.COLUMN)

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        extra = [p for p in self.distill_loss.parameters() if p.requires_grad]
        if extra and not any(p is e for g in optimizer.param_groups for p in g["params"] for e in extra):
            optimizer.add_param_group({"params": extra, "weight_decay": 0.0})
        return optimizer

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save and any(True for _ in self.distill_loss.parameters()):
            torch.save(self.distill_loss.state_dict(), os.path.join(output_dir, LOSS_STATE))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is not None and os.path.isfile(path := os.path.join(checkpoint, LOSS_STATE)):
            self.distill_loss.load_state_dict(torch.load(path, map_location=self.args.device))
        super()._load_optimizer_and_scheduler(checkpoint)

    def _output_kwargs(self) -> dict[str, bool]:
        needs = self.distill_loss.needs
        return {"output_hidden_states": "hidden_states" in needs, "output_attentions": "attentions" in needs}

    def teacher_outputs(self, inputs: dict[str, torch.Tensor]) -> Any:
        """The one place teacher outputs come from: the cached logits that came with the batch, or a forward pass."""
        if self.teacher is None:
            return None
        if cache.COLUMN in inputs:
            return SequenceClassifierOutput(logits=inputs[cache.COLUMN])
        with torch.no_grad():
            return self.teacher(**{k: v for k, v in inputs.items() if k != "labels"}, **self._output_kwargs())

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", cache.COLUMN)}
        student_out = model(**model_inputs, **self._output_kwargs())
        loss, terms = self.distill_loss(student_out, self.teacher_outputs(inputs), inputs)
        if model.training:
            for name, value in terms.items():
                self._term_sums[name] += value
            self._term_steps += 1
            # Terms are means over this micro-batch; turn them into this batch's share of the mean over all
            # examples of the optimizer step (exact with gradient accumulation and uneven last batches).
            if num_items_in_batch is not None:
                loss = loss * (inputs["labels"].shape[0] / num_items_in_batch)
                if self.args.average_tokens_across_devices and self.args.world_size > 1:
                    loss = loss * self.args.world_size  # DDP averages gradients over processes
            else:
                loss = loss / self.current_gradient_accumulation_steps
        if return_outputs:
            return loss, SequenceClassifierOutput(logits=student_out.logits)
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._term_steps and "loss" in logs:
            for name, total in self._term_sums.items():
                logs[f"loss/{name}"] = round((total / self._term_steps).item(), 6)
            self._term_sums.clear()
            self._term_steps = 0
        super().log(logs, start_time)

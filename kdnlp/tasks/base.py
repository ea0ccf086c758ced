"""What is learned and how it is scored: one `Problem` per kind of task.

A problem owns everything that differs between kinds of task (GLUE classification or regression, seq2seq):
reading and encoding splits, the collator, the model class and the checks on a teacher, the kind of outputs
the losses compare, evaluation (metrics and speed), and the one-line summary of a result; where a kind of task
needs it (several tasks, kdnlp.tasks.multitask.problem), also how the student and the loss are built, which rows make
each training batch and what the run folder holds beside the student. The runner
(kdnlp.pipeline.runner), the trainer, `kdnlp eval` and the benchmarks use only this interface, so they never ask which
kind of task they run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

from kdnlp.core.errors import KdnlpError
from kdnlp.core.names import unprefixed
from kdnlp.losses import CompositeLoss
from kdnlp.modeling.students import build_student

if TYPE_CHECKING:
    import datasets

#: What a model's `logits` hold: one row of class scores per example, one score per example, or one row of
#: vocabulary scores per target token (the losses mask those to real target tokens).
Outputs = Literal["classes", "scalar", "tokens"]


@dataclass
class Published:
    """A model of a finished run as `kdnlp push` uploads it: its folder (relative to the run's), the task it
    answers, its teacher(s) as the run names them, its dev metrics, and the metrics to compare them with when
    the run holds them itself (else the teacher folder's own metrics.json is read)."""

    folder: Path
    task: str
    teacher: str | None
    metrics: dict[str, float]
    reference: dict[str, float] | None = None


class Problem:
    name: str
    outputs: Outputs
    #: Factor between a stored metric and the number shown (GLUE metrics are fractions, shown x100).
    display_scale: ClassVar[float] = 1.0
    #: Whether the teacher's logits are small enough to keep on disk for every training example.
    caches_logits: ClassVar[bool] = False
    #: TrainingArguments this kind of task needs unless the recipe says otherwise.
    training_defaults: ClassVar[dict[str, Any]] = {}

    @property
    def num_labels(self) -> int:
        """Rows of `logits` per example for classification; 1 for a scalar; unused for tokens."""
        return 1

    @property
    def segments(self) -> int:
        """Texts per example (2 for sentence pairs): the frame of a generated input (kdnlp.methods.datafree.trainer)."""
        return 1

    # ---- data ----
    def load(self, split: str, data_dir: str | None, max_samples: int | None = None, seed: int = 42,
             labeled: bool = True) -> "datasets.Dataset":
        """One split as raw text; with `labeled`, a split without gold labels or targets is an error."""
        raise NotImplementedError

    def encode(self, ds: "datasets.Dataset", tokenizer, max_length: int, prefix: str = "") -> "datasets.Dataset":
        """Token ids of `ds` (unpadded), with `labels`; with `prefix`, only the model inputs, their names prefixed
        (the teacher's own reading of the text when it has another tokenizer)."""
        raise NotImplementedError

    def collator(self, tokenizer, model=None) -> Callable:
        raise NotImplementedError

    def configure(self, rec) -> None:
        """Reads what the recipe says for this kind of task alone (multi-task: its `multitask` section)."""

    def train_batches(self, ds: "datasets.Dataset", batch_size: int, seed: int, processes: int):
        """A batch sampler fixing which rows of the encoded training set `ds` make each mini-batch (multi-task:
        one task per batch), `batch_size` rows per process, each process's part in turn; None lets the Trainer
        shuffle them."""
        return None

    def train_set(self, ds: "datasets.Dataset", targets: str, teacher: str | None, settings: Any,
                  device=None) -> "datasets.Dataset":
        """The training examples of a stage: the gold ones, or (seq2seq) with the outputs of the teacher `teacher`,
        decoded on `device`, as targets."""
        if targets != "gold":
            raise KdnlpError(f"targets '{targets}' (the teacher's generated outputs) are for seq2seq tasks, not {self.name}")
        return ds

    # ---- models ----
    def check_teacher(self, name: str) -> None:
        raise NotImplementedError

    def load_model(self, name: str, require_head: bool, **kwargs):
        """The model to train or distill from: with `require_head`, one already trained for this task."""
        raise NotImplementedError

    def teacher_folder(self, name: str) -> str:
        """The model folder whose tokenizer the teacher `name` reads text with."""
        return name

    def build_student(self, teacher, spec) -> tuple[Any, list[int]]:
        """The student a recipe's `student` section makes from the loaded teacher, and the teacher layers it keeps."""
        return build_student(teacher, spec)

    def build_loss(self, terms: list, ctx):
        """A stage's loss from its recipe terms (kdnlp.losses.LossTerm) and what they compare (LossContext)."""
        return CompositeLoss.build(terms, ctx)

    def export(self, model, tokenizer, folder) -> None:
        """Writes what a finished run folder `folder` holds beside the student's `model/` (multi-task: each task's
        classifier)."""

    def published(self, run: dict[str, Any], metrics: dict[str, float], task: str | None) -> "Published":
        """What `kdnlp push` uploads from a finished run of this problem: the run's student, or with `task` the
        part of it that answers `task` (only a multi-task run has parts)."""
        if task is not None:
            raise KdnlpError(f"--task is for multi-task runs; this run learned only {self.name}")
        return Published(Path("model"), run.get("task", self.name), run.get("teacher"), metrics)

    # ---- evaluation ----
    def compute_metrics(self) -> Callable | None:
        """The Trainer's `compute_metrics` for evaluation during training (None: loss only)."""
        return None

    def final_metrics(self, evaluated: dict[str, float], model, tokenizer, dev: "datasets.Dataset",
                      max_length: int) -> dict[str, float]:
        """A finished run's dev metrics, from the Trainer's last evaluation (and the model, if more is needed)."""
        return unprefixed(evaluated)

    def score(self, model, tokenizer, ds: "datasets.Dataset", max_length: int, batch_size: int) -> dict[str, float]:
        raise NotImplementedError

    def task_score(self, metrics: dict[str, float]) -> float:
        """The one number a model is ranked by."""
        raise NotImplementedError

    def speed(self, model, tokenizer, ds: "datasets.Dataset", max_length: int) -> dict[str, float]:
        """`latency_ms_b1` (median, one example at a time) and `throughput_b32` (examples/s in batches of 32)."""
        raise NotImplementedError

    def summary(self, metrics: dict[str, float], examples: int, split: str = "dev") -> str:
        shown = ", ".join(f"{k} {self.display_scale * v:.2f}" for k, v in metrics.items() if k in self.metric_names)
        return f"{self.name} {split} ({examples} examples): {shown}"

    @property
    def metric_names(self) -> tuple[str, ...]:
        raise NotImplementedError

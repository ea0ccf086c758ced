"""What is learned and how it is scored: one `Problem` per kind of task.

A problem owns what every kind of task has: reading and encoding splits, the collator, the model class and the
checks on a teacher, the kind of outputs the losses compare, evaluation (metrics and speed), the one-line summary of
a result, and what a model card says of the task. What only some kinds need (a recipe section of their own, the
order of training batches, the teacher's outputs as targets, their own student or loss, models beside the student
in the run folder, ...) is an optional capability (kdnlp.tasks.capabilities) that the caller detects. The runner
(kdnlp.pipeline.runner), the trainer, `kdnlp eval` and the benchmarks use only these, so they never ask which kind
of task they run. A problem keeps no state between calls: what a call needs comes in its arguments.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

from kdnlp.core.names import unprefixed
from kdnlp.core.registry import Registry

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


@dataclass
class Card:
    """What a model card says of a task: the Hub's pipeline tag and `datasets`, and where its dev metrics were
    measured (the model-index entry: task type, dataset id, shown name, config and split; `metrics`: the metrics
    reported, None for every quality metric the run has)."""

    pipeline_tag: str
    datasets: list[str]
    task_type: str
    dataset: str
    dataset_name: str
    config: str | None
    split: str
    metrics: tuple[str, ...] | None


@dataclass(frozen=True)
class Kind:
    """A kind of task as kdnlp.tasks.kinds.get_problem finds it: `make(task, **options)` is the problem of a task key
    of this kind, or None for a key of another kind; `keys` lists the valid keys in errors; `options`: the options
    beside the key that this kind takes (keywords of `make`)."""

    make: Callable[..., "Problem | None"]
    keys: str
    options: tuple[str, ...] = ()


#: The kinds of task by name; each kind's problem module registers its own, and kdnlp.tasks.kinds imports them all.
KINDS: Registry[Kind] = Registry("kind of task")


class Problem(ABC):
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
    @abstractmethod
    def metric_names(self) -> tuple[str, ...]:
        """The metrics a result reports (and `summary` shows)."""

    # ---- data ----
    @abstractmethod
    def load(self, split: str, data_dir: str | None, max_samples: int | None = None, seed: int = 42,
             labeled: bool = True) -> "datasets.Dataset":
        """One split as raw text; with `labeled`, a split without gold labels or targets is an error."""

    @abstractmethod
    def encode(self, ds: "datasets.Dataset", tokenizer, max_length: int, prefix: str = "") -> "datasets.Dataset":
        """Token ids of `ds` (unpadded), with `labels`; with `prefix`, only the model inputs, their names prefixed
        (the teacher's own reading of the text when it has another tokenizer)."""

    @abstractmethod
    def collator(self, tokenizer, model=None) -> Callable:
        """Pads a list of encoded rows into a batch (`model`: the one it is for)."""

    # ---- models ----
    @abstractmethod
    def check_teacher(self, name: str) -> None:
        """Fails unless `name` names a teacher trained for this task."""

    @abstractmethod
    def load_model(self, name: str, require_head: bool, **kwargs):
        """The model to train or distill from: with `require_head`, one already trained for this task."""

    # ---- evaluation ----
    def compute_metrics(self) -> Callable | None:
        """The Trainer's `compute_metrics` for evaluation during training (None: loss only)."""
        return None

    def final_metrics(self, evaluated: dict[str, float], model, tokenizer, dev: "datasets.Dataset",
                      max_length: int, teacher=None) -> dict[str, float]:
        """A finished run's dev metrics, from the Trainer's last evaluation (and the model, if more is needed;
        `teacher`: the run's loaded teacher, which a kind may score beside it)."""
        return unprefixed(evaluated)

    @abstractmethod
    def score(self, model, tokenizer, ds: "datasets.Dataset", max_length: int, batch_size: int) -> dict[str, float]:
        """The metrics of `model` on the raw split `ds`."""

    @abstractmethod
    def task_score(self, metrics: dict[str, float]) -> float:
        """The one number a model is ranked by."""

    @abstractmethod
    def speed(self, model, tokenizer, ds: "datasets.Dataset", max_length: int) -> dict[str, float]:
        """`latency_ms_b1` (median, one example at a time) and `throughput_b32` (examples/s in batches of 32)."""

    def summary(self, metrics: dict[str, float], examples: int, split: str = "dev") -> str:
        shown = ", ".join(f"{k} {self.display_scale * v:.2f}" for k, v in metrics.items() if k in self.metric_names)
        return f"{self.name} {split} ({examples} examples): {shown}"

    # ---- publishing ----
    @abstractmethod
    def card(self, data_dir: str | None) -> Card:
        """What the model card of a student of this task says of it (`data_dir`: where the run read its data)."""

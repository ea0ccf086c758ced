"""What only some kinds of task do: optional capabilities of a `Problem` (kdnlp.tasks.base).

Each is a small protocol that the caller (the runner, the trainer, a tool) detects with `isinstance` and does
without when a problem lacks it; the behaviour without it is the caller's, written once. A capability reads nothing
that an earlier call on the problem set: what it needs comes in its arguments.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import datasets

    from kdnlp.tasks.base import Problem, Published


@runtime_checkable
class Configured(Protocol):
    """A kind that a recipe section sets up (multi-task: `multitask`)."""

    def configured(self, rec) -> "Problem":
        """A new problem, this one as the recipe `rec` sets it up."""


@runtime_checkable
class BatchOrder(Protocol):
    """A kind that fixes which rows make each training batch (multi-task: one task per batch); without it the
    Trainer shuffles them."""

    def train_batches(self, ds: "datasets.Dataset", batch_size: int, seed: int, processes: int):
        """A batch sampler of the encoded training set `ds`, `batch_size` rows per process, each process's part in
        turn."""


@runtime_checkable
class TeacherTargets(Protocol):
    """A kind that can train on the teacher's outputs as targets (seq2seq: `targets:` teacher, inter, both);
    without it a stage trains on the gold examples only."""

    def train_set(self, ds: "datasets.Dataset", targets: str, teacher: str | None, settings: Any,
                  device=None) -> "datasets.Dataset":
        """The training examples of a stage: the gold ones, or with the outputs of the teacher `teacher`, decoded
        on `device` as `settings` say, as targets."""


@runtime_checkable
class TargetInputs(Protocol):
    """A kind whose models read the targets too (seq2seq: the decoder's inputs, made from the labels); without
    it the teacher reads only the text."""

    def target_inputs(self, inputs: dict[str, Any], config) -> dict[str, Any]:
        """The teacher's inputs that come from the targets of the collated batch `inputs` (the same whichever
        tokenizer read the text), made for the teacher whose config is `config`."""


@runtime_checkable
class ModelChecks(Protocol):
    """A kind with checks on the loaded teacher and student against a recipe's loss terms (seq2seq: the teacher
    can make its decoder inputs, per-token distributions over vocabularies of one size)."""

    def check_models(self, terms: list[tuple[str, Any]], teacher: str, student: str | None, teacher_model,
                     student_model) -> None:
        """Fails before anything trains; `terms`: (name, loss class) of every stage's terms."""


@runtime_checkable
class TeacherFolder(Protocol):
    """A kind whose teacher is named by more than a model folder (multi-task: each task's ensemble); without it
    the teacher's name is its folder."""

    def teacher_folder(self, name: str) -> str:
        """The model folder whose tokenizer the teacher `name` reads text with."""


@runtime_checkable
class OwnStudent(Protocol):
    """A kind whose student is not the teacher's architecture cut down (multi-task: a shared encoder with one head
    per task); without it kdnlp.modeling.students.build_student makes it."""

    def build_student(self, teacher, spec) -> tuple[Any, list[int]]:
        """The student a recipe's `student` section makes from the loaded teacher, and the teacher layers it keeps."""


@runtime_checkable
class OwnLoss(Protocol):
    """A kind whose loss is not the recipe terms' weighted sum over whole batches (multi-task: per task, on an
    ensemble's targets); without it kdnlp.losses.CompositeLoss builds it."""

    def build_loss(self, terms: list, ctx, teacher):
        """A stage's loss from its recipe terms (kdnlp.losses.LossTerm), what they compare (LossContext) and the
        loaded teacher (None without one)."""


@runtime_checkable
class Parts(Protocol):
    """A kind whose run folder holds models beside the student's `model/` (multi-task: one classifier per task),
    which are what is published; without it the run's student is."""

    def export(self, model, tokenizer, folder: Path) -> None:
        """Writes the parts of the finished run folder `folder` from its student."""

    def published(self, run: dict[str, Any], metrics: dict[str, float], task: str | None) -> "Published":
        """What `kdnlp push` uploads from a finished run (run.json `run`, dev `metrics`): the part answering `task`."""


@runtime_checkable
class GeneratedInputs(Protocol):
    """A kind whose examples a generator can make up (data-free distillation, kdnlp.methods.datafree)."""

    @property
    def segments(self) -> int | None:
        """Texts per example (2 for sentence pairs): the frame of a generated input; None where generated inputs
        cannot teach the task (its outputs are not classes)."""


@runtime_checkable
class MajorityClass(Protocol):
    """A kind with a majority-class baseline on its dev set (kdnlp.tools.check)."""

    def majority_score(self, data_dir: str | None, max_samples: int | None = None) -> float:
        """The task score of predicting the most frequent dev label for every one of the first `max_samples` dev
        examples (all without it)."""

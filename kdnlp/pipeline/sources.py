"""Where a stage's training examples come from (a recipe stage's `data:`), one registered `Source` each: the task's
train split, unlabeled text (general distillation) or a generator trained from the teacher (data-free).

A source says whether its examples carry gold labels, whether they are the same every epoch (so the teacher's
logits can be cached), whether it reads the task's train split, and how its stage's trainer is built; the runner
(kdnlp.pipeline.runner) asks it and never which source it is.
"""
from __future__ import annotations

from typing import Any, ClassVar

from kdnlp.core.errors import KdnlpError
from kdnlp.core.registry import Registry
from kdnlp.methods.datafree.trainer import data_free_trainer, latent_seeds, parse_settings
from kdnlp.tasks.capabilities import TeacherTargets
from kdnlp.training.trainer import DistillationTrainer


class Source:
    #: What the examples are, for messages ("trains on ...").
    examples: ClassVar[str]
    #: Whether the examples have gold labels (else terms that read labels are refused).
    labelled: ClassVar[bool] = False
    #: Whether the stage reads the task's train split.
    reads_task: ClassVar[bool] = False
    #: Whether each epoch sees the same inputs, so the teacher's logits for them can come from the disk cache.
    caches_logits: ClassVar[bool] = True

    @classmethod
    def settings(cls, raw: Any, where: str) -> dict[str, Any]:
        """The stage's `generator` section, validated; only the generated source takes one."""
        if raw:
            raise KdnlpError(f"{where}: only stages with 'data: generated' take a generator section")
        return {}

    @classmethod
    def train_set(cls, run, st):
        raise NotImplementedError

    @classmethod
    def trainer(cls, run, st, **kwargs):
        """The stage's trainer, from the arguments every stage shares (kdnlp.pipeline.runner.run_stage)."""
        return DistillationTrainer(**kwargs)


SOURCES: Registry[type[Source]] = Registry("stage data")


@SOURCES.register("task")
class TaskSource(Source):
    examples = "the task's train split"
    labelled = True
    reads_task = True

    @classmethod
    def train_set(cls, run, st):
        """The gold examples, or those the problem makes with the teacher's outputs as targets (TeacherTargets)."""
        ds = run.train
        if isinstance(run.problem, TeacherTargets):
            with run.state.main_process_first():  # teacher outputs are generated once, then read from the cache
                settings = run.rec.generation_settings() if st.targets != "gold" else None
                ds = run.problem.train_set(run.train, st.targets, run.stage_teacher(st), settings,
                                           run.args[st.name].device)
        elif st.targets != "gold":
            raise KdnlpError(f"targets '{st.targets}' (the teacher's generated outputs) are for seq2seq tasks, not "
                             f"{run.problem.name}")
        run.train_sizes["task"] = len(ds)
        return run.encode(ds)


@SOURCES.register("text")
class TextSource(Source):
    examples = "unlabeled text"

    @classmethod
    def train_set(cls, run, st):
        run.train_sizes["text"] = len(run.text)
        return run.text


@SOURCES.register("generated")
class GeneratedSource(Source):
    """Inputs made by a generator trained from the teacher alone, new every step (kdnlp.methods.datafree.trainer)."""

    examples = "generated inputs"
    caches_logits = False

    @classmethod
    def settings(cls, raw, where):
        return parse_settings(raw, where)

    @classmethod
    def train_set(cls, run, st):
        ds = latent_seeds(st.generator, run.args[st.name])
        run.train_sizes["generated"] = len(ds)
        return ds

    @classmethod
    def trainer(cls, run, st, **kwargs):
        return data_free_trainer(run, st, **kwargs)

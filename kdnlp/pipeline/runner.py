"""The run of a recipe: prepare (recipe, problem, data, models) -> each stage (a DistillationTrainer) -> finish
(exported student, metrics). What differs between kinds of task is the problem's (kdnlp.tasks): its core, and the
optional capabilities (kdnlp.tasks.capabilities) it has, without which the runner does what is written here."""
from __future__ import annotations

import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.hashing import weights_digest
from kdnlp.core.names import TEACHER_PREFIX, unprefixed
from kdnlp.core.run import SETTINGS, RunFolder, read_json, write_json
from kdnlp.losses import LOSSES, CompositeLoss, LossContext
from kdnlp.modeling.layers import describe
from kdnlp.modeling.models import load_pretrained, load_tokenizer, num_params
from kdnlp.modeling.students import build_student, student_config
from kdnlp.pipeline import recipe as recipes
from kdnlp.pipeline.sources import SOURCES
from kdnlp.tasks.base import Problem
from kdnlp.tasks.capabilities import (BatchOrder, Configured, ModelChecks, OwnLoss, OwnStudent, Parts, TargetInputs,
                                      TeacherFolder)
from kdnlp.tasks.kinds import get_problem
from kdnlp.tasks.text import encode_text, load_text
from kdnlp.training.args import DEFAULT_TRAINING, training_args


#: Written in a stage's folder when the stage has finished, with its metrics.
STAGE_DONE = "done.json"


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint in `folder`. The Trainer writes `trainer_state.json` last, so a checkpoint
    without it was cut short (a kill while saving) and is passed over."""
    steps = [int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*") if p.name.split("-")[1].isdigit()]
    done = [s for s in sorted(steps, reverse=True) if (folder / f"checkpoint-{s}" / "trainer_state.json").is_file()]
    return str(folder / f"checkpoint-{done[0]}") if done else None


def _save(model, tokenizer, folder: Path) -> None:
    """A model folder that loads alone: a stage's student can be the `--student` of another run."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@dataclass
class Run:
    """Everything a recipe's stages share, made once by `prepare`."""

    rec: recipes.Recipe
    problem: Problem
    folder: RunFolder
    teacher: str | None
    tokenizer: Any
    teacher_tokenizer: Any | None  # the teacher's own, when it reads text differently from the student
    teacher_model: Any | None
    student_model: Any
    train: Any  # the raw training split; None when no stage reads it (kdnlp.pipeline.sources)
    text: Any | None  # unlabeled text for `data: text` stages, encoded
    dev: Any
    dev_enc: Any
    args: dict[str, Any]  # stage name -> TrainingArguments
    info: dict[str, Any]
    seed: int
    teacher_cache: bool
    resume: bool
    started: float = field(default_factory=time.time)
    train_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def state(self):
        return next(iter(self.args.values())).distributed_state  # made by TrainingArguments: one per process group

    @property
    def work(self) -> Path:
        return self.folder.work

    def stage_teacher(self, st: recipes.Stage) -> str | None:
        """The teacher of stage `st`: the run's until a `teacher: previous` stage, from which on (a stage keeps the
        teacher of the one before it) the model folder of the stage before the last such stage."""
        stages = self.rec.stages[:self.rec.stages.index(st) + 1]
        links = [i for i, s in enumerate(stages) if s.teacher == "previous"]
        if not links:
            return self.teacher
        return str(self.work / "stages" / stages[links[-1] - 1].name / "model")

    def encode(self, ds):
        """`ds` tokenised for the student and, when it reads text differently, for the teacher as well."""
        return both_readings(self.problem.encode, ds, self.tokenizer, self.teacher_tokenizer, self.rec.max_length)

    def collator(self, model):
        collate = self.problem.collator(self.tokenizer, model)
        if self.teacher_tokenizer is None:
            return collate
        return PairedCollator(collate, self.problem.collator(self.teacher_tokenizer, self.teacher_model))


def both_readings(encode, ds, tokenizer, teacher_tokenizer, max_length: int):
    """`ds` tokenised by `encode(ds, tokenizer, max_length, prefix="")` for the student and, when the teacher reads
    text differently (`teacher_tokenizer`, else None), for the teacher as well, in columns named `teacher_...`."""
    enc = encode(ds, tokenizer, max_length)
    if teacher_tokenizer is None:
        return enc
    import datasets

    own = encode(ds, teacher_tokenizer, max_length, prefix=TEACHER_PREFIX)
    return datasets.concatenate_datasets([enc, own], axis=1)


class PairedCollator:
    """Pads the student's columns with the student's collator and the teacher's (`teacher_...`) with the teacher's."""

    def __init__(self, student, teacher):
        self.student, self.teacher = student, teacher

    def __call__(self, features: list[dict]) -> dict:
        own = [{k.removeprefix(TEACHER_PREFIX): v for k, v in f.items() if k.startswith(TEACHER_PREFIX)} for f in features]
        rest = [{k: v for k, v in f.items() if not k.startswith(TEACHER_PREFIX)} for f in features]
        return {**self.student(rest), **{TEACHER_PREFIX + k: v for k, v in self.teacher(own).items()}}


def _teacher_folder(problem: Problem, teacher: str) -> str:
    """The model folder whose tokenizer the teacher `teacher` reads text with: the teacher's own, unless the problem
    names teachers otherwise."""
    return problem.teacher_folder(teacher) if isinstance(problem, TeacherFolder) else teacher


def _teacher_reading(rec: recipes.Recipe, problem: Problem, teacher: str, student: str, tokenizer, sample):
    """The teacher's tokenizer if it reads `sample` differently from the student's, else None. Terms that compare
    the two models token by token or layer by layer need one reading; the others let each read the text its way."""
    theirs = load_tokenizer(_teacher_folder(problem, teacher))
    if theirs.get_vocab() == tokenizer.get_vocab() and problem.encode(sample, theirs, rec.max_length).to_dict() == \
            problem.encode(sample, tokenizer, rec.max_length).to_dict():
        return None
    aligned = [t.name for s in rec.stages for t in s.losses if LOSSES.get(t.loss).aligns(problem.outputs)]
    if aligned:
        raise KdnlpError(
            f"teacher '{teacher}' ({len(theirs)} tokens) and student '{student}' ({len(tokenizer)} tokens) read text "
            f"differently (different vocabularies or inputs), and the term '{aligned[0]}' compares them token by token "
            "or layer by layer; use a student built from the teacher (kdnlp init-student)"
        )
    say("teacher and student read text differently: each reads it with its own tokenizer")
    return theirs


def prepare(recipe, task, output_dir, teacher=None, student=None, data_dir=None, overrides=None, overwrite=False,
            max_train_samples=None, max_eval_samples=None, stage=None, text=None, teacher_cache=True, resume=False,
            problem_options=None) -> Run:
    """Checks the inputs, loads data and models, and opens the run folder (see `run_recipe`)."""
    rec = recipe if isinstance(recipe, recipes.Recipe) else recipes.load(recipe, overrides)
    problem = get_problem(task, **(problem_options or {}))
    if isinstance(problem, Configured):
        problem = problem.configured(rec)
    folder = _check_inputs(rec, output_dir, overwrite, teacher, student, stage, text, max_train_samples,
                           max_eval_samples)
    seed = int(rec.training.get("seed", DEFAULT_TRAINING["seed"]))
    if teacher is not None:
        problem.check_teacher(teacher)
    tokenizer = load_tokenizer(student or _teacher_folder(problem, teacher))
    train = None
    if any(SOURCES.get(s.data).reads_task for s in rec.stages):  # data-free runs never open the train split
        train = problem.load("train", data_dir, max_train_samples, seed)
    dev = problem.load("validation", data_dir, max_eval_samples, seed)
    teacher_tokenizer = None
    if student is not None and teacher is not None:
        teacher_tokenizer = _teacher_reading(rec, problem, teacher, student, tokenizer, dev.select(range(min(8, len(dev)))))
    teacher_model, student_model, info = _load_models(rec, problem, teacher, student, teacher_tokenizer, seed)
    args = {st.name: training_args(folder.work / "stages" / st.name, {**problem.training_defaults,
                                                                        **rec.stage_training(st)})
            for st in rec.stages}
    text_set = None
    if any(s.data == "text" for s in rec.stages):  # the teacher reads the text its own way, as it reads the task's
        text_set = both_readings(encode_text, load_text(text, max_train_samples, seed), tokenizer, teacher_tokenizer,
                                 rec.max_length)
    run = Run(rec, problem, folder, teacher, tokenizer, teacher_tokenizer, teacher_model, student_model,
              train, text_set, dev, None, args, info, seed, teacher_cache, resume)
    run.dev_enc = run.encode(dev)
    settings = {"recipe": rec.to_dict(), "task": problem.name, "teacher": teacher, "student": student, "text": text,
                "data_dir": data_dir, "max_train_samples": max_train_samples, "max_eval_samples": max_eval_samples}
    if problem_options:
        settings["task_options"] = problem_options
    _open_folder(run, settings, overwrite)
    return run


def _check_inputs(rec: recipes.Recipe, output_dir, overwrite: bool, teacher: str | None, student: str | None,
                  stage: str | None, text, max_train_samples: int | None, max_eval_samples: int | None) -> RunFolder:
    """Fails on inputs that do not make a run of `rec`, before anything loads; returns the run's folder (unopened)."""
    if rec.uses_teacher and teacher is None:
        raise KdnlpError(f"recipe '{rec.name}' distills from a teacher; pass --teacher")
    if student is None and (teacher is None or rec.student is None):
        raise KdnlpError(f"recipe '{rec.name}' builds no student from a teacher; pass the model to train (--student)")
    folder = RunFolder(output_dir, overwrite)
    text_stages = [s.name for s in rec.stages if s.data == "text"]
    if text_stages and not text:
        raise KdnlpError(f"stage '{text_stages[0]}' of recipe '{rec.name}' trains on unlabeled text; pass --text FILE")
    if stage is not None and stage not in [s.name for s in rec.stages]:
        raise KdnlpError(f"unknown stage '{stage}' for recipe '{rec.name}'; valid: {', '.join(s.name for s in rec.stages)}")
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and value < 1:
            raise KdnlpError(f"bad value {value} for {name}: must be at least 1")
    return folder


def _load_models(rec: recipes.Recipe, problem: Problem, teacher: str | None, student: str | None, teacher_tokenizer,
                 seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """The teacher (None without one) and the student, loaded or built from the teacher (seeded by `seed`), checked
    against the recipe's stages and terms; and the run's record of them (run.json)."""
    import transformers

    transformers.set_seed(seed)
    teacher_model = problem.load_model(teacher, require_head=True) if teacher is not None else None
    info: dict[str, Any] = {"task": problem.name, "recipe": rec.name, "teacher": teacher, "student": student}
    if student is not None:
        student_model = problem.load_model(student, require_head=False)
    else:
        build = problem.build_student if isinstance(problem, OwnStudent) else build_student
        student_model, ids = build(teacher_model, rec.student)
        c = student_model.config
        say(f"student ({rec.student.init}): teacher layers {ids}, hidden {c.hidden_size}, {c.num_attention_heads} heads")
        info["student_layers"] = ids
    _check_chain(rec, student_model.config, teacher_tokenizer is not None)
    if teacher_model is not None and isinstance(problem, ModelChecks):
        terms = [(t.name, LOSSES.get(t.loss)) for st in rec.stages for t in st.losses]
        problem.check_models(terms, teacher, student, teacher_model, student_model)
    info["params"] = {"student": num_params(student_model)}
    if teacher_model is not None:
        info["params"]["teacher"] = num_params(teacher_model)
    return teacher_model, student_model, info


def _open_folder(run: Run, settings: dict[str, Any], overwrite: bool) -> None:
    """Starts the run folder with `settings` (an interrupted run's is continued if they are the same), and writes
    the resolved recipe in it. An interrupted run with a checkpoint is continued only with --resume."""
    folder = run.folder
    folder.check(settings, run.resume)
    stage_dirs = (folder.work / "stages" / st.name for st in run.rec.stages)
    pending = next((f for f in stage_dirs if not (f / STAGE_DONE).is_file()), None)
    if not (run.resume or overwrite) and pending and (checkpoint := last_checkpoint(pending)):
        raise KdnlpError(f"'{folder.work}' holds an interrupted run (stage '{pending.name}' saved {Path(checkpoint).name}); "
                         "pass --resume to continue it, or --overwrite to start that stage over")
    run.state.wait_for_everyone()
    if run.state.is_main_process:
        folder.start(settings, run.resume)
        (folder.work / "recipe.yaml").write_text(yaml.safe_dump(run.rec.to_dict(), sort_keys=False))
    run.state.wait_for_everyone()


def _check_chain(rec: recipes.Recipe, config, own_reading: bool) -> None:
    """Fails before anything trains if a `teacher: previous` stage cannot build its student from the student before
    it (`config`: the first stage's), or if that teacher would read text differently from the run's teacher."""
    for st in rec.stages:
        if st.teacher != "previous":
            continue
        if own_reading:
            raise KdnlpError(f"stage '{st.name}' learns from the previous stage's student, but the student reads text "
                             "differently from the teacher; use a student built from the teacher")
        try:
            config = student_config(config, st.student)
        except KdnlpError as e:
            raise KdnlpError(f"stages.{st.name}.student: {e}") from None


def _step_down(run: Run, st: recipes.Stage) -> dict[str, Any]:
    """For a `teacher: previous` stage: the student of the stage before it, read back from its model folder, becomes
    the teacher (the same weights in an uninterrupted and a resumed run; the teacher-logit cache keys on them), and
    the stage's student is built from it (seeded by the run's seed) as its `student` spec says. Returns the record of
    the pair kept in the stage's metrics and run.json."""
    import transformers

    folder = Path(run.stage_teacher(st))
    previous = folder.parent.name
    run.teacher_model = load_pretrained(str(folder), type(run.student_model))
    transformers.set_seed(run.seed)
    run.student_model, ids = build_student(run.teacher_model, st.student)
    say(f"stage '{st.name}': the teacher is the student of stage '{previous}'; the student starts from its layers {ids}")
    return {"teacher": f"stages/{previous}/model", "teacher_digest": weights_digest(run.teacher_model),
            "student_layers": ids, "params": {"student": num_params(run.student_model),
                                              "teacher": num_params(run.teacher_model)}}


def run_stage(run: Run, st: recipes.Stage) -> dict[str, Any]:
    """Trains stage `st` (or loads its student if an earlier run finished it); returns its metrics.

    With `run.resume`, training continues from the stage's last checkpoint if it has one (model, optimizer,
    scheduler, RNG and sampler position by the Trainer; loss-term parameters by DistillationTrainer). The stage's
    data source (kdnlp.pipeline.sources) gives its examples and builds its trainer."""
    folder = run.work / "stages" / st.name
    chain = _step_down(run, st) if st.teacher == "previous" else None
    if (folder / STAGE_DONE).is_file():
        say(f"stage '{st.name}' finished earlier: using its student")
        run.student_model = load_pretrained(str(folder / "model"), type(run.student_model))
        return read_json(folder / STAGE_DONE, remedy="pass --overwrite to start the run over")
    if not run.resume and run.state.is_main_process and folder.exists():
        shutil.rmtree(folder)  # checkpoints of an interrupted try: start the stage afresh
    run.state.wait_for_everyone()
    trainer, described = _stage_trainer(run, st)
    checkpoint = last_checkpoint(Path(trainer.args.output_dir)) if run.resume else None
    if checkpoint:
        say(f"stage '{st.name}': resuming from {checkpoint}")
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = {"train": result.metrics, "eval": trainer.evaluate(), "loss": described, **({"chain": chain} if chain else {})}
    run.student_model = trainer.model
    if run.state.is_main_process:
        _save(run.student_model, run.tokenizer, folder / "model")
        write_json(folder / STAGE_DONE, metrics)
    run.state.wait_for_everyone()
    return metrics


def _stage_trainer(run: Run, st: recipes.Stage) -> tuple[Any, dict[str, Any]]:
    """The trainer of stage `st`, made by its data source, and the record of its loss (formula and layer maps).

    The loss terms' parameters (projections) are built from the run's seed, whatever earlier stages did to the
    random state, and the Trainer broadcasts them from rank 0."""
    import transformers

    source = SOURCES.get(st.data)
    train = source.train_set(run, st)
    transformers.set_seed(run.seed)
    ctx = LossContext(run.problem.num_labels, run.student_model.config, getattr(run.teacher_model, "config", None),
                      run.problem.outputs)
    if isinstance(run.problem, OwnLoss):
        loss = run.problem.build_loss(st.losses, ctx, run.teacher_model)
    else:
        loss = CompositeLoss.build(st.losses, ctx)
    say(f"stage '{st.name}': loss = {loss.formula()}")
    described = {"formula": loss.formula(),
                 "layer_maps": {n: describe(t.pairs) for n, t in loss.terms.items() if hasattr(t, "pairs")}}
    args = run.args[st.name]
    batches = None
    if isinstance(run.problem, BatchOrder):
        batches = run.problem.train_batches(train, args.per_device_train_batch_size, args.seed, args.world_size)
    trainer = source.trainer(
        run, st,
        model=run.student_model,
        args=args,
        loss=loss,
        teacher=run.teacher_model,
        train_dataset=train,
        eval_dataset=run.dev_enc,
        data_collator=run.collator(run.student_model),
        processing_class=run.tokenizer,
        compute_metrics=run.problem.compute_metrics(),
        teacher_cache=run.teacher_cache and run.problem.caches_logits and source.caches_logits,
        train_batches=batches,
        target_inputs=run.problem.target_inputs if isinstance(run.problem, TargetInputs) else None,
    )
    return trainer, described


def finish(run: Run, stages: dict[str, Any]) -> dict[str, Any]:
    """Scores the student and moves the run folder into place once the last stage has run; returns the metrics."""
    import transformers

    last = list(stages)[-1]
    done = len(stages) == len(run.rec.stages)
    evaluated = stages[last]["eval"]
    final = unprefixed(evaluated)
    if done and run.state.is_main_process:
        final = run.problem.final_metrics(evaluated, run.student_model, run.tokenizer, run.dev, run.rec.max_length,
                                          run.teacher_model)
    metrics = {"task": run.problem.name, "split": "validation", "examples": len(run.dev), "metrics": final,
               "summary": run.problem.summary(final, len(run.dev)), "stages": stages, "finished": done}
    if not done:
        say(f"stopped after stage '{last}' as asked; the run waits in {run.work}/ (rerun to continue)")
        return metrics
    if not run.state.is_main_process:
        run.state.wait_for_everyone()
        return metrics
    _save(run.student_model, run.tokenizer, run.work / "model")
    if isinstance(run.problem, Parts):
        run.problem.export(run.student_model, run.tokenizer, run.work)
    write_json(run.work / "metrics.json", metrics)
    chain = {name: s["chain"] for name, s in stages.items() if "chain" in s}
    if chain:  # the run's student is the last link's
        run.info.update(chain=chain, params={**run.info["params"], "student": num_params(run.student_model)})
    run.info.update(
        losses={name: st["loss"] for name, st in stages.items() if "loss" in st},
        train_examples=run.train_sizes,
        seconds=round(time.time() - run.started, 1),
        versions={"python": platform.python_version(), "torch": __import__("torch").__version__,
                  "transformers": transformers.__version__},
        command=sys.argv,
    )
    write_json(run.work / "run.json", run.info)
    path = run.folder.finish()
    say(f"wrote {path}/ (model in {path / 'model'})")
    run.state.wait_for_everyone()
    return metrics


def run_recipe(
    recipe: str | recipes.Recipe,
    task: str,
    output_dir: str | Path,
    teacher: str | None = None,
    student: str | None = None,
    data_dir: str | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    stage: str | None = None,
    text: list[str] | None = None,
    teacher_cache: bool = True,
    resume: bool = False,
    **problem_options: Any,
) -> dict[str, Any]:
    """Runs the stages of `recipe` and writes the run folder `output_dir`; returns its metrics.

    `task` is a GLUE task or a seq2seq task (`translation`, `summarization`); `problem_options` are the
    latter's `source`, `target` (languages, file suffixes or columns) and evaluation decoding (`num_beams`,
    `max_new_tokens`). The trained model is `student` if given (for GLUE a classifier, or an encoder that gets a
    new head; for seq2seq a model folder, which may hold only a config: random weights), else a student built
    from the teacher's layers as the recipe's `student` section says. Stages finished by an earlier, interrupted
    run with the same settings are not redone. With `stage`, only that stage runs (the ones before it must have
    finished); the run folder is completed when its last stage has run. Stages with `data: text` train on the
    lines of the `text` files (capped by `max_train_samples`); stages with `targets: teacher` (seq2seq) train on
    the teacher's generated outputs (kdnlp.tasks.seq2seq.generation, cached).

    `teacher_cache`: stages whose loss reads only the teacher's logits take them from the disk cache
    (kdnlp.training.cache). `resume`: continue the interrupted run of `output_dir` with the same settings, mid-stage from
    the stage's last checkpoint. Under a multi-process launch (torchrun, `accelerate launch`, `--num-processes`)
    every process trains; only the main process writes the run folder.
    """
    options = {k: v for k, v in problem_options.items() if v is not None}
    run = prepare(recipe, task, output_dir, teacher, student, data_dir, overrides, overwrite, max_train_samples,
                  max_eval_samples, stage, text, teacher_cache, resume, options)
    stages: dict[str, Any] = {}
    try:
        for st in run.rec.stages:
            if stage is not None and st.name != stage and not (run.work / "stages" / st.name / STAGE_DONE).is_file():
                raise KdnlpError(f"stage '{stage}' starts from stage '{st.name}', which has not run; run --stage {st.name} first")
            stages[st.name] = run_stage(run, st)
            if st.name == stage:
                break
        return finish(run, stages)
    except KdnlpError:  # a check that needs the stage's models (loss terms, batch sizes) failed
        if run.state.is_main_process and not _progress(run):
            run.folder.discard()
        raise


def _progress(run: Run) -> bool:
    """Whether the run folder holds training worth continuing: a finished stage or a checkpoint."""
    folders = [run.work / "stages" / st.name for st in run.rec.stages]
    return any((f / STAGE_DONE).is_file() or last_checkpoint(f) for f in folders)


def finetune(model: str, task: str, output_dir: str | Path, **kwargs) -> dict[str, Any]:
    """Fine-tunes `model` on the task's labels or targets with the `finetune` recipe (for seq2seq, a folder with
    only a config and a tokenizer trains from random weights: a teacher from scratch)."""
    return run_recipe("finetune", task, output_dir, student=model, **kwargs)


def rerun(run_dir: str | Path, output_dir: str | Path, overrides: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    """Runs again what the run folder `run_dir` ran, from its settings.json (the resolved recipe, task, teacher,
    student, data, --text sources, subset sizes, task options), into `output_dir`. `overrides` change the recipe
    (`--set`), and `changes` (run_recipe's keywords, None meaning unchanged) replace the saved settings."""
    path = Path(run_dir) / SETTINGS
    if not path.is_file():
        raise KdnlpError(f"'{run_dir}' has no {SETTINGS}: give a folder written by kdnlp distill or finetune")
    saved = read_json(path)
    if saved.get("command") == "seeds":
        runs = sorted(str(p.parent) for p in Path(run_dir).glob(f"*/{SETTINGS}"))
        raise KdnlpError(f"'{run_dir}' is a seeds folder (distill --seeds), not one run: rerun one of its runs "
                         f"({', '.join(runs) or 'it has none yet'}) with --from, or the seeds with --seeds")
    if not isinstance(saved.get("recipe"), dict) or not isinstance(saved.get("task"), str):
        made = f"was written by kdnlp {saved['command']}" if "command" in saved else "names no recipe and task"
        raise KdnlpError(f"'{path}' {made}: give a run folder written by kdnlp distill or finetune")
    rec = recipes.from_data(saved["recipe"], overrides)
    kwargs = {k: saved.get(k) for k in ("teacher", "student", "data_dir", "text", "max_train_samples", "max_eval_samples")}
    kwargs.update(saved.get("task_options") or {})
    kwargs.update({k: v for k, v in changes.items() if v is not None})
    task = kwargs.pop("task", None) or saved["task"]
    say(f"rerunning {run_dir}: recipe '{rec.name}', task {task}")
    return run_recipe(rec, task, output_dir, **kwargs)

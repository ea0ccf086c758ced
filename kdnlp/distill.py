"""The run of a recipe: data -> models -> one DistillationTrainer per stage -> exported student + metrics."""
from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from kdnlp import recipe as recipes
from kdnlp.data.glue import GlueTask, encode, get_task, load_split, require_labels
from kdnlp.errors import KdnlpError, say
from kdnlp.run import RunFolder, write_json

#: Written in a stage's folder when the stage has finished, with its metrics.
STAGE_DONE = "done.json"

#: TrainingArguments kdnlp sets unless the recipe or --set says otherwise.
DEFAULT_TRAINING: dict[str, Any] = {
    "report_to": "none",
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 1,
    "logging_steps": 50,
    "per_device_eval_batch_size": 64,
    "seed": 42,
}


def _metrics_fn(task: GlueTask):
    from kdnlp import metrics

    def compute(pred):
        return metrics.compute(task, pred.predictions, pred.label_ids)

    return compute


def build_loss(stage: recipes.Stage, ctx):
    from kdnlp.losses import LOSSES, CompositeLoss

    terms = {}
    for term in stage.losses:
        cls = LOSSES.get(term.loss)
        terms[term.name] = (term.weight, cls(cls.Config(**term.params), ctx))
    return CompositeLoss(terms)


def _training_args(out: Path, settings: dict[str, Any]):
    import torch
    from transformers import TrainingArguments

    gpu = torch.accelerator.is_available()
    defaults = {**DEFAULT_TRAINING, "dataloader_pin_memory": gpu, "use_cpu": not gpu}
    try:
        return TrainingArguments(output_dir=str(out), **{**defaults, **settings})
    except (ValueError, TypeError) as e:
        raise KdnlpError(f"bad training settings: {str(e).splitlines()[0]}") from None


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


def _train_stage(st: recipes.Stage, student, teacher, glue: GlueTask, args, train, dev, tokenizer,
                 teacher_cache: bool, resume: bool):
    """One stage: a DistillationTrainer with the stage's composite loss. Returns its metrics and the student.
    With `resume`, training continues from the stage's last checkpoint if it has one (model, optimizer,
    scheduler, RNG and sampler position by the Trainer; loss-term parameters by DistillationTrainer)."""
    from transformers import DataCollatorWithPadding

    from kdnlp.losses import LossContext
    from kdnlp.trainer import DistillationTrainer

    loss = build_loss(st, LossContext(glue.num_labels, student.config, getattr(teacher, "config", None)))
    say(f"stage '{st.name}': loss = {loss.formula()}")
    trainer = DistillationTrainer(
        model=student,
        args=args,
        loss=loss,
        teacher=teacher,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=_metrics_fn(glue),
        teacher_cache=teacher_cache,
    )
    checkpoint = last_checkpoint(Path(args.output_dir)) if resume else None
    if checkpoint:
        say(f"stage '{st.name}': resuming from {checkpoint}")
    result = trainer.train(resume_from_checkpoint=checkpoint)
    return {"train": result.metrics, "eval": trainer.evaluate()}, trainer.model


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
) -> dict[str, Any]:
    """Runs the stages of `recipe` and writes the run folder `output_dir`; returns its metrics.

    The trained model is `student` if given (a classifier, or an encoder that gets a new head), else a
    student built from the teacher's layers as the recipe's `student` section says. Stages finished by an
    earlier, interrupted run with the same settings are not redone. With `stage`, only that stage runs (the
    ones before it must have finished); the run folder is completed when its last stage has run. Stages with
    `data: text` train on the lines of the `text` files (capped by `max_train_samples`).

    `teacher_cache`: stages whose loss reads only the teacher's logits take them from the disk cache
    (kdnlp.cache). `resume`: continue the interrupted run of `output_dir` with the same settings, mid-stage from
    the stage's last checkpoint. Under a multi-process launch (torchrun, `accelerate launch`, `--num-processes`)
    every process trains; only the main process writes the run folder.
    """
    import transformers

    from kdnlp.losses import LOSSES
    from kdnlp.models import check_classifier, check_same_vocab, load_classifier, load_tokenizer, num_params
    from kdnlp.students import build_student

    rec = recipe if isinstance(recipe, recipes.Recipe) else recipes.load(recipe, overrides)
    glue = get_task(task)
    if rec.uses_teacher and teacher is None:
        raise KdnlpError(f"recipe '{rec.name}' distills from a teacher; pass --teacher")
    if student is None and (teacher is None or rec.student is None):
        raise KdnlpError(f"recipe '{rec.name}' builds no student from a teacher; pass the model to train (--student)")
    run = RunFolder(output_dir, overwrite)
    text_stages = [s.name for s in rec.stages if s.data == "text"]
    if text_stages and not text:
        raise KdnlpError(f"stage '{text_stages[0]}' of recipe '{rec.name}' trains on unlabeled text; pass --text FILE")
    if stage is not None and stage not in [s.name for s in rec.stages]:
        raise KdnlpError(f"unknown stage '{stage}' for recipe '{rec.name}'; valid: {', '.join(s.name for s in rec.stages)}")
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and value < 1:
            raise KdnlpError(f"bad value {value} for {name}: must be at least 1")

    seed = int(rec.training.get("seed", DEFAULT_TRAINING["seed"]))
    if teacher is not None:
        check_classifier(teacher, glue)
    tokenizer = load_tokenizer(student or teacher)
    if student is not None and teacher is not None:
        check_same_vocab(load_tokenizer(teacher), tokenizer, teacher, student)
    train = load_split(glue, "train", data_dir, max_train_samples, seed)
    dev = load_split(glue, "validation", data_dir, max_eval_samples, seed)
    require_labels(dev, glue, "validation")

    transformers.set_seed(seed)
    teacher_model = load_classifier(teacher, glue, require_head=True) if teacher is not None else None
    info: dict[str, Any] = {"task": glue.name, "recipe": rec.name, "teacher": teacher, "student": student}
    if student is not None:
        student_model = load_classifier(student, glue, require_head=False)
    else:
        student_model, ids = build_student(teacher_model, rec.student)
        c = student_model.config
        say(f"student ({rec.student.init}): {len(ids)} layers from teacher layers {ids}, hidden {c.hidden_size}, "
             f"{c.num_attention_heads} heads")
        info["student_layers"] = ids
    attention = None
    if any("attentions" in LOSSES.get(t.loss).needs for st in rec.stages for t in st.losses):
        attention = "eager"  # sdpa returns no attention maps
        for model in filter(None, (teacher_model, student_model)):
            model.set_attn_implementation(attention)
    info["params"] = {"student": num_params(student_model)}
    if teacher_model is not None:
        info["params"]["teacher"] = num_params(teacher_model)

    args = {st.name: _training_args(run.work / "stages" / st.name, rec.stage_training(st)) for st in rec.stages}
    state = next(iter(args.values())).distributed_state  # made by TrainingArguments: one per process group
    train_sets = {"task": encode(train, tokenizer, glue, rec.max_length)}
    if text_stages:
        from kdnlp.data.text import encode_text, load_text

        train_sets["text"] = encode_text(load_text(text, max_train_samples, seed), tokenizer, rec.max_length)
    dev_enc = encode(dev, tokenizer, glue, rec.max_length)
    settings = {"recipe": rec.to_dict(), "task": glue.name, "teacher": teacher, "student": student, "text": text,
                "data_dir": data_dir, "max_train_samples": max_train_samples, "max_eval_samples": max_eval_samples}
    run.check(settings, resume)
    folders = (run.work / "stages" / st.name for st in rec.stages)
    pending = next((f for f in folders if not (f / STAGE_DONE).is_file()), None)
    if not (resume or overwrite) and pending and (checkpoint := last_checkpoint(pending)):
        raise KdnlpError(f"'{run.work}' holds an interrupted run (stage '{pending.name}' saved {Path(checkpoint).name}); "
                         "pass --resume to continue it, or --overwrite to start that stage over")
    state.wait_for_everyone()
    if state.is_main_process:
        run.start(settings, resume)
        (run.work / "recipe.yaml").write_text(yaml.safe_dump(rec.to_dict(), sort_keys=False))
    state.wait_for_everyone()
    work = run.work
    started = time.time()
    stages: dict[str, Any] = {}
    for st in rec.stages:
        folder = work / "stages" / st.name
        if (folder / STAGE_DONE).is_file():
            say(f"stage '{st.name}' finished earlier: using its student")
            stages[st.name] = json.loads((folder / STAGE_DONE).read_text())
            student_model = type(student_model).from_pretrained(folder / "model", attn_implementation=attention)
        elif stage is not None and st.name != stage:
            raise KdnlpError(f"stage '{stage}' starts from stage '{st.name}', which has not run; run --stage {st.name} first")
        else:
            if not resume and state.is_main_process and folder.exists():
                shutil.rmtree(folder)  # checkpoints of an interrupted try: start the stage afresh
            state.wait_for_everyone()
            stages[st.name], student_model = _train_stage(
                st, student_model, teacher_model, glue, args[st.name], train_sets[st.data], dev_enc, tokenizer,
                teacher_cache, resume
            )
            if state.is_main_process:
                _save(student_model, tokenizer, folder / "model")
                write_json(folder / STAGE_DONE, stages[st.name])
            state.wait_for_everyone()
        if st.name == stage:
            break

    last = list(stages)[-1]
    final = {k.removeprefix("eval_"): v for k, v in stages[last]["eval"].items()}
    metrics = {"task": glue.name, "split": "validation", "examples": len(dev), "metrics": final, "stages": stages,
               "finished": len(stages) == len(rec.stages)}
    if not metrics["finished"]:
        say(f"stopped after stage '{last}' as asked; the run waits in {work}/ (rerun to continue)")
        return metrics
    if not state.is_main_process:
        state.wait_for_everyone()
        return metrics
    _save(student_model, tokenizer, work / "model")
    write_json(work / "metrics.json", metrics)
    info.update(
        train_examples={name: len(ds) for name, ds in train_sets.items()},
        seconds=round(time.time() - started, 1),
        versions={"python": platform.python_version(), "torch": __import__("torch").__version__,
                  "transformers": transformers.__version__},
        command=sys.argv,
    )
    write_json(work / "run.json", info)
    path = run.finish()
    say(f"wrote {path}/ (model in {path / 'model'})")
    state.wait_for_everyone()
    return metrics


def finetune(model: str, task: str, output_dir: str | Path, **kwargs) -> dict[str, Any]:
    """Fine-tunes `model` (an encoder or a classifier) on the task's labels with the `finetune` recipe."""
    return run_recipe("finetune", task, output_dir, student=model, **kwargs)

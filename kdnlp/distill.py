"""The run of a recipe: data -> models -> one DistillationTrainer per stage -> exported student + metrics."""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from kdnlp import recipe as recipes
from kdnlp.data.glue import GlueTask, encode, get_task, load_split
from kdnlp.errors import KdnlpError
from kdnlp.run import RunFolder, write_json

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


def _say(msg: str) -> None:
    print(f"kdnlp: {msg}", file=sys.stderr, flush=True)


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

    defaults = {**DEFAULT_TRAINING, "dataloader_pin_memory": torch.cuda.is_available()}
    try:
        return TrainingArguments(output_dir=str(out), **{**defaults, **settings})
    except (ValueError, TypeError) as e:
        raise KdnlpError(f"bad training settings: {str(e).splitlines()[0]}") from None


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
) -> dict[str, Any]:
    """Runs every stage of `recipe` and writes the run folder `output_dir`; returns its metrics.

    The trained model is `student` if given (a classifier, or an encoder that gets a new head), else a
    student built from the teacher's layers as the recipe's `student` section says.
    """
    import transformers
    from transformers import DataCollatorWithPadding

    from kdnlp.losses import LOSSES, LossContext
    from kdnlp.models import check_classifier, check_same_vocab, load_classifier, load_tokenizer, num_params
    from kdnlp.students import build_student
    from kdnlp.trainer import DistillationTrainer

    rec = recipe if isinstance(recipe, recipes.Recipe) else recipes.load(recipe, overrides)
    glue = get_task(task)
    if rec.uses_teacher and teacher is None:
        raise KdnlpError(f"recipe '{rec.name}' distills from a teacher; pass --teacher")
    if student is None and (teacher is None or rec.student is None):
        raise KdnlpError(f"recipe '{rec.name}' builds no student from a teacher; pass the model to train (--student)")
    run = RunFolder(output_dir, overwrite)
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
    if -1 in dev["label"][:1]:
        raise KdnlpError(f"the {glue.name} validation file has no labels")

    transformers.set_seed(seed)
    teacher_model = load_classifier(teacher, glue, require_head=True) if teacher is not None else None
    info: dict[str, Any] = {"task": glue.name, "recipe": rec.name, "teacher": teacher, "student": student}
    if student is not None:
        student_model = load_classifier(student, glue, require_head=False)
    else:
        student_model, ids = build_student(teacher_model, rec.student)
        c = student_model.config
        _say(f"student ({rec.student.init}): {len(ids)} layers from teacher layers {ids}, hidden {c.hidden_size}, "
             f"{c.num_attention_heads} heads")
        info["student_layers"] = ids
    if any("attentions" in LOSSES.get(t.loss).needs for st in rec.stages for t in st.losses):
        for model in filter(None, (teacher_model, student_model)):
            model.set_attn_implementation("eager")  # sdpa returns no attention maps
    info["params"] = {"student": num_params(student_model)}
    if teacher_model is not None:
        info["params"]["teacher"] = num_params(teacher_model)

    train_enc = encode(train, tokenizer, glue, rec.max_length)
    dev_enc = encode(dev, tokenizer, glue, rec.max_length)
    work = run.start()
    (work / "recipe.yaml").write_text(yaml.safe_dump(rec.to_dict(), sort_keys=False))
    started = time.time()
    stages: dict[str, Any] = {}
    for stage in rec.stages:
        ctx = LossContext(glue.num_labels, student_model.config, getattr(teacher_model, "config", None))
        loss = build_loss(stage, ctx)
        _say(f"stage '{stage.name}': loss = {loss.formula()}")
        trainer = DistillationTrainer(
            model=student_model,
            args=_training_args(work / "stages" / stage.name, rec.stage_training(stage)),
            loss=loss,
            teacher=teacher_model,
            train_dataset=train_enc,
            eval_dataset=dev_enc,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            compute_metrics=_metrics_fn(glue),
        )
        result = trainer.train()
        stages[stage.name] = {"train": result.metrics, "eval": trainer.evaluate()}
        student_model = trainer.model

    student_model.save_pretrained(work / "model")
    tokenizer.save_pretrained(work / "model")
    final = {k.removeprefix("eval_"): v for k, v in stages[rec.stages[-1].name]["eval"].items()}
    metrics = {"task": glue.name, "split": "validation", "examples": len(dev), "metrics": final, "stages": stages}
    write_json(work / "metrics.json", metrics)
    info.update(
        train_examples=len(train),
        seconds=round(time.time() - started, 1),
        versions={"python": platform.python_version(), "torch": __import__("torch").__version__,
                  "transformers": transformers.__version__},
        command=sys.argv,
    )
    write_json(work / "run.json", info)
    path = run.finish()
    _say(f"wrote {path}/ (model in {path / 'model'})")
    return metrics


def finetune(model: str, task: str, output_dir: str | Path, **kwargs) -> dict[str, Any]:
    """Fine-tunes `model` (an encoder or a classifier) on the task's labels with the `finetune` recipe."""
    return run_recipe("finetune", task, output_dir, student=model, **kwargs)

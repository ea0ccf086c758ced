from __future__ import annotations

from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o


def distill(
    recipe: Annotated[str, typer.Option("--recipe", "-r", help="Recipe name (kdnlp recipes list) or path to a YAML recipe.")],
    teacher: Annotated[str, typer.Option("--teacher", help="Teacher: a classifier fine-tuned on the task (model or run folder, or Hub id).")],
    task: o.Task,
    output_dir: o.OutputDir,
    student: Annotated[Optional[str], typer.Option("--student", help="Student to train; default: built from the teacher's layers as the recipe says.")] = None,
    data_dir: o.DataDir = None,
    source: o.Source = None,
    target: o.Target = None,
    num_beams: o.NumBeams = None,
    max_new_tokens: o.MaxNewTokens = None,
    set_: o.Sets = None,
    max_train_samples: o.MaxTrain = None,
    max_eval_samples: o.MaxEval = None,
    stage: Annotated[Optional[str], typer.Option("--stage", help="Run only this stage of a multi-stage recipe (earlier stages must have finished).")] = None,
    text: Annotated[Optional[list[str]], typer.Option("--text", help="Unlabeled text for general-distillation stages: a text file (one text per line), a folder saved by datasets, or a Hub dataset id[:config]. Repeatable.")] = None,
    overwrite: o.Overwrite = False,
    resume: o.Resume = False,
    bf16: o.Bf16 = False,
    fp16: o.Fp16 = False,
    no_teacher_cache: Annotated[bool, typer.Option("--no-teacher-cache", help="Run the teacher every step instead of reading its logits from the disk cache.")] = False,
    num_processes: o.NumProcesses = 1,
) -> None:
    """Distill a teacher into a student with a recipe; writes the student to OUTPUT_DIR/model and its metrics."""
    overrides = [*(set_ or []), *o.precision(bf16, fp16)]
    o.relaunch(num_processes)
    from kdnlp.distill import run_recipe

    result = run_recipe(recipe, task, output_dir, teacher=teacher, student=student, data_dir=data_dir,
                        overrides=overrides, overwrite=overwrite, max_train_samples=max_train_samples,
                        max_eval_samples=max_eval_samples, stage=stage, text=text,
                        teacher_cache=not no_teacher_cache, resume=resume,
                        **o.task_options(source, target, num_beams, max_new_tokens))
    typer.echo(result["summary"])

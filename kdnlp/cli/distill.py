from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.errors import KdnlpError

hub = lazy("kdnlp.tools.hub")
distilling = lazy("kdnlp.pipeline.distill")
seeds_ = lazy("kdnlp.pipeline.seeds")


def distill(
    output_dir: o.OutputDir,
    recipe: Annotated[Optional[str], typer.Option("--recipe", "-r", help="Recipe name (kdnlp recipes list) or path to a YAML recipe.")] = None,
    teacher: Annotated[Optional[str], typer.Option("--teacher", help="Teacher: a classifier fine-tuned on the task (model or run folder, or Hub id).")] = None,
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, mnli-mm, qnli, rte, wnli) or seq2seq task (translation, summarization).")] = None,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Multi-task distillation: GLUE tasks learned by one student with a shared encoder, comma-separated (sst2,mrpc,rte); each needs --teachers.")] = None,
    teachers: Annotated[Optional[list[str]], typer.Option("--teachers", help="With --tasks: a task's teacher ensemble, TASK=FOLDER[,FOLDER...] (classifiers fine-tuned on it, e.g. by finetune --seeds). Repeatable.")] = None,
    from_: Annotated[Optional[Path], typer.Option("--from", help="Rerun this run folder (its settings.json: resolved recipe, task, models, data, subsets); other options given replace its values, --set changes its recipe.")] = None,
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
    report_to: o.ReportTo = None,
    push_to_hub: Annotated[Optional[str], typer.Option("--push-to-hub", help="When the run has finished, push the student and its model card to this Hub repository (user/name; private unless --public).")] = None,
    public: o.Public = False,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Run the recipe once per seed (e.g. 1,2,3) into OUTPUT_DIR/seed-N/, with a summary (mean ± sd); a rerun skips finished seeds, and one given more seeds (1,2,3 after 1) runs only the new ones.")] = None,
    control: Annotated[bool, typer.Option("--control", help="With --seeds: also run the no-teacher twin (gold labels only, same student and budget) per seed into OUTPUT_DIR/control-N/, and report the paired difference.")] = False,
) -> None:
    """Distill a teacher into a student with a recipe; writes the student to OUTPUT_DIR/model and its metrics."""
    overrides = [*(set_ or []), *o.precision(bf16, fp16), *o.report_to(report_to)]
    task, teacher = o.multitask(task, tasks, teacher, teachers)
    if seeds is not None:  # checked before any process starts
        given = [name for name, value in (("--push-to-hub", push_to_hub), ("--num-processes", num_processes > 1)) if value]
        if given:
            raise KdnlpError(f"--seeds runs whole recipes in this process; it does not take {given[0]}")
    seeds = None if seeds is None else seeds_.parse_seeds(seeds)
    if push_to_hub:
        hub.check_repo_id(push_to_hub)  # before the run, not after it
    o.relaunch(num_processes)
    result = distilling.distill(recipe, task, output_dir, from_, seeds, control, overrides, teacher=teacher,
                                student=student, data_dir=data_dir, overwrite=overwrite,
                                max_train_samples=max_train_samples, max_eval_samples=max_eval_samples, stage=stage,
                                text=text, teacher_cache=not no_teacher_cache, resume=resume,
                                **o.task_options(source, target, num_beams, max_new_tokens))
    typer.echo(result["summary"])
    if push_to_hub and result.get("finished") and os.environ.get("RANK", "0") == "0":  # one push per run
        pushed = hub.push_run(output_dir, push_to_hub, private=not public)
        typer.echo(f"pushed {len(pushed['files'])} files to {pushed['url']}")

"""Options shared by several commands (one definition each)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli.lazy import lazy
from kdnlp.core.errors import KdnlpError
from kdnlp.training import parallel

kinds = lazy("kdnlp.tasks.kinds")

Task = Annotated[str, typer.Option("--task", "-t", help="GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, mnli-mm, qnli, rte, wnli) or seq2seq task (translation, summarization).")]
DataDir = Annotated[
    Optional[str],
    typer.Option("--data-dir", envvar="GLUE_DIR", help="GLUE: local GLUE folder (download layout), default $GLUE_DIR, else the Hub dataset nyu-mll/glue. Seq2seq: a folder of parallel files (train.en/train.de, .source/.target, JSON lines), a saved dataset or a Hub id."),
]
Source = Annotated[Optional[str], typer.Option("--source", help="Seq2seq: source language, file suffix or column (e.g. en); omit for train.source/train.target files.")]
Target = Annotated[Optional[str], typer.Option("--target", help="Seq2seq: target language, file suffix or column (e.g. de).")]
NumBeams = Annotated[Optional[int], typer.Option("--num-beams", min=1, help="Seq2seq evaluation: beams when decoding (1 = greedy; default 5).")]
MaxNewTokens = Annotated[Optional[int], typer.Option("--max-new-tokens", min=1, help="Seq2seq evaluation: longest output in tokens (default 128, or fewer if the model has fewer positions).")]
OutputDir = Annotated[Path, typer.Option("--output-dir", "-o", help="Run folder to write (the model goes in its model/ subfolder).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty output folder (only once the new run has finished).")]
Sets = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a recipe value by dotted path, e.g. training.learning_rate=3e-5 or losses.hinton.temperature=4. Repeatable."),
]
MaxTrain = Annotated[Optional[int], typer.Option("--max-train-samples", help="Train on a seeded random subset of this many examples.")]
MaxEval = Annotated[Optional[int], typer.Option("--max-eval-samples", help="Evaluate on the first this-many dev examples.")]
Bf16 = Annotated[bool, typer.Option("--bf16", help="Mixed precision in bfloat16 (CPU or GPU): teacher inference in bf16, student under autocast, losses in float32.")]
Fp16 = Annotated[bool, typer.Option("--fp16", help="Mixed precision in float16 (GPU; loss scaling): teacher inference in fp16, losses in float32.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the interrupted run of OUTPUT_DIR (same command) from its last checkpoint.")]
NumProcesses = Annotated[
    int,
    typer.Option("--num-processes", min=1, help="Train in N processes on this machine (DDP: gloo on CPU, NCCL on GPUs); like accelerate launch -m kdnlp."),
]

# `\\[`: rich markup would take [tensorboard] for a style and drop it from the help.
ReportTo = Annotated[Optional[str], typer.Option("--report-to", help="Log every loss term and metric to: tensorboard (event files in each stage's runs/ folder; needs the tensorboard package, pip install 'kdnlp\\[tensorboard]').")]
Public = Annotated[bool, typer.Option("--public", help="Create the Hub repository public (default: private); needed to upload into an existing public one.")]


def report_to(value: str | None) -> list[str]:
    """The recipe override that --report-to stands for; the logger's package must be installed."""
    if value is None:
        return []
    if value != "tensorboard":
        raise KdnlpError(f"bad value '{value}' for --report-to; valid: tensorboard")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise KdnlpError("--report-to tensorboard needs the tensorboard package: pip install 'kdnlp[tensorboard]'") from None
    return [f"training.report_to={value}"]


def precision(bf16: bool, fp16: bool) -> list[str]:
    """The recipe overrides that --bf16/--fp16 stand for."""
    if bf16 and fp16:
        raise KdnlpError("choose one of --bf16 and --fp16")
    return ["training.bf16=true"] if bf16 else ["training.fp16=true"] if fp16 else []


def relaunch(num_processes: int) -> None:
    """With N > 1 and no launcher around this process, runs this same command in N processes and exits."""
    if num_processes > 1 and not parallel.launched():
        raise typer.Exit(parallel.launch(sys.argv[1:], num_processes))


def task_options(source: str | None, target: str | None, num_beams: int | None, max_new_tokens: int | None) -> dict:
    """The seq2seq options given, for kdnlp.tasks.kinds.get_problem (a GLUE task refuses any of them)."""
    given = {"source": source, "target": target, "num_beams": num_beams, "max_new_tokens": max_new_tokens}
    return {k: v for k, v in given.items() if v is not None}


def multitask(task: str | None, tasks: str | None, teacher: str | None, teachers: list[str] | None):
    """The task and teacher that --tasks and --teachers stand for (a multi-task problem's), or the given ones."""
    if tasks is None:
        if teachers:
            raise KdnlpError("--teachers gives the ensembles of a multi-task run: pass --tasks too (or --teacher for one task)")
        return task, teacher
    if task is not None or teacher is not None:
        raise KdnlpError(f"--tasks and --teachers replace --{'task' if task is not None else 'teacher'}: give one or the other")
    if not teachers:
        raise KdnlpError("--tasks needs the teachers of each task: --teachers TASK=FOLDER[,FOLDER...]")
    return kinds.joint_task(tasks), ";".join(teachers)


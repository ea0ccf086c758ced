from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy

hub = lazy("kdnlp.tools.hub")


def push(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (kdnlp distill or finetune).")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Hub repository to create or update: user/name or org/name.")],
    public: o.Public = False,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to (created if needed); default: main.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files that would go up and print the card; no network.")] = False,
    license: Annotated[Optional[str], typer.Option("--license", help="License of the card (default: that of the model the student comes from, when its card says, else apache-2.0).")] = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="The card's base_model (default: the Hub model the student comes from: the run's --student, else the teacher).")] = None,
    eval_json: Annotated[Optional[Path], typer.Option("--eval-json", help="Speed for the card from this file of kdnlp eval TEACHER RUN_DIR --speed --json-out.")] = None,
    measure_speed: Annotated[bool, typer.Option("--measure-speed", help="Measure teacher and student speed now for the card (needs the task's dev data).")] = False,
    data_dir: o.DataDir = None,
    task: Annotated[Optional[str], typer.Option("--task", help="Of a multi-task run, the task whose model to push (tasks/TASK/model).")] = None,
) -> None:
    """Upload a run's student (safetensors, config, tokenizer) with a generated distillation model card to the Hugging Face Hub."""
    speed = None
    if eval_json is not None:
        speed = hub.speed_from_eval(eval_json, run_dir, task)
    elif measure_speed:
        speed = hub.measure_speed(run_dir, data_dir, task=task)
    result = hub.push_run(run_dir, repo_id, private=not public, revision=revision, dry_run=dry_run, license=license,
                          base_model=base_model, speed=speed, task=task)
    visibility = "private" if result["private"] else "public"
    if dry_run:
        typer.echo(f"would push to {repo_id} ({visibility}, revision {revision or 'main'}):")
        for name in result["files"]:
            typer.echo(f"  {name}")
        typer.echo("\n" + result["card"])
    else:
        typer.echo(f"pushed {len(result['files'])} files to {result['url']} ({visibility})")

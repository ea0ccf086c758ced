from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.errors import KdnlpError

glue_suite = lazy("kdnlp.tools.glue_suite")


def glue(
    model: Annotated[str, typer.Option("--model", "-m", help="A run folder (scored on the task its run.json names), a multi-task run folder with tasks/<task>/model, or a classifier folder (scored on the tasks --tasks names).")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Folder to write: <task>.json, glue.md, results.json (and submission.zip).")],
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Only these of the run's tasks (comma-separated: cola,sst2,...); for a model folder without a run, the tasks it was trained for. Default: all the run's tasks.")] = None,
    data_dir: o.DataDir = None,
    predict_test: Annotated[bool, typer.Option("--predict-test", help="Also write the leaderboard's submission: the 11 files <Name>.tsv zipped in submission.zip.")] = False,
    fill_missing: Annotated[bool, typer.Option("--fill-missing", help="With --predict-test: placeholder rows (class 0, STS-B 2.5) for files without a model or test data, so the zip is complete.")] = False,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Score only the first this-many dev examples of each task (never applies to the test files).")] = None,
    max_length: Annotated[int, typer.Option("--max-length", help="Texts are truncated to this many tokens.")] = 128,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per forward pass.")] = 64,
    overwrite: o.Overwrite = False,
) -> None:
    """Score a model on every GLUE dev set there is (per-task JSON and a table with the GLUE average); with --predict-test, the leaderboard's zip."""
    if fill_missing and not predict_test:
        raise KdnlpError("--fill-missing fills the submission files: pass it with --predict-test")
    result = glue_suite.run_glue(model, output_dir, data_dir=data_dir, tasks=tasks, predict_test=predict_test,
                      fill_missing=fill_missing, max_samples=max_samples, max_length=max_length,
                      batch_size=batch_size, overwrite=overwrite)
    typer.echo(result["table"])
    if predict_test:
        typer.echo(f"submission: {Path(result['path']) / result['submission']['zip']}")

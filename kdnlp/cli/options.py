"""Options shared by several commands (one definition each)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Task = Annotated[str, typer.Option("--task", "-t", help="GLUE task: cola, sst2, mrpc, qqp, stsb, mnli, mnli-mm, qnli, rte, wnli.")]
DataDir = Annotated[
    Optional[str],
    typer.Option("--data-dir", envvar="GLUE_DIR", help="Local GLUE folder (GLUE download layout); default $GLUE_DIR, else the Hub dataset nyu-mll/glue."),
]
OutputDir = Annotated[Path, typer.Option("--output-dir", "-o", help="Run folder to write (the model goes in its model/ subfolder).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty output folder (only once the new run has finished).")]
Sets = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a recipe value by dotted path, e.g. training.learning_rate=3e-5 or losses.hinton.temperature=4. Repeatable."),
]
MaxTrain = Annotated[Optional[int], typer.Option("--max-train-samples", help="Train on a seeded random subset of this many examples.")]
MaxEval = Annotated[Optional[int], typer.Option("--max-eval-samples", help="Evaluate on the first this-many dev examples.")]

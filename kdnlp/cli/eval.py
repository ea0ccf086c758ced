from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.run import check_output_file, write_json

evaluation = lazy("kdnlp.tools.evaluation")


def eval_(
    models: Annotated[list[str], typer.Argument(help="Model or run folders (or Hub ids); the first is the reference for % and speedup.")],
    task: o.Task,
    data_dir: o.DataDir = None,
    source: o.Source = None,
    target: o.Target = None,
    num_beams: o.NumBeams = None,
    max_new_tokens: o.MaxNewTokens = None,
    split: Annotated[str, typer.Option("--split", help="Split with labels to score: validation, train, or (seq2seq) test.")] = "validation",
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Score only the first this-many examples.")] = None,
    speed: Annotated[bool, typer.Option("--speed", help="Also measure CPU latency (batch 1) and throughput (batch 32); seq2seq: of decoding, with the same settings.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json-out", help="Also write the results as JSON to this file.")] = None,
) -> None:
    """Metrics of one or more models on a task (GLUE, or BLEU/chrF/ROUGE of generated text), as a table (and JSON with --json-out)."""
    if json_out is not None:
        check_output_file(json_out, "--json-out")
    result = evaluation.evaluate_models(models, task, data_dir=data_dir, split=split, max_samples=max_samples, speed=speed,
                             **o.task_options(source, target, num_beams, max_new_tokens))
    typer.echo(evaluation.format_table(result))
    if json_out is not None:
        write_json(json_out, result)

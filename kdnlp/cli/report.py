from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy

report_ = lazy("kdnlp.tools.report")


def report(
    run_dirs: Annotated[list[str], typer.Argument(help="Run folders of one task; runs differing only in their seed make one row (mean ± sd).")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Folder to write: report.md, report.json, report.png.")],
    teacher: Annotated[Optional[str], typer.Option("--teacher", help="Reference model (default: the runs' teacher).")] = None,
    data_dir: o.DataDir = None,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Score only the first this-many dev examples (speed needs at least 32).")] = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Teacher and students side by side (score, % of teacher, parameters, size, CPU latency and throughput measured here) as a Markdown table and a PNG plot."""
    result = report_.build_report(run_dirs, output_dir, teacher=teacher, data_dir=data_dir, max_samples=max_samples,
                          overwrite=overwrite)
    typer.echo(result["table"])
    typer.echo(f"plot: {Path(result['path']) / report_.PLOT}")

from __future__ import annotations

from typing import Annotated, Optional

import typer

from kdnlp.cli.lazy import lazy

check_ = lazy("kdnlp.tools.check")


def check(
    folders: Annotated[list[str], typer.Argument(help="Seeds folders (distill --seeds, with --control for the comparison) of GLUE tasks.")],
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Flag a student whose mean is more than this many points (x100 for GLUE) below its control's (default 5).")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="GLUE folder for the dev labels (default: the one the runs were started with).")] = None,
) -> None:
    """Flag students at or below their dev set's majority-class score, or far below their no-teacher twin, and teachers at their majority class: a Markdown table."""
    typer.echo(check_.format_check(check_.check_folders(folders, threshold, data_dir)))

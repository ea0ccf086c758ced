from __future__ import annotations

from typing import Annotated, Optional

import typer

from kdnlp.tools.check import THRESHOLD


def check(
    folders: Annotated[list[str], typer.Argument(help="Seeds folders (distill --seeds, with --control for the comparison) of GLUE tasks.")],
    threshold: Annotated[float, typer.Option("--threshold", help="Flag a student whose mean is more than this many points (x100 for GLUE) below its control's.")] = THRESHOLD,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="GLUE folder for the dev labels (default: the one the runs were started with).")] = None,
) -> None:
    """Flag students at or below their dev set's majority-class score, or far below their no-teacher twin: a Markdown table."""
    from kdnlp.tools.check import check_folders, format_check

    typer.echo(format_check(check_folders(folders, threshold, data_dir)))

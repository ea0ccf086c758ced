from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli.lazy import lazy

claims_ = lazy("kdnlp.tools.claims")

app = typer.Typer(help="The claims table of docs/results.md: one JSON file per claim, the table made from them.",
                  no_args_is_help=True)


@app.command("table")
def table(
    files: Annotated[list[Path], typer.Argument(help="Claim files, e.g. docs/results/*.json (rows in the order of their file names).")],
    page: Annotated[Optional[Path], typer.Option("--page", help="Also write the table into this page, between its claims markers (docs/results.md).")] = None,
) -> None:
    """Print the claims as a Markdown table: seeds, mean ± sd, paired difference ± SE against the twin, met or missed."""
    text = claims_.format_claims(claims_.load_claims(files))
    typer.echo(text)
    if page is not None:
        changed = claims_.write_table(page, text)
        typer.echo(f"{page}: {'table updated' if changed else 'table already up to date'}", err=True)


@app.command("add")
def add(
    folder: Annotated[Path, typer.Argument(help="A seeds folder with a control (kdnlp distill --seeds ... --control).")],
    claim: Annotated[str, typer.Option("--claim", help="The claim in a few words, e.g. 'hinton beats its twin on SST-2 at 3 epochs'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Claim file to write, e.g. docs/results/hinton-sst2-3ep.json.")],
    teacher: Annotated[Optional[float], typer.Option("--teacher-score", help="The teacher's score in the unit shown (x100 for GLUE), for % of teacher.")] = None,
    min_se: Annotated[float, typer.Option("--min-se", help="Met when the paired difference is above this many standard errors.")] = 2.0,
    min_pct: Annotated[Optional[float], typer.Option("--min-pct", help="And when the recipe's mean is at least this % of the teacher (needs --teacher-score).")] = None,
    section: Annotated[Optional[str], typer.Option("--section", help="Anchor of the claim's section in docs/results.md.")] = None,
    metric: Annotated[Optional[str], typer.Option("--metric", help="How the scores were measured (default: task score, the runs' own evaluation).")] = None,
    page: Annotated[Optional[Path], typer.Option("--page", help="Then rewrite this page's claims table from every claim file in the output's folder (docs/results.md).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing claim file.")] = False,
) -> None:
    """Write a claim file from a seeds folder's summary.json (and with --page, the table that lists it)."""
    if page is not None:
        claims_.read_page(page)  # a page without the markers is refused before anything is written
    claims_.claim_from_seeds(folder, claim, output, teacher=teacher, min_se=min_se, min_pct=min_pct, section=section,
                             metric=metric, overwrite=overwrite)
    typer.echo(f"wrote {output}")
    if page is not None:
        table(sorted(output.parent.glob("*.json")), page)

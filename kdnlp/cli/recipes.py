from __future__ import annotations

from typing import Annotated

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy

recipe = lazy("kdnlp.pipeline.recipe")

app = typer.Typer(help="List the recipes, or show one fully resolved and validated.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """The recipes shipped with kdnlp."""
    names = recipe.available()
    width = max(map(len, names))
    for name in names:
        data, _ = recipe.read(name)
        typer.echo(f"{name:<{width}}  {data.get('description', '')}")


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Recipe name or path to a YAML recipe.")],
    set_: o.Sets = None,
) -> None:
    """A recipe with defaults filled in and overrides applied, after validation."""
    import yaml

    typer.echo(yaml.safe_dump(recipe.load(name, set_ or []).to_dict(), sort_keys=False).rstrip())

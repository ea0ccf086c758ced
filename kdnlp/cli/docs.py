"""docs/cli.md, written from the Typer app: `python -m kdnlp.cli.docs > docs/cli.md`.

The page is plain Markdown built from each command's help, usage and parameters as the option parser states them, so
it reads the same on any machine (no terminal width, no rich markup). tests/test_docs.py checks that the committed
page is what this prints. Not imported by `kdnlp` itself, so `kdnlp --help` does not pay for it.
"""
from __future__ import annotations

import inspect
import sys

import typer

from kdnlp.cli.main import app

NAME = "kdnlp"
HEADER = (f"<!-- Generated from kdnlp/cli/main.py by `python -m kdnlp.cli.docs > docs/cli.md`; do not edit by hand "
          f"(tests/test_docs.py checks it). -->\n")


def render() -> str:
    """The whole page: the top command, then each subcommand (and each command of a group) in the app's order."""
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name=NAME)
    return HEADER + "\n" + "\n".join(_command(root, ctx, NAME, 1)).rstrip() + "\n"


def _command(cmd, ctx, path: str, depth: int) -> list[str]:
    out = [f"{'#' * depth} `{path}`", ""]
    if cmd.help:
        out += [_prose(inspect.cleandoc(cmd.help)), ""]
    out += ["```console", f"$ {path} {' '.join(cmd.collect_usage_pieces(ctx))}", "```", ""]
    for kind, title in (("argument", "Arguments"), ("option", "Options")):
        records = [p.get_help_record(ctx) for p in cmd.get_params(ctx) if p.param_type_name == kind]
        records = [r for r in records if r is not None]
        if records:
            out += [f"**{title}**:", ""]
            out += [f"* `{name}`" + (f": {_prose(text)}" if text else "") for name, text in records]
            out.append("")
    names = cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else []
    subs = [(name, cmd.get_command(ctx, name)) for name in names]
    if subs:
        out += ["**Commands**:", ""]
        out += [f"* [`{name}`](#{_anchor(f'{path} {name}')}): {_prose(sub.get_short_help_str(limit=120))}"
                for name, sub in subs]
        out.append("")
        for name, sub in subs:
            out += _command(sub, typer.Context(sub, info_name=name, parent=ctx), f"{path} {name}", depth + 1)
    return out


def _prose(text: str) -> str:
    """Help text as Markdown prose: a `<name>` placeholder would read as an HTML tag and vanish."""
    return text.replace("<", "&lt;")


def _anchor(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's rule) gives the heading `` `heading` ``."""
    return heading.lower().replace(" ", "-")


if __name__ == "__main__":
    sys.stdout.write(render())

"""The `kdnlp` command: each subcommand lives in its own module; heavy imports happen inside commands."""
from __future__ import annotations

import sys

import typer

from kdnlp.cli import augment, check, distill, eval, finetune, generate, glue, init_student, new_model, push, recipes, report, train_mlm
from kdnlp.errors import KdnlpError

app = typer.Typer(
    help="Distill Hugging Face transformers into small, fast students.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("finetune")(finetune.finetune)
app.command("init-student")(init_student.init_student)
app.command("distill")(distill.distill)
app.command("eval")(eval.eval_)
app.command("augment")(augment.augment)
app.command("train-mlm")(train_mlm.train_mlm)
app.command("generate")(generate.generate)
app.command("new-model")(new_model.new_model)
app.command("glue")(glue.glue)
app.command("push")(push.push)
app.command("report")(report.report)
app.command("check")(check.check)
app.add_typer(recipes.app, name="recipes")


def main() -> None:
    try:
        app()
    except KdnlpError as e:
        print(f"kdnlp: error: {e}", file=sys.stderr)
        sys.exit(2)

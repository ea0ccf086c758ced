"""The `kdnlp` command: each subcommand lives in its own module and reaches the layers below through
kdnlp.cli.lazy handles, so heavy imports happen only when a command runs."""
from __future__ import annotations

import sys

import typer

from kdnlp.cli import augment, check, claims, distill, eval, finetune, generate, glue, init_student, new_model, push, recipes, report, train_mlm
from kdnlp.core.errors import KdnlpError, LineStream, line

try:
    from typer._click import exceptions as parser  # typer >= 0.25 carries its own copy of click
except ImportError:
    from click import exceptions as parser

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
app.add_typer(claims.app, name="claims")


def main() -> None:
    """Runs the command; bad input, whether kdnlp or the option parser finds it, is one line and exit code 2."""
    stderr, sys.stderr = sys.stderr, LineStream(sys.stderr)
    try:
        code = app(standalone_mode=False)
    except KdnlpError as e:
        line(f"kdnlp: error: {e}")
        code = 2
    except parser.NoArgsIsHelpError as e:  # the help was printed when it was raised
        code = e.exit_code
    except parser.ClickException as e:
        ctx = getattr(e, "ctx", None)
        line(f"kdnlp: error: {_parser_message(e)}" + (f" (see {ctx.command_path} --help)" if ctx else ""))
        code = 2
    except typer.Abort:
        line("Aborted!")
        code = 1
    finally:
        sys.stderr = stderr
    sys.exit(code if isinstance(code, int) else 0)


def _parser_message(e) -> str:
    """The option parser's message, with the bad value where typer keeps it only in the pydantic error behind it."""
    message = e.format_message()
    errors = getattr(e.__cause__, "errors", None)
    if callable(errors) and message.startswith("Invalid value for "):
        return message.replace("Invalid value", f"bad value {errors()[0]['input']!r}", 1)
    return message

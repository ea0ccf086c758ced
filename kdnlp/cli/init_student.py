from __future__ import annotations

from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o


def init_student(
    teacher: Annotated[str, typer.Option("--teacher", help="Model to take layers from (folder, run folder, Hub id, or minilm-l6).")],
    output_dir: Annotated[str, typer.Option("--output-dir", "-o", help="Folder to write the student model to.")],
    layers: Annotated[Optional[str], typer.Option("--layers", help="Number of layers (e.g. 3) or explicit teacher layers (e.g. 0,2,5).")] = "3",
    strategy: Annotated[str, typer.Option("--strategy", help="How a layer count is chosen: uniform (DistilBERT's), every_other, first, last.")] = "uniform",
    overwrite: o.Overwrite = False,
) -> None:
    """Build a student from a teacher's embeddings, head and a subset of its encoder layers (DistilBERT-style)."""
    from kdnlp.students import init_student_folder

    ids = init_student_folder(teacher, output_dir, _parse_layers(layers), strategy, overwrite)
    typer.echo(f"wrote {output_dir}: teacher layers {ids}")


def _parse_layers(text: str) -> int | list[int]:
    from kdnlp.errors import KdnlpError

    try:
        return [int(x) for x in text.split(",")] if "," in text else int(text)
    except ValueError:
        raise KdnlpError(f"bad value '{text}' for --layers: give a count (3) or teacher layers (0,2,5)") from None

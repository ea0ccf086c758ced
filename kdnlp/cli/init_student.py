from __future__ import annotations

from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.errors import KdnlpError

students = lazy("kdnlp.modeling.students")


def init_student(
    teacher: Annotated[str, typer.Option("--teacher", help="Model to take layers from (folder, run folder, Hub id, or minilm-l6).")],
    output_dir: Annotated[str, typer.Option("--output-dir", "-o", help="Folder to write the student model to.")],
    layers: Annotated[Optional[str], typer.Option("--layers", help="Number of layers (e.g. 3) or explicit teacher layers, counted from 1 (e.g. 1,3,6).")] = "3",
    decoder_layers: Annotated[Optional[str], typer.Option("--decoder-layers", help="Encoder-decoder teachers: number of decoder layers or explicit teacher decoder layers (default: all); --layers counts encoder layers.")] = None,
    strategy: Annotated[str, typer.Option("--strategy", help="How a layer count is chosen: uniform (TinyBERT's, as the uniform layer map), spread (DistilBERT's), skip, first, last, every_other.")] = "uniform",
    init: Annotated[str, typer.Option("--init", help="copy (the teacher's layers), or for narrower students truncate (leading rows/columns of the teacher's weights) or random.")] = "copy",
    hidden_size: Annotated[Optional[int], typer.Option("--hidden-size", help="Narrower student: hidden size (needs --init truncate or random).")] = None,
    heads: Annotated[Optional[int], typer.Option("--heads", help="Narrower student: attention heads.")] = None,
    intermediate_size: Annotated[Optional[int], typer.Option("--intermediate-size", help="Narrower student: feed-forward size.")] = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Build a student from a teacher: its embeddings, head and a subset of its layers (DistilBERT-style; distilBART-style encoder and decoder layers), or a narrower model."""
    ids = students.init_student_folder(teacher, output_dir, _parse_layers(layers), strategy, overwrite, init=init,
                              hidden_size=hidden_size, num_attention_heads=heads, intermediate_size=intermediate_size,
                              decoder_layers=None if decoder_layers is None else _parse_layers(decoder_layers, "--decoder-layers"))
    typer.echo(f"wrote {output_dir}: teacher layers {ids}")


def _parse_layers(text: str, option: str = "--layers") -> int | list[int]:
    try:
        return [int(x) for x in text.split(",")] if "," in text else int(text)
    except ValueError:
        raise KdnlpError(f"bad value '{text}' for {option}: give a count (3) or teacher layers counted from 1 (1,3,6)") from None

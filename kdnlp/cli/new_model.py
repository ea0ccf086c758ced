from __future__ import annotations

from typing import Annotated

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.errors import say

data = lazy("kdnlp.tasks.seq2seq.data")
scratch = lazy("kdnlp.modeling.scratch")


def new_model(
    data_dir: Annotated[str, typer.Option("--data-dir", help="Text pairs: a folder of parallel files (train.en, train.de), JSON lines or a saved dataset; the tokenizer learns from the train split.")],
    output_dir: Annotated[str, typer.Option("--output-dir", "-o", help="Folder to write the model folder (config and tokenizer, no weights) to.")],
    source: o.Source = None,
    target: o.Target = None,
    arch: Annotated[str, typer.Option("--arch", help="Architecture: marian, bart or t5.")] = "marian",
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Size of the byte-level BPE vocabulary that source and target share.")] = 8000,
    d_model: Annotated[int, typer.Option("--d-model", help="Hidden size.")] = 256,
    encoder_layers: Annotated[int, typer.Option("--encoder-layers", help="Encoder layers.")] = 3,
    decoder_layers: Annotated[int, typer.Option("--decoder-layers", help="Decoder layers.")] = 3,
    heads: Annotated[int, typer.Option("--heads", help="Attention heads (d_model must be a multiple).")] = 4,
    ffn_dim: Annotated[int, typer.Option("--ffn-dim", help="Feed-forward size.")] = 1024,
    max_positions: Annotated[int, typer.Option("--max-positions", help="Longest text in tokens (position embeddings, tokenizer and generation limit).")] = 256,
    overwrite: o.Overwrite = False,
) -> None:
    """Write a seq2seq model folder with random weights to train a teacher from scratch: a config and a tokenizer trained on the data's texts."""
    from itertools import chain


    pairs = data.load_pairs(data_dir, "train", source, target)
    say(f"training a {vocab_size}-token tokenizer on the source and target texts of the {len(pairs)} train pairs")
    path = scratch.new_model_folder(output_dir, chain(pairs["source"], pairs["target"]), arch, vocab_size, d_model,
                            encoder_layers, decoder_layers, heads, ffn_dim, max_positions, overwrite)
    typer.echo(f"wrote {path}: {arch}, {encoder_layers}+{decoder_layers} layers, d_model {d_model}")

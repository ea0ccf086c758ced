from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.config import parse_seed

generation = lazy("kdnlp.tasks.seq2seq.generation")


def generate(
    teacher: Annotated[str, typer.Option("--teacher", help="Seq2seq teacher: model folder (AutoModelForSeq2SeqLM), kdnlp run folder or Hub id.")],
    data_dir: Annotated[str, typer.Option("--data-dir", help="Parallel data as kdnlp.tasks.seq2seq.data.load_pairs reads it, e.g. a folder of {split}.{source} and {split}.{target} files.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Folder to write: {split}.source, {split}.target (the teacher's best output), generation.json.")],
    source: o.Source = None,
    target: o.Target = None,
    split: Annotated[str, typer.Option("--split", help="Split to decode, e.g. train or val.")] = "train",
    num_beams: Annotated[int, typer.Option("--num-beams", help="Beam size (1: greedy).")] = 5,
    k: Annotated[int, typer.Option("--k", help="Best beams kept per source, at most --num-beams; above 1 they go to {split}.kbest.jsonl.")] = 1,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", help="Longest output, in tokens (default 128, or fewer if the teacher has fewer positions).")] = None,
    length_penalty: Annotated[float, typer.Option("--length-penalty", help="Beam scores are divided by length ** this (above 0 favours longer outputs).")] = 1.0,
    max_source_length: Annotated[int, typer.Option("--max-source-length", help="Sources are truncated to this many tokens.")] = 256,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sources decoded at once (in batches of similar length).")] = 64,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Decode a seeded random subset of this many pairs.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the subset.")] = 42,
    overwrite: o.Overwrite = False,
) -> None:
    """Sequence-level KD targets: the teacher's beam-search outputs for a split, written as a parallel data folder."""
    settings = generation.GenerationSettings(num_beams=num_beams, max_new_tokens=max_new_tokens, k=k,
                                  length_penalty=length_penalty, batch_size=batch_size,
                                  max_source_length=max_source_length)
    result = generation.generate_folder(teacher, data_dir, output_dir, source, target, split, settings, max_samples,
                             parse_seed(seed, "--seed"), overwrite)
    typer.echo(f"{split}: {result['counts']['sources']} sources, the teacher's outputs written to {result['path']} "
               f"in {result['seconds']:.1f} s")

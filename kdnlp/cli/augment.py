from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.config import parse_seed

augmentation = lazy("kdnlp.tools.augment")


def augment(
    task: o.Task,
    model: Annotated[str, typer.Option("--model", help="Masked LM that proposes words (folder, run folder or Hub id), e.g. bert-base-uncased.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="GLUE folder to write: <Task>/train.tsv (augmented) and the task's dev file.")],
    data_dir: o.DataDir = None,
    p: Annotated[float, typer.Option("--p", help="Probability of replacing each word that has candidates.")] = 0.4,
    n: Annotated[int, typer.Option("--n", help="New texts drawn per example (duplicates are dropped).")] = 20,
    m: Annotated[int, typer.Option("--m", help="Candidates per word: the masked LM's top m, or m nearest word vectors.")] = 15,
    word_vectors: Annotated[Optional[Path], typer.Option("--word-vectors", help="GloVe-style text file (word v1 v2 ...) for words the masked LM splits into pieces.")] = None,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Augment a seeded random subset of this many training examples.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the subset and of the word replacements.")] = 42,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Masked sentences per masked-LM forward pass.")] = 64,
    overwrite: o.Overwrite = False,
) -> None:
    """TinyBERT data augmentation: write a GLUE folder with each training example plus up to N word-replaced copies."""
    result = augmentation.augment_glue(task, data_dir, output_dir, model, p=p, n=n, m=m, word_vectors=word_vectors,
                          max_samples=max_samples, overwrite=overwrite, seed=parse_seed(seed, "--seed"),
                          batch_size=batch_size)
    typer.echo(f"{result['task']} {result['split']}: {result['examples']} examples in, {result['written']} written "
               f"to {result['path']}")

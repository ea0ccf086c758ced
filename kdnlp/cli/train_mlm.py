from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy
from kdnlp.core.config import parse_seed

mlm = lazy("kdnlp.tools.mlm")


def train_mlm(
    teacher: Annotated[str, typer.Option("--teacher", help="Model whose backbone becomes the masked LM (model or run folder): the task's teacher.")],
    task: o.Task,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Model folder to write: the masked LM that kdnlp augment --model reads.")],
    data_dir: o.DataDir = None,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Train on the texts of a seeded random subset of this many training examples.")] = None,
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over the task's training texts.")] = 1.0,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Train this many steps instead (overrides --epochs).")] = None,
    learning_rate: Annotated[float, typer.Option("--learning-rate", help="Peak learning rate (linear decay, 6% warmup).")] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per step.")] = 32,
    max_length: Annotated[int, typer.Option("--max-length", help="Longest text in tokens (longer ones are cut).")] = 128,
    mlm_probability: Annotated[float, typer.Option("--mlm-probability", help="Share of tokens masked (BERT's 80/10/10 scheme).")] = 0.15,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the subset, the new head and the masking.")] = 42,
    overwrite: o.Overwrite = False,
) -> None:
    """Make a masked LM for kdnlp augment: the teacher's backbone with a masked-LM head (decoder tied to its word embeddings), fine-tuned briefly on the task's own training text."""
    result = mlm.train_mlm(teacher, task, output_dir, data_dir=data_dir, max_samples=max_samples, epochs=epochs,
                   max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size, max_length=max_length,
                   mlm_probability=mlm_probability, seed=parse_seed(seed, "--seed"), overwrite=overwrite)
    typer.echo(f"masked LM in {result['path']}: {result['texts']} texts, {result['steps']} steps, masked-LM loss "
               f"{result['loss_before']:.3f} -> {result['loss_after']:.3f}")

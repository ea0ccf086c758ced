from __future__ import annotations

from typing import Annotated, Optional

import typer

from kdnlp.cli import options as o
from kdnlp.cli.lazy import lazy

runner = lazy("kdnlp.pipeline.runner")
seeds_ = lazy("kdnlp.pipeline.seeds")


def finetune(
    model: Annotated[str, typer.Option("--model", "-m", help="Encoder to fine-tune: a model folder, a Hub id, or the alias minilm-l6.")],
    task: o.Task,
    output_dir: o.OutputDir,
    data_dir: o.DataDir = None,
    source: o.Source = None,
    target: o.Target = None,
    num_beams: o.NumBeams = None,
    max_new_tokens: o.MaxNewTokens = None,
    set_: o.Sets = None,
    max_train_samples: o.MaxTrain = None,
    max_eval_samples: o.MaxEval = None,
    overwrite: o.Overwrite = False,
    resume: o.Resume = False,
    bf16: o.Bf16 = False,
    fp16: o.Fp16 = False,
    num_processes: o.NumProcesses = 1,
    report_to: o.ReportTo = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated seeds (1,2): one fine-tuning per seed, each in OUTPUT_DIR/seed-<n>/ (a teacher ensemble in one command).")] = None,
) -> None:
    """Fine-tune a model on a task (to make a teacher; a seq2seq folder with only a config trains from scratch). Writes a Hugging Face model folder in OUTPUT_DIR/model."""
    overrides = [*(set_ or []), *o.precision(bf16, fp16), *o.report_to(report_to)]
    seeds = None if seeds is None else seeds_.parse_seeds(seeds)
    o.relaunch(num_processes)
    options = dict(data_dir=data_dir, overwrite=overwrite, max_train_samples=max_train_samples,
                   max_eval_samples=max_eval_samples, resume=resume, **o.task_options(source, target, num_beams, max_new_tokens))
    if seeds is None:
        typer.echo(runner.finetune(model, task, output_dir, overrides=overrides, **options)["summary"])
        return
    for seed in seeds:
        result = runner.finetune(model, task, output_dir / f"seed-{seed}", overrides=[*overrides, f"training.seed={seed}"], **options)
        typer.echo(f"seed {seed}: {result['summary']}")

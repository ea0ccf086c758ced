"""The transformers.TrainingArguments of a kdnlp training run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError

#: TrainingArguments kdnlp sets unless the recipe or --set says otherwise.
DEFAULT_TRAINING: dict[str, Any] = {
    "report_to": "none",
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 1,
    "logging_steps": 50,
    "per_device_eval_batch_size": 64,
    "seed": 42,
}


def training_args(out: Path, settings: dict[str, Any]):
    import torch
    from transformers import TrainingArguments

    gpu = torch.accelerator.is_available()
    defaults = {**DEFAULT_TRAINING, "dataloader_pin_memory": gpu, "use_cpu": not gpu}
    try:
        return TrainingArguments(output_dir=str(out), **{**defaults, **settings})
    except (ValueError, TypeError) as e:
        raise KdnlpError(f"bad training settings: {str(e).splitlines()[0]}") from None

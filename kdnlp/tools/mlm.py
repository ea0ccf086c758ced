"""A masked LM for TinyBERT's augmentation (kdnlp.tools.augment) made from the teacher, where no pretrained one is at hand.

The teacher's backbone (embeddings and encoder) is loaded into its architecture's masked-LM model; the head's decoder
is tied to the word embeddings, so only the head's transform layer (dense + layer norm) and output bias are new.
A short masked-LM fine-tuning on the task's own training text (every text field) then trains the head and adapts the
encoder, which classification fine-tuning has pulled away from word prediction. The result is a plain model folder
that `kdnlp augment --model` reads.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.run import RunFolder, write_json
from kdnlp.modeling.models import load_pretrained, load_tokenizer
from kdnlp.tasks.glue.data import get_task, load_split
from kdnlp.tasks.text import encode_text
from kdnlp.training.args import training_args

#: Written in the output folder: the settings and the masked-LM loss before and after training.
RECORD = "mlm.json"


def _masked_loss(model, batches: list[dict]) -> float:
    """The mean cross-entropy over the masked tokens of `batches` (masked once, so every call sees the same)."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for b in batches:
            n = int((b["labels"] != -100).sum())
            if n:
                total += float(model(**{k: v.to(device) for k, v in b.items()}).loss) * n
                count += n
    return total / max(count, 1)


def train_mlm(teacher: str, task: str, output_dir: str | os.PathLike, data_dir: str | None = None,
              max_samples: int | None = None, epochs: float = 1.0, max_steps: int | None = None,
              learning_rate: float = 1e-4, batch_size: int = 32, max_length: int = 128,
              mlm_probability: float = 0.15, seed: int = 42, overwrite: bool = False) -> dict[str, Any]:
    """Makes a masked LM from `teacher` (module docstring), trains it on the GLUE `task`'s train texts (a seeded
    subset of `max_samples` examples if given) for `epochs` or `max_steps`, and writes it to `output_dir`. Returns
    the record kept in `mlm.json`: texts, steps, and the masked-LM loss on (up to 256 of) the texts, masked once
    with `seed`, before and after training."""
    import torch
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer

    if not 0 < mlm_probability < 1:
        raise KdnlpError(f"bad mlm probability {mlm_probability}: must be between 0 and 1")
    for name, value in (("epochs", epochs), ("max steps", max_steps), ("batch size", batch_size),
                        ("max samples", max_samples), ("learning rate", learning_rate)):
        if value is not None and value <= 0:
            raise KdnlpError(f"bad {name} {value}: must be above 0")
    spec = get_task(task)
    folder = RunFolder(output_dir, overwrite)
    settings = {"command": "train-mlm", "teacher": teacher, "task": spec.name, "data_dir": data_dir,
                "max_samples": max_samples, "epochs": epochs, "max_steps": max_steps, "learning_rate": learning_rate,
                "batch_size": batch_size, "max_length": max_length, "mlm_probability": mlm_probability, "seed": seed}
    tokenizer = load_tokenizer(teacher)
    if tokenizer.mask_token is None:
        raise KdnlpError(f"the tokenizer of '{teacher}' has no mask token, so it cannot be made a masked LM")
    ds = load_split(spec, "train", data_dir, max_samples, seed)
    texts = ds.select_columns(list(spec.keys))
    import datasets

    lines = datasets.Dataset.from_dict({"text": [t for k in spec.keys for t in texts[k] if t and t.strip()]})
    enc = encode_text(lines, tokenizer, max_length)

    torch.manual_seed(seed)
    model, info = load_pretrained(teacher, AutoModelForMaskedLM, output_loading_info=True)
    prefix = model.base_model_prefix + "."
    lost = [k for k in info["missing_keys"] if k.startswith(prefix)]
    if lost:
        raise KdnlpError(f"'{teacher}' does not hold the backbone of {type(model).__name__} (missing {lost[0]})")
    say(f"masked LM from {teacher}: new head layers {', '.join(sorted(info['missing_keys'])) or 'none'}")
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
    held = enc.select(range(min(256, len(enc))))
    torch.manual_seed(seed)
    batches = [collate([held[i] for i in range(s, min(s + batch_size, len(held)))]) for s in range(0, len(held), batch_size)]
    before = _masked_loss(model, batches)

    work = folder.start(settings)
    args = training_args(work / "trainer", {
        "num_train_epochs": epochs, "max_steps": max_steps or -1, "learning_rate": learning_rate,
        "per_device_train_batch_size": batch_size, "warmup_steps": 0.06, "weight_decay": 0.01, "seed": seed,
        "eval_strategy": "no", "save_strategy": "no", "logging_steps": 50})
    trainer = Trainer(model=model, args=args, train_dataset=enc, data_collator=collate, processing_class=tokenizer)
    result = trainer.train()
    after = _masked_loss(trainer.model, batches)
    say(f"masked-LM loss on {len(held)} texts: {before:.3f} before, {after:.3f} after {result.global_step} steps")
    shutil.rmtree(work / "trainer", ignore_errors=True)
    trainer.model.config.architectures = [type(trainer.model).__name__]
    trainer.model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    record = {**settings, "texts": len(enc), "steps": result.global_step, "loss_before": before, "loss_after": after}
    write_json(work / RECORD, record)
    path = folder.finish()
    return {**record, "path": str(Path(path))}

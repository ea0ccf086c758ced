"""GLUE tasks: sentence (pair) classification, and regression for STS-B."""
from __future__ import annotations

import math
import statistics
import time
from typing import TYPE_CHECKING, Any

from kdnlp.tasks.glue import data as glue
from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.base import Problem

if TYPE_CHECKING:
    import datasets


class GlueProblem(Problem):
    display_scale = 100.0
    caches_logits = True

    def __init__(self, task: glue.GlueTask):
        self.task = task
        self.name = task.name
        self.outputs = "scalar" if task.regression else "classes"

    @property
    def num_labels(self) -> int:
        return self.task.num_labels

    @property
    def segments(self) -> int:
        return len(self.task.keys)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return self.task.metrics

    def load(self, split, data_dir, max_samples=None, seed=42, labeled=True):
        ds = glue.load_split(self.task, split, data_dir, max_samples, seed)
        if labeled:
            glue.require_labels(ds, self.task, split)
        return ds

    def encode(self, ds, tokenizer, max_length, prefix=""):
        return glue.encode(ds, tokenizer, self.task, max_length, prefix)

    def collator(self, tokenizer, model=None):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def check_teacher(self, name):
        from kdnlp.modeling.models import check_classifier

        check_classifier(name, self.task)

    def load_model(self, name, require_head, **kwargs):
        from kdnlp.modeling.models import load_classifier

        return load_classifier(name, self.task, require_head, **kwargs)

    def compute_metrics(self):
        from kdnlp.tasks.glue import metrics

        def compute(pred):
            return metrics.compute(self.task, pred.predictions, pred.label_ids)

        return compute

    def score(self, model, tokenizer, ds, max_length, batch_size):
        from kdnlp.tasks.glue import metrics

        logits = predict(model, tokenizer, self.encode(ds, tokenizer, max_length), batch_size)
        return metrics.compute(self.task, logits, ds["label"])

    def task_score(self, metrics):
        from kdnlp.tasks.glue.metrics import task_score

        return task_score(self.task, metrics)

    def speed(self, model, tokenizer, ds, max_length):
        return measure_speed(model, tokenizer, list(zip(*(ds[k] for k in self.task.keys))), max_length)


def predict(model, tokenizer, dataset: "datasets.Dataset", batch_size: int = 64):
    """Logits for a tokenised dataset (dynamic padding, no gradients), with a progress bar. Each batch is read as
    columns in one slice, not row by row (QQP's test set has 390k rows)."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(tokenizer)
    features = dataset.remove_columns([c for c in dataset.column_names if c == "labels"])
    model.eval()
    out = []
    with torch.inference_mode():
        for columns in tqdm(features.iter(batch_size), total=math.ceil(len(features) / batch_size), desc="predicting",
                            unit="batch", leave=False):
            batch = collate(columns)
            out.append(model(**{k: v.to(model.device) for k, v in batch.items()}).logits.float().cpu().numpy())
    return np.concatenate(out)


def timed(run, singles: list, batches: list, repeats: int = 3) -> dict[str, float]:
    """Median latency (ms) of `run` on one example at a time, and examples/s over `batches` (best of `repeats`),
    after a warm-up. `run` takes a list of examples."""
    for x in singles[:8]:
        run([x])  # warm-up
    latencies = []
    for x in singles:
        start = time.perf_counter()
        run([x])
        latencies.append(time.perf_counter() - start)
    run(batches[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            run(b)
        best = min(best, time.perf_counter() - start)
    return {"latency_ms_b1": 1000 * statistics.median(latencies), "throughput_b32": sum(map(len, batches)) / best}


def speed_batches(examples: list, limit: int = 256) -> tuple[list, list]:
    """Up to 64 single examples and up to `limit` examples in full batches of 32 (at least 32 examples needed)."""
    if len(examples) < 32:
        raise KdnlpError(f"speed needs at least 32 examples, got {len(examples)}")
    return examples[:64], [examples[i : i + 32] for i in range(0, min(len(examples), limit) - 31, 32)]


def measure_speed(model, tokenizer, texts: list, max_length: int = 128, repeats: int = 3) -> dict[str, Any]:
    """Latency and throughput of the forward pass on real inputs; `texts` are tuples of the task's text fields."""
    import torch

    model.eval()

    def run(batch):
        enc = tokenizer(*zip(*batch), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        model(**{k: v.to(model.device) for k, v in enc.items()})

    with torch.inference_mode():
        return timed(run, *speed_batches(texts), repeats=repeats)

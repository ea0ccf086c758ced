"""GLUE tasks: sentence (pair) classification, and regression for STS-B."""
from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from kdnlp.modeling.models import check_classifier, load_classifier
from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.base import KINDS, Card, Kind, Problem
from kdnlp.tasks.glue import data as glue
from kdnlp.tasks.glue import metrics
from kdnlp.tasks.glue.metrics import task_score
from kdnlp.tasks.speed import speed_batches, timed

if TYPE_CHECKING:
    import datasets

class GlueProblem(Problem):
    """A GLUE task; capabilities (kdnlp.tasks.capabilities): GeneratedInputs, MajorityClass."""

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
    def segments(self) -> int | None:
        return None if self.task.regression else len(self.task.keys)

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
        check_classifier(name, self.task)

    def load_model(self, name, require_head, **kwargs):
        return load_classifier(name, self.task, require_head, **kwargs)

    def compute_metrics(self):
        def compute(pred):
            return metrics.compute(self.task, pred.predictions, pred.label_ids)

        return compute

    def score(self, model, tokenizer, ds, max_length, batch_size):
        logits = predict(model, tokenizer, self.encode(ds, tokenizer, max_length), batch_size)
        return metrics.compute(self.task, logits, ds["label"])

    def task_score(self, metrics):
        return task_score(self.task, metrics)

    def speed(self, model, tokenizer, ds, max_length):
        return measure_speed(model, tokenizer, list(zip(*(ds[k] for k in self.task.keys))), max_length)

    def card(self, data_dir):
        t = self.task
        return Card("text-classification", [glue.HUB_DATASET], "text-classification", glue.HUB_DATASET,
                    f"GLUE {t.leaderboard}", t.hub_config, t.hub_validation, t.metrics)

    def majority_score(self, data_dir, max_samples=None):
        """0.0 for a regression task (a constant prediction correlates with nothing), with no data read."""
        if self.task.regression:
            return 0.0
        dev = self.load("validation", data_dir, max_samples)
        labels = dev["label"]
        label = Counter(labels).most_common(1)[0][0]
        return task_score(self.task, metrics.compute(self.task, [label] * len(labels), labels))


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


def measure_speed(model, tokenizer, texts: list, max_length: int = 128, repeats: int = 3) -> dict[str, Any]:
    """Latency and throughput of the forward pass on real inputs; `texts` are tuples of the task's text fields."""
    import torch

    model.eval()

    def run(batch):
        enc = tokenizer(*zip(*batch), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        model(**{k: v.to(model.device) for k, v in enc.items()})

    with torch.inference_mode():
        return timed(run, *speed_batches(texts), repeats=repeats)


def _problem(task: str) -> GlueProblem | None:
    try:
        return GlueProblem(glue.get_task(task))
    except KdnlpError:
        return None


KINDS.register("glue")(Kind(_problem, ", ".join(glue.TASKS)))

"""GLUE scores through the `evaluate` module shipped in `kdnlp/tasks/glue/metric/`."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from kdnlp.tasks.glue.data import GlueTask

MODULE = Path(__file__).parent / "metric" / "glue.py"


@functools.cache
def load(names: str):
    """The metric module reporting the comma-separated metrics `names`."""
    import evaluate

    return evaluate.load(str(MODULE), config_name=names)


def compute(task: GlueTask, predictions, references) -> dict[str, float]:
    """GLUE metrics from raw model outputs (logits) or class predictions."""
    predictions = np.asarray(predictions)
    if task.regression:
        predictions = predictions.reshape(-1)
    elif predictions.ndim == 2:
        predictions = predictions.argmax(-1)
    return load(",".join(task.metrics)).compute(predictions=predictions, references=np.asarray(references))


def task_score(task: GlueTask, metrics: dict[str, float]) -> float:
    """The number GLUE ranks a task by: the mean of its metrics."""
    return float(np.mean([metrics[m] for m in task.metrics]))


def glue_average(scores: dict[str, float]) -> float:
    """Macro-average of task scores, MNLI matched and mismatched counting together as one task."""
    scores = dict(scores)
    mnli = [scores.pop(k) for k in ("mnli", "mnli-mm") if k in scores]
    if mnli:
        scores["mnli"] = float(np.mean(mnli))
    return float(np.mean(list(scores.values())))

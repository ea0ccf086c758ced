"""GLUE evaluation of model folders, parameter counts and CPU speed, side by side."""
from __future__ import annotations

import statistics
import time
from typing import Any

from kdnlp.data.glue import GlueTask, encode, get_task, load_split, require_labels
from kdnlp.errors import KdnlpError


def predict(model, tokenizer, dataset, batch_size: int = 64):
    """Logits for a tokenised dataset (dynamic padding, no gradients)."""
    import numpy as np
    import torch
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(tokenizer)
    features = dataset.remove_columns([c for c in dataset.column_names if c == "labels"])
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            batch = collate([features[i] for i in range(start, min(start + batch_size, len(features)))])
            out.append(model(**{k: v.to(model.device) for k, v in batch.items()}).logits.float().cpu().numpy())
    return np.concatenate(out)


def measure_speed(model, tokenizer, texts: list, max_length: int = 128, repeats: int = 3) -> dict[str, float]:
    """Median latency (ms) of one example at a time, and examples/s in batches of 32, on real inputs.

    `texts` are tuples of the task's text fields; at least 32 are needed.
    """
    import torch

    if len(texts) < 32:
        raise KdnlpError(f"speed needs at least 32 examples, got {len(texts)}")
    model.eval()

    def run(batch):
        enc = tokenizer(*zip(*batch), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        model(**{k: v.to(model.device) for k, v in enc.items()})

    with torch.inference_mode():
        singles = texts[:64]
        for t in singles[:8]:
            run([t])  # warm-up
        latencies = []
        for t in singles:
            start = time.perf_counter()
            run([t])
            latencies.append(time.perf_counter() - start)
        batches = [texts[i : i + 32] for i in range(0, min(len(texts), 256) - 31, 32)]
        run(batches[0])
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for b in batches:
                run(b)
            best = min(best, time.perf_counter() - start)
    return {"latency_ms_b1": 1000 * statistics.median(latencies), "throughput_b32": 32 * len(batches) / best}


def evaluate_models(
    names: list[str],
    task: str,
    data_dir: str | None = None,
    split: str = "validation",
    max_samples: int | None = None,
    speed: bool = False,
    max_length: int = 128,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Metrics (and optionally size and speed) of each model; the first is the reference of the others."""
    from kdnlp import metrics
    from kdnlp.models import load_classifier, load_tokenizer, num_params

    glue: GlueTask = get_task(task)
    ds = load_split(glue, split, data_dir, max_samples)
    require_labels(ds, glue, split)
    texts = list(zip(*(ds[k] for k in glue.keys)))
    rows = []
    for name in names:
        tokenizer = load_tokenizer(name)
        model = load_classifier(name, glue, require_head=True)
        logits = predict(model, tokenizer, encode(ds, tokenizer, glue, max_length), batch_size)
        scores = metrics.compute(glue, logits, ds["label"])
        row = {"model": name, "metrics": scores, "score": metrics.task_score(glue, scores), "params": num_params(model)}
        if speed:
            row.update(measure_speed(model, tokenizer, texts, max_length))
        rows.append(row)
    ref = rows[0]
    for row in rows:
        row["score_pct_of_first"] = 100 * row["score"] / ref["score"] if ref["score"] else float("nan")
        if speed:
            row["speedup_b1"] = ref["latency_ms_b1"] / row["latency_ms_b1"]
            row["speedup_b32"] = row["throughput_b32"] / ref["throughput_b32"]
    return {"task": glue.name, "split": split, "examples": len(ds), "models": rows}


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table of `evaluate_models`' result."""
    rows = result["models"]
    metric_names = list(rows[0]["metrics"])
    speed = "latency_ms_b1" in rows[0]
    head = ["model", *metric_names, "params (M)"]
    if len(rows) > 1:
        head.insert(1 + len(metric_names), "% of first")
    if speed:
        head += ["latency b1 (ms)", "throughput b32 (ex/s)", "speedup b1", "speedup b32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], *(f"{100 * r['metrics'][m]:.2f}" for m in metric_names)]
        if len(rows) > 1:
            cells.append(f"{r['score_pct_of_first']:.1f}%")
        cells.append(f"{r['params'] / 1e6:.1f}")
        if speed:
            cells += [f"{r['latency_ms_b1']:.1f}", f"{r['throughput_b32']:.0f}", f"{r['speedup_b1']:.2f}x",
                      f"{r['speedup_b32']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    title = f"{result['task']} {result['split']} ({result['examples']} examples; metrics x100)"
    return title + "\n" + "\n".join(lines)

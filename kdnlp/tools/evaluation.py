"""Evaluation of model folders on any task (kdnlp.tasks): metrics, parameter counts and CPU speed, side by side."""
from __future__ import annotations

from typing import Any

from kdnlp.modeling.models import load_tokenizer, num_params
from kdnlp.pipeline.seeds import compare, expand, format_comparisons
from kdnlp.tasks.kinds import get_problem


def evaluate_models(
    names: list[str],
    task: str,
    data_dir: str | None = None,
    split: str = "validation",
    max_samples: int | None = None,
    speed: bool = False,
    max_length: int = 128,
    batch_size: int = 64,
    **problem_options: Any,
) -> dict[str, Any]:
    """Metrics (and optionally size and speed) of each model; the first is the reference of the others.
    `problem_options`: a seq2seq task's `source`, `target`, `num_beams` and `max_new_tokens` (kdnlp.tasks).

    A seeds folder (`kdnlp distill --seeds`, kdnlp.pipeline.seeds) stands for its run folders, each scored here, and adds an
    entry to `seeds`: the mean ± sd of the scores measured here and the paired difference to its control."""
    problem = get_problem(task, **problem_options)
    ds = problem.load(split, data_dir, max_samples)
    names, folders = expand(names)
    rows = []
    for name in names:
        tokenizer = load_tokenizer(name)
        model = problem.load_model(name, require_head=True)
        scores = problem.score(model, tokenizer, ds, max_length, batch_size)
        row = {"model": name, "metrics": scores, "score": problem.task_score(scores), "params": num_params(model)}
        if speed:
            row.update(problem.speed(model, tokenizer, ds, max_length))
        rows.append(row)
    ref = rows[0]
    for row in rows:
        row["score_pct_of_first"] = 100 * row["score"] / ref["score"] if ref["score"] else float("nan")
        if speed:
            row["speedup_b1"] = ref["latency_ms_b1"] / row["latency_ms_b1"]
            row["speedup_b32"] = row["throughput_b32"] / ref["throughput_b32"]
    result = {"task": problem.name, "split": split, "examples": len(ds), "scale": problem.display_scale, "models": rows}
    if folders:
        result["seeds"] = compare(folders, {r["model"]: r["score"] for r in rows})
    return result


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table of `evaluate_models`' result."""
    rows, scale = result["models"], result.get("scale", 100.0)
    metric_names = list(rows[0]["metrics"])
    speed = "latency_ms_b1" in rows[0]
    head = ["model", *metric_names, "params (M)"]
    if len(rows) > 1:
        head.insert(1 + len(metric_names), "% of first")
    if speed:
        head += ["latency b1 (ms)", "throughput b32 (ex/s)", "speedup b1", "speedup b32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], *(f"{scale * r['metrics'][m]:.2f}" for m in metric_names)]
        if len(rows) > 1:
            cells.append(f"{r['score_pct_of_first']:.1f}%")
        cells.append(f"{r['params'] / 1e6:.1f}")
        if speed:
            cells += [f"{r['latency_ms_b1']:.1f}", f"{r['throughput_b32']:.0f}", f"{r['speedup_b1']:.2f}x",
                      f"{r['speedup_b32']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    shown = "; metrics x100" if scale == 100 else ""
    title = f"{result['task']} {result['split']} ({result['examples']} examples{shown})"
    table = title + "\n" + "\n".join(lines)
    if result.get("seeds"):
        table += "\n\nOver seeds (scores above; difference: recipe - control of the same seed, ± its standard error)\n"
        table += format_comparisons(result["seeds"], scale)
    return table

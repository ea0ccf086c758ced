"""`kdnlp report`: a teacher and its students side by side, as a Markdown table and a plot of metric against speed.

Every model is scored and timed here, with the same data and settings (kdnlp.tools.evaluation). Runs that differ only
in their seed (same task, teacher, student, training data and recipe once `training.seed` is left out) are one row: the mean
and the sample standard deviation over the seeds. A seeds folder (`kdnlp distill --seeds`) stands for its runs, and
its paired difference to its control (kdnlp.pipeline.seeds) follows the table.
"""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.run import SETTINGS, RunFolder, read_json, write_json
from kdnlp.modeling.models import resolve
from kdnlp.pipeline.seeds import compare, expand, format_comparisons, mean_sd
from kdnlp.tasks.kinds import part_folder, run_parts
from kdnlp.tools.evaluation import evaluate_models

PLOT = "report.png"


def _run_info(path: Path) -> dict[str, Any]:
    if not (path / "run.json").is_file() or not (path / SETTINGS).is_file():
        raise KdnlpError(f"'{path}' is not a finished kdnlp run folder (no run.json or {SETTINGS})")
    run = read_json(path / "run.json")
    if run_parts(path) is not None:
        raise KdnlpError(f"'{path}' is a multi-task run ({run.get('task')}); compare each task's model with its "
                         f"teacher: kdnlp eval TEACHER {path / part_folder('TASK')} --task TASK --speed")
    settings = read_json(path / SETTINGS, "recipe")
    recipe = json.loads(json.dumps(settings["recipe"]))
    seed = recipe.get("training", {}).pop("seed", 42)
    for st in recipe.get("stages", []):
        seed = st.get("training", {}).pop("seed", seed)
    data = [settings.get(k) for k in ("data_dir", "text", "max_train_samples", "task_options")]
    group = json.dumps([run.get("task"), run.get("teacher"), run.get("student"), recipe, data], sort_keys=True)
    return {"path": str(path), "task": run.get("task"), "teacher": run.get("teacher"), "recipe": recipe["name"],
            "seed": seed, "group": group, "task_options": settings.get("task_options") or {}}


def disk_size(name: str) -> int:
    """Bytes of a model's weight files (safetensors, or PyTorch .bin when it has no safetensors)."""
    folder = Path(resolve(name))
    weights = list(folder.glob("*.safetensors")) or list(folder.glob("*.bin"))
    return sum(p.stat().st_size for p in weights)


def build_report(
    run_dirs: list[str | Path],
    output_dir: str | Path,
    teacher: str | None = None,
    data_dir: str | None = None,
    max_samples: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Scores and times the teacher (`teacher`, else the runs' teacher) and every run on the runs' task, and writes
    `report.md`, `report.json` and `report.png` (metric against batch-32 throughput) in `output_dir`."""
    if not run_dirs:
        raise KdnlpError("give at least one run folder")
    paths, folders = expand([str(p) for p in run_dirs])
    resolved = [Path(p).resolve() for p in paths]
    twice = next((p for i, p in enumerate(paths) if resolved[i] in resolved[:i]), None)
    if twice is not None:
        raise KdnlpError(f"run '{twice}' is given twice (its score would count twice in its row's mean); give each "
                         "run once")
    runs = [_run_info(Path(p)) for p in paths]
    tasks = {r["task"] for r in runs}
    if len(tasks) > 1:
        raise KdnlpError(f"the runs are on different tasks ({', '.join(sorted(map(str, tasks)))}); report one task at a time")
    teacher = teacher or next((r["teacher"] for r in runs if r["teacher"]), None)
    names = [teacher] * (teacher is not None) + [r["path"] for r in runs]
    folder = RunFolder(output_dir, overwrite)
    settings = {"runs": [r["path"] for r in runs], "teacher": teacher, "data_dir": data_dir, "max_samples": max_samples}
    folder.check(settings)
    say(f"scoring and timing {len(names)} models on {runs[0]['task']}")
    result = evaluate_models(names, runs[0]["task"], data_dir=data_dir, max_samples=max_samples, speed=True,
                             **runs[0]["task_options"])
    measured = result["models"]
    for row in measured:
        row["size_bytes"] = disk_size(row["model"])
    ref = measured[0]["score"] if teacher is not None else None
    rows = []
    if teacher is not None:
        rows.append(_row(f"teacher ({teacher})", [measured[0]], ref, []))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(r["group"], []).append(i)
    offset = 1 if teacher is not None else 0
    labels = [_label([runs[i]["path"] for i in members], runs[members[0]]["recipe"]) for members in groups.values()]
    for members, label in zip(groups.values(), labels):
        if labels.count(label) > 1:  # one recipe in several folders (a seeds folder each): name the folder
            label = f"{label[:-1]}, {Path(os.path.commonpath([runs[i]['path'] for i in members])).name})"
        rows.append(_row(label, [measured[offset + i] for i in members], ref, [runs[i]["seed"] for i in members]))
    report = {"task": result["task"], "split": result["split"], "examples": result["examples"],
              "scale": result["scale"], "teacher": teacher, "rows": rows,
              "seeds": compare(folders, {r["path"]: m["score"] for r, m in zip(runs, measured[offset:])})}
    table = format_report(report)
    work = folder.start(settings)  # after the scoring, so a failed check leaves no folder
    (work / "report.md").write_text(table + "\n")
    write_json(work / "report.json", report)
    plot(report, work / PLOT)
    path = folder.finish()
    report["table"], report["path"] = table, str(path)
    return report


def _label(paths: list[str], recipe: str) -> str:
    return recipe + (f" ({len(paths)} seeds)" if len(paths) > 1 else f" ({Path(paths[0]).name})")


def _row(label: str, measured: list[dict[str, Any]], ref: float | None, seeds: list) -> dict[str, Any]:
    scores = [m["score"] for m in measured]
    score, sd = mean_sd(scores)
    row = {"label": label, "models": [m["model"] for m in measured], "seeds": seeds, "score": score, "score_sd": sd,
           "metrics": measured[0]["metrics"] if len(measured) == 1 else None,
           "pct_of_teacher": 100 * score / ref if ref else None,
           "pct_sd": 100 * sd / ref if ref and sd is not None else None}
    for key in ("params", "size_bytes", "latency_ms_b1", "throughput_b32"):
        row[key] = statistics.fmean(m[key] for m in measured)
    return row


def format_report(report: dict[str, Any]) -> str:
    """A Markdown table of `build_report`'s rows: the task score is mean ± sd where several seeds ran."""
    scale = report["scale"]
    head = ["model", "score", "% of teacher", "params (M)", "size (MB)", "latency b1 (ms)", "throughput b32 (ex/s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["rows"]:
        score = f"{scale * r['score']:.2f}" + (f" ± {scale * r['score_sd']:.2f}" if r["score_sd"] is not None else "")
        pct = "n/a" if r["pct_of_teacher"] is None else f"{r['pct_of_teacher']:.1f}%" + (
            f" ± {r['pct_sd']:.1f}" if r["pct_sd"] is not None else "")
        lines.append("| " + " | ".join([r["label"], score, pct, f"{r['params'] / 1e6:.1f}", f"{r['size_bytes'] / 1e6:.1f}",
                                          f"{r['latency_ms_b1']:.1f}", f"{r['throughput_b32']:.0f}"]) + " |")
    shown = ", x100" if scale == 100 else ""
    table = f"{report['task']} {report['split']} ({report['examples']} examples{shown}; CPU speed measured here)\n" + "\n".join(lines)
    if report.get("seeds"):
        table += "\n\nPaired over seeds (difference: recipe - control of the same seed, ± its standard error)\n"
        table += format_comparisons(report["seeds"], scale)
    return table


def plot(report: dict[str, Any], path: Path) -> None:
    """Task score against batch-32 throughput, one point per row (error bars: sd over seeds), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = report["scale"]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for r in report["rows"]:
        sd = scale * r["score_sd"] if r["score_sd"] is not None else None
        ax.errorbar(r["throughput_b32"], scale * r["score"], yerr=sd, fmt="s" if r["label"].startswith("teacher") else "o",
                    capsize=3)
        ax.annotate(r["label"].split(" (")[0], (r["throughput_b32"], scale * r["score"]), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    ax.set_xlabel("throughput, batch 32 (examples/s, CPU)")
    ax.set_ylabel(f"{report['task']} {report['split']} score" + (" (x100)" if scale == 100 else ""))
    ax.set_title(f"{report['task']}: score against speed")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)

"""Sanity check of distilled students: flags a student at or below the majority-class score of its dev set, or far
below its no-teacher twin (the control of `distill --seeds --control`), and a teacher at or below the majority class
(its own metrics.json: a teacher that learned nothing makes every comparison meaningless).

It reads seeds folders (kdnlp.pipeline.seeds): each member's `metrics.json`, and the dev labels of the rows they were scored
on (the folder's `settings.json` names the data folder and `max_eval_samples`). The majority-class score is the
task score (the mean of the task's metrics, e.g. accuracy and F1 for MRPC) of predicting the dev set's most frequent
label for every example; for regression (STS-B) a constant prediction, whose correlation with the scores is 0: the
problem's (kdnlp.tasks.capabilities.MajorityClass). experiments/recipe-check.sh runs every GLUE recipe this way.
"""
from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError
from kdnlp.core.run import SETTINGS, SUMMARY, is_seeds_folder, read_json
from kdnlp.pipeline.seeds import expand
from kdnlp.tasks.capabilities import MajorityClass
from kdnlp.tasks.kinds import get_problem

#: Points (the task's display scale: 100 for GLUE) below its control from which a student is flagged.
THRESHOLD = 5.0


def flags(scores: dict[int, float], controls: dict[int, float] | None, majority: float, threshold: float,
          scale: float, teacher: float | None = None) -> list[str]:
    """What is wrong with one seeds folder's student: its `teacher`'s score (None: not known) at or below `majority`,
    a seed at or below it, a mean more than `threshold` points (scores times `scale`) below the control's mean, a
    control at or below `majority` (the comparison then says nothing). Scores map seed -> task score."""
    out = []
    if teacher is not None and teacher <= majority + 1e-9:  # scores computed two ways may differ in the last bit
        out.append(f"teacher at or below majority ({scale * teacher:.2f})")
    low = sorted(s for s, v in scores.items() if v <= majority)
    if low:
        out.append(f"at or below majority (seed {','.join(map(str, low))})")
    if controls:
        gap = scale * (statistics.fmean(scores.values()) - statistics.fmean(controls.values()))
        if gap < -threshold:
            out.append(f"far below control ({gap:+.2f} < -{threshold:g})")
        low = sorted(s for s, v in controls.items() if v <= majority)
        if low:
            out.append(f"control at or below majority (seed {','.join(map(str, low))})")
    return out


def _scores(members: dict[int, str], problem) -> dict[int, float]:
    out = {}
    for seed, path in members.items():
        file = Path(path) / "metrics.json"
        if not file.is_file():
            raise KdnlpError(f"'{path}' has no metrics.json: the run did not finish")
        out[seed] = problem.task_score(read_json(file, "metrics")["metrics"])
    return out


def _teacher_score(teacher: str | None, problem) -> float | None:
    """The task score in the teacher folder's own metrics.json (kdnlp finetune writes it), None without one."""
    file = Path(teacher) / "metrics.json" if teacher else None
    if file is None or not file.is_file():
        return None
    return problem.task_score(read_json(file, "metrics")["metrics"])


def check_folders(folders: list[str], threshold: float | None = None, data_dir: str | None = None) -> list[dict[str, Any]]:
    """One row per seeds folder: task, recipe, the student's and the control's mean task score, their difference,
    the majority-class score and the `flags` (`threshold`: default THRESHOLD). `data_dir` replaces the data folder the
    runs were started with."""
    threshold = THRESHOLD if threshold is None else threshold
    if threshold < 0:
        raise KdnlpError(f"bad value {threshold} for --threshold: give points below the control, 0 or more")
    not_seeds = [f for f in folders if not is_seeds_folder(f)]
    if not_seeds:
        raise KdnlpError(f"'{not_seeds[0]}' is not a seeds folder (no {SUMMARY}); make one with distill --seeds")
    rows = []
    majorities: dict[tuple, float] = {}
    for member in expand(folders)[1]:
        folder = Path(member["folder"])
        summary = read_json(folder / SUMMARY, "task")
        problem = get_problem(summary["task"])
        if not isinstance(problem, MajorityClass):
            raise KdnlpError(f"'{folder}' holds {summary['task']} runs; the check is for single GLUE tasks")
        options = read_json(folder / SETTINGS).get("options") or {}
        where = (problem.name, data_dir or options.get("data_dir"), options.get("max_eval_samples"))
        if where not in majorities:
            majorities[where] = problem.majority_score(*where[1:])
        scores = _scores(member["seed"], problem)
        controls = _scores(member["control"], problem) if "control" in member else None
        mean = statistics.fmean(scores.values())
        c_mean = statistics.fmean(controls.values()) if controls else None
        rows.append({"folder": str(folder), "task": problem.name, "recipe": member["recipe"],
                     "seeds": sorted(scores), "scale": problem.display_scale, "score": mean, "control": c_mean,
                     "difference": None if c_mean is None else mean - c_mean, "majority": majorities[where],
                     "flags": flags(scores, controls, majorities[where], threshold, problem.display_scale,
                                    _teacher_score(options.get("teacher"), problem))})
    return rows


def format_check(rows: list[dict[str, Any]]) -> str:
    """The rows of `check_folders` as a Markdown table; flagged rows in bold. A recipe checked in several folders
    of one task (variants of it) is named with its folder."""
    def num(value: float | None, k: float, sign: str = "") -> str:
        return "-" if value is None else f"{k * value:{sign}.2f}"

    lines = ["| task | recipe | seeds | student | control | difference | majority class | flags |",
             "|---|---|---|---|---|---|---|---|"]
    seen = Counter((r["task"], r["recipe"]) for r in rows)
    for r in rows:
        k = r["scale"]
        name = r["recipe"] if seen[r["task"], r["recipe"]] == 1 else f"{r['recipe']} ({Path(r['folder']).name})"
        name = f"**{name}**" if r["flags"] else name
        cells = [r["task"], name, ",".join(map(str, r["seeds"])), num(r["score"], k), num(r["control"], k),
                 num(r["difference"], k, "+"), num(r["majority"], k), "; ".join(r["flags"]) or "ok"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

"""Comparisons over seeds: a recipe run once per seed into one folder, beside its no-teacher twin (the control).

Layout of a seeds folder (built in `<out>.partial` like every run folder, so a rerun with the same settings goes on
where it stopped and skips the seeds that finished; once finished, a rerun only returns its summary, and a rerun
that adds seeds keeps the finished ones and runs only the new):

    <out>/seed-<n>/       a normal run folder of the recipe with `training.seed=n`
    <out>/control-<n>/    with --control: the control recipe (`control_recipe`) with the same seed
    <out>/summary.json    each seed's task score and metrics, mean ± sd, and the paired difference to the control
    <out>/summary.md      the same as a table
    <out>/settings.json   what it was started with (resolved recipe and control, seeds, task, models, data)

The paired difference pairs the recipe's and the control's run of each seed (same seed: same student start, same
data order), so the noise they share cancels: its standard error is the sample sd of the per-seed differences
divided by sqrt(n).
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import statistics
from pathlib import Path
from typing import Any

from kdnlp.core.config import MAX_SEED, parse_seed
from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.run import SETTINGS, SUMMARY, RunFolder, is_seeds_folder, read_json, write_json
from kdnlp.pipeline import recipe as recipes
from kdnlp.pipeline import runner
from kdnlp.pipeline.sources import SOURCES
from kdnlp.tasks.kinds import TASK_OPTIONS, get_problem

#: What to do about a seeds folder that cannot be read.
AGAIN = "pass --overwrite to run the seeds again"
#: The recipe whose loss the control trains with.
CONTROL_LOSS = "baseline"


def parse_seeds(text: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: the distinct seeds (`parse_seed`) of --seeds."""
    try:
        seeds = [parse_seed(p, "--seeds") for p in text.split(",")]
    except KdnlpError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise KdnlpError(f"bad value '{text}' for --seeds: give distinct seeds (whole numbers from 0 to {MAX_SEED}) "
                         "separated by commas, e.g. 1,2,3")
    return seeds


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def summarize(scores: dict[int, float], controls: dict[int, float] | None = None) -> dict[str, Any]:
    """Mean ± sd of `scores` (seed -> score) and, with `controls` of the same seeds, of the controls and of the
    per-seed differences score - control, with the difference's standard error sd / sqrt(n)."""
    seeds = sorted(scores)
    mean, sd = mean_sd([scores[s] for s in seeds])
    out: dict[str, Any] = {"seeds": seeds, "n": len(seeds), "mean": mean, "sd": sd}
    if controls is None:
        return out
    if sorted(controls) != seeds:
        raise KdnlpError(f"the control ran seeds {sorted(controls)}, the recipe {seeds}: pair the same seeds")
    c_mean, c_sd = mean_sd([controls[s] for s in seeds])
    diffs = [scores[s] - controls[s] for s in seeds]
    d_mean, d_sd = mean_sd(diffs)
    out.update(control_mean=c_mean, control_sd=c_sd, differences=diffs, difference=d_mean, difference_sd=d_sd,
               difference_se=None if d_sd is None else d_sd / math.sqrt(len(diffs)))
    return out


def control_recipe(rec: recipes.Recipe) -> recipes.Recipe:
    """The no-teacher twin of `rec`: one stage of the `baseline` recipe's loss (gold cross-entropy only) on the task's
    train split, with `rec`'s student spec and max_length.

    Budget: its training settings are those of `rec`'s last stage that reads the task's train split (the one that
    fits the labels: learning rate, batch size, warmup, weight decay...), and its length is the sum over all of
    `rec`'s stages on the task's train split of their `num_train_epochs`, or of their `max_steps` when they are set
    in steps. A recipe with no stage on the train split (data-free) counts all its stages. Stages on other data
    (unlabeled text) add nothing: the control sees the task's examples as often as the recipe's student does."""
    from transformers import TrainingArguments

    chained = [s.name for s in rec.stages if s.teacher == "previous"]
    if chained:
        raise KdnlpError(f"--control: stage '{chained[0]}' of recipe '{rec.name}' builds its student from an "
                         "assistant, so no twin starts where it does; compare with a direct run instead")
    budget = [s for s in rec.stages if SOURCES.get(s.data).reads_task] or rec.stages
    settings = [rec.stage_training(s) for s in budget]
    steps = [t.get("max_steps", -1) for t in settings]
    training = dict(settings[-1])
    if all(s > 0 for s in steps):
        training["max_steps"] = sum(steps)
    elif any(s > 0 for s in steps):
        raise KdnlpError(f"--control: recipe '{rec.name}' gives some stages max_steps and others epochs, so its "
                         "budget has no one length; set training.max_steps for all of them")
    else:
        training["num_train_epochs"] = sum(t.get("num_train_epochs", TrainingArguments.num_train_epochs)
                                           for t in settings)
    data: dict[str, Any] = {
        "name": f"{rec.name}-control",
        "description": f"No-teacher twin of '{rec.name}': its student and budget, gold labels only.",
        "max_length": rec.max_length, "training": training, "losses": recipes.read(CONTROL_LOSS)[0]["losses"],
    }
    if rec.student is not None:
        data["student"] = dataclasses.asdict(rec.student)
    return recipes.from_data(data)


def _adds_seeds(old: dict[str, Any] | None, settings: dict[str, Any]) -> bool:
    """Whether `settings` are a seeds folder's `old` settings with more seeds (every old seed kept)."""
    return (old is not None and {**old, "seeds": None} == {**settings, "seeds": None}
            and set(old["seeds"]) < set(settings["seeds"]))


def _seeded(rec: recipes.Recipe, seed: int) -> recipes.Recipe:
    return recipes.from_data(rec.to_dict(), [f"training.seed={seed}"])


def run_seeds(recipe: str | recipes.Recipe, task: str, output_dir: str | Path, seeds: list[int], control: bool = False,
              overrides: list[str] | None = None, overwrite: bool = False, resume: bool = False,
              **options: Any) -> dict[str, Any]:
    """Runs `recipe` once per seed (and with `control` its `control_recipe` too) into the seeds folder `output_dir`
    (module docstring); returns the summary. `options` are `kdnlp.pipeline.runner.run_recipe`'s (teacher, student, data_dir,
    text, subset sizes, teacher_cache, task options), the same for every run; `resume` continues an interrupted
    seed's stage from its last checkpoint."""
    if not seeds:
        raise KdnlpError("give at least one seed")
    options = {k: v for k, v in options.items() if v is not None}
    if "stage" in options:
        raise KdnlpError(f"a seeds folder holds whole runs; it does not take a stage ('{options['stage']}')")
    rec = recipe if isinstance(recipe, recipes.Recipe) else recipes.load(recipe, overrides)
    twin = control_recipe(rec) if control else None
    problem = get_problem(task, **{k: v for k, v in options.items() if k in TASK_OPTIONS})
    settings = {"command": "seeds", "recipe": rec.to_dict(), "control": twin.to_dict() if twin else None,
                "seeds": list(seeds), "task": problem.name, "options": options}
    done = Path(output_dir)
    finished = read_json(done / SETTINGS, "seeds", remedy=AGAIN) if is_seeds_folder(done) and not overwrite else None
    if finished == settings:
        say(f"{done} finished earlier with these settings: every seed has run")
        return read_json(done / SUMMARY, remedy=AGAIN)
    grows = not overwrite and _adds_seeds(finished, settings)
    folder = RunFolder(output_dir, overwrite, replaces=grows)
    saved = folder.work / SETTINGS
    if not overwrite and saved.is_file() and _adds_seeds(read_json(saved, remedy=AGAIN), settings):
        write_json(saved, settings)  # an interrupted run given more seeds: its finished seeds are kept
    work = folder.start(settings)
    if grows:
        say(f"{done} holds seeds {','.join(map(str, finished['seeds']))}: keeping them, running the others")
        _copy_finished(done, work)
    runs = {"seed": rec, "control": twin} if twin else {"seed": rec}
    try:
        scores, metrics = _run_each(runs, seeds, problem, work, overwrite, resume, options)
    except KdnlpError:  # a run's input check failed; its own folder is gone unless it had trained
        if all(p.name == SETTINGS for p in work.iterdir()):
            folder.discard()
        raise
    summary = {"task": problem.name, "recipe": rec.name, "control_recipe": twin.name if twin else None,
               "scale": problem.display_scale, "runs": metrics,
               "score": summarize(scores["seed"], scores.get("control"))}
    write_json(work / SUMMARY, summary)
    (work / "summary.md").write_text(format_comparisons([{"folder": str(output_dir), **summary}]) + "\n")
    path = folder.finish()
    say(f"wrote {path}/ ({len(seeds)} seeds{' and their controls' if twin else ''})")
    return summary


def _copy_finished(done: Path, work: Path) -> None:
    """The finished runs of the seeds folder `done` copied into `work`: the finished folder stays whole until the
    grown one replaces it."""
    for member in sorted(done.iterdir()):
        if (member / "metrics.json").is_file() and not (work / member.name).exists():
            copy = work / f".{member.name}.copy"  # a copy cut short is never taken for a finished seed
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(member, copy)
            copy.rename(work / member.name)


def _run_each(runs: dict[str, recipes.Recipe], seeds: list[int], problem, work: Path, overwrite: bool, resume: bool,
              options: dict[str, Any]) -> tuple[dict[str, dict[int, float]], dict[str, Any]]:
    """Runs each recipe of `runs` (kind -> recipe) with each seed into `work/<kind>-<seed>/`, unless it finished
    earlier; returns the task scores (kind -> seed -> score) and the metrics (run name -> metrics)."""
    scores: dict[str, dict[int, float]] = {kind: {} for kind in runs}
    metrics: dict[str, Any] = {}
    for seed in seeds:
        for kind, r in runs.items():
            name = f"{kind}-{seed}"
            out = work / name
            if (out / "metrics.json").is_file():
                say(f"{name} finished earlier: using its metrics")
            else:
                say(f"{name}: recipe '{r.name}', training.seed={seed}")
                interrupted = (work / f"{name}.partial").is_dir()
                runner.run_recipe(_seeded(r, seed), problem.name, out, overwrite=overwrite,
                                  resume=resume and interrupted, **options)
            metrics[name] = read_json(out / "metrics.json", "metrics", remedy=AGAIN)["metrics"]
            scores[kind][seed] = problem.task_score(metrics[name])
    return scores, metrics


def expand(names: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """`names` with each seeds folder replaced by its run folders (the recipe's, then the control's), and for each
    seeds folder its members: {"folder", "recipe", "control_recipe", "seed": {seed: path}, "control": {...}}."""
    paths: list[str] = []
    folders = []
    for name in names:
        if not is_seeds_folder(name):
            paths.append(name)
            continue
        summary = read_json(Path(name) / SUMMARY, "score", "control_recipe", "recipe")
        seeds = summary["score"]["seeds"]
        kinds = ("seed", "control") if summary["control_recipe"] else ("seed",)
        members = {kind: {s: str(Path(name) / f"{kind}-{s}") for s in seeds} for kind in kinds}
        for kind in kinds:
            paths += members[kind].values()
        folders.append({"folder": str(name), "recipe": summary["recipe"], "control_recipe": summary["control_recipe"],
                        **members})
    return paths, folders


def compare(folders: list[dict[str, Any]], score: dict[str, float]) -> list[dict[str, Any]]:
    """For each seeds folder of `expand`, `summarize` of the scores measured for its members (`score`: path ->
    score)."""
    out = []
    for f in folders:
        runs = {s: score[p] for s, p in f["seed"].items()}
        controls = {s: score[p] for s, p in f["control"].items()} if "control" in f else None
        out.append({"folder": f["folder"], "recipe": f["recipe"], "control_recipe": f["control_recipe"],
                    "score": summarize(runs, controls)})
    return out


def format_comparisons(comparisons: list[dict[str, Any]], scale: float | None = None) -> str:
    """A Markdown table: per seeds folder, the recipe's and the control's score as mean ± sd over the seeds, and the
    paired difference recipe - control ± its standard error."""
    def pm(value: float, spread: float | None, sign: str = "") -> str:
        return f"{k * value:{sign}.2f}" + ("" if spread is None else f" ± {k * spread:.2f}")

    lines = ["| seeds folder | seeds | recipe | score (mean ± sd) | control | control (mean ± sd) | "
             "difference (mean ± SE) |", "|---|---|---|---|---|---|---|"]
    for c in comparisons:
        k = scale if scale is not None else c.get("scale", 1.0)
        s = c["score"]
        paired = "control_mean" in s
        cells = [c["folder"], ",".join(map(str, s["seeds"])), c["recipe"], pm(s["mean"], s["sd"]),
                 c["control_recipe"] or "-", pm(s["control_mean"], s["control_sd"]) if paired else "-",
                 pm(s["difference"], s["difference_se"], "+") if paired else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

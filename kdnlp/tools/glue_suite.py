"""`kdnlp glue`: a model (or one model per task) on every GLUE dev set there is, and the leaderboard's submission.

Which model scores which task comes from where the model was trained, never from its labels alone (HF's generic
LABEL_i names fit any task of that size, and QNLI and RTE share theirs): a multi-task run folder holds one model
per task (kdnlp.tasks.kinds.run_parts); a run folder's `run.json` (or, for its `model/` folder, the run's) names its one
task; any other model is scored on the tasks `--tasks` names, each checked against its labels. MNLI's model also
predicts MNLI-mismatched and the diagnostic set (AX).
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.run import RunFolder, read_json, write_json
from kdnlp.modeling.models import check_classifier, load_classifier, load_tokenizer, resolve
from kdnlp.tasks.glue import data as glue
from kdnlp.tasks.glue import metrics
from kdnlp.tasks.glue.problem import predict
from kdnlp.tasks.kinds import run_parts

#: Placeholder prediction of `--fill-missing` rows: class index 0 (0 for CoLA, SST-2, MRPC, QQP and WNLI,
#: `entailment` for QNLI, RTE, MNLI and AX), and the middle of STS-B's 0..5 scale.
PLACEHOLDER = {"classes": 0, "regression": 2.5}
SUBMISSION_ZIP = "submission.zip"


def select_tasks(spec: str | None) -> list[str]:
    """Task keys from `all` (or None) or a comma-separated list; MNLI brings MNLI-mismatched along."""
    if spec is None or spec == "all":
        return list(glue.TASKS)
    keys = [glue.get_task(t.strip()).name for t in spec.split(",") if t.strip()]
    if not keys:
        raise KdnlpError(f"bad value '{spec}' for --tasks: no task in it; valid: all, or a comma-separated list of "
                         f"{', '.join(glue.TASKS)}")
    if "mnli" in keys and "mnli-mm" not in keys:
        keys.append("mnli-mm")
    return [k for k in glue.TASKS if k in keys]


def _trained_for(root: Path) -> str | None:
    """The GLUE task of the run folder `root`, or of the run whose `model/` folder `root` is (its `run.json`)."""
    for run in (root, root.parent) if root.name == "model" else (root,):
        if (run / "run.json").is_file():
            task = read_json(run / "run.json").get("task")
            return task if task in glue.TASKS else None
    return None


def task_models(model: str, tasks: list[str], named: bool = False) -> dict[str, str]:
    """The model of each task of `tasks` that `model` was trained for (see the module's docstring); `named`: the
    user named `tasks` (--tasks), the only way to say what a model without a run folder was trained for."""
    root = Path(model)
    if (parts := run_parts(root)) is not None:
        found: dict[str, str] = {}
        for name, folder in parts.items():
            key = glue.get_task(name).name
            found[key] = str(folder)
            if key == "mnli":
                found.setdefault("mnli-mm", str(folder))
        return {t: found[t] for t in tasks if t in found}
    path = resolve(model)
    if task := _trained_for(root):
        own = {task, "mnli-mm"} if task == "mnli" else {task}
        return {t: path for t in tasks if t in own}
    if not named:
        raise KdnlpError(f"'{model}' does not say which GLUE task it was trained for (no run.json of a kdnlp run "
                         "naming it, no tasks/<task>/model): pass --tasks with its task(s), e.g. --tasks sst2")
    for t in tasks:
        check_classifier(path, glue.TASKS[t])
    return dict.fromkeys(tasks, path)


class _Models:
    """Loads each model folder once (tasks may share one)."""

    def __init__(self, max_length: int, batch_size: int):
        self.max_length, self.batch_size = max_length, batch_size
        self.loaded: dict[str, tuple[Any, Any]] = {}

    def predict(self, path: str, task: glue.GlueTask, head: glue.GlueTask, ds) -> Any:
        """Class indices (or STS-B scores) of `path`, loaded as a classifier for `head`, on `ds`."""
        if path not in self.loaded:
            self.loaded[path] = (load_classifier(path, head, require_head=True), load_tokenizer(path))
        model, tokenizer = self.loaded[path]
        logits = predict(model, tokenizer, glue.encode(ds, tokenizer, task, self.max_length), self.batch_size)
        return logits.reshape(-1) if head.regression else logits.argmax(-1)


def run_glue(
    model: str,
    output_dir: str | Path,
    data_dir: str | None = None,
    tasks: str | None = None,
    predict_test: bool = False,
    fill_missing: bool = False,
    max_samples: int | None = None,
    max_length: int = 128,
    batch_size: int = 64,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Scores every selected GLUE task (`tasks`: None or `all`, or a comma-separated list, see `task_models`) that
    has a model and dev data; writes `<task>.json` (metrics and the dev predictions), `glue.md` (the table with the
    GLUE average) and `results.json` in `output_dir`. With `predict_test`, also the leaderboard's files in
    `submission/` and `submission.zip` (see `submission_files`). Everything is scored before the folder is opened,
    so a failed check or model leaves nothing behind."""
    glue.check_max_samples(max_samples)
    for option, value in (("--max-length", max_length), ("--batch-size", batch_size)):
        if value is not None and value < 1:
            raise KdnlpError(f"bad value {value} for {option}: must be at least 1")
    keys = select_tasks(tasks)
    models = task_models(model, keys, named=tasks not in (None, "all"))
    if not models:
        raise KdnlpError(f"'{model}' holds no classifier for {', '.join(keys)}: give a classifier fine-tuned on one "
                         "of them (model or run folder) or a multi-task run folder")
    folder = RunFolder(output_dir, overwrite)
    settings = {"model": model, "data_dir": data_dir, "tasks": keys, "predict_test": predict_test,
                "fill_missing": fill_missing, "max_samples": max_samples, "max_length": max_length}
    folder.check(settings)
    dev: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for key in keys:
        if key not in models:
            missing[key] = "no model for it"
            continue
        try:
            dev[key] = glue.load_split(glue.TASKS[key], "validation", data_dir, max_samples)
        except KdnlpError as e:
            missing[key] = str(e)
    tests = leaderboard_sets(models, data_dir, fill_missing) if predict_test else None
    if not dev and not (tests and tests[0]):
        raise KdnlpError(f"nothing to score with '{model}': {_unreadable(missing, set(models))}")
    runner = _Models(max_length, batch_size)
    scored: dict[str, Any] = {}
    for key, ds in dev.items():
        task = glue.TASKS[key]
        say(f"{key}: {len(ds)} dev examples with {models[key]}")
        predictions = runner.predict(models[key], task, task, ds)
        scored[key] = {"task": key, "model": models[key], "examples": len(ds),
                       "metrics": metrics.compute(task, predictions, ds["label"]), "predictions": predictions.tolist()}
        scored[key]["score"] = metrics.task_score(task, scored[key]["metrics"])
    for key, why in missing.items():
        say(f"{key}: not scored, {why}")
    summary: dict[str, Any] = {
        "model": model, "tasks": {k: {n: v for n, v in r.items() if n != "predictions"} for k, r in scored.items()},
        "missing": missing,
        "glue_average": metrics.glue_average({k: r["score"] for k, r in scored.items()}) if scored else None,
    }
    files = None
    if tests is not None:
        files, summary["submission"] = submission_files(*tests, runner, fill_missing)
    table = format_glue_table(summary)
    work = folder.start(settings)
    for key, result in scored.items():
        write_json(work / f"{key}.json", result)
    if files is not None:
        write_submission(files, work)
    (work / "glue.md").write_text(table + "\n")
    write_json(work / "results.json", summary)
    path = folder.finish()
    summary["table"] = table
    summary["path"] = str(path)
    return summary


def leaderboard_sets(models: dict[str, str], data_dir: str | None, fill_missing: bool):
    """The leaderboard's test sets that can be predicted ({file name: (task, model's task, model, test set)}), and
    why each other file cannot (no model or no test data). Each test set must have as many rows as the official
    one; without `fill_missing`, at least one file must be predicted."""
    found, why = {}, {}
    for task, model_task in glue.SUBMISSION:
        path = models.get(model_task)
        if not path:
            why[task.leaderboard] = f"no {model_task} model"
            continue
        try:
            ds = glue.load_split(task, "test", data_dir)
        except KdnlpError as e:
            why[task.leaderboard] = str(e)
            continue
        if len(ds) != task.test_size:
            raise KdnlpError(f"the {task.leaderboard} test file has {len(ds)} rows but the leaderboard expects "
                             f"{task.test_size}; pass the official GLUE test files (--data-dir)")
        found[task.leaderboard] = (task, model_task, path, ds)
    if not found and not fill_missing:
        raise KdnlpError(f"--predict-test has no test file to predict: "
                         f"{_unreadable(why, {t.leaderboard for t, m in glue.SUBMISSION if m in models})}; pass "
                         "--data-dir with the GLUE test files, or --fill-missing for placeholder rows")
    return found, why


def _unreadable(why: dict[str, str], covered: set[str]) -> str:
    """Which of the tasks (or files) with a model, `covered`, have no data, and why the first has none."""
    names = [k for k in why if k in covered]
    return f"no data for {', '.join(names)} ({why[names[0]]}{'; ...' if len(names) > 1 else ''})"


def submission_files(found: dict[str, tuple], why: dict[str, str], runner: _Models,
               fill_missing: bool) -> tuple[dict[str, str], dict[str, Any]]:
    """The leaderboard's files (`<Name>.tsv`, header `index<TAB>prediction`) from `leaderboard_sets`' result, and
    their record. A file whose task has no model or no test data is left out (and reported), or with
    `fill_missing` holds placeholder rows (PLACEHOLDER) for every official test index."""
    files, filled, left_out = {}, {}, {}
    for task, _ in glue.SUBMISSION:
        name = task.leaderboard
        if name in found:
            _, model_task, path, ds = found[name]
            say(f"{name}: predicting {len(ds)} test examples with {path}")
            index, predictions = ds["idx"], runner.predict(path, task, glue.TASKS[model_task], ds).tolist()
        elif fill_missing:
            filled[name] = why[name]
            placeholder = PLACEHOLDER["regression" if task.regression else "classes"]
            index, predictions = list(range(task.test_size)), [placeholder] * task.test_size
        else:
            left_out[name] = why[name]
            continue
        rows = [f"{i}\t{glue.submission_text(task, p)}" for i, p in zip(index, predictions)]
        files[name] = "index\tprediction\n" + "\n".join(rows) + "\n"
    for name, w in filled.items():
        say(f"submission: {name}.tsv filled with placeholder rows ({w})")
    if left_out:
        say(f"submission: left out {', '.join(left_out)} (no model or test data); the leaderboard rejects an "
            "incomplete zip: pass --fill-missing to fill them with placeholder rows")
    return files, {"zip": SUBMISSION_ZIP, "files": list(files), "filled": filled, "left_out": left_out}


def write_submission(files: dict[str, str], work: Path) -> None:
    """The files of `submission_files` in `work/submission/` and zipped in `work/submission.zip`."""
    out = work / "submission"
    out.mkdir(exist_ok=True)  # an interrupted run with the same settings left it: its files are rewritten
    with zipfile.ZipFile(work / SUBMISSION_ZIP, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            (out / f"{name}.tsv").write_text(text)
            z.write(out / f"{name}.tsv", f"{name}.tsv")


def format_glue_table(summary: dict[str, Any]) -> str:
    """A Markdown table of the scored tasks (metrics x100) with the GLUE average (MNLI m/mm count as one task)."""
    lines = ["| task | metrics | score | examples |", "|---|---|---|---|"]
    for key, r in summary["tasks"].items():
        shown = ", ".join(f"{m} {100 * v:.2f}" for m, v in r["metrics"].items() if m in glue.TASKS[key].metrics)
        lines.append(f"| {key} | {shown} | {100 * r['score']:.2f} | {r['examples']} |")
    average = summary["glue_average"]
    counted = len({k.removesuffix("-mm") for k in summary["tasks"]})
    if average is not None:
        lines.append(f"| **GLUE average** ({counted} of 9 tasks) | | **{100 * average:.2f}** | |")
    if summary["missing"]:
        lines.append("")
        lines.append("Not scored: " + "; ".join(f"{k} ({why})" for k, why in summary["missing"].items()))
    return "\n".join(lines)

"""Comparisons over seeds: `run_seeds` (distill --seeds/--control), its summary, resuming, the control's budget,
and the paired difference in `eval`."""
from __future__ import annotations

import json
import math
import statistics

import pytest

from conftest import write_sst2
from test_cli import assert_user_error, kdnlp

from kdnlp.pipeline import recipe as recipes
from kdnlp.core.errors import KdnlpError
from kdnlp.tools.evaluation import evaluate_models, format_table
from kdnlp.pipeline.seeds import control_recipe, parse_seeds, run_seeds

TINY = ["training.num_train_epochs=1", "training.per_device_train_batch_size=8", "student.layers=2"]


def test_each_seed_and_its_control_is_a_run_folder(seeds_run):
    out = seeds_run["out"]
    assert sorted(p.name for p in out.iterdir()) == ["control-1", "control-2", "seed-1", "seed-2", "settings.json",
                                                     "summary.json", "summary.md"]
    for name, recipe, seed in (("seed-1", "hinton", 1), ("control-2", "hinton-control", 2)):
        settings = json.loads((out / name / "settings.json").read_text())
        assert settings["recipe"]["name"] == recipe and settings["recipe"]["training"]["seed"] == seed
        assert (out / name / "model" / "config.json").is_file()
    control = json.loads((out / "control-1" / "settings.json").read_text())["recipe"]
    assert [t["loss"] for t in control["stages"][0]["losses"]] == ["ce"]
    assert control["student"]["layers"] == 2 and control["training"]["num_train_epochs"] == 1


def test_summary_matches_each_seeds_metrics(seeds_run):
    out, s = seeds_run["out"], seeds_run["summary"]["score"]
    acc = {n: json.loads((out / n / "metrics.json").read_text())["metrics"]["accuracy"]
           for n in ("seed-1", "seed-2", "control-1", "control-2")}
    runs, controls = [acc["seed-1"], acc["seed-2"]], [acc["control-1"], acc["control-2"]]
    diffs = [a - b for a, b in zip(runs, controls)]
    assert s["seeds"] == [1, 2] and s["n"] == 2
    assert s["mean"] == pytest.approx(sum(runs) / 2) and s["sd"] == pytest.approx(abs(runs[0] - runs[1]) / math.sqrt(2))
    assert s["control_mean"] == pytest.approx(sum(controls) / 2)
    assert s["difference"] == pytest.approx(sum(diffs) / 2)
    assert s["difference_se"] == pytest.approx(abs(diffs[0] - diffs[1]) / math.sqrt(2) / math.sqrt(2))
    assert json.loads((out / "summary.json").read_text())["score"] == s
    assert "hinton-control" in (out / "summary.md").read_text()


def test_eval_of_a_seeds_folder_pairs_the_scores_it_measures(seeds_run):
    result = evaluate_models([str(seeds_run["out"])], "sst2", data_dir=str(seeds_run["glue"]), max_samples=16)
    score = {r["model"]: r["score"] for r in result["models"]}
    assert len(score) == 4
    out = seeds_run["out"]
    pairs = [(score[str(out / f"seed-{n}")], score[str(out / f"control-{n}")]) for n in (1, 2)]
    s = result["seeds"][0]["score"]
    assert s["mean"] == pytest.approx(statistics.fmean(a for a, _ in pairs))
    assert s["difference"] == pytest.approx(statistics.fmean(a - b for a, b in pairs))
    assert s["difference_se"] == pytest.approx(statistics.stdev(a - b for a, b in pairs) / math.sqrt(2))
    assert "difference (mean ± SE)" in format_table(result)


def test_a_rerun_skips_the_seeds_that_finished(tiny_teacher_dir, tmp_path, monkeypatch):
    import kdnlp.pipeline.runner

    glue = write_sst2(tmp_path / "glue", dev_rows=8)
    real = kdnlp.pipeline.runner.run_recipe
    ran, dies = [], ["control-2"]  # the first try dies at its last run

    def counted(rec, task, out, **kwargs):
        ran.append(out.name)
        if out.name in dies:
            dies.remove(out.name)
            raise KeyboardInterrupt
        return real(rec, task, out, **kwargs)

    monkeypatch.setattr(kdnlp.pipeline.runner, "run_recipe", counted)
    # the bookkeeping, not the training, is under test: one step a run, no checkpoints
    args = dict(control=True, teacher=str(tiny_teacher_dir), data_dir=str(glue),
                overrides=[*TINY, "training.max_steps=1", "training.save_strategy=no"])
    with pytest.raises(KeyboardInterrupt):
        run_seeds("hinton", "sst2", tmp_path / "out", [1, 2], **args)
    assert not (tmp_path / "out").exists() and (tmp_path / "out.partial" / "seed-2" / "metrics.json").is_file()
    summary = run_seeds("hinton", "sst2", tmp_path / "out", [1, 2], **args)
    assert ran == ["seed-1", "control-1", "seed-2", "control-2", "control-2"]
    assert summary["score"]["n"] == 2 and (tmp_path / "out" / "control-2" / "metrics.json").is_file()
    assert run_seeds("hinton", "sst2", tmp_path / "out", [1, 2], **args) == summary and len(ran) == 5
    with pytest.raises(KdnlpError, match="not empty"):  # seeds dropped: a new folder, or --overwrite
        run_seeds("hinton", "sst2", tmp_path / "out", [1, 3], **args)

    # More seeds: the finished ones are kept, and the finished folder stays whole until the grown one replaces it.
    dies.append("control-3")
    with pytest.raises(KeyboardInterrupt):
        run_seeds("hinton", "sst2", tmp_path / "out", [1, 2, 3], **args)
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    assert (tmp_path / "out.partial" / "seed-3" / "metrics.json").is_file()
    grown = run_seeds("hinton", "sst2", tmp_path / "out", [1, 2, 3, 4], **args)  # the interrupted try, grown again
    assert ran[5:] == ["seed-3", "control-3", "control-3", "seed-4", "control-4"]
    assert grown["score"]["seeds"] == [1, 2, 3, 4] and not (tmp_path / "out.partial").exists()
    assert {k: grown["runs"][k] for k in summary["runs"]} == summary["runs"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("seed-")) == [
        "seed-1", "seed-2", "seed-3", "seed-4"]


def test_the_control_gets_the_recipes_student_and_task_budget():
    tinybert = control_recipe(recipes.load("tinybert"))  # intermediate 10 epochs + prediction 3, at 3e-5
    assert tinybert.training["num_train_epochs"] == 13 and tinybert.training["learning_rate"] == 3e-5
    assert [t.loss for t in tinybert.stages[0].losses] == ["ce"] and not tinybert.uses_teacher
    narrow = control_recipe(recipes.load("tinybert-narrow"))  # the general stage on text adds nothing
    assert narrow.training["num_train_epochs"] == 13 and narrow.student.hidden_size == 312
    steps = control_recipe(recipes.load("fitnets", ["training.max_steps=7"]))
    assert steps.training["max_steps"] == 14
    with pytest.raises(KdnlpError, match="assistant"):
        control_recipe(recipes.load("ta-chain"))


@pytest.mark.parametrize("bad", ["1,x", "1,1", "", "-1", "1.5"])
def test_bad_seeds_are_one_line_errors(bad):
    with pytest.raises(KdnlpError, match="--seeds"):
        parse_seeds(bad)


def test_cli_refuses_bad_seeds_and_control_alone(tmp_path):
    assert_user_error(kdnlp("distill", "--recipe", "hinton", "--task", "sst2", "--seeds", "1,a", "-o", tmp_path / "o"),
                      "1,a", "--seeds")
    assert_user_error(kdnlp("distill", "--recipe", "hinton", "--task", "sst2", "--control", "-o", tmp_path / "o"),
                      "--seeds")
    assert_user_error(kdnlp("distill", "--recipe", "hinton", "--task", "sst2", "--seeds", "1,2", "--stage", "distill",
                            "-o", tmp_path / "o"), "--stage")


def test_report_of_a_seeds_folder_groups_its_runs_and_pairs_them(seeds_run, tmp_path):
    from kdnlp.tools.report import build_report

    report = build_report([seeds_run["out"]], tmp_path / "report", data_dir=str(seeds_run["glue"]))
    rows = {r["label"]: r for r in report["rows"]}
    assert set(rows) == {f"teacher ({seeds_run['teacher']})", "hinton (2 seeds)", "hinton-control (2 seeds)"}
    measured = evaluate_models([str(seeds_run["out"])], "sst2", data_dir=str(seeds_run["glue"]))["seeds"][0]["score"]
    s = report["seeds"][0]["score"]
    assert s["difference"] == pytest.approx(measured["difference"]) and s["mean"] == pytest.approx(rows["hinton (2 seeds)"]["score"])
    assert "difference (mean ± SE)" in report["table"]


def test_cli_runs_a_seed_and_its_control_and_prints_the_comparison(tiny_teacher_dir, tmp_path):
    glue = write_sst2(tmp_path / "glue")
    sets = [a for s in TINY for a in ("--set", s)]
    result = kdnlp("distill", "--recipe", "hinton", "--task", "sst2", "--teacher", tiny_teacher_dir, "--data-dir", glue,
                   *sets, "--seeds", "3", "--control", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "| hinton-control |" in result.stdout and (tmp_path / "out" / "control-3" / "metrics.json").is_file()

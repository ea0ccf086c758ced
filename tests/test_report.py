"""`kdnlp report`: runs grouped by seed, the table's columns, a real PNG, one task at a time."""
from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from kdnlp.core.errors import KdnlpError
from kdnlp.tools.evaluation import evaluate_models
from kdnlp.tools.report import build_report
from kdnlp.core.run import SETTINGS


@pytest.fixture(scope="module")
def report(tiny_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    runs = [tiny_runs[k] for k in ("seed1", "one-layer", "seed2")]
    return build_report(runs, out, data_dir=str(tiny_runs["glue"]))


def test_seeds_make_one_row_with_mean_and_sd(report, tiny_runs):
    labels = [r["label"] for r in report["rows"]]
    assert labels[0].startswith("teacher") and labels[1] == "hinton (2 seeds)" and labels[2] == "hinton (one-layer)"
    seeds = report["rows"][1]
    assert seeds["seeds"] == [1, 2] and seeds["models"] == [str(tiny_runs["seed1"]), str(tiny_runs["seed2"])]
    alone = evaluate_models([str(tiny_runs["seed1"]), str(tiny_runs["seed2"])], "sst2", data_dir=str(tiny_runs["glue"]))
    scores = [m["score"] for m in alone["models"]]
    assert seeds["score"] == pytest.approx(statistics.fmean(scores))
    assert seeds["score_sd"] == pytest.approx(statistics.stdev(scores))
    teacher = report["rows"][0]["score"]
    assert seeds["pct_of_teacher"] == pytest.approx(100 * statistics.fmean(scores) / teacher)
    assert report["rows"][2]["score_sd"] is None and report["rows"][2]["params"] < seeds["params"]


def test_table_columns_and_sizes(report, tiny_runs):
    table = report["table"]
    header = table.splitlines()[1]
    for column in ("model", "score", "% of teacher", "params (M)", "size (MB)", "latency b1 (ms)", "throughput b32 (ex/s)"):
        assert column in header
    assert " ± " in table.splitlines()[4]  # the seeds' row
    size = (tiny_runs["seed1"] / "model" / "model.safetensors").stat().st_size
    assert report["rows"][1]["size_bytes"] == size
    saved = json.loads((report_path(report) / "report.json").read_text())
    assert [r["label"] for r in saved["rows"]] == [r["label"] for r in report["rows"]]
    assert (report_path(report) / "report.md").read_text().strip() == table


def report_path(report) -> Path:
    return Path(report["path"])


def test_plot_is_a_real_png(report):
    import matplotlib.image

    png = report_path(report) / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape == (400, 600, 4)  # figsize 6x4 at 100 dpi, RGBA
    assert image[..., :3].std() > 0  # not a blank canvas


def test_runs_of_different_tasks_are_refused(tiny_runs, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    run = json.loads((tiny_runs["seed1"] / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**run, "task": "cola"}))
    (other / "settings.json").write_text((tiny_runs["seed1"] / "settings.json").read_text())
    with pytest.raises(KdnlpError, match="different tasks"):
        build_report([tiny_runs["seed1"], other], tmp_path / "out")
    with pytest.raises(KdnlpError, match="not a finished kdnlp run folder"):
        build_report([tmp_path], tmp_path / "out")


def test_runs_on_other_training_data_are_other_rows(tmp_path):
    from kdnlp.tools.report import _run_info
    from kdnlp.core.run import write_json

    groups = []
    for name, data, seed in (("a", "glue", 1), ("b", "glue", 2), ("c", "glue-augmented", 1)):
        (tmp_path / name).mkdir()
        write_json(tmp_path / name / "run.json", {"task": "sst2", "teacher": "t", "student": None})
        write_json(tmp_path / name / "settings.json", {"recipe": {"name": "tinybert", "training": {"seed": seed}},
                                                       "data_dir": data})
        groups.append(_run_info(tmp_path / name)["group"])
    assert groups[0] == groups[1] != groups[2]


def test_one_recipe_in_two_folders_gets_two_labels(tiny_runs, tmp_path):
    other = tmp_path / "subset"
    for name in ("seed1", "seed2"):  # the same runs, told apart by their training data: two groups of one recipe
        run = shutil.copytree(tiny_runs[name], other / name)
        settings = json.loads((run / SETTINGS).read_text())
        (run / SETTINGS).write_text(json.dumps({**settings, "max_train_samples": 8}))
    runs = [tiny_runs["seed1"], tiny_runs["seed2"], other / "seed1", other / "seed2"]
    report = build_report(runs, tmp_path / "out", data_dir=str(tiny_runs["glue"]))
    labels = [r["label"] for r in report["rows"][1:]]
    assert labels == [f"hinton (2 seeds, {tiny_runs['seed1'].parent.name})", "hinton (2 seeds, subset)"]
    assert all(label in report["table"] for label in labels)

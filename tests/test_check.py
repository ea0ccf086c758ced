"""`kdnlp check`: students flagged at or below the dev set's majority class or far below their control, read from
fake seeds folders (metrics.json files written here, no training)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli import assert_user_error, kdnlp

from kdnlp.tools.check import check_folders, flags, format_check
from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.kinds import get_problem


def majority_score(task: str, data_dir: str | None = None, max_samples: int | None = None) -> float:
    return get_problem(task).majority_score(data_dir, max_samples)


@pytest.fixture
def glue(tmp_path) -> Path:
    """SST-2 dev: 1, 1, 0, 0, 0, 0 (majority 0; in the first 3 rows, 1). MRPC dev: 7 equivalent, 3 not."""
    root = tmp_path / "glue"
    (root / "SST-2").mkdir(parents=True)
    (root / "SST-2" / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"s{i}\t{y}\n" for i, y in
                                                                        enumerate([1, 1, 0, 0, 0, 0])))
    (root / "MRPC").mkdir()
    rows = "".join(f"{y}\t{i}\t{i}\ta{i}\tb{i}\n" for i, y in enumerate([1] * 7 + [0] * 3))
    (root / "MRPC" / "dev.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + rows)
    return root


def seeds_folder(path: Path, task: str, runs: dict[int, dict], controls: dict[int, dict] | None = None,
                 recipe: str | None = None, **options) -> str:
    """A seeds folder as `distill --seeds [--control]` leaves it, holding only what the check reads."""
    for kind, members in (("seed", runs), ("control", controls or {})):
        for seed, metrics in members.items():
            (path / f"{kind}-{seed}").mkdir(parents=True)
            (path / f"{kind}-{seed}" / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    recipe = recipe or path.name
    summary = {"task": task, "recipe": recipe, "control_recipe": f"{recipe}-control" if controls else None,
               "score": {"seeds": sorted(runs)}}
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "settings.json").write_text(json.dumps({"command": "seeds", "options": options}))
    return str(path)


def test_majority_score_is_the_task_score_of_the_most_frequent_dev_label(glue):
    assert majority_score("sst2", str(glue)) == pytest.approx(4 / 6)
    assert majority_score("sst2", str(glue), max_samples=3) == pytest.approx(2 / 3)  # label 1 in the first 3 rows
    f1 = 2 * 7 / (2 * 7 + 3)  # every pair called equivalent: precision 0.7, recall 1
    assert majority_score("mrpc", str(glue)) == pytest.approx((0.7 + f1) / 2)
    assert majority_score("stsb") == 0.0  # no data read: a constant score correlates with nothing


def test_flags_a_seed_at_majority_a_large_gap_and_a_control_at_majority():
    assert flags({1: 0.80, 2: 0.82}, {1: 0.81, 2: 0.83}, 0.5, 5.0, 100) == []
    assert flags({1: 0.80, 2: 0.50}, None, 0.5, 5.0, 100) == ["at or below majority (seed 2)"]
    assert flags({1: 0.74, 2: 0.76}, {1: 0.81, 2: 0.81}, 0.5, 5.0, 100) == ["far below control (-6.00 < -5)"]
    assert flags({1: 0.74, 2: 0.76}, {1: 0.81, 2: 0.81}, 0.5, 7.0, 100) == []
    assert flags({1: 0.60}, {1: 0.49}, 0.5, 5.0, 100) == ["control at or below majority (seed 1)"]
    assert flags({1: 0.80}, None, 0.5, 5.0, 100, teacher=0.5) == ["teacher at or below majority (50.00)"]
    assert flags({1: 0.80}, None, 0.5, 5.0, 100, teacher=0.51) == []


def test_a_teacher_at_its_majority_class_is_flagged_from_its_own_metrics(glue, tmp_path):
    """CoLA's teachers once predicted one class (MCC 0): every student compared with them was meaningless."""
    flat, able = tmp_path / "flat-teacher", tmp_path / "teacher"
    for folder, accuracy in ((flat, 4 / 6), (able, 0.9)):
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"metrics": {"accuracy": accuracy}}))
    rows = check_folders([seeds_folder(tmp_path / "a", "sst2", {1: {"accuracy": 0.9}}, data_dir=str(glue),
                                       teacher=str(flat)),
                          seeds_folder(tmp_path / "b", "sst2", {1: {"accuracy": 0.9}}, data_dir=str(glue),
                                       teacher=str(able)),
                          seeds_folder(tmp_path / "c", "sst2", {1: {"accuracy": 0.9}}, data_dir=str(glue),
                                       teacher="some/hub-model")])
    assert [r["flags"] for r in rows] == [["teacher at or below majority (66.67)"], [], []]


def test_check_folders_reads_each_member_and_the_dev_rows_it_was_scored_on(glue, tmp_path):
    good = seeds_folder(tmp_path / "hinton", "sst2", {1: {"accuracy": 0.9}, 2: {"accuracy": 0.8}},
                        {1: {"accuracy": 0.85}, 2: {"accuracy": 0.83}}, data_dir=str(glue))
    # 2/3 is the majority of the first 3 dev rows only: at the whole set's 4/6 it would pass the check
    chance = seeds_folder(tmp_path / "rkd", "sst2", {1: {"accuracy": 2 / 3}}, {1: {"accuracy": 0.9}},
                          data_dir=str(glue), max_eval_samples=3)
    pair = seeds_folder(tmp_path / "pkd", "mrpc", {1: {"accuracy": 0.7, "f1": 0.8}}, data_dir=str(glue))
    rows = check_folders([good, chance, pair])
    assert [r["recipe"] for r in rows] == ["hinton", "rkd", "pkd"]
    assert rows[0]["score"] == pytest.approx(0.85) and rows[0]["control"] == pytest.approx(0.84)
    assert rows[0]["difference"] == pytest.approx(0.01) and rows[0]["flags"] == []
    assert rows[1]["majority"] == pytest.approx(2 / 3)
    assert rows[1]["flags"] == ["at or below majority (seed 1)", "far below control (-23.33 < -5)"]
    assert rows[2]["control"] is None and rows[2]["flags"] == ["at or below majority (seed 1)"]  # 0.75 < 0.7618
    table = format_check(rows).splitlines()
    assert table[2] == "| sst2 | hinton | 1,2 | 85.00 | 84.00 | +1.00 | 66.67 | ok |"
    assert table[3].startswith("| sst2 | **rkd** | 1 | 66.67 | 90.00 | -23.33 | 66.67 | at or below majority")
    assert table[4].startswith("| mrpc | **pkd** | 1 | 75.00 | - | - |")


def test_one_recipe_in_several_folders_is_named_with_its_folder(glue, tmp_path):
    short = seeds_folder(tmp_path / "tinybert-short", "sst2", {1: {"accuracy": 0.9}}, recipe="tinybert",
                         data_dir=str(glue))
    fast = seeds_folder(tmp_path / "tinybert-lr", "sst2", {1: {"accuracy": 0.5}}, recipe="tinybert", data_dir=str(glue))
    other = seeds_folder(tmp_path / "hinton", "sst2", {1: {"accuracy": 0.9}}, data_dir=str(glue))
    table = format_check(check_folders([short, fast, other])).splitlines()
    assert [line.split(" | ")[1] for line in table[2:]] == ["tinybert (tinybert-short)", "**tinybert (tinybert-lr)**",
                                                             "hinton"]


def test_a_data_dir_given_replaces_the_runs_own(glue, tmp_path):
    folder = seeds_folder(tmp_path / "hinton", "sst2", {1: {"accuracy": 0.6}}, data_dir=str(tmp_path / "gone"))
    with pytest.raises(KdnlpError, match="does not exist"):
        check_folders([folder])
    assert check_folders([folder], data_dir=str(glue))[0]["flags"] == ["at or below majority (seed 1)"]


def test_unfinished_member_and_bad_threshold_are_user_errors(glue, tmp_path):
    folder = seeds_folder(tmp_path / "hinton", "sst2", {1: {"accuracy": 0.9}}, {1: {"accuracy": 0.9}},
                          data_dir=str(glue))
    (Path(folder) / "control-1" / "metrics.json").unlink()
    with pytest.raises(KdnlpError, match="control-1' has no metrics.json"):
        check_folders([folder])
    with pytest.raises(KdnlpError, match="--threshold"):
        check_folders([folder], threshold=-1)


def test_cli_prints_the_table_and_rejects_a_plain_folder(glue, tmp_path):
    folder = seeds_folder(tmp_path / "vid", "sst2", {1: {"accuracy": 0.7}}, {1: {"accuracy": 0.8}},
                          data_dir=str(glue))
    result = kdnlp("check", folder, "--threshold", "12")
    assert result.returncode == 0, result.stderr
    assert "| sst2 | vid | 1 | 70.00 | 80.00 | -10.00 | 66.67 | ok |" in result.stdout
    assert_user_error(kdnlp("check", tmp_path), "is not a seeds folder")

"""Bad input that used to exit 0 with a misleading result, leave a folder that blocked the corrected command, or
get a message that misled: each is one `kdnlp: error` line on a line of its own, exit code 2, and the output
folder is as it was (nothing lost, no `OUT.partial` left)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import write_sst2
from test_cli import assert_user_error, kdnlp

TINY = ["training.num_train_epochs=1", "training.per_device_train_batch_size=8", "student.layers=1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, seeds_run) -> dict[str, Path]:
    """The session's tiny SST-2 teacher, GLUE folder and seeds folder, a seq2seq model, blank parallel data and a
    multi-task run of one task."""
    from kdnlp.pipeline.runner import run_recipe
    from kdnlp.modeling.scratch import new_model_folder

    root = tmp_path_factory.mktemp("hostile")
    teacher, glue = seeds_run["teacher"], seeds_run["glue"]
    bad_test = write_sst2(root / "bad-test")
    (bad_test / "SST-2" / "test.tsv").write_text("index\tsentence\n0\ta good film\n1\ta bad film\n")
    pairs = root / "pairs"
    pairs.mkdir()
    for split, n in (("train", 12), ("val", 4)):
        (pairs / f"{split}.en").write_text("".join(f"the cat {i} sat\n" for i in range(n)))
        (pairs / f"{split}.de").write_text("".join(f"die katze {i} sass\n" for i in range(n)))
    seq2seq = new_model_folder(root / "marian", ["the cat sat", "die katze sass"] * 4, vocab_size=300, d_model=16,
                               encoder_layers=1, decoder_layers=1, heads=2, ffn_dim=32, max_position_embeddings=32)
    blank = root / "blank"
    blank.mkdir()
    for split in ("train", "val"):
        (blank / f"{split}.en").write_text("\n \n\n")
        (blank / f"{split}.de").write_text("das\nist\ngut\n")
    multitask = root / "mt"
    run_recipe("mtdnn", "tasks:sst2", multitask, teacher=f"sst2={teacher}", data_dir=str(glue), overrides=TINY)
    return {"root": root, "teacher": teacher, "glue": glue, "bad_test": bad_test, "pairs": pairs, "marian": seq2seq,
            "blank": blank, "mt": multitask, "seeds": seeds_run["out"]}


def out_folder(world, name: str) -> Path:
    """An output folder holding an earlier result, which a failed command given --overwrite must leave alone."""
    out = world["root"] / "out" / name
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("precious")
    return out


def assert_one_line_and_nothing_left(result, out: Path | None, *fragments: str) -> None:
    assert_user_error(result, *fragments)
    assert re.search(r"(^|\n)kdnlp: error:", result.stderr), "the error continues another line: " + result.stderr[-300:]
    if out is not None:
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "precious"
        assert not out.with_name(out.name + ".partial").exists()


def glue_(w, out, *extra):
    return ["glue", "-m", w["teacher"], "-o", out, "--overwrite", "--data-dir", w["glue"], *extra]


# name, command (world, output folder), fragments of the error line
CASES = {
    "glue --predict-test without test files": (
        lambda w, o: glue_(w, o, "--tasks", "sst2", "--predict-test"),
        ["--predict-test has no test file to predict", "SST-2/test.tsv", "--fill-missing"]),
    "glue with a seq2seq model": (
        lambda w, o: ["glue", "-m", w["marian"], "-o", o, "--overwrite", "--data-dir", w["glue"], "--tasks", "sst2"],
        ["is not a sequence classifier"]),
    "glue --tasks with no task": (
        lambda w, o: glue_(w, o, "--tasks", ","), ["bad value ',' for --tasks", "valid: all", "cola, sst2"]),
    "glue with nothing to score": (
        lambda w, o: ["glue", "-m", w["teacher"], "-o", o, "--overwrite", "--data-dir", w["pairs"], "--tasks", "sst2"],
        ["nothing to score with", "no validation file for sst2"]),
    "glue --predict-test with a short test file": (  # used to fail after the dev scores, its bar still on the line
        lambda w, o: ["glue", "-m", w["teacher"], "-o", o, "--overwrite", "--data-dir", w["bad_test"], "--tasks", "sst2",
                      "--predict-test"],
        ["the SST-2 test file has 2 rows but the leaderboard expects 1821"]),
    "glue --max-samples 0": (
        lambda w, o: glue_(w, o, "--tasks", "sst2", "--max-samples", "0"), ["bad value 0 for --max-samples"]),
    "report of a multi-task run": (  # its teacher spec was read as a model id
        lambda w, o: ["report", w["mt"], "-o", o, "--overwrite", "--data-dir", w["glue"]],
        ["is a multi-task run (tasks:sst2)", "tasks/TASK/model --task TASK"]),
    "new-model on blank parallel data": (
        lambda w, o: ["new-model", "--data-dir", w["blank"], "--source", "en", "--target", "de", "-o", o, "--overwrite",
                      "--vocab-size", "300"],
        ["has 3 pairs but every source text is blank"]),
    "finetune on blank parallel data": (
        lambda w, o: ["finetune", "-m", w["marian"], "--task", "translation", "--data-dir", w["blank"], "--source", "en",
                      "--target", "de", "-o", o, "--overwrite"],
        ["has 3 pairs but every source text is blank"]),
    "distill of a stage whose first stage has not run": (  # the check ran after OUT.partial was made
        lambda w, o: ["distill", "--recipe", "tinybert", "--stage", "prediction", "--teacher", w["teacher"], "--task",
                      "sst2", "--data-dir", w["glue"], "-o", o, "--overwrite"],
        ["stage 'prediction' starts from stage 'intermediate', which has not run"]),
    "distill --seeds with a bad subset size": (  # the seed's run failed inside the seeds folder's OUT.partial
        lambda w, o: ["distill", "--recipe", "hinton", "--teacher", w["teacher"], "--task", "sst2", "--data-dir",
                      w["glue"], "-o", o, "--overwrite", "--seeds", "1", "--max-train-samples", "0"],
        ["bad value 0 for max_train_samples"]),
    "report with a teacher that is no classifier": (
        lambda w, o: ["report", w["seeds"] / "seed-1", "--teacher", w["marian"], "-o", o, "--overwrite",
                      "--data-dir", w["glue"]],
        ["is not a sequence classifier", "cannot classify"]),
    "report of one run twice": (
        lambda w, o: ["report", w["seeds"] / "seed-1", w["seeds"] / "seed-1", "-o", o, "--overwrite", "--data-dir",
                      w["glue"]],
        ["seed-1' is given twice"]),
    "augment with a model without its masked-LM head": (
        lambda w, o: ["augment", "--task", "sst2", "--model", w["teacher"], "-o", o, "--overwrite", "--data-dir",
                      w["glue"], "--n", "1"],
        ["masked"]),
    "distill with the same teacher twice in an ensemble": (
        lambda w, o: ["distill", "--recipe", "mtdnn", "--tasks", "sst2", "--teachers",
                      f"sst2={w['teacher']},{w['teacher']}/", "--data-dir", w["glue"], "-o", o, "--overwrite"],
        ["task sst2: teacher", "is given twice", "different teachers"]),
    "distill with the same --text twice": (
        lambda w, o: ["distill", "--recipe", "transfer", "--teacher", w["teacher"], "--task", "sst2", "--data-dir",
                      w["glue"], "--text", w["pairs"] / "train.en", "--text", w["pairs"] / "train.en", "-o", o,
                      "--overwrite"],
        ["train.en' is given twice"]),
    "distill --push-to-hub with a repo id the Hub rejects": (  # refused before training, not after it
        lambda w, o: ["distill", "--recipe", "hinton", "--teacher", w["teacher"], "--task", "sst2", "--data-dir",
                      w["glue"], "-o", o, "--overwrite", "--push-to-hub", "me/bad name!"],
        ["bad repo id 'me/bad name!'", "alphanumeric"]),
    "distill --num-processes 0": (
        lambda w, o: ["distill", "--recipe", "hinton", "--teacher", w["teacher"], "--task", "sst2", "-o", o,
                      "--overwrite", "--num-processes", "0"],
        ["bad value '0' for '--num-processes'", "greater than or equal to 1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_leaves_the_output_folder_as_it_was(world, case):
    command, fragments = CASES[case]
    out = out_folder(world, re.sub(r"\W+", "-", case))
    assert_one_line_and_nothing_left(kdnlp(*command(world, out)), out, *fragments)


# name, command (world), fragments of the error line, fragments it must not hold
NO_OUTPUT = {
    "push --dry-run of a repo id the Hub rejects": (
        lambda w: ["push", w["seeds"] / "seed-1", "--repo-id", "me/bad name!", "--dry-run"],
        ["bad repo id 'me/bad name!'"], []),
    "push --dry-run to a branch the Hub rejects": (
        lambda w: ["push", w["seeds"] / "seed-1", "--repo-id", "me/ok", "--revision", "my branch", "--dry-run"],
        ["bad revision 'my branch'", "no spaces"], []),
    "push --dry-run with a base model the Hub rejects": (
        lambda w: ["push", w["seeds"] / "seed-1", "--repo-id", "me/ok", "--base-model", "bad id!", "--dry-run"],
        ["bad base model 'bad id!'"], []),
    "push of a seeds folder": (
        lambda w: ["push", w["seeds"], "--repo-id", "me/ok", "--dry-run"],
        ["is a seeds folder", "push one of its runs", "{seeds}/seed-1"], ["not a finished kdnlp run folder"]),
    "eval --num-beams 0": (
        lambda w: ["eval", w["marian"], "--task", "translation", "--data-dir", w["pairs"], "--source", "en",
                   "--target", "de", "--num-beams", "0"],
        ["bad value '0' for '--num-beams'", "greater than or equal to 1", "kdnlp eval --help"], []),
    "eval --max-samples that is no number": (
        lambda w: ["eval", w["teacher"], "--task", "sst2", "--max-samples", "many"],
        ["bad value 'many' for '--max-samples'", "valid integer"], []),
    "eval of a seq2seq model on a GLUE task": (
        lambda w: ["eval", w["marian"], "--task", "sst2", "--data-dir", w["glue"]],
        ["a marian seq2seq model", "cannot classify", "kdnlp finetune --model minilm-l6 --task sst2"],
        ["finetune --model " + "{marian}"]),
    "finetune of a seq2seq model on a GLUE task": (
        lambda w: ["finetune", "-m", w["marian"], "--task", "sst2", "--data-dir", w["glue"], "-o", w["root"] / "ft"],
        ["cannot be fine-tuned on sst2", "cannot classify"], ["finetune --model " + "{marian}"]),
    "eval of a multi-task run": (
        lambda w: ["eval", w["mt"], "--task", "sst2", "--data-dir", w["glue"]],
        ["it is a multi-task run: use its sst2 model", "{mt}/tasks/sst2/model"], ["fine-tune it first"]),
    "distill from a multi-task run on another task": (
        lambda w: ["distill", "--recipe", "hinton", "--teacher", w["mt"], "--task", "rte", "-o", w["root"] / "again"],
        ["it is a multi-task run of sst2, not of rte"], ["fine-tune it first"]),
    "eval of a multi-task run as one": (  # its folder was read as a spec of teachers
        lambda w: ["eval", w["mt"], "--task", "tasks:sst2", "--data-dir", w["glue"]],
        ["is a multi-task run, scored one task at a time", "tasks/TASK/model --task TASK"], ["bad teachers"]),
    "init-student from a seeds folder": (
        lambda w: ["init-student", "--teacher", w["seeds"], "-o", w["root"] / "ft"],
        ["is a folder without a model", "holds the runs control-1, control-2, seed-1, seed-2", "{seeds}/control-1"], []),
    "distill --from a seeds folder": (
        lambda w: ["distill", "--from", w["seeds"], "-o", w["root"] / "again"],
        ["is a seeds folder", "{seeds}/seed-1"], ["--teacher"]),
    "a missing option": (lambda w: ["eval", w["teacher"]], ["Missing option '--task'", "kdnlp eval --help"], []),
}


@pytest.mark.parametrize("case", list(NO_OUTPUT))
def test_bad_input_gets_a_message_that_helps(world, case):
    command, fragments, wrong = NO_OUTPUT[case]
    result = kdnlp(*command(world))
    assert_one_line_and_nothing_left(result, None, *(f.format(**world) for f in fragments))
    error = next(line for line in result.stderr.splitlines() if line.startswith("kdnlp: error:"))
    for text in wrong:
        assert text.format(**world) not in error
    assert not (world["root"] / "ft").exists() and not (world["root"] / "again").exists()


def test_the_command_corrected_after_a_failed_check_runs(world):
    """A check that failed once the output folder was open left `OUT.partial` behind, which refused the corrected
    command as 'an interrupted run with another ...'."""
    out = world["root"] / "corrected"
    assert_user_error(kdnlp("glue", "-m", world["teacher"], "-o", out, "--data-dir", world["bad_test"], "--tasks",
                            "sst2", "--predict-test"), "test file has 2 rows")
    fixed = kdnlp("glue", "-m", world["teacher"], "-o", out, "--data-dir", world["glue"], "--tasks", "sst2")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads((out / "results.json").read_text())["tasks"]["sst2"]["examples"] == 40


def test_a_multitask_run_of_one_task_publishes_it_without_task(world):
    result = kdnlp("push", world["mt"], "--repo-id", "me/mt-sst2", "--dry-run")
    assert result.returncode == 0, result.stderr
    files = {p.name for p in (world["mt"] / "tasks" / "sst2" / "model").iterdir()}
    listed = [line.strip() for line in result.stdout.split("\n\n")[0].splitlines()[1:]]
    assert "model.safetensors" in listed and set(listed) - {"README.md"} <= files
    assert "on **sst2**" in result.stdout


def test_report_to_help_names_the_extra_to_install():
    shown = kdnlp("distill", "--help").stdout
    assert "kdnlp[tensorboard]" in re.sub(r"[\s│]+", "", shown)


def test_a_message_after_a_progress_bar_starts_its_own_line(capsys, monkeypatch):
    """A bar that stopped mid-line (no newline) or went back to its start with a carriage return, as tqdm leaves
    its line in a log file, is followed by a new line; after a newline, nothing is added."""
    import sys

    from kdnlp.core.errors import LineStream, say

    monkeypatch.setattr(sys, "stderr", LineStream(sys.stderr))
    for bar in ("predicting:  50%|#####     | 1/2", "predicting: 100%|##########| 2/2\r   \r", "done\n"):
        sys.stderr.write(bar)
        say("next")
    assert capsys.readouterr().err.split("kdnlp: next\n")[:3] == [
        "predicting:  50%|#####     | 1/2\n", "predicting: 100%|##########| 2/2\r   \r\n", "done\n"]

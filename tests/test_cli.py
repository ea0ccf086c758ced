"""The CLI as a user runs it: bad input gives one line on stderr, exit code 2, no traceback, nothing overwritten."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest

from conftest import tiny_classifier
from kdnlp.cli.main import main


def run_main(*args) -> int:
    """Runs `kdnlp ARGS` as the console script does, in this process; returns its exit code."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sys, "argv", ["kdnlp", *map(str, args)])
        try:
            main()
        except SystemExit as e:
            return e.code or 0
    return 0


def kdnlp(*args) -> subprocess.CompletedProcess:
    """`kdnlp ARGS` offline and without $GLUE_DIR, in this process (a new one would spend seconds importing torch):
    its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as m, redirect_stdout(out), redirect_stderr(err):
        m.setenv("HF_HUB_OFFLINE", "1")
        m.setenv("GLUE_DIR", "")
        code = run_main(*args)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def kdnlp_process(*args) -> subprocess.CompletedProcess:
    """Runs `python -m kdnlp ARGS` in a new process, as a user does."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GLUE_DIR": ""}
    return subprocess.run([sys.executable, "-m", "kdnlp", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kdnlp: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_help_lists_every_command():
    out = kdnlp_process("--help").stdout
    for command in ("finetune", "init-student", "distill", "eval", "recipes", "augment", "new-model", "generate", "glue",
                    "report", "push", "train-mlm", "check"):
        assert command in out


def test_recipes_list_and_show():
    listing = kdnlp("recipes", "list").stdout
    assert "hinton" in listing and "distilbert" in listing
    shown = kdnlp("recipes", "show", "hinton", "--set", "losses.hinton.temperature=8").stdout
    assert "temperature: 8.0" in shown and "stages:" in shown


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer):
    """A tiny 2-label teacher, a student with another vocabulary, a tiny GLUE folder and a used output folder."""
    from transformers import BertTokenizer

    root = tmp_path_factory.mktemp("cli")
    teacher = root / "teacher"
    tiny_classifier().save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    other = root / "other-vocab"
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"])}
    tiny_classifier(vocab_size=len(vocab)).save_pretrained(other)
    BertTokenizer(vocab=vocab).save_pretrained(other)
    glue = root / "glue" / "SST-2"
    glue.mkdir(parents=True)
    (glue / "train.tsv").write_text("sentence\tlabel\n" + "a good film\t1\na bad film\t0\n" * 20)
    (glue / "dev.tsv").write_text("sentence\tlabel\n" + "good\t1\nbad\t0\n" * 4)
    used = root / "used"
    used.mkdir()
    (used / "keep.txt").write_text("precious")
    return {"teacher": teacher, "other": other, "glue": glue.parent, "used": used, "root": root}


def distill(folders, *extra):
    args = ["distill", "--recipe", "hinton", "--teacher", folders["teacher"], "--task", "sst2",
            "--data-dir", folders["glue"], "--output-dir", folders["root"] / "run", *extra]
    return kdnlp(*args)


def test_unknown_task(folders):
    assert_user_error(kdnlp("eval", folders["teacher"], "--task", "sst3", "--data-dir", folders["glue"]),
                      "unknown task 'sst3'", "valid: cola, sst2")


def test_unknown_recipe_and_recipe_key(folders):
    assert_user_error(kdnlp_process("distill", "--recipe", "tinybrt", "--teacher", folders["teacher"], "--task", "sst2",
                            "--output-dir", folders["root"] / "run"), "unknown recipe 'tinybrt'", "hinton")
    assert_user_error(distill(folders, "--set", "training.lerning_rate=1"), "training.lerning_rate")
    assert_user_error(distill(folders, "--set", "losses.hinton.temp=1"), "temp", "valid keys: temperature")


def test_recipe_file_that_is_not_text(folders, tmp_path):
    binary = tmp_path / "recipe.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    assert_user_error(kdnlp("recipes", "show", binary), f"recipe file '{binary}' is not UTF-8 text")
    assert_user_error(kdnlp("distill", "--recipe", binary, "--teacher", folders["teacher"], "--task", "sst2",
                            "--data-dir", folders["glue"], "--output-dir", folders["root"] / "run"),
                      f"recipe file '{binary}' is not UTF-8 text")


def test_different_vocabularies(folders, tmp_path):
    """Terms that compare tokens or layers need one vocabulary; soft targets on classes do not."""
    refused = kdnlp("distill", "--recipe", "distilbert", "--teacher", folders["teacher"], "--student", folders["other"],
                    "--task", "sst2", "--data-dir", folders["glue"], "--output-dir", tmp_path / "refused")
    assert_user_error(refused, "different vocabularies", "8 tokens", "'cosine'")
    assert not (tmp_path / "refused").exists() and not (tmp_path / "refused.partial").exists()
    run = tmp_path / "own-tokenizers"
    ok = kdnlp("distill", "--recipe", "hinton", "--teacher", folders["teacher"], "--student", folders["other"],
               "--task", "sst2", "--data-dir", folders["glue"], "--output-dir", run, "--set", "training.max_steps=2",
               "--set", "training.save_strategy=no")
    assert ok.returncode == 0, ok.stderr
    assert "each reads it with its own tokenizer" in ok.stderr
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(run / "model")) == 8  # the student keeps its own vocabulary


def test_teacher_label_count_must_match_the_task(folders):
    assert_user_error(kdnlp("distill", "--recipe", "hinton", "--teacher", folders["teacher"], "--task", "mnli",
                            "--data-dir", folders["glue"], "--output-dir", folders["root"] / "run"),
                      "has 2 labels but mnli has 3")


def test_a_classifier_for_another_task_is_refused_with_what_to_do(folders, tokenizer, tmp_path):
    """An SST-2 classifier has 2 labels like RTE, but its label names are SST-2's."""
    sst2 = tmp_path / "sst2-classifier"
    model = tiny_classifier()
    model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    model.save_pretrained(sst2)
    tokenizer.save_pretrained(sst2)
    glue = tmp_path / "glue" / "RTE"
    glue.mkdir(parents=True)
    for split in ("train", "dev"):
        (glue / f"{split}.tsv").write_text("sentence1\tsentence2\tlabel\n" + "a\tb\tentailment\nc\td\tnot_entailment\n" * 4)
    labels = "labels negative, positive but rte has entailment, not_entailment"
    assert_user_error(kdnlp("distill", "--recipe", "hinton", "--teacher", sst2, "--task", "rte", "--data-dir", glue.parent,
                            "--output-dir", tmp_path / "run"), labels, "use a model fine-tuned on rte")
    assert_user_error(kdnlp("eval", sst2, "--task", "rte", "--data-dir", glue.parent), labels)
    assert_user_error(kdnlp("finetune", "--model", sst2, "--task", "rte", "--data-dir", glue.parent,
                            "--output-dir", tmp_path / "ft"), labels, "start from an encoder without a classification head")
    assert not (tmp_path / "run").exists() and not (tmp_path / "ft").exists()
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "ft.partial").exists()


def test_missing_data_files(folders):
    assert_user_error(distill(folders, "--task", "rte"), "no train file for rte", "RTE/train.tsv")
    assert_user_error(kdnlp("finetune", "--model", folders["teacher"], "--task", "sst2", "--data-dir",
                            folders["root"] / "absent", "-o", folders["root"] / "ft"), "does not exist")


def test_data_files_with_a_header_and_no_rows(folders, tmp_path):
    glue, out = tmp_path / "glue", tmp_path / "run"
    shutil.copytree(folders["glue"], glue)
    run = ["distill", "--recipe", "hinton", "--teacher", folders["teacher"], "--task", "sst2", "--data-dir", glue,
           "--output-dir", out]
    for split in ("dev", "train"):
        (glue / "SST-2" / f"{split}.tsv").write_text("sentence\tlabel\n")
        assert_user_error(kdnlp(*run), f"'{glue / 'SST-2' / f'{split}.tsv'}' has a header but no rows")
    assert_user_error(kdnlp("eval", folders["teacher"], "--task", "sst2", "--data-dir", glue), "dev.tsv' has a header but no rows")
    assert not out.exists() and not out.with_name("run.partial").exists()


def test_missing_model_folder(folders):
    assert_user_error(kdnlp("eval", folders["root"] / "nope", "--task", "sst2", "--data-dir", folders["glue"]),
                      "does not exist")


def test_existing_output_is_refused_and_left_alone(folders):
    used = folders["used"]
    assert_user_error(distill(folders, "--output-dir", used), "exists and is not empty", "--overwrite")
    assert_user_error(kdnlp("init-student", "--teacher", folders["teacher"], "--output-dir", used), "--overwrite")
    assert sorted(p.name for p in used.iterdir()) == ["keep.txt"] and (used / "keep.txt").read_text() == "precious"


def test_bad_layer_arguments(folders):
    out = folders["root"] / "s"
    assert_user_error(kdnlp("init-student", "--teacher", folders["teacher"], "-o", out, "--layers", "two"), "--layers")
    assert_user_error(kdnlp("init-student", "--teacher", folders["teacher"], "-o", out, "--layers", "0,2"),
                      "bad layers [0, 2]: layers count from 1 (0 is the embeddings)")
    assert_user_error(kdnlp("init-student", "--teacher", folders["teacher"], "-o", out, "--layers", "1,9"),
                      "teacher layer 9 is out of range 1..4")
    assert_user_error(kdnlp("init-student", "--teacher", folders["teacher"], "-o", out, "--strategy", "zigzag"),
                      "bad value 'zigzag' for student.strategy; valid: uniform, spread, skip, first, last, every_other")
    assert_user_error(kdnlp("init-student", "--teacher", folders["teacher"], "-o", out, "--decoder-layers", "1"),
                      "decoder_layers is for encoder-decoder models; 'bert' has no decoder")
    assert_user_error(kdnlp("init-student", "--teacher", folders["teacher"], "-o", out, "--decoder-layers", "x"),
                      "bad value 'x' for --decoder-layers")
    assert not out.exists()


def test_distill_and_overwrite_replace_a_run_only_when_finished(folders):
    run = folders["root"] / "tiny-run"
    common = ["--set", "training.max_steps=2", "--set", "training.per_device_train_batch_size=4",
              "--set", "training.eval_strategy=no", "--set", "training.save_strategy=no", "--output-dir", run]
    first = distill(folders, *common)
    assert first.returncode == 0, first.stderr
    assert {p.name for p in run.iterdir()} >= {"model", "recipe.yaml", "run.json", "metrics.json"}
    (run / "marker").write_text("old run")
    assert_user_error(distill(folders, *common), "--overwrite")
    assert (run / "marker").exists()
    second = distill(folders, *common, "--overwrite", "--set", "training.learning_rate=bad")
    assert_user_error(second, "learning_rate")
    assert (run / "marker").exists()  # a failed overwrite leaves the old run alone
    third = distill(folders, *common, "--overwrite")
    assert third.returncode == 0, third.stderr
    assert not (run / "marker").exists() and (run / "model" / "config.json").is_file()
    assert not (run.parent / "tiny-run.partial").exists()


def test_stages_run_one_at_a_time_and_finished_stages_are_not_redone(folders, tmp_path):
    import json

    recipe = tmp_path / "two.yaml"
    recipe.write_text("name: two\ndescription: two stages\nstudent: {layers: 2}\nmax_length: 16\n"
                      "training: {max_steps: 2, per_device_train_batch_size: 4, eval_strategy: 'no', save_strategy: 'no'}\n"
                      "stages:\n  - {name: first, losses: [{loss: cosine}]}\n  - {name: second, losses: [{loss: hinton}]}\n")
    out = tmp_path / "run"
    base = ["distill", "--recipe", recipe, "--teacher", folders["teacher"], "--task", "sst2",
            "--data-dir", folders["glue"], "--output-dir", out]
    assert_user_error(kdnlp(*base, "--stage", "third"), "unknown stage 'third'", "valid: first, second")
    assert_user_error(kdnlp(*base, "--stage", "second"), "starts from stage 'first', which has not run")
    first = kdnlp(*base, "--stage", "first")
    assert first.returncode == 0, first.stderr
    again = kdnlp(*base, "--stage", "first")  # already finished: nothing is redone, nothing else runs
    assert again.returncode == 0 and "stage 'first' finished earlier" in again.stderr and "loss =" not in again.stderr
    partial = tmp_path / "run.partial"
    assert not out.exists() and (partial / "stages" / "first" / "done.json").is_file()
    assert not (partial / "stages" / "second").exists()
    done = (partial / "stages" / "first" / "done.json").read_text()
    # a stage's student is a whole model folder: another run can start from it alone
    student = partial / "stages" / "first" / "model"
    onward = kdnlp("distill", "--recipe", "hinton", "--student", student, "--teacher", folders["teacher"],
                   "--task", "sst2", "--data-dir", folders["glue"], "--output-dir", tmp_path / "onward",
                   "--set", "training.max_steps=1", "--set", "training.eval_strategy=no", "--set", "training.save_strategy=no")
    assert onward.returncode == 0, onward.stderr
    assert_user_error(kdnlp(*base, "--set", "max_length=20"), "interrupted run with another 'recipe'", "--overwrite")
    rest = kdnlp(*base)
    assert rest.returncode == 0, rest.stderr
    assert "stage 'first' finished earlier" in rest.stderr and "stage 'second': loss" in rest.stderr
    assert (out / "stages" / "first" / "done.json").read_text() == done  # not redone
    assert list(json.loads((out / "metrics.json").read_text())["stages"]) == ["first", "second"]
    assert not partial.exists()


def test_new_model_trains_a_tokenizer_on_the_train_pairs_and_writes_a_folder(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.en").write_text("A man is running.\nTwo dogs play in the snow.\n" * 20)
    (data / "train.de").write_text("Ein Mann läuft.\nZwei Hunde spielen im Schnee.\n" * 20, encoding="utf-8")
    out = tmp_path / "model"
    base = ["new-model", "--data-dir", data, "--source", "en", "--target", "de", "--vocab-size", "300",
            "--d-model", "32", "--encoder-layers", "2", "--decoder-layers", "1", "--heads", "4", "--ffn-dim", "64",
            "-o", out]
    done = kdnlp(*base, "--arch", "bart")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: bart, 2+1 layers" in done.stdout and "texts of the 40 train pairs" in done.stderr
    config, tok = AutoConfig.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert (config.model_type, config.encoder_layers, config.decoder_layers, config.vocab_size) == ("bart", 2, 1, len(tok))
    assert tok.decode(tok("Zwei Hunde laufen.")["input_ids"], skip_special_tokens=True) == "Zwei Hunde laufen."
    assert_user_error(kdnlp(*base), "exists and is not empty", "--overwrite")
    assert_user_error(kdnlp(*base, "--overwrite", "--arch", "gpt2"), "unknown architecture 'gpt2'")
    assert AutoConfig.from_pretrained(out).model_type == "bart"  # left alone
    assert_user_error(kdnlp(*base[:-2], "-o", tmp_path / "other", "--target", "fr"), "no parallel file 'train.fr'")
    assert not (tmp_path / "other").exists()


def test_a_term_that_dominates_the_gradient_is_named(folders, tmp_path):
    """The guardrail: each term's share of the gradient on a stage's first batch is said, and a term with more than
    100x the gradient of every other is named in a warning (the papers' weights once let one term decide alone)."""
    args = ["distill", "--recipe", "hinton", "--teacher", folders["teacher"], "--task", "sst2", "--data-dir",
            folders["glue"], "--set", "training.max_steps=1", "--set", "training.save_strategy=no"]
    # the tiny student starts close to its teacher's outputs, so at the recipe's weights ce gives most of the gradient
    plain = kdnlp(*args, "--output-dir", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    assert "gradient share on the first batch: hinton" in plain.stderr
    lopsided = kdnlp(*args, "--set", "losses.hinton.weight=1e9", "--output-dir", tmp_path / "lopsided")
    assert lopsided.returncode == 0, lopsided.stderr
    assert "warning: the term 'hinton' gives" in lopsided.stderr

"""`kdnlp glue`: which model scores which task, metrics that scikit-learn/scipy reproduce from the saved
predictions, the GLUE average, and the leaderboard submission (names, header, label strings, row counts, AX)."""
from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from conftest import tiny_classifier
from kdnlp.tools import glue_suite
from kdnlp.tasks.glue import data as glue
from kdnlp.core.errors import KdnlpError
from kdnlp.tools.glue_suite import run_glue, task_models

LABELS = {"sst2": ("negative", "positive"), "mnli": ("entailment", "neutral", "contradiction"), "stsb": ("score",),
          "mrpc": ("not_equivalent", "equivalent")}


def save_model(path: Path, tokenizer, labels: tuple[str, ...], seed: int = 0, bias: float | None = None) -> Path:
    model = tiny_classifier(seed=seed, layers=2, num_labels=len(labels))
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {n: i for i, n in enumerate(labels)}
    if bias is not None:
        with torch.no_grad():
            model.classifier.bias.fill_(bias)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def pairs(n: int, label, header: str) -> str:
    words = ["a cat", "the dog", "one man", "a girl", "the sun", "two birds"]
    rows = [f"{words[i % 6]} sits\t{words[(i * 5) % 6]} runs\t{label(i)}" for i in range(n)]
    return header + "\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Dev files for SST-2, MNLI (m/mm), STS-B and MRPC; small test files for SST-2, MNLI (m/mm) and AX."""
    root = tmp_path_factory.mktemp("glue_suite")
    d = root / "glue"
    for folder in ("SST-2", "MNLI", "STS-B", "MRPC", "diagnostic"):
        (d / folder).mkdir(parents=True)
    sentences = ["a good film", "a bad film", "dull", "great fun", "not good", "fine"]
    (d / "SST-2" / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{sentences[i % 6]} {i}\t{i % 3 % 2}\n" for i in range(30)))
    (d / "SST-2" / "test.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{sentences[i % 6]}\n" for i in range(7)))
    nli = ("entailment", "neutral", "contradiction")
    for name in ("dev_matched", "dev_mismatched"):
        (d / "MNLI" / f"{name}.tsv").write_text(pairs(24, lambda i: nli[(i * 7) % 3], "sentence1\tsentence2\tgold_label"))
    for name in ("test_matched", "test_mismatched"):
        (d / "MNLI" / f"{name}.tsv").write_text("index\tsentence1\tsentence2\n" + "".join(f"{i}\ta dog {i}\ta cat\n" for i in range(5)))
    ax = "index\tsentence1\tsentence2\n" + "".join(f"{i}\tthe cat sat {i}\tthe cat did not sit\n" for i in range(6))
    (d / "diagnostic" / "diagnostic.tsv").write_text(ax)
    (d / "STS-B" / "dev.tsv").write_text(pairs(20, lambda i: f"{(i * 37) % 50 / 10:.1f}", "sentence1\tsentence2\tscore"))
    (d / "MRPC" / "dev.tsv").write_text(pairs(16, lambda i: i % 2, "#1 String\t#2 String\tQuality"))
    return d


@pytest.fixture(scope="module")
def multitask(tmp_path_factory, tokenizer):
    """A multi-task run folder: tasks/<task>/model for SST-2, MNLI and STS-B (the STS-B head biased above 5)."""
    root = tmp_path_factory.mktemp("multitask") / "run"
    for i, task in enumerate(("sst2", "mnli", "stsb")):
        save_model(root / "tasks" / task / "model", tokenizer, LABELS[task], seed=i, bias=8.0 if task == "stsb" else None)
    return root


def test_which_tasks_a_model_covers(multitask, tmp_path, tokenizer):
    everything = list(glue.TASKS)
    found = task_models(str(multitask), everything)
    assert set(found) == {"sst2", "mnli", "mnli-mm", "stsb"} and found["mnli-mm"] == found["mnli"]
    run = tmp_path / "run"
    save_model(run / "model", tokenizer, LABELS["mnli"])
    (run / "run.json").write_text(json.dumps({"task": "mnli"}))
    assert set(task_models(str(run), everything)) == {"mnli", "mnli-mm"}
    assert set(task_models(str(run / "model"), everything)) == {"mnli", "mnli-mm"}  # the run's model/ folder
    assert set(task_models(str(run), ["sst2", "mnli", "mnli-mm"], named=True)) == {"mnli", "mnli-mm"}
    generic = tmp_path / "generic"
    tiny_classifier(layers=2).save_pretrained(generic)  # LABEL_0, LABEL_1 fit any binary task: not a provenance
    with pytest.raises(KdnlpError, match="does not say which GLUE task it was trained for.*pass --tasks"):
        task_models(str(generic), everything)
    assert set(task_models(str(generic), ["qnli"], named=True)) == {"qnli"}
    with pytest.raises(KdnlpError, match="has 2 labels but mnli has 3"):  # a named task must fit the labels
        task_models(str(generic), ["mnli", "mnli-mm"], named=True)


def test_a_run_is_scored_only_on_its_own_task(tmp_path, tokenizer):
    """QNLI and RTE share their label names: a QNLI run's model, given as the run's model/ folder, is scored on
    QNLI only, and counts as one task of the GLUE average."""
    d = tmp_path / "glue"
    for folder, header in (("QNLI", "question\tsentence\tlabel"), ("RTE", "sentence1\tsentence2\tlabel")):
        (d / folder).mkdir(parents=True)
        (d / folder / "dev.tsv").write_text(pairs(8, lambda i: ("entailment", "not_entailment")[i % 2], header))
    run = tmp_path / "qnli-teacher"
    save_model(run / "model", tokenizer, ("entailment", "not_entailment"))
    (run / "run.json").write_text(json.dumps({"task": "qnli"}))
    out = run_glue(str(run / "model"), tmp_path / "out", data_dir=str(d))
    assert set(out["tasks"]) == {"qnli"} and out["missing"]["rte"] == "no model for it"
    assert "(1 of 9 tasks)" in out["table"] and not (tmp_path / "out" / "rte.json").exists()


def test_cli_asks_for_tasks_of_a_model_without_a_run(tmp_path, tokenizer):
    from test_cli import assert_user_error, kdnlp

    model = save_model(tmp_path / "m", tokenizer, ("entailment", "not_entailment"))
    for tasks in ((), ("--tasks", "all")):
        assert_user_error(kdnlp("glue", "--model", model, "-o", tmp_path / "out", *tasks), f"'{model}' does not say",
                          "pass --tasks")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.fixture(scope="module")
def suite(multitask, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("suite_out") / "glue"
    return run_glue(str(multitask), out, data_dir=str(data), tasks="sst2,mnli,stsb,mrpc")


def test_metrics_are_reproduced_by_sklearn_and_scipy(suite, data):
    out = Path(suite["path"])
    expected = {}
    for key, metric_names in (("sst2", ("accuracy",)), ("mnli", ("accuracy",)), ("mnli-mm", ("accuracy",)),
                              ("stsb", ("pearson", "spearmanr"))):
        saved = json.loads((out / f"{key}.json").read_text())
        gold = np.array(glue.load_split(glue.TASKS[key], "validation", str(data))["label"])
        pred = np.array(saved["predictions"])
        assert len(pred) == len(gold) == saved["examples"]
        independent = {"accuracy": accuracy_score(gold, pred)} if key != "stsb" else \
            {"pearson": pearsonr(pred, gold)[0], "spearmanr": spearmanr(pred, gold)[0]}
        for m in metric_names:
            assert saved["metrics"][m] == pytest.approx(independent[m], abs=1e-6)
        expected[key] = float(np.mean([independent[m] for m in metric_names]))
    average = np.mean([expected["sst2"], (expected["mnli"] + expected["mnli-mm"]) / 2, expected["stsb"]])
    assert suite["glue_average"] == pytest.approx(average, abs=1e-6)
    assert suite["missing"] == {"mrpc": "no model for it"}
    assert f"**{100 * average:.2f}**" in (out / "glue.md").read_text() and "(3 of 9 tasks)" in suite["table"]


def test_mcc_and_f1_on_binary_tasks(tmp_path, tokenizer, data):
    generic = tmp_path / "generic"
    save_model(generic, tokenizer, LABELS["mrpc"], seed=3)
    out = run_glue(str(generic), tmp_path / "out", data_dir=str(data), tasks="mrpc")
    saved = json.loads((tmp_path / "out" / "mrpc.json").read_text())
    gold = glue.load_split(glue.TASKS["mrpc"], "validation", str(data))["label"]
    assert saved["metrics"]["f1"] == pytest.approx(f1_score(gold, saved["predictions"]), abs=1e-6)
    assert saved["metrics"]["accuracy"] == pytest.approx(accuracy_score(gold, saved["predictions"]), abs=1e-6)
    assert out["tasks"]["mrpc"]["score"] == pytest.approx((saved["metrics"]["f1"] + saved["metrics"]["accuracy"]) / 2)
    cola = glue.TASKS["cola"]  # matthews through the same shipped metric
    from kdnlp.tasks.glue import metrics

    pred, ref = np.array([0, 1, 1, 0, 1, 1]), np.array([0, 1, 0, 0, 1, 0])
    assert metrics.compute(cola, pred, ref)["matthews_correlation"] == pytest.approx(matthews_corrcoef(ref, pred))


@pytest.fixture()
def small_sizes(monkeypatch, data):
    """The official test sizes replaced by the hand-made files' (and 4 rows for the tasks without files)."""
    rows = {"sst2": 7, "mnli": 5, "mnli-mm": 5, "ax": 6}
    monkeypatch.setattr(glue, "SUBMISSION", tuple((dataclasses.replace(t, test_size=rows.get(t.name, 4)), m)
                                                  for t, m in glue.SUBMISSION))


def read_zip(path: Path) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(path) as z:
        return {n: [line.split("\t") for line in z.read(n).decode().splitlines()] for n in z.namelist()}


def test_submission_with_fill_missing(multitask, data, tmp_path, small_sizes):
    out = run_glue(str(multitask), tmp_path / "sub", data_dir=str(data), predict_test=True, fill_missing=True)
    files = read_zip(Path(out["path"]) / "submission.zip")
    names = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE", "WNLI", "AX"]
    assert sorted(files) == sorted(f"{n}.tsv" for n in names)
    for name, rows in files.items():
        assert rows[0] == ["index", "prediction"], name
    sizes = {"SST-2.tsv": 7, "MNLI-m.tsv": 5, "MNLI-mm.tsv": 5, "AX.tsv": 6}
    for name, rows in files.items():
        assert len(rows) - 1 == sizes.get(name, 4), name
        assert [r[0] for r in rows[1:]] == [str(i) for i in range(len(rows) - 1)]
    assert {r[1] for r in files["SST-2.tsv"][1:]} <= {"0", "1"}
    assert {r[1] for r in files["MNLI-m.tsv"][1:] + files["AX.tsv"][1:]} <= {"entailment", "neutral", "contradiction"}
    # STS-B has a model but no test file: a placeholder; CoLA has neither model nor data
    assert {r[1] for r in files["STS-B.tsv"][1:]} == {"2.500"} and {r[1] for r in files["CoLA.tsv"][1:]} == {"0"}
    assert {r[1] for r in files["RTE.tsv"][1:] + files["QNLI.tsv"][1:]} == {"entailment"}
    filled = out["submission"]["filled"]
    assert set(filled) == {"CoLA", "MRPC", "STS-B", "QQP", "QNLI", "RTE", "WNLI"} and "no stsb model" not in filled["STS-B"]


def test_ax_is_predicted_by_the_mnli_model(multitask, data, tmp_path, small_sizes):
    from kdnlp.modeling.models import load_classifier, load_tokenizer
    from kdnlp.tasks.glue.problem import predict

    out = run_glue(str(multitask), tmp_path / "sub", data_dir=str(data), tasks="mnli", predict_test=True)
    files = read_zip(Path(out["path"]) / "submission.zip")
    assert sorted(files) == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv"] and "SST-2" in out["submission"]["left_out"]
    path = str(multitask / "tasks" / "mnli" / "model")
    model, tok = load_classifier(path, glue.TASKS["mnli"], True), load_tokenizer(path)
    ds = glue.load_split(glue.DIAGNOSTIC, "test", str(data))
    expected = [glue.TASKS["mnli"].labels[i] for i in predict(model, tok, glue.encode(ds, tok, glue.DIAGNOSTIC, 128)).argmax(-1)]
    assert [r[1] for r in files["AX.tsv"][1:]] == expected


@pytest.mark.parametrize("selected", [False, True])
def test_predict_reads_batches_as_columns_with_the_logits_of_row_by_row_batches(tokenizer, monkeypatch, selected):
    import datasets
    from transformers import DataCollatorWithPadding

    from kdnlp.tasks.glue.problem import predict

    texts = ["a", "a fine and gripping film", "dull", "the best film of the year by far", "ok", "so so at best", "bad"]
    ds = datasets.Dataset.from_dict({"sentence": texts, "label": [i % 2 for i in range(len(texts))]})
    enc = glue.encode(ds, tokenizer, glue.TASKS["sst2"], 128)
    if selected:  # a dataset read through an indices mapping
        enc = enc.select([6, 0, 3, 1, 5, 2, 4])
    model, collate, rows = tiny_classifier().eval(), DataCollatorWithPadding(tokenizer), enc.remove_columns("labels")
    with torch.no_grad():
        expected = np.concatenate([model(**collate([rows[i] for i in range(start, min(start + 3, len(rows)))])).logits
                                   for start in range(0, len(rows), 3)])
    read = datasets.Dataset.__getitem__

    def columns_only(self, key):
        assert not isinstance(key, int), f"row {key} read alone"
        return read(self, key)

    monkeypatch.setattr(datasets.Dataset, "__getitem__", columns_only)
    np.testing.assert_allclose(predict(model, tokenizer, enc, batch_size=3), expected, rtol=0, atol=1e-6)


def test_stsb_scores_are_clipped(multitask, tmp_path, tokenizer, small_sizes, data):
    (data / "STS-B" / "test.tsv").write_text("index\tsentence1\tsentence2\n" + "".join(f"{i}\ta b\tc d\n" for i in range(4)))
    try:
        out = run_glue(str(multitask), tmp_path / "sub", data_dir=str(data), tasks="stsb", predict_test=True)
    finally:
        (data / "STS-B" / "test.tsv").unlink()
    rows = read_zip(Path(out["path"]) / "submission.zip")["STS-B.tsv"]
    assert [r[1] for r in rows[1:]] == ["5.000"] * 4  # the head's bias puts raw scores near 8


def test_row_counts_are_checked(multitask, data, tmp_path):
    with pytest.raises(KdnlpError, match="the SST-2 test file has 7 rows but the leaderboard expects 1821"):
        run_glue(str(multitask), tmp_path / "sub", data_dir=str(data), tasks="sst2", predict_test=True)
    assert not (tmp_path / "sub").exists()
    with pytest.raises(KdnlpError, match="the SST-2 test file has 7 rows"):  # the same again: the same one error
        run_glue(str(multitask), tmp_path / "sub", data_dir=str(data), tasks="sst2", predict_test=True)


def test_cli_refuses_fill_missing_without_predict_test(tmp_path):
    from test_cli import assert_user_error, kdnlp

    assert_user_error(kdnlp("glue", "--model", tmp_path, "-o", tmp_path / "out", "--fill-missing"), "--predict-test")


@pytest.mark.integration
def test_real_test_files_give_the_official_row_counts(glue_dir, tmp_path, tokenizer):
    model = save_model(tmp_path / "m", tokenizer, LABELS["sst2"])
    out = run_glue(str(model), tmp_path / "out", data_dir=str(glue_dir), tasks="sst2", predict_test=True,
                   fill_missing=True, max_samples=64)
    saved = json.loads((Path(out["path"]) / "sst2.json").read_text())
    gold = glue.load_split(glue.TASKS["sst2"], "validation", str(glue_dir), 64)["label"]
    assert saved["metrics"]["accuracy"] == pytest.approx(accuracy_score(gold, saved["predictions"]), abs=1e-9)
    files = read_zip(Path(out["path"]) / "submission.zip")
    assert len(files) == 11
    for task, _ in glue_suite.glue.SUBMISSION:
        assert len(files[f"{task.leaderboard}.tsv"]) - 1 == task.test_size
    test_rows = (glue_dir / "SST-2" / "test.tsv").read_text().splitlines()[1:]
    assert [r[0] for r in files["SST-2.tsv"][1:]] == [line.split("\t")[0] for line in test_rows]

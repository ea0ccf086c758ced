"""The GLUE table, the local loaders on the real files, and the shipped metric against sklearn/scipy."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from kdnlp.tasks.glue import metrics
from kdnlp.tasks.glue.data import TASKS, get_task, load_split, read_tsv
from kdnlp.core.errors import KdnlpError


def test_table_has_all_nine_tasks_and_mnli_mismatched():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "mnli-mm", "qnli", "rte", "wnli"}
    assert get_task("SST-2") is TASKS["sst2"] and get_task("mnli_mismatched") is TASKS["mnli-mm"]
    assert TASKS["stsb"].regression and TASKS["stsb"].num_labels == 1 and TASKS["mnli"].num_labels == 3
    with pytest.raises(KdnlpError, match="unknown task 'sst3'; valid: cola, sst2"):
        get_task("sst3")


@pytest.mark.parametrize("task, split, rows, first", [
    ("sst2", "train", 67349, None),
    ("sst2", "validation", 872, {"sentence": "it 's a charming and often affecting journey . ", "label": 1}),
    ("cola", "train", 8551, {"sentence": "Our friends won't buy this analysis, let alone the next one we propose.", "label": 1}),
    ("cola", "validation", 1043, {"sentence": "The sailors rode the breeze clear of the rocks.", "label": 1}),
    ("mrpc", "train", 3668, None),
    ("mrpc", "validation", 408, {"label": 1}),
    ("stsb", "validation", 1500, {"sentence1": "A man with a hard hat is dancing.", "label": 5.0}),
    ("rte", "train", 2490, None),
    ("rte", "validation", 277, {"label": 1}),
    ("wnli", "validation", 71, {"label": 0}),
])
def test_real_glue_files(glue_dir, task, split, rows, first):
    ds = load_split(get_task(task), split, str(glue_dir))
    assert len(ds) == rows
    for key, value in (first or {}).items():
        assert ds[0][key] == value


def test_label_balance_matches_the_published_counts(glue_dir):
    labels = {t: np.array(load_split(get_task(t), "train", str(glue_dir))["label"]) for t in ("sst2", "cola", "mrpc", "rte")}
    assert (labels["sst2"] == 1).sum() == 37569 and (labels["cola"] == 1).sum() == 6023
    assert (labels["mrpc"] == 1).sum() == 2474 and (labels["rte"] == 0).sum() == 1249  # 0 = entailment


def test_mrpc_header_bom_and_bare_quotes(glue_dir):
    ds = load_split(get_task("mrpc"), "validation", str(glue_dir))
    assert ds[0]["sentence2"].startswith('" The foodservice pie business')


def test_mnli_and_qqp_in_glue_format_from_a_folder_holding_the_files(glue_dir):
    root = glue_dir.parent / "glue_subsets"
    mnli = load_split(get_task("mnli"), "validation", str(root / "MNLI" / "kshot_16-42"))
    assert len(mnli) == 48 and set(mnli["label"]) == {0, 1, 2} and mnli.column_names[:2] == ["premise", "hypothesis"]
    qqp = load_split(get_task("qqp"), "train", str(root / "QQP" / "kshot_16-42"))
    assert len(qqp) == 32 and set(qqp["label"]) == {0, 1}


def test_unlabeled_test_split_and_bad_files(tmp_path):
    sst = tmp_path / "SST-2"
    sst.mkdir()
    (sst / "test.tsv").write_text('index\tsentence\n0\ta "quoted word\n1\tanother\n')
    ds = load_split(get_task("sst2"), "test", str(tmp_path))
    assert ds["label"] == [-1, -1] and ds["sentence"][0] == 'a "quoted word'
    with pytest.raises(KdnlpError, match="no train file for sst2"):
        load_split(get_task("sst2"), "train", str(tmp_path))
    with pytest.raises(KdnlpError, match="does not exist; pass --data-dir"):
        load_split(get_task("sst2"), "train", str(tmp_path / "nowhere"))
    (sst / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\tmaybe\n")
    with pytest.raises(KdnlpError, match=r"train.tsv:3: label 'maybe' is not one of negative, positive"):
        load_split(get_task("sst2"), "train", str(tmp_path))
    (sst / "train.tsv").write_text("text\tlabel\ngood\t1\n")
    with pytest.raises(KdnlpError, match="no header with the sst2 columns sentence"):
        read_tsv(get_task("sst2"), sst / "train.tsv")


@pytest.mark.parametrize("split, name", [("train", "train.tsv"), ("validation", "dev.tsv"), ("test", "test.tsv")])
def test_a_file_with_a_header_and_no_rows_is_named(tmp_path, split, name):
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / name).write_text("index\tsentence1\tsentence2\tlabel\n")
    with pytest.raises(KdnlpError) as e:
        load_split(get_task("rte"), split, str(tmp_path))
    assert str(e.value) == f"'{tmp_path / 'RTE' / name}' has a header but no rows; a rte file needs at least one example"


def test_train_subsets_are_seeded_random_and_dev_subsets_are_the_head(glue_dir):
    task = get_task("sst2")
    a, b = (load_split(task, "train", str(glue_dir), 50, seed=1) for _ in range(2))
    assert a["sentence"] == b["sentence"] and len(a) == 50
    assert a["sentence"] != load_split(task, "train", str(glue_dir), 50, seed=2)["sentence"]
    assert load_split(task, "validation", str(glue_dir), 5)["sentence"] == load_split(task, "validation", str(glue_dir))["sentence"][:5]


def _heuristic(task, ds):
    """Real, imperfect predictions from the text: word-overlap and length rules."""
    if task.regression:
        return np.array([5 * len(set(a.split()) & set(b.split())) / max(1, len(set(a.split()) | set(b.split())))
                         for a, b in zip(ds["sentence1"], ds["sentence2"])])
    if len(task.keys) == 1:
        return np.array([int(len(s.split()) % 3 != 0) for s in ds["sentence"]])
    a, b = task.keys
    return np.array([int(len(set(x.split()) & set(y.split())) > 6) for x, y in zip(ds[a], ds[b])])


@pytest.mark.parametrize("name", ["cola", "sst2", "mrpc", "stsb", "rte"])
def test_metric_module_agrees_with_sklearn_and_scipy(glue_dir, name):
    task = get_task(name)
    ds = load_split(task, "validation", str(glue_dir))
    pred, ref = _heuristic(task, ds), np.array(ds["label"])
    got = metrics.compute(task, pred, ref)
    expected = {
        "accuracy": lambda: accuracy_score(ref, pred), "f1": lambda: f1_score(ref, pred),
        "matthews_correlation": lambda: matthews_corrcoef(ref, pred),
        "pearson": lambda: pearsonr(pred, ref)[0], "spearmanr": lambda: spearmanr(pred, ref)[0],
    }
    assert set(got) == set(task.metrics) | ({"combined_score"} if len(task.metrics) > 1 else set())
    for m in task.metrics:
        assert got[m] == pytest.approx(expected[m](), abs=1e-6)
    if len(task.metrics) > 1:
        assert got["combined_score"] == pytest.approx(np.mean([got[m] for m in task.metrics]))
    assert 0 < abs(metrics.task_score(task, got)) < 1


def test_metric_takes_logits_and_glue_average_counts_mnli_once():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert metrics.compute(get_task("sst2"), logits, [0, 1, 1])["accuracy"] == pytest.approx(2 / 3)
    assert metrics.glue_average({"sst2": 0.9, "mnli": 0.8, "mnli-mm": 0.6, "rte": 0.5}) == pytest.approx((0.9 + 0.7 + 0.5) / 3)


def test_without_a_folder_the_hub_is_used_and_its_absence_is_a_clear_error():
    with pytest.raises(KdnlpError, match="could not load nyu-mll/glue/sst2 from the Hub .*pass --data-dir or set GLUE_DIR"):
        load_split(get_task("sst2"), "validation", None)

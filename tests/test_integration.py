"""End to end on real GLUE files and the real MiniLM-L6, on small subsets (skipped without ../shared/data)."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

import kdnlp
import kdnlp.core.errors

pytestmark = pytest.mark.integration
SMALL = {"max_train_samples": 32, "max_eval_samples": 32}
FAST = ["training.num_train_epochs=1", "max_length=64", "training.save_strategy=no",
        "training.per_device_train_batch_size=16"]


@pytest.fixture(scope="module")
def rte_teacher(tmp_path_factory, glue_dir, minilm_path):
    out = tmp_path_factory.mktemp("rte") / "teacher"
    metrics = kdnlp.finetune("minilm-l6", "rte", out, data_dir=str(glue_dir), overrides=FAST, **SMALL)
    assert metrics["task"] == "rte" and metrics["examples"] == 32 and 0 <= metrics["metrics"]["accuracy"] <= 1
    return out


def test_finetune_writes_a_plain_model_folder(rte_teacher):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(rte_teacher / "model")
    assert model.config.num_hidden_layers == 6 and model.config.num_labels == 2
    assert model.config.id2label == {0: "entailment", 1: "not_entailment"}
    run = json.loads((rte_teacher / "run.json").read_text())
    assert run["train_examples"] == {"task": 32} and run["recipe"] == "finetune"


@pytest.mark.parametrize("recipe, layers", [("distilbert", [1, 4, 6]), ("pkd-skip", [1, 2, 3])])
def test_recipes_distill_a_3_layer_student(rte_teacher, glue_dir, tmp_path, recipe, layers):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "student"
    metrics = kdnlp.run_recipe(recipe, "rte", out, teacher=str(rte_teacher), data_dir=str(glue_dir),
                               overrides=FAST, **SMALL)
    student = AutoModelForSequenceClassification.from_pretrained(out / "model")
    teacher = AutoModelForSequenceClassification.from_pretrained(rte_teacher / "model")
    assert student.config.num_hidden_layers == 3
    n_student, n_teacher = (sum(p.numel() for p in m.parameters()) for m in (student, teacher))
    run = json.loads((out / "run.json").read_text())
    assert run["student_layers"] == layers and run["params"] == {"student": n_student, "teacher": n_teacher}
    assert n_student < n_teacher
    history = metrics["stages"]["distill"]["eval"]
    assert "eval_accuracy" in history
    # training moved the copied layers away from the teacher's
    t, s = teacher.state_dict(), student.state_dict()
    key = "bert.encoder.layer.{}.output.dense.weight"
    assert not torch.equal(s[key.format(1)], t[key.format(layers[1] - 1)])


@pytest.mark.parametrize("recipe, stages", [("fitnets", ["hint", "kd"]), ("rkd", ["distill"]), ("sp", ["distill"]),
                                            ("crd", ["distill"]), ("vid", ["distill"])])
def test_survey_recipes_distill_on_real_data(rte_teacher, glue_dir, tmp_path, recipe, stages):
    """Each survey recipe end to end; the terms' regressors and heads stay out of the exported student."""
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "student"
    metrics = kdnlp.run_recipe(recipe, "rte", out, teacher=str(rte_teacher), data_dir=str(glue_dir),
                               overrides=FAST, **SMALL)
    assert list(metrics["stages"]) == stages and metrics["finished"]
    assert all(math.isfinite(metrics["stages"][s]["train"]["train_loss"]) for s in stages)
    assert 0 <= metrics["metrics"]["accuracy"] <= 1
    student = AutoModelForSequenceClassification.from_pretrained(out / "model")
    assert student.config.num_hidden_layers == 3
    assert set(load_file(str(out / "model" / "model.safetensors"))) <= set(student.state_dict())


def test_eval_compares_models_with_speed(rte_teacher, glue_dir, tmp_path):
    result = kdnlp.evaluate_models([str(rte_teacher), str(rte_teacher)], "rte", data_dir=str(glue_dir),
                                   max_samples=40, speed=True)
    a, b = result["models"]
    assert a["metrics"] == b["metrics"] and a["score_pct_of_first"] == pytest.approx(100.0)
    assert a["latency_ms_b1"] > 0 and a["throughput_b32"] > 0 and a["speedup_b1"] == pytest.approx(1.0)
    from kdnlp.tools.evaluation import format_table

    lines = format_table(result).splitlines()
    assert lines[1].startswith("| model | accuracy | % of first | params (M) | latency b1 (ms)")
    assert len(lines) == 5 and "100.0%" in lines[3] and lines[3].endswith("| 1.00x | 1.00x |")  # the reference row
    assert re.search(r"\| \d+\.\d\dx \| \d+\.\d\dx \|$", lines[4])  # timings vary: only their format is fixed


def test_stsb_regression_end_to_end(glue_dir, tmp_path):
    metrics = kdnlp.finetune("minilm-l6", "stsb", tmp_path / "t", data_dir=str(glue_dir), overrides=FAST, **SMALL)
    assert set(metrics["metrics"]) >= {"pearson", "spearmanr", "combined_score"}
    distilled = kdnlp.run_recipe("hinton", "stsb", tmp_path / "s", teacher=str(tmp_path / "t"), data_dir=str(glue_dir),
                                 overrides=FAST + ["student.layers=2"], **SMALL)
    assert -1 <= distilled["metrics"]["pearson"] <= 1


def test_init_student_keeping_every_layer_reproduces_minilm(minilm_path, tmp_path, tokenizer):
    from transformers import AutoModel

    ids = kdnlp.init_student_folder("minilm-l6", str(tmp_path / "all"), 6)
    assert ids == [1, 2, 3, 4, 5, 6]
    a, b = AutoModel.from_pretrained(minilm_path).eval(), AutoModel.from_pretrained(tmp_path / "all").eval()
    enc = tokenizer(["a real sentence to embed", "and another"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(a(**enc).last_hidden_state, b(**enc).last_hidden_state)
    assert kdnlp.init_student_folder("minilm-l6", str(tmp_path / "two"), [2, 5]) == [2, 5]
    assert AutoModel.from_pretrained(tmp_path / "two").config.num_hidden_layers == 2


def test_tinybert_narrow_runs_its_three_stages_and_exports_a_plain_student(rte_teacher, glue_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "tiny"
    overrides = FAST + [f"stages.{s}.training.num_train_epochs=1" for s in ("general", "intermediate", "prediction")] + [
        "student.hidden_size=192", "student.intermediate_size=384"]
    text = glue_dir.parent / "seq2seq" / "opennmt_wmt_en_de_sample" / "src-val.txt"
    with pytest.raises(kdnlp.core.errors.KdnlpError, match="stage 'general' .* trains on unlabeled text; pass --text"):
        kdnlp.run_recipe("tinybert-narrow", "rte", out, teacher=str(rte_teacher), data_dir=str(glue_dir))
    metrics = kdnlp.run_recipe("tinybert-narrow", "rte", out, teacher=str(rte_teacher), data_dir=str(glue_dir),
                               overrides=overrides, text=[str(text)], **SMALL)
    assert list(metrics["stages"]) == ["general", "intermediate", "prediction"]
    assert json.loads((out / "run.json").read_text())["train_examples"] == {"task": 32, "text": 32}
    student = AutoModelForSequenceClassification.from_pretrained(out / "model")
    c = student.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads) == (4, 192, 12)
    assert not any("proj" in name for name, _ in student.named_parameters())
    assert "accuracy" in metrics["metrics"]

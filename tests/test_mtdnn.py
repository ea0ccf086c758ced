"""Multi-task distillation from teacher ensembles (kdnlp.tasks.multitask.problem, kdnlp.tasks.multitask.model) on tiny models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_classifier, write_sst2
from kdnlp.core.errors import KdnlpError
from kinds import STSB_ROWS, write_pairs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = write_sst2(tmp_path_factory.mktemp("mt") / "glue", dev_rows=12)
    write_pairs(root, "MRPC", "Quality", [("a cat sat", "a cat sat down", "1"), ("a dog ran", "the sky is blue", "0"),
                                          ("he came", "he arrived", "1"), ("red car", "green tree", "0")])
    write_pairs(root, "STS-B", "score", STSB_ROWS)
    return root


@pytest.fixture(scope="module")
def teachers(tmp_path_factory, tokenizer) -> dict[str, list[str]]:
    """Two SST-2 teachers, one MRPC teacher, two STS-B teachers (regression), all tiny BERTs with MiniLM's vocabulary."""
    root = tmp_path_factory.mktemp("teachers")
    out = {}
    for task, seeds, labels in (("sst2", (1, 2), 2), ("mrpc", (3,), 2), ("stsb", (4, 5), 1)):
        out[task] = []
        for seed in seeds:
            path = root / f"{task}-{seed}"
            tiny_classifier(seed=seed, num_labels=labels).save_pretrained(path)
            tokenizer.save_pretrained(path)
            out[task].append(str(path))
    return out


def spec(teachers: dict[str, list[str]]) -> str:
    return ";".join(f"{t}={','.join(names)}" for t, names in teachers.items())


def problem_with(teachers, tasks=("sst2", "mrpc", "stsb"), **settings):
    from kdnlp.tasks.multitask.problem import MultiTaskProblem, Settings

    problem = MultiTaskProblem(list(tasks), Settings(**settings))
    ensemble = problem.load_model(spec({t: teachers[t] for t in tasks}), require_head=True).eval()
    return problem, ensemble


@pytest.mark.parametrize("combine", ["probs", "logits"])
def test_ensemble_targets_are_the_mean_of_the_teachers(teachers, tokenizer, combine):
    from transformers import AutoModelForSequenceClassification

    from kdnlp.tasks.multitask.model import soft_targets

    problem, ensemble = problem_with(teachers)
    enc = tokenizer(["a fine film", "a dull long film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        for i, task in enumerate(problem.tasks):
            rows = ensemble(**enc, task_ids=torch.full((2,), i)).logits
            target = soft_targets(rows, len(teachers[task.name]), ensemble.width, task.num_labels, combine)
            alone = [AutoModelForSequenceClassification.from_pretrained(p).eval()(**enc).logits
                     for p in teachers[task.name]]
            if task.regression:
                torch.testing.assert_close(target, torch.stack(alone).mean(0), atol=1e-6, rtol=0)
            elif combine == "probs":
                mean = torch.stack([a.softmax(-1) for a in alone]).mean(0)
                torch.testing.assert_close(target.softmax(-1), mean, atol=1e-6, rtol=0)
                torch.testing.assert_close(target.exp(), mean, atol=1e-6, rtol=0)
            else:
                torch.testing.assert_close(target, torch.stack(alone).mean(0), atol=1e-6, rtol=0)


def test_mixed_batches_give_each_row_its_own_teachers(teachers, tokenizer):
    problem, ensemble = problem_with(teachers)
    enc = tokenizer(["a fine film"] * 3, return_tensors="pt")
    with torch.no_grad():
        mixed = ensemble(**enc, task_ids=torch.tensor([0, 1, 2])).logits
        for i in range(3):
            alone = ensemble(**{k: v[i:i + 1] for k, v in enc.items()}, task_ids=torch.tensor([i])).logits
            torch.testing.assert_close(mixed[i:i + 1], alone, atol=1e-5, rtol=0)
    assert mixed[2, 1] == 0 and mixed[2, 2] != 0  # STS-B: one score per teacher, teacher 2 at column width


def hinton_loss(teachers, temperature: float, anneal: bool):
    from kdnlp.losses import LossContext
    from kdnlp.losses import LossTerm

    problem, ensemble = problem_with(teachers, ("sst2",), anneal=anneal)
    ctx = LossContext(2, ensemble.config, ensemble.config)
    return problem.build_loss([LossTerm("hinton", 1.0, "hinton", {"temperature": temperature})], ctx, ensemble)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_annealed_target_moves_from_the_tempered_ensemble_to_untempered_gold(teachers, temperature):
    loss = hinton_loss(teachers, temperature, anneal=True)
    teacher_rows = torch.tensor([[2.0, -1.0, 0.0, 1.0]])
    gold = torch.tensor([1])
    mean = torch.stack([(teacher_rows[:, :2] / temperature).softmax(-1),
                        (teacher_rows[:, 2:] / temperature).softmax(-1)]).mean(0)
    for progress in (0.0, 0.25, 1.0):
        loss.progress = progress
        target = (loss._target(teacher_rows, gold, 0) / temperature).softmax(-1)
        expected = progress * torch.tensor([[0.0, 1.0]]) + (1 - progress) * mean
        torch.testing.assert_close(target, expected, atol=1e-6, rtol=0)


def test_hinton_at_a_temperature_learns_the_mean_of_the_tempered_teachers(teachers):
    from transformers.modeling_outputs import SequenceClassifierOutput

    loss = hinton_loss(teachers, 3.0, anneal=False)
    teacher_rows = torch.tensor([[2.0, -1.0, 0.0, 1.0], [-0.5, 1.5, 3.0, -2.0]])
    student = torch.tensor([[0.3, -0.2], [1.0, 0.4]])
    batch = {"task_ids": torch.zeros(2, dtype=torch.long), "labels": torch.tensor([0, 1])}
    value, _ = loss(SequenceClassifierOutput(logits=student), SequenceClassifierOutput(logits=teacher_rows), batch)
    p = torch.stack([(teacher_rows[:, :2] / 3).softmax(-1), (teacher_rows[:, 2:] / 3).softmax(-1)]).mean(0)
    q = (student / 3).log_softmax(-1)
    expected = 9 * (p * (p.log() - q)).sum(-1).mean()
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-5)


def test_multitask_terms_at_two_temperatures_are_refused(teachers):
    from kdnlp.losses import LossContext
    from kdnlp.losses import LossTerm

    problem, ensemble = problem_with(teachers, ("sst2",))
    terms = [LossTerm("hinton", 1.0, "a", {"temperature": 1.0}), LossTerm("hinton", 1.0, "b", {"temperature": 2.0})]
    with pytest.raises(KdnlpError, match="one temperature.*1.0, 2.0"):
        problem.build_loss(terms, LossContext(2, ensemble.config, ensemble.config), ensemble)


def test_the_problem_keeps_no_state_between_calls(teachers, data, tokenizer):
    """The teachers reach the loss and the final metrics in their arguments; the recipe makes a new problem."""
    from kdnlp.losses import LossContext, LossTerm
    from kdnlp.pipeline import recipe as recipes

    problem, ensemble = problem_with(teachers, ("sst2", "stsb"))
    before = dict(vars(problem))
    ctx = LossContext(2, ensemble.config, ensemble.config)
    problem.build_loss([LossTerm("hinton", 1.0, "hinton", {"temperature": 2.0})], ctx, ensemble)
    dev = problem.load("validation", str(data))
    final = problem.final_metrics({"eval_average": 0.5}, None, tokenizer, dev, 64, ensemble)
    assert "ensemble/average" in final and "teacher2/sst2/accuracy" in final
    assert problem.final_metrics({"eval_average": 0.5}, None, tokenizer, dev, 64) == {"average": 0.5}
    configured = problem.configured(recipes.load("mtdnn", ["multitask.combine=logits"]))
    assert configured.settings.combine == "logits" and configured is not problem
    assert vars(problem) == before


@pytest.mark.parametrize("sampling", ["proportional", "temperature", "round_robin"])
def test_each_batch_comes_from_one_task(sampling):
    from kdnlp.tasks.multitask.model import TaskBatches

    ids = [0] * 20 + [1] * 7 + [2] * 3
    batches = TaskBatches(ids, ["a", "b", "c"], 4, sampling, 0.5, seed=1)
    first = list(batches)
    assert len(first) == len(batches) == 5 + 2 + 1
    assert all(len({ids[i] for i in b}) == 1 for b in first)
    if sampling == "proportional":  # every row once per epoch
        assert sorted(i for b in first for i in b) == list(range(30))
    if sampling == "round_robin":
        assert [ids[b[0]] for b in first[:6]] == [0, 1, 2, 0, 1, 2]
    assert list(batches) == first  # the same epoch, the same order
    batches.set_epoch(1)
    assert list(batches) != first


def shards(batches, processes: int = 2) -> list[list[list[int]]]:
    """The batches of each process, as Accelerate deals them out."""
    from accelerate.data_loader import BatchSamplerShard

    return [list(BatchSamplerShard(batches, num_processes=processes, process_index=r)) for r in range(processes)]


@pytest.mark.parametrize("sampling", ["proportional", "temperature", "round_robin"])
def test_two_processes_share_the_batches_of_one(sampling):
    """Task sizes that 4 x 2 does not divide: each process gets one part of every batch (parts within a row of each
    other), so a step's parts together are one batch of one task, every row comes once per epoch (proportional),
    and the steps are the batches of one process with 8."""
    from kdnlp.tasks.multitask.model import TaskBatches

    ids = [0] * 21 + [1] * 13 + [2] * 11
    one = TaskBatches(ids, ["a", "b", "c"], 8, sampling, 0.5, seed=1)
    two = TaskBatches(ids, ["a", "b", "c"], 4, sampling, 0.5, seed=1, processes=2)
    for epoch in (0, 1):
        one.set_epoch(epoch)
        two.set_epoch(epoch)
        ranks = shards(two)
        assert len(ranks[0]) == len(ranks[1]) == len(one) == 3 + 2 + 2
        assert all(abs(len(a) - len(b)) <= 1 and a and b for a, b in zip(*ranks))
        steps = [a + b for a, b in zip(*ranks)]
        assert all(len({ids[i] for i in b}) == 1 for b in steps)
        if sampling == "proportional":
            assert sorted(i for b in steps for i in b) == list(range(len(ids)))
        assert steps == list(one)


def test_a_last_batch_too_short_for_every_process_takes_a_row_from_the_one_before():
    from kdnlp.tasks.multitask.model import TaskBatches

    ids = [0] * 17 + [1] * 9  # last batches of 1 row in one process with 8
    ranks = shards(TaskBatches(ids, ["a", "b"], 4, "proportional", 0.5, seed=1, processes=2))
    steps = [a + b for a, b in zip(*ranks)]
    assert all(a and b for a, b in zip(*ranks)) and all(len({ids[i] for i in b}) == 1 for b in steps)
    assert sorted(i for b in steps for i in b) == list(range(len(ids)))
    assert sorted(len(b) for b in steps) == [2, 2, 7, 7, 8]


def test_a_task_too_small_for_the_processes_is_refused():
    from kdnlp.tasks.multitask.model import TaskBatches

    with pytest.raises(KdnlpError, match="task b: its 1 training rows cannot give each of 2 processes a row"):
        TaskBatches([0] * 9 + [1], ["a", "b"], 4, "proportional", 0.5, seed=0, processes=2)


def test_temperature_sampling_flattens_the_task_mix():
    from kdnlp.tasks.multitask.model import TaskBatches

    ids = [0] * 900 + [1] * 100
    counts = {}
    for tau in (1.0, 0.0):
        batches = TaskBatches(ids, ["a", "b"], 1, "temperature", tau, seed=0)
        counts[tau] = np.bincount([ids[b[0]] for b in batches], minlength=2)
    assert 0.85 < counts[1.0][0] / 1000 < 0.95
    assert 0.45 < counts[0.0][0] / 1000 < 0.55


@pytest.fixture(scope="module")
def run(tmp_path_factory, data, teachers) -> Path:
    from kdnlp.pipeline.runner import run_recipe

    out = tmp_path_factory.mktemp("runs") / "mt"
    run_recipe("mtdnn", "tasks:sst2,mrpc,stsb", out, teacher=spec(teachers), data_dir=str(data),
               overrides=["training.num_train_epochs=2", "training.per_device_train_batch_size=8", "student.layers=2",
                          "training.logging_steps=1", "multitask.sampling=round_robin", "multitask.anneal=true"])
    return out


def test_a_multitask_run_scores_every_task_and_the_ensemble(run):
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    for prefix in ("", "ensemble/", "teacher1/"):
        assert {f"{prefix}sst2/accuracy", f"{prefix}mrpc/f1", f"{prefix}stsb/pearson"} <= set(metrics)
    assert "teacher2/sst2/accuracy" in metrics and "teacher2/mrpc/accuracy" not in metrics
    scores = [metrics["sst2/accuracy"], (metrics["mrpc/accuracy"] + metrics["mrpc/f1"]) / 2,
              (metrics["stsb/pearson"] + metrics["stsb/spearmanr"]) / 2]
    assert metrics["average"] == pytest.approx(np.mean(scores))
    state = json.loads(next((run / "stages" / "distill").glob("checkpoint-*/trainer_state.json")).read_text())
    logged = {k for entry in state["log_history"] for k in entry}
    assert {"loss/sst2/hinton", "loss/mrpc/ce", "loss/stsb/hinton"} <= logged


def test_task_exports_load_with_plain_transformers_and_match(run, data, tokenizer):
    from transformers import AutoModelForSequenceClassification

    from kdnlp.tasks.multitask.model import MultiTaskModel
    from kdnlp.tasks.kinds import get_problem

    whole = MultiTaskModel.from_pretrained(run / "model").eval()
    problem = get_problem("tasks:sst2,mrpc,stsb")
    dev = problem.encode(problem.load("validation", str(data)), tokenizer, 64)
    batch = tokenizer.pad([{k: r[k] for k in ("input_ids", "token_type_ids", "attention_mask")} for r in dev],
                          return_tensors="pt")
    ids = torch.tensor(dev["task_ids"])
    with torch.no_grad():
        logits = whole(**batch, task_ids=ids).logits
        for i, task in enumerate(problem.tasks):
            model = AutoModelForSequenceClassification.from_pretrained(run / "tasks" / task.name / "model").eval()
            assert type(model).__name__ == "BertForSequenceClassification"
            assert model.config.num_labels == task.num_labels
            if not task.regression:
                assert list(model.config.id2label.values()) == ["LABEL_0", "LABEL_1"]  # the teachers' names
            rows = ids == i
            alone = model(**{k: v[rows] for k, v in batch.items()}).logits
            torch.testing.assert_close(alone, logits[rows, : task.num_labels], atol=1e-5, rtol=0)


def test_the_whole_model_reloads_with_its_predictions(run, tokenizer, tmp_path):
    from kdnlp.tasks.multitask.model import MultiTaskModel

    model = MultiTaskModel.from_pretrained(run / "model").eval()
    model.save_pretrained(tmp_path / "again")
    again = MultiTaskModel.from_pretrained(tmp_path / "again").eval()
    enc = tokenizer(["a good film", "a bad film"], return_tensors="pt", padding=True)
    with torch.no_grad():
        torch.testing.assert_close(model(**enc, task_ids=torch.tensor([0, 2])).logits,
                                   again(**enc, task_ids=torch.tensor([0, 2])).logits)
    assert model.tasks == ["sst2", "mrpc", "stsb"]  # the task indices of the run, whatever order JSON keeps
    assert model.config.task_labels == {"sst2": ["LABEL_0", "LABEL_1"], "mrpc": ["LABEL_0", "LABEL_1"],
                                        "stsb": ["LABEL_0"]}


def test_push_publishes_one_task_with_its_ensemble(run, teachers):
    from huggingface_hub import ModelCard

    from kdnlp.tools import hub

    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    result = hub.push_run(run, "me/mt-mrpc", dry_run=True, task="MRPC")
    shipped = {p.name for p in (run / "tasks" / "mrpc" / "model").iterdir()}
    assert set(result["files"]) - {"README.md"} <= shipped and "model.safetensors" in result["files"]
    card = ModelCard(result["card"])
    assert card.data.eval_results[0].dataset_config == "mrpc"
    row = next(line for line in card.text.splitlines() if line.startswith("| f1 |"))
    assert f"{metrics['mrpc/f1']:.4f}" in row and f"{metrics['ensemble/mrpc/f1']:.4f}" in row
    assert f"`{teachers['mrpc'][0]}`" in card.text and teachers["sst2"][0] not in card.text
    with pytest.raises(KdnlpError, match="several tasks; pass --task, one of sst2, mrpc, stsb"):
        hub.push_run(run, "me/mt", dry_run=True)
    with pytest.raises(KdnlpError, match="bad task 'rte' for --task: this run learned sst2, mrpc, stsb"):
        hub.push_run(run, "me/mt", dry_run=True, task="rte")


def bad_teacher(root: Path, tokenizer, **config) -> str:
    tiny_classifier(**config).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return str(root)


def test_bad_teachers_are_one_line_errors_naming_task_and_teacher(teachers, tokenizer, tmp_path):
    from transformers import BertTokenizer

    from kdnlp.tasks.kinds import get_problem

    problem = get_problem("tasks:sst2,mrpc")
    with pytest.raises(KdnlpError, match="task mrpc has no teacher"):
        problem.check_teacher(f"sst2={teachers['sst2'][0]}")
    missing = str(tmp_path / "nowhere")
    with pytest.raises(KdnlpError, match=f"task mrpc, teacher '{missing}': .*does not exist"):
        problem.check_teacher(f"sst2={teachers['sst2'][0]};mrpc={missing}")
    three = bad_teacher(tmp_path / "three", tokenizer, num_labels=3)
    with pytest.raises(KdnlpError, match=f"task sst2, teacher '{three}': .*has 3 labels but sst2 has 2"):
        problem.check_teacher(f"sst2={teachers['sst2'][0]},{three};mrpc={teachers['mrpc'][0]}")
    named = tiny_classifier()
    named.config.id2label, named.config.label2id = {0: "no", 1: "yes"}, {"no": 0, "yes": 1}
    named.save_pretrained(tmp_path / "named")
    tokenizer.save_pretrained(tmp_path / "named")
    with pytest.raises(KdnlpError, match=f"task mrpc, teacher '{tmp_path / 'named'}': .*labels no, yes"):
        problem.check_teacher(f"sst2={teachers['sst2'][0]};mrpc={tmp_path / 'named'}")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]) + "\n")
    other = tmp_path / "other"
    tiny_classifier(vocab_size=7).save_pretrained(other)
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(other)
    with pytest.raises(KdnlpError, match=f"task mrpc, teacher '{other}' has another vocabulary"):
        problem.check_teacher(f"sst2={teachers['sst2'][0]};mrpc={other}")


def test_cli_multitask_options(tmp_path, teachers, data):
    from typer.testing import CliRunner

    from kdnlp.cli.main import app

    result = CliRunner().invoke(app, ["distill", "--recipe", "mtdnn", "--tasks", "sst2,rte", "--teachers",
                                      f"sst2={teachers['sst2'][0]}", "--data-dir", str(data), "-o", str(tmp_path / "o")])
    assert isinstance(result.exception, KdnlpError) and "task rte has no teacher" in str(result.exception)
    result = CliRunner().invoke(app, ["distill", "--recipe", "mtdnn", "--task", "sst2", "--tasks", "sst2",
                                      "--teachers", "sst2=x", "-o", str(tmp_path / "o")])
    assert isinstance(result.exception, KdnlpError) and "--tasks and --teachers replace --task" in str(result.exception)


def test_finetune_seeds_writes_one_run_per_seed(tmp_path, tiny_teacher_dir):
    from typer.testing import CliRunner

    from kdnlp.cli.main import app

    glue = write_sst2(tmp_path / "glue", dev_rows=8)
    result = CliRunner().invoke(app, ["finetune", "--model", str(tiny_teacher_dir), "--task", "sst2", "--data-dir",
                                      str(glue), "-o", str(tmp_path / "t"), "--seeds", "1,2", "--set",
                                      "training.num_train_epochs=1", "--set", "training.per_device_train_batch_size=16"])
    assert result.exit_code == 0, result.output
    seeds = [json.loads((tmp_path / "t" / f"seed-{n}" / "settings.json").read_text())["recipe"]["training"]["seed"]
             for n in (1, 2)]
    assert seeds == [1, 2]
    from safetensors.torch import load_file

    a = load_file(tmp_path / "t" / "seed-1" / "model" / "model.safetensors")
    b = load_file(tmp_path / "t" / "seed-2" / "model" / "model.safetensors")
    assert not torch.equal(a["classifier.weight"], b["classifier.weight"])


def test_bf16_run_reads_the_ensemble_from_the_cache(tmp_path, data, teachers):
    import os

    from kdnlp.pipeline.runner import run_recipe

    cache = Path(os.environ["KDNLP_CACHE"])
    before = set(cache.glob("*.json"))
    run_recipe("mtdnn", "tasks:sst2,mrpc", tmp_path / "bf16", teacher=spec({t: teachers[t] for t in ("sst2", "mrpc")}),
               data_dir=str(data), overrides=["training.bf16=true", "training.per_device_train_batch_size=8",
                                              "student.layers=1", "training.num_train_epochs=2"])
    new = [json.loads(p.read_text()) for p in set(cache.glob("*.json")) - before]
    assert [m["examples"] for m in new] == [32 + 24]  # both tasks' train rows, once for both epochs
    metrics = json.loads((tmp_path / "bf16" / "metrics.json").read_text())["metrics"]
    assert np.isfinite(metrics["average"]) and np.isfinite(metrics["ensemble/average"])


def test_two_processes_in_bf16_shard_the_task_batches(tmp_path, data, teachers):
    """DDP (gloo) and mixed precision: each process takes its part of every one-task batch (a head absent from the
    batch gets no gradient), every head trains, and each task exports."""
    from safetensors.torch import load_file

    from test_cli import kdnlp

    out = tmp_path / "ddp"
    r = kdnlp("distill", "--recipe", "mtdnn", "--tasks", "sst2,mrpc", "--teachers",
              f"sst2={','.join(teachers['sst2'])}", "--teachers", f"mrpc={teachers['mrpc'][0]}",
              "--data-dir", data, "-o", out, "--bf16", "--num-processes", "2",
              "--set", "training.num_train_epochs=1", "--set", "training.per_device_train_batch_size=8",
              "--set", "student.layers=1", "--set", "training.logging_steps=1")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and np.isfinite(metrics["metrics"]["average"])
    state = json.loads(next((out / "stages" / "distill").glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["global_step"] == 4  # 32 SST-2 + 24 MRPC rows: 2 + 2 one-task batches of 8 per process
    assert {"loss/sst2/hinton", "loss/mrpc/hinton"} <= {k for entry in state["log_history"] for k in entry}
    for task in ("sst2", "mrpc"):
        head = load_file(out / "tasks" / task / "model" / "model.safetensors")["classifier.weight"]
        start = load_file(Path(teachers[task][0]) / "model.safetensors")["classifier.weight"]
        assert head.shape == start.shape and not torch.equal(head, start)



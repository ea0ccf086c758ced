"""The distillation contract on every kind of task (tests/kinds.py): the teacher frozen, in eval mode, run without
gradients, never part of the student or its export; loss-term parameters (projections) trained but never exported;
gradient accumulation and two processes equal to one large batch; a run interrupted after a checkpoint resumes to
the uninterrupted student; every export loads with plain transformers."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerCallback

from kdnlp.pipeline.recipe import parse
from kdnlp.pipeline.runner import last_checkpoint, run_recipe
from kdnlp.training import trainer as trainers
from kinds import KINDS
from test_cli import kdnlp
from test_scale import weights

#: The runs compared with other batchings: SGD, whose step is linear in the gradients, keeps their difference at
#: float32 rounding on any CPU (test_scale's two-process test says why Adam would not).
SGD = {"optim": "sgd", "learning_rate": 0.1, "save_strategy": "epoch"}
SAVING = {"save_strategy": "steps", "save_steps": 2}


@pytest.fixture(scope="module", params=list(KINDS))
def kind(request):
    return KINDS[request.param]


@pytest.fixture(scope="module")
def made(kind, tmp_path_factory, tokenizer):
    """The kind's data, its teacher with attention dropout, and the same teacher without (`still`: for runs whose
    dropout masks would differ, as 1 x 8 and 2 x 4 examples draw other masks)."""
    root = tmp_path_factory.mktemp(kind.name)
    return SimpleNamespace(root=root, data=kind.data(root), teacher=kind.teacher(root / "teacher", tokenizer, 0.1),
                           still=kind.teacher(root / "still", tokenizer, 0.0))


def distill(kind, made, out: Path, teacher: str, resume: bool = False, **training):
    return run_recipe(parse(kind.recipe(**training)), kind.task, out, teacher=teacher, data_dir=str(made.data),
                      teacher_cache=False, resume=resume, **kind.options)


class Recorded:
    """Each DistillationTrainer built while it is active, the teacher's state at each of its forward passes, and
    the trainer's teacher and loss parameters as they were at its start."""

    def __init__(self, monkeypatch):
        self.trainers, self.seen, self.teacher_before, self.loss_before, self.student_before = [], [], [], [], []
        original = trainers.DistillationTrainer.__init__

        def recording(trainer, *args, **kwargs):
            original(trainer, *args, **kwargs)
            self.trainers.append(trainer)
            self.teacher_before.append({k: v.clone() for k, v in trainer.teacher.state_dict().items()})
            self.loss_before.append([p.detach().clone() for p in trainer.distill_loss.parameters()])
            self.student_before.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
            trainer.teacher.register_forward_hook(
                lambda m, args, out: self.seen.append((m.training, torch.is_grad_enabled())))

        monkeypatch.setattr(trainers.DistillationTrainer, "__init__", recording)


@pytest.fixture(scope="module")
def contract(kind, made):
    """The kind's run with attention dropout, saving every 2 steps, its trainer recorded."""
    out = made.root / "contract"
    with pytest.MonkeyPatch.context() as m:
        recorded = Recorded(m)
        metrics = distill(kind, made, out, made.teacher, **SAVING)
    return SimpleNamespace(out=out, metrics=metrics, recorded=recorded)


@pytest.fixture(scope="module")
def one_large_batch(kind, made):
    """The kind's run in batches of 8, SGD, without dropout; returns its folder and its student's starting weights."""
    out = made.root / "batch8"
    with pytest.MonkeyPatch.context() as m:
        recorded = Recorded(m)
        distill(kind, made, out, made.still, per_device_train_batch_size=8, **SGD)
    return SimpleNamespace(out=out, start=recorded.student_before[0])


def test_the_teacher_is_frozen_in_eval_mode_without_gradients_and_never_exported(kind, contract):
    (t,) = contract.recorded.trainers
    teacher, student = t.teacher, t.model
    assert contract.recorded.seen and all(not training and not grad for training, grad in contract.recorded.seen)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(contract.recorded.teacher_before[0][k], v) for k, v in teacher.state_dict().items())
    teacher_ids = {id(p) for p in teacher.parameters()}
    loss_ids = {id(p) for p in t.distill_loss.parameters()}
    assert not (teacher_ids | loss_ids) & {id(p) for p in student.parameters()}
    optimised = {id(p) for g in t.optimizer.param_groups for p in g["params"]}
    assert optimised == {id(p) for p in student.parameters() if p.requires_grad} | loss_ids
    # the export is the trained student and nothing else, and gives it back whole (tied weights and fixed
    # sinusoidal positions are not saved)
    saved = load_file(str(contract.out / "model" / "model.safetensors"))
    state = student.state_dict()
    assert set(saved) <= set(state) and all(torch.equal(v, state[k]) for k, v in saved.items())
    again = type(student).from_pretrained(contract.out / "model").state_dict()
    assert set(again) == set(state) and all(torch.equal(again[k], v) for k, v in state.items())


def test_projections_train_are_checkpointed_and_never_exported(kind, contract):
    (t,) = contract.recorded.trainers
    params = list(t.distill_loss.parameters())
    assert bool(params) == kind.projections
    assert all(not torch.equal(a, b) for a, b in zip(contract.recorded.loss_before[0], params))
    checkpoints = sorted((contract.out / "stages" / "distill").glob("checkpoint-*"))
    assert checkpoints
    for checkpoint in checkpoints:
        assert (checkpoint / trainers.LOSS_STATE).is_file() == kind.projections
        assert set(load_file(str(checkpoint / "model.safetensors"))) <= set(t.model.state_dict())


def test_each_export_loads_with_plain_transformers(kind, contract):
    import transformers

    folders = [contract.out / "model"] if kind.name != "multitask" else sorted((contract.out / "tasks").glob("*/model"))
    assert folders
    for folder in folders:
        config = transformers.AutoConfig.from_pretrained(folder)
        model = getattr(transformers, config.architectures[0]).from_pretrained(folder)
        assert type(model).__module__.startswith("transformers.models.")
        assert transformers.AutoTokenizer.from_pretrained(folder) is not None


def test_an_interrupted_run_resumes_to_the_uninterrupted_student(kind, made, contract):
    """Stopped at its first checkpoint (step 2) and resumed: the student of the uninterrupted run (model, optimizer,
    scheduler, RNG with dropout on, sampler position and projections restored)."""

    class Stop(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise KeyboardInterrupt

    out = made.root / "resumed"
    with pytest.MonkeyPatch.context() as m:
        original = trainers.DistillationTrainer.__init__

        def stopping(trainer, *args, **kwargs):
            original(trainer, *args, **kwargs)
            trainer.add_callback(Stop())

        m.setattr(trainers.DistillationTrainer, "__init__", stopping)
        with pytest.raises(KeyboardInterrupt):
            distill(kind, made, out, made.teacher, **SAVING)
    partial = out.with_name(out.name + ".partial") / "stages" / "distill"
    assert [p.name for p in partial.glob("checkpoint-*")] == ["checkpoint-2"]
    with pytest.MonkeyPatch.context() as m:
        recorded = Recorded(m)
        metrics = distill(kind, made, out, made.teacher, resume=True, **SAVING)
    assert metrics["finished"]
    torch.testing.assert_close(weights(out), weights(contract.out), rtol=0, atol=1e-6)
    projections = (r.trainers[0].distill_loss.parameters() for r in (recorded, contract.recorded))
    for a, b in zip(*projections):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_gradient_accumulation_matches_one_large_batch(kind, made, one_large_batch):
    """2 micro-batches of 4 accumulated make the step of one batch of 8: the loss is a mean over items (examples,
    or target tokens for seq2seq, whose count differs between micro-batches)."""
    if kind.accumulates:
        pytest.skip(kind.accumulates)
    out = made.root / "accumulated"
    distill(kind, made, out, made.still, per_device_train_batch_size=4, gradient_accumulation_steps=2, **SGD)
    trained = load_file(str(one_large_batch.out / "model" / "model.safetensors"))
    assert any(not torch.equal(v, one_large_batch.start[k]) for k, v in trained.items())  # the steps moved it
    torch.testing.assert_close(weights(out), weights(one_large_batch.out), rtol=1e-4, atol=1e-6)


def test_two_processes_match_one_with_the_same_global_batch(kind, made, one_large_batch, tmp_path):
    """DDP over gloo: 2 processes x 4 examples take the steps of 1 process x 8 (the same seeded order, per-item
    loss means, projection gradients averaged over processes), so the students agree up to float summation order,
    and evaluation sees every dev example once."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(kind.recipe(per_device_train_batch_size=4, **SGD)))
    out = tmp_path / "p2"
    r = kdnlp("distill", "--recipe", recipe, *kind.cli(made.still), "--data-dir", made.data, "-o", out,
              "--num-processes", "2", "--no-teacher-cache")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not out.with_name("p2.partial").exists()
    torch.testing.assert_close(weights(out), weights(one_large_batch.out), rtol=1e-4, atol=1e-5)
    one, two = (json.loads((p / "metrics.json").read_text()) for p in (one_large_batch.out, out))
    assert two["examples"] == one["examples"]
    steps = [json.loads((Path(last_checkpoint(p / "stages" / "distill")) / "trainer_state.json").read_text())
             ["global_step"] for p in (one_large_batch.out, out)]
    assert steps[0] == steps[1] > 1
    assert two["stages"]["distill"]["train"]["train_loss"] == pytest.approx(
        one["stages"]["distill"]["train"]["train_loss"], rel=1e-4, abs=1e-6)
    # the scores of students equal up to rounding (a correlation over a few, nearly equal predictions moves with it;
    # the eval loss is approximate under DDP with an uneven last batch; timings are timings)
    scores = {k: v for k, v in one["metrics"].items() if k not in ("loss", "runtime", "samples_per_second",
                                                                  "steps_per_second")}
    assert scores and {k: two["metrics"][k] for k in scores} == pytest.approx(scores, abs=5e-3)

"""Scale and faults: the teacher-output cache, mixed precision, resume after SIGKILL (two processes: test_contract)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import DataCollatorWithPadding

from conftest import tiny_classifier
from kdnlp.core import hashing
from kdnlp.training import cache
from kdnlp.pipeline.runner import last_checkpoint
from test_cli import kdnlp
from test_trainer import dataset, make_trainer


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten().float() for p in model.parameters()])


def cache_files() -> list[Path]:
    return sorted(hashing.cache_dir().glob("*.npy"))


def test_teacher_cache_trains_the_same_student_without_running_the_teacher(tmp_path, tokenizer):
    # Both runs train on the batches the cache is computed in: the live teacher padded otherwise would give logits
    # that differ in their last bits, and which bits differ depends on the CPU's kernels.
    same = {"steps": 6, "train_batches": cache.batches(dataset(), 4), "per_device_eval_batch_size": 4}
    live, _ = make_trainer(tmp_path / "live", tokenizer, {"hinton": 0.5, "ce": 0.5}, **same)
    live.train()
    before = set(cache_files())
    cached, teacher = make_trainer(tmp_path / "cached", tokenizer, {"hinton": 0.5, "ce": 0.5}, teacher_cache=True,
                                   **same)
    new = set(cache_files()) - before
    assert len(new) == 1  # computed once, at construction
    calls = []
    teacher.register_forward_hook(lambda *a: calls.append(1))
    start = flat(cached.model)
    cached.train()
    assert not calls  # training read the logits from the cache
    assert not torch.equal(flat(cached.model), start)  # the student did train
    assert torch.equal(flat(cached.model), flat(live.model))
    path = new.pop()
    stamp = path.stat().st_mtime_ns
    make_trainer(tmp_path / "again", tokenizer, {"hinton": 1.0}, teacher_cache=True)
    assert path.stat().st_mtime_ns == stamp and set(cache_files()) - before == {path}  # reused, not rewritten


def test_teacher_cache_is_used_only_for_losses_that_read_logits_alone(tmp_path, tokenizer):
    before = set(cache_files())
    trainer, _ = make_trainer(tmp_path, tokenizer, {"hinton": 1.0, "cosine": 1.0}, teacher_cache=True)
    assert set(cache_files()) == before and cache.COLUMN not in trainer.train_dataset.column_names


def test_cache_key_changes_with_every_input_that_changes_the_logits():
    teacher = tiny_classifier(seed=1)
    ds = dataset(8)
    base = cache.key(teacher, ds)
    assert cache.key(tiny_classifier(seed=1), dataset(8)) == base  # same inputs, same key
    truncated = ds.map(lambda r: {"input_ids": r["input_ids"][:5], "attention_mask": r["attention_mask"][:5]})
    assert cache.key(teacher, truncated) != base  # max_length
    assert cache.key(teacher, ds.select(range(7))) != base  # another subset
    other = tiny_classifier(seed=1)
    with torch.no_grad():
        other.classifier.bias[0] += 1e-3
    assert cache.key(other, ds) != base  # other weights
    assert cache.key(tiny_classifier(seed=1).to(torch.bfloat16), ds) != base  # other precision
    eager = tiny_classifier(seed=1)
    eager.set_attn_implementation("eager" if eager.config._attn_implementation != "eager" else "sdpa")
    assert cache.key(eager, ds) != base


def test_cached_logits_are_the_teachers_in_row_order(tokenizer):
    teacher = tiny_classifier(seed=1)
    ds = dataset(10)
    logits = cache.compute(teacher, ds, DataCollatorWithPadding(tokenizer), batch_size=3)
    with torch.no_grad():
        for i in (0, 4, 9):
            row = ds[i]
            expected = teacher(input_ids=torch.tensor([row["input_ids"]]),
                               attention_mask=torch.tensor([row["attention_mask"]])).logits[0]
            torch.testing.assert_close(torch.from_numpy(logits[i]), expected, rtol=1e-5, atol=1e-6)


def test_bf16_on_cpu_runs_the_teacher_in_bf16_and_keeps_losses_finite(tmp_path, tokenizer):
    trainer, _ = make_trainer(tmp_path, tokenizer, {"hinton": 0.5, "ce": 0.5, "cosine": 1.0}, steps=3, bf16=True)
    start = flat(trainer.model)
    trainer.train()
    assert {p.dtype for p in trainer.teacher.parameters()} == {torch.bfloat16}  # its own copy (test_run_path)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}  # master weights stay fp32
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(torch.isfinite(torch.tensor(h["loss/hinton"])) and h["loss/hinton"] > 0 for h in logged)
    assert torch.isfinite(flat(trainer.model)).all() and not torch.equal(flat(trainer.model), start)


# ---- real runs through the CLI (tiny teacher, real SST-2 subset) ----

def kdnlp_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "kdnlp", *map(str, args)]


def distill_args(teacher, glue, out, *extra):
    return ["distill", "--teacher", teacher, "--task", "sst2", "--data-dir", glue, "-o", out,
            "--max-eval-samples", "40", "--set", "training.logging_steps=2", *extra]


def weights(run: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    state = load_file(str(run / "model" / "model.safetensors"))
    return torch.cat([state[k].flatten().float() for k in sorted(state)])


NARROW = ["--set", "student.hidden_size=16", "--set", "student.init=truncate", "--set", "student.intermediate_size=32"]


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_student(tiny_teacher_dir, glue_dir, tmp_path):
    """tinybert (two stages) with a narrow student, so projections are trained and checkpointed: the run is
    killed mid-epoch in stage 1 (12 steps an epoch, a checkpoint every 5), resumed with --resume, and must end with
    the same student as a run never interrupted (model, optimizer, scheduler, RNG, sampler position, projections
    and stage all restored)."""
    extra = ["--recipe", "tinybert", "--max-train-samples", "96", *NARROW, "--set", "training.save_strategy=steps",
             "--set", "training.save_steps=5", "--set", "training.per_device_train_batch_size=8",
             "--set", "stages.intermediate.training.num_train_epochs=3",
             "--set", "stages.prediction.training.num_train_epochs=1"]
    straight = tmp_path / "straight"
    r = kdnlp(*distill_args(tiny_teacher_dir, glue_dir, straight, *extra))
    assert r.returncode == 0, r.stderr[-3000:]

    out = tmp_path / "killed"
    stage1 = Path(f"{out}.partial") / "stages" / "intermediate"
    proc = subprocess.Popen(kdnlp_cmd(*distill_args(tiny_teacher_dir, glue_dir, out, *extra)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (stage1 / "checkpoint-10" / "trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its checkpoint at step 10"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (stage1 / "done.json").exists() and not out.exists()  # killed mid-stage, nothing finished

    again = kdnlp(*distill_args(tiny_teacher_dir, glue_dir, out, *extra))  # without --resume: refused, nothing lost
    assert again.returncode == 2 and "pass --resume" in again.stderr.strip().splitlines()[-1]
    assert last_checkpoint(stage1)  # kept (a later one than checkpoint-10 if the kill came after its save)
    resumed = kdnlp(*distill_args(tiny_teacher_dir, glue_dir, out, *extra, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "checkpoint-" in resumed.stderr
    torch.testing.assert_close(weights(out), weights(straight), rtol=0, atol=1e-6)
    a, b = ({k: v for k, v in json.loads((p / "metrics.json").read_text())["metrics"].items()
             if k in ("loss", "accuracy")} for p in (out, straight))
    assert len(a) == 2 and a == pytest.approx(b, abs=1e-6)


def test_resume_without_an_interrupted_run_is_a_clear_error(tiny_teacher_dir, glue_dir, tmp_path):
    r = kdnlp(*distill_args(tiny_teacher_dir, glue_dir, tmp_path / "none", "--recipe", "hinton", "--resume"))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("kdnlp: error: nothing to resume")

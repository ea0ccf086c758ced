"""Training speed and peak memory of distillation against plain fine-tuning (docs/benchmarks.md).

Modes, each run in its own process (so its peak RSS is its own), all on the same data, student and settings
(one epoch over the first --samples training examples of the task, dynamic padding, no eval, no saving):
  plain           the student fine-tuned alone with the plain transformers.Trainer (cross-entropy)
  ce              the same with DistillationTrainer and the `baseline` recipe's loss (ce only, no teacher)
  teacher         only the teacher's forward pass over the same batches (what (b) adds per step)
  hinton          DistillationTrainer, hinton recipe loss, teacher run every step (--no-teacher-cache)
  hinton-cache    the same reading the teacher's logits from the disk cache, built beforehand (epochs after
                  the first); the time to build the cache (first run) or to hash and load it is reported apart
  hinton-bf16     `hinton` with --bf16 (teacher in bf16, student under bf16 autocast)

Usage: python bench/distill_speed.py --teacher runs/sst2/teacher --data-dir ../shared/data/glue [--samples 2048]
       [--repeats 2] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

MODES = ("plain", "ce", "teacher", "hinton", "hinton-cache", "hinton-bf16")


def setup(args):
    import transformers

    from kdnlp.models import load_tokenizer
    from kdnlp.problems import get_problem
    from kdnlp.recipe import StudentSpec
    from kdnlp.students import build_student

    problem = get_problem(args.task)
    tokenizer = load_tokenizer(args.teacher)
    train = problem.load("train", args.data_dir).select(range(args.samples))
    train = problem.encode(train, tokenizer, args.max_length)
    transformers.set_seed(0)
    teacher = problem.load_model(args.teacher, require_head=True)
    student, _ = build_student(teacher, StudentSpec(layers=args.layers))
    return problem, tokenizer, train, teacher, student, problem.collator(tokenizer, student)


def training_args(args, out, **kw):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch, num_train_epochs=1,
                             learning_rate=5e-5, report_to="none", save_strategy="no", eval_strategy="no",
                             logging_steps=10_000, use_cpu=True, seed=0, dataloader_pin_memory=False,
                             disable_tqdm=True, **kw)


def run_mode(args) -> dict:
    import torch
    from transformers import Trainer

    from kdnlp import recipe as recipes
    from kdnlp.distill import build_loss
    from kdnlp.losses import LossContext
    from kdnlp.trainer import DistillationTrainer

    problem, tokenizer, train, teacher, student, collator = setup(args)
    out = tempfile.mkdtemp(prefix="kdnlp-bench-")
    result: dict = {"mode": args.mode, "examples": len(train), "threads": torch.get_num_threads()}
    if args.mode == "plain":
        trainer = Trainer(model=student, args=training_args(args, out), train_dataset=train, data_collator=collator,
                          processing_class=tokenizer)
    elif args.mode == "teacher":
        trainer = Trainer(model=student, args=training_args(args, out), train_dataset=train, data_collator=collator)
        loader = trainer.get_train_dataloader()  # the same shuffled, dynamically padded batches
        teacher.eval()
        start = time.perf_counter()
        with torch.no_grad():
            for batch in loader:
                teacher(**{k: v for k, v in batch.items() if k != "labels"})
        result["seconds"] = time.perf_counter() - start
    else:
        stage = recipes.load("baseline" if args.mode == "ce" else "hinton").stages[0]
        loss = build_loss(stage, LossContext(problem.num_labels, student.config, teacher.config, problem.outputs))
        extra = {"bf16": True} if args.mode == "hinton-bf16" else {}
        start = time.perf_counter()
        trainer = DistillationTrainer(model=student, args=training_args(args, out, **extra), loss=loss,
                                      teacher=None if args.mode == "ce" else teacher,
                                      train_dataset=train, data_collator=collator, processing_class=tokenizer,
                                      teacher_cache=args.mode == "hinton-cache")
        if args.mode == "hinton-cache":
            result["cache_build_seconds"] = time.perf_counter() - start
    if args.mode != "teacher":
        start = time.perf_counter()
        trainer.train()
        result["seconds"] = time.perf_counter() - start
    result["samples_per_second"] = len(train) / result["seconds"]
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="fine-tuned teacher (model or run folder)")
    p.add_argument("--data-dir", required=True, help="local data folder of the task (GLUE folder)")
    p.add_argument("--task", default="sst2")
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--mode", choices=MODES, help="run one mode and print its JSON (default: all, each in a process)")
    p.add_argument("--repeats", type=int, default=2, help="runs of each mode; the fastest counts")
    p.add_argument("--json-out", help="write all results here")
    args = p.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return
    cache = tempfile.mkdtemp(prefix="kdnlp-bench-cache-")  # a cold cache: the first hinton-cache run builds it
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine does not hit one mode only
        for mode in MODES:
            cmd = [sys.executable, __file__, *sys.argv[1:], "--mode", mode]
            r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "KDNLP_CACHE": cache})
            if r.returncode != 0:
                sys.exit(f"{mode} failed:\n{r.stderr[-3000:]}")
            runs[mode].append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[mode][-1]), flush=True)
    best = {m: min(rs, key=lambda r: r["seconds"]) for m, rs in runs.items()}
    base = best["plain"]["seconds"]
    print(f"\nbest of {args.repeats}, one epoch of {best['plain']['examples']} examples, batch {args.batch}, "
          f"max_length {args.max_length}, {best['plain']['threads']} threads\n")
    print("| mode | s/epoch | samples/s | x plain | peak RSS MiB |\n|---|---|---|---|---|")
    for m, r in best.items():
        print(f"| {m} | {r['seconds']:.1f} | {r['samples_per_second']:.1f} | {r['seconds'] / base:.2f} | "
              f"{max(x['peak_rss_mib'] for x in runs[m]):.0f} |")
    built = [r["cache_build_seconds"] for r in runs["hinton-cache"]]
    print(f"\nbuilding the cache: {built[0]:.1f} s (first run); reading it: {min(built[1:], default=float('nan')):.1f} s")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "runs": runs}, f, indent=2)


if __name__ == "__main__":
    main()

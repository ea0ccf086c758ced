"""Where a distillation step's time goes (docs/benchmarks.md, "Per-step overheads"; issue 12).

Trains one of bench/distill_speed.py's kdnlp modes (same teacher, student, data and settings) for --warmup + --steps
optimizer steps and times, in each step, the parts of DistillationTrainer's path: fetching and collating the batch,
the student's forward, the teacher's forward (or reading its cached logits), the loss terms, the backward, gradient
clipping, the optimizer step, and the rest of the step (the Trainer's own per-step work, callbacks, the learning-rate
schedule, zeroing gradients). The rest, and the loss terms against the forwards, are the overheads the issue asks
about. Prints the median per part over the steps after the warm-up, in milliseconds and as a share of the step.
--ops N also runs torch.profiler over the measured steps and prints its N most expensive operators by self CPU time
(the profiler slows the step; its run's part timings are not reported).

Usage: python bench/profile_step.py --teacher runs/sst2/teacher --data-dir ../shared/data/glue --mode tinybert-1
       [--steps 30] [--warmup 5] [--soft-targets 4] [--ops 15] [--json-out FILE]
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager

import distill_speed  # bench/, the directory of this script

#: distill_speed's modes that train with DistillationTrainer
MODES = ("ce", "hinton", "hinton-cache", "pkd-skip", "tinybert-1")
PARTS = ("data", "student forward", "teacher forward", "loss terms", "backward", "clip", "optimizer", "rest")


def profile(args) -> dict:
    import torch
    from transformers import TrainerCallback

    from kdnlp.training.trainer import DistillationTrainer

    problem, tokenizer, train, teacher, student, collator = distill_speed.setup(args)
    loss = distill_speed.build_loss(args, problem, teacher, student)
    steps: list[dict[str, float]] = []
    current: dict[str, float] = defaultdict(float)
    marks: dict[str, float] = {}

    @contextmanager
    def part(name: str):
        start = time.perf_counter()
        with torch.profiler.record_function(name):
            yield
        current[name] += time.perf_counter() - start

    def timed(name: str, fn):
        def wrapper(*a, **kw):
            with part(name):
                return fn(*a, **kw)
        return wrapper

    class Steps(TrainerCallback):
        def on_pre_optimizer_step(self, *a, **kw):
            marks["optimizer"] = time.perf_counter()

        def on_optimizer_step(self, *a, **kw):
            current["optimizer"] += time.perf_counter() - marks.pop("optimizer")

        def on_step_end(self, *a, **kw):
            now = time.perf_counter()
            if "step" in marks:  # a step runs from the end of the one before it, so its batch fetch is in it
                current["rest"] = now - marks["step"] - sum(current.values())
                steps.append(dict(current))
            marks["step"] = now
            current.clear()

    out = tempfile.mkdtemp(prefix="kdnlp-profile-")
    targs = distill_speed.training_args(args, out, max_steps=args.warmup + args.steps + 1)
    trainer = DistillationTrainer(model=student, args=targs, loss=loss, teacher=teacher, train_dataset=train,
                                  data_collator=collator, processing_class=tokenizer,
                                  teacher_cache=args.mode == "hinton-cache", callbacks=[Steps()])
    forward, teacher_outputs = trainer._forward, trainer.teacher_outputs
    trainer.teacher_outputs = timed("teacher forward", teacher_outputs)
    # the teacher's forward goes through _forward too, inside the timed teacher_outputs: count only the student's
    trainer._forward = lambda model, inputs: (timed("student forward", forward) if model is not trainer.teacher
                                              else forward)(model, inputs)
    trainer.distill_loss.forward = timed("loss terms", trainer.distill_loss.forward)
    trainer.get_batch_samples = timed("data", trainer.get_batch_samples)
    trainer._clip_grad_norm = timed("clip", trainer._clip_grad_norm)
    trainer.accelerator.backward = timed("backward", trainer.accelerator.backward)
    prof = None
    if args.ops:
        schedule = torch.profiler.schedule(wait=args.warmup + 1, warmup=0, active=args.steps)
        prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule)

        class Step(TrainerCallback):
            def on_step_end(self, *a, **kw):
                prof.step()

        trainer.add_callback(Step())
        prof.start()
    trainer.train()
    result = {"mode": args.mode, "threads": torch.get_num_threads(), "steps": args.steps,
              "batch": args.batch, "max_length": args.max_length, "pad": args.pad}
    if prof is not None:
        prof.stop()
        result["ops"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.ops)
        return result
    measured = steps[args.warmup:]
    total = statistics.median(sum(s.values()) for s in measured)
    result["step_ms"] = 1000 * total
    result["parts_ms"] = {p: 1000 * statistics.median(s.get(p, 0.0) for s in measured) for p in PARTS}
    return result


def main() -> None:
    p = distill_speed.parser()
    p.description = __doc__
    p.add_argument("--steps", type=int, default=30, help="measured optimizer steps")
    p.add_argument("--warmup", type=int, default=5, help="steps run before the measured ones")
    p.add_argument("--ops", type=int, default=0, help="run torch.profiler and print its N most expensive operators")
    args = p.parse_args()
    if args.mode not in MODES:
        p.exit(2, f"--mode must be one of {', '.join(MODES)} (got {args.mode!r})\n")
    result = profile(args)
    if "ops" in result:
        print(result["ops"])
    else:
        print(f"{args.mode}: median step {result['step_ms']:.0f} ms over {args.steps} steps "
              f"({result['threads']} threads, batch {args.batch}, {args.pad} padding to at most {args.max_length})")
        for name, ms in result["parts_ms"].items():
            print(f"  {name:<16} {ms:8.1f} ms  {100 * ms / result['step_ms']:5.1f}%")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

"""CPU time of a data-free training step (docs/methods.md, "Cost"; experiments/data-free.sh's budget).

Runs the `data-free` recipe for --steps steps on the real teacher through a GLUE folder made here that holds only
the task's dev split (as experiments/data-free.sh does), with no saving and no evaluation during training, and
prints each step's process CPU time (time.process_time, not wall time: on a shared machine the wall time says
more about the other jobs than about this one; run it with OMP_NUM_THREADS=1 for a one-thread figure) and the
median of the steps after the first. --profile prints torch.profiler's table for the second step.

Usage: OMP_NUM_THREADS=1 python bench/datafree_step.py --teacher runs/sst2/teacher --dev ../shared/data/glue/SST-2/dev.tsv
       [--steps 5] [--recipe data-free] [--set stages.distill.generator.vocab_size=10000 ...] [--profile]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--dev", required=True, help="the task's dev.tsv (SST-2's for --task sst2)")
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--recipe", default="data-free")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    import torch
    from transformers import TrainerCallback

    import kdnlp.methods.datafree.trainer as datafree
    from kdnlp.tasks.glue.data import TASKS
    from kdnlp.pipeline.runner import run_recipe

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if profile and state.global_step == 1:
                self.profiler = torch.profiler.profile(record_shapes=True)
                self.profiler.__enter__()
            self.start = time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.process_time() - self.start)
            if profile and state.global_step == 2:
                self.profiler.__exit__(None, None, None)
                print(self.profiler.key_averages(group_by_input_shape=True).table(
                    sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=30, max_shapes_column_width=60))

    profile, build = args.profile, datafree.data_free_trainer

    def timed_trainer(*a, **kw):  # the sources module looks the builder up when the stage starts
        trainer = build(*a, **kw)
        trainer.add_callback(Clock())
        return trainer

    datafree.data_free_trainer = timed_trainer
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "glue", TASKS[args.task].folder)
        os.makedirs(folder)
        os.symlink(os.path.realpath(args.dev), os.path.join(folder, "dev.tsv"))
        run_recipe(args.recipe, args.task, os.path.join(tmp, "out"), teacher=args.teacher,
                   data_dir=os.path.join(tmp, "glue"), max_eval_samples=32,
                   overrides=[f"training.max_steps={args.steps}", "training.save_strategy=no",
                              "training.eval_strategy=no", "training.logging_steps=1", *args.overrides])
    print("CPU s per step:", " ".join(f"{t:.2f}" for t in times))
    if len(times) > 1:
        print(f"median after the first: {statistics.median(times[1:]):.2f} s")


if __name__ == "__main__":
    main()

"""Epoch time of distilling from an ensemble of k teachers, with the teacher cache against without (issue 12).

Runs `kdnlp distill --recipe mtdnn` on one task with its first k teachers for each k in --ks, once reading the
ensemble's logits from the disk cache (built in the run into an empty cache folder) and once running every teacher
at every step (--no-teacher-cache): --epochs over the first --samples training examples, no saving and no
evaluation during training, each run in its own process, the runs interleaved over --repeats rounds. Reports per
k the seconds per epoch of training (the Trainer's train_runtime) live and cached, the cache build (the cached
run's time outside training less the live run's: both load the same models and data and score the same dev set),
and the cached epoch with the build spread over the epochs. The medians count.

Usage: python bench/ensemble_speed.py --task sst2 --teachers runs/mtdnn/teachers/sst2/seed-1,runs/mtdnn/teachers/sst2/seed-2
       --data-dir ../shared/data/glue [--ks 1,2] [--samples 2000] [--epochs 2] [--repeats 1] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(args, k: int, cache: bool) -> dict:
    teachers = ",".join(args.teachers.split(",")[:k])
    work = Path(tempfile.mkdtemp(prefix="kdnlp-bench-ens-"))
    cmd = [str(Path(sys.executable).with_name("kdnlp")), "distill", "--recipe", "mtdnn", "--tasks", args.task,
           "--teachers", f"{args.task}={teachers}", "--data-dir", args.data_dir,
           "--max-train-samples", str(args.samples), "--set", f"training.num_train_epochs={args.epochs}",
           "--set", "training.save_strategy=no", "--set", "training.eval_strategy=no", "-o", str(work / "run")]
    if not cache:
        cmd.append("--no-teacher-cache")
    start = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "KDNLP_CACHE": str(work / "cache")})
        wall = time.perf_counter() - start
        if r.returncode != 0:
            sys.exit(f"k={k} cache={cache} failed:\n{r.stderr[-3000:]}")
        done = next((work / "run" / "stages").glob("*/done.json"))
        train = json.loads(done.read_text())["train"]["train_runtime"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"k": k, "cache": cache, "train_seconds": train, "command_seconds": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sst2")
    p.add_argument("--teachers", required=True, help="comma-separated teacher folders of the task (its ensemble)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--ks", default="1,2", help="ensemble sizes: the first k of --teachers")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json-out")
    args = p.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    if max(ks) > len(args.teachers.split(",")):
        p.error(f"--ks asks for {max(ks)} teachers; --teachers names {len(args.teachers.split(','))}")
    runs: list[dict] = []
    for _ in range(args.repeats):
        for k in ks:
            for cache in (True, False):
                runs.append(one(args, k, cache))
                print(json.dumps(runs[-1]), flush=True)
    rows = []
    print(f"\n{args.epochs} epoch(s) of {args.samples} {args.task} examples, median of {args.repeats}\n")
    print("| k teachers | live s/epoch | cached s/epoch | cache build s | cached s/epoch, build spread | × live |")
    print("|---|---|---|---|---|---|")
    for k in ks:
        med = {c: {key: statistics.median(r[key] for r in runs if r["k"] == k and r["cache"] == c)
                   for key in ("train_seconds", "command_seconds")} for c in (True, False)}
        live = med[False]["train_seconds"] / args.epochs
        cached = med[True]["train_seconds"] / args.epochs
        # the cached run's extra set-up over the live one: building the cache (both load the same models and data)
        build = (med[True]["command_seconds"] - med[True]["train_seconds"]) - \
                (med[False]["command_seconds"] - med[False]["train_seconds"])
        spread = cached + build / args.epochs
        rows.append({"k": k, "live_s_per_epoch": live, "cached_s_per_epoch": cached, "build_seconds": build,
                     "cached_with_build_s_per_epoch": spread})
        print(f"| {k} | {live:.1f} | {cached:.1f} | {build:.1f} | {spread:.1f} | {live / spread:.2f} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "runs": runs, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Training speed, peak memory and dev accuracy of distillation against plain fine-tuning and against TextBrewer
(docs/benchmarks.md, issues 4 and 12).

Modes, each run in its own process (so its peak RSS is its own), all on the same data, teacher, student and settings
(--epochs over the first --samples training examples of the task, batch --batch, no eval during training, no saving,
linear learning-rate decay from 5e-5, gradient clipping at 1.0):
  plain                  the student fine-tuned alone with the plain transformers.Trainer (the floor)
  plain-eager            the same with eager attention (the student's step in the tinybert modes)
  ce                     the same with DistillationTrainer and the `baseline` recipe's loss (ce only, no teacher)
  teacher                only the teacher's forward pass over the same batches (what a live teacher adds per step)
  teacher-inter          the same with eager attention, returning hidden states and attention maps (what TinyBERT's
                         intermediate matches make the teacher do)
  hinton                 DistillationTrainer, soft targets, teacher run every step (--no-teacher-cache)
  hinton-cache           the same reading the teacher's logits from the disk cache, built in the run into an empty
                         cache folder: its build time is reported apart (cache_build_seconds) and not in `seconds`
  hinton-bf16            `hinton` with bf16 (teacher in bf16, student under bf16 autocast)
  hinton-cache-bf16      `hinton-cache` with bf16 (the cache built by the bf16 teacher)
  pkd-skip               the pkd-skip recipe's loss (soft targets, gold labels, normalised [CLS] MSE on the skip map)
  tinybert-1             the tinybert recipe's stage 1 (embedding, hidden and attention MSE, uniform map; the
                         attention recomputed from the captured queries and keys, so no eager attention)
  textbrewer-kd          TextBrewer 0.2.1 GeneralDistiller with the loss of `hinton` (bench/peers.py)
  textbrewer-kd-cache    TextBrewer's BasicDistiller with its own in-memory logit cache (is_caching_logits)
  textbrewer-tinybert-1  GeneralDistiller with the intermediate matches of `tinybert-1`

The soft-target loss of the hinton and textbrewer-kd modes is the hinton recipe's (0.5 KL at T=2 + 0.5 gold labels),
or with --soft-targets T the KL at temperature T alone. TextBrewer modes train over the Trainer's own dataloader (the
same shuffled, dynamically padded batches), with AdamW and the linear schedule the Trainer uses. With --pad fixed,
every batch is padded to --max-length (for timing against sequence length, bench/scaling.py).

Usage: python bench/distill_speed.py --teacher runs/sst2/teacher --data-dir ../shared/data/glue [--samples 2048]
       [--modes plain,hinton,...] [--epochs 1] [--soft-targets 4] [--repeats 2] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("plain", "plain-eager", "ce", "teacher", "teacher-inter", "hinton", "hinton-cache", "hinton-bf16",
         "hinton-cache-bf16", "pkd-skip", "tinybert-1", "textbrewer-kd", "textbrewer-kd-cache", "textbrewer-tinybert-1")
#: The modes of issue 4's measurement, run when --modes is not given.
DEFAULT_MODES = ("plain", "plain-eager", "ce", "teacher", "hinton", "hinton-cache", "hinton-bf16")
#: The TextBrewer modes doing the same work as a kdnlp mode, for the "x TextBrewer" ratios.
PEERS = {**{m: ("textbrewer-kd", "textbrewer-kd-cache") for m in ("hinton", "hinton-cache", "hinton-bf16",
                                                                 "hinton-cache-bf16")},
         "tinybert-1": ("textbrewer-tinybert-1",)}
#: Modes whose models need eager attention (attention maps are returned by no other implementation).
EAGER = ("plain-eager", "teacher-inter", "textbrewer-tinybert-1")


def stage_of(mode: str, args):
    """The kdnlp recipe stage whose loss a mode trains with (TextBrewer modes: the loss they reproduce)."""
    from kdnlp.pipeline import recipe as recipes

    if mode == "ce":
        return recipes.load("baseline").stages[0]
    if mode in ("pkd-skip", "tinybert-1", "textbrewer-tinybert-1"):
        return recipes.load("tinybert" if "tinybert" in mode else "pkd-skip").stages[0]
    soft = [f"losses=[{{loss: hinton, weight: 1.0, temperature: {args.soft_targets}}}]"] if args.soft_targets else []
    return recipes.load("hinton", soft).stages[0]


def build_loss(args, problem, teacher, student):
    """The loss object of `stage_of(args.mode)` for these two models."""
    from kdnlp.losses import LossContext

    ctx = LossContext(problem.num_labels, student.config, teacher.config, problem.outputs)
    return problem.build_loss(stage_of(args.mode, args).losses, ctx)


def setup(args):
    import transformers

    from kdnlp.modeling.models import load_tokenizer
    from kdnlp.tasks.kinds import get_problem
    from kdnlp.modeling.students import StudentSpec

    problem = get_problem(args.task)
    tokenizer = load_tokenizer(args.teacher)
    train = problem.load("train", args.data_dir).select(range(args.samples))
    train = problem.encode(train, tokenizer, args.max_length)
    transformers.set_seed(0)
    teacher = problem.load_model(args.teacher, require_head=True)
    student, _ = problem.build_student(teacher, StudentSpec(layers=args.layers, strategy="spread"))
    if args.mode in EAGER:
        for model in (teacher, student):
            model.set_attn_implementation("eager")
    collator = problem.collator(tokenizer, student)
    if args.pad == "fixed":
        collator.padding, collator.max_length = "max_length", args.max_length
    return problem, tokenizer, train, teacher, student, collator


def training_args(args, out, **kw):
    from transformers import TrainingArguments

    # per_device_eval_batch_size: what `kdnlp distill` builds the teacher cache with (kdnlp.training.args.DEFAULT_TRAINING)
    return TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch, per_device_eval_batch_size=64,
                             num_train_epochs=args.epochs, learning_rate=5e-5, report_to="none", save_strategy="no",
                             eval_strategy="no", logging_steps=10_000, use_cpu=True, seed=0,
                             dataloader_pin_memory=False, disable_tqdm=True, **kw)


def clock_forwards(student, teacher) -> dict[str, float]:
    """Seconds spent in the forward passes of the two models, kept up to date by hooks (for --forward-times)."""
    spent = {"student": 0.0, "teacher": 0.0}
    for name, model in (("student", student), ("teacher", teacher)):
        started: list[float] = []
        model.register_forward_pre_hook(lambda *_, s=started: s.append(time.perf_counter()))
        model.register_forward_hook(
            lambda *_, s=started, n=name: spent.__setitem__(n, spent[n] + time.perf_counter() - s.pop()))
    return spent


def run_mode(args) -> dict:
    import torch
    from transformers import Trainer

    from kdnlp.training.trainer import DistillationTrainer

    problem, tokenizer, train, teacher, student, collator = setup(args)
    out = tempfile.mkdtemp(prefix="kdnlp-bench-")
    result: dict = {"mode": args.mode, "examples": len(train), "epochs": args.epochs,
                    "threads": torch.get_num_threads()}
    forwards = clock_forwards(student, teacher) if args.forward_times else None
    trainer = loss = None
    if not args.mode.startswith(("plain", "teacher")):  # the kdnlp loss the mode trains with, or reproduces
        loss = build_loss(args, problem, teacher, student)
        result["loss"] = loss.formula()
    if args.mode.startswith("plain"):
        trainer = Trainer(model=student, args=training_args(args, out), train_dataset=train, data_collator=collator,
                          processing_class=tokenizer)
    elif args.mode.startswith(("teacher", "textbrewer")):
        base = Trainer(model=student, args=training_args(args, out), train_dataset=train, data_collator=collator)
        loader = base.get_train_dataloader()  # the same shuffled, padded batches
        if args.mode.startswith("teacher"):
            inter = args.mode == "teacher-inter"
            teacher.eval()
            start = time.perf_counter()
            with torch.no_grad():
                for _ in range(args.epochs):
                    for batch in loader:
                        teacher(**{k: v for k, v in batch.items() if k != "labels"},
                                output_hidden_states=inter, output_attentions=inter)
            result["seconds"] = time.perf_counter() - start
        else:
            import peers

            optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(base.args, student)  # the Trainer's
            result.update(peers.textbrewer_train(args.mode, loss, teacher, student, loader, args.epochs,
                                                 optimizer_cls(student.parameters(), **kwargs), out))
    else:
        extra = {"bf16": True} if args.mode.endswith("-bf16") else {}
        cached = args.mode.startswith("hinton-cache")
        start = time.perf_counter()
        trainer = DistillationTrainer(model=student, args=training_args(args, out, **extra), loss=loss,
                                      teacher=None if args.mode == "ce" else teacher,
                                      train_dataset=train, data_collator=collator, processing_class=tokenizer,
                                      teacher_cache=cached)
        if cached:
            result["cache_build_seconds"] = time.perf_counter() - start
    if trainer is not None:
        if forwards is not None:
            forwards.update(student=0.0, teacher=0.0)  # not the cache build's teacher passes
        start = time.perf_counter()
        trainer.train()
        result["seconds"] = time.perf_counter() - start
    if forwards is not None:
        result["forward_seconds"] = dict(forwards)  # before dev scoring runs the student
    result["samples_per_second"] = len(train) * args.epochs / result["seconds"]
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.eval_samples and not args.mode.startswith("teacher"):
        dev = problem.load("validation", args.data_dir)
        dev = dev.select(range(min(args.eval_samples, len(dev))))
        result["dev"] = problem.score(student, tokenizer, dev, args.max_length, 64)
    shutil.rmtree(out, ignore_errors=True)
    return result


def measure(argv: list[str], modes: list[str], repeats: int) -> dict[str, list[dict]]:
    """Runs `--mode m` of this script with `argv` for each mode, `repeats` rounds, interleaved (round-robin, so a slow
    spell of the machine does not hit one mode only), each in its own process with an empty teacher cache."""
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(repeats):
        for mode in modes:
            cache = tempfile.mkdtemp(prefix="kdnlp-bench-cache-")
            try:
                r = subprocess.run([sys.executable, __file__, *argv, "--mode", mode], capture_output=True, text=True,
                                   env={**os.environ, "KDNLP_CACHE": cache})
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            if r.returncode != 0:
                sys.exit(f"{mode} failed:\n{r.stderr[-3000:]}")
            runs[mode].append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[mode][-1]), flush=True)
    return runs


def summary(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per mode: the median and range of s/epoch and samples/s over the repeats, the largest peak RSS, the dev
    accuracy of each run, and the ratios of its median samples/s to the floor's (`plain`) and to its TextBrewer
    peers' (and, for a mode that builds a cache, of its rate with the build counted)."""
    rows = {}
    for mode, rs in runs.items():
        per_epoch = [r["seconds"] / r["epochs"] for r in rs]
        rate = statistics.median(r["samples_per_second"] for r in rs)
        row = {"s_per_epoch": statistics.median(per_epoch), "s_per_epoch_range": [min(per_epoch), max(per_epoch)],
               "samples_per_second": rate, "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
               "accuracy": [r["dev"]["accuracy"] for r in rs if "accuracy" in r.get("dev", {})]}
        for key in ("cache_build_seconds", "save_seconds"):
            if key in rs[0]:
                row[key] = statistics.median(r[key] for r in rs)
        if "cache_build_seconds" in row:  # the same work with the cache built in the run: what a first run costs
            total = statistics.median(r["seconds"] + r["cache_build_seconds"] for r in rs)
            row["samples_per_second_with_build"] = rs[0]["examples"] * rs[0]["epochs"] / total
        rows[mode] = row
    for mode, row in rows.items():
        refs = [r for r in ("plain", *PEERS.get(mode, ())) if r in rows]
        for key in ("samples_per_second", "samples_per_second_with_build"):
            if key in row:  # with the build counted, against a peer's rate with its own build counted too
                row["x" + key.removeprefix("samples_per_second")] = {
                    r: row[key] / rows[r].get(key, rows[r]["samples_per_second"]) for r in refs}
    return rows


def table(rows: dict[str, dict]) -> str:
    def ratios(x: dict, peers: bool) -> str:
        shown = [f"{v:.2f}" + (f" ({r.removeprefix('textbrewer-')})" if peers else "")
                 for r, v in x.items() if (r != "plain") == peers]
        return " / ".join(shown) or "-"

    lines = ["| mode | s/epoch (median) | range | samples/s | x floor | x TextBrewer | peak RSS MiB | dev accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for mode, r in rows.items():
        lo, hi = r["s_per_epoch_range"]
        acc = " / ".join(f"{a:.3f}" for a in r["accuracy"]) or "-"
        lines.append(f"| {mode} | {r['s_per_epoch']:.1f} | {lo:.1f}-{hi:.1f} | {r['samples_per_second']:.1f} | "
                     f"{ratios(r['x'], False)} | {ratios(r['x'], True)} | {r['peak_rss_mib']:.0f} | {acc} |")
    for mode, r in rows.items():
        if "cache_build_seconds" in r:
            line = f"\n{mode}: building the cache {r['cache_build_seconds']:.1f} s (median)"
            if "x_with_build" in r:
                line += (f"; with it, {r['samples_per_second_with_build']:.1f} samples/s, x floor "
                         f"{ratios(r['x_with_build'], False)}, x TextBrewer {ratios(r['x_with_build'], True)}")
            lines.append(line)
        if "save_seconds" in r:
            lines.append(f"\n{mode}: TextBrewer's own checkpoint writes, {r['save_seconds']:.1f} s (median), are "
                         "left out of its time")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="fine-tuned teacher (model or run folder)")
    p.add_argument("--data-dir", required=True, help="local data folder of the task (GLUE folder)")
    p.add_argument("--task", default="sst2")
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--pad", choices=("dynamic", "fixed"), default="dynamic",
                   help="pad each batch to its longest example, or every batch to --max-length")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--soft-targets", type=float, metavar="T",
                   help="hinton and textbrewer-kd modes: the KL at temperature T alone, not the hinton recipe's loss")
    p.add_argument("--eval-samples", type=int, default=100_000, help="dev examples scored after training (0: none)")
    p.add_argument("--forward-times", action="store_true",
                   help="also report the seconds spent in the student's and the teacher's forward passes (hooks; "
                        "TextBrewer's cache build is in the teacher's)")
    p.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"comma-separated, of: {', '.join(MODES)}")
    p.add_argument("--mode", choices=MODES, help="run one mode and print its JSON (default: --modes, each in a process)")
    p.add_argument("--repeats", type=int, default=2, help="rounds over the modes")
    p.add_argument("--json-out", help="write the settings, all runs and the summary here")
    return p


def main() -> None:
    args = parser().parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return
    modes = args.modes.split(",")
    bad = [m for m in modes if m not in MODES]
    if bad:
        sys.exit(f"unknown mode '{bad[0]}'; valid: {', '.join(MODES)}")
    runs = measure(sys.argv[1:], modes, args.repeats)  # a child runs only its --mode
    rows = summary(runs)
    first = next(iter(runs.values()))[0]
    print(f"\nmedian of {args.repeats}, {args.epochs} epoch(s) of {first['examples']} examples, batch {args.batch}, "
          f"max_length {args.max_length} ({args.pad} padding), {first['threads']} threads\n")
    print(table(rows))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "runs": runs, "summary": rows}, f, indent=2)


if __name__ == "__main__":
    main()

"""Time and peak memory of training against training-set size and sequence length (docs/benchmarks.md, issue 12).

`run` measures, through bench/distill_speed.py's modes (each run in its own process, modes round-robin per repeat),
one epoch at each point of two sweeps: --sizes examples at --base-length tokens, and --lengths tokens at --base-size
examples. Batches are padded to the point's length (`--pad fixed`, so every example costs the same whatever its
text; SST-2 sentences are far shorter than 256 tokens) unless --pad dynamic. No dev scoring. The JSON is rewritten
after each point, so a cut-off sweep keeps what it measured. `plot` draws the JSON as a PNG: seconds per epoch and
peak RSS against each sweep's variable, one line per mode.

Usage: python bench/scaling.py run --teacher runs/sst2/teacher --data-dir ../shared/data/glue
           [--sizes 2000,8000,32000] [--lengths 64,128,256] [--modes plain,hinton-cache,tinybert-1] --json-out FILE
       python bench/scaling.py plot FILE --png docs/bench/scaling.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import distill_speed  # bench/, the directory of this script

from kdnlp.core.run import write_json


def points(sizes: list[int], lengths: list[int], base_size: int, base_length: int) -> list[tuple[int, int]]:
    """(examples, length) of the size sweep, then of the length sweep, the point they share once."""
    out = [(n, base_length) for n in sizes]
    return out + [(base_size, n) for n in lengths if (base_size, n) not in out]


def run(args) -> None:
    result = {"args": vars(args), "points": []}
    for size, length in points(args.sizes, args.lengths, args.base_size, args.base_length):
        argv = ["--teacher", args.teacher, "--data-dir", args.data_dir, "--task", args.task, "--samples", str(size),
                "--max-length", str(length), "--pad", args.pad, "--batch", str(args.batch), "--eval-samples", "0"]
        if args.soft_targets:
            argv += ["--soft-targets", str(args.soft_targets)]
        print(f"{size} examples, length {length}", flush=True)
        runs = distill_speed.measure(argv, args.modes, args.repeats)
        result["points"].append({"samples": size, "max_length": length, "runs": runs,
                                 "summary": distill_speed.summary(runs)})
        write_json(Path(args.json_out), result)


def plot(data: dict, png: Path) -> None:
    """Four panels: s/epoch and peak RSS against examples (at the base length) and against length (at the base
    size), one line per mode (and one with its cache build added); the range over repeats as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = data["args"]
    sweeps = (("samples", "max_length", a["base_length"], "training examples", f"at length {a['base_length']}"),
              ("max_length", "samples", a["base_size"], "sequence length (tokens)", f"at {a['base_size']} examples"))
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=100)
    for col, (x, fixed, value, label, where) in enumerate(sweeps):
        pts = sorted((p for p in data["points"] if p[fixed] == value), key=lambda p: p[x])
        for i, mode in enumerate(a["modes"]):
            xs = [p[x] for p in pts]
            rows = [p["summary"][mode] for p in pts]
            mid = [r["s_per_epoch"] for r in rows]
            err = [[m - r["s_per_epoch_range"][0] for m, r in zip(mid, rows)],
                   [r["s_per_epoch_range"][1] - m for m, r in zip(mid, rows)]]
            axes[0, col].errorbar(xs, mid, yerr=err, marker="o", capsize=3, color=f"C{i}", label=mode)
            if all("cache_build_seconds" in r for r in rows):  # what a first epoch costs, building included
                axes[0, col].plot(xs, [m + r["cache_build_seconds"] for m, r in zip(mid, rows)], "--", marker=".",
                                  color=f"C{i}", label=f"{mode} + cache build")
            axes[1, col].plot(xs, [r["peak_rss_mib"] for r in rows], marker="o", color=f"C{i}", label=mode)
        for row, what in enumerate(("seconds per epoch", "peak RSS (MiB)")):
            ax = axes[row, col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(v) for v in xs])
            ax.set_xlabel(label)
            ax.set_ylabel(what)
            ax.set_title(f"{what} {where}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.set_ylim(bottom=0)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{a['task']}, batch {a['batch']}, {a['pad']} padding, {a['repeats']} repeat(s); one epoch")
    fig.tight_layout()
    fig.savefig(png, format="png")
    plt.close(fig)


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure the sweeps and write the JSON")
    r.add_argument("--teacher", required=True)
    r.add_argument("--data-dir", required=True)
    r.add_argument("--task", default="sst2")
    r.add_argument("--sizes", type=ints, default=[2000, 8000, 32000])
    r.add_argument("--lengths", type=ints, default=[64, 128, 256])
    r.add_argument("--base-size", type=int, default=2000, help="examples of the length sweep")
    r.add_argument("--base-length", type=int, default=64, help="length of the size sweep")
    r.add_argument("--pad", choices=("dynamic", "fixed"), default="fixed")
    r.add_argument("--batch", type=int, default=32)
    r.add_argument("--soft-targets", type=float, default=4.0, metavar="T")
    r.add_argument("--modes", type=lambda s: s.split(","), default=["plain", "hinton-cache", "tinybert-1"])
    r.add_argument("--repeats", type=int, default=1)
    r.add_argument("--json-out", required=True)
    q = sub.add_parser("plot", help="draw a JSON written by `run` as a PNG")
    q.add_argument("json")
    q.add_argument("--png", required=True)
    args = p.parse_args()
    if args.command == "run":
        bad = [m for m in args.modes if m not in distill_speed.MODES]
        if bad:
            sys.exit(f"unknown mode '{bad[0]}'; valid: {', '.join(distill_speed.MODES)}")
        run(args)
    else:
        plot(json.loads(Path(args.json).read_text()), Path(args.png))


if __name__ == "__main__":
    main()

"""Speed of TinyBERT's data augmentation (kdnlp.tools.augment) with a given masked LM (docs/benchmarks.md).

For each --batch-size (masked sentences per masked-LM forward pass), augments the first --samples training texts of
the task as `kdnlp augment` does (p, n, m as given) and reports: texts augmented per second, augmented examples (new
rows) written per second, and the share of the time spent in the masked LM's forward passes. The model is loaded
once; each batch size runs after a warm-up pass over a few texts. Each augmentation call also scans the vocabulary
once for whole-word candidates (a few seconds on CPU, paid once per `kdnlp augment`): it is counted, so use
--samples large enough for it not to dominate.

Usage: python bench/augment_speed.py --model runs/sst2-mlm --task sst2 --data-dir ../shared/data/glue
       [--samples 512] [--batch-sizes 16,64,256] [--n 20] [--m 15] [--p 0.4] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import platform
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="masked LM folder (kdnlp train-mlm, or one with its MLM head)")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--batch-sizes", default="16,64,256")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--m", type=int, default=15)
    parser.add_argument("--p", type=float, default=0.4)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()

    import torch

    from kdnlp.tools.augment import augment_texts, load_fill_mask, word_candidates
    from kdnlp.tasks.glue.data import get_task, load_split

    spec = get_task(args.task)
    texts = load_split(spec, "train", args.data_dir)[spec.keys[0]][:args.samples]
    model, tokenizer = load_fill_mask(args.model)
    rows = []
    for size in (int(b) for b in args.batch_sizes.split(",")):
        word_candidates(texts[:8], model, tokenizer, args.m, batch_size=size, progress=False)  # warm-up
        start = time.perf_counter()
        word_candidates(texts, model, tokenizer, args.m, batch_size=size, progress=False)
        lm = time.perf_counter() - start
        start = time.perf_counter()
        new = augment_texts(texts, model, tokenizer, args.p, args.n, args.m, batch_size=size, progress=False)
        total = time.perf_counter() - start
        written = sum(map(len, new))
        rows.append({"batch_size": size, "texts": len(texts), "new_examples": written, "seconds": total,
                     "texts_per_s": len(texts) / total, "new_examples_per_s": written / total,
                     "lm_share": min(lm / total, 1.0)})
        print(f"batch {size:4d}: {len(texts) / total:8.1f} texts/s, {written / total:9.1f} new examples/s "
              f"({written} new from {len(texts)} texts, {total:.1f} s, masked LM ~{100 * rows[-1]['lm_share']:.0f}%)")
    device = str(next(model.parameters()).device)
    result = {"model": args.model, "task": spec.name, "p": args.p, "n": args.n, "m": args.m, "device": device,
              "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(), "rows": rows}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

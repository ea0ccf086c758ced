"""Decoding speed of kdnlp.tasks.seq2seq.generation.generate (length-sorted batches) against a plain loop of model.generate over
batches in input order, with the same generation config (docs/benchmarks.md).

Both decode the first --samples sources of a split of a parallel data folder ({split}.{source}, one a line; default
Multi30k English) under torch.inference_mode, --repeats times each, interleaved; the fastest run of each counts.
The model is --model (a seq2seq model or kdnlp run folder), or without it a random-weight Marian built from a
config with a BPE tokenizer trained on the split's two sides. Random weights rarely pick the end token, so their
outputs run to --max-new-tokens: every batch then decodes the same number of steps, and length sorting saves only
the encoder's and the cross-attention's padding; a trained teacher's outputs end with their sources.

Usage: python bench/generate_speed.py [--model DIR] [--data-dir ../shared/data/seq2seq/multi30k_en_de]
       [--samples 256] [--num-beams 5] [--batch-size 32] [--max-new-tokens 64] [--repeats 2] [--threads N]
       [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def random_marian(args):
    """A Marian with random weights (seed 0) and a tokenizer trained on the split's source and target lines
    (kdnlp.modeling.scratch, as `kdnlp new-model` makes them)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from kdnlp.modeling.scratch import model_config, train_tokenizer

    lines = [line for side in (args.source, args.target)
             for line in Path(args.data_dir, f"{args.split}.{side}").read_text(encoding="utf-8").splitlines()]
    tokenizer = train_tokenizer(lines, vocab_size=args.vocab_size)
    d = args.d_model
    config = model_config("marian", len(tokenizer), d_model=d, encoder_layers=args.layers, decoder_layers=args.layers,
                          heads=max(1, d // 64), ffn_dim=4 * d, max_position_embeddings=512)
    torch.manual_seed(0)
    return AutoModelForSeq2SeqLM.from_config(config).eval(), tokenizer


def plain_loop(model, tokenizer, sources, settings, config) -> list[str]:
    """Batches in input order, each padded to its longest source: what a loop over model.generate does."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(sources), settings.batch_size):
            batch = tokenizer(sources[start:start + settings.batch_size], truncation=True, padding=True,
                              max_length=settings.max_source_length, return_tensors="pt")
            sequences = model.generate(**batch, generation_config=config).sequences
            texts = tokenizer.batch_decode(sequences, skip_special_tokens=True)
            out += texts[::settings.k]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="seq2seq model or run folder (default: a random-weight Marian)")
    p.add_argument("--data-dir", default="../shared/data/seq2seq/multi30k_en_de",
                   help="parallel data folder ({split}.{side} files); the default is relative to the repository root")
    p.add_argument("--split", default="train")
    p.add_argument("--source", default="en")
    p.add_argument("--target", default="de", help="the other side (the random Marian's tokenizer is trained on both)")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--num-beams", type=int, default=5)
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2, help="runs of each mode; the fastest counts")
    p.add_argument("--d-model", type=int, default=256, help="random Marian: hidden size")
    p.add_argument("--layers", type=int, default=3, help="random Marian: encoder and decoder layers")
    p.add_argument("--vocab-size", type=int, default=8000, help="random Marian: BPE vocabulary")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--json-out", help="write the settings and all runs here")
    args = p.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from kdnlp.tasks.seq2seq.generation import GenerationSettings, generate, generation_config, load_teacher
    from kdnlp.modeling.models import num_params

    settings = GenerationSettings(num_beams=args.num_beams, k=args.k, max_new_tokens=args.max_new_tokens,
                                  batch_size=args.batch_size)
    model, tokenizer = load_teacher(args.model) if args.model else random_marian(args)
    lines = Path(args.data_dir, f"{args.split}.{args.source}").read_text(encoding="utf-8").splitlines()
    sources = lines[:args.samples]
    config = generation_config(model, tokenizer, settings)
    modes = {
        "sorted": lambda: [h[0][0] for h in generate(model, tokenizer, sources, settings, progress=False)],
        "plain": lambda: plain_loop(model, tokenizer, sources, settings, config),
    }
    runs: dict[str, list[float]] = {m: [] for m in modes}
    outputs = {}
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine does not hit one mode only
        for mode, fn in modes.items():
            start = time.perf_counter()
            outputs[mode] = fn()
            runs[mode].append(time.perf_counter() - start)
            print(json.dumps({"mode": mode, "seconds": round(runs[mode][-1], 3), "load": os.getloadavg()[0]}),
                  flush=True)
    tokens = [len(tokenizer(t)["input_ids"]) for t in outputs["sorted"]]
    same = sum(a == b for a, b in zip(outputs["sorted"], outputs["plain"]))
    model_name = args.model or f"random Marian d{args.d_model} {args.layers}+{args.layers} layers"
    print(f"\n{model_name} ({num_params(model) / 1e6:.1f}M parameters), {len(sources)} {args.split}.{args.source} "
          f"sources, beams {args.num_beams}, k {args.k}, max_new_tokens {args.max_new_tokens}, batch "
          f"{args.batch_size}, {torch.get_num_threads()} threads; best of {args.repeats}\n")
    print("| mode | s | sentences/s | x plain |\n|---|---|---|---|")
    base = min(runs["plain"])
    for mode in modes:
        best = min(runs[mode])
        print(f"| {mode} | {best:.1f} | {len(sources) / best:.1f} | {base / best:.2f} |")
    print(f"\nmean output length {sum(tokens) / len(tokens):.1f} tokens (re-tokenised, </s> included); {same} of "
          f"{len(sources)} best outputs the same in both modes (batches differ: see kdnlp.tasks.seq2seq.generation)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "model": model_name, "parameters": num_params(model), "seconds": runs,
                       "mean_output_tokens": sum(tokens) / len(tokens), "same_outputs": same}, f, indent=2)


if __name__ == "__main__":
    main()

"""Batched beam search with a seq2seq teacher, and the teacher's outputs as targets for sequence-level KD.

Sequence-level knowledge distillation (Kim & Rush 2016, arXiv:1606.07947) trains the student on the teacher's
beam-search outputs instead of (or beside) the references. `generate` decodes a list of sources in batches of
similar length (sorted by tokenised length, longest first, so little of each batch is padding) and returns, in the
input order, the k best outputs of each with their scores. `teacher_targets` does the same for a whole dataset
through the disk cache (kdnlp.training.cache): shard by shard, so an interrupted run continues where it stopped, and once
only, so a second run reads the finished entry. `generate_folder` writes the outputs as a pseudo-target dataset
folder (`kdnlp generate`).

Scores: a beam's score is what beam search ranks by, the sum of its tokens' log-probabilities (after the teacher's
logits processors, e.g. its forced end-of-sequence) divided by its length ** length_penalty, the length counting
the generated tokens with the end-of-sequence token but not the decoder's start token. Greedy decoding
(num_beams 1) gets the same formula, from the log-softmax of each step's processed logits.

Batch size: decoding is the same for any batch composition up to floating-point rounding (encoder padding is on
the right and masked; every decoder starts at the same step), but batched matrix products of other shapes round
differently, and an output whose two best continuations are that close can flip; see `cache_key`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from kdnlp.core.errors import KdnlpError, say
from kdnlp.core.hashing import cache_dir, weights_digest
from kdnlp.core.run import RunFolder, read_json, write_json
from kdnlp.modeling.models import load_config, load_pretrained, load_tokenizer
from kdnlp.tasks.seq2seq.data import load_pairs

if TYPE_CHECKING:
    import datasets

#: Bumped when the layout of a cache entry or its key changes.
VERSION = 1
#: Where generated targets live under kdnlp.core.hashing.cache_dir().
FOLDER = "generate"

Hypotheses = list[tuple[str, float]]


#: Longest output when the settings give no max_new_tokens (fewer if the model has fewer positions).
MAX_NEW_TOKENS = 128


@dataclass
class GenerationSettings:
    """Beam search settings. `k`: how many of the best beams are kept per source (at most `num_beams`);
    `max_new_tokens` None: MAX_NEW_TOKENS, or as many as the model has positions for if that is fewer."""

    num_beams: int = 5
    max_new_tokens: int | None = None
    k: int = 1
    length_penalty: float = 1.0
    batch_size: int = 64
    max_source_length: int = 256

    def __post_init__(self):
        for name in ("num_beams", "max_new_tokens", "k", "batch_size", "max_source_length"):
            value = getattr(self, name)
            if value is None and name == "max_new_tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KdnlpError(f"bad {name} {value!r}: must be a whole number of at least 1")
        if self.k > self.num_beams:
            raise KdnlpError(f"bad k {self.k}: beam search with num_beams {self.num_beams} returns at most "
                             f"{self.num_beams} outputs per source; raise num_beams or lower k")
        if isinstance(self.length_penalty, bool) or not isinstance(self.length_penalty, (int, float)) \
                or not math.isfinite(self.length_penalty):
            raise KdnlpError(f"bad length_penalty {self.length_penalty!r}: must be a finite number")


def generation_config(model, tokenizer, settings: GenerationSettings):
    """The teacher's own generation config (special tokens, forced tokens, banned words...) with `settings` put in:
    beam search, no sampling. Pad and end-of-sequence tokens it lacks come from the tokenizer."""
    import copy

    config = copy.deepcopy(model.generation_config)
    config.update(num_beams=settings.num_beams, num_return_sequences=settings.k,
                  max_new_tokens=max_new_tokens(model, settings), length_penalty=settings.length_penalty,
                  do_sample=False, output_scores=True, return_dict_in_generate=True)
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    if config.decoder_start_token_id is None:
        config.decoder_start_token_id = model.config.decoder_start_token_id
    for name in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
        if getattr(config, name) is None:
            raise KdnlpError(f"the teacher sets no {name} (in its generation config, config or tokenizer); "
                             "give a seq2seq model saved with its generation config")
    return config


def max_new_tokens(model, settings: GenerationSettings) -> int:
    """The longest output: `settings.max_new_tokens`, which the model's decoder must have positions for (its start
    token takes one), or without it MAX_NEW_TOKENS, capped at what the model has positions for."""
    positions = getattr(model.config, "max_position_embeddings", None)  # None: relative positions (T5)
    limit = None if positions is None else positions - 1
    wanted = settings.max_new_tokens
    if wanted is None:
        return MAX_NEW_TOKENS if limit is None else min(MAX_NEW_TOKENS, limit)
    if limit is not None and wanted > limit:
        raise KdnlpError(f"bad max_new_tokens {wanted}: '{model.config.name_or_path}' has {positions} positions, so "
                         f"it generates at most {limit} tokens; give at most {limit}")
    return wanted


def encode(tokenizer, sources: list[str], settings: GenerationSettings) -> list[list[int]]:
    """Token ids of each source, truncated to max_source_length (or the tokenizer's model_max_length, the model's
    positions, if that is shorter)."""
    length = min(settings.max_source_length, tokenizer.model_max_length)
    return tokenizer(list(sources), truncation=True, max_length=length)["input_ids"]


def length_order(ids: list[list[int]]) -> list[int]:
    """Source indices, longest first (ties in input order): batches of similar length, the biggest first."""
    return sorted(range(len(ids)), key=lambda i: -len(ids[i]))


def _decode_batches(model, tokenizer, config, ids: list[list[int]], rows: list[int],
                    batch_size: int) -> Iterator[tuple[list[int], list[Hypotheses]]]:
    """For each batch of `rows` (in the given order), the rows and the k best outputs of each."""
    import torch

    device = next(model.parameters()).device
    eos = torch.tensor(config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id],
                       device=device)
    k = config.num_return_sequences
    for start in range(0, len(rows), batch_size):
        batch_rows = rows[start:start + batch_size]
        # Right padding: positions count from the first token whatever the batch (left padding would shift them).
        batch = tokenizer.pad({"input_ids": [ids[i] for i in batch_rows]}, padding_side="right", return_tensors="pt")
        out = model.generate(**batch.to(device), generation_config=config)
        if config.num_beams > 1:
            scores = out.sequences_scores
        else:
            steps = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
            ended = torch.isin(out.sequences[:, 1:], eos).int()
            kept = (ended.cumsum(1) - ended) == 0  # up to and with the first end-of-sequence token
            scores = torch.where(kept, steps, 0.0).sum(1) / kept.sum(1) ** config.length_penalty
        texts = tokenizer.batch_decode(out.sequences, skip_special_tokens=True)
        scores = scores.float().cpu().tolist()
        yield batch_rows, [list(zip(texts[j * k:(j + 1) * k], scores[j * k:(j + 1) * k]))
                           for j in range(len(batch_rows))]


def generate(model, tokenizer, sources: list[str], settings: GenerationSettings | None = None,
             progress: bool = True) -> list[Hypotheses]:
    """For each source, in input order, the k best outputs of beam search as (text, score), best first.

    Sources are decoded `settings.batch_size` at a time in batches of similar tokenised length. Outputs are decoded
    without special tokens. See the module docstring for what the score is.
    """
    import torch
    from tqdm.auto import tqdm

    settings = settings or GenerationSettings()
    config = generation_config(model, tokenizer, settings)
    ids = encode(tokenizer, sources, settings)
    out: list[Hypotheses] = [[] for _ in ids]
    model.eval()
    with torch.inference_mode(), tqdm(total=len(ids), desc="generate", unit="sent", disable=not progress) as bar:
        for rows, hyps in _decode_batches(model, tokenizer, config, ids, length_order(ids), settings.batch_size):
            for i, h in zip(rows, hyps):
                out[i] = h
            bar.update(len(rows))
    return out


def check_teacher(name: str) -> None:
    """`name` must be an encoder-decoder model (checked from its config, before any weights are read)."""
    config = load_config(name)
    if not config.is_encoder_decoder:
        architectures = ", ".join(config.architectures or ["unknown"])
        raise KdnlpError(f"'{name}' is not an encoder-decoder model (architecture {architectures}); "
                         "give a seq2seq model such as Marian or BART")


def load_teacher(name: str, device=None):
    """A seq2seq teacher (model folder, kdnlp run folder or Hub id) in eval mode, on `device` (by default the GPU if
    there is one), and its tokenizer."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    check_teacher(name)
    model = load_pretrained(name, AutoModelForSeq2SeqLM)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), load_tokenizer(name)


def cache_key(model, tokenizer, sources: list[str], ids: list[list[int]], settings: GenerationSettings) -> str:
    """Hash of everything that changes the outputs: the teacher's weights and dtype (kdnlp.core.hashing.weights_digest),
    the device kind, the generation config the settings make, the sources in order with their token ids, and the
    tokenizer's vocabulary (it decodes the outputs).

    The batch size is in it too: decoding is batch-independent only up to rounding (module docstring). With a
    random-weight Marian on 200 Multi30k sources, 2 best outputs differed between batch sizes 1 and 64 (scores within
    1e-6: random weights make such near-ties common), so an entry holds exactly what one batch size gives.
    """
    h = hashlib.sha256(f"kdnlp-generate v{VERSION} {weights_digest(model)}".encode())
    h.update(next(model.parameters()).device.type.encode())
    h.update(json.dumps(asdict(settings), sort_keys=True).encode())
    h.update(generation_config(model, tokenizer, settings).to_json_string(use_diff=False).encode())
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    for text, row in zip(sources, ids):
        h.update(json.dumps([text, row]).encode())
    return h.hexdigest()[:32]


def _read_shard(path: Path, rows: list[int], k: int) -> list[Hypotheses] | None:
    """The outputs in the shard `path` if it holds the `k` best of each of `rows`, else None: a missing shard, or a
    damaged one (cut short, edited), which is named and removed, to be decoded again."""
    if not path.is_file():
        return None
    again = "decoding its sources again"
    try:
        data = read_json(path, "rows", "hypotheses", remedy=again)
        hyps = data["hypotheses"]
        if data["rows"] != rows or not isinstance(hyps, list) or len(hyps) != len(rows) or not all(
                isinstance(h, list) and len(h) == k and all(isinstance(x, list) and len(x) == 2 and
                                                            isinstance(x[0], str) and isinstance(x[1], float)
                                                            for x in h) for h in hyps):
            raise KdnlpError(f"'{path}' is damaged (not the {k} best outputs of its {len(rows)} sources): {again}")
    except KdnlpError as e:
        say(f"generate: {e}")
        path.unlink()
        return None
    return [[(text, score) for text, score in h] for h in hyps]


def _shards(folder: Path, order: list[int], settings: GenerationSettings, shard_size: int) -> list[list[int]]:
    """The rows of each shard of the entry `folder`, as its plan says: the shard size of an interrupted run wins, so
    its shards stay valid. A missing or damaged plan is written anew (shards that do not fit it are redone)."""
    plan = folder / "plan.json"
    try:
        per_shard = read_json(plan, "shard_size")["shard_size"]
    except KdnlpError:
        per_shard = None
    if isinstance(per_shard, bool) or not isinstance(per_shard, int) or per_shard < 1:
        per_shard = math.ceil(shard_size / settings.batch_size) * settings.batch_size
        write_json(plan, {"sources": len(order), "shard_size": per_shard})
    return [order[s:s + per_shard] for s in range(0, len(order), per_shard)]


def cached_generate(model, tokenizer, sources: list[str], settings: GenerationSettings | None = None,
                    shard_size: int = 1024, progress: bool = True) -> tuple[list[Hypotheses], Path]:
    """`generate`'s result, read from the cache when an entry holds it, else made shard by shard into one.

    The length-sorted sources are cut into shards of `shard_size` (rounded up to whole batches, so the batches are
    `generate`'s and so are the outputs); each finished shard is written at once into
    `<cache_dir>/generate/<key>.partial/`, and a rerun after an interruption skips the shards that are there. When
    all are done the folder is renamed to `<cache_dir>/generate/<key>/` (atomic) with `meta.json` beside the
    shards. A damaged shard (of either folder) is named and decoded again. Returns the outputs and the entry's folder.
    """
    settings = settings or GenerationSettings()
    if shard_size < 1:
        raise KdnlpError(f"bad shard size {shard_size}: must be at least 1")
    sources = list(sources)
    ids = encode(tokenizer, sources, settings)
    key = cache_key(model, tokenizer, sources, ids, settings)
    entry = cache_dir() / FOLDER / key
    work = entry.with_name(key + ".partial")
    order = length_order(ids)
    if (entry / "meta.json").is_file():
        shards = _shards(entry, order, settings, shard_size)
        found = _finished_entry(entry, work, shards, settings.k)
        if found is not None:
            return _in_order(shards, found, len(sources)), entry
    work.mkdir(parents=True, exist_ok=True)
    shards = _shards(work, order, settings, shard_size)
    start = time.perf_counter()
    found = _decode_shards(model, tokenizer, ids, shards, work, settings, progress)
    write_json(work / "meta.json", {
        "version": VERSION, "teacher": model.config.name_or_path, "weights": weights_digest(model),
        "settings": asdict(settings), "sources": len(sources), "shards": len(shards),
        "seconds_last_run": round(time.perf_counter() - start, 3)})
    try:
        os.replace(work, entry)
    except OSError:  # another process finished the same entry first
        if not (entry / "meta.json").is_file():
            raise
        shutil.rmtree(work, ignore_errors=True)
    return _in_order(shards, found, len(sources)), entry


def _finished_entry(entry: Path, work: Path, shards: list[list[int]], k: int) -> list[list[Hypotheses]] | None:
    """The outputs of each shard of the finished cache entry `entry`; None if any is damaged or missing, and then
    the entry, less its meta.json, becomes the folder `work` (its sound shards are kept)."""
    found = [_read_shard(entry / f"shard-{j:05d}.json", rows, k) for j, rows in enumerate(shards)]
    try:
        read_json(entry / "meta.json", "weights")
        damaged = sum(h is None for h in found)
    except KdnlpError as e:
        say(f"generate: {e}")
        damaged = len(found)
    if not damaged:
        say(f"generate: reusing the teacher's outputs in {entry}")
        return found
    say(f"generate: {damaged} of the {len(shards)} shards of {entry} are damaged or missing: decoding them again")
    (entry / "meta.json").unlink()
    shutil.rmtree(work, ignore_errors=True)
    os.replace(entry, work)
    return None


def _decode_shards(model, tokenizer, ids: list[list[int]], shards: list[list[int]], work: Path,
                   settings: GenerationSettings, progress: bool) -> list[list[Hypotheses]]:
    """The outputs of each shard (rows of `ids`): read from `work` where a sound shard file is, else decoded and
    written there at once."""
    import torch
    from tqdm.auto import tqdm

    paths = [work / f"shard-{j:05d}.json" for j in range(len(shards))]
    found = [_read_shard(p, rows, settings.k) for p, rows in zip(paths, shards)]
    todo = [j for j, h in enumerate(found) if h is None]
    n = sum(len(rows) for rows in shards)
    say(f"generate: {n} sources in {len(shards)} shards, {len(shards) - len(todo)} already done, into {work}")
    config = generation_config(model, tokenizer, settings)
    model.eval()
    done = n - sum(len(shards[j]) for j in todo)
    with torch.inference_mode(), tqdm(total=n, initial=done, desc="generate", unit="sent", disable=not progress) as bar:
        for j in todo:
            found[j] = []
            for batch_rows, batch_hyps in _decode_batches(model, tokenizer, config, ids, shards[j],
                                                         settings.batch_size):  # in the shard's row order
                found[j] += batch_hyps
                bar.update(len(batch_rows))
            write_json(paths[j], {"rows": shards[j], "hypotheses": found[j]})
    return found


def _in_order(shards: list[list[int]], found: list[list[Hypotheses]], n: int) -> list[Hypotheses]:
    """The outputs of each shard's rows put back in source order."""
    out: list[Hypotheses] = [[] for _ in range(n)]
    for rows, hyps in zip(shards, found):
        for i, h in zip(rows, hyps):
            out[i] = h
    return out


def with_hypotheses(pairs: "datasets.Dataset", hypotheses: list[Hypotheses]) -> "datasets.Dataset":
    """`pairs` with the teacher's top output in `teacher` and its k best in `hypotheses` ({"text", "score"}), in
    place of any such columns it had."""
    pairs = pairs.remove_columns([c for c in ("teacher", "hypotheses") if c in pairs.column_names])
    pairs = pairs.add_column("teacher", [h[0][0] for h in hypotheses])
    return pairs.add_column("hypotheses", [[{"text": t, "score": s} for t, s in h] for h in hypotheses])


def teacher_targets(teacher_dir: str, pairs: "datasets.Dataset", settings: GenerationSettings | None = None,
                    shard_size: int = 1024, progress: bool = True, device=None) -> "datasets.Dataset":
    """`pairs` (columns `source`, `target`) with the teacher's outputs for each source: `teacher` (the best) and
    `hypotheses` (the k best, {"text", "score"}, best first), from the cache or made into it (`cached_generate`),
    decoded on `device` (`load_teacher`'s default if None).

    Beam search does not sample, so the outputs depend only on the teacher, the sources and the settings (and the
    batch size: see `cache_key`).
    """
    if "source" not in pairs.column_names:
        raise KdnlpError(f"the pairs have no 'source' column (columns: {', '.join(pairs.column_names)})")
    model, tokenizer = load_teacher(teacher_dir, device)
    hypotheses, _ = cached_generate(model, tokenizer, pairs["source"], settings, shard_size, progress)
    return with_hypotheses(pairs, hypotheses)


def one_line(text: str) -> str:
    """`text` with its line breaks (any that str.splitlines knows) made spaces: one text a line in a file."""
    return " ".join(text.splitlines())


def generate_folder(teacher: str, data_dir: str, output_dir: str | os.PathLike, source: str | None = None,
                    target: str | None = None, split: str = "train", settings: GenerationSettings | None = None,
                    max_samples: int | None = None, seed: int = 42, overwrite: bool = False,
                    shard_size: int = 1024) -> dict:
    """Write the teacher's outputs for a split of `data_dir` (kdnlp.tasks.seq2seq.data.load_pairs) as a pseudo-target
    dataset folder that `load_pairs(output_dir, split)` reads back (`kdnlp generate`):

    - `{split}.source`, `{split}.target`: the sources and the teacher's best output for each, one a line;
    - `{split}.reference`: the data's own targets, kept for comparison or mixing;
    - `{split}.kbest.jsonl` (only with k > 1): one {"source", "reference", "hypotheses": [{"text", "score"}]} a line;
    - `generation.json`: the teacher (path and weights digest), the settings, the data, counts and seconds.

    The outputs come from the cache (`cached_generate`), so an interrupted run continues where it stopped. The folder
    is built in `<output_dir>.partial` and moved into place when complete. Returns generation.json's content with
    the folder's path.
    """
    settings = settings or GenerationSettings()
    folder = RunFolder(output_dir, overwrite)
    data = {"dir": str(data_dir), "split": split, "source": source, "target": target, "max_samples": max_samples,
            "seed": seed}
    run_settings = {"command": "generate", "teacher": teacher, "settings": asdict(settings), "data": data}
    folder.check(run_settings)
    check_teacher(teacher)
    start = time.perf_counter()
    pairs = load_pairs(data_dir, split, source=source, target=target, max_samples=max_samples, seed=seed)
    model, tokenizer = load_teacher(teacher)
    hypotheses, entry = cached_generate(model, tokenizer, pairs["source"], settings, shard_size)
    work = folder.start(run_settings)
    sources = [one_line(s) for s in pairs["source"]]
    references = [one_line(t) for t in pairs["target"]]
    files = {"source": sources, "target": [one_line(h[0][0]) for h in hypotheses], "reference": references}
    for suffix, lines in files.items():
        (work / f"{split}.{suffix}").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    if settings.k > 1:
        with open(work / f"{split}.kbest.jsonl", "w", encoding="utf-8") as f:
            for s, r, hyps in zip(sources, references, hypotheses):
                row = {"source": s, "reference": r, "hypotheses": [{"text": t, "score": x} for t, x in hyps]}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    meta = json.loads((entry / "meta.json").read_text())
    result = {
        "teacher": {"path": teacher, "weights": meta["weights"]},
        "settings": asdict(settings),
        "data": data,
        "counts": {"sources": len(sources), "hypotheses": sum(len(h) for h in hypotheses),
                   "empty_outputs": sum(not h[0][0].strip() for h in hypotheses)},
        "seconds": round(time.perf_counter() - start, 3),
        "cache": str(entry),
    }
    write_json(work / "generation.json", result)
    return {**result, "path": str(folder.finish())}

"""TinyBERT's data augmentation (Jiao et al. 2020, arXiv:1909.10351, Algorithm 1).

Each whitespace-separated word gets replacement candidates: a word the masked LM reads as one whole-word piece is
masked and the LM's top-m predictions become its candidates; any other word gets its m nearest neighbours in a
GloVe-style word-vector file, when one is given. A new text replaces each word that has candidates with probability
p by one of them, chosen uniformly; n draws are made per text and the distinct ones that differ from the original are
kept. `augment_glue` augments a GLUE task's first text field and writes a GLUE folder that `kdnlp distill` reads.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from kdnlp.core.errors import KdnlpError
from kdnlp.core.run import RunFolder
from kdnlp.modeling.models import load_pretrained, load_tokenizer
from kdnlp.tasks.glue.data import SPLITS, get_task, load_split, task_file, write_tsv

if TYPE_CHECKING:
    import numpy as np

def _check(p: float, n: int, m: int, batch_size: int) -> None:
    if not 0 <= p <= 1:
        raise KdnlpError(f"bad p {p}: the replacement probability must be between 0 and 1")
    for name, value in (("n", n), ("m", m), ("batch size", batch_size)):
        if value < 1:
            raise KdnlpError(f"bad {name} {value}: must be at least 1")


def load_fill_mask(name: str):
    """A masked LM (on the GPU if there is one) and its tokenizer, from a model or run folder, Hub id or alias.

    A model saved without its masked-LM head is refused: the head would be random and so would its predictions.
    """
    import torch
    from transformers import AutoModelForMaskedLM

    tokenizer = load_tokenizer(name)
    if tokenizer.mask_token is None:
        raise KdnlpError(f"'{name}' has no mask token; give a masked language model, e.g. bert-base-uncased")
    model, info = load_pretrained(name, AutoModelForMaskedLM, output_loading_info=True)
    if info["missing_keys"]:
        missing = ", ".join(sorted(info["missing_keys"])[:3])
        raise KdnlpError(f"'{name}' has no trained masked-LM head (missing {missing}); "
                         "give a masked language model, e.g. bert-base-uncased")
    return model.to("cuda" if torch.cuda.is_available() else "cpu").eval(), tokenizer


class WordVectors:
    """GloVe-style word vectors, one `word v1 v2 ...` per line (a word2vec `count dim` header line is skipped)."""

    def __init__(self, path: str | os.PathLike):
        import numpy as np

        path = Path(path)
        if not path.is_file():
            raise KdnlpError(f"word-vector file '{path}' does not exist")
        words, rows, dim = [], [], 0
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                parts = line.rstrip().split(" ")
                if not line.strip() or (n == 1 and len(parts) == 2 and all(x.isdigit() for x in parts)):
                    continue
                dim = dim or len(parts) - 1  # words may hold spaces (GloVe 840B): the vector is the last dim fields
                try:
                    if not 0 < dim < len(parts):
                        raise ValueError
                    rows.append(np.array(parts[-dim:], dtype=np.float32))
                except ValueError:
                    expected = f"a word and {dim or 'some'} numbers, separated by spaces"
                    raise KdnlpError(f"{path}:{n}: expected {expected}") from None
                words.append(" ".join(parts[:-dim]))
        if not words:
            raise KdnlpError(f"word-vector file '{path}' holds no vectors")
        vectors = np.stack(rows)
        self.words = words
        self.unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.index = {w: i for i, w in reversed(list(enumerate(words)))}  # a repeated word: its first vector
        self.variants: dict[str, list[int]] = {}
        for i, w in enumerate(words):
            self.variants.setdefault(w.lower(), []).append(i)

    def neighbours(self, words: list[str], m: int, chunk: int = 64) -> dict[str, list[str]]:
        """The m nearest words by cosine similarity for each of `words` found as is or lowercased; no case variant of
        the word itself is among them."""
        import numpy as np

        found = [w for w in dict.fromkeys(words) if w in self.index or w.lower() in self.index]
        out = {}
        for start in range(0, len(found), chunk):
            batch = found[start:start + chunk]
            sims = self.unit[[self.index.get(w, self.index.get(w.lower())) for w in batch]] @ self.unit.T
            for row, w in zip(sims, batch):
                row[self.variants[w.lower()]] = -np.inf
                k = min(m, int(np.isfinite(row).sum()))
                top = np.argpartition(-row, k - 1)[:k] if k else np.array([], dtype=int)
                out[w] = [self.words[i] for i in top[np.argsort(-row[top], kind="stable")]]
        return out


def _whole_words(tokenizer, vocab_size: int) -> "np.ndarray":
    """Which ids may be candidates: pieces the tokenizer reads back as themselves, so a candidate is a whole word
    (not a `##` continuation, an `[unused]` slot or a special token)."""
    import numpy as np

    ids = range(min(len(tokenizer), vocab_size))
    pieces = tokenizer(tokenizer.convert_ids_to_tokens(list(ids)), add_special_tokens=False)["input_ids"]
    ok = np.zeros(vocab_size, dtype=bool)
    ok[[i for i, p in zip(ids, pieces) if p == [i]]] = True
    ok[tokenizer.all_special_ids] = False
    return ok


def word_candidates(texts: list[str], model, tokenizer, m: int = 15, word_vectors: str | os.PathLike | None = None,
                    batch_size: int = 64, progress: bool = True) -> list[list[list[str]]]:
    """For each text, for each of its whitespace-separated words, up to m replacement candidates.

    A word the tokenizer reads as a single whole-word piece (after its normalisation, e.g. lowercasing) is masked and
    gets the masked LM's top-m whole-word predictions other than itself; masked copies of all texts are run
    `batch_size` at a time. Other words get their nearest neighbours from `word_vectors`, or nothing without it.
    Words beyond the model's maximum length count as multi-piece words.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    if not tokenizer.is_fast:
        raise KdnlpError(f"{type(tokenizer).__name__} is not a fast tokenizer; augmentation needs word offsets")
    vectors = None if word_vectors is None else WordVectors(word_vectors)  # a bad file fails before the long LM pass
    words = [t.split() for t in texts]
    limit = min(tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", 512))
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=limit)
    jobs = []  # (text, word, position of the word's one piece)
    for t, ids in enumerate(enc["input_ids"]):
        where: dict[int, list[int]] = {}
        for k, j in enumerate(enc.word_ids(t)):
            if j is not None:
                where.setdefault(j, []).append(k)
        jobs += [(t, j, ks[0]) for j, ks in where.items() if len(ks) == 1 and ids[ks[0]] != tokenizer.unk_token_id]
    out: list[list[list[str]]] = [[[] for _ in ws] for ws in words]
    if jobs:
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        allowed = torch.from_numpy(_whole_words(tokenizer, model.config.vocab_size))
        variants: dict[str, list[int]] = {}  # candidates differing from the word only in case are the word itself
        for i in allowed.nonzero().flatten().tolist():
            variants.setdefault(vocab[i].lower(), []).append(i)
        jobs.sort(key=lambda job: len(enc["input_ids"][job[0]]))  # batches of similar lengths need little padding
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        device = next(model.parameters()).device
        model.eval()
        for start in tqdm(range(0, len(jobs), batch_size), desc="masked LM", unit="batch", disable=not progress):
            batch = jobs[start:start + batch_size]
            width = max(len(enc["input_ids"][t]) for t, _, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, (t, _, pos) in enumerate(batch):
                seq = enc["input_ids"][t]
                ids[r, :len(seq)] = torch.tensor(seq)
                ids[r, pos] = tokenizer.mask_token_id
                mask[r, :len(seq)] = 1
            with torch.inference_mode():
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                logits = logits[torch.arange(len(batch)), [pos for _, _, pos in batch]].float().cpu()
                logits[:, ~allowed] = -torch.inf
                for r, (t, _, pos) in enumerate(batch):
                    logits[r, variants.get(vocab[enc["input_ids"][t][pos]].lower(), [])] = -torch.inf
                top = logits.topk(min(m, logits.shape[1]))
            for r, (t, j, _) in enumerate(batch):
                out[t][j] = [vocab[i] for v, i in zip(top.values[r].tolist(), top.indices[r].tolist()) if v > -np.inf]
    if vectors is not None:
        lm = {(t, j) for t, j, _ in jobs}
        rest = [(t, j) for t, ws in enumerate(words) for j in range(len(ws)) if (t, j) not in lm]
        near = vectors.neighbours([words[t][j] for t, j in rest], m)
        for t, j in rest:
            out[t][j] = near.get(words[t][j], [])
    return out


def augment_texts(texts: list[str], fill_mask_model, tokenizer, p: float = 0.4, n: int = 20, m: int = 15,
                  word_vectors: str | os.PathLike | None = None, seed: int = 42, batch_size: int = 64,
                  progress: bool = True) -> list[list[str]]:
    """For each text, up to n new texts, words joined by single spaces: of n draws, those that repeat the original or
    an earlier draw are dropped (as in TinyBERT's code)."""
    _check(p, n, m, batch_size)
    if p == 0:  # every draw repeats the original: no new text, and no need for the masked LM's passes
        return [[] for _ in texts]
    rng = random.Random(seed)
    candidates = word_candidates(texts, fill_mask_model, tokenizer, m, word_vectors, batch_size, progress)
    out = []
    for text, cands in zip(texts, candidates):
        words = text.split()
        seen = {" ".join(words)}
        new = []
        for _ in range(n if any(cands) else 0):
            draw = " ".join(rng.choice(c) if c and rng.random() < p else w for w, c in zip(words, cands))
            if draw not in seen:
                seen.add(draw)
                new.append(draw)
        out.append(new)
    return out


def augment_glue(task: str, data_dir: str | None, output_dir: str | os.PathLike, model: str, split: str = "train",
                 p: float = 0.4, n: int = 20, m: int = 15, word_vectors: str | os.PathLike | None = None,
                 max_samples: int | None = None, overwrite: bool = False, seed: int = 42,
                 batch_size: int = 64) -> dict:
    """Augment a GLUE split's first text field and write `output_dir` as a GLUE folder for `kdnlp distill --data-dir`.

    Each example is written followed by its new texts, with the other text field and the label unchanged (TinyBERT
    augments only the first sentence). The validation file is copied along so the folder is complete; `data_dir=None`
    reads the Hub dataset. Returns the task, split, examples read and written, and the written file's path.
    """
    spec = get_task(task)
    if split not in SPLITS:
        raise KdnlpError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    _check(p, n, m, batch_size)
    folder = RunFolder(output_dir, overwrite)
    ds = load_split(spec, split, data_dir, max_samples, seed)
    dev = None  # the task's dev file goes along, so the folder is complete
    if split != "validation":
        dev = load_split(spec, "validation").to_dict() if data_dir is None else task_file(spec, "validation", data_dir)
    paths = {k: None if v is None else str(v) for k, v in (("data_dir", data_dir), ("word_vectors", word_vectors))}
    settings = {"command": "augment", "task": spec.name, "split": split, "model": model, **paths, "p": p, "n": n,
                "m": m, "max_samples": max_samples, "seed": seed}
    folder.check(settings)
    lm, tokenizer = load_fill_mask(model)
    first = spec.keys[0]
    new = augment_texts(ds[first], lm, tokenizer, p, n, m, word_vectors, seed, batch_size)
    rows = [row for ex, texts in zip(ds, new) for row in (ex, *({**ex, first: t} for t in texts))]
    work = folder.start(settings)
    (work / spec.folder).mkdir(exist_ok=True)
    name = spec.files[SPLITS.index(split)]
    write_tsv(spec, {key: [r[key] for r in rows] for key in (*spec.keys, "label")}, work / spec.folder / name)
    if isinstance(dev, dict):
        write_tsv(spec, dev, work / spec.folder / spec.files[1])
    elif dev is not None:
        shutil.copyfile(dev, work / spec.folder / spec.files[1])
    path = folder.finish()
    return {"task": spec.name, "split": split, "examples": len(ds), "written": len(rows),
            "path": str(path / spec.folder / name)}

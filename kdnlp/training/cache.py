"""The one keyed store of teacher outputs on disk: the teacher's logits and its generated targets.

Everything lives under `cache_dir()`: `$KDNLP_CACHE` (default: `kdnlp-teacher/` in the datasets cache,
`$HF_DATASETS_CACHE`), in entries named by a key over everything that changes them. Any change gives a new key; an
old entry is never read for new inputs. Both kinds of entry start their key from `weights_digest` (the teacher's
weights, dtype and attention implementation):

- `<key>.npy` (+ `<key>.json`): the teacher's logits for every training example, computed once (this module). A
  distillation run whose loss reads only the teacher's logits (hinton, tinybert_prediction, ...) needs the
  teacher's forward pass once per example, not once per example and epoch. The key adds the token ids fed to the
  teacher (so the dataset, its subset, the tokenizer and `max_length`). The same file serves every epoch, run and
  student.
- `generate/<key>/`: a seq2seq teacher's beam-search outputs for a list of sources (kdnlp.tasks.seq2seq.generation), built in
  shards in `generate/<key>.partial/` so an interrupted run continues where it stopped.

Hidden states and attention maps are not cached: for MiniLM-L6 at 64 tokens they take ~0.35 MB per example in
float16 (23 GB for SST-2's train set), more than a disk cache saves on 2 CPU cores.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from kdnlp.core.errors import say
from kdnlp.core.hashing import cache_dir, weights_digest
from kdnlp.core.names import TEACHER_PREFIX

if TYPE_CHECKING:
    import datasets

#: Bumped when the logits file layout or its key changes.
VERSION = 2
#: The column the cached logits travel in, from the dataset through the collator to the trainer.
COLUMN = "teacher_logits"


def forward_inputs(model: torch.nn.Module) -> set[str]:
    """The names `model.forward` takes (through DDP or Accelerate wrappers)."""
    inner = getattr(model, "module", model)
    return set(inspect.signature(inner.forward).parameters)


def model_inputs(teacher: torch.nn.Module, ds: "datasets.Dataset") -> list[str]:
    """The columns the teacher reads: its own tokenisation if `ds` has one, else the columns its forward takes
    (labels and cached logits are never fed to it)."""
    own = [c for c in ds.column_names if c.startswith(TEACHER_PREFIX)]
    takes = forward_inputs(teacher) - {"labels", COLUMN}
    return own or [c for c in ds.column_names if c in takes]


def key(teacher: torch.nn.Module, ds: "datasets.Dataset") -> str:
    """Hash of the teacher's weights, dtype and attention implementation, and of every input fed to it."""
    h = hashlib.sha256(f"kdnlp-teacher-cache v{VERSION} {weights_digest(teacher)}".encode())
    for batch in ds.select_columns(model_inputs(teacher, ds)).iter(batch_size=4096):
        for name, rows in sorted(batch.items()):
            h.update(name.encode())
            if not isinstance(rows[0], list):  # one number per row (a multi-task row's task)
                h.update(np.asarray(rows, dtype=np.int64).tobytes())
                continue
            h.update(np.asarray([len(r) for r in rows], dtype=np.int64).tobytes())
            h.update(np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]).tobytes())
    return h.hexdigest()[:32]


def batches(ds: "datasets.Dataset", batch_size: int) -> list[list[int]]:
    """The rows of each batch `compute` feeds the teacher: rows by length (least padding), `batch_size` at a time.
    Padding changes the logits in their last bits, so only a run fed these batches gets the same logits live."""
    order = np.argsort([len(x) for x in ds["input_ids"]], kind="stable").tolist()
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


@torch.no_grad()
def compute(teacher: torch.nn.Module, ds: "datasets.Dataset", collator, batch_size: int, inputs=None) -> np.ndarray:
    """The teacher's logits for each row of `ds`, in row order, computed in `batches`.
    `inputs` picks the teacher's arguments from a collated batch (default: the `model_inputs` columns)."""
    from tqdm.auto import tqdm

    cols = [c for c in ds.column_names if c not in ("labels", COLUMN)]
    names = model_inputs(teacher, ds)
    inputs = inputs or (lambda batch: {c: batch[c] for c in names})
    device = next(teacher.parameters()).device
    out: np.ndarray | None = None
    for rows in tqdm(batches(ds, batch_size), desc="teacher logits", unit="batch"):
        picked = ds[rows]
        batch = collator([{c: picked[c][j] for c in cols} for j in range(len(rows))])
        logits = teacher(**{k: v.to(device) for k, v in inputs(batch).items()}).logits.float().cpu().numpy()
        if out is None:
            out = np.empty((len(ds), logits.shape[-1]), dtype=np.float32)
        out[rows] = logits
    return out


def load_or_compute(teacher, ds, collator, batch_size: int, inputs=None) -> np.ndarray:
    """The cached logits for (teacher, ds), computed and stored first if no file holds them."""
    k = key(teacher, ds)
    path = cache_dir() / f"{k}.npy"
    if path.is_file():
        say(f"teacher cache: reusing {path}")
        return np.load(path)
    say(f"teacher cache: computing the teacher's logits for {len(ds)} examples into {path}")
    logits = compute(teacher, ds, collator, batch_size, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{k}.{os.getpid()}.tmp.npy")
    np.save(tmp, logits)
    meta = {"version": VERSION, "examples": len(ds), "teacher": teacher.config.name_or_path}
    (cache_dir() / f"{k}.json").write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, path)  # a reader sees the whole file or none
    return logits


def attach(ds: "datasets.Dataset", logits: np.ndarray) -> "datasets.Dataset":
    """`ds` with the teacher's logits of each row in the column COLUMN."""
    return ds.add_column(COLUMN, list(logits))

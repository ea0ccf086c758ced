"""Unlabeled text for general distillation, from text files, saved datasets or Hub datasets.

Each source is a text file (one text per line), a folder written by `datasets` `save_to_disk` (a Dataset, or a
DatasetDict whose `train` split is used), or a Hub dataset id, optionally with a config: `wikitext:wikitext-103-raw-v1`
(its `train` split). Every string column of a dataset gives texts: `text` alone, or both sentences of a pair.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kdnlp.core.config import first_repeat
from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.glue.data import subset

if TYPE_CHECKING:
    import datasets


def _dataset_texts(source: str) -> list[str]:
    import datasets

    path = Path(source)
    if path.is_dir():
        try:
            ds = datasets.load_from_disk(str(path))
        except FileNotFoundError:
            raise KdnlpError(f"text source '{source}' is a folder but not one saved by datasets (save_to_disk)") from None
    else:
        name, _, config = source.partition(":")
        try:
            ds = datasets.load_dataset(name, config or None, split="train")
        except Exception as e:  # offline, unknown id, no train split: one line, not a traceback
            raise KdnlpError(f"text source '{source}' is no file, saved dataset or loadable Hub dataset "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise KdnlpError(f"dataset '{source}' has no 'train' split; splits: {', '.join(ds)}")
        ds = ds["train"]
    columns = [c for c, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    if not columns:
        raise KdnlpError(f"dataset '{source}' has no text column; columns: {', '.join(ds.column_names)}")
    return [t for c in columns for t in ds[c] if t and t.strip()]


def load_text(sources: list[str], max_samples: int | None = None, seed: int = 42) -> "datasets.Dataset":
    """The texts of `sources` as a dataset with one column, `text`; `max_samples` takes a seeded subset."""
    import datasets

    twice = first_repeat(sources)
    if twice is not None:
        raise KdnlpError(f"text source '{twice}' is given twice; give each --text once")
    lines: list[str] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as f:
                lines.extend(line.strip() for line in f if line.strip())
        elif not path.is_dir() and (path.suffix or source.startswith(("/", ".", "~"))):
            raise KdnlpError(f"text file '{path}' does not exist")
        else:  # a saved dataset's folder, or a Hub dataset id
            lines.extend(t.strip() for t in _dataset_texts(source))
    if not lines:
        raise KdnlpError(f"no text in {', '.join(sources)}")
    return subset(datasets.Dataset.from_dict({"text": lines}), "train", max_samples, seed)


def encode_text(ds: "datasets.Dataset", tokenizer, max_length: int, prefix: str = "") -> "datasets.Dataset":
    """Token ids of the texts; with `prefix`, the columns' names prefixed (the teacher's own reading of the text)."""
    def encode(batch):
        return {prefix + k: v for k, v in tokenizer(batch["text"], truncation=True, max_length=max_length).items()}

    return ds.map(encode, batched=True, remove_columns=ds.column_names, desc="tokenising text")

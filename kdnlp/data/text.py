"""Unlabeled text for general distillation: plain text files, one text per line."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kdnlp.errors import KdnlpError

if TYPE_CHECKING:
    import datasets


def load_text(paths: list[str], max_samples: int | None = None, seed: int = 42) -> "datasets.Dataset":
    """The non-empty lines of `paths` as a dataset with one column, `text`; `max_samples` takes a seeded subset."""
    import datasets

    lines: list[str] = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise KdnlpError(f"text file '{path}' does not exist")
        with open(path, encoding="utf-8", errors="replace") as f:
            lines.extend(line.strip() for line in f if line.strip())
    if not lines:
        raise KdnlpError(f"no text in {', '.join(paths)}")
    ds = datasets.Dataset.from_dict({"text": lines})
    if max_samples is not None and max_samples < len(ds):
        ds = ds.shuffle(seed=seed).select(range(max_samples))
    return ds


def encode_text(ds: "datasets.Dataset", tokenizer, max_length: int) -> "datasets.Dataset":
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                  remove_columns=ds.column_names, desc="tokenising text")

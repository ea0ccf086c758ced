"""Text pairs for sequence-to-sequence tasks (translation, summarisation): a `source` text and its `target`.

`data` is one of:

- a folder of parallel text files, one text a line: `{prefix}.{source}` and `{prefix}.{target}` (`train.en` and
  `train.de`: `source`/`target` name the suffixes), or `{prefix}.source` and `{prefix}.target` (source/target omitted);
- a folder with `{prefix}.json` or `{prefix}.jsonl` in JSON lines (one object a line; a file holding one JSON array
  of objects is read too), or such a file itself, which then serves whichever split is asked for;
- a folder written by `datasets` `save_to_disk`: a DatasetDict with the splits (or a Dataset, again any split);
- otherwise a Hub dataset id, `name[:config]`.

The prefixes of a split are train: `train`; validation: `val`, `valid`, `validation`, `dev`; test: `test`, or else
the one name starting with `test` (Multi30k's `test_2016_flickr.en`). Saved and Hub datasets name their splits the
same way. JSON rows and dataset rows hold either a `translation` mapping of language codes to texts
(`{"translation": {"en": ..., "ro": ...}}`: source/target are codes) or two text columns named by source/target
(`document`/`summary`); omitted, source/target mean the columns `source` and `target`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdnlp.tasks.glue.data import SPLITS, subset
from kdnlp.core.errors import KdnlpError

if TYPE_CHECKING:
    import datasets

PREFIXES = {"train": ("train",), "validation": ("val", "valid", "validation", "dev"), "test": ("test",)}
JSON_SUFFIXES = ("json", "jsonl")


def load_pairs(data: str, split: str, source: str | None = None, target: str | None = None,
               max_samples: int | None = None, seed: int = 42) -> "datasets.Dataset":
    """One split as a Dataset with the text columns `source` and `target`, in file order; `max_samples` takes a
    seeded random subset of train and the head of the other splits (as `kdnlp.tasks.glue.data.load_split` does)."""
    import datasets

    if split not in SPLITS:
        raise KdnlpError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    if (source is None) != (target is None):
        raise KdnlpError(f"give both source and target, not only '{source or target}' "
                         "(or neither, for files or columns named source and target)")
    named = source is not None
    source, target = source or "source", target or "target"
    path = Path(data).expanduser()
    if path.is_dir():
        pairs = _folder_pairs(path, split, source, target, named)
    elif path.is_file() and path.suffix[1:] in JSON_SUFFIXES:
        pairs = _row_pairs(_read_json(path), str(path), source, target, named)
    elif path.exists():
        raise KdnlpError(f"'{data}' is neither a folder nor a .json/.jsonl file; parallel text files are read "
                         f"from their folder (train.{source} and train.{target})")
    elif data.startswith((".", "/", "~")) or data.count("/") > 1:
        raise KdnlpError(f"data folder '{data}' does not exist")
    else:
        pairs = _dataset_pairs(_split_of(_hub(data), split, data), data, source, target, named)
    if not pairs[0]:
        raise KdnlpError(f"the {split} split of '{data}' is empty")
    blank = next((side for side, texts in zip(("source", "target"), pairs) if not any(t.strip() for t in texts)), None)
    if blank:
        raise KdnlpError(f"the {split} split of '{data}' has {len(pairs[0])} pairs but every {blank} text is blank; "
                         "give one text a line")
    ds = datasets.Dataset.from_dict({"source": pairs[0], "target": pairs[1]})
    return subset(ds, split, max_samples, seed)


def _split_names(available: Iterable[str], split: str) -> list[str]:
    """The names among `available` (file prefixes, or a dataset's split names) that hold `split`."""
    available = set(available)
    found = [p for p in PREFIXES[split] if p in available]
    if not found and split == "test":
        found = sorted(a for a in available if a.startswith("test"))
    return found


def _folder_pairs(root: Path, split: str, source: str, target: str, named: bool) -> tuple[list[str], list[str]]:
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        import datasets

        return _dataset_pairs(_split_of(datasets.load_from_disk(str(root)), split, str(root)), str(root),
                              source, target, named)
    files = sorted(p.name for p in root.iterdir() if p.is_file())
    candidates = [f"{p}.{s}" for s in (*JSON_SUFFIXES, source)
                  for p in _split_names((f[:-len(s) - 1] for f in files if f.endswith(f".{s}")), split)]
    if not candidates:
        prefixes = "|".join(PREFIXES[split]) + ("|test*" if split == "test" else "")
        shown = ", ".join(files[:8]) + (", ..." if len(files) > 8 else "") or "nothing"
        raise KdnlpError(f"no {split} data in '{root}': expected {{{prefixes}}}.{source} and .{target}, or "
                         f"{{{prefixes}}}.json(l), or a folder saved by datasets; it holds {shown}")
    if len(candidates) > 1:
        raise KdnlpError(f"several {split} files in '{root}': {', '.join(candidates)}; "
                         "use a folder that holds only the one you want")
    path = root / candidates[0]
    if path.suffix[1:] in JSON_SUFFIXES:
        return _row_pairs(_read_json(path), str(path), source, target, named)
    other = path.with_name(path.name[:-len(source)] + target)
    if not other.is_file():
        raise KdnlpError(f"'{path}' has no parallel file '{other.name}' in '{root}'")
    sources, targets = _read_lines(path), _read_lines(other)
    if len(sources) != len(targets):
        raise KdnlpError(f"'{path}' has {len(sources)} lines but '{other}' has {len(targets)}; "
                         "parallel files hold one text a line each")
    return sources, targets


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise KdnlpError(f"'{path}' is not UTF-8 text (byte {e.start}); convert it to UTF-8") from None


def _read_lines(path: Path) -> list[str]:
    """The lines of `path` with only their line ends (\\n or \\r\\n) removed. Not `str.splitlines`, which also breaks
    at characters such as U+2028 or \\x0c that may sit inside a sentence and would misalign parallel files."""
    lines = _read_text(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read_json(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON lines file, or of a file holding one JSON array."""
    text = _read_text(path)
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.split("\n") if line.strip()]
    except json.JSONDecodeError as e:
        raise KdnlpError(f"'{path}' is not JSON lines: {e.msg} (line {e.lineno})") from None
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise KdnlpError(f"'{path}': row {bad + 1} is not a JSON object")
    return rows


def _row_pairs(rows: list[dict[str, Any]], where: str, source: str, target: str,
               named: bool) -> tuple[list[str], list[str]]:
    return _pairs(list(rows[0]) if rows else [], lambda key: [row.get(key) for row in rows], where, source, target,
                  named)


def _dataset_pairs(ds: "datasets.Dataset", where: str, source: str, target: str,
                   named: bool) -> tuple[list[str], list[str]]:
    return _pairs(ds.column_names, lambda key: list(ds[key]), where, source, target, named)


def _pairs(columns: list[str], column: Callable[[str], list], where: str, source: str, target: str,
           named: bool) -> tuple[list[str], list[str]]:
    """The source and target texts of rows with the given columns: two text columns, or a `translation` mapping."""
    if not columns:
        return [], []
    if source in columns and target in columns:
        return _texts(column(source), where, source), _texts(column(target), where, target)
    if "translation" in columns:
        rows = column("translation")
        languages = sorted({code for row in rows if isinstance(row, dict) for code in row})
        if not named:
            raise KdnlpError(f"'{where}' holds translations in {', '.join(languages)}; "
                             "pass source and target language codes")
        missing = [code for code in (source, target) if code not in languages]
        if missing:
            raise KdnlpError(f"'{where}' has no language '{missing[0]}'; languages: {', '.join(languages)}")
        rows = [row if isinstance(row, dict) else {} for row in rows]
        return (_texts([row.get(source) for row in rows], where, source),
                _texts([row.get(target) for row in rows], where, target))
    if not named:
        raise KdnlpError(f"'{where}' has the columns {', '.join(columns)}; pass source and target (the columns to read)")
    missing = next(c for c in (source, target) if c not in columns)
    raise KdnlpError(f"'{where}' has no column '{missing}'; columns: {', '.join(columns)}")


def _texts(values: list, where: str, name: str) -> list[str]:
    bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is not None:
        raise KdnlpError(f"'{where}': row {bad + 1} holds {repr(values[bad])[:40]} in '{name}', not a text")
    return values


def _split_of(ds: "datasets.Dataset | datasets.DatasetDict", split: str, where: str) -> "datasets.Dataset":
    """The split of a DatasetDict that holds `split` (a plain Dataset serves every split)."""
    import datasets

    if not isinstance(ds, datasets.DatasetDict):
        return ds
    found = _split_names(ds, split)
    if len(found) != 1:
        what = f"several {split} splits ({', '.join(found)})" if found else f"no {split} split"
        raise KdnlpError(f"dataset '{where}' has {what}; its splits: {', '.join(ds)}")
    return ds[found[0]]


def _hub(data: str) -> "datasets.DatasetDict":
    import datasets

    name, _, config = data.partition(":")
    try:
        return datasets.load_dataset(name, config or None)
    except Exception as e:  # offline, unknown id, bad config: one line, not a traceback
        raise KdnlpError(f"could not load the Hub dataset '{data}' ({type(e).__name__}); pass a local folder "
                         "(parallel text files, JSON lines, or one saved by datasets)") from None

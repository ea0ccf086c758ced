"""The one GLUE table (task keys, text columns, labels, metrics, files) and its loaders.

Local folders use the layout of the GLUE download script (`<data_dir>/<Folder>/{train,dev,test}.tsv`, or the
task's files directly in `data_dir`); without a folder the Hub dataset `nyu-mll/glue` is used.
GLUE files are read by splitting lines on tabs, with no quoting: SST-2 and MRPC hold bare `"` characters.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kdnlp.core.errors import KdnlpError

if TYPE_CHECKING:
    import datasets

HUB_DATASET = "nyu-mll/glue"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class GlueTask:
    name: str
    folder: str
    keys: tuple[str, ...]  # text fields, named as in nyu-mll/glue
    columns: tuple[str, ...]  # the same fields' column names in the GLUE TSV files
    label_column: str
    labels: tuple[str, ...]  # label names in class-index order; () for regression
    metrics: tuple[str, ...]
    files: tuple[str, str, str]  # train, validation, test file names
    hub_config: str
    hub_validation: str = "validation"
    hub_test: str = "test"
    positional: tuple[tuple[str, int], ...] = ()  # column positions in files without a header (CoLA)
    leaderboard: str = ""  # the file name (without .tsv) of the task's predictions in a GLUE submission
    test_size: int = 0  # rows of the official test file, as the leaderboard checks them

    @property
    def num_labels(self) -> int:
        return len(self.labels) or 1

    @property
    def regression(self) -> bool:
        return not self.labels


_NLI = ("entailment", "not_entailment")
TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in [
        GlueTask("cola", "CoLA", ("sentence",), ("sentence",), "label", ("unacceptable", "acceptable"),
                 ("matthews_correlation",), ("train.tsv", "dev.tsv", "test.tsv"), "cola",
                 positional=(("label", 1), ("sentence", 3)), leaderboard="CoLA", test_size=1063),
        GlueTask("sst2", "SST-2", ("sentence",), ("sentence",), "label", ("negative", "positive"),
                 ("accuracy",), ("train.tsv", "dev.tsv", "test.tsv"), "sst2", leaderboard="SST-2", test_size=1821),
        GlueTask("mrpc", "MRPC", ("sentence1", "sentence2"), ("#1 String", "#2 String"), "Quality",
                 ("not_equivalent", "equivalent"), ("accuracy", "f1"), ("train.tsv", "dev.tsv", "test.tsv"), "mrpc",
                 leaderboard="MRPC", test_size=1725),
        GlueTask("qqp", "QQP", ("question1", "question2"), ("question1", "question2"), "is_duplicate",
                 ("not_duplicate", "duplicate"), ("accuracy", "f1"), ("train.tsv", "dev.tsv", "test.tsv"), "qqp",
                 leaderboard="QQP", test_size=390965),
        GlueTask("stsb", "STS-B", ("sentence1", "sentence2"), ("sentence1", "sentence2"), "score", (),
                 ("pearson", "spearmanr"), ("train.tsv", "dev.tsv", "test.tsv"), "stsb", leaderboard="STS-B",
                 test_size=1379),
        GlueTask("mnli", "MNLI", ("premise", "hypothesis"), ("sentence1", "sentence2"), "gold_label",
                 ("entailment", "neutral", "contradiction"), ("accuracy",),
                 ("train.tsv", "dev_matched.tsv", "test_matched.tsv"), "mnli",
                 hub_validation="validation_matched", hub_test="test_matched", leaderboard="MNLI-m", test_size=9796),
        GlueTask("mnli-mm", "MNLI", ("premise", "hypothesis"), ("sentence1", "sentence2"), "gold_label",
                 ("entailment", "neutral", "contradiction"), ("accuracy",),
                 ("train.tsv", "dev_mismatched.tsv", "test_mismatched.tsv"), "mnli",
                 hub_validation="validation_mismatched", hub_test="test_mismatched", leaderboard="MNLI-mm",
                 test_size=9847),
        GlueTask("qnli", "QNLI", ("question", "sentence"), ("question", "sentence"), "label", _NLI,
                 ("accuracy",), ("train.tsv", "dev.tsv", "test.tsv"), "qnli", leaderboard="QNLI", test_size=5463),
        GlueTask("rte", "RTE", ("sentence1", "sentence2"), ("sentence1", "sentence2"), "label", _NLI,
                 ("accuracy",), ("train.tsv", "dev.tsv", "test.tsv"), "rte", leaderboard="RTE", test_size=3000),
        GlueTask("wnli", "WNLI", ("sentence1", "sentence2"), ("sentence1", "sentence2"), "label",
                 ("not_entailment", "entailment"), ("accuracy",), ("train.tsv", "dev.tsv", "test.tsv"), "wnli",
                 leaderboard="WNLI", test_size=146),
    ]
}

#: GLUE's diagnostic set (AX): unlabeled MNLI-style pairs, scored by the leaderboard with the MNLI model's predictions.
#: Not a task of its own (nothing trains on it), so it is not in TASKS.
DIAGNOSTIC = GlueTask("ax", "diagnostic", ("premise", "hypothesis"), ("sentence1", "sentence2"), "label",
                      TASKS["mnli"].labels, ("accuracy",), ("", "", "diagnostic.tsv"), "ax", hub_test="test",
                      leaderboard="AX", test_size=1104)
#: The predictions a submission holds, in the leaderboard's order: each file and the task whose model predicts it.
SUBMISSION: tuple[tuple[GlueTask, str], ...] = (
    *((t, t.name) for t in TASKS.values()),
    (DIAGNOSTIC, "mnli"),
)


def get_task(name: str) -> GlueTask:
    key = name.lower().replace("_", "-")
    key = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli-matched": "mnli",
           "mnli-mismatched": "mnli-mm"}.get(key, key)
    if key not in TASKS:
        raise KdnlpError(f"unknown task '{name}'; valid: {', '.join(TASKS)}")
    return TASKS[key]


def task_file(task: GlueTask, split: str, data_dir: str | os.PathLike) -> Path:
    if split not in SPLITS:
        raise KdnlpError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    root = Path(data_dir)
    if not root.is_dir():
        raise KdnlpError(f"GLUE data folder '{root}' does not exist; pass --data-dir or set GLUE_DIR to a GLUE folder")
    name = task.files[SPLITS.index(split)]
    for path in (root / task.folder / name, root / name):
        if path.is_file():
            return path
    raise KdnlpError(f"no {split} file for {task.name}: neither '{root / task.folder / name}' nor '{root / name}' exists")


def _label(raw: str, task: GlueTask, where: str) -> int | float:
    if task.regression:
        try:
            return float(raw)
        except ValueError:
            raise KdnlpError(f"{where}: score {raw!r} is not a number") from None
    if raw in task.labels:
        return task.labels.index(raw)
    if raw.isdigit() and int(raw) < len(task.labels):
        return int(raw)
    raise KdnlpError(f"{where}: label {raw!r} is not one of {', '.join(task.labels)} (or their indices)")


def read_tsv(task: GlueTask, path: Path) -> dict[str, list]:
    """Rows of a GLUE TSV as columns: the task's text keys, `label` (-1 when unlabeled) and `idx` (the file's
    `index` column where it has one, as test files do, else the row number)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise KdnlpError(f"'{path}' is empty")
    first = lines[0].rstrip("\r").split("\t")
    if all(c in first for c in task.columns):
        index = {c: first.index(c) for c in (*task.columns, task.label_column) if c in first}
        start = 1
    elif task.positional:
        pos = dict(task.positional)
        index = {c: pos[k] for c, k in zip(task.columns, task.keys)} | {task.label_column: pos["label"]}
        start = 0
    else:
        raise KdnlpError(f"'{path}' has no header with the {task.name} columns {', '.join(task.columns)}")
    if len(lines) == start:
        raise KdnlpError(f"'{path}' has a header but no rows; a {task.name} file needs at least one example")
    out: dict[str, list] = {k: [] for k in (*task.keys, "label", "idx")}
    labeled = task.label_column in index
    numbered = start == 1 and "index" in first
    for n, line in enumerate(lines[start:], start=start + 1):
        fields = line.rstrip("\r").split("\t")
        if len(fields) <= max(index.values()):
            raise KdnlpError(f"{path}:{n}: expected at least {max(index.values()) + 1} tab-separated fields, got {len(fields)}")
        for key, col in zip(task.keys, task.columns):
            out[key].append(fields[index[col]])
        out["label"].append(_label(fields[index[task.label_column]], task, f"{path}:{n}") if labeled else -1)
        out["idx"].append(int(fields[first.index("index")]) if numbered else len(out["idx"]))
    blank = next((c for c, k in zip(task.columns, task.keys) if not any(t.strip() for t in out[k])), None)
    if blank:
        raise KdnlpError(f"'{path}' has {len(out['idx'])} rows but every '{blank}' is blank; a {task.name} file "
                         "needs texts")
    return out


def load_split(task: GlueTask, split: str, data_dir: str | None = None, max_samples: int | None = None,
               seed: int = 42) -> "datasets.Dataset":
    """One split as a `datasets.Dataset`; `max_samples` takes a seeded random subset of train, the head of others."""
    import datasets

    if data_dir is not None:
        ds = datasets.Dataset.from_dict(read_tsv(task, task_file(task, split, data_dir)))
    else:
        hub_split = {"train": "train", "validation": task.hub_validation, "test": task.hub_test}[split]
        try:
            ds = datasets.load_dataset(HUB_DATASET, task.hub_config, split=hub_split)
        except Exception as e:  # the Hub's errors vary by cause (offline, proxy, auth)
            raise KdnlpError(
                f"could not load {HUB_DATASET}/{task.hub_config} from the Hub ({type(e).__name__}); "
                "pass --data-dir or set GLUE_DIR to a local GLUE folder"
            ) from None
    return subset(ds, split, max_samples, seed)


def check_max_samples(max_samples: int | None) -> None:
    if max_samples is not None and max_samples < 1:
        raise KdnlpError(f"bad value {max_samples} for --max-samples: give 1 or more (or leave it out for all)")


def subset(ds: "datasets.Dataset", split: str, max_samples: int | None, seed: int = 42) -> "datasets.Dataset":
    """At most `max_samples` rows: a seeded random subset of train (a sample of the whole split), the head of others
    (the same rows whatever the seed, so scores stay comparable)."""
    check_max_samples(max_samples)
    if max_samples is not None and max_samples < len(ds):
        ds = ds.shuffle(seed=seed) if split == "train" else ds
        ds = ds.select(range(max_samples))
    return ds


def require_labels(ds: "datasets.Dataset", task: GlueTask, split: str) -> None:
    """Scores need gold labels: GLUE test splits have none (label -1)."""
    if len(ds) and ds[0]["label"] == -1:
        raise KdnlpError(f"the {task.name} {split} split has no labels; use 'validation' (or 'train')")


def encode(ds: "datasets.Dataset", tokenizer, task: GlueTask, max_length: int, prefix: str = "") -> "datasets.Dataset":
    """Tokenised (unpadded: batches are padded dynamically) with a `labels` column; with `prefix`, the token
    columns alone, named `<prefix><column>` (a second model's own reading of the same texts)."""

    def tok(batch):
        enc = tokenizer(*(batch[k] for k in task.keys), truncation=True, max_length=max_length)
        if prefix:
            return {prefix + k: v for k, v in enc.items()}
        enc["labels"] = batch["label"]
        return enc

    return ds.map(tok, batched=True, remove_columns=ds.column_names, desc=f"tokenising {task.name}")


#: Tasks whose GLUE files write labels as names; the others write class indices (or STS-B scores).
_NAMED_LABELS = frozenset({"mnli", "mnli-mm", "qnli", "rte", "ax"})
_SPACES = str.maketrans("\t\r\n", "   ")


def write_tsv(task: GlueTask, columns: dict[str, list], path: Path) -> None:
    """Columns as `read_tsv` returns them (the task's text keys and `label`) as a GLUE TSV that `read_tsv` reads back.

    The header holds the task's TSV column names and label column, labels are written as GLUE's own files write them,
    and a split without labels (all -1) gets no label column. There is no quoting, so tabs and line breaks inside
    texts become spaces.
    """
    labels = columns["label"]
    labeled = any(label != -1 for label in labels)
    rows = ["\t".join([*task.columns, task.label_column] if labeled else task.columns)]
    for i, label in enumerate(labels):
        fields = [str(columns[key][i]).translate(_SPACES) for key in task.keys]
        if labeled:
            fields.append(_label_text(task, label, i))
        rows.append("\t".join(fields))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _label_text(task: GlueTask, label: int | float, row: int) -> str:
    if task.regression:
        return str(float(label))
    if label not in range(len(task.labels)):
        valid = f"0..{len(task.labels) - 1}"
        raise KdnlpError(f"row {row + 1}: label {label!r} is not a {task.name} class index (valid: {valid})")
    return task.labels[int(label)] if task.name in _NAMED_LABELS else str(int(label))


def submission_text(task: GlueTask, prediction: int | float) -> str:
    """A prediction as the GLUE leaderboard wants it: the label names for MNLI, AX, QNLI and RTE, class indices for
    the other classification tasks, STS-B scores clipped to [0, 5]."""
    if task.regression:
        return f"{min(5.0, max(0.0, float(prediction))):.3f}"
    return _label_text(task, int(prediction), 0)

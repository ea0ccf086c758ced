"""The table of task kinds the contract tests (test_contract.py) run on: for each, how to write a tiny teacher, a
tiny data folder and a one-stage recipe whose student is built from the teacher.

- classifier: a 2-label BERT on SST-2, its student narrower than the teacher (projections train);
- regression: a 1-output BERT on STS-B, likewise;
- seq2seq: a 2+2-layer Marian on parallel files, word-level KD over target tokens;
- multitask: one BERT student of an SST-2 and an STS-B teacher (MT-DNN), 21 rows a task so that a batch of 8 ends
  with 5 rows, which two processes split 3 + 2.

Only the BERT kinds have a term with parameters (`tinybert_hidden`): seq2seq and multi-task terms read logits only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from conftest import tiny_classifier, write_sst2
from test_scratch import PAIRS, SIZES

#: The student of the BERT kinds: 2 layers, half the teacher's width (weights truncated), so projections train.
NARROW = {"layers": 2, "hidden_size": 16, "intermediate_size": 32, "init": "truncate"}
TRAINING = {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 1e-3, "logging_steps": 1,
            "eval_strategy": "no", "save_strategy": "no"}


def write_pairs(root: Path, folder: str, label: str, rows: list[tuple[str, str, str]], train_rows: int = 24) -> None:
    """A GLUE pair-task folder (MRPC's column layout for MRPC) of `train_rows` train rows cycling `rows`, and `rows`
    as dev."""
    path = root / folder
    path.mkdir(parents=True)
    head = f"sentence1\tsentence2\t{label}\n" if folder != "MRPC" else f"{label}\t#1 ID\t#2 ID\t#1 String\t#2 String\n"

    def line(a, b, y):
        return f"{a}\t{b}\t{y}" if folder != "MRPC" else f"{y}\t1\t2\t{a}\t{b}"

    body = [line(*rows[i % len(rows)]) for i in range(train_rows)]
    (path / "train.tsv").write_text(head + "\n".join(body) + "\n")
    (path / "dev.tsv").write_text(head + "\n".join(line(*r) for r in rows) + "\n")


STSB_ROWS = [("a man sings", "a man is singing", "4.5"), ("a cat", "a plane", "0.5"), ("two dogs", "dogs play", "3.0"),
             ("the sun", "it rains", "1.0"), ("kids run", "children run", "4.0")]


def sst2_data(root: Path) -> Path:
    return write_sst2(root / "glue")


def stsb_data(root: Path) -> Path:
    write_pairs(root / "glue", "STS-B", "score", STSB_ROWS)
    return root / "glue"


def both_data(root: Path) -> Path:
    glue = write_sst2(root / "glue", dev_rows=12)
    write_pairs(glue, "STS-B", "score", STSB_ROWS)
    return glue


def parallel_data(root: Path) -> Path:
    """train.en/de (32 pairs) and val.en/de (8 pairs) made of the same 8 real pairs."""
    folder = root / "pairs"
    folder.mkdir(parents=True)
    for split, n in (("train", 4), ("val", 1)):
        for side, i in (("en", 0), ("de", 1)):
            (folder / f"{split}.{side}").write_text("\n".join(p[i] for p in PAIRS * n) + "\n", encoding="utf-8")
    return folder


def bert_teacher(folder: Path, tokenizer, dropout: float, num_labels: int = 2, seed: int = 0) -> str:
    tiny_classifier(seed=seed, num_labels=num_labels, attention_dropout=dropout).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def marian_teacher(folder: Path, tokenizer, dropout: float) -> str:
    """A Marian with random weights (kdnlp new-model's folder, then weights): KD needs no teacher that learned.
    Dropout as in tiny_config: on the attention only."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    from kdnlp.modeling.scratch import new_model_folder

    new_model_folder(folder, [t for p in PAIRS for t in p] * 3, "marian", dropout=0.0, **SIZES)
    config = AutoConfig.from_pretrained(folder)
    config.attention_dropout = dropout
    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(config)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(folder).save_pretrained(folder)
    return str(folder)


def ensemble_teachers(folder: Path, tokenizer, dropout: float) -> str:
    """One SST-2 and one STS-B teacher, as the spec `sst2=A;stsb=B`."""
    a = bert_teacher(folder / "sst2", tokenizer, dropout, seed=1)
    b = bert_teacher(folder / "stsb", tokenizer, dropout, num_labels=1, seed=2)
    return f"sst2={a};stsb={b}"


@dataclass(frozen=True)
class Kind:
    name: str
    task: str  # as run_recipe takes it
    data: Callable[[Path], Path]  # writes the data folder under a root, returns it
    teacher: Callable[[Path, object, float], str]  # (folder, MiniLM's tokenizer, attention dropout) -> teacher spec
    losses: list[dict]
    student: dict
    options: dict = field(default_factory=dict)  # more run_recipe keywords, also passed on the command line
    training: dict = field(default_factory=dict)  # over TRAINING
    projections: bool = False  # a term with parameters (trained, checkpointed, never exported)
    accumulates: str = ""  # why gradient accumulation is not one large batch, where it is not

    def recipe(self, **training) -> dict:
        return {"name": f"contract-{self.name}", "description": f"the contract run of the {self.name} kind",
                "max_length": 32, "student": self.student, "training": {**TRAINING, **self.training, **training},
                "stages": [{"name": "distill", "losses": self.losses}]}

    def cli(self, teacher: str) -> list[str]:
        """The command-line options that give `distill` this kind's task, teacher and options."""
        if self.task.startswith("tasks:"):
            return ["--tasks", self.task.removeprefix("tasks:"),
                    *[a for spec in teacher.split(";") for a in ("--teachers", spec)],
                    *[a for k, v in self.options.items() for a in (f"--{k.replace('_', '-')}", str(v))]]
        return ["--task", self.task, "--teacher", teacher,
                *[a for k, v in self.options.items() for a in (f"--{k.replace('_', '-')}", str(v))]]


KINDS = {k.name: k for k in (
    Kind("classifier", "sst2", sst2_data, bert_teacher, student=NARROW, projections=True,
         losses=[{"loss": "hinton"}, {"loss": "ce"}, {"loss": "tinybert_hidden"}]),
    Kind("regression", "stsb", stsb_data, lambda f, tok, d: bert_teacher(f, tok, d, num_labels=1), student=NARROW,
         projections=True, losses=[{"loss": "hinton"}, {"loss": "ce"}, {"loss": "tinybert_hidden"}]),
    Kind("seq2seq", "translation", parallel_data, marian_teacher, student={"layers": 1, "decoder_layers": 1},
         options={"source": "en", "target": "de"},
         losses=[{"loss": "ce", "weight": 0.5}, {"loss": "hinton", "weight": 0.5, "temperature": 1.0}]),
    Kind("multitask", "tasks:sst2,stsb", both_data, ensemble_teachers, student={"layers": 1},
         options={"max_train_samples": 21}, training={"num_train_epochs": 2},
         losses=[{"loss": "hinton", "weight": 0.5}, {"loss": "ce", "weight": 0.5}],
         accumulates="each micro-batch is one task's (kdnlp.tasks.multitask.model.TaskBatches), so micro-batches of "
                     "4 accumulated are not the one-task batches of 8"),
)}

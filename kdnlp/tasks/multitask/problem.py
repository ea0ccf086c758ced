"""Several GLUE tasks learned by one student with a shared encoder (MT-DNN's distillation, Liu et al. 2019).

The task key is `tasks:<task>,<task>,...` and the teacher `<task>=<folder>,<folder>;<task>=...`: per task an
ensemble of one or more classifiers fine-tuned on it. Rows of the data carry their task's index in `task_ids`.
Models emit one row of `width` numbers per example (the most labels of any task; a task's own scores first, zeros
after): the student's is `MultiTaskModel`, the teacher's (`Ensemble`) holds every teacher's logits side by side,
so the teacher cache keeps full distributions and the loss chooses how to average them (`combine`).
The recipe's `multitask` section (`Settings`) says how tasks are mixed, averaged and annealed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from kdnlp.core.config import first_repeat
from kdnlp.core.errors import KdnlpError
from kdnlp.losses import CompositeLoss
from kdnlp.modeling.models import check_classifier, load_classifier, load_tokenizer, resolve
from kdnlp.modeling.students import build_student
from kdnlp.tasks.base import KINDS, Card, Kind, Problem, Published
from kdnlp.tasks.glue import data as glue
from kdnlp.tasks.glue import metrics
from kdnlp.tasks.glue.metrics import task_score
from kdnlp.tasks.glue.problem import predict
from kdnlp.tasks.multitask.model import TASK, Ensemble, MultiTaskLoss, MultiTaskModel, TaskBatches, soft_targets

if TYPE_CHECKING:
    import datasets

#: Prefix of a multi-task problem's task key.
PREFIX = "tasks:"
#: Where a multi-task run folder keeps each task's model (`export`), relative to the run folder.
PARTS = Path("tasks")


def part_folder(task: str) -> Path:
    """The folder of task `task`'s model in a multi-task run folder."""
    return PARTS / task / "model"


def parts(folder: Path) -> dict[str, Path] | None:
    """The task models (folder name -> model folder) of the multi-task run folder `folder`; None if it is not one."""
    if not (folder / PARTS).is_dir():
        return None
    found = {sub.name: folder / part_folder(sub.name) for sub in sorted((folder / PARTS).iterdir())
             if (folder / part_folder(sub.name) / "config.json").is_file()}
    if not found:
        raise KdnlpError(f"'{folder / PARTS}' holds no task model (expected {part_folder('<task>')}/config.json)")
    return found


@dataclass
class Settings:
    """The recipe's `multitask` section. `sampling`: which task each mini-batch comes from, `proportional` to the
    tasks' sizes, by `temperature` (|D|^tau) or `round_robin`; every epoch has as many batches as the tasks' data
    fill. `combine`: the ensemble's soft target is the mean of its teachers' class probabilities, each at the
    loss terms' temperature (`probs`, MT-DNN's) or of their logits. `anneal`: BAM's teacher annealing, the target
    is lam * gold + (1 - lam) * teacher with lam rising linearly from 0 to 1 over training (gold never tempered)."""

    sampling: Literal["proportional", "temperature", "round_robin"] = "proportional"
    tau: float = 0.5
    combine: Literal["probs", "logits"] = "probs"
    anneal: bool = False

    def validate(self, where: str) -> None:
        if not 0 <= self.tau <= 1:
            raise KdnlpError(f"bad value {self.tau} for {where}.tau: must be between 0 and 1")


def parse_teachers(spec: str, tasks: list[str]) -> dict[str, list[str]]:
    """`sst2=A,B;mrpc=C` -> {task: [teacher folders]}, one entry per task of `tasks`."""
    out: dict[str, list[str]] = {}
    for part in filter(None, spec.split(";")):
        task, eq, names = part.partition("=")
        if not eq and (Path(part) / PARTS).is_dir():
            raise KdnlpError(f"'{part}' is a multi-task run, scored one task at a time: kdnlp eval "
                             f"{Path(part) / part_folder('TASK')} --task TASK")
        if not eq or not names:
            raise KdnlpError(f"bad teachers '{part}': expected TASK=FOLDER[,FOLDER...]")
        task = glue.get_task(task.strip()).name
        if task not in tasks:
            raise KdnlpError(f"teachers given for {task}, which is not one of the tasks {', '.join(tasks)}")
        out.setdefault(task, []).extend(n.strip() for n in names.split(",") if n.strip())
    missing = [t for t in tasks if not out.get(t)]
    if missing:
        raise KdnlpError(f"task {missing[0]} has no teacher; pass --teachers {missing[0]}=FOLDER[,FOLDER...]")
    for task, names in out.items():
        seen: dict[str, str] = {}
        for name in names:
            key = _model_key(name)
            if key in seen:
                raise KdnlpError(f"task {task}: teacher '{name}' is given twice (also as '{seen[key]}'); an ensemble "
                                 "needs different teachers, e.g. fine-tuned with other seeds")
            seen[key] = name
    return {t: out[t] for t in tasks}


def _model_key(name: str) -> str:
    """The model folder `name` stands for (a run folder's model/, any spelling of a path), or the name itself."""
    try:
        found = resolve(name)
    except KdnlpError:  # reported when the teacher is loaded
        return name
    return str(Path(found).resolve()) if Path(found).exists() else found


class MultiTaskProblem(Problem):
    """GLUE tasks learned together (the task key `tasks:sst2,mrpc,...`). Splits are the tasks' splits one after
    another, each capped at `max_samples`; the student is `kdnlp.tasks.multitask.model.MultiTaskModel`, built from the first
    teacher of the first task; the teacher is every task's ensemble (`kdnlp.tasks.multitask.model.Ensemble`), which
    carries its members to the calls that need them. `settings`: the recipe's `multitask` section.

    Capabilities (kdnlp.tasks.capabilities): Configured, BatchOrder, TeacherFolder, OwnStudent, OwnLoss, Parts."""

    display_scale = 100.0
    caches_logits = True
    #: The trainer hands metrics each row's task with its label; under DDP the heads of the tasks absent from a
    #: batch get no gradient.
    training_defaults = {"label_names": ["labels", TASK], "ddp_find_unused_parameters": True}
    outputs = "classes"  # per-example outputs; each task's loss terms are built for the task's own kind

    def __init__(self, tasks: list[str], settings: Settings | None = None):
        if not tasks:
            raise KdnlpError(f"no tasks in '{PREFIX}': give {PREFIX}TASK[,TASK...]")
        self.tasks = [glue.get_task(t) for t in tasks]
        names = [t.name for t in self.tasks]
        if (twice := first_repeat(names)) is not None:
            raise KdnlpError(f"task {twice} is given twice in {PREFIX}{','.join(tasks)}")
        self.name = PREFIX + ",".join(names)
        self.settings = settings or Settings()

    @property
    def num_labels(self) -> int:
        return max(t.num_labels for t in self.tasks)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return (*(f"{t.name}/{m}" for t in self.tasks for m in t.metrics), "average", "ensemble/average")

    def configured(self, rec) -> "MultiTaskProblem":
        return MultiTaskProblem([t.name for t in self.tasks], rec.multitask_settings())

    # ---- data ----
    def load(self, split, data_dir, max_samples=None, seed=42, labeled=True):
        import datasets

        parts = []
        for i, task in enumerate(self.tasks):
            ds = glue.load_split(task, split, data_dir, max_samples, seed)
            if labeled:
                glue.require_labels(ds, task, split)
            pair = task.keys[1] if len(task.keys) > 1 else None
            parts.append(datasets.Dataset.from_dict({
                "text": ds[task.keys[0]], "text_pair": ds[pair] if pair else [None] * len(ds),
                "label": [float(x) for x in ds["label"]], TASK: [i] * len(ds)}))
        return datasets.concatenate_datasets(parts)

    def encode(self, ds, tokenizer, max_length, prefix=""):
        """Each task's rows tokenised on their own (single sentences or pairs), in the same order."""
        import datasets

        def tok(batch):
            pairs = batch["text_pair"] if batch["text_pair"][0] is not None else None
            enc = tokenizer(batch["text"], pairs, truncation=True, max_length=max_length)
            if prefix:
                return {prefix + k: v for k, v in enc.items()}
            return {**enc, "labels": batch["label"], TASK: batch[TASK]}

        ids = np.asarray(ds[TASK])
        parts = [ds.select(np.flatnonzero(ids == i)) for i in range(len(self.tasks)) if (ids == i).any()]
        return datasets.concatenate_datasets([p.map(tok, batched=True, remove_columns=ds.column_names,
                                                    desc="tokenising") for p in parts])

    def collator(self, tokenizer, model=None):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def train_batches(self, ds, batch_size, seed, processes):
        s = self.settings
        return TaskBatches(ds[TASK], [t.name for t in self.tasks], batch_size, s.sampling, s.tau, seed, processes)

    # ---- models ----
    def teacher_folder(self, name):
        return next(iter(self._teachers(name).values()))[0]

    def _teachers(self, name: str) -> dict[str, list[str]]:
        return parse_teachers(name, [t.name for t in self.tasks])

    def check_teacher(self, name):
        teachers = self._teachers(name)
        first_vocab = None
        for task, names in zip(self.tasks, teachers.values()):
            for teacher in names:
                try:
                    check_classifier(teacher, task)
                    vocab = load_tokenizer(teacher).get_vocab()
                except KdnlpError as e:
                    raise KdnlpError(f"task {task.name}, teacher '{teacher}': {e}") from None
                if first_vocab is None:
                    first_vocab = (teacher, vocab)
                elif vocab != first_vocab[1]:
                    raise KdnlpError(f"task {task.name}, teacher '{teacher}' has another vocabulary ({len(vocab)} "
                                     f"tokens) than '{first_vocab[0]}' ({len(first_vocab[1])}): the shared student "
                                     "reads text one way; use teachers fine-tuned from the same encoder")

    def load_model(self, name, require_head, **kwargs):
        if not require_head:
            raise KdnlpError(f"a multi-task student is built from the teachers; drop --student '{name}' "
                             f"(its encoder: {MultiTaskModel.__name__} starts from the first teacher's layers)")
        teachers = self._teachers(name)
        return Ensemble([[load_classifier(n, task, True, **kwargs) for n in teachers[task.name]]
                         for task in self.tasks])

    def build_student(self, teacher, spec):
        """The first task's first teacher made a student as for one task, its encoder shared by heads copied
        from each task's first teacher."""
        student, ids = build_student(teacher.members[0][0], spec)
        heads = {t.name: m[0] for t, m in zip(self.tasks, teacher.members)}
        return MultiTaskModel.from_student(student, heads), ids

    def build_loss(self, terms, ctx, teacher):
        per_task = {}
        for task in self.tasks:
            task_ctx = dataclasses.replace(ctx, num_labels=task.num_labels,
                                           outputs="scalar" if task.regression else "classes")
            per_task[task.name] = CompositeLoss.build(terms, task_ctx)
        other = per_task[self.tasks[0].name].needs - {"logits"}
        if other:
            raise KdnlpError(f"multi-task distillation compares outputs only; its terms cannot read {', '.join(sorted(other))}")
        return MultiTaskLoss(per_task, _members(teacher, len(self.tasks)), [t.num_labels for t in self.tasks],
                             self.num_labels, self.settings.combine, self.settings.anneal)

    def export(self, model, tokenizer, folder):
        for task in self.tasks:
            path = folder / part_folder(task.name)
            model.export(task.name).save_pretrained(path)
            tokenizer.save_pretrained(path)

    def published(self, run, metrics, task):
        """With `task` (or for a run of one task), that task's export (`tasks/<task>/model`), its teachers and its
        metrics beside its ensemble's; the multi-task model itself loads only with kdnlp, so it is not published."""
        names = [t.name for t in self.tasks]
        if task is None and len(names) > 1:
            raise KdnlpError(f"this run learned several tasks; pass --task, one of {', '.join(names)}")
        name = glue.get_task(task).name if task is not None else names[0]
        if name not in names:
            raise KdnlpError(f"bad task '{task}' for --task: this run learned {', '.join(names)}")
        teachers = parse_teachers(run["teacher"], names)[name] if run.get("teacher") else []

        def part(prefix):
            return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}

        return Published(part_folder(name), name, ",".join(teachers) or None, part(f"{name}/"),
                         part(f"ensemble/{name}/") or None)

    # ---- evaluation ----
    def _task_scores(self, i: int, logits, labels) -> dict[str, float]:
        task = self.tasks[i]
        m = metrics.compute(task, logits[:, : task.num_labels], labels if task.regression else labels.astype(np.int64))
        return {f"{task.name}/{k}": float(v) for k, v in m.items()}

    def _scores(self, logits, labels, ids) -> dict[str, float]:
        """Each task's metrics on its rows, and `average`: the mean of the tasks' scores (GLUE's, per task)."""
        out: dict[str, float] = {}
        scores = []
        for i, task in enumerate(self.tasks):
            m = self._task_scores(i, logits[ids == i], labels[ids == i])
            out.update(m)
            scores.append(task_score(task, {k.split("/", 1)[1]: v for k, v in m.items()}))
        out["average"] = float(np.mean(scores))
        return out

    def compute_metrics(self):
        def compute(pred):
            labels, ids = pred.label_ids
            return self._scores(np.asarray(pred.predictions), np.asarray(labels), np.asarray(ids).astype(np.int64))

        return compute

    def final_metrics(self, evaluated, model, tokenizer, dev, max_length, teacher=None):
        """The student's metrics and, with the teachers' ensemble, the ensemble's (`ensemble/...`) and each
        teacher's alone (`teacher<j>/<task>/...`) on the same dev rows."""
        import torch

        final = super().final_metrics(evaluated, model, tokenizer, dev, max_length)
        if not isinstance(teacher, Ensemble):
            return final
        rows = predict(teacher, tokenizer, self.encode(dev, tokenizer, max_length))
        ids, labels = np.asarray(dev[TASK]), np.asarray(dev["label"])
        teachers = _members(teacher, len(self.tasks))
        width = self.num_labels
        combined = np.zeros((len(rows), width), dtype=np.float32)
        for i, task in enumerate(self.tasks):
            at = ids == i
            combined[at, : task.num_labels] = soft_targets(torch.from_numpy(rows[at]), teachers[i], width,
                                                           task.num_labels, self.settings.combine).numpy()
            for j in range(teachers[i]):
                alone = self._task_scores(i, rows[at, j * width : (j + 1) * width], labels[at])
                final.update({f"teacher{j + 1}/{k}": v for k, v in alone.items()})
        final.update({f"ensemble/{k}": v for k, v in self._scores(combined, labels, ids).items()})
        return final

    def task_score(self, metrics):
        return metrics["average"]

    def score(self, model, tokenizer, ds, max_length, batch_size):
        raise KdnlpError(f"{self.name} is scored one task at a time: kdnlp eval {part_folder('TASK')} --task TASK")

    def speed(self, model, tokenizer, ds, max_length):
        raise KdnlpError(f"{self.name} is timed one task at a time: kdnlp eval {part_folder('TASK')} --task TASK "
                         "--speed")

    def card(self, data_dir):
        raise KdnlpError(f"a multi-task run ({self.name}) publishes one task's model at a time, carded as that "
                         "task's: pass --task")


def _members(teacher, tasks: int) -> list[int]:
    """Teachers per task of the loaded `teacher`: an ensemble's members; one for a single model (a `teacher:
    previous` stage's), which gives one row of logits."""
    return [len(m) for m in teacher.members] if isinstance(teacher, Ensemble) else [1] * tasks


def _problem(task: str) -> MultiTaskProblem | None:
    if not task.startswith(PREFIX):
        return None
    return MultiTaskProblem([t for t in task.removeprefix(PREFIX).split(",") if t])


KINDS.register("multitask")(Kind(_problem, f"{PREFIX}TASK,TASK..."))

"""The models, loss and batch order of multi-task distillation (kdnlp.tasks.multitask.problem).

Every row carries its task's index (`task_ids`); a model emits one row of numbers per example whose first
`labels` entries are its task's scores. Batches may mix tasks (evaluation, the teacher cache) although training
batches come from one task each (`TaskBatches`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from kdnlp.core.errors import KdnlpError
from kdnlp.losses.composite import CompositeLoss, StudentTerms

#: The column (and model input) holding each row's task index.
TASK = "task_ids"


class MultiTaskModel(BertPreTrainedModel):
    """One BERT encoder (pooler included) shared by all tasks, and one linear head per task on its pooled output,
    as BertForSequenceClassification has one: `export` gives each task's part as such a classifier. The config is
    the encoder's with `tasks` (task names in task-index order) and `task_labels` ({task: label names}; a JSON
    object, whose keys config.json sorts)."""

    config_class = BertConfig

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.tasks = list(config.tasks)
        self.bert = BertModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(config.hidden_size, len(config.task_labels[t])) for t in self.tasks})
        self.width = max(len(n) for n in config.task_labels.values())
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, task_ids=None, **kwargs):
        out = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True,
                        **kwargs)
        pooled = self.dropout(out.pooler_output)
        logits = pooled.new_zeros(len(pooled), self.width)
        for i, task in enumerate(self.tasks):
            rows = task_ids == i
            if rows.any():
                scores = self.heads[task](pooled[rows])
                logits[rows, : scores.shape[-1]] = scores.to(logits.dtype)
        return SequenceClassifierOutput(logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)

    def export(self, task: str) -> BertForSequenceClassification:
        """Task `task` alone: a plain classifier holding the shared encoder and the task's head."""
        labels = self.config.task_labels[task]
        config = BertConfig.from_dict({k: v for k, v in self.config.to_dict().items() if k not in ("tasks", "task_labels")})
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {n: i for i, n in enumerate(labels)}
        config.problem_type = "regression" if len(labels) == 1 else "single_label_classification"
        config.architectures = ["BertForSequenceClassification"]
        model = BertForSequenceClassification(config).to(self.dtype)
        model.bert.load_state_dict(self.bert.state_dict())
        model.classifier.load_state_dict(self.heads[task].state_dict())
        return model.eval()

    @classmethod
    def from_student(cls, student: BertForSequenceClassification, heads: dict[str, nn.Linear]) -> "MultiTaskModel":
        """A multi-task model with `student`'s encoder and the given heads (copied), one per task."""
        if not isinstance(student, BertForSequenceClassification):
            raise KdnlpError(f"multi-task students are BERT models; the teacher is a {type(student).__name__}")
        config = BertConfig.from_dict(student.config.to_dict())
        config.tasks = list(heads)
        config.task_labels = {t: [str(h.config.id2label[i]) for i in range(h.config.num_labels)]
                              for t, h in heads.items()}
        config.architectures = [cls.__name__]
        model = cls(config).to(student.dtype)
        model.bert.load_state_dict(student.bert.state_dict())
        for t, h in heads.items():
            model.heads[t].load_state_dict(h.classifier.state_dict())
        return model


class Ensemble(nn.Module):
    """The teachers of every task as one frozen module: each row gets its task's teachers' logits side by side
    (teacher j in columns j*width ... j*width + labels), zeros elsewhere, so the cache keeps every distribution."""

    def __init__(self, members: list[list[nn.Module]]):
        super().__init__()
        self.members = nn.ModuleList(nn.ModuleList(m) for m in members)
        self.width = max(m[0].config.num_labels for m in members)
        self.slots = max(len(m) for m in members)
        self.config = members[0][0].config  # attention implementation and name, for the teacher cache

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, task_ids=None, **outputs):
        """`outputs` (output_hidden_states, ...) are ignored: an ensemble gives logits only."""
        out = torch.zeros(len(input_ids), self.slots * self.width, device=input_ids.device)
        for i, models in enumerate(self.members):
            rows = task_ids == i
            if not rows.any():
                continue
            kw = {"attention_mask": attention_mask[rows]}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids[rows]
            for j, model in enumerate(models):
                logits = model(input_ids[rows], **kw).logits.float()
                out[rows, j * self.width : j * self.width + logits.shape[-1]] = logits
        return SequenceClassifierOutput(logits=out)


def soft_targets(teacher_logits: torch.Tensor, teachers: int, width: int, labels: int, combine: str,
                 temperature: float = 1.0) -> torch.Tensor:
    """One task's ensemble target from `Ensemble` rows, in logit form at `temperature` T: for `probs` the mean of
    the teachers' tempered probabilities p = mean_k softmax(z_k / T), as T * log p (so softmax(target / T) is p),
    for `logits` their mean logits; for regression (one label) the mean prediction."""
    members = teacher_logits[:, : teachers * width].reshape(len(teacher_logits), teachers, width)[..., :labels]
    if labels == 1 or combine == "logits":
        return members.float().mean(1)
    return temperature * torch.log((members.float() / temperature).softmax(-1).mean(1).clamp_min(1e-12))


class MultiTaskLoss(StudentTerms, nn.Module):
    """Per task the stage's terms (built for that task's outputs) on that task's rows of a batch: each row's
    scores cut to its task's labels, the teacher's rows turned into the ensemble's target (`soft_targets`). The
    total is the mean over rows; terms are reported as `<task>/<term>`. With `anneal`, the target is
    lam * gold + (1 - lam) * ensemble (classes: one-hot gold, never tempered, and the ensemble's probabilities at
    the terms' temperature), lam = `progress`."""

    def __init__(self, per_task: dict[str, CompositeLoss], teachers: list[int], labels: list[int], width: int,
                 combine: str, anneal: bool):
        super().__init__()
        self.per_task = nn.ModuleDict(per_task)
        self.teachers, self.labels, self.width = teachers, labels, width
        self.combine, self.anneal = combine, anneal
        self.progress = 0.0
        temperatures = {t.config.temperature for c in per_task.values() for t in c.terms.values()
                        if t.uses_teacher and hasattr(t.config, "temperature")}
        if len(temperatures) > 1:
            raise KdnlpError(f"multi-task terms must share one temperature (the ensemble's target is tempered once); "
                             f"got {', '.join(map(str, sorted(temperatures)))}")
        self.temperature = temperatures.pop() if temperatures else 1.0

    @property
    def terms(self) -> dict[str, nn.Module]:
        return {f"{t}/{n}": term for t, c in self.per_task.items() for n, term in c.terms.items()}

    def formula(self) -> str:
        first = next(iter(self.per_task.values()))
        mix = f"; target {self.combine}-mean of the teachers" + (", annealed from gold" if self.anneal else "")
        return f"per task: {first.formula()}{mix}"

    def _target(self, teacher_logits: torch.Tensor, gold: torch.Tensor, i: int) -> torch.Tensor:
        t = self.temperature
        target = soft_targets(teacher_logits, self.teachers[i], self.width, self.labels[i], self.combine, t)
        if not self.anneal:
            return target
        lam = min(max(self.progress, 0.0), 1.0)
        if self.labels[i] == 1:
            return lam * gold.float().view(-1, 1) + (1 - lam) * target
        onehot = nn.functional.one_hot(gold.long(), self.labels[i]).float()
        return t * torch.log((lam * onehot + (1 - lam) * (target / t).softmax(-1)).clamp_min(1e-12))

    def forward(self, student_out, teacher_out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ids = batch[TASK]
        total = 0.0
        values: dict[str, torch.Tensor] = {}
        for i, (task, loss) in enumerate(self.per_task.items()):
            rows = ids == i
            if not rows.any():
                continue
            part = {k: v[rows] if torch.is_tensor(v) and v.shape[:1] == ids.shape else v for k, v in batch.items()}
            student = type(student_out)(logits=student_out.logits[rows, : self.labels[i]])
            teacher = None
            if teacher_out is not None:
                teacher = type(teacher_out)(logits=self._target(teacher_out.logits[rows], part["labels"], i))
            value, terms = loss(student, teacher, part)
            total = total + value * rows.sum() / len(ids)
            values.update({f"{task}/{name}": v for name, v in terms.items()})
        return total, values


class TaskBatches(torch.utils.data.Sampler):
    """Mini-batches of one task each, reshuffled every epoch (`set_epoch`, which the Trainer calls). An epoch has
    as many batches as the tasks' rows fill; `proportional` shuffles them all together, `temperature` draws each
    batch's task with probability proportional to |D|^tau, `round_robin` takes the tasks in turn; under the last
    two a task whose batches run out starts them over, reshuffled.

    Under several `processes` a batch has `batch_size` rows per process and is yielded as its parts, one per
    process in rank order (sizes within a row of each other), which Accelerate's BatchSamplerShard deals out in
    turn, part i to process i. It does so for parts of any size because this sampler has no `batch_size`
    attribute: with one, it would drop each round whose last part is short and fill the last round with rows of
    any task. The processes thus see each row once per epoch, in the batches of one process with all their rows.
    A task's last batch takes rows from the one before if it is too short to give every process a row."""

    def __init__(self, task_ids, names: list[str], batch_size: int, sampling: str, tau: float, seed: int,
                 processes: int = 1):
        ids = np.asarray(task_ids)
        self.rows, self.sizes = [], []
        size = batch_size * processes
        for t, name in enumerate(names):
            rows = np.flatnonzero(ids == t)
            if not len(rows):
                continue
            sizes = [size] * (len(rows) // size) + ([len(rows) % size] if len(rows) % size else [])
            if len(sizes) > 1 and sizes[-1] < processes:
                sizes[-2:] = [sizes[-2] + sizes[-1] - processes, processes]
            if min(sizes) < processes:
                raise KdnlpError(f"task {name}: its {len(rows)} training rows cannot give each of {processes} "
                                 f"processes a row of every batch at per_device_train_batch_size {batch_size}; valid: "
                                 f"at most {len(rows)} processes, with a batch size of 2 or more")
            self.rows.append(rows)
            self.sizes.append(sizes)
        self.processes, self.sampling, self.tau, self.seed = processes, sampling, tau, seed
        self.epoch = 0
        self.count = sum(len(s) for s in self.sizes)  # batches per epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count * self.processes

    def _batches(self, rng, t: int) -> list[list[list[int]]]:
        order = rng.permutation(self.rows[t])
        return [[p.tolist() for p in np.array_split(b, self.processes)]
                for b in np.split(order, np.cumsum(self.sizes[t])[:-1])]

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.sampling == "proportional":
            batches = [b for t in range(len(self.rows)) for b in self._batches(rng, t)]
            for i in rng.permutation(len(batches)):
                yield from batches[i]
            return
        if self.sampling == "temperature":
            p = np.asarray([len(r) for r in self.rows], dtype=float) ** self.tau
            order = rng.choice(len(self.rows), size=self.count, p=p / p.sum())
        else:
            order = np.arange(self.count) % len(self.rows)
        queues: list[list[list[list[int]]]] = [[] for _ in self.rows]
        for t in order:
            if not queues[t]:
                queues[t] = self._batches(rng, t)
            yield from queues[t].pop(0)

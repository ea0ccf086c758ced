"""The kinds of task: `get_problem` turns a task name and its options into the one that answers it. The one
module that knows every kind: the layers above ask it, never a kind."""
from __future__ import annotations

from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.base import Problem
from kdnlp.tasks.glue.data import TASKS, get_task
from kdnlp.tasks.glue.problem import GlueProblem
from kdnlp.tasks.multitask.problem import PREFIX, MultiTaskProblem, part_folder, parts
from kdnlp.tasks.seq2seq.problem import METRICS, Seq2SeqProblem

#: The options of `get_problem` beside the task name (a seq2seq task's), as keywords.
TASK_OPTIONS = ("source", "target", "num_beams", "max_new_tokens")
#: The models a run folder holds beside its student (a multi-task run's), by task: `run_parts(folder)`, None for a
#: run of one model; and where task `task`'s lies in such a folder: `part_folder(task)`.
run_parts = parts
__all__ = ["TASK_OPTIONS", "get_problem", "joint_task", "part_folder", "run_parts", "task_names"]


def task_names() -> list[str]:
    return [*TASKS, *METRICS]


def joint_task(tasks: str) -> str:
    """The task key of the comma-separated GLUE tasks `tasks` learned by one student."""
    return PREFIX + tasks


def get_problem(task: str, source: str | None = None, target: str | None = None, num_beams: int | None = None,
                max_new_tokens: int | None = None) -> Problem:
    """The problem of `task`: a GLUE task key, `tasks:` and GLUE task keys (`tasks:sst2,mrpc`: several tasks
    learned by one student), or `translation` / `summarization` with the source and target (languages, file
    suffixes or columns) and the decoding settings of evaluation."""
    options = dict(zip(TASK_OPTIONS, (source, target, num_beams, max_new_tokens)))
    if task in METRICS:
        return Seq2SeqProblem(task, **{k: v for k, v in options.items() if v is not None})
    given = [k for k, v in options.items() if v is not None]
    if given:
        raise KdnlpError(f"--{given[0].replace('_', '-')} is for seq2seq tasks ({', '.join(METRICS)}), not {task}")
    if task.startswith(PREFIX):
        return MultiTaskProblem([t for t in task.removeprefix(PREFIX).split(",") if t])
    try:
        glue_task = get_task(task)
    except KdnlpError:
        raise KdnlpError(f"unknown task '{task}'; valid: {', '.join(task_names())}, or {PREFIX}TASK,TASK...") from None
    return GlueProblem(glue_task)

"""The kinds of task: `get_problem` turns a task name and its options into the one that answers it."""
from __future__ import annotations

from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.base import Problem
from kdnlp.tasks.glue.data import TASKS, get_task
from kdnlp.tasks.glue.problem import GlueProblem
from kdnlp.tasks.multitask.problem import PREFIX, MultiTaskProblem
from kdnlp.tasks.seq2seq.problem import METRICS, Seq2SeqProblem

def task_names() -> list[str]:
    return [*TASKS, *METRICS]


def get_problem(task: str, source: str | None = None, target: str | None = None, num_beams: int | None = None,
                max_new_tokens: int | None = None) -> Problem:
    """The problem of `task`: a GLUE task key, `tasks:` and GLUE task keys (`tasks:sst2,mrpc`: several tasks
    learned by one student), or `translation` / `summarization` with the source and target (languages, file
    suffixes or columns) and the decoding settings of evaluation."""
    options = {"source": source, "target": target, "num_beams": num_beams, "max_new_tokens": max_new_tokens}
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

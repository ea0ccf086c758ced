"""The kinds of task: `get_problem` turns a task name and its options into the problem of the kind that answers it.
The one module that imports every kind (each registers itself in kdnlp.tasks.base.KINDS): the layers above ask it,
never a kind. A new kind is a package with its problem module, and one line here."""
from __future__ import annotations

from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.base import KINDS, Problem
from kdnlp.tasks.glue import problem as _glue  # noqa: F401  (each import registers a kind)
from kdnlp.tasks.multitask import problem as _multitask
from kdnlp.tasks.seq2seq import problem as _seq2seq  # noqa: F401

#: The options of `get_problem` beside the task name, as keywords (each kind takes some of them).
TASK_OPTIONS = tuple(dict.fromkeys(o for name in KINDS.names() for o in KINDS.get(name).options))
#: The models a run folder holds beside its student (a multi-task run's), by task: `run_parts(folder)`, None for a
#: run of one model; and where task `task`'s lies in such a folder: `part_folder(task)`.
run_parts = _multitask.parts
part_folder = _multitask.part_folder
__all__ = ["TASK_OPTIONS", "get_problem", "joint_task", "part_folder", "run_parts"]


def joint_task(tasks: str) -> str:
    """The task key of the comma-separated GLUE tasks `tasks` learned by one student."""
    return _multitask.PREFIX + tasks


def get_problem(task: str, **options) -> Problem:
    """The problem of `task`: a GLUE task key, `tasks:` and GLUE task keys (`tasks:sst2,mrpc`: several tasks
    learned by one student), or `translation` / `summarization` with the source and target (languages, file
    suffixes or columns) and the decoding settings of evaluation (`options`, TASK_OPTIONS; None: not given)."""
    given = {k: v for k, v in options.items() if v is not None}
    unknown = [k for k in given if k not in TASK_OPTIONS]
    if unknown:
        raise KdnlpError(f"unknown task option '{unknown[0]}'; valid: {', '.join(TASK_OPTIONS)}")
    for name in KINDS.names():
        kind = KINDS.get(name)
        problem = kind.make(task, **{k: v for k, v in given.items() if k in kind.options})
        if problem is None:
            continue
        refused = [k for k in given if k not in kind.options]
        if refused:
            takers = [n for n in KINDS.names() if refused[0] in KINDS.get(n).options]
            raise KdnlpError(f"--{refused[0].replace('_', '-')} is for {' or '.join(takers)} tasks "
                             f"({'; '.join(KINDS.get(n).keys for n in takers)}), not {task}")
        return problem
    raise KdnlpError(f"unknown task '{task}'; valid: {', '.join(KINDS.get(n).keys for n in KINDS.names())}")

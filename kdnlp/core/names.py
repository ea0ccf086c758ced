"""Column and input names that several layers share (the data a task makes, the trainer and the teacher cache read),
and the names of the Trainer's metrics."""
from __future__ import annotations

#: Prefix of the columns holding the teacher's own tokenisation, when it reads text differently from the student.
TEACHER_PREFIX = "teacher_"


def unprefixed(evaluated: dict[str, float]) -> dict[str, float]:
    """The metrics of a Trainer's evaluation without the `eval_` it puts before each name."""
    return {k.removeprefix("eval_"): v for k, v in evaluated.items()}

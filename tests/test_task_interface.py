"""The task interface (kdnlp.tasks): a small core every kind of task implements, and optional capabilities
(kdnlp.tasks.capabilities) that only some kinds have and their callers detect."""
from __future__ import annotations

import pytest

from kdnlp.tasks import capabilities
from kdnlp.tasks.base import Problem
from kdnlp.tasks.kinds import get_problem

#: What every kind implements itself: data, collator, model class, teacher checks, evaluation, model card.
ABSTRACT = {"metric_names", "load", "encode", "collator", "check_teacher", "load_model", "score", "task_score", "speed",
            "card"}
#: What every kind has, with a default: name and output kind, display and caching, evaluation during training.
DEFAULTS = {"name", "outputs", "display_scale", "caches_logits", "training_defaults", "num_labels", "compute_metrics",
            "final_metrics", "summary"}
CAPABILITIES = [c for c in vars(capabilities).values() if isinstance(c, type) and c.__module__ == capabilities.__name__]
#: The capabilities of each kind of task.
KINDS = {
    "sst2": {"GeneratedInputs", "MajorityClass"},
    "stsb": {"GeneratedInputs", "MajorityClass"},
    "translation": {"TeacherTargets", "TargetInputs", "ModelChecks"},
    "tasks:sst2,mrpc": {"Configured", "BatchOrder", "TeacherFolder", "OwnStudent", "OwnLoss", "Parts"},
}


def members(cls) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")} | set(getattr(cls, "__annotations__", {}))


def test_the_core_problem_is_small():
    assert set(Problem.__abstractmethods__) == ABSTRACT
    assert members(Problem) == ABSTRACT | DEFAULTS


def test_no_capability_is_part_of_the_core():
    for capability in CAPABILITIES:
        assert not members(capability) & members(Problem), capability.__name__


@pytest.mark.parametrize("task", KINDS)
def test_each_kind_has_its_capabilities(task):
    problem = get_problem(task)
    assert {c.__name__ for c in CAPABILITIES if isinstance(problem, c)} == KINDS[task]


def test_generated_inputs_frame_classification_only():
    assert get_problem("mrpc").segments == 2 and get_problem("sst2").segments == 1
    assert get_problem("stsb").segments is None  # a regression task: generated inputs cannot teach it


def test_a_kind_is_found_by_its_registry_entry_alone(monkeypatch):
    """get_problem asks every registered kind in turn; a new kind needs no change to it, and an option is refused
    by a kind that does not take it, naming the kinds that do."""
    from kdnlp.core.errors import KdnlpError
    from kdnlp.tasks.base import KINDS, Kind
    from kdnlp.tasks.glue.problem import GlueProblem
    from kdnlp.tasks.glue.data import get_task

    assert KINDS.names() == ["glue", "multitask", "seq2seq"]
    monkeypatch.setitem(KINDS._items, "echo", Kind(lambda task: GlueProblem(get_task("rte")) if task == "echo" else None,
                                                   "echo"))
    assert get_problem("echo").name == "rte"
    with pytest.raises(KdnlpError, match="unknown task 'nope'; valid: .*echo, .*translation"):
        get_problem("nope")
    with pytest.raises(KdnlpError, match=r"--num-beams is for seq2seq tasks \(translation, summarization\), not echo"):
        get_problem("echo", num_beams=2)

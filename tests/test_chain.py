"""Teacher-assistant chains: each stage's student is a whole model folder, the next stage learns from it (the
teacher-logit cache keys on it), a run stopped between stages ends with the same student, bad links fail first."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from kdnlp.core import hashing
from kdnlp.pipeline.runner import run_recipe
from kdnlp.core.errors import KdnlpError
from kdnlp.pipeline.recipe import parse
from test_scale import flat

CHAIN = {
    "name": "chain", "description": "4 -> 3 -> 2 layers", "student": {"layers": 3}, "max_length": 32,
    "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 1e-3,
                 "eval_strategy": "no", "save_strategy": "no"},
    "stages": [
        {"name": "assistant", "losses": [{"loss": "hinton"}, {"loss": "ce"}]},
        {"name": "final", "teacher": "previous", "student": {"layers": 2}, "losses": [{"loss": "hinton"}]},
    ],
}


def chain(**final):
    return parse({**CHAIN, "stages": [CHAIN["stages"][0], {**CHAIN["stages"][1], **final}]})


def distill(rec, teacher, glue_dir, out, **kw):
    return run_recipe(rec, "sst2", out, teacher=str(teacher), data_dir=str(glue_dir), max_train_samples=24,
                      max_eval_samples=8, **kw)


def load(path):
    return AutoModelForSequenceClassification.from_pretrained(path)


def test_each_link_is_a_model_folder_and_the_next_stage_learns_from_it(tiny_teacher_dir, glue_dir, tmp_path):
    out = tmp_path / "run"
    distill(chain(), tiny_teacher_dir, glue_dir, out)
    assistant, final = load(out / "stages" / "assistant" / "model"), load(out / "stages" / "final" / "model")
    assert (assistant.config.num_hidden_layers, final.config.num_hidden_layers) == (3, 2)
    assert torch.equal(flat(load(out / "model")), flat(final))
    info = json.loads((out / "run.json").read_text())
    assert info["params"]["student"] == sum(p.numel() for p in final.parameters())
    record = info["chain"]["final"]
    assert record["teacher"] == "stages/assistant/model" and record["student_layers"] == [1, 3]
    assert record["teacher_digest"] == hashing.weights_digest(assistant)  # the assistant taught the last stage
    taught = [json.loads(p.read_text())["teacher"] for p in hashing.cache_dir().glob("*.json")]
    assert str(tmp_path / "run.partial" / "stages" / "assistant" / "model") in taught  # its logits were cached


def test_a_chain_stopped_after_its_first_stage_ends_with_the_same_student(tiny_teacher_dir, glue_dir, tmp_path):
    distill(chain(), tiny_teacher_dir, glue_dir, tmp_path / "whole")
    first = distill(chain(), tiny_teacher_dir, glue_dir, tmp_path / "split", stage="assistant")
    assert not first["finished"]
    distill(chain(), tiny_teacher_dir, glue_dir, tmp_path / "split")
    assert torch.equal(flat(load(tmp_path / "split" / "model")), flat(load(tmp_path / "whole" / "model")))


@pytest.mark.parametrize("final, message", [
    ({"student": None}, "stage 'final' learns from the previous stage's student .* has no 'student' spec"),
    ({"teacher": "same"}, "stage 'final' has a 'student' spec, which only a stage with 'teacher: previous' builds"),
    ({"teacher": "assistant"}, "bad value 'assistant' for stages.final.teacher; valid: same, previous"),
    ({"student": {"layers": 2, "init": "copy", "hidden_size": 16}}, "stages.final.student: a student of another width"),
])
def test_bad_links_name_the_value(final, message):
    with pytest.raises(KdnlpError, match=message):
        chain(**final)


def test_a_first_stage_has_no_previous_student():
    with pytest.raises(KdnlpError, match="stage 'assistant' is the first stage: there is no previous student"):
        parse({**CHAIN, "stages": [{**CHAIN["stages"][0], "teacher": "previous", "student": {"layers": 2}}]})


def test_a_student_its_teacher_cannot_give_fails_before_training(tiny_teacher_dir, glue_dir, tmp_path):
    with pytest.raises(KdnlpError, match="stages.final.student: bad layers count 5: must be between 1 and the teacher's 3"):
        distill(chain(student={"layers": 5}), tiny_teacher_dir, glue_dir, tmp_path / "bad")
    assert not (tmp_path / "bad.partial" / "stages").exists()


def test_a_chain_resumed_inside_its_second_link_ends_with_the_same_student(tiny_teacher_dir, glue_dir, tmp_path,
                                                                           capfd):
    """A finished run turned back into one interrupted after the final link's first checkpoint (its later checkpoints,
    its student and the run's outputs removed): --resume rebuilds the link's student from the assistant's folder,
    continues from the checkpoint, and ends with the uninterrupted student."""
    saving = {"save_strategy": "steps", "save_steps": 1, "save_total_limit": 5}
    rec = parse({**CHAIN, "training": {**CHAIN["training"], **saving}})
    distill(rec, tiny_teacher_dir, glue_dir, tmp_path / "whole")
    work = tmp_path / "cut.partial"
    shutil.copytree(tmp_path / "whole", work)
    final = work / "stages" / "final"
    for path in [work / "model", final / "model", *final.glob("checkpoint-*")]:
        if path.name != "checkpoint-1":
            shutil.rmtree(path)
    for path in (work / "metrics.json", work / "run.json", final / "done.json"):
        path.unlink()
    capfd.readouterr()
    assert distill(rec, tiny_teacher_dir, glue_dir, tmp_path / "cut", resume=True)["finished"]
    log = capfd.readouterr().err
    assert "stage 'assistant' finished earlier" in log and "stage 'final': resuming from" in log
    assert "checkpoint-1" in log
    assert torch.equal(flat(load(tmp_path / "cut" / "model")), flat(load(tmp_path / "whole" / "model")))

"""`kdnlp.pipeline.distill.distill`, what `kdnlp distill` calls: which of a run, a rerun and seeds it does, and the
combinations of options it refuses before anything runs."""
from __future__ import annotations

import pytest

from kdnlp.core.errors import KdnlpError
from kdnlp.pipeline import distill as distilling


@pytest.mark.parametrize("call, message", [
    (dict(recipe=None, task="sst2"), "pass --recipe"),
    (dict(recipe="hinton", task=None), "pass --task"),
    (dict(recipe="hinton", task="sst2", control=True), "--control runs the no-teacher twin"),
    (dict(recipe="hinton", task="sst2", seeds=[1], stage="distill"), "it does not take --stage"),
    (dict(recipe=None, task="sst2", seeds=[1], from_run="runs/x"), "it does not take --from"),
    (dict(recipe="hinton", task="sst2", from_run="runs/x"), "--from reruns the run's own recipe"),
])
def test_refused_combinations(tmp_path, call, message):
    with pytest.raises(KdnlpError, match=message):
        distilling.distill(output_dir=tmp_path / "out", **call)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("call, chosen", [
    (dict(recipe="hinton", task="sst2"), "run_recipe"),
    (dict(recipe=None, task=None, from_run="runs/x"), "rerun"),
    (dict(recipe="hinton", task="sst2", seeds=[1, 2], control=True), "run_seeds"),
])
def test_each_request_goes_to_its_function(tmp_path, monkeypatch, call, chosen):
    calls = []
    for module, name in ((distilling.runner, "run_recipe"), (distilling.runner, "rerun"),
                         (distilling.seeded, "run_seeds")):
        monkeypatch.setattr(module, name, lambda *a, _name=name, **k: calls.append(_name) or
                            {"summary": "done", "task": "sst2", "recipe": "hinton", "control_recipe": None,
                             "scale": 100.0, "runs": {}, "score": {}})
    monkeypatch.setattr(distilling.seeded, "format_comparisons", lambda comparisons: "table")
    result = distilling.distill(output_dir=tmp_path / "out", **call)
    assert calls == [chosen]
    assert result["summary"] == ("table" if chosen == "run_seeds" else "done")

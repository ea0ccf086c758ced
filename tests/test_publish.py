"""`kdnlp push` (card, uploads through a recording fake, token safety, failures), `distill --from`, `--report-to
tensorboard`, and a newcomer's `make demo` without local data."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT
from test_cli import run_main
from kdnlp.tools import hub
from kdnlp.core.errors import KdnlpError

FAKE_TOKEN = "hf_kdnlpFAKEtoken0123456789abcdefXYZ"
STUDENT = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]


class RecordingHub:
    """Stands in for huggingface_hub.HfApi: records each call (and what the staged folder holds at upload)."""

    def __init__(self, token, fail: bool = False, existing: str | None = None):
        """`existing`: the visibility ("public" or "private") of a repository already on the Hub."""
        self.token, self.fail, self.calls, self.existing = token, fail, [], existing

    def _record(self, name, **kwargs):
        if self.fail:
            raise ConnectionError(f"cannot reach huggingface.co (headers: Authorization: Bearer {self.token})")
        self.calls.append((name, kwargs))

    def create_repo(self, repo_id, **kwargs):
        self._record("create_repo", repo_id=repo_id, **kwargs)
        if self.existing is None:  # created as asked; as on the Hub, an existing repository keeps its visibility
            self.existing = "private" if kwargs["private"] else "public"
        return f"https://huggingface.co/{repo_id}"

    def repo_info(self, repo_id, **kwargs):
        return SimpleNamespace(id=repo_id, private=self.existing == "private")

    def create_branch(self, repo_id, **kwargs):
        self._record("create_branch", repo_id=repo_id, **kwargs)

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        self._record("upload_folder", **kwargs, files=sorted(p.name for p in folder.iterdir()),
                     card=(folder / "README.md").read_text())


def folder_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        digest.update(str(p.relative_to(path)).encode())
        if p.is_file():
            digest.update(p.read_bytes())
    return digest.hexdigest()


def cli(capfd, *args) -> tuple[int, str]:
    """Runs `kdnlp ARGS` in this process (so the Hub seam can be replaced); returns the exit code and all output,
    as the file descriptors saw it."""
    code = run_main(*args)
    out = capfd.readouterr()
    return code, out.out + out.err


@pytest.fixture()
def run(tiny_runs, tmp_path) -> Path:
    """A copy of a finished tiny run (the tests may not change the shared one)."""
    return Path(shutil.copytree(tiny_runs["seed1"], tmp_path / "run"))


def parse_card(text: str):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    card = ModelCard(text)
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    return card, name, results


def test_card_metadata_parses_and_carries_the_metrics(run):
    card, name, results = parse_card(str(hub.model_card(run, "me/tiny-hinton")))
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert card.data.license == "apache-2.0" and {"distillation", "kdnlp"} <= set(card.data.tags)
    assert card.data.datasets == ["nyu-mll/glue"] and name == "tiny-hinton"
    assert [(r.task_type, r.dataset_type, r.dataset_config, r.dataset_split, r.metric_type) for r in results] == \
        [("text-classification", "nyu-mll/glue", "sst2", "validation", "accuracy")]
    assert results[0].metric_value == pytest.approx(metrics["accuracy"])
    body = card.text
    formula = json.loads((run / "run.json").read_text())["losses"]["distill"]["formula"]
    assert formula == "0.5 * hinton(temperature=2.0) + 0.5 * ce" and f"`loss = {formula}`" in body
    assert "Temperature: 2" in body and "Hinton, Vinyals, Dean" in body and "Parameters: student 1.0M" in body
    assert "built from the teacher's layers [1, 2]" in body and "Speed was not measured" in body


def test_card_teacher_chain_license_base_model_and_speed(run, tiny_runs, tmp_path):
    from kdnlp.tools.evaluation import evaluate_models

    teacher = tmp_path / "teacher-run"
    shutil.copytree(tiny_runs["teacher"], teacher / "model")
    (teacher / "run.json").write_text(json.dumps({"task": "sst2", "student": "minilm-l6", "teacher": None}))
    (teacher / "metrics.json").write_text(json.dumps({"metrics": {"accuracy": 0.8}}))
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "teacher": str(teacher)}))
    result = evaluate_models([str(teacher), str(run)], "sst2", data_dir=str(tiny_runs["glue"]), speed=True)
    (tmp_path / "eval.json").write_text(json.dumps(result))
    speed = hub.speed_from_eval(tmp_path / "eval.json", run)
    card, _, _ = parse_card(str(hub.model_card(run, "me/x", speed=speed)))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.license == "apache-2.0"  # read from MiniLM's own card at the end of the chain
    student = json.loads((run / "metrics.json").read_text())["metrics"]["accuracy"]
    assert f"| accuracy | {student:.4f} | 0.8000 | {100 * student / 0.8:.1f}% |" in card.text
    rows = {r["model"]: r for r in result["models"]}
    b1 = rows[str(teacher)]["latency_ms_b1"] / rows[str(run)]["latency_ms_b1"]
    assert f"Speedup: {b1:.2f}x at batch 1" in card.text and "kdnlp eval --speed" in card.text
    assert hub.model_card(run, "me/x", license="mit").data.license == "mit"
    with pytest.raises(KdnlpError, match="has no row for"):
        hub.speed_from_eval(tmp_path / "eval.json", tiny_runs["seed2"])


def test_card_base_model_is_the_students_origin(run, tiny_runs, tmp_path):
    """With --student the weights start from the student, not from the teacher's layers: base_model is where the
    student comes from (the alias's Hub id), and the teacher line names no origin."""
    teacher = tmp_path / "teacher-run"
    shutil.copytree(tiny_runs["teacher"], teacher / "model")
    (teacher / "run.json").write_text(json.dumps({"task": "sst2", "student": "prajjwal1/bert-tiny", "teacher": None}))
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "teacher": str(teacher), "student": "minilm-l6"}))
    card = hub.model_card(run, "me/x")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "- Student: `minilm-l6` (from `sentence-transformers/all-MiniLM-L6-v2`)" in card.text
    assert f"- Teacher: `{teacher}`\n" in card.text
    (run / "run.json").write_text(json.dumps({**info, "teacher": str(teacher)}))  # no --student: the teacher's
    card = hub.model_card(run, "me/x")
    assert card.data.base_model == "prajjwal1/bert-tiny" and f"- Teacher: `{teacher}` (from `prajjwal1/bert-tiny`)" in card.text


def test_seq2seq_card_names_the_pseudo_labels(tmp_path):
    from kdnlp.pipeline import recipe

    run = tmp_path / "mt"
    run.mkdir()
    rec = recipe.load("seqkd").to_dict()
    (run / "settings.json").write_text(json.dumps({"recipe": rec, "task": "translation", "data_dir": "data/multi30k"}))
    (run / "recipe.yaml").write_text(json.dumps(rec))  # JSON is YAML
    (run / "run.json").write_text(json.dumps({"task": "translation", "recipe": "seqkd", "teacher": "runs/mt-teacher",
                                              "params": {"student": 2e6, "teacher": 4e6},
                                              "train_examples": {"task": 29000}}))
    (run / "metrics.json").write_text(json.dumps({"examples": 1014, "metrics": {"loss": 2.1, "bleu": 31.5, "chrf": 58.25, "runtime": 9.0}}))
    card, _, results = parse_card(str(hub.model_card(run, "me/mt")))
    assert [(r.task_type, r.dataset_type, r.metric_type, r.metric_value) for r in results] == \
        [("translation", "multi30k", "bleu", 31.5), ("translation", "multi30k", "chrf", 58.25)]
    assert "pseudo-labels: the teacher's decoded outputs on the train sources (num_beams=5" in card.text
    assert "targets: teacher" in card.text and "Kim, Rush. Sequence-Level Knowledge Distillation" in card.text
    assert card.data.pipeline_tag == "text2text-generation" and card.data.license == "apache-2.0"


def test_push_uploads_only_the_student_and_its_card(run):
    fakes = []

    def factory(token):
        fakes.append(RecordingHub(token))
        return fakes[-1]

    before = folder_hash(run)
    result = hub.push_run(run, "me/tiny", api_factory=factory)
    (create, create_kw), (upload, upload_kw) = fakes[0].calls
    assert create == "create_repo" and create_kw["repo_id"] == "me/tiny" and create_kw["private"] is True
    assert upload == "upload_folder" and upload_kw["repo_id"] == "me/tiny" and upload_kw["revision"] is None
    assert upload_kw["files"] == sorted([*STUDENT, "README.md"]) == sorted(result["files"])
    assert not Path(upload_kw["folder_path"]).exists()  # staged aside, then removed
    assert parse_card(upload_kw["card"])[0].data.license == "apache-2.0"
    assert folder_hash(run) == before and not (run / "README.md").exists()
    hub.push_run(run, "me/tiny", private=False, revision="v1", api_factory=factory)
    calls = fakes[1].calls
    assert [c[0] for c in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert calls[0][1]["private"] is False and calls[1][1]["branch"] == "v1" and calls[2][1]["revision"] == "v1"


def test_an_existing_public_repo_needs_public(run, monkeypatch, capfd):
    """The Hub leaves an existing repository's visibility as it is: a private push into a public repository is
    refused before anything goes up, --public uploads into it, and a private repository is said to stay private."""
    fakes = []
    monkeypatch.setattr(hub, "hub_api", lambda token: fakes.append(RecordingHub(token, existing="public")) or fakes[-1])
    code, log = cli(capfd, "push", run, "--repo-id", "me/open")
    errors = [line for line in log.splitlines() if line.startswith("kdnlp: error:")]
    assert code == 2 and len(errors) == 1 and "me/open already exists and is public: pass --public" in errors[0], log
    assert [c[0] for c in fakes[0].calls] == ["create_repo"] and "Traceback" not in log and "pushing" not in log
    code, log = cli(capfd, "push", run, "--repo-id", "me/open", "--public")
    assert code == 0 and [c[0] for c in fakes[1].calls] == ["create_repo", "upload_folder"], log
    assert "pushed 5 files to https://huggingface.co/me/open (public)" in log
    result = hub.push_run(run, "me/closed", private=False, api_factory=lambda token: RecordingHub(token, existing="private"))
    assert result["private"] is True


def test_dry_run_touches_no_network(run):
    def refuse(token):
        raise AssertionError("the Hub client was created in a dry run")

    result = hub.push_run(run, "me/tiny", dry_run=True, api_factory=refuse)
    assert result["files"] == [*STUDENT, "README.md"] and result["private"] is True
    with pytest.raises(KdnlpError, match="bad repo id 'tiny'"):
        hub.push_run(run, "tiny", dry_run=True)
    with pytest.raises(KdnlpError, match="--task is for multi-task runs; this run learned only sst2"):
        hub.push_run(run, "me/tiny", dry_run=True, task="sst2")
    with pytest.raises(KdnlpError, match="not a finished kdnlp run folder"):
        hub.push_run(run / "stages", "me/tiny", dry_run=True)


def test_token_never_written_or_printed(tiny_runs, tmp_path, monkeypatch, capfd):
    """Token from HF_TOKEN reaches the client; nothing written (run folder, TensorBoard events) or printed holds it;
    a failing client is one error line and leaves the run folder as it was."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    fakes = []
    monkeypatch.setattr(hub, "hub_api", lambda token: fakes.append(RecordingHub(token)) or fakes[-1])
    out_dir = tmp_path / "run"
    code, log = cli(capfd, "distill", "--recipe", "hinton", "--teacher", tiny_runs["teacher"], "--task",
                    "sst2", "--data-dir", tiny_runs["glue"], "-o", out_dir, "--report-to", "tensorboard",
                    "--set", "training.num_train_epochs=1", "--set", "training.logging_steps=1",
                    "--push-to-hub", "me/distilled")
    assert code == 0, log
    (_, created), (_, uploaded) = fakes.pop().calls  # --push-to-hub: pushed once the run has finished
    assert created["repo_id"] == "me/distilled" and created["private"] is True
    assert uploaded["files"] == sorted([*STUDENT, "README.md"])
    events = list((out_dir / "stages" / "distill" / "runs").rglob("events.out.tfevents.*"))
    assert events
    tags = set()
    for e in events:
        tags |= set(EventAccumulator(str(e)).Reload().Tags()["scalars"])
    assert {"train/loss/hinton", "train/loss/ce", "train/loss", "eval/accuracy"} <= tags

    code, pushed = cli(capfd, "push", out_dir, "--repo-id", "me/tiny")
    assert code == 0 and fakes[0].token == FAKE_TOKEN and "pushed 5 files" in pushed
    before = folder_hash(out_dir)
    monkeypatch.setattr(hub, "hub_api", lambda token: RecordingHub(token, fail=True))
    code, failed = cli(capfd, "push", out_dir, "--repo-id", "me/tiny")
    errors = [line for line in failed.splitlines() if line.startswith("kdnlp: error:")]
    assert code == 2 and len(errors) == 1 and "could not push to me/tiny (ConnectionError" in errors[0]
    assert "Traceback" not in failed and folder_hash(out_dir) == before
    for text in (log, pushed, failed):
        assert FAKE_TOKEN not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_the_real_client_offline_is_one_error_line(run, monkeypatch, capfd):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    before = folder_hash(run)
    code, log = cli(capfd, "push", run, "--repo-id", "me/tiny", "--public")
    errors = [line for line in log.splitlines() if line.startswith("kdnlp: error:")]
    assert code == 2 and len(errors) == 1 and "could not push to me/tiny" in errors[0], log
    assert FAKE_TOKEN not in log and folder_hash(run) == before


def test_distill_from_a_run_folder_reruns_it(tiny_runs, tmp_path, monkeypatch, capfd):
    code, log = cli(capfd, "distill", "--from", tiny_runs["seed2"], "-o", tmp_path / "again")
    assert code == 0, log
    read = lambda run, name: json.loads((run / name).read_text())  # noqa: E731
    assert read(tmp_path / "again", "settings.json") == read(tiny_runs["seed2"], "settings.json")
    again, first = (read(r, "metrics.json")["metrics"] for r in (tmp_path / "again", tiny_runs["seed2"]))
    assert (again["loss"], again["accuracy"]) == (first["loss"], first["accuracy"])  # same seed, same numbers
    code, log = cli(capfd, "distill", "--from", tmp_path, "-o", tmp_path / "x")
    assert code == 2 and "has no settings.json" in log
    code, log = cli(capfd, "distill", "--from", tiny_runs["seed2"], "--recipe", "hinton", "-o", tmp_path / "x")
    assert code == 2 and "change it with --set" in log


def test_report_to_checks_its_value_and_package(monkeypatch):
    from kdnlp.cli import options

    assert options.report_to("tensorboard") == ["training.report_to=tensorboard"]
    with pytest.raises(KdnlpError, match="bad value 'wandb' for --report-to; valid: tensorboard"):
        options.report_to("wandb")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    with pytest.raises(KdnlpError, match=r"pip install 'kdnlp\[tensorboard\]'"):
        options.report_to("tensorboard")


def make_demo_commands(glue_dir) -> tuple[list[str], str]:
    result = subprocess.run(["make", "-n", "demo", f"GLUE_DIR={glue_dir}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    return [line for line in result.stdout.splitlines() if "bin/kdnlp" in line], result.stdout


def test_make_demo_without_local_data_uses_the_hub(tmp_path):
    commands, printed = make_demo_commands(tmp_path / "nothing")
    assert len(commands) == 3 and all(line.startswith("GLUE_DIR= ") for line in commands)  # not $GLUE_DIR either
    assert "--data-dir" not in printed and "HF_HUB_OFFLINE" not in printed
    assert "nyu-mll/glue" in printed and "sentence-transformers/all-MiniLM-L6-v2" in printed
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    (tmp_path / "glue" / "SST-2" / "train.tsv").write_text("sentence\tlabel\n")
    commands, printed = make_demo_commands(tmp_path / "glue")
    assert all(line.startswith("HF_HUB_OFFLINE=1 ") and f"--data-dir {tmp_path / 'glue'}" in line for line in commands)
    assert "nyu-mll/glue" not in printed


def test_offline_without_data_or_model_says_what_to_pass(tmp_path):
    from test_cli import assert_user_error, kdnlp

    assert_user_error(kdnlp("finetune", "--model", "minilm-l6", "--task", "sst2", "-o", tmp_path / "t"),
                      "nyu-mll/glue", "pass --data-dir")
    assert_user_error(kdnlp("distill", "--recipe", "hinton", "--teacher", "someone/missing-model", "--task", "sst2",
                            "-o", tmp_path / "s"), "someone/missing-model", "pass a local model folder")

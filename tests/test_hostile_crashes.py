"""Hostile input that used to crash with a traceback: each gets one `kdnlp: error` line and exit code 2, or (a damaged
cache, a model with few positions) the command recovers. Nothing already written is lost."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from test_augment import one_thread  # noqa: F401 (a fixture: tiny models on one thread)
from test_publish import cli as run_cli
from test_scratch import PAIRS, SIZES

MT = ["--source", "en", "--target", "de"]


@pytest.fixture
def cli(monkeypatch, capfd):
    """Runs `kdnlp ARGS` in this process as the console script does; returns (exit code, output)."""
    monkeypatch.setenv("GLUE_DIR", "")
    return lambda *args: run_cli(capfd, *args)


def assert_one_line_error(result: tuple[int, str], *fragments: str) -> None:
    code, err = result
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("kdnlp: error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def tree(path: Path) -> dict[str, str]:
    """Every file under `path` with a digest of its bytes."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory, seeds_run):
    """The session's tiny GLUE folder and seeds folder (seeds and their controls), parallel pairs with 32 dev pairs,
    and a Marian folder with 64 positions (kdnlp new-model's kind, no weights)."""
    from kdnlp import new_model_folder

    root = tmp_path_factory.mktemp("hostile")
    pairs = root / "pairs"
    pairs.mkdir()
    for split, n in (("train", 4), ("val", 4)):
        for side, i in (("en", 0), ("de", 1)):
            (pairs / f"{split}.{side}").write_text("\n".join(p[i] for p in PAIRS * n) + "\n", encoding="utf-8")
    new_model_folder(root / "init64", [t for p in PAIRS for t in p] * 3, "marian", **SIZES)
    assert SIZES["max_position_embeddings"] == 64
    return {"root": root, "glue": seeds_run["glue"], "seeds": seeds_run["out"], "teacher": seeds_run["teacher"],
            "pairs": pairs, "init64": root / "init64"}


@pytest.fixture(scope="module")
def mt64(world):
    """A model folder with weights (random) of the 64-position config, its tokenizer and generation config."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig

    out = world["root"] / "mt64"
    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(world["init64"]))
    model.generation_config = GenerationConfig.from_pretrained(world["init64"])
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(world["init64"]).save_pretrained(out)
    return out


def test_finetune_of_a_model_with_few_positions_scores_it(world, cli, tmp_path):
    """Its final scoring decodes the dev set with the default --max-new-tokens (it asked for 128 and crashed)."""
    code, err = cli("finetune", "--model", world["init64"], "--task", "translation", "--data-dir", world["pairs"], *MT,
                    "--num-beams", "1", "-o", tmp_path / "mt", "--set", "training.max_steps=2",
                    "--set", "training.per_device_train_batch_size=8", "--set", "training.save_strategy=no",
                    "--set", "training.eval_strategy=no")
    assert code == 0, err
    metrics = json.loads((tmp_path / "mt" / "metrics.json").read_text())
    assert {"bleu", "chrf"} <= set(metrics["metrics"]) and metrics["examples"] == 32


def test_eval_and_generate_of_a_model_with_few_positions(mt64, world, cli, tmp_path):
    code, err = cli("eval", mt64, "--task", "translation", "--data-dir", world["pairs"], *MT, "--num-beams", "1",
                    "--max-samples", "4")
    assert code == 0, err
    code, err = cli("generate", "--teacher", mt64, "--data-dir", world["pairs"], *MT, "--num-beams", "1",
                    "--max-samples", "2", "-o", tmp_path / "gen")
    assert code == 0, err
    assert len((tmp_path / "gen" / "train.target").read_text().splitlines()) == 2


@pytest.mark.parametrize("command", ["eval", "generate"])
def test_more_new_tokens_than_the_model_has_positions_is_an_error(mt64, world, cli, tmp_path, command):
    args = {"eval": ["eval", mt64, "--task", "translation"],
            "generate": ["generate", "--teacher", mt64, "-o", tmp_path / "gen"]}[command]
    assert_one_line_error(cli(*args, "--data-dir", world["pairs"], *MT, "--max-new-tokens", "64"),
                          "max_new_tokens 64", "64 positions", "at most 63")
    assert not (tmp_path / "gen").exists() and not (tmp_path / "gen.partial").exists()


@pytest.mark.parametrize("damage", ["cut", "list", "other-rows", "missing"])
def test_a_damaged_generation_cache_shard_is_named_and_decoded_again(mt64, world, cli, tmp_path, monkeypatch,
                                                                      damage):
    monkeypatch.setenv("KDNLP_CACHE", str(tmp_path / "cache"))
    args = ["generate", "--teacher", mt64, "--data-dir", world["pairs"], *MT, "--num-beams", "2", "--k", "2",
            "--batch-size", "2", "--max-samples", "6", "--max-new-tokens", "8"]
    code, err = cli(*args, "-o", tmp_path / "first")
    assert code == 0, err
    (entry,) = (tmp_path / "cache" / "generate").iterdir()
    shard = entry / "shard-00000.json"
    whole = json.loads(shard.read_text())
    if damage == "cut":
        shard.write_text(shard.read_text()[:40])
    elif damage == "list":
        shard.write_text("[1, 2]")
    elif damage == "other-rows":
        shard.write_text(json.dumps({**whole, "rows": whole["rows"][::-1]}))
    else:
        shard.unlink()
    code, err = cli(*args, "-o", tmp_path / "again")
    assert code == 0, err
    assert "Traceback" not in err and "damaged or missing" in err
    if damage != "missing":
        assert f"'{shard}' is damaged" in err
    assert json.loads(shard.read_text()) == whole  # decoded again, the same
    for name in ("train.target", "train.kbest.jsonl"):
        assert (tmp_path / "again" / name).read_text() == (tmp_path / "first" / name).read_text()


def test_a_damaged_shard_of_an_interrupted_generation_is_decoded_again(mt64, tmp_path, monkeypatch, capfd):
    from kdnlp.tasks.seq2seq.generation import GenerationSettings, cached_generate, load_teacher

    monkeypatch.setenv("KDNLP_CACHE", str(tmp_path / "cache"))
    model, tok = load_teacher(str(mt64))
    sources = [p[0] for p in PAIRS]
    settings = GenerationSettings(num_beams=1, max_new_tokens=6, batch_size=2)
    first, entry = cached_generate(model, tok, sources, settings, shard_size=2, progress=False)
    work = entry.with_name(entry.name + ".partial")
    (entry / "meta.json").unlink()
    entry.rename(work)  # as a run killed before its last rename leaves it
    (work / "shard-00002.json").write_text('{"rows": [')
    capfd.readouterr()
    again, _ = cached_generate(model, tok, sources, settings, shard_size=2, progress=False)
    assert again == first
    assert f"'{work / 'shard-00002.json'}' is damaged" in capfd.readouterr().err


DAMAGE = {"cut": '{"task": "sst2", "recipe', "list": "[1, 2]", "bytes": b"\xff\xfe\x00"}


def damage_file(path: Path, kind: str) -> None:
    content = DAMAGE[kind]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize("kind", list(DAMAGE))
@pytest.mark.parametrize("command, damaged", [
    ("check", "summary.json"), ("check", "settings.json"), ("check", "seed-1/metrics.json"),
    ("report", "summary.json"), ("report", "seed-1/settings.json"), ("report", "seed-1/run.json"),
    ("eval", "summary.json"), ("from", "settings.json"), ("from", "seed-1/settings.json"),
])
def test_a_damaged_json_file_is_named(world, cli, tmp_path, command, damaged, kind):
    import shutil

    seeds = tmp_path / "seeds"
    shutil.copytree(world["seeds"], seeds, ignore=shutil.ignore_patterns("checkpoint-*"))  # what the commands read
    damage_file(seeds / damaged, kind)
    before = tree(seeds)
    out = tmp_path / "out"
    args = {"check": ["check", seeds, "--data-dir", world["glue"]],
            "report": ["report", seeds, "-o", out, "--data-dir", world["glue"]],
            "eval": ["eval", seeds, "--task", "sst2", "--data-dir", world["glue"]],
            "from": ["distill", "--from", seeds / Path(damaged).parent, "-o", out]}[command]
    assert_one_line_error(cli(*args), f"'{seeds / damaged}' is damaged")
    assert tree(seeds) == before
    assert not out.exists() and not out.with_name("out.partial").exists()


@pytest.fixture(scope="module")
def other_folders(world, mt64, tmp_path_factory):
    """Folders of new-model, generate and glue: finished, with a settings.json, but no run of a recipe."""
    from kdnlp.tasks.seq2seq.generation import GenerationSettings, generate_folder
    from kdnlp.tools.glue_suite import run_glue

    root = tmp_path_factory.mktemp("others")
    generate_folder(str(mt64), str(world["pairs"]), root / "generate", "en", "de",
                    settings=GenerationSettings(num_beams=1, max_new_tokens=4), max_samples=2)
    run_glue(str(world["teacher"]), root / "glue", data_dir=str(world["glue"]), tasks="sst2", max_samples=4)
    (root / "edited").mkdir()
    (root / "edited" / "settings.json").write_text('{"recipe": 5, "task": "sst2"}')
    return {"new-model": world["init64"], "generate": root / "generate", "glue": root / "glue",
            "edited": root / "edited"}


@pytest.mark.parametrize("kind", ["new-model", "generate", "glue", "edited"])
def test_distill_from_a_folder_that_is_no_run_of_a_recipe(other_folders, cli, tmp_path, kind):
    folder = other_folders[kind]
    before = tree(folder)
    assert_one_line_error(cli("distill", "--from", folder, "-o", tmp_path / "out"), str(folder / "settings.json"),
                          "distill or finetune")
    assert tree(folder) == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-2"])
@pytest.mark.parametrize("command", ["generate", "eval-glue", "eval-translation", "augment", "report", "glue"])
def test_max_samples_below_one_is_an_error(world, mt64, cli, tmp_path, command, value):
    out = tmp_path / "out"
    args = {"generate": ["generate", "--teacher", mt64, "--data-dir", world["pairs"], *MT, "-o", out],
            "eval-glue": ["eval", world["teacher"], "--task", "sst2", "--data-dir", world["glue"]],
            "eval-translation": ["eval", mt64, "--task", "translation", "--data-dir", world["pairs"], *MT],
            "augment": ["augment", "--task", "sst2", "--model", world["teacher"], "--data-dir", world["glue"], "-o", out],
            "report": ["report", world["seeds"], "--data-dir", world["glue"], "-o", out],
            "glue": ["glue", "--model", world["teacher"], "--data-dir", world["glue"], "--tasks", "sst2", "-o", out],
            }[command]
    assert_one_line_error(cli(*args, "--max-samples", value), f"bad value {value} for --max-samples", "1 or more")
    assert not out.exists() and not out.with_name("out.partial").exists()


@pytest.mark.parametrize("args, fragment", [
    (["finetune", "--seeds=-1"], "'-1' for --seeds"),
    (["finetune", "--seeds", "1,4294967296"], "'1,4294967296' for --seeds"),
    (["finetune", "--seeds", "1,1"], "'1,1' for --seeds"),
    (["finetune", "--seeds", "²"], "'²' for --seeds"),
    (["finetune", "--set", "training.seed=-1"], "'-1' for training.seed"),
    (["finetune", "--set", "training.data_seed=-3"], "'-3' for training.data_seed"),
    (["distill", "--recipe", "hinton", "--teacher", "TEACHER", "--seeds=-1"], "'-1' for --seeds"),
    (["distill", "--recipe", "hinton", "--teacher", "TEACHER", "--set", "stages.distill.training.seed=-4"],
     "for stages.distill.training.seed"),
])
def test_bad_seeds_are_errors_everywhere(world, cli, tmp_path, args, fragment):
    args = [str(world["teacher"]) if a == "TEACHER" else a for a in args]
    model = ["--model", world["teacher"]] if args[0] == "finetune" else []
    out = tmp_path / "out"
    assert_one_line_error(cli(*args, *model, "--task", "sst2", "--data-dir", world["glue"], "-o", out), fragment,
                          "whole number")
    assert not out.exists() and not out.with_name("out.partial").exists()


@pytest.mark.parametrize("command", ["generate", "augment", "train-mlm"])
def test_a_negative_seed_option_is_an_error(world, cli, tmp_path, command):
    args = {"generate": ["generate", "--teacher", world["init64"], "--data-dir", world["pairs"], *MT],
            "augment": ["augment", "--task", "sst2", "--model", world["teacher"], "--data-dir", world["glue"]],
            "train-mlm": ["train-mlm", "--teacher", world["teacher"], "--task", "sst2", "--data-dir", world["glue"]],
            }[command]
    assert_one_line_error(cli(*args, "--seed", "-1", "-o", tmp_path / "out"), "'-1' for --seed", "whole number")
    assert not (tmp_path / "out").exists()


def test_one_seed_parser():
    from kdnlp.core.errors import KdnlpError
    from kdnlp.core.config import MAX_SEED, parse_seed
    from kdnlp.pipeline.seeds import parse_seeds

    assert parse_seeds(f"0,{MAX_SEED}") == [0, MAX_SEED] and parse_seed(" 7 ", "--seed") == 7
    for bad in (-1, MAX_SEED + 1, True, "1.0", "x", ""):
        with pytest.raises(KdnlpError, match="--seed"):
            parse_seed(bad, "--seed")


@pytest.mark.parametrize("where", ["missing-folder", "a-folder", "in-a-file"])
def test_eval_json_out_is_checked_before_the_evaluation(world, cli, tmp_path, monkeypatch, where):
    from kdnlp.tools import evaluation

    def evaluated(*args, **kwargs):
        raise AssertionError("evaluated before --json-out was checked")

    monkeypatch.setattr(evaluation, "evaluate_models", evaluated)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.json").write_text("{}")
    target = {"missing-folder": tmp_path / "nope" / "r.json", "a-folder": folder,
              "in-a-file": folder / "keep.json" / "r.json"}[where]
    assert_one_line_error(cli("eval", world["teacher"], "--task", "sst2", "--data-dir", world["glue"],
                              "--json-out", target), f"'{target}' for --json-out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert [p.name for p in folder.iterdir()] == ["keep.json"]


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]", '{"models": [1]}', '{"models": [{"model": "x"}]}'])
def test_push_eval_json_that_is_missing_or_not_an_eval_result(world, cli, tmp_path, content):
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_text(content)
    run = world["seeds"] / "seed-1"
    before = tree(run)
    assert_one_line_error(cli("push", run, "--repo-id", "me/student", "--dry-run", "--eval-json", path), str(path))
    assert tree(run) == before

"""Batched beam search (kdnlp.tasks.seq2seq.generation): order, scores, equality with plain generate, the resumable cache, the CLI."""
from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch
from typer.testing import CliRunner

from conftest import ROOT
from kdnlp.core import hashing
from kdnlp.tasks.seq2seq import generation
from kdnlp.core.errors import KdnlpError
from kdnlp.tasks.seq2seq.generation import GenerationSettings, cached_generate, generate, teacher_targets
from test_cli import assert_user_error, kdnlp

WORDS = "a man woman dog cat child runs sits jumps on in the grass water red blue ball with and".split()
MAX_NEW = 10


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(n)]


def tiny_tokenizer():
    """Word-level: <pad> 0, </s> 1 (appended to every text), <unk> 2, then WORDS."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_seq2seq(kind: str, tokenizer, steps: int = 80):
    """A 2+2-layer hidden-32 Marian or BART trained a few steps to copy its input: outputs of varied lengths that
    end with </s> and beams with distinct scores (random weights would only ever stop at max_new_tokens)."""
    from transformers import BartConfig, BartForConditionalGeneration, MarianConfig, MarianMTModel

    shape = dict(vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                 pad_token_id=0, eos_token_id=1, forced_eos_token_id=1, dropout=0.0)
    torch.manual_seed(0)
    if kind == "marian":
        model = MarianMTModel(MarianConfig(decoder_start_token_id=0, **shape))
    else:
        model = BartForConditionalGeneration(BartConfig(decoder_start_token_id=1, bos_token_id=2,
                                                        forced_bos_token_id=None, **shape))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        texts = sentences(32, seed=1000 + step)
        batch = tokenizer(texts, text_target=texts, padding=True, return_tensors="pt")
        batch["labels"][batch["labels"] == tokenizer.pad_token_id] = -100
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine two threads can spend 100x longer
    waiting for each other than computing. (Subprocesses get OMP_NUM_THREADS=1.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def models(tok):
    return {kind: tiny_seq2seq(kind, tok) for kind in ("marian", "bart")}


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, models, tok) -> Path:
    path = tmp_path_factory.mktemp("seq2seq_teacher")
    models["marian"].save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KDNLP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def pairs_of(sources: list[str]) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"source": sources, "target": [s.upper() for s in sources]})


def forced_score(model, tok, source: str, sequence: torch.Tensor, length_penalty: float) -> float:
    """Sum of the model's log-probabilities of `sequence`'s tokens after the decoder start, up to and with </s>,
    by one teacher-forced forward pass, divided by that length ** length_penalty."""
    seq = sequence.tolist()
    seq = seq[:seq.index(tok.eos_token_id, 1) + 1]
    with torch.no_grad():
        logits = model(**tok([source], return_tensors="pt"), decoder_input_ids=torch.tensor([seq[:-1]])).logits
    logp = logits[0].log_softmax(-1)[torch.arange(len(seq) - 1), seq[1:]].sum().item()
    return logp / (len(seq) - 1) ** length_penalty


@pytest.mark.parametrize("bad, name", [
    ({"k": 6, "num_beams": 5}, "bad k 6"),
    ({"num_beams": 0}, "bad num_beams 0"),
    ({"batch_size": -1}, "bad batch_size -1"),
    ({"max_new_tokens": 1.5}, "bad max_new_tokens 1.5"),
    ({"max_source_length": True}, "bad max_source_length True"),
    ({"length_penalty": float("nan")}, "bad length_penalty nan"),
])
def test_bad_settings_are_one_line_errors(bad, name):
    with pytest.raises(KdnlpError) as e:
        GenerationSettings(**bad)
    assert str(e.value).startswith(name) and "\n" not in str(e.value)


@pytest.mark.parametrize("kind", ["marian", "bart"])
@pytest.mark.parametrize("settings", [
    GenerationSettings(num_beams=4, k=3, max_new_tokens=MAX_NEW, batch_size=3),
    GenerationSettings(num_beams=3, k=2, max_new_tokens=MAX_NEW, batch_size=4, length_penalty=0.5),
    GenerationSettings(num_beams=1, k=1, max_new_tokens=MAX_NEW, batch_size=3),
], ids=["beam4-k3", "beam3-k2-lp0.5", "greedy"])
def test_generate_keeps_input_order_and_equals_per_sentence_generate(models, tok, kind, settings):
    model = models[kind]
    sources = sentences(11, seed=1)
    ids = generation.encode(tok, sources, settings)
    assert generation.length_order(ids) != list(range(len(ids)))  # batching reorders the sources
    out = generate(model, tok, sources, settings, progress=False)
    assert len(out) == len(sources)
    checked = 0
    for source, hyps in zip(sources, out):
        plain = model.generate(**tok([source], return_tensors="pt"), num_beams=settings.num_beams,
                               num_return_sequences=settings.k, max_new_tokens=settings.max_new_tokens,
                               length_penalty=settings.length_penalty, do_sample=False, output_scores=True,
                               return_dict_in_generate=True)
        assert [t for t, _ in hyps] == tok.batch_decode(plain.sequences, skip_special_tokens=True)
        scores = [s for _, s in hyps]
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == settings.k  # best first, k distinct
        if settings.num_beams > 1:
            torch.testing.assert_close(torch.tensor(scores), plain.sequences_scores, rtol=1e-5, atol=1e-6)
        for sequence, score in zip(plain.sequences, scores):
            if sequence[1:settings.max_new_tokens].eq(tok.eos_token_id).any():
                # ended by the model, not forced at the last step: the score is the model's own log-probability
                assert score == pytest.approx(forced_score(model, tok, source, sequence, settings.length_penalty),
                                              rel=1e-4)
                checked += 1
    assert checked >= len(sources) // 2
    assert len({len(h[0][0].split()) for h in out}) > 2  # outputs of several lengths


def test_one_line():
    assert generation.one_line("a\nb\r\nc\u2028d") == "a b c d"


def count_batches(monkeypatch) -> list[int]:
    """Counts the batches that `generation` decodes from now on (one entry per batch, its size)."""
    seen: list[int] = []
    real = generation._decode_batches

    def counted(*args, **kwargs):
        for rows, hyps in real(*args, **kwargs):
            seen.append(len(rows))
            yield rows, hyps

    monkeypatch.setattr(generation, "_decode_batches", counted)
    return seen


def test_cache_entry_is_made_once_and_reused(models, tok, own_cache):
    model = models["marian"]
    sources = sentences(9, seed=2)
    settings = GenerationSettings(num_beams=3, k=2, max_new_tokens=MAX_NEW, batch_size=2)
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        first, entry = cached_generate(model, tok, sources, settings, shard_size=3, progress=False)
        assert calls and entry.parent == own_cache / "generate" and (entry / "meta.json").is_file()
        assert not list(entry.parent.glob("*.partial"))
        assert len(list(entry.glob("shard-*.json"))) == 3  # 9 sources, shards of 3 rounded up to 2 batches of 2
        calls.clear()
        again, same = cached_generate(model, tok, sources, settings, shard_size=3, progress=False)
        assert not calls and same == entry and again == first
        cached_generate(model, tok, sources, GenerationSettings(num_beams=2, max_new_tokens=MAX_NEW), progress=False)
        assert calls  # other settings: another entry
    finally:
        hook.remove()
    assert first == generate(model, tok, sources, settings, progress=False)


def test_cache_key_changes_with_everything_that_changes_the_outputs(models, tok):
    model = models["marian"]
    sources = sentences(5, seed=3)
    settings = GenerationSettings(num_beams=3, max_new_tokens=MAX_NEW)

    def key(m=model, s=sources, st=settings):
        return generation.cache_key(m, tok, s, generation.encode(tok, s, st), st)

    base = key()
    assert key(m=copy.deepcopy(model)) == base
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.lm_head.weight[3, 0] += 1e-3
    assert key(m=other) != base
    assert key(m=copy.deepcopy(model).to(torch.bfloat16)) != base
    assert key(s=sources[::-1]) != base
    for change in ({"num_beams": 4}, {"k": 2}, {"max_new_tokens": 9}, {"length_penalty": 0.8}, {"batch_size": 8},
                   {"max_source_length": 3}):
        assert key(st=GenerationSettings(**{**settings.__dict__, **change})) != base, change


def test_teacher_targets_adds_the_teachers_outputs_and_reuses_them(teacher_dir, monkeypatch):
    sources = sentences(7, seed=4)
    settings = GenerationSettings(num_beams=3, k=2, max_new_tokens=MAX_NEW, batch_size=4)
    ds = teacher_targets(str(teacher_dir), pairs_of(sources), settings, progress=False)
    assert ds.column_names == ["source", "target", "teacher", "hypotheses"]
    assert ds["source"] == sources and ds["target"] == [s.upper() for s in sources]
    model, tok = generation.load_teacher(str(teacher_dir))
    expected = generate(model, tok, sources, settings, progress=False)
    assert ds["teacher"] == [h[0][0] for h in expected]
    assert [[(x["text"], x["score"]) for x in h] for h in ds["hypotheses"]] == expected
    decoded = count_batches(monkeypatch)
    again = teacher_targets(str(teacher_dir), pairs_of(sources), settings, progress=False)
    assert not decoded and again.to_dict() == ds.to_dict()


CHILD = """
import json, sys, time
import datasets
from kdnlp.tasks.seq2seq import generation
real = generation._decode_batches
def slow(*args, **kwargs):
    for item in real(*args, **kwargs):
        time.sleep(0.3)
        yield item
generation._decode_batches = slow
teacher, sources, settings = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
pairs = datasets.Dataset.from_dict({"source": sources, "target": sources})
generation.teacher_targets(teacher, pairs, generation.GenerationSettings(**settings), shard_size=2, progress=False)
"""


def test_generation_killed_midway_resumes_without_redoing_finished_shards(teacher_dir, own_cache, tmp_path,
                                                                          monkeypatch):
    sources = sentences(24, seed=5)
    settings = GenerationSettings(num_beams=2, k=2, max_new_tokens=MAX_NEW, batch_size=2)
    env = {**os.environ, "KDNLP_CACHE": str(own_cache), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(teacher_dir), json.dumps(sources),
                              json.dumps(settings.__dict__)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(list(own_cache.glob("generate/*.partial/shard-*.json"))) < 3:
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    work = next(own_cache.glob("generate/*.partial"))
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.glob("shard-*.json")}
    assert 3 <= len(before) < 12 and not (work.with_name(work.name.removesuffix(".partial"))).exists()

    decoded = count_batches(monkeypatch)
    resumed = teacher_targets(str(teacher_dir), pairs_of(sources), settings, shard_size=2, progress=False)
    assert len(decoded) == 12 - len(before)  # 24 sources, shards of one batch of 2: only the missing ones ran
    entry = work.with_name(work.name.removesuffix(".partial"))
    assert not work.exists() and (entry / "meta.json").is_file()
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in entry.glob("shard-*.json")
            if p.name in before} == before
    rows = [i for p in entry.glob("shard-*.json") for i in json.loads(p.read_text())["rows"]]
    assert sorted(rows) == list(range(len(sources)))  # every source once

    monkeypatch.setenv("KDNLP_CACHE", str(tmp_path / "fresh-cache"))
    whole = teacher_targets(str(teacher_dir), pairs_of(sources), settings, shard_size=2, progress=False)
    assert resumed["teacher"] == whole["teacher"]
    for a, b in zip(resumed["hypotheses"], whole["hypotheses"]):
        assert [x["text"] for x in a] == [x["text"] for x in b]
        assert [x["score"] for x in a] == pytest.approx([x["score"] for x in b], rel=1e-6)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "multi30k"
    path.mkdir()
    sources = sentences(10, seed=6)
    (path / "train.en").write_text("".join(f"{s}\n" for s in sources))
    (path / "train.de").write_text("".join(f"{s.upper()}\n" for s in sources))
    return path


def test_generate_command_writes_a_folder_that_load_pairs_reads_back(teacher_dir, data_dir, tmp_path):
    from kdnlp.tasks.seq2seq.data import load_pairs

    from kdnlp.cli.main import app

    out = tmp_path / "pseudo"
    args = ["generate", "--teacher", str(teacher_dir), "--data-dir", str(data_dir), "--source", "en", "--target", "de",
            "--num-beams", "3", "--k", "2", "--max-new-tokens", str(MAX_NEW), "--batch-size", "4", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sources = (data_dir / "train.en").read_text().splitlines()
    model, tok = generation.load_teacher(str(teacher_dir))
    expected = generate(model, tok, sources, GenerationSettings(num_beams=3, k=2, max_new_tokens=MAX_NEW,
                                                                batch_size=4), progress=False)
    assert (out / "train.source").read_text().splitlines() == sources
    assert (out / "train.target").read_text().splitlines() == [h[0][0] for h in expected]
    assert (out / "train.reference").read_text() == (data_dir / "train.de").read_text()
    kbest = [json.loads(line) for line in (out / "train.kbest.jsonl").read_text().splitlines()]
    assert [[(x["text"], x["score"]) for x in row["hypotheses"]] for row in kbest] == expected
    assert [row["reference"] for row in kbest] == [s.upper() for s in sources]
    meta = json.loads((out / "generation.json").read_text())
    assert meta["teacher"] == {"path": str(teacher_dir), "weights": hashing.weights_digest(model)}
    assert meta["settings"]["k"] == 2 and meta["counts"]["sources"] == 10 and meta["counts"]["hypotheses"] == 20
    assert meta["data"]["source"] == "en" and meta["seconds"] > 0
    assert not out.with_name("pseudo.partial").exists()
    back = load_pairs(str(out), "train")
    assert back["source"] == sources and back["target"] == [h[0][0] for h in expected]

    again = CliRunner().invoke(app, [*args[:-4], "--k", "1", "-o", str(out), "--overwrite"])
    assert again.exit_code == 0, again.output
    assert not (out / "train.kbest.jsonl").exists()
    assert json.loads((out / "generation.json").read_text())["settings"]["k"] == 1


def test_generate_command_bad_options_are_one_line_errors(teacher_dir, data_dir, tmp_path, tiny_teacher_dir):
    base = ["generate", "--teacher", teacher_dir, "--data-dir", data_dir, "--source", "en", "--target", "de"]
    assert_user_error(kdnlp(*base, "--num-beams", "2", "--k", "3", "-o", tmp_path / "a"), "bad k 3", "num_beams 2")
    assert_user_error(kdnlp(*base, "--batch-size", "0", "-o", tmp_path / "a"), "bad batch_size 0")
    assert_user_error(kdnlp(*base[:2], tmp_path / "nope", *base[3:], "-o", tmp_path / "a"), "does not exist")
    assert_user_error(kdnlp(*base[:2], tiny_teacher_dir, *base[3:], "-o", tmp_path / "a"),
                      "not an encoder-decoder model")
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("old")
    assert_user_error(kdnlp(*base, "-o", used), "exists and is not empty")
    assert (used / "keep.txt").read_text() == "old"

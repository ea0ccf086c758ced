"""Seq2seq on the shared run path: a teacher trained from a weightless folder, seq-KD recipes, word-level KD
masked to target tokens, exact accumulation over target tokens, `kdnlp eval` on generated text."""
from __future__ import annotations

import json

import datasets
import pytest
import torch

import kdnlp
from test_scratch import PAIRS, SIZES

TINY = ["training.per_device_train_batch_size=8", "training.learning_rate=3e-3", "training.save_strategy=no",
        "training.eval_strategy=no", "max_length=32", "student.layers=2"]
GEN = ["generation.num_beams=2", "generation.k=2", "generation.max_new_tokens=16", "generation.batch_size=8"]
OPTIONS = {"source": "en", "target": "de", "num_beams": 1, "max_new_tokens": 16}


@pytest.fixture(scope="module")
def m30k_like(tmp_path_factory):
    """A folder of parallel files (train.en/de, val.en/de) made of the same 8 real pairs."""
    root = tmp_path_factory.mktemp("pairs")
    for split, n in (("train", 4), ("val", 1)):
        for side, i in (("en", 0), ("de", 1)):
            (root / f"{split}.{side}").write_text("\n".join(p[i] for p in PAIRS * n) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, m30k_like):
    """A tiny Marian trained from a weightless folder (kdnlp new-model's kind) by `kdnlp.finetune`."""
    root = tmp_path_factory.mktemp("mt")
    texts = [t for p in PAIRS for t in p] * 3
    kdnlp.new_model_folder(root / "init", texts, "marian", **SIZES)
    metrics = kdnlp.finetune(str(root / "init"), "translation", root / "teacher", data_dir=str(m30k_like),
                             overrides=["training.num_train_epochs=80", *TINY[:-1]], **OPTIONS)
    assert set(metrics["metrics"]) >= {"bleu", "chrf"} and metrics["summary"].startswith("translation dev (8 examples): bleu")
    return root / "teacher"


def test_teacher_from_scratch_is_a_plain_seq2seq_folder_that_learned(teacher, m30k_like):
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(teacher / "model")
    assert model.config.encoder_layers == 2 and model.config.decoder_layers == 2
    metrics = json.loads((teacher / "metrics.json").read_text())["metrics"]
    assert metrics["bleu"] > 20  # 8 pairs seen 80 times: a model that did not train scores near 0


@pytest.mark.parametrize("recipe", ["seq2seq-baseline", "seqkd", "seqkd-word", "seqkd-inter"])
def test_seq2seq_recipes_train_a_shallower_student(teacher, m30k_like, tmp_path, recipe, capfd):
    from transformers import AutoModelForSeq2SeqLM

    metrics = kdnlp.run_recipe(recipe, "translation", tmp_path / recipe, teacher=str(teacher), data_dir=str(m30k_like),
                               overrides=["training.max_steps=3", *TINY, *(GEN if recipe != "seq2seq-baseline" else [])],
                               **OPTIONS)
    student = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / recipe / "model")
    assert (student.config.encoder_layers, student.config.decoder_layers) == (2, 1)
    assert {"bleu", "chrf", "loss"} <= set(metrics["metrics"])
    logged = [h for h in metrics["stages"]["distill"]["train"] if h.startswith("train_")]
    assert logged
    run = json.loads((tmp_path / recipe / "run.json").read_text())
    assert run["train_examples"] == {"task": 32}


def test_seqkd_recipes_share_one_cached_generation(teacher, m30k_like, tmp_path, capfd):
    for recipe in ("seqkd", "seqkd-inter"):
        kdnlp.run_recipe(recipe, "translation", tmp_path / recipe, teacher=str(teacher), data_dir=str(m30k_like),
                         overrides=["training.max_steps=1", *TINY, *GEN, "generation.length_penalty=0.8"], **OPTIONS)
    err = capfd.readouterr().err
    assert err.count("generate: 32 sources") == 1 and err.count("generate: reusing") == 1


def test_train_sets_of_each_kind_of_target(teacher, m30k_like):
    from kdnlp.tasks.seq2seq.generation import GenerationSettings, teacher_targets
    from kdnlp.tasks.seq2seq.metrics import closest_to_reference
    from kdnlp.tasks.kinds import get_problem

    problem = get_problem("translation", source="en", target="de")
    gold = problem.load("train", str(m30k_like), max_samples=8)
    settings = GenerationSettings(num_beams=3, k=3, max_new_tokens=16, batch_size=8)
    out = teacher_targets(str(teacher), gold, settings)
    taught = problem.train_set(gold, "teacher", str(teacher), settings)
    assert taught["source"] == gold["source"] and taught["target"] == out["teacher"]
    inter = problem.train_set(gold, "inter", str(teacher), settings)
    for hyps, ref, picked in zip(out["hypotheses"], gold["target"], inter["target"]):
        assert picked == hyps[closest_to_reference([h["text"] for h in hyps], ref)]["text"]
    both = problem.train_set(gold, "both", str(teacher), settings)
    assert both["target"] == [*gold["target"], *out["teacher"]]
    assert problem.train_set(gold, "gold", None, None)["target"] == gold["target"]


def test_eval_scores_generated_text_with_speed(teacher, m30k_like):
    from kdnlp.tools.evaluation import format_table

    result = kdnlp.evaluate_models([str(teacher), str(teacher)], "translation", data_dir=str(m30k_like),
                                   split="train", speed=True, **OPTIONS)
    a, b = result["models"]
    assert a["metrics"] == b["metrics"] and a["score"] == a["metrics"]["bleu"] > 0
    assert a["latency_ms_b1"] > 0 and a["throughput_b32"] > 0 and a["speedup_b32"] == pytest.approx(1.0)
    lines = format_table(result).splitlines()
    assert lines[0] == "translation train (32 examples)"
    assert lines[1].startswith("| model | bleu | chrf | % of first | params (M) |")
    assert f"| {a['metrics']['bleu']:.2f} |" in lines[3]  # BLEU shown as sacrebleu gives it, not x100


def test_glue_options_are_refused_for_seq2seq_only_options():
    from kdnlp.core.errors import KdnlpError
    from kdnlp.tasks.kinds import get_problem

    with pytest.raises(KdnlpError, match="--source is for seq2seq tasks"):
        get_problem("sst2", source="en")
    with pytest.raises(KdnlpError, match="unknown task 'translate'; valid: cola, .*translation, summarization"):
        get_problem("translate")


def marian(seed: int, vocab: int = 40):
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(seed)
    config = MarianConfig(vocab_size=vocab, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
                          pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout=0.0)
    return MarianMTModel(config)


def token_batches(n: int = 8):
    """Pairs whose targets differ in length, so the target tokens per micro-batch differ."""
    g = torch.Generator().manual_seed(0)
    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    for i in range(n):
        src, tgt = 3 + i % 4, 2 + (i * 3) % 7
        rows["input_ids"].append(torch.randint(3, 40, (src,), generator=g).tolist() + [1])
        rows["attention_mask"].append([1] * (src + 1))
        rows["labels"].append(torch.randint(3, 40, (tgt,), generator=g).tolist() + [1])
    return datasets.Dataset.from_dict(rows)


def special_tokens_only():
    """A tokenizer that knows only <pad> 0, </s> 1 and <unk> 2: enough to pad the ids of `token_batches`."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2},
                                                                               unk_token="<unk>")),
                                   pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def word_level_kd(student, teacher):
    from kdnlp.losses import LOSSES, CompositeLoss, LossContext

    ctx = LossContext(1, student.config, teacher.config, "tokens")
    terms = {n: (w, LOSSES.get(n)(LOSSES.get(n).Config(), ctx)) for n, w in (("ce", 0.5), ("hinton", 0.5))}
    return CompositeLoss(terms)


def test_the_teacher_decodes_the_targets_from_its_own_start_token(tmp_path):
    """A BART student starts its decoder inputs with </s>, its Marian teacher with <pad>: the teacher reads the
    targets as its own forward reads labels (the decoder inputs the seq2seq problem makes for it)."""
    from transformers import BartConfig, BartForConditionalGeneration, DataCollatorForSeq2Seq, TrainingArguments

    from kdnlp.tasks.kinds import get_problem
    from kdnlp.training.trainer import DistillationTrainer

    torch.manual_seed(0)
    student = BartForConditionalGeneration(BartConfig(
        vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32, pad_token_id=0,
        eos_token_id=1, bos_token_id=None, decoder_start_token_id=1, dropout=0.0))
    teacher = marian(1)
    collate = DataCollatorForSeq2Seq(special_tokens_only(), model=student)
    batch = collate(list(token_batches(4)))
    assert batch["decoder_input_ids"][:, 0].tolist() == [1] * 4 and teacher.config.decoder_start_token_id == 0
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = DistillationTrainer(model=student, args=args, loss=word_level_kd(student, teacher), teacher=teacher,
                                  data_collator=collate, target_inputs=get_problem("translation").target_inputs)
    own = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    torch.testing.assert_close(trainer.teacher_outputs(batch).logits, own.logits)


def test_word_level_kd_reads_only_real_target_tokens():
    from kdnlp.losses import LOSSES, LossContext
    from types import SimpleNamespace

    cls = LOSSES.get("hinton")
    term = cls(cls.Config(temperature=1.0), LossContext(1, None, None, "tokens"))
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 4, 6, generator=g), torch.randn(2, 4, 6, generator=g)
    labels = torch.tensor([[3, 4, 1, -100], [5, 1, -100, -100]])
    value = term(SimpleNamespace(logits=s), SimpleNamespace(logits=t), {"labels": labels})
    s2 = s.clone()
    s2[labels == -100] += 10.0  # padding positions change: the term must not
    assert term(SimpleNamespace(logits=s2), SimpleNamespace(logits=t), {"labels": labels}) == pytest.approx(value.item())
    kl = (t.softmax(-1) * (t.log_softmax(-1) - s.log_softmax(-1))).sum(-1)
    assert value.item() == pytest.approx(kl[labels != -100].mean().item(), rel=1e-5)


def test_a_chain_link_learns_the_outputs_of_its_own_teacher_on_the_stages_device(teacher, m30k_like, tmp_path,
                                                                                  monkeypatch, capfd):
    """`targets: teacher` in a `teacher: previous` stage and in the stage after it (which keeps that teacher): the
    previous stage's student decodes the targets, once, on the stage's device (the CPU, though a GPU is claimed)."""
    from kdnlp.core import hashing
    from kdnlp.pipeline.recipe import parse

    rec = parse({
        "name": "seq-chain", "description": "teacher -> 2+1 layers -> 1+1 layers on its outputs", "max_length": 32,
        "student": {"layers": 2, "decoder_layers": 1},
        "generation": {"num_beams": 2, "max_new_tokens": 16, "batch_size": 8},
        "training": {"max_steps": 1, "per_device_train_batch_size": 8, "save_strategy": "no", "eval_strategy": "no"},
        "stages": [{"name": "assistant", "losses": [{"loss": "ce"}]},
                   {"name": "final", "teacher": "previous", "targets": "teacher", "student": {"layers": 1},
                    "losses": [{"loss": "ce"}]},
                   {"name": "polish", "targets": "teacher", "losses": [{"loss": "ce"}]}],
    })
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the stage trains on the CPU all the same
    metrics = kdnlp.run_recipe(rec, "translation", tmp_path / "run", teacher=str(teacher), data_dir=str(m30k_like),
                               **OPTIONS)
    digest = metrics["stages"]["final"]["chain"]["teacher_digest"]
    decoded = [json.loads(p.read_text())["weights"] for p in (hashing.cache_dir() / "generate").glob("*/meta.json")]
    assert digest in decoded
    err = capfd.readouterr().err
    assert err.count("generate: 32 sources") == 1 and err.count("generate: reusing") == 1


@pytest.mark.parametrize("extra", [0, 8])
def test_a_student_of_another_architecture_learns_word_level_kd_over_one_vocabulary(teacher, m30k_like, tmp_path,
                                                                                   extra):
    """A BART student with the Marian teacher's tokenizer trains on seqkd-word; one predicting over 8 more tokens
    is refused before anything trains."""
    from transformers import AutoTokenizer

    from kdnlp.core.errors import KdnlpError
    from kdnlp.modeling.scratch import model_config

    tok = AutoTokenizer.from_pretrained(teacher / "model")
    sizes = {k: v for k, v in SIZES.items() if k != "vocab_size"}
    model_config("bart", len(tok) + extra, **sizes, pad_token_id=tok.pad_token_id,
                 eos_token_id=tok.eos_token_id).save_pretrained(tmp_path / "bart")
    tok.save_pretrained(tmp_path / "bart")
    run = lambda: kdnlp.run_recipe("seqkd-word", "translation", tmp_path / "run", teacher=str(teacher),  # noqa: E731
                                   student=str(tmp_path / "bart"), data_dir=str(m30k_like),
                                   overrides=["training.max_steps=1", *TINY, *GEN], **OPTIONS)
    if not extra:
        assert run()["finished"]
        return
    with pytest.raises(KdnlpError, match=f"teacher '{teacher}' predicts over {len(tok)} tokens and student "
                                         f"'{tmp_path / 'bart'}' over {len(tok) + 8}, and the term 'hinton' compares"):
        run()
    assert not (tmp_path / "run").exists()


def test_a_teacher_without_a_decoder_start_token_is_refused_for_word_level_kd(teacher, m30k_like, tmp_path):
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from kdnlp.core.errors import KdnlpError

    tok = AutoTokenizer.from_pretrained(teacher / "model")
    config = T5Config(vocab_size=len(tok), d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, pad_token_id=0,
                      eos_token_id=1)
    assert getattr(config, "decoder_start_token_id", None) is None
    T5ForConditionalGeneration(config).save_pretrained(tmp_path / "t5")
    tok.save_pretrained(tmp_path / "t5")
    with pytest.raises(KdnlpError, match=f"the teacher '{tmp_path / 't5'}' sets no decoder_start_token_id or no "
                                         "pad_token_id in its config"):
        kdnlp.run_recipe("seqkd-word", "translation", tmp_path / "run", teacher=str(tmp_path / "t5"),
                         data_dir=str(m30k_like), overrides=["training.max_steps=1", *TINY, *GEN], **OPTIONS)

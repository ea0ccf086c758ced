"""Data-free distillation (kdnlp.methods.datafree.trainer, kdnlp.methods.datafree.losses): each generator term against a hand computation,
the exponential-increment and fixed combinations, generated inputs that a teacher and a narrower student both read,
and a run that never reads the task's train split and resumes to the uninterrupted result."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from conftest import tiny_classifier
from kdnlp.methods.datafree.trainer import (GENERATOR_STATE, GeneratorSettings, TextGenerator, layout, parse_settings,
                            vocabulary)
from kdnlp.core.errors import KdnlpError
from kdnlp.methods.datafree.losses import GENERATOR_LOSSES, GeneratorLoss
from kdnlp.modeling.students import narrow_student

LOGITS = [[2.0, -1.0, 0.5], [0.1, 0.3, -0.2], [-1.5, 2.5, 0.0], [1.0, 1.0, 3.0]]
LATENTS = [[0.5, -1.0], [1.5, 0.0], [-0.5, 2.0], [0.0, 0.0]]


def softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def term(name):
    cls = GENERATOR_LOSSES.get(name)
    return cls(cls.Config())


def value(name, logits=LOGITS, latents=LATENTS):
    return term(name)(torch.tensor(logits), torch.tensor(latents)).item()


def test_one_hot_is_cross_entropy_with_the_teachers_own_arg_max():
    expected = sum(-math.log(softmax(r)[r.index(max(r))]) for r in LOGITS) / len(LOGITS)
    assert value("one_hot") == pytest.approx(expected, rel=1e-6)


def test_info_entropy_is_the_negative_entropy_of_the_mean_prediction():
    probs = [softmax(r) for r in LOGITS]
    mean = [sum(p[k] for p in probs) / len(probs) for k in range(3)]
    assert value("info_entropy") == pytest.approx(sum(m * math.log(m) for m in mean), rel=1e-6)
    even = [[0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0]]  # classes covered evenly: the lowest value
    assert value("info_entropy", even, LATENTS[:3]) == pytest.approx(-math.log(3), rel=1e-6)


def test_diversity_is_minus_the_mean_ratio_of_output_to_latent_distances():
    probs = [softmax(r) for r in LOGITS]
    ratios = []
    for i in range(4):
        for j in range(i + 1, 4):
            dp = sum(abs(a - b) for a, b in zip(probs[i], probs[j])) / 3
            dz = sum(abs(a - b) for a, b in zip(LATENTS[i], LATENTS[j])) / 2
            ratios.append(dp / dz)
    assert value("diversity") == pytest.approx(-sum(ratios) / len(ratios), rel=1e-6)
    same = [LOGITS[0]] * 4  # every sample read alike: no diversity
    assert value("diversity", same) == pytest.approx(0.0, abs=1e-7)


def combined(combination, epoch_steps=1, **weights):
    terms = {n: (w, term(n)) for n, w in weights.items()}
    return GeneratorLoss(terms, combination, epoch_steps)


def test_exponential_increments_penalise_increases_and_follow_decreases_almost_linearly():
    logits = torch.tensor(LOGITS, requires_grad=True)
    loss = combined("exponential", one_hot=1.0)
    current = value("one_hot")
    total, _ = loss(logits, torch.tensor(LATENTS))
    assert total.item() == pytest.approx(1.0)  # no previous epoch yet: exp(0), the gradient of the plain term
    grad_plain = torch.autograd.grad(term("one_hot")(logits, None), logits)[0]
    for delta in (0.5, -0.5, -0.05):
        loss.end_step({"one_hot": torch.tensor(current - delta)})  # one-step epochs: previous = current - delta
        total, _ = loss(logits, torch.tensor(LATENTS))
        grad = torch.autograd.grad(total, logits)[0]
        scale = (grad.norm() / grad_plain.norm()).item()
        assert total.item() == pytest.approx(math.exp(delta), rel=1e-5)
        assert scale == pytest.approx(math.exp(delta), rel=1e-4)
        if delta > 0:  # an increase costs more than its size, and its gradient is scaled up
            assert total.item() - 1 > delta and scale > 1
        else:  # a decrease counts about as its size: exp(-d) = 1 - d + O(d^2)
            assert abs(total.item() - (1 + delta)) <= delta * delta / 2 + 1e-6 and scale < 1


def test_previous_values_are_the_means_of_the_last_window_and_other_terms_add_linearly():
    loss = combined("exponential", epoch_steps=2, one_hot=1.0, diversity=3.0)
    for v in (1.0, 2.0):
        loss.end_step({"one_hot": torch.tensor(v), "diversity": torch.tensor(-v)})
    assert loss.previous.tolist() == pytest.approx([1.5, -1.5]) and int(loss.epochs) == 1
    total, values = loss(torch.tensor(LOGITS), torch.tensor(LATENTS))
    expected = math.exp(values["one_hot"].item() - 1.5) + 3.0 * values["diversity"].item()
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert loss.formula() == "1 * exp(one_hot - one_hot_prev) + 3 * diversity"


def test_fixed_combination_is_dafls_weighted_sum():
    loss = combined("fixed", one_hot=1.0, info_entropy=5.0)
    loss.end_step({"one_hot": torch.tensor(9.0), "info_entropy": torch.tensor(9.0)})  # previous values play no part
    total, _ = loss(torch.tensor(LOGITS), torch.tensor(LATENTS))
    assert total.item() == pytest.approx(value("one_hot") + 5.0 * value("info_entropy"), rel=1e-6)


@pytest.mark.parametrize("segments", [1, 2])
def test_layout_puts_the_tokenizers_special_tokens_where_it_does(tokenizer, segments):
    frame = layout(tokenizer, segments, 12)
    assert len(frame.ids) == len(frame.token_type_ids) == 12
    assert frame.ids[0] == tokenizer.cls_token_id and frame.ids[-1] == tokenizer.sep_token_id
    fixed = [i for i, t in enumerate(frame.ids) if t >= 0]
    if segments == 1:
        assert fixed == [0, 11] and set(frame.token_type_ids) == {0}
    else:  # [CLS] a a a a a [SEP] b b b b [SEP]: the second text is token type 1
        assert fixed == [0, 6, 11] and frame.ids[6] == tokenizer.sep_token_id
        assert frame.token_type_ids == (0,) * 7 + (1,) * 5
    with pytest.raises(KdnlpError, match="seq_length"):
        layout(tokenizer, segments, 1 + segments)


def test_the_generator_writes_the_tokens_text_is_encoded_into(tokenizer):
    ids = vocabulary(tokenizer)
    vocab = tokenizer.get_vocab()
    unused = {vocab[t] for t in vocab if t.startswith("[unused")}
    assert len(unused) > 900 and not unused & set(ids) and not set(tokenizer.all_special_ids) & set(ids)
    assert len(ids) == len(vocab) - len(unused) - len(set(tokenizer.all_special_ids)) and ids == sorted(ids)
    text = tokenizer("a gripping, funny film about nothing", add_special_tokens=False)["input_ids"]
    assert set(text) <= set(ids)
    assert vocabulary(tokenizer, 500) == ids[:500]
    with pytest.raises(KdnlpError, match="vocab_size"):
        vocabulary(tokenizer, len(ids) + 1)
    with pytest.raises(KdnlpError, match="bad value -1 for g.vocab_size"):
        parse_settings({"losses": [{"loss": "one_hot"}], "vocab_size": -1}, "g")


def full_distributions(probs, frame, tokens, vocab_size):
    """The generator's samples as (batch, seq_length, vocab) distributions: its probabilities at the free
    positions, the frame's tokens one-hot at the others."""
    out = torch.zeros(len(probs), len(frame.ids), vocab_size)
    free = [i for i, t in enumerate(frame.ids) if t < 0]
    for k, i in enumerate(free):
        out[:, i, tokens] = probs[:, k]
    for i, t in enumerate(frame.ids):
        if t >= 0:
            out[:, i, t] = 1.0
    return out


@pytest.mark.parametrize("size", [0, 300])
def test_generated_inputs_are_read_by_a_teacher_and_a_narrower_student(tokenizer, size):
    teacher = tiny_classifier(seed=1)
    student = narrow_student(teacher, [1, 3], "truncate", hidden_size=16, num_attention_heads=2)
    frame, tokens = layout(tokenizer, 1, 10), vocabulary(tokenizer, size)
    torch.manual_seed(0)
    generator = TextGenerator(GeneratorSettings(latent_dim=8, hidden_size=16), teacher.get_input_embeddings().weight,
                              frame, tokens)
    probs = generator(torch.randn(3, 8))
    assert probs.shape == (3, 8, len(tokens))
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 8))
    full = full_distributions(probs.detach(), frame, tokens, teacher.config.vocab_size)
    for model in (teacher, student):
        embeds = generator.embed(probs, model)  # the product of the full distributions with the embedding matrix
        torch.testing.assert_close(embeds, full @ model.get_input_embeddings().weight)
        out = model(inputs_embeds=embeds).logits
        assert out.shape == (3, 2) and torch.isfinite(out).all()
        generator.zero_grad()
        out.sum().backward(retain_graph=True)
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.net.parameters())
    # one-hot rows read exactly as the token ids do: each model turns them into its own embeddings
    words = [tokens[k] for k in (0, 3, 5, 7, 11, 13, 17, -1)]
    onehot = torch.nn.functional.one_hot(torch.tensor([[tokens.index(w) for w in words]]), len(tokens)).float()
    ids = torch.tensor([[tokenizer.cls_token_id, *words, tokenizer.sep_token_id]])
    for model in (teacher, student):
        with torch.no_grad():
            torch.testing.assert_close(model(inputs_embeds=generator.embed(onehot, model)).logits,
                                       model(input_ids=ids).logits)


def test_the_generators_output_layer_is_the_tied_product_at_the_temperature(tokenizer):
    teacher = tiny_classifier(seed=2)
    frame, tokens = layout(tokenizer, 2, 9), vocabulary(tokenizer, 200)
    embedding = teacher.get_input_embeddings().weight.detach()
    for gumbel in (False, True):
        torch.manual_seed(0)
        settings = GeneratorSettings(latent_dim=4, hidden_size=8, temperature=0.5, gumbel=gumbel)
        generator = TextGenerator(settings, embedding, frame, tokens)
        with torch.no_grad():
            generator.bias.normal_()
            z = torch.randn(2, 4)
            h = generator.net(z).view(2, 6, 32)  # 6 free positions of 9: [CLS] a a a [SEP] b b b [SEP]
            logits = h @ embedding[tokens].T + generator.bias
            torch.manual_seed(1)
            probs = generator(z)
        if gumbel:  # the Gumbel noise is random: a sample, not the softmax
            assert torch.isfinite(probs).all() and not torch.allclose(probs, (logits / 0.5).softmax(-1), atol=1e-3)
            torch.testing.assert_close(probs.sum(-1), torch.ones(2, 6))
        else:
            torch.testing.assert_close(probs, (logits / 0.5).softmax(-1))


# ---- runs (tiny teacher, a GLUE folder made here) ----

def glue_folder(path, train: bytes | None):
    """An SST-2 folder with a real-looking dev split and, as asked, a garbage train file (or none)."""
    folder = path / "SST-2"
    folder.mkdir(parents=True)
    rows = ["a gripping , funny film", "dull and lifeless", "the best of the year", "a waste of time"] * 4
    (folder / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{r}\t{i % 2 ^ 1}\n" for i, r in enumerate(rows)))
    if train is not None:
        (folder / "train.tsv").write_bytes(train)
    return path


def run(teacher, glue, out, *overrides, recipe="data-free", **kw):
    from kdnlp.pipeline.runner import run_recipe

    sets = ["training.max_steps=4", "training.per_device_train_batch_size=4", "training.save_steps=2",
            "training.eval_steps=2", "training.logging_steps=1", "training.save_total_limit=2",
            "stages.distill.generator.seq_length=10", "stages.distill.generator.epoch_steps=2", *overrides]
    return run_recipe(recipe, "sst2", out, teacher=str(teacher), data_dir=str(glue), overrides=sets, **kw)


@pytest.mark.parametrize("recipe", ["data-free", "data-free-dafl", "data-free-nodiv"])
def test_data_free_runs_never_read_the_train_split(tiny_teacher_dir, tmp_path, monkeypatch, recipe):
    from kdnlp.tasks.glue import data as glue

    from kdnlp.pipeline.runner import run_recipe

    garbage = glue_folder(tmp_path / "glue", b"<html>not a GLUE file</html>\n")
    with pytest.raises(KdnlpError, match="train.tsv"):  # the garbage is caught when a recipe does read the train split
        run_recipe("hinton", "sst2", tmp_path / "hinton", teacher=str(tiny_teacher_dir), data_dir=str(garbage))
    splits, read = [], glue.load_split
    monkeypatch.setattr(glue, "load_split", lambda task, split, *a, **k: splits.append(split) or read(task, split, *a, **k))
    missing = glue_folder(tmp_path / "none", None)
    for data in (garbage, missing):
        out = tmp_path / f"{recipe}-{data.name}"
        metrics = run(tiny_teacher_dir, data, out, recipe=recipe)
        assert metrics["finished"] and metrics["examples"] == 16
        info = json.loads((out / "run.json").read_text())
        assert info["train_examples"] == {"generated": 64000}
    assert splits and set(splits) == {"validation"}
    logged = json.loads((out / "stages" / "distill" / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    logged = [h for h in logged if "loss/generator/one_hot" in h]
    assert logged and all("loss/hinton" in h for h in logged)
    for h in logged:  # the means of the logging window's steps
        assert all(math.isfinite(h[f"loss/generator/{n}"]) for n in ("one_hot", "info_entropy", "total"))


def test_a_pair_task_is_warned_about_and_a_single_sentence_task_is_not(tiny_teacher_dir, tmp_path, capsys):
    from kdnlp.pipeline.runner import run_recipe

    single = glue_folder(tmp_path / "glue", None)
    run(tiny_teacher_dir, single, tmp_path / "sst2", "training.max_steps=1")
    assert "sentence-pair" not in capsys.readouterr().err
    folder = tmp_path / "pairs" / "MRPC"
    folder.mkdir(parents=True)
    rows = [("a cat sat on the mat", "the cat sat on a mat"), ("dull and lifeless", "the best of the year")] * 4
    folder.joinpath("dev.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                          + "".join(f"{i % 2 ^ 1}\t{i}\t{i}\t{a}\t{b}\n" for i, (a, b) in enumerate(rows)))
    sets = ["training.max_steps=1", "training.per_device_train_batch_size=4", "training.save_strategy=no",
            "training.eval_strategy=no", "stages.distill.generator.seq_length=10"]
    metrics = run_recipe("data-free", "mrpc", tmp_path / "mrpc", teacher=str(tiny_teacher_dir),
                         data_dir=str(tmp_path / "pairs"), overrides=sets)
    assert metrics["finished"] and metrics["examples"] == 8
    assert "warning: mrpc is a sentence-pair task" in capsys.readouterr().err


def test_the_student_and_generator_train_and_resume_to_the_uninterrupted_result(tiny_teacher_dir, tmp_path):
    from safetensors.torch import load_file

    glue = glue_folder(tmp_path / "glue", None)
    straight = tmp_path / "straight"
    run(tiny_teacher_dir, glue, straight, "training.learning_rate=1e-3")
    stage = straight / "stages" / "distill"
    first, last = torch.load(stage / "checkpoint-2" / GENERATOR_STATE), torch.load(stage / "checkpoint-4" / GENERATOR_STATE)
    assert any(not torch.equal(first["generator"][k], last["generator"][k]) for k in first["generator"])  # it trains
    assert int(last["loss"]["epochs"]) == 2 and last["loss"]["previous"].abs().sum() > 0

    # an interrupted run: the same folder as it stood at checkpoint-2, resumed
    work = tmp_path / "resumed.partial"
    shutil.copytree(straight, work)
    for path in ("model", "metrics.json", "run.json", "stages/distill/done.json", "stages/distill/model",
                 "stages/distill/checkpoint-4"):
        shutil.rmtree(work / path) if (work / path).is_dir() else (work / path).unlink()
    run(tiny_teacher_dir, glue, tmp_path / "resumed", "training.learning_rate=1e-3", resume=True)
    a, b = (load_file(str(p / "model" / "model.safetensors")) for p in (straight, tmp_path / "resumed"))
    start = tiny_classifier().state_dict()
    assert any(not torch.equal(a[k], start[k]) for k in a if k in start and a[k].shape == start[k].shape)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    again = torch.load(tmp_path / "resumed" / "stages" / "distill" / "checkpoint-4" / GENERATOR_STATE)
    for k in last["generator"]:
        torch.testing.assert_close(again["generator"][k], last["generator"][k], rtol=0, atol=1e-6)


def test_a_student_with_another_vocabulary_is_refused(tmp_path):
    from kdnlp.methods.datafree.trainer import check_shared_vocabulary

    teacher, other = tiny_classifier(), tiny_classifier(vocab_size=1000)
    with pytest.raises(KdnlpError, match="one vocabulary.*'t'.*30522.*'s'.*1000"):
        check_shared_vocabulary("t", "s", teacher, other, True)
    check_shared_vocabulary("t", "s", teacher, tiny_classifier(seed=3), True)


def test_two_processes_in_bf16_train_one_generator(tiny_teacher_dir, tmp_path):
    """DDP (gloo) and mixed precision: both processes run the generator (broadcast at the start, gradients averaged,
    the previous-epoch values averaged), and the run finishes with the checkpointed generator state."""
    from test_cli import kdnlp

    glue = glue_folder(tmp_path / "glue", None)
    out = tmp_path / "ddp"
    r = kdnlp("distill", "--recipe", "data-free", "--teacher", tiny_teacher_dir, "--task", "sst2",
              "--data-dir", glue, "-o", out, "--bf16", "--num-processes", "2",
              "--set", "training.max_steps=2", "--set", "training.per_device_train_batch_size=4",
              "--set", "training.save_steps=2", "--set", "training.eval_steps=2",
              "--set", "stages.distill.generator.seq_length=10",
              "--set", "stages.distill.generator.epoch_steps=1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["finished"]
    state = torch.load(out / "stages" / "distill" / "checkpoint-2" / GENERATOR_STATE)
    assert int(state["loss"]["epochs"]) == 2 and all(torch.isfinite(v).all() for v in state["generator"].values())


def test_under_gradient_accumulation_the_generator_steps_once_per_optimizer_step(tiny_teacher_dir, tmp_path):
    glue = glue_folder(tmp_path / "glue", None)
    out = tmp_path / "accumulated"
    run(tiny_teacher_dir, glue, out, "training.max_steps=2", "training.gradient_accumulation_steps=3",
        "training.per_device_train_batch_size=2", "stages.distill.generator.epoch_steps=1")
    state = torch.load(out / "stages" / "distill" / "checkpoint-2" / GENERATOR_STATE)
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {2}
    assert int(state["loss"]["epochs"]) == 2

from __future__ import annotations

import pytest
import torch

from conftest import tiny_classifier, tiny_config
from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.layers import RULES
from kdnlp.modeling.students import init_student, narrow_student, select_layers


def test_spread_reproduces_distilberts_choice_and_uniform_is_tinyberts():
    assert select_layers(12, 6, "spread") == [1, 3, 5, 8, 10, 12]
    assert select_layers(6, 3, "spread") == [1, 4, 6]
    assert select_layers(6, 1, "spread") == [6]
    assert select_layers(12, 4, "uniform") == [3, 6, 9, 12]
    assert select_layers(6, 3, "uniform") == [2, 4, 6]


def test_other_strategies_and_lists():
    assert select_layers(6, 3, "every_other") == [1, 3, 5]
    assert select_layers(6, 2, "first") == [1, 2]
    assert select_layers(6, 2, "last") == [5, 6]
    assert select_layers(6, 3, "skip") == [2, 4, 6]
    assert select_layers(6, [2, 5]) == [2, 5]


@pytest.mark.parametrize("args, message", [
    ((6, 7, "uniform"), "between 1 and the teacher's 6"),
    ((6, [0, 6]), r"bad layers \[0, 6\]: layers count from 1 \(0 is the embeddings\)"),
    ((6, [1, 7]), "teacher layer 7 is out of range 1..6"),
    ((6, []), "at least one of the teacher's layers 1..6"),
    ((6, [3, 1]), "distinct layers in increasing order"),
    ((6, 2, "every_other"), "keeps 3 of 6 layers"),
    ((6, 2, "random"), "unknown layer rule 'random'; valid: uniform, spread, skip, first, last, every_other"),
])
def test_bad_layer_choices(args, message):
    with pytest.raises(KdnlpError, match=message):
        select_layers(*args)


@pytest.mark.parametrize("rule, m, n", [(r, 3, 6) for r in RULES] + [(r, 4, 12) for r in RULES if r != "every_other"])
def test_a_student_built_by_a_rule_learns_each_layer_toward_the_layer_it_was_copied_from(rule, m, n):
    """Built with `strategy: rule` and trained by a term with `layers: rule`, each mapped student layer starts as a
    copy of the teacher layer it is pulled toward (every_other needs M = N/2)."""
    from kdnlp.losses import LOSSES, LossContext
    from kdnlp.modeling.students import StudentSpec
    from kdnlp.modeling.students import build_student

    teacher = tiny_classifier(layers=n)
    student, _ = build_student(teacher, StudentSpec(layers=m, strategy=rule))
    pkd = LOSSES.get("pkd")
    pairs = pkd(pkd.Config(layers=rule), LossContext(2, student.config, teacher.config)).pairs
    assert len(pairs) == (m - 1 if rule in ("skip", "last") else m)
    t, s = teacher.state_dict(), student.state_dict()
    for j, i in pairs:
        own = f"bert.encoder.layer.{j - 1}."
        copied = [k for k in s if k.startswith(own)]
        assert copied and all(torch.equal(s[k], t[k.replace(own, f"bert.encoder.layer.{i - 1}.")]) for k in copied)


def inputs():
    ids = torch.randint(1000, 2000, (3, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_all_layers_kept_gives_exactly_the_teachers_outputs():
    teacher = tiny_classifier()
    student = init_student(teacher, [1, 2, 3, 4]).eval()
    with torch.no_grad():
        a, b = teacher(**inputs(), output_hidden_states=True), student(**inputs(), output_hidden_states=True)
    assert torch.equal(a.logits, b.logits)
    assert all(torch.equal(x, y) for x, y in zip(a.hidden_states, b.hidden_states))


def test_subset_copies_the_chosen_layers_embeddings_and_head():
    teacher = tiny_classifier()
    student = init_student(teacher, [2, 4])
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    t, s = teacher.state_dict(), student.state_dict()
    for new, old in enumerate([1, 3]):  # hidden states 2, 4: the teacher's encoder.layer.1 and .3
        key = "bert.encoder.layer.{}.attention.self.query.weight"
        assert torch.equal(s[key.format(new)], t[key.format(old)])
    for key in ("bert.embeddings.word_embeddings.weight", "classifier.weight", "bert.pooler.dense.weight"):
        assert torch.equal(s[key], t[key])
    assert not any(s_ is t_ for s_, t_ in zip(student.parameters(), teacher.parameters()))


@pytest.mark.parametrize("arch", ["RobertaForSequenceClassification", "DistilBertForSequenceClassification",
                                  "ElectraForSequenceClassification"])
def test_other_bert_family_encoders(arch):
    import transformers

    base = tiny_config()
    if arch.startswith("DistilBert"):
        config = transformers.DistilBertConfig(vocab_size=100, dim=32, n_layers=4, n_heads=4, hidden_dim=64,
                                               max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    else:
        cls = getattr(transformers, arch.replace("ForSequenceClassification", "Config"))
        config = cls(**{k: getattr(base, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                      "intermediate_size", "hidden_dropout_prob",
                                                      "attention_probs_dropout_prob")},
                     vocab_size=100, max_position_embeddings=64)
    teacher = getattr(transformers, arch)(config).eval()
    full, part = init_student(teacher, [1, 2, 3, 4]).eval(), init_student(teacher, [1, 4])
    ids = {"input_ids": torch.randint(5, 100, (2, 7), generator=torch.Generator().manual_seed(1))}
    with torch.no_grad():
        assert torch.equal(teacher(**ids).logits, full(**ids).logits)
    layers = part.config.n_layers if arch.startswith("DistilBert") else part.config.num_hidden_layers
    assert layers == 2


def test_unsupported_architecture_is_refused():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    model = GPT2ForSequenceClassification(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100))
    with pytest.raises(KdnlpError, match="does not support model type 'gpt2'; supported: bert"):
        init_student(model, [1])


def test_narrow_student_truncates_teacher_weights_or_starts_at_random():
    teacher = tiny_classifier()
    student = narrow_student(teacher, [2, 4], "truncate", hidden_size=16, num_attention_heads=2, intermediate_size=40)
    c = student.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (2, 16, 2, 40)
    t, s = teacher.state_dict(), student.state_dict()
    assert torch.equal(s["bert.encoder.layer.1.intermediate.dense.weight"], t["bert.encoder.layer.3.intermediate.dense.weight"][:40, :16])
    assert torch.equal(s["bert.embeddings.word_embeddings.weight"], t["bert.embeddings.word_embeddings.weight"][:, :16])
    random = narrow_student(teacher, [2, 4], "random", hidden_size=16, num_attention_heads=2)
    assert not torch.equal(random.state_dict()["bert.embeddings.word_embeddings.weight"], s["bert.embeddings.word_embeddings.weight"])
    with torch.no_grad():
        assert student(**inputs()).logits.shape == (3, 2)
    with pytest.raises(KdnlpError, match="hidden_size 64 is larger than the teacher's 32"):
        narrow_student(teacher, [1], "truncate", hidden_size=64)


def per_head(weight: torch.Tensor, axis: int, heads: int, keep: int) -> torch.Tensor:
    """The first `keep` units of each of the `heads` heads laid side by side along `axis` of `weight`."""
    return torch.cat([h.narrow(axis, 0, keep) for h in weight.chunk(heads, axis)], axis)


def test_truncation_keeps_each_head_of_the_teacher_in_its_own_head():
    """Teacher hidden 32, 4 heads of 8; student hidden 16, 4 heads of 4: student head h starts from the first 4 units of
    teacher head h (queries, keys, values and the output projection's columns), every other weight from its leading
    block. A plain slice would give student head 1 the units 4..7 of teacher head 0."""
    teacher = tiny_classifier()
    student = narrow_student(teacher, [2, 4], "truncate", hidden_size=16, num_attention_heads=4)
    t, s = teacher.state_dict(), student.state_dict()
    for j, i in ((0, 1), (1, 3)):
        attn, own = f"bert.encoder.layer.{i}.attention.", f"bert.encoder.layer.{j}.attention."
        for name in ("query", "key", "value"):
            assert torch.equal(s[own + f"self.{name}.weight"], per_head(t[attn + f"self.{name}.weight"], 0, 4, 4)[:, :16])
            assert torch.equal(s[own + f"self.{name}.bias"], per_head(t[attn + f"self.{name}.bias"], 0, 4, 4))
        assert torch.equal(s[own + "output.dense.weight"], per_head(t[attn + "output.dense.weight"], 1, 4, 4)[:16])
        assert torch.equal(s[own + "output.dense.bias"], t[attn + "output.dense.bias"][:16])
        ffn = ".output.dense.weight"
        assert torch.equal(s[f"bert.encoder.layer.{j}{ffn}"], t[f"bert.encoder.layer.{i}{ffn}"][:16])
    # teacher head h's query and key units 0..3 meet in student head h: its scores are those units' share of the teacher's
    x = torch.randn(5, 16)
    q, k = (x @ s[f"bert.encoder.layer.0.attention.self.{n}.weight"].T for n in ("query", "key"))
    tq, tk = (torch.cat([x, torch.zeros(5, 16)], 1) @ t[f"bert.encoder.layer.1.attention.self.{n}.weight"].T
              for n in ("query", "key"))
    assert torch.allclose(q[:, 4:8] @ k[:, 4:8].T, tq[:, 8:12] @ tk[:, 8:12].T, atol=1e-6)
    # heads wider than the teacher's (2 of 12 from 4 of 8) cannot sit inside them: the plain slice
    wide = narrow_student(teacher, [2], "truncate", hidden_size=24, num_attention_heads=2).state_dict()
    assert torch.equal(wide["bert.encoder.layer.0.attention.self.query.weight"],
                       t["bert.encoder.layer.1.attention.self.query.weight"][:24, :24])


def test_student_spec_rules():
    from kdnlp.core.config import from_dict
    from kdnlp.modeling.students import StudentSpec
    from kdnlp.modeling.students import build_student

    with pytest.raises(KdnlpError, match="cannot copy the teacher's layers; set init: truncate or random"):
        from_dict(StudentSpec, {"hidden_size": 16}, "student")
    with pytest.raises(KdnlpError, match="hidden_size 30 is not a multiple of num_attention_heads 4"):
        from_dict(StudentSpec, {"init": "random", "hidden_size": 30, "num_attention_heads": 4}, "student")
    spec = from_dict(StudentSpec, {"layers": 2, "init": "truncate", "hidden_size": 16, "num_attention_heads": 2}, "student")
    student, ids = build_student(tiny_classifier(), spec)
    assert ids == [2, 4] and student.config.hidden_size == 16

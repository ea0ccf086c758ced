"""distilBART-style students of encoder-decoder teachers (BART, Marian, T5): chosen encoder and decoder layers, narrower
students, and the folder `init_student_folder` writes."""
from __future__ import annotations

import re

import pytest
import torch

from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.students import StudentSpec
from kdnlp.modeling.scratch import model_config
from kdnlp.modeling.students import build_student, init_student, narrow_student, select_student_layers

ARCHS = ["bart", "marian", "t5"]
#: Each architecture's encoder and decoder layer lists, as the state dict names them.
STACKS = {"bart": ("model.encoder.layers", "model.decoder.layers"),
          "marian": ("model.encoder.layers", "model.decoder.layers"),
          "t5": ("encoder.block", "decoder.block")}


def tiny_teacher(arch: str, seed: int = 0, vocab_size: int = 100):
    """4 encoder and 3 decoder layers, hidden 32; its weights perturbed so that no two layers are alike."""
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(seed)
    config = model_config(arch, vocab_size, d_model=32, encoder_layers=4, decoder_layers=3, heads=4, ffn_dim=64,
                          max_position_embeddings=64, dropout=0.0)
    model = AutoModelForSeq2SeqLM.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 100, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": torch.randint(3, 100, (3, 5), generator=g)}


def layer_counts(config):
    if config.model_type == "t5":
        return config.num_layers, config.num_decoder_layers
    return config.encoder_layers, config.decoder_layers


@pytest.mark.parametrize("arch", ARCHS)
def test_keeping_every_layer_reproduces_the_teachers_logits(arch):
    teacher = tiny_teacher(arch)
    student = init_student(teacher, [1, 2, 3, 4]).eval()
    assert type(student) is type(teacher) and layer_counts(student.config) == (4, 3)
    with torch.no_grad():
        a, b = teacher(**batch()), student(**batch())
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.encoder_last_hidden_state, b.encoder_last_hidden_state)
    same, _ = build_student(teacher, StudentSpec(layers=4))
    with torch.no_grad():
        assert torch.equal(same.eval()(**batch()).logits, a.logits)


def teacher_name(key: str, arch: str, encoder_ids: list[int], decoder_ids: list[int]) -> str:
    for stack, ids in zip(STACKS[arch], (encoder_ids, decoder_ids)):
        m = re.match(rf"{re.escape(stack)}\.(\d+)\.(.*)", key)
        if m:
            if "relative_attention_bias" in m.group(2):  # T5: only block 0 has it, and the student's is the teacher's block 0's
                return key
            return f"{stack}.{ids[int(m.group(1))] - 1}.{m.group(2)}"
    return key


@pytest.mark.parametrize("arch", ARCHS)
def test_a_2_plus_1_student_holds_the_chosen_encoder_and_decoder_layers(arch):
    teacher = tiny_teacher(arch)
    student = init_student(teacher, [2, 4], [3])
    assert layer_counts(student.config) == (2, 1) and layer_counts(teacher.config) == (4, 3)
    t, s = teacher.state_dict(), student.state_dict()
    assert len(s) < len(t)
    for key, value in s.items():
        assert torch.equal(value, t[teacher_name(key, arch, [2, 4], [3])]), key
    encoder, decoder = STACKS[arch]
    layer = "layer.0.SelfAttention.q.weight" if arch == "t5" else "self_attn.q_proj.weight"
    assert torch.equal(s[f"{encoder}.1.{layer}"], t[f"{encoder}.3.{layer}"])
    assert not torch.equal(s[f"{decoder}.0.{layer}"], t[f"{decoder}.0.{layer}"])
    if arch == "t5":
        bias = "layer.0.SelfAttention.relative_attention_bias.weight"
        assert torch.equal(s[f"{encoder}.0.{bias}"], t[f"{encoder}.0.{bias}"]) and f"{encoder}.1.{bias}" not in t
        assert torch.equal(s[f"{decoder}.0.{bias}"], t[f"{decoder}.0.{bias}"])
    assert not any(p is q for p in student.parameters() for q in teacher.parameters())
    with torch.no_grad():
        assert student.eval()(**batch()).logits.shape == (3, 5, 100)
        out = student.generate(input_ids=batch()["input_ids"], attention_mask=batch()["attention_mask"], max_new_tokens=4)
    assert (out[:, 0] == teacher.config.decoder_start_token_id).all()


def test_the_strategy_chooses_both_lists_and_decoder_layers_default_to_all():
    config = tiny_teacher("bart").config
    assert select_student_layers(config, 2, 2) == [[2, 4], [1, 3]]
    assert select_student_layers(config, 2, 2, "spread") == [[1, 4], [1, 3]]
    assert select_student_layers(config, 2, 2, "last") == [[3, 4], [2, 3]]
    assert select_student_layers(config, [1, 3]) == [[1, 3], [1, 2, 3]]
    student, ids = build_student(tiny_teacher("t5"), StudentSpec(layers=3, decoder_layers=1, strategy="first"))
    assert ids == [1, 2, 3] and layer_counts(student.config) == (3, 1)


def test_bad_layer_choices():
    teacher = tiny_teacher("marian")
    with pytest.raises(KdnlpError, match=r"bad layers \[1, 5\]: teacher layer 5 is out of range 1..4"):
        init_student(teacher, [1, 5])
    with pytest.raises(KdnlpError, match=r"bad decoder_layers \[4\]: teacher layer 4 is out of range 1..3"):
        init_student(teacher, [1], [4])
    with pytest.raises(KdnlpError, match=r"bad decoder_layers \[0, 2\]: layers count from 1 \(0 is the embeddings\)"):
        init_student(teacher, [1], [0, 2])
    with pytest.raises(KdnlpError, match="bad decoder_layers count 5: must be between 1 and the teacher's 3"):
        build_student(teacher, StudentSpec(layers=2, decoder_layers=5))
    with pytest.raises(KdnlpError, match="every_other keeps 2 of 3 decoder layers, not 1"):
        build_student(teacher, StudentSpec(layers=2, decoder_layers=1, strategy="every_other"))
    from conftest import tiny_classifier

    with pytest.raises(KdnlpError, match="decoder_layers is for encoder-decoder models; 'bert' has no decoder"):
        build_student(tiny_classifier(), StudentSpec(layers=2, decoder_layers=1))
    with pytest.raises(KdnlpError, match="decoder_layers is for encoder-decoder models"):
        init_student(tiny_classifier(), [1], [1])


#: arch -> (a student key, the same weight in the teacher's layer 3 / decoder layer 2) of the feed-forward input.
FFN = {"bart": ("model.encoder.layers.1.fc1.weight", "model.encoder.layers.3.fc1.weight"),
       "marian": ("model.decoder.layers.0.fc1.weight", "model.decoder.layers.2.fc1.weight"),
       "t5": ("encoder.block.1.layer.1.DenseReluDense.wi.weight", "encoder.block.3.layer.1.DenseReluDense.wi.weight")}


@pytest.mark.parametrize("arch", ARCHS)
def test_narrow_students_truncate_or_start_at_random(arch):
    teacher = tiny_teacher(arch)
    spec = StudentSpec(layers=2, decoder_layers=[3], init="truncate", hidden_size=16, num_attention_heads=2,
                       intermediate_size=40)
    student, ids = build_student(teacher, spec)
    c = student.config
    assert ids == [2, 4] and layer_counts(c) == (2, 1)
    if arch == "t5":
        assert (c.d_model, c.num_heads, c.d_kv, c.d_ff) == (16, 2, 8, 40)
    else:
        assert (c.d_model, c.encoder_attention_heads, c.decoder_attention_heads, c.encoder_ffn_dim, c.decoder_ffn_dim) \
            == (16, 2, 2, 40, 40)
    s, t = student.state_dict(), teacher.state_dict()
    new, old = FFN[arch]
    assert torch.equal(s[new], t[old][:40, :16])
    embeddings = "shared.weight" if arch == "t5" else "model.shared.weight"
    assert torch.equal(s[embeddings], t[embeddings][:, :16])
    if arch == "marian":  # sinusoidal positions are computed for the student's width, not cut from the teacher's
        fresh = narrow_student(teacher, [1], "random", hidden_size=16, num_attention_heads=2).state_dict()
        key = "model.encoder.embed_positions.weight"
        assert torch.equal(s[key], fresh[key]) and not torch.equal(s[key], t[key][:, :16])
    if arch == "t5":
        bias = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        assert torch.equal(s[bias], t[bias][:, :2])
    random, _ = build_student(teacher, StudentSpec(layers=2, init="random", hidden_size=16, num_attention_heads=2))
    assert layer_counts(random.config) == (2, 3) and not torch.equal(random.state_dict()[embeddings], s[embeddings])
    with torch.no_grad():
        assert student.eval()(**batch()).logits.shape == (3, 5, 100)
    with pytest.raises(KdnlpError, match="student intermediate_size 128 is larger than the teacher's 64"):
        narrow_student(teacher, [1], "truncate", intermediate_size=128)
    with pytest.raises(KdnlpError, match="student hidden_size 32 is not a multiple of num_attention_heads 3"):
        narrow_student(teacher, [1], "truncate", num_attention_heads=3)


@pytest.mark.parametrize("arch", ARCHS)
def test_narrow_students_keep_each_teacher_head_in_its_own_head(arch):
    """Hidden 32 with 4 heads of 8 -> hidden 16 with 4 heads of 4: in the encoder's self-attention and the decoder's
    cross-attention, student head h starts from the first 4 units of teacher head h."""
    from test_students import per_head

    teacher = tiny_teacher(arch)
    t, s = teacher.state_dict(), narrow_student(teacher, [1, 4], "truncate", hidden_size=16).state_dict()
    enc, dec = STACKS[arch]
    if arch == "t5":
        attn = {f"{enc}.1.layer.0.SelfAttention": f"{enc}.3.layer.0.SelfAttention",
                f"{dec}.0.layer.1.EncDecAttention": f"{dec}.0.layer.1.EncDecAttention"}
        rows, out = ("q", "k", "v"), "o"
    else:
        attn = {f"{enc}.1.self_attn": f"{enc}.3.self_attn", f"{dec}.0.encoder_attn": f"{dec}.0.encoder_attn"}
        rows, out = ("q_proj", "k_proj", "v_proj"), "out_proj"
    for own, theirs in attn.items():
        for name in rows:
            assert torch.equal(s[f"{own}.{name}.weight"], per_head(t[f"{theirs}.{name}.weight"], 0, 4, 4)[:, :16])
        assert torch.equal(s[f"{own}.{out}.weight"], per_head(t[f"{theirs}.{out}.weight"], 1, 4, 4)[:16])


def test_narrow_distilbert_sets_its_own_size_fields():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    teacher = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=100, dim=32, n_layers=4, n_heads=4,
                                                                   hidden_dim=64, max_position_embeddings=64))
    c = narrow_student(teacher, [1, 4], "truncate", hidden_size=16, num_attention_heads=2, intermediate_size=40).config
    assert (c.n_layers, c.dim, c.n_heads, c.hidden_dim) == (2, 16, 2, 40)


@pytest.mark.parametrize("arch", ["bart", "t5"])
def test_init_student_folder_writes_a_folder_that_loads_alone(tmp_path, arch):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from kdnlp.modeling.scratch import train_tokenizer
    from kdnlp.modeling.students import init_student_folder

    tok = train_tokenizer(["Ein Mann läuft über die Straße.", "A man runs across the street."] * 5, vocab_size=300)
    teacher = tiny_teacher(arch, vocab_size=len(tok))
    teacher.generation_config.num_beams = 3
    teacher.save_pretrained(tmp_path / "teacher")
    tok.save_pretrained(tmp_path / "teacher")
    ids = init_student_folder(str(tmp_path / "teacher"), str(tmp_path / "student"), [1, 3], decoder_layers=[2])
    assert ids == [1, 3]
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "student").eval()
    assert type(loaded) is type(teacher) and layer_counts(loaded.config) == (2, 1)
    assert loaded.generation_config.num_beams == 3
    expected = init_student(teacher, [1, 3], [2]).eval()
    enc = AutoTokenizer.from_pretrained(tmp_path / "student")(["Ein Mann läuft."], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded(**enc, decoder_input_ids=enc["input_ids"][:, :3]).logits,
                           expected(**enc, decoder_input_ids=enc["input_ids"][:, :3]).logits)

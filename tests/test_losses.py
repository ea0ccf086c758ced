"""Every registered loss: zero when the student equals the teacher, positive otherwise, finite gradients
that reach only the student, values that match a hand computation."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from kdnlp.losses import LOSSES, CompositeLoss, LossContext
from kdnlp.losses.cosine import masked_cosine_loss
from kdnlp.losses.hinton import soft_target_kl

CFG = SimpleNamespace(model_type="bert", hidden_size=8, num_hidden_layers=2, num_attention_heads=2)


def outputs(seed: int, requires_grad: bool = False, num_labels: int = 3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, num_labels, generator=g, requires_grad=requires_grad)
    hidden = tuple(torch.randn(4, 5, 8, generator=g, requires_grad=requires_grad) for _ in range(3))
    qkv = tuple(tuple(torch.randn(4, 5, 8, generator=g, requires_grad=requires_grad) for _ in range(3)) for _ in range(2))
    return SimpleNamespace(logits=logits, hidden_states=hidden, qkv=qkv,
                           leaves=[logits, *hidden, *(x for layer in qkv for x in layer)])


BATCH = {"labels": torch.tensor([0, 2, 1, 1]), "attention_mask": torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 5, [1] * 4 + [0]])}
TEACHER_LOSSES = [n for n in LOSSES.names() if LOSSES.get(n).uses_teacher]
#: Terms whose value for an example depends on the other examples of its batch (relations, in-batch negatives);
#: tests/test_survey_losses.py documents the exception.
BATCH_STATISTICS = {"crd", "rkd", "sp"}
#: Contrastive: not zero when the student equals the teacher (tests/test_survey_losses.py says what it is then).
NOT_ZERO_AT_A_MATCH = {"crd"}


def make(name: str, num_labels: int = 3):
    cls = LOSSES.get(name)
    return cls(cls.Config(), LossContext(num_labels, CFG, CFG))


@pytest.mark.parametrize("name", [n for n in TEACHER_LOSSES if n not in NOT_ZERO_AT_A_MATCH])
@pytest.mark.parametrize("num_labels", [3, 1])
def test_zero_when_student_equals_teacher(name, num_labels):
    t = outputs(0, num_labels=num_labels)
    assert make(name, num_labels)(t, t, BATCH).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", TEACHER_LOSSES)
@pytest.mark.parametrize("num_labels", [3, 1])
def test_positive_with_finite_gradients_to_the_student_only(name, num_labels):
    s, t = outputs(1, requires_grad=True, num_labels=num_labels), outputs(2, num_labels=num_labels)
    loss = make(name, num_labels)(s, t, BATCH)
    assert loss.dtype == torch.float32 and loss.item() > 0
    loss.backward()
    grads = [x.grad for x in s.leaves if x.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert all(x.grad is None for x in t.leaves)


def test_hinton_matches_hand_computation():
    s, t, T = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[0.2, 3.0, -1.0]]), 2.0
    ps = [math.exp(v / T) for v in s[0].tolist()]
    pt = [math.exp(v / T) for v in t[0].tolist()]
    ps, pt = [p / sum(ps) for p in ps], [p / sum(pt) for p in pt]
    kl = sum(b * math.log(b / a) for a, b in zip(ps, pt))
    assert soft_target_kl(s, t, T).item() == pytest.approx(kl * T * T, rel=1e-5)


def test_hinton_is_float32_and_finite_on_extreme_half_precision_logits():
    for dtype in (torch.float16, torch.bfloat16):
        s = torch.tensor([[6e4, -6e4, 0.0], [-6e4, 6e4, 1.0]], dtype=dtype, requires_grad=True)
        t = torch.tensor([[-6e4, 6e4, 0.0], [6e4, -6e4, 2.0]], dtype=dtype)
        loss = soft_target_kl(s, t, 1.0)
        loss.backward()
        assert loss.dtype == torch.float32 and torch.isfinite(loss) and loss.item() > 0
        assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("teacher_hidden", [8, 16])
def test_every_term_is_float32_and_finite_on_extreme_half_precision_outputs(dtype, teacher_hidden):
    """Half-precision outputs with values near fp16's limit, under autocast: the composite casts them up and
    turns autocast off, so each term (projections included, teacher_hidden 16) is computed in float32."""
    ctx = LossContext(3, CFG, SimpleNamespace(**{**vars(CFG), "hidden_size": teacher_hidden}))
    names = [n for n in TEACHER_LOSSES if teacher_hidden == 8 or n not in ("cosine", "pkd")]
    comp = CompositeLoss({n: (1.0, LOSSES.get(n)(LOSSES.get(n).Config(), ctx)) for n in names})

    def extreme(seed, hidden):
        o = outputs(seed)
        big = lambda x: (x.sign() * 6e4).to(dtype)  # noqa: E731
        return SimpleNamespace(logits=big(o.logits),
                               hidden_states=tuple(big(torch.randn(4, 5, hidden)) for _ in o.hidden_states),
                               qkv=tuple(tuple(big(torch.randn(4, 5, hidden)) for _ in range(3)) for _ in o.qkv))

    s, t = extreme(6, 8), extreme(7, teacher_hidden)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, terms = comp(s, t, BATCH)
    assert total.dtype == torch.float32 and torch.isfinite(total)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in terms.values()), terms


@pytest.mark.parametrize("name", [n for n in TEACHER_LOSSES if n not in BATCH_STATISTICS])
def test_a_batch_value_is_the_mean_of_its_examples_values(name):
    """Per-example means (not token-pooled): the loss of 4 examples of different lengths is the mean of the
    losses of its halves, which makes gradient accumulation and multi-process batches exact."""
    s, t, loss = outputs(10), outputs(11), make(name)

    def half(o, rows):
        return SimpleNamespace(logits=o.logits[rows], hidden_states=tuple(h[rows] for h in o.hidden_states),
                               qkv=tuple(tuple(x[rows] for x in layer) for layer in o.qkv))

    parts = [loss(half(s, rows), half(t, rows), {k: v[rows] for k, v in BATCH.items()}) for rows in (slice(0, 2), slice(2, 4))]
    assert loss(s, t, BATCH).item() == pytest.approx(sum(parts).item() / 2, rel=1e-5)


def test_cosine_ignores_padding_and_matches_hand_computation():
    s = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    t = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-7.0, 1.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # token 0: cos 1 -> 0; token 1: cos 0 -> 1; token 2 is padding
    assert masked_cosine_loss(s, t, mask).item() == pytest.approx(0.5)
    t2 = t.clone()
    t2[0, 2] = torch.tensor([3.0, -9.0])
    assert masked_cosine_loss(s, t2, mask).item() == pytest.approx(0.5)


def test_ce_is_cross_entropy_or_mse():
    s = outputs(3)
    expected = torch.nn.functional.cross_entropy(s.logits, BATCH["labels"])
    assert make("ce")(s, None, BATCH).item() == pytest.approx(expected.item())
    reg = SimpleNamespace(logits=torch.tensor([[1.0], [2.0]]))
    assert make("ce", 1)(reg, None, {"labels": torch.tensor([0.0, 4.0])}).item() == pytest.approx((1 + 4) / 2)


def test_composite_is_the_weighted_sum_and_reports_each_term():
    ctx = LossContext(3, CFG, CFG)
    comp = CompositeLoss({
        "ce": (0.25, LOSSES.get("ce")(LOSSES.get("ce").Config(), ctx)),
        "hinton": (2.0, LOSSES.get("hinton")(LOSSES.get("hinton").Config(temperature=3.0), ctx)),
    })
    s, t = outputs(4), outputs(5)
    total, terms = comp(s, t, BATCH)
    assert set(terms) == {"ce", "hinton"}
    assert total.item() == pytest.approx(0.25 * terms["ce"].item() + 2.0 * terms["hinton"].item())
    assert terms["hinton"].item() == pytest.approx(soft_target_kl(s.logits, t.logits, 3.0).item())
    assert comp.formula() == "0.25 * ce + 2 * hinton(temperature=3.0)"
    assert comp.uses_teacher and comp.needs == {"logits"}


def test_pkd_matches_hand_computation_on_cls_vectors():
    from kdnlp.losses.pkd import normalised_cls_mse

    s = [torch.tensor([[[3.0, 4.0], [9.0, 9.0]]]), torch.tensor([[[0.0, 2.0], [1.0, 1.0]]])]
    t = [torch.tensor([[[4.0, 3.0], [0.0, 1.0]]]), torch.tensor([[[0.0, 5.0], [7.0, 7.0]]])]
    # layer 1: (0.6,0.8) vs (0.8,0.6) -> mean(0.04, 0.04); layer 2: identical directions -> 0; only [CLS] counts
    assert normalised_cls_mse(s, t).item() == pytest.approx(0.02)


def test_pkd_is_the_mean_over_hidden_units_examples_and_layers():
    """As the PKD reference code's F.mse_loss: the recipes' weight 100 is meant for a mean, not a sum over units."""
    from kdnlp.losses.pkd import normalised_cls_mse

    g = torch.Generator().manual_seed(0)
    s = [torch.randn(3, 4, 5, generator=g) for _ in range(2)]
    t = [torch.randn(3, 4, 5, generator=g) for _ in range(2)]
    total = 0.0
    for sl, tl in zip(s, t):
        for i in range(3):
            a, b = sl[i, 0].tolist(), tl[i, 0].tolist()
            na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
            total += sum((x / na - y / nb) ** 2 for x, y in zip(a, b)) / 5
    assert normalised_cls_mse(s, t).item() == pytest.approx(total / (2 * 3), rel=1e-5)


def test_pkd_uses_its_layer_map():
    cfg_s, cfg_t = SimpleNamespace(hidden_size=8, num_hidden_layers=2), SimpleNamespace(hidden_size=8, num_hidden_layers=4)
    cls = LOSSES.get("pkd")
    assert cls(cls.Config(layers="skip"), LossContext(3, cfg_s, cfg_t)).pairs == [(1, 2)]
    assert cls(cls.Config(layers="last"), LossContext(3, cfg_s, cfg_t)).pairs == [(1, 3)]
    assert cls(cls.Config(layers=[1, 4]), LossContext(3, cfg_s, cfg_t)).pairs == [(1, 1), (2, 4)]


def test_tinybert_mse_terms_match_hand_computation_and_skip_padding():
    from kdnlp.losses.tinybert import attention_mse, masked_mse

    s = torch.tensor([[[1.0, 2.0], [3.0, 3.0], [100.0, 100.0]]])
    t = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-5.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert masked_mse(s, t, mask).item() == pytest.approx((4 + 9) / 4)
    a = torch.tensor([[[[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]]]])
    b = torch.tensor([[[[1.0, 0.0, 0.0], [0.2, 0.8, 0.0], [0.9, 0.1, 0.0]]]])
    assert attention_mse(a, b, mask).item() == pytest.approx((0.25 + 0.25) / 4)
    # different head counts: the head-averaged maps are compared
    two = torch.cat([a, b], dim=1)
    assert attention_mse(two, (a + b) / 2, mask).item() == pytest.approx(0.0)


def test_tinybert_projections_bridge_hidden_sizes_and_get_gradients():
    narrow = SimpleNamespace(model_type="bert", hidden_size=4, num_hidden_layers=2, num_attention_heads=1)
    ctx = LossContext(3, narrow, CFG)
    t = outputs(6)
    g = torch.Generator().manual_seed(7)
    s = SimpleNamespace(hidden_states=tuple(torch.randn(4, 5, 4, generator=g, requires_grad=True) for _ in range(3)),
                        qkv=tuple(tuple(torch.randn(4, 5, 4, generator=g) for _ in range(3)) for _ in range(2)))
    for name, extra in (("tinybert_hidden", {}), ("tinybert_hidden", {"shared_projection": True}), ("tinybert_embedding", {})):
        cls = LOSSES.get(name)
        loss = cls(cls.Config(**extra), ctx)
        params = list(loss.parameters())
        assert params and all(p.shape[0] == 8 for p in params if p.dim() == 2)
        expected = 1 if extra or name == "tinybert_embedding" else 2
        assert sum(p.dim() == 2 for p in params) == expected
        value = loss(s, t, BATCH)
        value.backward()
        assert value.item() > 0 and all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    attn = LOSSES.get("tinybert_attention")
    assert attn(attn.Config(), ctx)(s, t, BATCH).item() > 0  # 1 student head vs 2 teacher heads


def test_tinybert_projections_start_by_comparing_each_truncated_unit_with_its_teacher_unit():
    """A narrow student cut from the teacher (hidden 32 -> 16): at the start, the embedding and hidden terms compare the
    student's vectors, padded with zeros, with the teacher's, so they pull each unit toward the one it was cut from."""
    from conftest import tiny_classifier

    from kdnlp.losses.tinybert import masked_mse
    from kdnlp.modeling.students import narrow_student

    teacher = tiny_classifier()
    student = narrow_student(teacher, [2, 4], "truncate", hidden_size=16, num_attention_heads=4)
    batch = {"input_ids": torch.tensor([[101, 7592, 2088, 102], [101, 2204, 102, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}
    s, t = (m(**batch, output_hidden_states=True) for m in (student, teacher))
    ctx = LossContext(2, student.config, teacher.config)
    pad = torch.zeros(2, 4, 16)
    for name, pairs in (("tinybert_embedding", [(0, 0)]), ("tinybert_hidden", [(1, 2), (2, 4)])):
        cls = LOSSES.get(name)
        value = cls(cls.Config(), ctx)(s, t, batch)
        expected = torch.stack([masked_mse(torch.cat([s.hidden_states[i], pad], -1), t.hidden_states[j],
                                           batch["attention_mask"]) for i, j in pairs]).mean()
        assert value.item() == pytest.approx(expected.item(), rel=1e-5)
        nothing = torch.stack([masked_mse(torch.zeros_like(t.hidden_states[j]), t.hidden_states[j],
                                          batch["attention_mask"]) for _, j in pairs]).mean()
        assert value.item() < nothing.item()  # the cut units already carry some of the teacher's


def test_tinybert_prediction_is_kl_without_t_squared():
    from kdnlp.losses.hinton import soft_target_kl

    s, t = outputs(8), outputs(9)
    cls = LOSSES.get("tinybert_prediction")
    value = cls(cls.Config(temperature=2.0), LossContext(3, CFG, CFG))(s, t, BATCH)
    assert value.item() == pytest.approx(soft_target_kl(s.logits, t.logits, 2.0).item() / 4)
    soft_ce = -(t.logits.softmax(-1) * s.logits.log_softmax(-1)).sum(-1).mean()
    entropy = -(t.logits.softmax(-1) * t.logits.log_softmax(-1)).sum(-1).mean()
    one = cls(cls.Config(), LossContext(3, CFG, CFG))(s, t, BATCH)
    assert one.item() == pytest.approx((soft_ce - entropy).item(), rel=1e-5)


def test_gradient_norms_and_the_dominant_term():
    """Each term's gradient norm on the parameters, and the guardrail's rule: a term dominates when its gradient is
    more than 100x every other's."""
    from kdnlp.losses.composite import dominant, gradient_norms

    w = torch.tensor([3.0, 4.0], requires_grad=True)
    terms = {"big": 1000 * (w ** 2).sum() / 2, "small": (w * torch.tensor([1.0, 0.0])).sum(), "none": torch.tensor(1.0)}
    norms = gradient_norms(terms, [w])
    assert norms["big"] == pytest.approx(5000.0) and norms["small"] == pytest.approx(1.0) and norms["none"] == 0.0
    assert dominant(norms) == ("big", pytest.approx(5000.0))
    assert dominant({"a": 50.0, "b": 1.0}) is None and dominant({"a": 5.0, "b": 0.0}) is None
    (terms["big"] + terms["small"]).backward()  # the graph was kept for the step's own backward pass
    assert w.grad is not None

"""The survey's terms (fitnets, rkd, sp, crd, vid) beyond the checks every term gets in test_losses.py: values
against independent loop computations, gradients to their own parameters, the batch-statistic exceptions, CRD's
value at a match and VID's minimum."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from kdnlp.core.config import from_dict
from kdnlp.core.errors import KdnlpError
from kdnlp.losses import LOSSES, LossContext
from test_losses import BATCH, CFG

NARROW = SimpleNamespace(hidden_size=4, num_hidden_layers=2, num_attention_heads=1)


def build(name: str, student=CFG, teacher=CFG, **params):
    cls = LOSSES.get(name)
    return cls(from_dict(cls.Config, params, name), LossContext(3, student, teacher))


def hidden(seed: int, widths: int = 8, layers: int = 3, requires_grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    states = tuple(torch.randn(4, 5, widths, generator=g, requires_grad=requires_grad) for _ in range(layers))
    return SimpleNamespace(hidden_states=states)


def rows(x: torch.Tensor) -> list[list[float]]:
    return x.tolist()


def huber(a: float, b: float) -> float:
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> list[list[float]]:
    """Mean of each example's real-token vectors, by loops."""
    out = []
    for i in range(x.shape[0]):
        real = [x[i, j].tolist() for j in range(x.shape[1]) if mask[i, j]]
        out.append([sum(v[k] for v in real) / len(real) for k in range(x.shape[2])])
    return out


@pytest.mark.parametrize("name", ["fitnets", "crd", "vid"])
def test_own_parameters_get_gradients_and_bridge_widths(name):
    """Student width 4, teacher 8: the term's regressors or heads get finite gradients, the teacher none."""
    loss = build(name, NARROW, CFG)
    s, t = hidden(1, widths=4, requires_grad=True), hidden(2)
    value = loss(s, t, BATCH)
    value.backward()
    params = list(loss.parameters())
    assert params and all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in params)
    assert any(x.grad is not None for x in s.hidden_states) and all(not x.requires_grad for x in t.hidden_states)


@pytest.mark.parametrize("name", ["rkd", "sp"])
def test_relations_need_no_parameters_and_bridge_widths(name):
    loss = build(name, NARROW, CFG)
    assert not list(loss.parameters())
    assert loss(hidden(1, widths=4), hidden(2), BATCH).item() > 0


@pytest.mark.parametrize("name", ["rkd", "sp", "crd"])
def test_batch_statistics_are_not_the_mean_of_half_batches(name):
    """The documented exception: relations and in-batch negatives are formed within a (micro-)batch, so a batch's
    value differs from the mean of its halves' values (what gradient accumulation over the halves would optimise)."""
    loss = build(name)
    s, t = hidden(10), hidden(11)

    def part(o, r):
        return SimpleNamespace(hidden_states=tuple(h[r] for h in o.hidden_states))

    halves = [loss(part(s, r), part(t, r), {k: v[r] for k, v in BATCH.items()}) for r in (slice(0, 2), slice(2, 4))]
    whole = loss(s, t, BATCH).item()
    assert math.isfinite(whole) and whole != pytest.approx(sum(halves).item() / 2, rel=1e-3)


def test_fitnets_matches_hand_computation_with_a_regressor_between_widths():
    student, teacher = SimpleNamespace(hidden_size=2, num_hidden_layers=3), SimpleNamespace(hidden_size=3, num_hidden_layers=6)
    loss = build("fitnets", student, teacher)
    assert (loss.student_layer, loss.teacher_layer) == (2, 3)  # the middle layers
    w, bias = [[1.0, 0.0], [0.5, -1.0], [2.0, 1.0]], [0.1, 0.0, -0.2]
    with torch.no_grad():
        loss.regressor.weight.copy_(torch.tensor(w))
        loss.regressor.bias.copy_(torch.tensor(bias))
    g = torch.Generator().manual_seed(0)
    s = SimpleNamespace(hidden_states=tuple(torch.randn(2, 3, 2, generator=g) for _ in range(4)))
    t = SimpleNamespace(hidden_states=tuple(torch.randn(2, 3, 3, generator=g) for _ in range(7)))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    per_example = []
    for i in range(2):
        total, count = 0.0, 0
        for j in range(3):
            if mask[i, j]:
                x, y = s.hidden_states[2][i, j].tolist(), t.hidden_states[3][i, j].tolist()
                for k in range(3):
                    total += (dot(w[k], x) + bias[k] - y[k]) ** 2
                count += 3
        per_example.append(total / count)
    value = loss(s, t, {"attention_mask": mask}).item()
    assert value == pytest.approx(sum(per_example) / 2, rel=1e-5)
    assert build("fitnets", student, teacher, student_layer=-1, teacher_layer=0).student_layer == 3


def test_fitnets_regressor_starts_as_the_identity_only_for_equal_widths():
    same = build("fitnets").regressor
    assert torch.equal(same.weight, torch.eye(8)) and not same.bias.any()
    assert build("fitnets", NARROW, CFG).regressor.weight.shape == (8, 4)


@pytest.mark.parametrize("name, params, bad", [
    ("fitnets", {"student_layer": 3}, "fitnets.student_layer"),
    ("fitnets", {"teacher_layer": -4}, "fitnets.teacher_layer"),
    ("rkd", {"teacher_layer": 9}, "rkd.teacher_layer"),
])
def test_layers_out_of_range_are_errors(name, params, bad):
    with pytest.raises(KdnlpError, match=bad):
        build(name, **params)


@pytest.mark.parametrize("name, params, bad", [
    ("rkd", {"distance_weight": -1}, "distance_weight"),
    ("rkd", {"distance_weight": 0, "angle_weight": 0}, "both 0"),
    ("rkd", {"pooling": "max"}, "pooling"),
    ("sp", {"pooling": "max"}, "pooling"),
    ("sp", {"layers": "skip"}, "maps no layers"),
    ("crd", {"temperature": 0}, "temperature"),
    ("crd", {"feature_dim": 0}, "feature_dim"),
    ("crd", {"num_negatives": 0}, "num_negatives"),
    ("vid", {"init_variance": 0}, "init_variance"),
])
def test_bad_settings_are_errors_naming_them(name, params, bad):
    one_layer = SimpleNamespace(hidden_size=8, num_hidden_layers=1, num_attention_heads=2)
    with pytest.raises(KdnlpError, match=bad):
        build(name, one_layer, CFG, **params)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_rkd_matches_hand_computation(pooling):
    s, t = hidden(3, layers=3), hidden(4, widths=6, layers=5)
    loss = build("rkd", CFG, SimpleNamespace(hidden_size=6, num_hidden_layers=4), pooling=pooling, teacher_layer=2)
    mask = BATCH["attention_mask"]
    if pooling == "cls":
        xs, xt = rows(s.hidden_states[-1][:, 0]), rows(t.hidden_states[2][:, 0])
    else:
        xs, xt = masked_mean(s.hidden_states[-1], mask), masked_mean(t.hidden_states[2], mask)
    b = 4

    def distances(x):
        d = {(i, j): norm([a - c for a, c in zip(x[i], x[j])]) for i in range(b) for j in range(b) if i != j}
        mean = sum(d.values()) / len(d)
        return {k: v / mean for k, v in d.items()}

    def angles(x):
        out = {}
        for i in range(b):
            for j in range(b):
                for k in range(b):
                    if len({i, j, k}) == 3:
                        u = [a - c for a, c in zip(x[j], x[i])]
                        v = [a - c for a, c in zip(x[k], x[i])]
                        out[i, j, k] = dot(u, v) / (norm(u) * norm(v))
        return out

    ds, dt = distances(xs), distances(xt)
    as_, at = angles(xs), angles(xt)
    distance = sum(huber(ds[k], dt[k]) for k in ds) / len(ds)
    angle = sum(huber(as_[k], at[k]) for k in as_) / len(as_)
    assert len(as_) == 24
    assert loss(s, t, BATCH).item() == pytest.approx(25 * distance + 50 * angle, rel=1e-4)


def test_rkd_is_finite_on_tiny_batches_and_duplicate_examples():
    loss = build("rkd")
    for n in (1, 2):
        s = SimpleNamespace(hidden_states=tuple(h[:n] for h in hidden(5, requires_grad=True).hidden_states))
        t = SimpleNamespace(hidden_states=tuple(h[:n] for h in hidden(6).hidden_states))
        value = loss(s, t, {"attention_mask": BATCH["attention_mask"][:n]})
        value.backward()
        assert value.item() == 0  # no pair or triplet; one pair's normalised distance is 1 for both models
    same = hidden(7, requires_grad=True)
    twice = SimpleNamespace(hidden_states=tuple(torch.cat([h[:2], h[:2]]) for h in same.hidden_states))
    value = loss(twice, hidden(8), BATCH)
    value.backward()
    assert torch.isfinite(value) and all(torch.isfinite(h.grad).all() for h in same.hidden_states if h.grad is not None)


@pytest.mark.parametrize("pooling", ["mean", "flatten", "cls"])
def test_sp_matches_hand_computation(pooling):
    student, teacher = CFG, SimpleNamespace(hidden_size=6, num_hidden_layers=4)
    loss = build("sp", student, teacher, pooling=pooling)
    assert loss.pairs == [(1, 2), (2, 4)]
    s, t = hidden(12), hidden(13, widths=6, layers=5)
    mask = BATCH["attention_mask"]

    def activations(x):
        if pooling == "mean":
            return masked_mean(x, mask)
        if pooling == "cls":
            return rows(x[:, 0])
        return [[v if mask[i, j] else 0.0 for j in range(x.shape[1]) for v in x[i, j].tolist()] for i in range(x.shape[0])]

    def gram(a):
        g = [[dot(a[i], a[j]) for j in range(len(a))] for i in range(len(a))]
        return [[v / norm(r) for v in r] for r in g]

    per_pair = []
    for ls, lt in loss.pairs:
        gs, gt = gram(activations(s.hidden_states[ls])), gram(activations(t.hidden_states[lt]))
        per_pair.append(sum((gs[i][j] - gt[i][j]) ** 2 for i in range(4) for j in range(4)) / 16)
    assert loss(s, t, BATCH).item() == pytest.approx(sum(per_pair) / 2, rel=1e-4)


def set_linear(layer: torch.nn.Linear, weight: list[list[float]]):
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.zero_()


@pytest.mark.parametrize("symmetric", [True, False])
def test_crd_matches_hand_computation(symmetric):
    student, teacher = SimpleNamespace(hidden_size=2, num_hidden_layers=1), SimpleNamespace(hidden_size=3, num_hidden_layers=1)
    loss = build("crd", student, teacher, feature_dim=2, temperature=0.5, symmetric=symmetric)
    ws, wt = [[1.0, 0.5], [-0.5, 2.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]
    set_linear(loss.student_head, ws)
    set_linear(loss.teacher_head, wt)
    g = torch.Generator().manual_seed(1)
    s = SimpleNamespace(hidden_states=(None, torch.randn(3, 2, 2, generator=g)))
    t = SimpleNamespace(hidden_states=(None, torch.randn(3, 2, 3, generator=g)))

    def embed(w, x):
        v = [dot(r, x) for r in w]
        return [c / norm(v) for c in v]

    zs = [embed(ws, s.hidden_states[1][i, 0].tolist()) for i in range(3)]
    zt = [embed(wt, t.hidden_states[1][i, 0].tolist()) for i in range(3)]

    def nce(anchor, keys):
        total = 0.0
        for i in range(3):
            e = [math.exp(dot(anchor[i], keys[j]) / 0.5) for j in range(3)]
            total += -math.log(e[i] / sum(e))
        return total / 3

    expected = (nce(zs, zt) + nce(zt, zs)) / 2 if symmetric else nce(zs, zt)
    assert loss(s, t, {"attention_mask": torch.ones(3, 2)}).item() == pytest.approx(expected, rel=1e-5)


def test_crd_at_a_match_is_the_teachers_own_contrastive_loss_not_zero():
    """Student = teacher with the same head: the value is the contrastive loss of the teacher against itself, > 0;
    it is lower than for a student whose examples are shuffled (positives mismatched)."""
    loss = build("crd", temperature=0.5)
    with torch.no_grad():
        loss.student_head.load_state_dict(loss.teacher_head.state_dict())
    t = hidden(20)
    at_match = loss(t, t, BATCH).item()
    z = torch.nn.functional.normalize(loss.teacher_head(t.hidden_states[-1][:, 0]), dim=-1).tolist()
    own = sum(-math.log(math.exp(1 / 0.5) / sum(math.exp(dot(z[i], z[j]) / 0.5) for j in range(4))) for i in range(4)) / 4
    assert at_match == pytest.approx(own, rel=1e-4) and at_match > 0
    shuffled = SimpleNamespace(hidden_states=tuple(h[[1, 2, 3, 0]] for h in t.hidden_states))
    assert loss(shuffled, t, BATCH).item() > at_match


def test_crd_num_negatives_draws_that_many_and_cannot_exceed_the_batch():
    full, three = build("crd"), build("crd", num_negatives=3)
    three.load_state_dict(full.state_dict())
    s, t = hidden(21), hidden(22)
    assert three(s, t, BATCH).item() == pytest.approx(full(s, t, BATCH).item(), rel=1e-6)  # 3 = every other example
    one = build("crd", num_negatives=1)
    one.load_state_dict(full.state_dict())
    assert torch.isfinite(one(s, t, BATCH))
    with pytest.raises(KdnlpError, match="num_negatives=4 needs batches of at least 5 examples"):
        build("crd", num_negatives=4)(s, t, BATCH)


def test_vid_matches_hand_computation_and_its_gradients_are_the_nll():
    student, teacher = SimpleNamespace(hidden_size=2, num_hidden_layers=1), SimpleNamespace(hidden_size=2, num_hidden_layers=1)
    loss = build("vid", student, teacher, init_variance=2.0)
    w = [[0.5, 1.0], [-1.0, 0.25]]
    set_linear(loss.regressors[0], w)
    with torch.no_grad():
        loss.alphas[0].copy_(torch.tensor([0.3, -1.2]))
    g = torch.Generator().manual_seed(2)
    s = SimpleNamespace(hidden_states=(None, torch.randn(2, 3, 2, generator=g)))
    t = SimpleNamespace(hidden_states=(None, torch.randn(2, 3, 2, generator=g)))
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    var = [math.log1p(math.exp(a)) + 1e-5 for a in (0.3, -1.2)]
    excess, nll = [], []
    for i in range(2):
        real = [j for j in range(3) if mask[i, j]]
        terms = []
        for j in real:
            mu = [dot(r, s.hidden_states[1][i, j].tolist()) for r in w]
            y = t.hidden_states[1][i, j].tolist()
            terms += [(y[d] - mu[d]) ** 2 / (2 * var[d]) for d in range(2)]
        excess.append(sum(terms) / len(terms))
        nll.append(excess[-1] + sum(0.5 * math.log(v) for v in var) / 2)
    value = loss(s, t, {"attention_mask": mask})
    assert value.item() == pytest.approx(sum(excess) / 2, rel=1e-5)
    value.backward()
    # the gradient wrt alpha is the full nll's (log sigma included), by autograd on an independent expression
    alpha = torch.tensor([0.3, -1.2], requires_grad=True)
    variance = torch.nn.functional.softplus(alpha) + 1e-5
    mu = s.hidden_states[1] @ torch.tensor(w).T
    per_token = (0.5 * variance.log() + (t.hidden_states[1] - mu) ** 2 / (2 * variance)).mean(-1)
    m = mask.float()
    full = ((per_token * m).sum(1) / m.sum(1)).mean()
    full.backward()
    assert full.item() == pytest.approx(sum(nll) / 2, rel=1e-5)
    torch.testing.assert_close(loss.alphas[0].grad, alpha.grad)


def test_vid_at_a_match_is_at_its_minimum_and_still_trains_the_variance():
    """Zero at a perfect match (identity regressor, student = teacher): the nll is at its minimum for the current
    variance, the student gets no gradient, and the variance is pushed down (the log sigma term)."""
    loss = build("vid", init_variance=5.0)
    torch.testing.assert_close(torch.nn.functional.softplus(loss.alphas[0]) + 1e-5, torch.full((8,), 5.0))
    t = hidden(30)
    s = SimpleNamespace(hidden_states=tuple(h.clone().requires_grad_() for h in t.hidden_states))
    value = loss(s, t, BATCH)
    assert value.item() == pytest.approx(0.0, abs=1e-7)
    value.backward()
    assert any(h.grad is not None for h in s.hidden_states)
    assert all(h.grad is None or h.grad.abs().max() < 1e-7 for h in s.hidden_states)
    assert all((a.grad > 0).all() for a in loss.alphas)  # d nll / d alpha > 0: a smaller variance fits better

"""Invertible networks: layout, initialisation, exact inverses, the LU cache, bad input."""

import inspect
import math

import pytest
import torch
from gaitprop_helpers import F64_EPS, batch

from alignlab.gaitprop import Trainer, UncorrectedAdam, updates
from alignlab.models import model_options
from alignlab.models.invertible import InvertibleNet, InvertibleSquare, InvertibleTower


def test_square_and_tower_layouts_match_the_original():
    sq = InvertibleSquare()  # SquareInvNet(784, 4): 4 hidden layers + a square output layer
    assert sq.widths == (784,) * 6 and sq.depth == 5
    assert all(tuple(layer.weight.shape) == (784, 784) for layer in sq.layers)
    assert all(p.dtype == torch.float64 for p in sq.parameters())
    assert sq.activation.slope == 0.1 and sq.num_classes == 10
    tower = InvertibleTower()
    assert [tuple(layer.weight.shape) for layer in tower.layers] == [
        (784, 784), (500, 500), (200, 200), (10, 10)]


def test_haar_init_is_orthogonal_and_independent_per_layer():
    m = InvertibleNet((24,) * 4, rng=0)
    eye = torch.eye(24, dtype=torch.float64)
    for layer in m.layers:
        w = layer.weight.detach()
        # QR in float64: orthonormal to a few ulps times n
        torch.testing.assert_close(w @ w.T, eye, atol=50 * F64_EPS, rtol=0)
        assert not layer.bias.any()
    w0, w1 = (layer.weight.detach() for layer in m.layers[:2])
    assert float((w0 - w1).abs().max()) > 0.1  # (the original seeds its output layer as
    # its last hidden layer, so the two start equal; here every layer has its own draw)
    same = InvertibleNet((24,) * 4, rng=0)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), same.parameters(),
                                                    strict=True))
    g = InvertibleNet((400, 400), init="gaussian", rng=0).layers[0].weight.detach()
    # iid N(0, 1/n): n * sample variance has standard error sqrt(2 / n^2); 5 SE
    assert abs(float(g.var()) * 400 - 1) < 5 * math.sqrt(2 / 400**2)


def test_forward_reads_the_class_units_and_the_tower_reads_the_first_units():
    m = InvertibleNet((12, 10, 6, 4), num_classes=3, rng=1)
    x, _ = batch(12, size=5)
    acts = m.activities(x)
    assert [h.shape[1] for h in acts.h] == [12, 10, 6, 4]
    # layer 2 reads only the first 6 units of layer 1: the other 4 do not matter
    x2 = acts.h[1].clone()
    x2[:, 6:] += 100.0
    a2 = m.layers[1](x2[:, :6])
    torch.testing.assert_close(a2, acts.a[1], rtol=0, atol=0)
    torch.testing.assert_close(m(x), acts.h[-1][:, :3], rtol=0, atol=0)
    # leaky-ReLU at every layer, the output included
    torch.testing.assert_close(acts.h[-1], torch.where(acts.a[-1] >= 0, acts.a[-1],
                                                       0.1 * acts.a[-1]))


def test_output_target_one_hot_and_forward_values():
    m = InvertibleNet((8, 8), num_classes=3, rng=0)
    h = torch.arange(16, dtype=torch.float64).reshape(2, 8)
    t = m.output_target(h, torch.tensor([2, 0]))
    expect = torch.cat([torch.tensor([[0, 0, 1], [1, 0, 0]], dtype=torch.float64), h[:, 3:]],
                       dim=1)
    torch.testing.assert_close(t, expect, rtol=0, atol=0)
    torch.testing.assert_close(m.output_target(h, expect[:, :3]), expect, rtol=0, atol=0)


def test_inverse_undoes_the_layer_to_float64_rounding():
    m = InvertibleNet((16,) * 3, rng=2)
    x, _ = batch(16, size=8)
    acts = m.activities(x)
    for i in range(m.depth):
        back = m.invert_layer(i, acts.h[i + 1])
        # orthogonal W (condition 1): a solve is backward stable, error ~ n eps |h|
        torch.testing.assert_close(back, acts.h[i], atol=16 * 16 * F64_EPS, rtol=0)


def test_one_factorisation_per_layer_per_update_and_none_for_bp():
    m = InvertibleNet((10,) * 5, num_classes=3, rng=0)
    x, y = batch(10, size=6, classes=3)
    trainer = Trainer(m, UncorrectedAdam(m.parameters(), lr=1e-3), "gait-prop", gamma=1e-2)
    counts = [layer.n_factorisations for layer in m.layers]
    assert counts == [0, 1, 1, 1]  # layer 1's inverse is never needed
    for k in range(3):
        trainer.step(x, y)
        assert [layer.n_factorisations for layer in m.layers] == [0, 2 + k, 2 + k, 2 + k]
    updates(m, x, y, "gait")  # weights unchanged since the last step: the cache is reused
    assert [layer.n_factorisations for layer in m.layers] == [0, 4, 4, 4]
    # the refreshed factors are those of the updated weights (a stale cache would fail this)
    acts = m.activities(x)
    torch.testing.assert_close(m.invert_layer(2, acts.h[3]), acts.h[2], atol=1e-12, rtol=0)

    bp = InvertibleNet((10,) * 5, num_classes=3, rng=0)
    trainer = Trainer(bp, UncorrectedAdam(bp.parameters(), lr=1e-3), "bp")
    trainer.step(x, y)
    assert [layer.n_factorisations for layer in bp.layers] == [0, 0, 0, 0]


def test_cache_follows_dtype_changes_and_in_place_edits():
    m = InvertibleNet((6,) * 3, num_classes=2, rng=0)
    x, _ = batch(6, size=4)
    m.invert_layer(1, m.activities(x).h[2])
    m.to(torch.float32)
    acts = m.activities(x.float())
    back = m.invert_layer(1, acts.h[2])
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, acts.h[1], atol=1e-5, rtol=0)
    with torch.no_grad():
        m.layers[1].weight.mul_(2.0)
    acts = m.activities(x.float())
    torch.testing.assert_close(m.invert_layer(1, acts.h[2]), acts.h[1], atol=1e-5, rtol=0)


def test_builds_on_the_meta_device_without_drawing():
    with torch.device("meta"):
        m = InvertibleSquare(width=784, hidden_layers=4)
    assert m.layers[0].weight.device.type == "meta"


def test_registrable_classes_say_how_they_train():
    """What a harness reads: the constructor's options (as alignlab.models.model_options
    does) and the class-level property that routes them to alignlab.gaitprop."""
    assert list(model_options("invertible")) == [
        "width", "hidden_layers", "num_classes", "activation", "slope", "init"]
    assert list(model_options("invertible-tower")) == [
        "widths", "num_classes", "activation", "slope", "init"]
    for cls in (InvertibleSquare, InvertibleTower):  # the seed comes from the harness
        assert inspect.signature(cls).parameters["rng"].kind is inspect.Parameter.KEYWORD_ONLY
    assert InvertibleSquare.learns_by_targets and InvertibleTower.learns_by_targets
    small = InvertibleSquare(width=12, hidden_layers=0, num_classes=3)
    assert small.widths == (12, 12) and small.depth == 1  # the output layer alone


@pytest.mark.parametrize("kwargs, match", [
    ({"widths": (8, 10), "num_classes": 2}, r"`widths` must be non-increasing"),
    ({"widths": (8,)}, r"`widths` must have at least 2 entries"),
    ({"widths": (8, 4), "num_classes": 5}, r"`num_classes` must be <= the output width 4"),
    ({"widths": (8, 8), "num_classes": 2, "activation": "tanh"}, r"`activation` must be one of"),
    ({"widths": (8, 8), "num_classes": 2, "init": "xavier"}, r"`init` must be one of"),
    ({"widths": (8, 8), "num_classes": 2, "slope": -0.1}, r"`slope` must be >= 0"),
])
def test_bad_construction_raises_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        InvertibleNet(**kwargs)
    assert "\n" not in str(info.value)


def test_input_of_the_wrong_width_is_refused():
    m = InvertibleNet((8, 8), num_classes=2, rng=0)
    with pytest.raises(ValueError, match=r"`x` must have 8 features per example .* got 9"):
        m(torch.zeros(2, 9, dtype=torch.float64))


def _bad_layer(model, index, singular_values):
    w = model.layers[index].weight
    with torch.no_grad():
        u, _, vh = torch.linalg.svd(w)
        w.copy_(u @ torch.diag(singular_values.to(w.dtype)) @ vh)


def test_ill_conditioned_weight_reports_its_condition_number():
    m = InvertibleNet((12,) * 4, num_classes=4, rng=0)
    x, y = batch(12, size=4, classes=4)
    s = torch.ones(12, dtype=torch.float64)
    s[-1] = 1e-14  # condition number 1e14 > 1e-3 / eps = 4.5e12
    _bad_layer(m, 2, s)
    with pytest.raises(ValueError, match=r"`layers\[2\]\.weight` must be well conditioned.*"
                                         r"an ill-conditioned matrix: condition number 1e\+14"
                                         ) as info:
        updates(m, x, y, "gait")
    assert "\n" not in str(info.value)
    updates(m, x, y, "bp")  # BP never inverts: fine
    m.set_max_condition(1e15)
    updates(m, x, y, "gait")  # a looser limit accepts it


def test_singular_weight_is_refused():
    m = InvertibleNet((12,) * 3, num_classes=4, rng=0)
    x, y = batch(12, size=4, classes=4)
    with torch.no_grad():
        m.layers[1].weight[3] = 0.0
    with pytest.raises(ValueError, match=r"a singular matrix: condition number inf"):
        updates(m, x, y, "tp")


def test_an_update_that_makes_a_weight_singular_fails_in_that_step():
    m = InvertibleNet((6,) * 4, num_classes=2, rng=0)
    x, y = batch(6, size=4, classes=2)

    class Zeroing(torch.optim.SGD):
        def step(self, closure=None):
            with torch.no_grad():
                m.layers[2].weight[0] = 0.0

    trainer = Trainer(m, Zeroing(m.parameters(), lr=0.1), "gait-prop")
    with pytest.raises(ValueError, match=r"`layers\[2\]\.weight` .* singular"):
        trainer.step(x, y)


@pytest.mark.parametrize("slope", [0.1, 0.37, 1.0])
@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-12])
def test_inverse_step_is_the_exact_difference_of_the_inverse(slope, scale):
    """``LeakyReLU.inverse_step(h, n, k)`` = ``(f^{-1}(h + k n) - f^{-1}(h)) / k`` against
    exact rational arithmetic (``Fraction`` holds every float exactly): without a crossing
    it is ``n / s_new`` exactly, with one both pieces enter; the crossing mask is the
    sides of ``h`` and ``h + k n``. ``h`` is drawn at the nudge's scale so that about half
    the units cross."""
    from fractions import Fraction

    from alignlab.models.invertible import LeakyReLU

    f = LeakyReLU(slope)
    g = torch.Generator().manual_seed(0)
    n = torch.randn(400, dtype=torch.float64, generator=g)
    h = scale * torch.randn(400, dtype=torch.float64, generator=g)
    h[:100] = torch.randn(100, dtype=torch.float64, generator=g)  # far from the kink
    step, crossed = f.inverse_step(h, n, scale)
    s, k = Fraction(slope), Fraction(scale)

    def finv(v: Fraction) -> Fraction:
        return v if v >= 0 else v / s

    n_crossed = 0
    for hi, ni, got, cr in zip(h.tolist(), n.tolist(), step.tolist(), crossed.tolist(),
                               strict=True):
        z = Fraction(hi) + k * Fraction(ni)
        exact = (finv(z) - finv(Fraction(hi))) / k
        kink = slope != 1.0  # the identity has none
        assert cr == (kink and (z >= 0) != (hi >= 0)) or float(z) == 0  # z is rounded
        n_crossed += cr
        # a few roundings of quantities of the nudge's size
        assert abs(Fraction(got) - exact) <= 8 * F64_EPS * (abs(exact) + abs(Fraction(ni)))
        if not cr:
            assert got == (ni if z >= 0 else ni / slope)
    assert (n_crossed > 50) == (slope != 1.0)

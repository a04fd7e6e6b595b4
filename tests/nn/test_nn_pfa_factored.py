"""Factored PFA (``state='factored'``) gives the same numbers as explicit PFA under SGD.

An explicit-PFA model and its factored twin start from the same ``W``, ``B`` and ``R_0``
(same seeds) and are trained side by side by ``torch.optim.SGD`` on random data, with a
mid-run change of learning rate and weight decay (the paper's epoch-0 decay burst) and
momentum 0, 0.9 or switched on and off. At every step the input gradients, the weight
gradients, the paths (``effective_feedback``) and, after the step, the weights must agree.

Tolerance: 1e-10 relative to the largest entry of the reference. The two are the same
float64 linear algebra associated differently (``B^T R^T`` against ``M W + c Q_0``, with
``c`` from a scalar recursion), so each quantity differs by rounding, O(1e-16) per
operation times the O(10-100)-term sums here, and the difference is carried through
20 steps of training; the observed discrepancies are at most about 5e-15, so 1e-10 leaves a wide
margin while any error in the formula (a wrong ``c`` for a single step is already
~1e-3 relative) fails by orders of magnitude.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import alignlab
from alignlab.nn import attach_factored_pfa, converted_layers, make_optimizer, param_groups
from alignlab.theory import decay_factor_schedule

DT = torch.float64
RTOL = 1e-10
STEPS = 20
LR = np.r_[np.full(8, 0.1), np.full(12, 0.03)]  # a strong decay burst, then a normal one
WD = np.r_[np.full(8, 0.3), np.full(12, 1e-3)]


class _Seq3d(nn.Module):
    """Linear layers on (batch, seq, features) inputs; logits averaged over seq."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 7), nn.Tanh(),
                                 nn.Linear(7, 3))

    def forward(self, x):
        return self.net(x).mean(1)


CONFIGS = {
    "linear2d": (lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 7), nn.Tanh(),
                                       nn.Linear(7, 3)), (16, 6)),
    "linear3d": (_Seq3d, (4, 5, 6)),
    "conv": (lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.Tanh(),
        nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), nn.Tanh(),
        nn.Conv2d(6, 6, 1, groups=3), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 3 * 3, 3)),
        (8, 2, 6, 6)),
}


def _close(got, want):
    scale = float(want.detach().abs().max())
    torch.testing.assert_close(got, want, rtol=0, atol=RTOL * scale)


def _twins(config, method="pfa", **options):
    factory, _ = CONFIGS[config]
    torch.manual_seed(0)
    base = factory().to(DT)
    explicit = alignlab.convert(base, method, rng=1, **options)
    factored = alignlab.convert(base, method, rng=1, state="factored", store_D0=True, **options)
    return explicit, factored


def _optimizers(explicit, factored, momentum):
    opt_e = torch.optim.SGD(param_groups(explicit, lr=LR[0], weight_decay=WD[0]),
                            momentum=momentum)
    opt_f = make_optimizer(factored, "sgd", lr=LR[0], weight_decay=WD[0], momentum=momentum)
    return opt_e, opt_f


def _train_side_by_side(config, momenta, method="pfa", new_optimizers_at=(), **options):
    explicit, factored = _twins(config, method, **options)
    opt_e, opt_f = _optimizers(explicit, factored, momenta[0])
    gen = torch.Generator().manual_seed(7)
    x_shape = CONFIGS[config][1]
    pairs = list(zip(converted_layers(explicit), converted_layers(factored), strict=True))
    for t in range(STEPS):
        if t in new_optimizers_at:  # fresh momentum buffers for W and R alike
            opt_e, opt_f = _optimizers(explicit, factored, momenta[t])
        for opt in (opt_e, opt_f):
            for group in opt.param_groups:
                group.update(lr=LR[t], weight_decay=WD[t], momentum=momenta[t])
        x = torch.randn(x_shape, generator=gen, dtype=DT)
        y = torch.randint(0, 3, (x_shape[0],), generator=gen)
        grads_x = []
        for model, opt in ((explicit, opt_e), (factored, opt_f)):
            xi = x.clone().requires_grad_()
            opt.zero_grad()
            F.cross_entropy(model(xi), y).backward()
            grads_x.append(xi.grad)
        _close(grads_x[1], grads_x[0])
        for (_, le), (_, lf) in pairs:
            _close(lf.weight.grad, le.weight.grad)
            _close(lf.effective_feedback(), le.effective_feedback())
        opt_e.step()
        opt_f.step()
        for (_, le), (_, lf) in pairs:
            _close(lf.weight, le.weight)
    for (_, le), (_, lf) in pairs:  # R itself, rebuilt as B W + c D_0
        _close(lf.method.feedback_weights(lf), le.pfa_R.detach())
    return explicit, factored


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("config", CONFIGS)
def test_factored_equals_explicit_pfa(config, momentum):
    _, factored = _train_side_by_side(config, np.full(STEPS, momentum), expansion_ratio=3.0)
    c = decay_factor_schedule(LR, WD, momentum)[-1]  # Proposition 1, alignlab.theory
    for _, layer in converted_layers(factored):
        assert layer._pfa_c == pytest.approx(c, rel=1e-12)
    assert c < 0.9  # the decay is visible


@pytest.mark.parametrize("solved", [True, False], ids=["Z0", "Q0"])
@pytest.mark.parametrize("form", [True, False], ids=["kernel", "split"])
@pytest.mark.parametrize("config", CONFIGS)
def test_every_form_of_the_factored_path(config, form, solved, monkeypatch):
    """The kernel formed once, or ``M delta`` sent down; through ``Z_0 = M^{-1} Q_0``
    (``M (W + c Z_0)``) or through ``Q_0`` (``M W + c Q_0``)."""
    from alignlab.nn.functional import FactoredPathFeedback
    from alignlab.nn.methods import pfa

    monkeypatch.setattr(FactoredPathFeedback, "_form_kernel", lambda *args: form)
    monkeypatch.setattr(pfa, "_Z0_MAX_COND", 1e6 if solved else 0.0)
    _, factored = _train_side_by_side(config, np.full(STEPS, 0.9), expansion_ratio=2.0)
    assert all((layer.pfa_Z0 is not None) == solved for _, layer in converted_layers(factored))


def test_z0_only_for_well_conditioned_M():
    """r < 1: ``M`` is singular (rank n_mid < n_out), so the path keeps ``Q_0``."""
    wide = alignlab.convert(nn.Linear(3, 8), "pfa", expansion_ratio=0.5, state="factored")
    assert wide.pfa_Z0 is None
    for method, opts in (("pfa", {"expansion_ratio": 10}), ("pfa-o", {}), ("pfa-id", {})):
        layer = alignlab.convert(nn.Linear(30, 20), method, state="factored", **opts)
        assert layer.pfa_Z0 is not None
        torch.testing.assert_close(layer.pfa_M @ layer.pfa_Z0, layer.pfa_Q0)
    _, factored = _twins("linear2d", expansion_ratio=0.5)  # r < 1: the Q_0 path
    assert all(layer.pfa_Z0 is None for _, layer in converted_layers(factored))


def test_auto_form_choice():
    from alignlab.nn.functional import Conv2dOps, FactoredPathFeedback, LinearOps

    for solved in (True, False):
        rule = FactoredPathFeedback(0.5, solved)
        m = torch.empty(512, 512)  # MLP hidden layer at batch 64: send M delta down
        assert not rule._form_kernel(LinearOps(), (512, 784), torch.empty(64, 512), m)
        m = torch.empty(64, 64)  # ResNet conv: forming the kernel is nearly free
        assert rule._form_kernel(Conv2dOps(), (64, 64, 3, 3), torch.empty(128, 64, 8, 8), m)


@pytest.mark.parametrize("method", ["pfa-o", "pfa-id"])
def test_factored_pfa_o_and_id(method):
    _train_side_by_side("conv", np.full(STEPS, 0.9), method)


def test_momentum_switched_on_and_off_and_new_optimizers():
    """torch keeps a stale buffer through momentum-0 steps and creates one as ``v = g``
    (on the first momentum step, and again in a new optimiser)."""
    momenta = np.r_[np.zeros(3), np.full(4, 0.9), np.zeros(3), np.full(6, 0.5), np.full(4, 0.9)]
    _train_side_by_side("linear2d", momenta, new_optimizers_at=(16,), expansion_ratio=2.0)


def test_untrained_layers_do_not_advance():
    """A layer whose W gets no gradient is skipped by SGD, and so is its (c, u)."""
    explicit, factored = _twins("linear2d", expansion_ratio=2.0)
    opt_e = torch.optim.SGD(param_groups(explicit, lr=0.1, weight_decay=0.1), momentum=0.9)
    opt_f = make_optimizer(factored, "sgd", lr=0.1, weight_decay=0.1, momentum=0.9)
    x, y = torch.randn(5, 6, dtype=DT), torch.randint(0, 3, (5,))
    for _ in range(3):
        for model, opt in ((explicit, opt_e), (factored, opt_f)):
            opt.zero_grad(set_to_none=True)
            for p in model[0].parameters():
                p.requires_grad_(False)  # the first layer sits out
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert factored[0]._pfa_c == 1.0 and factored[2]._pfa_c < 1.0
    for le, lf in ((explicit[0], factored[0]), (explicit[2], factored[2])):
        _close(lf.effective_feedback(), le.effective_feedback())


# ------------------------------------------------------------------------- misuse


def _factored(**options):
    torch.manual_seed(0)
    return alignlab.convert(CONFIGS["linear2d"][0]().to(DT), "pfa", rng=1, state="factored",
                            expansion_ratio=2.0, **options)


def _step(model, opt):
    x, y = torch.randn(4, 6, dtype=DT), torch.randint(0, 3, (4,))
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


def test_optimizer_without_hook_is_detected():
    model = _factored()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1)
    _step(model, opt)
    x = torch.randn(4, 6, dtype=DT)
    with torch.no_grad():
        model(x)  # inference never uses the feedback
    with pytest.raises(RuntimeError, match="attach_factored_pfa"):
        model(x)
    with pytest.raises(RuntimeError, match="changed without its decay factor"):
        model[2].effective_feedback()
    # a weight edited by hand between steps is caught at the next step too
    model = _factored()
    opt = make_optimizer(model, "sgd", lr=0.1, weight_decay=0.1, momentum=0.9)
    _step(model, opt)
    with torch.no_grad():
        model[2].weight.mul_(2)
    with pytest.raises(RuntimeError, match="make_optimizer"):
        _step(model, opt)


def test_optimizer_settings_are_refused():
    model = _factored()
    with pytest.raises(ValueError, match="`optimizer` must be torch.optim.SGD"):
        attach_factored_pfa(torch.optim.Adam(model.parameters()), model)
    with pytest.raises(ValueError, match="`optimizer` must be SGD"):
        make_optimizer(model, "adamw", lr=0.1)
    with pytest.raises(ValueError, match="`nesterov` must be False"):
        make_optimizer(model, "sgd", lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="`dampening` must be 0"):
        make_optimizer(model, "sgd", lr=0.1, momentum=0.9, dampening=0.5)
    with pytest.raises(ValueError, match="`maximize` must be False"):
        make_optimizer(model, "sgd", lr=0.1, maximize=True)
    with pytest.raises(ValueError, match="`feedback_weight_decay` must equal"):
        make_optimizer(model, "sgd", lr=0.1, weight_decay=1e-4, feedback_weight_decay=0.0)
    with pytest.raises(ValueError, match="must hold the weight of factored PFA layer '2'"):
        attach_factored_pfa(torch.optim.SGD(model[0].parameters(), lr=0.1), model)
    with pytest.raises(ValueError, match="must have factored PFA layers"):
        attach_factored_pfa(torch.optim.SGD(model.parameters(), lr=0.1),
                            alignlab.convert(nn.Linear(2, 2), "pfa"))
    # settings changed after attaching are refused at the step, before anything moves
    opt = make_optimizer(model, "sgd", lr=0.1, momentum=0.9)
    assert attach_factored_pfa(opt, model) == 3  # idempotent: still one hook, three layers
    opt.param_groups[0]["nesterov"] = True
    w = model[2].weight.detach().clone()
    with pytest.raises(ValueError, match="`nesterov` must be False"):
        _step(model, opt)
    torch.testing.assert_close(model[2].weight.detach(), w, rtol=0, atol=0)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="`state` must be one of"):
        alignlab.convert(nn.Linear(3, 2), "pfa", state="lazy")
    with pytest.raises(ValueError, match="`state` must be 'explicit' for 'pfa-sparse'"):
        alignlab.convert(nn.Linear(3, 2), "pfa-sparse", state="factored")
    with pytest.raises(ValueError, match="`impl` must be 'auto' when state='factored'"):
        alignlab.convert(nn.Linear(3, 2), "pfa", state="factored", impl="path")
    with pytest.raises(ValueError, match="`store_D0` must be False when state='explicit'"):
        alignlab.convert(nn.Linear(3, 2), "pfa", store_D0=True)
    layer = alignlab.convert(nn.Linear(3, 2), "pfa-o", state="factored")
    with pytest.raises(ValueError, match="`store_D0` must be True"):
        layer.method.feedback_weights(layer)
    assert layer.feedback_parameters() == [] and not hasattr(layer, "pfa_R")


# ------------------------------------------------------------------- state round trip


def test_state_dict_round_trip_continues_identically():
    model = _factored(store_D0=True)
    opt = make_optimizer(model, "sgd", lr=0.1, weight_decay=0.05, momentum=0.9)
    for _ in range(4):
        _step(model, opt)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    other = alignlab.convert(CONFIGS["linear2d"][0]().to(DT), "pfa", rng=5, state="factored",
                             expansion_ratio=2.0, store_D0=True)
    other.load_state_dict(saved["model"])
    opt2 = make_optimizer(other, "sgd", lr=0.1, weight_decay=0.05, momentum=0.9)
    opt2.load_state_dict(saved["opt"])
    for (_, a), (_, b) in zip(converted_layers(model), converted_layers(other), strict=True):
        assert (a._pfa_c, a._pfa_u) == (b._pfa_c, b._pfa_u) and a._pfa_c < 1
        assert a.pfa_Z0 is not None  # rebuilt on load (not saved), identically
        for n in a.method.state_names:
            torch.testing.assert_close(getattr(b, n), getattr(a, n), rtol=0, atol=0)
    torch.manual_seed(3)
    _step(model, opt)
    torch.manual_seed(3)
    _step(other, opt2)
    for (_, a), (_, b) in zip(converted_layers(model), converted_layers(other), strict=True):
        torch.testing.assert_close(b.weight, a.weight, rtol=0, atol=0)
        torch.testing.assert_close(b.effective_feedback(), a.effective_feedback(), rtol=0,
                                   atol=0)
    # an explicit model refuses the factored state (other options), and vice versa
    with pytest.raises(ValueError, match="saved from method 'pfa'"):
        alignlab.convert(CONFIGS["linear2d"][0]().to(DT), "pfa", expansion_ratio=2.0
                         ).load_state_dict(saved["model"], strict=False)
    # deepcopy (and pickling) keep the layer usable
    twin = copy.deepcopy(model)
    _step(twin, make_optimizer(twin, "sgd", lr=0.1))

"""The training step: GAIT-prop learns on a tiny problem while staying close to BP, the
penalty is what keeps it close, and what one step returns and logs."""

import math

import pytest
import torch
from gaitprop_helpers import batch

from alignlab.gaitprop import (
    DIAGNOSTIC_COLUMNS,
    Trainer,
    UncorrectedAdam,
    first_order_angles,
    method_options,
    penalty_grad,
    step,
    updates,
)
from alignlab.models.invertible import InvertibleNet

WIDTHS, K = (32,) * 5, 4  # 4 weight layers of 32 units, 4 classes


def _teacher_data(size=256, seed=0):
    """Inputs in [0, 1)^32, labels from a random linear teacher (learnable, not trivial)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(size, WIDTHS[0], dtype=torch.float64, generator=g)
    teacher = torch.randn(WIDTHS[0], K, dtype=torch.float64, generator=g)
    return x, ((x - 0.5) @ teacher).argmax(1)


def _full_loss(m, x, y):
    out = m.output(x).detach()
    return float(0.5 * (out - m.output_target(out, y)).square().sum(1).mean())


def _train(penalty_strength, steps=60, rule="gait-prop", check_theory=False):
    x, y = _teacher_data()
    m = InvertibleNet(WIDTHS, num_classes=K, rng=0)
    trainer = Trainer(m, UncorrectedAdam(m.parameters(), lr=3e-4), rule, gamma=1e-3,
                      penalty="full", penalty_strength=penalty_strength, log_every=10)
    before, logs = _full_loss(m, x, y), []
    for s in range(steps):
        xb, yb = x[(s % 8) * 32:(s % 8 + 1) * 32], y[(s % 8) * 32:(s % 8 + 1) * 32]
        predicted = first_order_angles(m, xb, yb) if check_theory and s % 10 == 0 else None
        result = trainer.step(xb, yb)
        if result.layers is not None:
            logs.append(result.layers)
            if predicted is not None:
                # the logged prediction is the theory's, on the same batch and weights
                assert [r["first_order_angle_deg"] for r in result.layers[:-1]] == predicted
                assert math.isnan(result.layers[-1]["first_order_angle_deg"])  # '(all)'
                got = [r["update_angle_deg"] for r in result.layers[:-1]]
                resid = max(r["ortho_residual"] for r in result.layers[:-1])
                # first order in |R|: relative error O(|R|), + rounding (1e-3 deg at step 0)
                for g, p in zip(got[:-1], predicted[:-1], strict=True):
                    assert abs(g - p) <= 3 * resid * p + 2e-3, (s, got, predicted)
    return before, _full_loss(m, x, y), logs


@pytest.mark.slow
def test_gait_prop_with_the_penalty_learns_and_stays_close_to_bp():
    before, after, logs = _train(penalty_strength=1.0, check_theory=True)
    assert after < 0.9 * before  # 0.506 -> 0.428 (BP with the same optimiser: 0.389)
    assert len(logs) == 6  # steps 0, 10, ..., 50
    for rows in logs:
        assert [r["layer"] for r in rows] == [f"layers[{i}]" for i in range(4)] + ["(all)"]
        assert all(r["update_angle_deg"] < 2.0 for r in rows)  # measured: <= 1.3 deg
        assert all(r["ortho_residual"] < 0.05 for r in rows)
        assert rows[-2]["update_angle_deg"] == 0.0  # the output layer is always BP's


@pytest.mark.slow
def test_without_the_penalty_the_weights_drift_and_gait_leaves_bp():
    _, _, logs = _train(penalty_strength=0.0)
    last = logs[-1]
    assert last[0]["ortho_residual"] > 0.3  # measured 0.58
    assert last[0]["update_angle_deg"] > 10  # measured 32 deg


def test_step_returns_the_pre_update_loss_and_logits():
    m = InvertibleNet((16,) * 3, num_classes=4, rng=0)
    x, y = batch(16, size=8, classes=4)
    out = m.output(x).detach()
    expect = 0.5 * (out - m.output_target(out, y)).square().sum(1).mean()
    w0 = m.layers[0].weight.detach().clone()
    result = step(m, UncorrectedAdam(m.parameters(), lr=1e-3), x, y, "gait", gamma=1e-3,
                  penalty="offdiag", penalty_strength=0.1, log=True)
    torch.testing.assert_close(result.loss, expect, rtol=0, atol=0)
    torch.testing.assert_close(result.logits, out[:, :4], rtol=0, atol=0)
    assert not torch.equal(w0, m.layers[0].weight)  # it trained
    assert all(set(r) == set(DIAGNOSTIC_COLUMNS) for r in result.layers)
    assert step(m, torch.optim.SGD(m.parameters(), lr=0.1), x, y, "bp").layers is None


def test_a_step_applies_minus_the_update_plus_the_penalty_gradient():
    """Plain SGD makes the step visible: W <- W + lr (update - penalty gradient)."""
    m = InvertibleNet((16,) * 3, num_classes=4, rng=0)
    with torch.no_grad():
        m.layers[1].weight.add_(0.05)  # off orthogonal, so the penalty is not zero
    x, y = batch(16, size=8, classes=4)
    ups = updates(m, x, y, "tp")
    w = [layer.weight.detach().clone() for layer in m.layers]
    b = [layer.bias.detach().clone() for layer in m.layers]
    pen = [penalty_grad(wi, "full", 0.5) for wi in w]
    step(m, torch.optim.SGD(m.parameters(), lr=0.1), x, y, "tp", penalty="full",
         penalty_strength=0.5)
    for i, layer in enumerate(m.layers):
        torch.testing.assert_close(layer.weight.detach(), w[i] + 0.1 * (ups[i].weight - pen[i]))
        torch.testing.assert_close(layer.bias.detach(), b[i] + 0.1 * ups[i].bias)


def test_diagnostics_do_not_change_the_model():
    m = InvertibleNet((16,) * 3, num_classes=4, rng=0)
    trainer = Trainer(m, UncorrectedAdam(m.parameters()), "itp")
    before = [p.detach().clone() for p in m.parameters()]
    rows = trainer.diagnostics(*batch(16, size=8, classes=4))
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))
    assert rows[-1]["layer"] == "(all)" and rows[0]["update_angle_deg"] > 10  # ITP vs BP
    conds = [r["condition"] for r in rows]
    assert math.isnan(conds[0]) and conds[-1] == max(conds[1:-1]) >= 1  # layer 1: no LU
    assert list(rows[0]) == list(DIAGNOSTIC_COLUMNS)
    assert all(math.isnan(r["first_order_angle_deg"]) for r in rows)  # no theory for ITP
    gait = Trainer(m, UncorrectedAdam(m.parameters()), "gait-prop", gamma=1e-2)
    x, y = batch(16, size=8, classes=4)
    assert [r["first_order_angle_deg"] for r in gait.diagnostics(x, y)[:-1]] == \
        first_order_angles(m, x, y)


@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "adam"}, r"`optimizer` must be a torch.optim.Optimizer"),
    ({"log_every": -1}, r"`log_every` must be an integer >= 0"),
    ({"penalty": "frobenius"}, r"`penalty` must be one of 'offdiag', 'full', 'none'"),
    ({"penalty_strength": -0.1}, r"`penalty_strength` must be >= 0"),
    ({"rule": "tp", "gamma": 1e-3}, r"`gamma` is not an option of rule 'tp'"),
])
def test_bad_trainer_arguments_raise_one_line(kwargs, match):
    m = InvertibleNet((8,) * 3, num_classes=2, rng=0)
    args = {"optimizer": UncorrectedAdam(m.parameters()), **kwargs}
    with pytest.raises(ValueError, match=match):
        Trainer(m, **args)


def test_method_options_complete_and_check_a_config_section():
    assert method_options("gait-prop", penalty_strength=0.1) == {
        "gamma": 1e-3, "form": "difference", "penalty": "offdiag", "penalty_strength": 0.1}
    assert method_options("gait", form="targets")["form"] == "targets"
    with pytest.raises(ValueError, match=r"^`form` must be one of 'difference', 'targets'"):
        method_options("itp", form="literal")
    assert method_options("tp", penalty="full", penalty_strength=1000) == {
        "penalty": "full", "penalty_strength": 1000.0}
    with pytest.raises(ValueError, match=r"`gamma` is not an option of rule 'bp'; valid "
                                         r"options: penalty, penalty_strength\."):
        method_options("bp", gamma=1e-3)
    with pytest.raises(ValueError, match=r"`rule` must be one of"):
        method_options("pfa")
    # what it returns is exactly what Trainer takes
    m = InvertibleNet((8,) * 3, num_classes=2, rng=0)
    t = Trainer(m, UncorrectedAdam(m.parameters()), "itp",
                **method_options("itp", gamma=0.01, form="targets"))
    assert (t.rule.gamma, t.rule.form) == (0.01, "targets")

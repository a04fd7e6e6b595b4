"""Soft orthogonality penalties (value, closed-form gradient, orientation) and the original
Adam-like optimiser (no bias correction)."""

import math

import pytest
import torch
from gaitprop_helpers import F64_EPS

from alignlab._linalg import haar_orthogonal_
from alignlab.gaitprop import (
    UncorrectedAdam,
    orthogonality_residual,
    penalty_grad,
    penalty_value,
)


def _haar(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return haar_orthogonal_(torch.randn(n, n, dtype=torch.float64, generator=g))


@pytest.mark.parametrize("kind", ["offdiag", "full"])
def test_closed_form_gradient_is_the_gradient_of_the_value(kind):
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(7, 7, dtype=torch.float64, generator=g) / 7**0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: penalty_value(v, kind, 0.3), (w,))
    (auto,) = torch.autograd.grad(penalty_value(w, kind, 0.3), w)
    torch.testing.assert_close(penalty_grad(w, kind, 0.3), auto, rtol=1e-12, atol=1e-14)


def test_offdiag_penalty_is_the_originals_in_torch_layout():
    """The original stores W_code = W^T (in, out) and penalises the off-diagonal of
    W_code W_code^T = W^T W: column Gram. Orthogonal columns of any norms cost nothing."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 6, dtype=torch.float64, generator=g)
    w_code = w.T
    gram = w_code @ w_code.T
    original = float((gram - gram * torch.eye(6, dtype=torch.float64)).square().sum())
    assert math.isclose(float(penalty_value(w, "offdiag")), original, rel_tol=1e-13)
    scaled_columns = _haar(6) @ torch.diag(torch.arange(1.0, 7.0, dtype=torch.float64))
    assert float(penalty_value(scaled_columns, "offdiag")) < 1e-24
    assert float(penalty_value(scaled_columns.T, "offdiag")) > 1.0  # rows: not orthogonal
    assert float(penalty_value(scaled_columns, "full")) > 1.0  # only W W^T = I is free


def test_penalties_vanish_at_orthogonal_weights_and_strength_scales():
    q = _haar(16)
    for kind in ("offdiag", "full"):
        assert float(penalty_value(q, kind)) < 1e-26
        assert float(penalty_grad(q, kind).abs().max()) < 100 * F64_EPS
    w = q + 0.01
    torch.testing.assert_close(penalty_grad(w, "full", 2.5), 2.5 * penalty_grad(w, "full"))
    assert penalty_grad(w, "none", 1.0) is None and penalty_grad(w, "full", 0.0) is None
    assert float(orthogonality_residual(q)) < 100 * F64_EPS
    torch.testing.assert_close(orthogonality_residual(w) ** 2, penalty_value(w, "full"))


@pytest.mark.parametrize("call, match", [
    (lambda: penalty_grad(torch.eye(3), "l1"), r"`penalty` must be one of"),
    (lambda: penalty_value(torch.eye(3), "full", -1.0), r"`penalty_strength` must be >= 0"),
    (lambda: UncorrectedAdam([torch.zeros(2, requires_grad=True)], lr=0.0), r"`lr` must be > 0"),
    (lambda: UncorrectedAdam([torch.zeros(2, requires_grad=True)], betas=(0.9, 1.0)),
     r"`betas` must be two numbers in \[0, 1\)"),
])
def test_bad_penalty_and_optimiser_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_uncorrected_adam_follows_the_original_recurrence():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(5, dtype=torch.float64, generator=g).requires_grad_()
    opt = UncorrectedAdam([p], lr=0.01)
    ref, m, v = p.detach().clone(), torch.zeros(5, dtype=torch.float64), 0
    for _ in range(4):
        grad = torch.randn(5, dtype=torch.float64, generator=g)
        p.grad = grad.clone()
        opt.step()
        m = 0.9 * m + 0.1 * grad
        v = 0.99 * v + 0.01 * grad**2
        ref = ref - 0.01 * m / (1e-8 + v.sqrt())  # eps outside the root, no correction
        torch.testing.assert_close(p.detach(), ref, rtol=1e-14, atol=1e-16)


def test_uncorrected_adam_against_torch_adam_under_a_constant_gradient():
    """Step t moves lr (1 - 0.9^t) / sqrt(1 - 0.99^t), Adam's moves lr: equal at t = 1, about
    2.13x near t = 14 (spec: 'up to 2.1x'), back to ~1 after a few hundred steps."""
    a = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    ours, adam = UncorrectedAdam([a], lr=1.0, eps=0.0), torch.optim.Adam([b], lr=1.0,
                                                                        betas=(0.9, 0.99), eps=0)
    ratios = []
    for t in range(1, 601):
        before = (float(a.detach()), float(b.detach()))
        a.grad = torch.ones_like(a)
        b.grad = torch.ones_like(b)
        ours.step()
        adam.step()
        ratio = (before[0] - float(a.detach())) / (before[1] - float(b.detach()))
        assert math.isclose(ratio, (1 - 0.9**t) / math.sqrt(1 - 0.99**t), rel_tol=1e-12)
        ratios.append(ratio)
    assert ratios[0] == pytest.approx(1.0) and max(ratios) == pytest.approx(2.13, abs=0.01)
    assert ratios[-1] == pytest.approx(1.0, abs=0.002)


def test_weight_decay_is_coupled_l2():
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    q = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt_p = UncorrectedAdam([p], lr=0.1, weight_decay=0.5)
    opt_q = UncorrectedAdam([q], lr=0.1)
    p.grad = torch.full((3,), 0.2, dtype=torch.float64)
    q.grad = torch.full((3,), 0.2 + 0.5, dtype=torch.float64)
    opt_p.step()
    opt_q.step()
    torch.testing.assert_close(p, q, rtol=0, atol=0)

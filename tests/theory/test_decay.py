"""Proposition 1: decay of D_t = R_t^T - B W_t, against torch.optim.SGD and the recursion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alignlab.theory import (
    decay_factor,
    decay_factor_continuous,
    decay_factor_piecewise,
    decay_factor_schedule,
    decay_rate_asymptotic,
)

EPS = np.finfo(float).eps


def recursion_tol(c_path: np.ndarray) -> float:
    """Absolute rounding bound for c_0..c_T from the recursion or the closed form.

    Each step commits <= 4 roundings of size eps * |state|; a state perturbation is carried
    forward by the recursion with gain <= (1 + 2 mu) (k + 1) <= 3 (T + 1), because the Lucas
    sequence U_k = (z1^k - z2^k)/(z1 - z2) obeys |U_k| <= k when both roots lie in the unit
    disk. Summing over T steps: 4 * 3 * (T + 1)^2 * eps * max|c|; 16 covers the closed form's
    few elementary-function roundings (relative, amplified by t through z^t).
    """
    T = c_path.shape[0] - 1
    return 16.0 * EPS * (T + 1) ** 2 * float(np.max(np.abs(c_path)))


# --- against torch.optim.SGD on a PFA-style update ------------------------------------------


def _pfa_sgd_run(segments, momentum, seed=0, n_out=6, n_in=5, n_mid=12, batch=4):
    """Train W and R^T with torch SGD, grad_R^T = B grad_W; return D_t (T+1 arrays) + bound.

    The bound is the float64 rounding budget of the torch run itself: per step the data term
    g_R - B g_W is not exactly 0 but a matmul rounding <= n_out eps |B|_F |g_W|_F (scaled by lr,
    summed by the momentum buffer: gain <= 1/(1-mu)); each parameter update rounds by
    <= eps |p|, which reaches D as eps (|R|_F + |B|_F |W|_F); forming D at the end costs
    n_out eps |B|_F |W|_F. Each perturbation is carried forward with gain <= 1/(1 - mu). A
    factor 4 covers the handful of roundings per operation.
    """
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(seed)
    dt = torch.float64
    W = torch.nn.Parameter(torch.randn(n_out, n_in, generator=gen, dtype=dt))
    RT = torch.nn.Parameter(torch.randn(n_mid, n_in, generator=gen, dtype=dt))
    B = torch.randn(n_mid, n_out, generator=gen, dtype=dt) / n_mid**0.5
    n0, lr0, wd0 = segments[0]
    opt = torch.optim.SGD([W, RT], lr=lr0, momentum=momentum, weight_decay=wd0)
    Ds = [(RT - B @ W).detach().numpy().copy()]
    gain = 1.0 / (1.0 - momentum)
    budget = 0.0
    b_norm = float(torch.linalg.norm(B))
    for n, lr, wd in segments:
        for group in opt.param_groups:  # momentum buffers stay in opt.state
            group["lr"], group["weight_decay"] = lr, wd
        for _ in range(n):
            h = torch.randn(n_in, batch, generator=gen, dtype=dt)
            delta = torch.randn(n_out, batch, generator=gen, dtype=dt)
            W.grad = delta @ h.T  # (n_out, n_in), as BP computes it
            RT.grad = B @ W.grad  # (n_mid, n_in): PFA's rule, grad_R^T = B grad_W
            opt.step()
            with torch.no_grad():
                g_norm = float(torch.linalg.norm(W.grad))
                p_scale = float(torch.linalg.norm(RT)) + b_norm * float(torch.linalg.norm(W))
                budget += gain * (lr * gain * n_out * b_norm * g_norm + p_scale)
                Ds.append((RT - B @ W).numpy().copy())
    final = n_out * b_norm * float(torch.linalg.norm(W.detach()))
    return np.stack(Ds), 4.0 * EPS * (budget + final)


@pytest.mark.parametrize(
    ("momentum", "lr", "weight_decay"),
    [(0.0, 0.05, 0.05), (0.9, 0.05, 0.01)],  # c(200) about 0.6 and 0.37: D stays measurable
)
def test_decay_factor_matches_torch_sgd(momentum, lr, weight_decay):
    T = 200
    Ds, bound = _pfa_sgd_run([(T, lr, weight_decay)], momentum)
    c = decay_factor(np.arange(T + 1), lr, weight_decay, momentum)
    err = np.linalg.norm(Ds - c[:, None, None] * Ds[0], axis=(1, 2))
    assert np.all(err <= bound), (err.max(), bound)
    # the budget above amounts to about 1e-10 relative to |D_t| here
    rel = err / (np.abs(c) * np.linalg.norm(Ds[0]))
    assert rel.max() <= 1e-10


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_piecewise_schedule_matches_torch_sgd(momentum):
    # the PFA paper's epoch-0 burst: strong decay first, then a normal one, lr changed too
    segments = [(60, 0.05, 0.03), (90, 0.02, 9e-5), (50, 0.1, 1e-3)]
    Ds, bound = _pfa_sgd_run(segments, momentum, seed=1)
    c = decay_factor_piecewise(segments, momentum)
    err = np.linalg.norm(Ds - c[:, None, None] * Ds[0], axis=(1, 2))
    assert np.all(err <= bound), (err.max(), bound)
    if momentum:
        # the test can fail: resetting the buffer at each change (product of the segments'
        # constant-schedule factors) is far outside the rounding budget
        reset = np.prod([decay_factor(n, lr, wd, momentum) for n, lr, wd in segments])
        assert np.linalg.norm(Ds[-1] - reset * Ds[0]) > 1e3 * bound


# --- closed form against the exact recursion ------------------------------------------------


@given(
    mu=st.floats(0.0, 0.995),
    frac=st.floats(0.0, 0.999),
    steps=st.integers(1, 300),
)
def test_closed_form_equals_recursion(mu, frac, steps):
    # eta*kappa over the whole stable range (0, 2(1 + mu)): real, repeated and complex roots
    ek = frac * 2.0 * (1.0 + mu)
    ref = decay_factor_schedule(np.full(steps, 1.0), ek, mu)
    got = decay_factor(np.arange(steps + 1), 1.0, ek, mu)
    np.testing.assert_allclose(got, ref, rtol=0, atol=recursion_tol(ref))


@pytest.mark.parametrize("mu", [0.25, 0.81, 0.99])
@pytest.mark.parametrize("which", ["minus", "plus"])
def test_repeated_root(mu, which):
    # a^2 = 4 mu, i.e. eta*kappa = (1 -+ sqrt(mu))^2: the double root z = +-sqrt(mu)
    rho = np.sqrt(mu)
    ek = (1 - rho) ** 2 if which == "minus" else (1 + rho) ** 2
    T = 250
    ref = decay_factor_schedule(np.full(T, 1.0), ek, mu)
    got = decay_factor(np.arange(T + 1), 1.0, ek, mu)
    np.testing.assert_allclose(got, ref, rtol=0, atol=recursion_tol(ref))


def test_plain_sgd_and_edge_cases():
    t = np.arange(50)
    # mu = 0: (1 - eta kappa)^t, two roundings per power at most
    np.testing.assert_allclose(decay_factor(t, 0.1, 0.3), 0.97**t, rtol=4 * EPS * 50)
    assert np.all(decay_factor(t, 0.0, 0.3, 0.9) == 1.0)  # lr = 0: nothing moves
    assert np.all(decay_factor(t, 0.1, 0.0, 0.9) == 1.0)  # no weight decay: D is frozen
    assert decay_factor(0, 0.1, 0.3, 0.9) == 1.0
    assert decay_factor(1, 0.1, 0.3, 0.9) == pytest.approx(1 - 0.03, rel=EPS, abs=0)


def test_broadcasting():
    t = np.arange(7)[:, None]
    lr = np.array([0.01, 0.1, 1.0])
    out = decay_factor(t, lr, 0.2, 0.9)
    assert out.shape == (7, 3)
    for j, eta in enumerate(lr):
        np.testing.assert_array_equal(out[:, j], decay_factor(t[:, 0], eta, 0.2, 0.9))
    sched = decay_factor_schedule(np.full((7, 3), 0.1), 0.2, momentum=np.array([0.0, 0.5, 0.9]))
    assert sched.shape == (8, 3)


def test_piecewise_reduces_to_constant_and_carries_buffer():
    one = decay_factor_piecewise([(40, 0.1, 0.02)], 0.9)
    np.testing.assert_allclose(
        one, decay_factor(np.arange(41), 0.1, 0.02, 0.9), atol=recursion_tol(one)
    )
    # without momentum the pieces multiply; with it they don't (the buffer carries over)
    two = decay_factor_piecewise([(30, 0.1, 0.05), (20, 0.1, 0.01)], 0.0)
    expected = decay_factor(30, 0.1, 0.05) * decay_factor(20, 0.1, 0.01)
    assert two[-1] == pytest.approx(expected, rel=4 * EPS * 50)
    two_mu = decay_factor_piecewise([(30, 0.1, 0.05), (20, 0.1, 0.01)], 0.9)
    product = decay_factor(30, 0.1, 0.05, 0.9) * decay_factor(20, 0.1, 0.01, 0.9)
    assert abs(two_mu[-1] - product) > 1e-3


def test_continuous_limit():
    # (1 - eta kappa)^(t/eta) = exp(-kappa t - eta kappa^2 t/2 - ...): the gap is
    # <= exp(-kappa t) * eta kappa^2 t (for eta kappa <= 1/2) plus rounding
    kappa, t = 0.7, 3.0
    for eta in [1e-2, 1e-3, 1e-4]:
        steps = round(t / eta)
        gap = abs(decay_factor(steps, eta, kappa) - decay_factor_continuous(t, kappa))
        assert gap <= np.exp(-kappa * t) * eta * kappa**2 * t + 4 * EPS * steps
    np.testing.assert_array_equal(decay_factor_continuous(np.array([0.0, 1.0]), 0.0), [1.0, 1.0])


@given(mu=st.floats(0.0, 0.99), rel=st.floats(1e-6, 1e-2))
def test_asymptotic_rate(mu, rel):
    # eta*kappa <= 0.01 (1 - mu)^2 (<= 0.04 (1 - sqrt mu)^2: real roots). With eps = 1 - z1,
    # eps (1 - mu - eps) = ek (1 - eps) gives eps - ek/(1 - mu) = mu ek eps / ((1 - mu - eps)
    # (1 - mu)) <= 2 mu ek^2 / (1 - mu)^3 in this range.
    ek = rel * (1 - mu) ** 2
    rate = decay_rate_asymptotic(1.0, ek, mu)
    approx = 1.0 - ek / (1.0 - mu)
    assert abs(rate - approx) <= 2 * mu * ek**2 / (1 - mu) ** 3 + 4 * EPS
    # it is the actual per-step ratio at large t: c_{T+1}/c_T = z1 (1 + O(q^(T+1))), q = z2/z1,
    # plus the closed form's rounding (recursion_tol's per-value share, twice)
    T = int(60 / (1 - mu)) + 10
    q = mu / rate**2
    c = decay_factor(np.array([T, T + 1]), 1.0, ek, mu)
    assert c[1] / c[0] == pytest.approx(rate, rel=q ** (T + 1) + 32 * EPS * (T + 2))


def test_asymptotic_rate_complex_roots_is_sqrt_mu():
    mu, ek = 0.81, 1.0  # between (1 - 0.9)^2 and (1 + 0.9)^2: complex roots 0.9 e^(+-i theta)
    rho = 0.9
    assert decay_rate_asymptotic(1.0, ek, mu) == pytest.approx(rho, rel=EPS)
    # c_t = rho^t [rho cos((t+1) theta) + (1 - a/2) sin((t+1) theta)/sin theta]: envelope
    # |c_t| <= K rho^t with K = rho + |1 - a/2| / sin(theta)
    a = 1 + mu - ek
    sin_theta = np.sqrt(1 - (a / (2 * rho)) ** 2)
    K = rho + abs(1 - a / 2) / sin_theta
    t = np.arange(0, 400)
    c = decay_factor(t, 1.0, ek, mu)
    assert np.all(np.abs(c) <= K * rho**t * (1 + 32 * EPS * (t + 1)))

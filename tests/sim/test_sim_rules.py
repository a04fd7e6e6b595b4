"""The other rules' predictions (alignlab.theory.rules) against their Monte Carlos
(alignlab.sim.rules): one registry of cases, each asserting

    |simulated - theory| <= Z * se + bias_bound

for the mean angle and for its SD, with ``se`` from the draws (the SD's from their fourth
moment) and ``bias_bound`` the explicit size of what the theory neglects (each case says
what). Z = 5 as in test_theory_vs_sim.py: a false alarm per comparison of about 6e-7
(t-distributed with >= 1000 degrees of freedom here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import alignlab.theory as T
from alignlab.sim.rules import (
    AngleStats,
    simulate_fa_null,
    simulate_random_magnitude,
    simulate_sign_concordant_iid,
    simulate_weight_mirror,
)

Z = 5.0
# simulate_weight_mirror's draws are one chain: lag-one correlation <= exp(-2), which
# inflates the standard errors by at most sqrt((1 + r) / (1 - r)) (its docstring)
CHAIN = math.sqrt((1 + math.exp(-2)) / (1 - math.exp(-2)))


def _se_sd(x: np.ndarray) -> float:
    """Standard error of the sample SD from the sample's fourth central moment (delta
    method on the variance: Var s^2 = (m4 - s^4) / n)."""
    d = x - x.mean()
    s2, m4 = np.mean(d * d), np.mean(d**4)
    return math.sqrt(max(m4 - s2 * s2, 0.0) / x.size) / (2 * math.sqrt(s2))


@dataclass(frozen=True)
class Case:
    """One comparison: ``simulate()`` against ``theory() = (mean_deg, sd_deg)``;
    ``bias(mean_deg, sd_deg, N) = (mean bound, SD bound)`` in degrees."""

    name: str
    simulate: Callable[[], AngleStats]
    theory: Callable[[], tuple[float, float]]
    bias: Callable[[float, float], tuple[float, float]]
    inflation: float = 1.0


_SIMULATED: dict[str, AngleStats] = {}


def _simulated(case: Case) -> AngleStats:
    """The case's simulation, run once per session (the power test reuses it)."""
    if case.name not in _SIMULATED:
        _SIMULATED[case.name] = case.simulate()
    return _SIMULATED[case.name]


def _failures(case: Case, stats: AngleStats | None = None,
              theory: tuple[float, float] | None = None) -> list[str]:
    s = _simulated(case) if stats is None else stats
    mean, sd = case.theory() if theory is None else theory
    mean_bias, sd_bias = case.bias(float(mean), float(sd))
    se_mean = case.inflation * s.sd_deg / math.sqrt(s.n)
    se_sd = case.inflation * _se_sd(s.angles_deg)
    out = []
    if not abs(s.mean_deg - mean) <= Z * se_mean + mean_bias:
        out.append(f"{case.name}: mean {s.mean_deg:.5f} +- {se_mean:.2g} vs theory {mean:.5f}")
    if not abs(s.sd_deg - sd) <= Z * se_sd + sd_bias:
        out.append(f"{case.name}: SD {s.sd_deg:.5f} +- {se_sd:.2g} vs theory {sd:.5f}")
    return out


def _w(shape, kind="uniform", seed=0, zeros=0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        w = rng.uniform(-1, 1, shape)
    elif kind == "gaussian":
        w = rng.standard_normal(shape)
    else:  # heavy tails, like a trained layer's few large weights
        w = rng.standard_t(3, shape)
    return w * (rng.random(shape) >= zeros)


def _rad(deg: float) -> float:
    return math.radians(deg)


# --------------------------------------------------------------------------- the cases
def _random_magnitude(shape, kind, zeros=0.0, seed=0) -> Case:
    w = _w(shape, kind, seed, zeros)
    n = int(np.count_nonzero(w))
    # the delta method leaves O(N^-2) in the mean and relative O(1/N) in the SD (the next
    # order's coefficients are O(1) moments of the half-normal: 10 bounds them)
    return Case(f"random magnitude {shape} {kind} zeros={zeros}",
                lambda: simulate_random_magnitude(w, n_samples=3000, seed=seed + 1),
                lambda: T.random_magnitude_angle_given_w(w),
                lambda m, s: (math.degrees(10.0 / n**2), 10.0 * s / n))


def _fa_null(shape, ensemble, seed=0) -> Case:
    w = _w(shape, "uniform", seed)
    n = w.size
    rho_w = float(np.sum(w**4) / np.sum(w**2) ** 2)
    kurt = {"gaussian": 3.0, "uniform": 1.8}[ensemble]
    # mean: exactly 90 (B -> -B); SD: the series' 1.5/N^2 (exact Gaussian quadrature in
    # tests/theory/test_rules_finite_size.py) plus, for a non-Gaussian B,
    # |k - 3| rho_W / (6N), twice
    return Case(f"FA null {shape} {ensemble}",
                lambda: simulate_fa_null(w, ensemble, n_samples=20_000, seed=seed + 2),
                lambda: T.fa_null_angle(n),
                lambda m, s: (0.0, s * (1.5 / n**2 + abs(kurt - 3) * rho_w / (3 * n))))


def _usf(ensemble, n_out, n_in, seed=0) -> Case:
    n = n_out * n_in
    # mean: the N -> inf limit; its O(1/N) shift by the same delta method is -0.41/N
    # (Gaussian) and -0.17/N (uniform) radians: bounded by 1/N. SD: relative O(1/N), 10/N.
    return Case(f"uSF iid {ensemble} {n_out}x{n_in}",
                lambda: simulate_sign_concordant_iid(ensemble, n_out, n_in, n_samples=3000,
                                                     seed=seed + 3),
                lambda: (T.sign_concordant_angle_iid(ensemble),
                         float(T.sign_concordant_angle_sd_iid(ensemble, n))),
                lambda m, s: (math.degrees(1.0 / n), 10.0 * s / n))


def _mirror(shape, s, lr, wd, noise_std, n_draws, seed=0) -> Case:
    w = _w(shape, "uniform", seed)
    # the delta method's neglected terms are third order in the angle's spread sd (radians):
    # sd^2 (one order more than kept) bounds the mean's, 3 sd the SD's relative error
    return Case(f"weight mirror {shape} S={s} lr={lr} wd={wd} s={noise_std}",
                lambda: simulate_weight_mirror(w, n_samples=s, lr=lr, weight_decay=wd,
                                               noise_std=noise_std, n_draws=n_draws,
                                               seed=seed + 4),
                lambda: T.weight_mirror_angle_given_w(w, s, lr, wd),
                lambda m, sd: (math.degrees(_rad(sd) ** 2), 3.0 * _rad(sd) * sd),
                inflation=CHAIN)


CASES = [
    _random_magnitude((30, 50), "uniform"),
    _random_magnitude((40, 40), "gaussian", zeros=0.3, seed=1),
    _random_magnitude((25, 60), "heavy", seed=2),
    _random_magnitude((8, 4, 3, 3), "uniform", seed=3),  # a conv kernel: every entry counts
    _fa_null((12, 10), "uniform"),
    _fa_null((12, 10), "gaussian", seed=1),
    _fa_null((4, 3, 3, 3), "uniform", seed=2),
    _usf("gaussian", 30, 50),
    _usf("uniform", 30, 50, seed=1),
    _mirror((24, 40), 8, 0.1, 1.0, 1.0, 1200),
    _mirror((10, 30), 4, 0.05, 2.0, 0.5, 400, seed=1),  # a low-rank W, another scale
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_theory_matches_simulation(case: Case) -> None:
    failures = _failures(case)
    assert not failures, "\n".join(failures)


def test_the_tolerances_have_power() -> None:
    """Plausible mistakes are caught: brSF's SD without the magnitudes' norm term (the
    1/(2n)), and the weight mirror's SD for a Gaussian noise matrix (P_3 = P_4 = 0),
    35% too high at the study's n_in = 784, S = 16 and 23% here."""
    case = CASES[0]
    s = _simulated(case)
    mean, sd = case.theory()
    assert not _failures(case, s)
    w = _w((30, 50))
    n = w.size
    kappa = np.abs(w).sum() ** 2 / (n * np.sum(w * w))
    c = math.sqrt(2 / math.pi * kappa)
    wrong_sd = math.degrees(c * math.sqrt((math.pi / 2 - 1) / kappa / n) / math.sqrt(1 - c * c))
    assert _failures(case, s, (mean, wrong_sd))

    mirror = CASES[-2]
    s = _simulated(mirror)
    w = _w((24, 40))
    a, n_samples, n_in = 0.1, 8, 40
    p2 = a * a / ((1 - (1 - a) ** 2) * n_samples)
    g = w @ w.T / np.trace(w @ w.T)
    rho = float(np.sum(g * g))
    q = 1 + (n_in + 1) * p2
    var_q = 2 * (rho * (n_in + 6) + 1) * p2 * p2 + 8 * rho * (p2 - p2 * p2)
    var_log = 2 * rho * p2 + var_q / (4 * q * q) - 4 * rho * p2 / q
    c = 1 / math.sqrt(q)
    gaussian_sd = math.degrees(c * math.sqrt(var_log) / math.sqrt(1 - c * c))
    mean, sd = mirror.theory()
    assert gaussian_sd > 1.15 * sd
    assert _failures(mirror, s, (mean, gaussian_sd))


def test_uniform_sign_is_exact_for_rademacher() -> None:
    """Rademacher W: sign(W) is W up to scale, angle 0 in every draw (float rounding)."""
    s = simulate_sign_concordant_iid("rademacher", 7, 9, n_samples=50, seed=0)
    assert s.mean_deg <= 1e-5 and s.sd_deg <= 1e-5
    assert T.sign_concordant_angle_sd_iid("rademacher", 63) == 0.0


def test_norm_ratios() -> None:
    """brSF: E|sign(W)|M||^2 = s^2 N' (N' nonzero entries); FA: E|B|^2 = s^2 N; the mirror:
    E|F|^2 / |W|^2 = (s^2/wd)^2 (1 + (n_in + 1)/N_eff), exact (the mean ratio is below the
    root mean square by the Jensen term Var/(2 ratio), at most 1e-3 relative here)."""
    w = _w((30, 50))
    xavier = math.sqrt(2 / 80)
    rms = xavier * math.sqrt(w.size) / np.linalg.norm(w)
    for s in (simulate_random_magnitude(w, n_samples=2000, seed=5),
              simulate_fa_null(w, "gaussian", n_samples=2000, seed=6)):
        r2 = s.norm_ratios**2
        assert abs(r2.mean() - rms**2) <= Z * r2.std() / math.sqrt(r2.size)
    m = simulate_weight_mirror(_w((24, 40)), n_samples=8, lr=0.1, weight_decay=1.0,
                               noise_std=1.0, n_draws=300, seed=7)
    r2 = m.norm_ratios**2
    expected = float(T.weight_mirror_norm_ratio(40, 8, 0.1, 1.0, 1.0)) ** 2
    assert abs(r2.mean() - expected) <= Z * CHAIN * r2.std() / math.sqrt(r2.size)
    assert abs(m.norm_ratio_mean - math.sqrt(expected)) <= (
        Z * CHAIN * m.norm_ratios.std() / math.sqrt(m.n) + 1e-3 * math.sqrt(expected))


def test_seeded_and_chunk_independent() -> None:
    """Draw i is the same whatever the chunk size and n_samples; the angles agree up to
    the float64 rounding of reductions over differently shaped batches (a few eps)."""
    w = _w((6, 7))
    a = simulate_random_magnitude(w, n_samples=40, seed=3)
    b = simulate_random_magnitude(torch.as_tensor(w, dtype=torch.float32), n_samples=40,
                                  seed=3, max_chunk_bytes=1)  # one draw per chunk
    np.testing.assert_allclose(a.angles_deg, b.angles_deg, rtol=64 * np.finfo(float).eps)
    np.testing.assert_array_equal(a.norm_ratios, b.norm_ratios)
    c = simulate_fa_null(w, "uniform", n_samples=40, seed=3)
    d = simulate_fa_null(w, "uniform", n_samples=10, seed=3)
    np.testing.assert_allclose(c.angles_deg[:10], d.angles_deg, rtol=64 * np.finfo(float).eps)
    assert simulate_fa_null(w, "uniform", n_samples=10, seed=4).angles_deg[0] != d.angles_deg[0]
    m1 = simulate_weight_mirror(w, n_samples=2, lr=0.5, weight_decay=1.0, noise_std=1.0,
                                n_draws=3, seed=9)
    m2 = simulate_weight_mirror(w, n_samples=2, lr=0.5, weight_decay=1.0, noise_std=1.0,
                                n_draws=3, seed=9)
    np.testing.assert_array_equal(m1.angles_deg, m2.angles_deg)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: simulate_random_magnitude(np.zeros((3, 4)), n_samples=5), "weight"),
    (lambda: simulate_random_magnitude(np.ones(4), n_samples=5), "weight"),
    (lambda: simulate_random_magnitude(np.ones((3, 4)), n_samples=0), "n_samples"),
    (lambda: simulate_random_magnitude(np.ones((3, 4)), n_samples=5, seed=-1), "seed"),
    (lambda: simulate_fa_null(np.ones((3, 4)), "cauchy", n_samples=5), "ensemble"),
    (lambda: simulate_sign_concordant_iid("uniform", 0, 4, n_samples=5), "n_out"),
    (lambda: simulate_weight_mirror(np.ones((2, 3, 3, 3)), n_samples=4, lr=0.1,
                                    weight_decay=1.0, noise_std=1.0, n_draws=2), "weight"),
    (lambda: simulate_weight_mirror(np.ones((2, 3)), n_samples=4, lr=2.0, weight_decay=1.0,
                                    noise_std=1.0, n_draws=2), "lr * weight_decay"),
    (lambda: simulate_weight_mirror(np.ones((2, 3)), n_samples=4, lr=0.1, weight_decay=1.0,
                                    noise_std=0.0, n_draws=2), "noise_std"),
    (lambda: simulate_weight_mirror(np.ones((2, 3)), n_samples=4, lr=0.1, weight_decay=1.0,
                                    noise_std=1.0, n_draws=0), "n_draws"),
])
def test_bad_input_is_one_line_naming_the_argument(call, name) -> None:
    with pytest.raises(ValueError, match=re.escape(f"`{name}`")) as info:
        call()
    assert "\n" not in str(info.value)

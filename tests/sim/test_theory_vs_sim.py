"""Propositions 2 and 3 against Monte Carlo: one registry-driven property test.

Each :class:`Case` pairs a closed form of :mod:`alignlab.theory` with a simulator of
:mod:`alignlab.sim` and a hypothesis strategy for its parameters. For every drawn
parameter set the test asserts

    |simulated - theory| <= Z * se + bias_bound,

where ``se`` is the Monte Carlo standard error computed over independent samples and
``bias_bound`` is an explicit bound on how far the *expectation* of the simulated
estimator can sit from the closed form:

* 0 where the closed form is exact for the estimator's expectation
  (``E tr M^2 / n_out = m2(finite)``, ``E <W, MW>/|W|^2 = 1``, ``E |MW|^2/|W|^2 = m2``);
* a Jensen bound where the estimator is a nonlinear function of exact-mean ratios
  (angle, cos, norm ratio, pooled SD), see :func:`jensen_bound`;
* plus ``|finite - limit|`` where the closed form is the ``n -> inf`` limit (the exact
  finite-size ``m2`` is tested on its own, so this is an honest, explicit bound).

Why Z = 5: one run makes about (number of cases) x (examples per case) ~ 100
comparisons. Each standardised error is (close to) t-distributed with n_samples - 1 >= 47
degrees of freedom; P(|t_47| > 5) ~ 1e-5, so a run fails by chance with probability
~1e-3 at most (and never in CI, where hypothesis is derandomised), while a wrong
``m2`` (e.g. the kurtosis term dropped) still fails: see ``test_the_test_has_power``.

KS: eigenvalues within a sample are correlated, so no KS p-value is computed; the KS
*distance* to MP is bounded by a finite-size threshold, see :func:`ks_threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alignlab.sim as sim
import alignlab.theory as theory

Z = 5.0
N_SAMPLES = 48  # samples per simulation: enough for a stable se, cheap enough for CI


# ------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Params:
    n_out: int
    n_mid: int
    ensemble: str
    density: float
    seed: int
    n_in: int = 32
    method: str = "direct"

    @property
    def ens(self) -> sim.Ensemble:
        if self.ensemble == "sparse":
            return sim.get_ensemble("sparse", density=self.density)
        return sim.get_ensemble(self.ensemble)

    @property
    def kurtosis(self) -> float:
        return theory.entry_kurtosis(self.ensemble, density=self.density)

    @property
    def ratio(self) -> float:
        return self.n_mid / self.n_out


@st.composite
def params(draw, ensembles=("gaussian", "uniform", "rademacher", "sparse"),
           min_ratio=1.0, max_ratio=50.0, method="direct") -> Params:
    n_out = draw(st.integers(20, 120))
    # log-uniform ratio; n_mid capped so one direct simulation stays well under a second
    # (the Wishart method's cost does not depend on n_mid)
    log_r = draw(st.floats(math.log(min_ratio), math.log(max_ratio)))
    cap = 3000 if method == "direct" else 10**7
    n_mid = max(1, min(int(n_out * math.exp(log_r)), cap))
    ensemble = draw(st.sampled_from(ensembles))
    density = draw(st.sampled_from([0.25, 0.5])) if ensemble == "sparse" else 1.0
    seed = draw(st.integers(0, 2**32 - 1))
    return Params(n_out, n_mid, ensemble, density, seed, method=method)


# ---------------------------------------------------------------------- bias bounds
def jensen_bound(g: Callable, a: np.ndarray, b: np.ndarray) -> float:
    """Bound on the Jensen bias |E g(a, b) - g(E a, E b)| of a per-sample statistic.

    The closed forms are exact for ``g(E a, E b)`` (``E a = 1``, ``E b = m2``), but the
    simulation averages ``g(a_i, b_i)``. Taylor about the mean with remainder gives
    ``E g(X) - g(mu) = (1/2) E[(X - mu)^T H(xi) (X - mu)]``: of the order of the
    covariance of ``(a, b)`` times the curvature of ``g``, about half a standard error at
    48 samples for the angle, so it must be accounted for. Its sample analogue is the
    empirical Jensen gap ``mean_i g(X_i) - g(Xbar)``, which equals
    ``(1/2) mean_i (X_i - Xbar)^T H(xi_i) (X_i - Xbar)`` *exactly* (the linear term
    vanishes about ``Xbar``): a variance-like average whose relative sampling error at
    48 light-tailed samples is about sqrt(2/47) ~ 0.2, and which underestimates the
    bias by the factor (1 - 1/N). Twice its absolute value therefore bounds the bias
    except with negligible probability (a 5-sigma excursion of the estimate).
    (The crude bound (1/2) sup||H|| tr(Sigma) is 10-100x looser here because ``a`` and
    ``b`` are 0.8-0.99 correlated, so it would make the test toothless.)
    """
    gap = float(np.mean(g(a, b)) - g(a.mean(), b.mean()))
    return 2.0 * abs(gap)


def _angle(a, b):
    return np.degrees(np.arccos(np.clip(a / np.sqrt(b), -1.0, 1.0)))


def _cos(a, b):
    return a / np.sqrt(b)


def _sqrt_b(a, b):
    return np.sqrt(b)


# ----------------------------------------------------------------------- simulators
def _path(p: Params, n_samples: int = N_SAMPLES) -> sim.PathSamples:
    return sim.sample_converged_pfa(p.n_out, p.n_mid, p.n_in, n_samples=n_samples,
                                    ensemble=p.ens, rng=p.seed, method=p.method)


def _est(x: np.ndarray) -> tuple[float, float]:
    e = sim.estimate(x)
    return e.mean, e.se


def sim_angle(p: Params, n_samples: int = N_SAMPLES) -> tuple[float, float, float]:
    s = _path(p, n_samples)
    mean, se = _est(s.angle_deg)
    return mean, se, jensen_bound(_angle, s.inner_ratio, s.norm_ratio_sq)


def sim_cos(p: Params) -> tuple[float, float, float]:
    s = _path(p)
    mean, se = _est(s.cos)
    return mean, se, jensen_bound(_cos, s.inner_ratio, s.norm_ratio_sq)


def sim_norm_ratio(p: Params) -> tuple[float, float, float]:
    s = _path(p)
    mean, se = _est(s.norm_ratio)
    return mean, se, jensen_bound(_sqrt_b, s.inner_ratio, s.norm_ratio_sq)


def sim_inner_ratio(p: Params) -> tuple[float, float, float]:
    mean, se = _est(_path(p).inner_ratio)
    return mean, se, 0.0  # E <W, MW> / |W|^2 = 1 exactly (E M = I, W independent of B)


def sim_norm_ratio_sq(p: Params) -> tuple[float, float, float]:
    mean, se = _est(_path(p).norm_ratio_sq)
    return mean, se, 0.0  # E |MW|^2 / |W|^2 = m2(finite) exactly (E M^2 = m2 I)


def _spectrum(p: Params) -> sim.SpectrumResult:
    return sim.simulate_spectrum(p.n_out, p.n_mid, n_samples=N_SAMPLES, ensemble=p.ens,
                                 rng=p.seed, method=p.method)


def sim_second_moment(p: Params) -> tuple[float, float, float]:
    e = _spectrum(p).second_moment
    return e.mean, e.se, 0.0  # E tr M^2 / n_out = m2(finite) exactly


def sim_eigenvalue_sd(p: Params) -> tuple[float, float, float]:
    res = _spectrum(p)
    e = res.eigenvalue_sd
    m1 = res.eigenvalues.astype(float).mean(axis=1)
    # The pooled variance v = mean(m2_i) - mean(m1_i)^2 has E v = (m2 - 1) - Var(mean m1):
    # a bias of Var(m1)/N, which the SD inherits divided by 2 sd; then sqrt is concave:
    # |E sqrt(v) - sqrt(E v)| <= Var(v) / (8 v^(3/2)). Both with a factor-2 margin.
    var_m1_bar = float(np.var(m1, ddof=1)) / m1.size
    var_v = (2.0 * e.mean * e.se) ** 2
    bias = 2.0 * (var_m1_bar / (2.0 * e.mean) + var_v / (8.0 * e.mean**3))
    return e.mean, e.se, bias


def sim_angle_limit(p: Params) -> tuple[float, float, float]:
    mean, se, jensen = sim_angle(p)
    finite = float(theory.path_alignment_angle_finite(p.n_out, p.n_mid, p.kurtosis))
    limit = float(theory.path_alignment_angle(p.ratio))
    return mean, se, jensen + abs(finite - limit)  # the limit's finite-size bias, explicit


def sim_norm_ratio_limit(p: Params) -> tuple[float, float, float]:
    mean, se, jensen = sim_norm_ratio(p)
    finite = float(theory.path_norm_ratio_finite(p.n_out, p.n_mid, p.kurtosis))
    limit = float(theory.path_norm_ratio(p.ratio))
    return mean, se, jensen + abs(finite - limit)


def sim_sd_limit(p: Params) -> tuple[float, float, float]:
    mean, se, bias = sim_eigenvalue_sd(p)
    finite = float(theory.eigenvalue_sd_finite(p.n_out, p.n_mid, p.kurtosis))
    limit = float(theory.eigenvalue_sd(p.ratio))
    return mean, se, bias + abs(finite - limit)


# float32 rounding of B^T B: entries off by ~eps * sqrt(n_mid) relative; the angle
# computed via atan2 is accurate to a few eps in radians. 1e-3 deg / 1e-5 leave > 10x room.
ORTHO_ANGLE_ROUNDING = 1e-3
ORTHO_RATIO_ROUNDING = 1e-5


def sim_angle_orthogonal(p: Params) -> tuple[float, float, float]:
    mean, se = _est(_path(p).angle_deg)
    return mean, se, ORTHO_ANGLE_ROUNDING


def sim_norm_ratio_orthogonal(p: Params) -> tuple[float, float, float]:
    mean, se = _est(_path(p).norm_ratio)
    return mean, se, ORTHO_RATIO_ROUNDING


# ------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Case:
    name: str
    theory: Callable[[Params], float]
    simulate: Callable[[Params], tuple[float, float, float]]
    strategy: st.SearchStrategy


SPECTRUM = params(min_ratio=0.5)  # Prop 2 holds for r < 1 too (MP with an atom at 0)
PATH = params()
ORTHO = params(ensembles=("orthogonal",))
# Gaussian B^T B drawn as a Wishart matrix (Bartlett): r up to 10^4 at no extra cost
WISHART = params(ensembles=("gaussian",), min_ratio=1.0, max_ratio=1e4, method="wishart")

CASES = [
    # Proposition 2 (finite size, exact or Jensen-bounded)
    Case("m2_finite", lambda p: theory.mp_second_moment_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_second_moment, SPECTRUM),
    Case("eigenvalue_sd_finite",
         lambda p: theory.eigenvalue_sd_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_eigenvalue_sd, SPECTRUM),
    Case("eigenvalue_sd (limit)", lambda p: theory.eigenvalue_sd(p.ratio), sim_sd_limit,
         SPECTRUM),
    # Proposition 3: the exact identities behind it
    Case("E<W,MW>/|W|^2 = 1", lambda p: 1.0, sim_inner_ratio, PATH),
    Case("E|MW|^2/|W|^2 = m2_finite",
         lambda p: theory.mp_second_moment_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_norm_ratio_sq, PATH),
    # Proposition 3: angle, cos, norm ratio (finite size and limit)
    Case("path_alignment_angle_finite",
         lambda p: theory.path_alignment_angle_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_angle, PATH),
    Case("path_alignment_cos_finite",
         lambda p: theory.path_alignment_cos_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_cos, PATH),
    Case("path_norm_ratio_finite",
         lambda p: theory.path_norm_ratio_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_norm_ratio, PATH),
    Case("path_alignment_angle (limit)", lambda p: theory.path_alignment_angle(p.ratio),
         sim_angle_limit, PATH),
    Case("path_norm_ratio (limit)", lambda p: theory.path_norm_ratio(p.ratio),
         sim_norm_ratio_limit, PATH),
    # the same closed forms through the Wishart sampler, far beyond the direct method's sizes
    Case("m2_finite (wishart)",
         lambda p: theory.mp_second_moment_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_second_moment, WISHART),
    Case("path_alignment_angle_finite (wishart)",
         lambda p: theory.path_alignment_angle_finite(p.n_out, p.n_mid, p.kurtosis),
         sim_angle, WISHART),
    # PFA-o: B with orthonormal columns, M = I exactly
    Case("path_alignment_angle_orthogonal",
         lambda p: theory.path_alignment_angle_orthogonal(p.ratio), sim_angle_orthogonal, ORTHO),
    Case("path_norm_ratio_orthogonal",
         lambda p: theory.path_norm_ratio_orthogonal(p.ratio), sim_norm_ratio_orthogonal,
         ORTHO),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@settings(max_examples=6)
@given(data=st.data())
def test_theory_matches_simulation(case: Case, data) -> None:
    p = data.draw(case.strategy, label="params")
    expected = float(case.theory(p))
    mean, se, bias = case.simulate(p)
    tol = Z * se + bias
    assert abs(mean - expected) <= tol, (
        f"{case.name}: simulated {mean:.6g} +- {se:.2g} (bias bound {bias:.2g}) vs "
        f"theory {expected:.6g} at {p}")


# ------------------------------------------------------------------------------- KS
def ks_threshold(n_out: int, n_mid: int, kurtosis: float) -> float:
    """Finite-size bound on the KS distance between the pooled spectrum and MP.

    Two effects, both O(1/n) with n = min(n_out, n_mid) (the number of nonzero
    eigenvalues per sample): (i) eigenvalue rigidity and the edges, which put the
    *expected* spectral distribution O(1/n) away from MP (observed: KS * n <= 0.75 for
    k4 <= 3 over n_out in [20, 120], r in [0.5, 50], 32 to 256 samples); (ii) the
    finite-size excess variance: m2 - 1 = lambda (1 + (k4 - 2)/n_out), i.e. a spectrum
    stretched by a relative (k4 - 2)/(2 n_out), worth about |k4 - 2|/(4 n) in KS. The
    bound takes 1.5/n + |k4 - 2|/(2n): twice the observed (i) and twice (ii). Sampling
    noise is far smaller (rigidity: each sample's spectrum is within O(log n / n) of its
    mean), so no DKW term is needed at >= 48 samples.
    """
    n = min(n_out, n_mid)
    return (1.5 + abs(kurtosis - 2.0) / 2.0) / n


@settings(max_examples=10)
@given(p=params(min_ratio=0.5))
def test_ks_distance_to_marchenko_pastur(p: Params) -> None:
    res = _spectrum(p)
    assert res.ks <= ks_threshold(p.n_out, p.n_mid, p.kurtosis), (res.ks, p)


def test_the_test_has_power() -> None:
    """The tolerances are tight enough to catch plausible mistakes."""
    p = Params(n_out=60, n_mid=300, ensemble="rademacher", density=1.0, seed=7)
    # (1) a spectrum compared with MP at the wrong ratio (r off by 30%)
    res = _spectrum(p)
    assert res.ks <= ks_threshold(p.n_out, p.n_mid, p.kurtosis)
    wrong_ks = sim.ks_distance(res.eigenvalues, 1.3 * p.n_out / p.n_mid)
    assert wrong_ks > ks_threshold(p.n_out, p.n_mid, p.kurtosis)
    # (2) m2 with the kurtosis term dropped (Rademacher: k4 = 1 instead of the Gaussian 3)
    mean, se, _ = sim_second_moment(p)
    gaussian_m2 = theory.mp_second_moment_finite(p.n_out, p.n_mid, 3.0)
    assert abs(mean - gaussian_m2) > Z * se
    # (3) the angle's kurtosis correction is resolved (k4 = 1 vs 3: 44.3 vs 45.6 degrees)
    p2 = Params(n_out=20, n_mid=20, ensemble="rademacher", density=1.0, seed=3)
    mean, se, bias = sim_angle(p2, n_samples=400)
    wrong = float(theory.path_alignment_angle_finite(p2.n_out, p2.n_mid, 3.0))
    assert abs(mean - wrong) > Z * se + bias

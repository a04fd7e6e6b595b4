"""Propositions 2 and 3 against Monte Carlo: one registry-driven property test.

Each :class:`Case` pairs a closed form of :mod:`alignlab.theory` with a statistic of the
simulation; cases are grouped (:data:`GROUPS`) by the hypothesis strategy of their
parameters, and each drawn parameter set runs *one* simulation
(:func:`alignlab.sim.sample_converged_pfa`: eigenvalues and path statistics of the same
samples) that feeds every case of its group. For every drawn parameter set the test
asserts

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

Why Z = 5: one run makes about (number of cases) x (examples per group) ~ 170
comparisons. Each standardised error is (close to) t-distributed with n_samples - 1 >= 47
degrees of freedom; P(|t_47| > 5) ~ 1e-5, so a run fails by chance with probability
~2e-3 at most (and never in CI, where hypothesis is derandomised), while a wrong
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


# ----------------------------------------------------------------------- statistics
# One simulation per drawn parameter set feeds every statistic of its group: a
# statistic maps (samples, params) to (mean, se, bias bound).
def _path(p: Params, n_samples: int = N_SAMPLES) -> sim.PathSamples:
    return sim.sample_converged_pfa(p.n_out, p.n_mid, p.n_in, n_samples=n_samples,
                                    ensemble=p.ens, rng=p.seed, method=p.method)


def _est(x: np.ndarray) -> tuple[float, float]:
    e = sim.estimate(x)
    return e.mean, e.se


def st_angle(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    mean, se = _est(s.angle_deg)
    return mean, se, jensen_bound(_angle, s.inner_ratio, s.norm_ratio_sq)


def st_cos(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    mean, se = _est(s.cos)
    return mean, se, jensen_bound(_cos, s.inner_ratio, s.norm_ratio_sq)


def st_norm_ratio(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    mean, se = _est(s.norm_ratio)
    return mean, se, jensen_bound(_sqrt_b, s.inner_ratio, s.norm_ratio_sq)


def st_inner_ratio(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    mean, se = _est(s.inner_ratio)
    return mean, se, 0.0  # E <W, MW> / |W|^2 = 1 exactly (E M = I, W independent of B)


def st_norm_ratio_sq(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    mean, se = _est(s.norm_ratio_sq)
    return mean, se, 0.0  # E |MW|^2 / |W|^2 = m2(finite) exactly (E M^2 = m2 I)


def st_second_moment(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    e = sim.spectral_moment(s.eigenvalues, 2)
    return e.mean, e.se, 0.0  # E tr M^2 / n_out = m2(finite) exactly


def st_eigenvalue_sd(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    e = sim.pooled_eigenvalue_sd(s.eigenvalues)
    m1 = s.eigenvalues.astype(float).mean(axis=1)
    # The pooled variance v = mean(m2_i) - mean(m1_i)^2 has E v = (m2 - 1) - Var(mean m1):
    # a bias of Var(m1)/N, which the SD inherits divided by 2 sd; then sqrt is concave:
    # |E sqrt(v) - sqrt(E v)| <= Var(v) / (8 v^(3/2)). Both with a factor-2 margin.
    var_m1_bar = float(np.var(m1, ddof=1)) / m1.size
    var_v = (2.0 * e.mean * e.se) ** 2
    bias = 2.0 * (var_m1_bar / (2.0 * e.mean) + var_v / (8.0 * e.mean**3))
    return e.mean, e.se, bias


def st_ks(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    # a distance, no standard error: bounded by the finite-size threshold (below)
    return sim.ks_distance(s.eigenvalues, p.n_out / p.n_mid), 0.0, \
        ks_threshold(p.n_out, p.n_mid, p.kurtosis)


def _plus_limit_gap(stat, finite, limit):
    """A statistic compared with a limit: the limit's finite-size bias ``|finite - limit|``
    is added to the bias bound, explicitly (the finite form is itself tested)."""
    def st(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
        mean, se, bias = stat(s, p)
        return mean, se, bias + abs(float(finite(p)) - float(limit(p)))
    return st


def _finite_angle(p):
    return theory.path_alignment_angle_finite(p.n_out, p.n_mid, p.kurtosis)


def _finite_norm_ratio(p):
    return theory.path_norm_ratio_finite(p.n_out, p.n_mid, p.kurtosis)


def _finite_sd(p):
    return theory.eigenvalue_sd_finite(p.n_out, p.n_mid, p.kurtosis)


def _m2(p):
    return theory.mp_second_moment_finite(p.n_out, p.n_mid, p.kurtosis)


# Orthogonal B: r >= 1, M = I exactly (angle 0, ratio 1, SD 0) up to float32 rounding of
# B^T B (entries off by ~eps32 sqrt(n_mid) relative; the atan2 angle is accurate to a few
# eps in radians): 1e-3 deg, 1e-5 and 1e-4 (eigenvalues up to lam <= 2, n_out <= 120
# roundings) leave > 10x room. r < 1, a tight frame: the angle and the norm ratio are
# ratios of exact expectations (m2 = lam), so the Jensen bound applies as for iid B; the
# spectrum is deterministic (lam and 0).
ORTHO_ANGLE_ROUNDING = 1e-3
ORTHO_RATIO_ROUNDING = 1e-5
ORTHO_SD_ROUNDING = 1e-4


def st_angle_orthogonal(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    mean, se, jensen = st_angle(s, p)
    return mean, se, jensen + ORTHO_ANGLE_ROUNDING


def st_norm_ratio_orthogonal(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    mean, se, jensen = st_norm_ratio(s, p)
    return mean, se, jensen + ORTHO_RATIO_ROUNDING


def st_eigenvalue_sd_orthogonal(s: sim.PathSamples, p: Params) -> tuple[float, float, float]:
    e = sim.pooled_eigenvalue_sd(s.eigenvalues)
    return e.mean, 0.0, ORTHO_SD_ROUNDING


# ------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Case:
    name: str
    theory: Callable[[Params], float]
    statistic: Callable[[sim.PathSamples, Params], tuple[float, float, float]]


@dataclass(frozen=True)
class Group:
    """Parameters drawn from one strategy; one simulation per draw feeds every case."""

    strategy: st.SearchStrategy
    cases: tuple[Case, ...]


def ks_threshold(n_out: int, n_mid: int, kurtosis: float | None) -> float:
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


GROUPS = {
    # iid B, r from 0.5 (Prop. 2 and the exact identities hold for r < 1 too: MP with
    # an atom at 0) to 50
    "iid": Group(params(min_ratio=0.5), (
        # Proposition 2 (finite size, exact or bias-bounded) and the MP law
        Case("m2_finite", _m2, st_second_moment),
        Case("eigenvalue_sd_finite", _finite_sd, st_eigenvalue_sd),
        Case("eigenvalue_sd (limit)", lambda p: theory.eigenvalue_sd(p.ratio),
             _plus_limit_gap(st_eigenvalue_sd, _finite_sd,
                             lambda p: theory.eigenvalue_sd(p.ratio))),
        Case("KS distance to MP", lambda p: 0.0, st_ks),
        # Proposition 3: the exact identities behind it
        Case("E<W,MW>/|W|^2 = 1", lambda p: 1.0, st_inner_ratio),
        Case("E|MW|^2/|W|^2 = m2_finite", _m2, st_norm_ratio_sq),
        # Proposition 3: angle, cos, norm ratio (finite size and limit)
        Case("path_alignment_angle_finite", _finite_angle, st_angle),
        Case("path_alignment_cos_finite",
             lambda p: theory.path_alignment_cos_finite(p.n_out, p.n_mid, p.kurtosis), st_cos),
        Case("path_norm_ratio_finite", _finite_norm_ratio, st_norm_ratio),
        Case("path_alignment_angle (limit)", lambda p: theory.path_alignment_angle(p.ratio),
             _plus_limit_gap(st_angle, _finite_angle,
                             lambda p: theory.path_alignment_angle(p.ratio))),
        Case("path_norm_ratio (limit)", lambda p: theory.path_norm_ratio(p.ratio),
             _plus_limit_gap(st_norm_ratio, _finite_norm_ratio,
                             lambda p: theory.path_norm_ratio(p.ratio))),
    )),
    # Gaussian B^T B drawn as a Wishart matrix (Bartlett): r up to 10^4 at no extra cost
    "wishart": Group(params(ensembles=("gaussian",), max_ratio=1e4, method="wishart"), (
        Case("m2_finite (wishart)", _m2, st_second_moment),
        Case("path_alignment_angle_finite (wishart)", _finite_angle, st_angle),
        Case("path_norm_ratio_finite (wishart)", _finite_norm_ratio, st_norm_ratio),
    )),
    # Haar B: PFA-o (r >= 1, M = I) and the tight frame (r < 1, M = lam Q)
    # (r <= 8: beyond, PFA-o is the same exact 0 and the QR only costs time)
    "orthogonal": Group(params(ensembles=("orthogonal",), min_ratio=0.5, max_ratio=8.0), (
        Case("path_alignment_angle_orthogonal",
             lambda p: theory.path_alignment_angle_orthogonal(p.ratio), st_angle_orthogonal),
        Case("path_norm_ratio_orthogonal",
             lambda p: theory.path_norm_ratio_orthogonal(p.ratio), st_norm_ratio_orthogonal),
        Case("eigenvalue_sd_orthogonal",
             lambda p: theory.eigenvalue_sd_orthogonal(p.ratio), st_eigenvalue_sd_orthogonal),
    )),
}


def _check(group: Group, p: Params, s: sim.PathSamples) -> list[str]:
    """Every case of the group on one simulation; the failures, described."""
    failures = []
    for case in group.cases:
        expected = float(case.theory(p))
        mean, se, bias = case.statistic(s, p)
        if not abs(mean - expected) <= Z * se + bias:
            failures.append(f"{case.name}: simulated {mean:.6g} +- {se:.2g} (bias bound "
                            f"{bias:.2g}) vs theory {expected:.6g}")
    return failures


@pytest.mark.parametrize("group", sorted(GROUPS))
@settings(max_examples=10)
@given(data=st.data())
def test_theory_matches_simulation(group: str, data) -> None:
    g = GROUPS[group]
    p = data.draw(g.strategy, label="params")
    failures = _check(g, p, _path(p))
    assert not failures, f"at {p}:\n" + "\n".join(failures)


def test_the_test_has_power() -> None:
    """The tolerances are tight enough to catch plausible mistakes."""
    p = Params(n_out=60, n_mid=300, ensemble="rademacher", density=1.0, seed=7)
    s = _path(p)
    assert not _check(GROUPS["iid"], p, s)
    # (1) a spectrum compared with MP at the wrong ratio (r off by 30%)
    wrong_ks = sim.ks_distance(s.eigenvalues, 1.3 * p.n_out / p.n_mid)
    assert wrong_ks > ks_threshold(p.n_out, p.n_mid, p.kurtosis)
    # (2) m2 with the kurtosis term dropped (Rademacher: k4 = 1 instead of the Gaussian 3)
    mean, se, _ = st_second_moment(s, p)
    gaussian_m2 = theory.mp_second_moment_finite(p.n_out, p.n_mid, 3.0)
    assert abs(mean - gaussian_m2) > Z * se
    # (3) the angle's kurtosis correction is resolved (k4 = 1 vs 3: 44.3 vs 45.6 degrees)
    p2 = Params(n_out=20, n_mid=20, ensemble="rademacher", density=1.0, seed=3)
    mean, se, bias = st_angle(_path(p2, n_samples=400), p2)
    wrong = float(theory.path_alignment_angle_finite(p2.n_out, p2.n_mid, 3.0))
    assert abs(mean - wrong) > Z * se + bias
    # (4) orthogonal B at r = 1/2 is a tight frame at 45 deg: the hard-coded 0 that
    # Figure 3 used for every orthogonal ratio is caught
    p3 = Params(n_out=40, n_mid=20, ensemble="orthogonal", density=1.0, seed=5)
    s3 = _path(p3)
    assert not _check(GROUPS["orthogonal"], p3, s3)
    mean, se, bias = st_angle_orthogonal(s3, p3)
    assert abs(mean - 0.0) > Z * se + bias


# ------------------------------------------------- small n_out: when the forms apply
def test_finite_size_angle_needs_large_n_out() -> None:
    """The finite-size angle is a ratio of expectations; the *mean* angle approaches it as
    n_out grows, whatever n_in is (every column of W meets the same n_out x n_out M).

    n_out = 1: M is a positive scalar, so P^T = m W and the angle is exactly 0 in every
    sample, while the formula gives arctan(sqrt((k4 - 1)/n_mid)) (15.8 deg at r = 10).
    Then the error shrinks with n_out (measured at r = 10, uniform B, n_in = 64, 1000
    samples: -3.7, -0.9, -0.12 deg at n_out = 2, 4, 10; SE 0.2, 0.12, 0.05), each step
    by more than Z two-sample standard errors.
    """
    one = sim.sample_converged_pfa(1, 10, 512, n_samples=200, rng=0, dtype="float64")
    # atan2 of a rounding-level orthogonal part: a few eps in radians
    assert np.max(one.angle_deg) <= 16 * np.finfo(float).eps * 180 / np.pi
    formula = float(theory.path_alignment_angle_finite(1, 10))
    assert formula > 15.0
    errors, ses = [formula], [0.0]
    for k, n_out in enumerate((2, 4, 10)):
        s = sim.sample_converged_pfa(n_out, 10 * n_out, 64, n_samples=1000, rng=k + 1)
        mean, se = _est(s.angle_deg)
        errors.append(abs(mean - float(theory.path_alignment_angle_finite(n_out, 10 * n_out))))
        ses.append(se)
    for i in range(len(errors) - 1):
        assert errors[i] - errors[i + 1] > Z * math.hypot(ses[i], ses[i + 1]), (errors, ses)

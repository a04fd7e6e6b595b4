"""Proposition 3: path alignment, PFA-o, alignment dynamics and the geometry helpers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alignlab.theory import (
    DEFAULT_KURTOSIS,
    alignment_dynamics_cos,
    angle_deg,
    eigenvalue_sd_finite,
    eigenvalue_sd_orthogonal,
    entry_kurtosis,
    mp_second_moment_finite,
    norm_ratio,
    path_alignment_angle,
    path_alignment_angle_finite,
    path_alignment_angle_orthogonal,
    path_alignment_cos,
    path_alignment_cos_finite,
    path_norm_ratio,
    path_norm_ratio_finite,
    path_norm_ratio_orthogonal,
)

EPS = np.finfo(float).eps
Z = 5.0  # two-sided false-alarm probability 6e-7 per statistical check
DEG = 180 / np.pi


@pytest.mark.parametrize(
    ("r", "angle", "ratio"),
    [(1, 45.00, 1.414), (10, 17.55, 1.049), (100, 5.71, 1.005)],
)
def test_reference_values(r, angle, ratio):
    # the spec prints 2 and 3 decimals: equal to within half a unit of the last digit
    assert abs(path_alignment_angle(r) - angle) <= 0.005
    assert abs(path_norm_ratio(r) - ratio) <= 0.0005


@given(r=st.floats(1e-3, 1e6))
def test_limit_identities(r):
    cos, angle, ratio = path_alignment_cos(r), path_alignment_angle(r), path_norm_ratio(r)
    # cos = 1/ratio and angle = arccos(cos): a few roundings; arccos amplifies the error of
    # cos by 1/sin(angle), which is large only for tiny angles (large r)
    assert cos * ratio == pytest.approx(1.0, rel=4 * EPS)
    sin = np.sin(np.radians(angle))
    assert angle == pytest.approx(np.degrees(np.arccos(cos)), abs=DEG * 8 * EPS / sin)
    assert 0 < angle < 90 and 0 < cos < 1 and ratio > 1


@given(n_out=st.integers(1, 500), r=st.floats(0.05, 200.0))
def test_finite_size_against_limit(n_out, r):
    n_mid = max(1, round(n_out * r))
    lam = n_out / n_mid
    for k4 in (1.0, 9 / 5, 3.0):
        m2 = mp_second_moment_finite(n_out, n_mid, k4)
        assert path_alignment_cos_finite(n_out, n_mid, k4) == pytest.approx(
            1 / np.sqrt(m2), rel=4 * EPS
        )
        assert path_norm_ratio_finite(n_out, n_mid, k4) == pytest.approx(np.sqrt(m2), rel=4 * EPS)
        # the finite m2 differs from 1 + lam by exactly (k4 - 2)/n_mid; the angle
        # DEG arctan(sqrt(m2 - 1)) moves by at most max|d angle/d m2| * |gap|, with
        # d angle/d m2 = DEG / (2 m2 sqrt(m2 - 1)) decreasing in m2 (so largest at the lower
        # end); plus a few roundings (each <= 4 eps relative) of two angles below 90 deg
        gap = (k4 - 2) / n_mid
        lo_m2 = min(m2, 1 + lam)
        if lo_m2 > 1:
            slope = DEG / (2 * lo_m2 * np.sqrt(lo_m2 - 1))
            diff = path_alignment_angle_finite(n_out, n_mid, k4) - path_alignment_angle(1 / lam)
            assert abs(diff) <= slope * abs(gap) * (1 + 8 * EPS) + 2 * 4 * EPS * 90


def test_finite_size_exact_corner():
    # n_out = 1 with Rademacher entries: M = sum_k b_k^2 = 1 exactly, so the path is W
    assert path_alignment_angle_finite(1, 37, kurtosis=1.0) == 0.0
    assert path_norm_ratio_finite(1, 37, kurtosis=1.0) == 1.0


def test_vectorised():
    r = np.logspace(0, 2, 11)
    assert path_alignment_angle(r).shape == (11,)
    n_mid = (100 * r).astype(int)
    out = path_alignment_angle_finite(100, n_mid, entry_kurtosis("uniform"))
    assert out.shape == (11,) and np.all(np.diff(out) < 0)
    np.testing.assert_array_equal(path_alignment_angle_orthogonal(r), np.zeros(11))
    np.testing.assert_array_equal(path_norm_ratio_orthogonal(r), np.ones(11))
    assert path_alignment_angle_orthogonal(1.0).shape == ()


def test_orthogonal_below_one_is_a_tight_frame():
    """r < 1: no B has B^T B = I; the orthogonal ensemble is a tight frame, M = lam Q, with
    m2 = lam exactly: angle arctan(sqrt(1/r - 1)) (45 deg at r = 1/2, where the old code
    raised and Figure 3 hard-coded 0), RMS norm ratio 1/sqrt(r), eigenvalue SD
    sqrt(1/r - 1). Continuous at r = 1, where PFA-o's exact 0 / 1 / 0 take over."""
    assert path_alignment_angle_orthogonal(0.5) == pytest.approx(45.0, abs=DEG * 4 * EPS)
    assert path_norm_ratio_orthogonal(0.5) == pytest.approx(np.sqrt(2.0), rel=4 * EPS)
    assert eigenvalue_sd_orthogonal(0.5) == pytest.approx(1.0, rel=4 * EPS)
    r = np.array([0.01, 0.3, 0.999999, 1.0, 2.0])
    np.testing.assert_allclose(path_alignment_angle_orthogonal(r),
                               np.degrees(np.arccos(np.sqrt(np.minimum(r, 1.0)))),
                               rtol=1e-12, atol=1e-6)  # arccos itself loses ~1e-6 deg near 0
    np.testing.assert_array_equal(path_alignment_angle_orthogonal(r[3:]), 0.0)
    np.testing.assert_array_equal(eigenvalue_sd_orthogonal(r[3:]), 0.0)
    # (1 - r)/r is formed without cancellation (1 - r is exact there, Sterbenz): just
    # below 1 the angle keeps full precision; 1/r - 1 would lose ~4 digits at 1e-12
    r1 = 1.0 - 1e-12
    assert path_alignment_angle_orthogonal(r1) == pytest.approx(
        np.degrees(np.arctan(np.sqrt((1.0 - r1) / r1))), rel=8 * EPS, abs=0)


def test_orthogonal_tight_frame_monte_carlo():
    """Haar B with n_mid < n_out, entry variance 1/n_mid: every sample's spectrum is lam
    (n_mid times) and 0, and E<W, MW> = |W|^2, E|MW|^2 = lam |W|^2 (the exact moments
    behind the r < 1 formulas), for a fixed W."""
    rng = np.random.default_rng(11)
    n_samples, n_out, n_mid, n_in = 20_000, 5, 2, 3
    lam = n_out / n_mid
    q, _ = np.linalg.qr(rng.standard_normal((n_samples, n_out, n_mid)))  # (s, n_out, n_mid)
    B = np.sqrt(lam) * np.swapaxes(q, 1, 2)  # orthonormal rows scaled: entry var 1/n_mid
    M = np.swapaxes(B, 1, 2) @ B
    eig = np.linalg.eigvalsh(M)
    np.testing.assert_allclose(eig[:, -n_mid:], lam, atol=64 * EPS * lam)
    np.testing.assert_allclose(eig[:, :-n_mid], 0.0, atol=64 * EPS * lam)
    assert eigenvalue_sd_orthogonal(n_mid / n_out) == pytest.approx(np.std(eig[0]), rel=1e-12)
    W = rng.standard_normal((n_out, n_in))
    MW = M @ W
    inner = np.einsum("oi,soi->s", W, MW) / np.sum(W * W)
    sq = np.einsum("soi,soi->s", MW, MW) / np.sum(W * W)
    assert abs(inner.mean() - 1.0) <= Z * inner.std(ddof=1) / np.sqrt(n_samples)
    assert abs(sq.mean() - lam) <= Z * sq.std(ddof=1) / np.sqrt(n_samples)
    expected = np.degrees(np.arccos(inner.mean() / np.sqrt(sq.mean())))  # ratio of means
    assert path_alignment_angle_orthogonal(n_mid / n_out) == pytest.approx(expected, abs=1.0)


def test_extreme_ratios_are_finite_and_asymptotic():
    """r = 1e18 (n_mid = 1e20, beyond int64) and r = 1e-300 gave NaN and a RuntimeWarning;
    now every form is finite, warning-free and equal to its asymptotic expansion."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big, tiny = 1e18, 1e-300
        # limits: angle ~ degrees(1/sqrt r), cos ~ 1, ratio ~ 1 + 1/(2r); and for r -> 0
        assert path_alignment_angle(big) == pytest.approx(np.degrees(1e-9), rel=4 * EPS, abs=0)
        assert path_alignment_cos(big) == 1.0 and path_norm_ratio(big) == 1.0
        assert path_alignment_angle(tiny) == pytest.approx(90.0, rel=EPS)
        assert path_norm_ratio(tiny) == pytest.approx(1e150, rel=4 * EPS)
        assert path_alignment_cos(tiny) == pytest.approx(1e-150, rel=4 * EPS, abs=0)
        assert np.isfinite(path_norm_ratio(5e-324))  # the smallest float: no overflow
        # finite size at n_mid = 100 * 1e18, given as a Python int, a float, an array
        k4 = DEFAULT_KURTOSIS
        for n_mid in (10**20, 1e20, np.array([1e20, 1e21]), [10**20, 10**21]):
            excess = (100 + k4 - 2) / np.asarray(n_mid, dtype=float)
            np.testing.assert_allclose(path_alignment_angle_finite(100, n_mid),
                                       np.degrees(np.sqrt(excess)), rtol=1e-12)
            np.testing.assert_allclose(eigenvalue_sd_finite(100, n_mid), np.sqrt(excess),
                                       rtol=4 * EPS)
            np.testing.assert_allclose(path_norm_ratio_finite(100, n_mid), 1.0, rtol=EPS)
        assert np.isfinite(path_norm_ratio_finite(10**300, 1))
        assert path_alignment_angle_orthogonal(tiny) == pytest.approx(90.0, rel=EPS)
        assert np.isfinite(path_norm_ratio_orthogonal(5e-324))
        assert np.isfinite(eigenvalue_sd_orthogonal(5e-324))
    with pytest.raises(ValueError, match="`n_mid`"):
        path_alignment_angle_finite(100, [10**20, 0])


def _ensemble(rng, name, shape):
    if name == "gaussian":
        return rng.standard_normal(shape)
    if name == "uniform":
        return rng.uniform(-np.sqrt(3), np.sqrt(3), shape)
    if name == "rademacher":
        return rng.choice([-1.0, 1.0], shape)
    raise AssertionError(name)


@pytest.mark.parametrize("ensemble", ["gaussian", "uniform", "rademacher"])
def test_exact_moments_behind_prop3(ensemble):
    """E<W, MW> = |W|^2 and E|MW|^2 = m2 |W|^2 for a fixed W (the exact part of Prop. 3)."""
    rng = np.random.default_rng(5)
    n_samples, n_out, n_mid, n_in = 40_000, 5, 8, 3
    W = rng.standard_normal((n_out, n_in))
    B = _ensemble(rng, ensemble, (n_samples, n_mid, n_out)) / np.sqrt(n_mid)
    PT = np.einsum("sko,skp,pi->soi", B, B, W)  # (n_samples, n_out, n_in): B^T B W
    inner = np.einsum("oi,soi->s", W, PT) / np.sum(W * W)
    sq = np.einsum("soi,soi->s", PT, PT) / np.sum(W * W)
    m2 = mp_second_moment_finite(n_out, n_mid, entry_kurtosis(ensemble))
    assert abs(inner.mean() - 1.0) <= Z * inner.std(ddof=1) / np.sqrt(n_samples)
    assert abs(sq.mean() - m2) <= Z * sq.std(ddof=1) / np.sqrt(n_samples)


def test_alignment_dynamics_exact_ingredients():
    """E<W_t, P_t^T> = <W_t, W_t - c W_0>, E|P_t^T|^2 = m2 |W_t - c W_0|^2 + lam c^2 |R_0|^2.

    Over B and R_0 (independent, zero mean) for fixed W_0, W_t; the predicted cosine is the
    ratio of these exact expectations.
    """
    rng = np.random.default_rng(8)
    n_samples, n_out, n_mid, n_in, c = 40_000, 4, 6, 3, 0.6
    W0, Wt = rng.standard_normal((2, n_out, n_in))
    B = rng.standard_normal((n_samples, n_mid, n_out)) / np.sqrt(n_mid)
    R0T = rng.standard_normal((n_samples, n_mid, n_in)) * 0.7
    diff = Wt - c * W0
    PT = np.einsum("sko,skp,pi->soi", B, B, diff) + c * np.einsum("sko,ski->soi", B, R0T)
    lam, m2 = n_out / n_mid, mp_second_moment_finite(n_out, n_mid, 3.0)
    r0_sq = 0.7**2 * n_mid * n_in  # E|R_0|^2
    inner = np.einsum("oi,soi->s", Wt, PT)
    sq = np.einsum("soi,soi->s", PT, PT)
    assert abs(inner.mean() - np.sum(Wt * diff)) <= Z * inner.std(ddof=1) / np.sqrt(n_samples)
    expected_sq = m2 * np.sum(diff**2) + lam * c**2 * r0_sq
    assert abs(sq.mean() - expected_sq) <= Z * sq.std(ddof=1) / np.sqrt(n_samples)
    predicted = alignment_dynamics_cos(W0, Wt, np.sqrt(r0_sq), c, m2, lam=lam)
    ratio = np.sum(Wt * diff) / (np.linalg.norm(Wt) * np.sqrt(expected_sq))
    assert predicted == pytest.approx(ratio, rel=8 * EPS)


def test_alignment_dynamics_limits_and_time_course():
    rng = np.random.default_rng(1)
    W0 = rng.standard_normal((3, 4))
    Wt = rng.standard_normal((5, 3, 4))  # a time course of 5 snapshots
    c = np.linspace(1.0, 0.0, 5)
    out = alignment_dynamics_cos(W0, Wt, 2.0, c, 1.25)
    assert out.shape == (5,)
    for i in range(5):
        assert out[i] == pytest.approx(
            alignment_dynamics_cos(W0, Wt[i], 2.0, c[i], 1.25), rel=4 * EPS
        )
    # c = 0: Prop. 3's 1/sqrt(m2) whatever W_t is
    assert out[-1] == pytest.approx(1 / np.sqrt(1.25), rel=4 * EPS)
    # default lam is m2 - 1
    assert alignment_dynamics_cos(W0, Wt[0], 2.0, 0.5, 1.25) == pytest.approx(
        alignment_dynamics_cos(W0, Wt[0], 2.0, 0.5, 1.25, lam=0.25), rel=EPS
    )
    with pytest.raises(ValueError, match="`wt`"):
        alignment_dynamics_cos(W0, rng.standard_normal((4, 3)), 1.0, 0.5, 1.2)


def test_angle_and_norm_ratio():
    x = np.array([[1.0, 0.0], [0.0, 0.0]])
    y = np.array([[0.0, 2.0], [0.0, 0.0]])
    assert angle_deg(x, y) == 90.0
    assert angle_deg(x, 3 * x) == 0.0
    assert angle_deg(x, -x) == 180.0
    assert angle_deg(x, x + y / 2) == pytest.approx(45.0, abs=DEG * 4 * EPS)
    assert norm_ratio(x, y) == 2.0
    rows = angle_deg(np.eye(2), np.array([[1.0, 1.0], [0.0, 1.0]]), axis=1)
    np.testing.assert_allclose(rows, [45.0, 0.0], atol=DEG * 4 * EPS)
    with pytest.raises(ValueError, match="`x`"):
        angle_deg(np.zeros(3), np.ones(3))


def test_angle_is_accurate_near_zero():
    """theory.angle_deg is the package's atan2 angle: a 1e-9 rad angle comes out to full
    precision, where arccos(clip(cos)) gives exactly 0 (cos rounds to 1)."""
    for t in (1e-9, 1e-12, 1e-15):
        x = np.array([[3.0, 0.0], [0.0, 0.0]])
        y = np.array([[5.0, 5.0 * t], [0.0, 0.0]])  # angle arctan(t)
        assert angle_deg(x, y) == pytest.approx(np.degrees(np.arctan(t)), rel=16 * EPS, abs=0)
        assert np.degrees(np.arccos(np.clip(np.sum(x * y) / (3.0 * np.hypot(5, 5 * t)),
                                            -1, 1))) == 0.0  # what arccos gives


@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_angle_invariances(seed, scale):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((2, 4, 5))
    a = angle_deg(x, y)
    # scale invariance and symmetry, up to the rounding of cos amplified by 1/sin(angle)
    tol = DEG * 16 * EPS / max(np.sin(np.radians(a)), 1e-8)
    assert angle_deg(scale * x, y) == pytest.approx(a, abs=tol)
    assert angle_deg(y, x) == pytest.approx(a, abs=tol)
    assert norm_ratio(x, scale * x) == pytest.approx(scale, rel=4 * EPS)

"""Alignment dynamics from logged scalars (Props. 1 + 3): known answers, the tensor form,
an exact expectation by Monte Carlo, validation."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.theory import (
    alignment_dynamics_cos,
    mp_second_moment_finite,
    path_alignment_angle_finite,
    path_norm_ratio_finite,
)
from alignlab.theory.dynamics import (
    path_alignment_dynamics_angle,
    path_alignment_dynamics_cos,
    path_norm_ratio_dynamics,
)

EPS = np.finfo(float).eps
Z = 5.0  # two-sided false-alarm probability 6e-7 for the one statistical check


def scalars(wt, w0, f0):
    """What layers.csv logs, from tensors: w_sq, w_dot_w0, w0_sq, fb0_sq, w_dot_fb0."""
    return (float(np.sum(wt * wt)), float(np.sum(wt * w0)), float(np.sum(w0 * w0)),
            float(np.sum(f0 * f0)), float(np.sum(wt * f0)))


@pytest.mark.parametrize(("n_out", "n_mid", "k4"), [(512, 5120, 1.8), (10, 100, 1.8),
                                                     (10, 25, 3.0), (64, 64, 1.0)])
def test_c_zero_is_proposition_3_finite(n_out, n_mid, k4):
    """c = 0: whatever W_t, W_0, F_0, the prediction is 1/sqrt(m2), the finite-size
    Proposition 3 (to a few ulps: both are one rounding chain from the same m2)."""
    m2 = mp_second_moment_finite(n_out, n_mid, k4)
    args = (3.7, -1.2, 5.0, 11.0, 0.0, m2)  # W_t, W_0 arbitrary; c = 0
    np.testing.assert_allclose(path_alignment_dynamics_cos(*args), 1 / np.sqrt(m2),
                               rtol=8 * EPS)
    np.testing.assert_allclose(path_alignment_dynamics_angle(*args),
                               path_alignment_angle_finite(n_out, n_mid, k4), rtol=64 * EPS)
    np.testing.assert_allclose(path_norm_ratio_dynamics(*args[:6]),
                               path_norm_ratio_finite(n_out, n_mid, k4), rtol=8 * EPS)


@pytest.mark.parametrize("c", [1.0, 0.9, 0.5, 0.013, -0.2])
def test_w_unchanged_gives_the_c_formula(c):
    """W_t = W_0 (no learning): X = (1 - c) W_0, so
    cos = (1 - c) / sqrt(m2 (1 - c)^2 + c^2 fb0 / w0)."""
    w0, fb0, m2 = 2.5, 0.8, 1.1
    expect = (1 - c) / np.sqrt(m2 * (1 - c) ** 2 + c**2 * fb0 / w0)
    got = path_alignment_dynamics_cos(w0, w0, w0, fb0, c, m2)
    np.testing.assert_allclose(got, expect, rtol=16 * EPS, atol=16 * EPS)
    np.testing.assert_allclose(path_alignment_dynamics_angle(w0, w0, w0, fb0, c, m2),
                               np.degrees(np.arccos(expect)), rtol=1e-9, atol=1e-12)
    ratio = np.sqrt(m2 * (1 - c) ** 2 + c**2 * fb0 / w0)
    np.testing.assert_allclose(path_norm_ratio_dynamics(w0, w0, w0, fb0, c, m2), ratio,
                               rtol=16 * EPS)


def test_initial_point_is_90_degrees_without_and_exact_with_the_cross_term():
    """t = 0 (W_t = W_0, c = 1): the prediction without the cross term is 90 deg (the path
    is F_0, assumed orthogonal in expectation); with <W_0, F_0> it is the measured angle
    between W_0 and F_0 exactly."""
    rng = np.random.default_rng(0)
    w0, f0 = rng.standard_normal((2, 7, 5))
    w_sq, w_dot_w0, w0_sq, fb0_sq, w_dot_fb0 = scalars(w0, w0, f0)
    assert path_alignment_dynamics_angle(w_sq, w_dot_w0, w0_sq, fb0_sq, 1.0, 1.3) == 90.0
    measured = np.degrees(np.arccos(np.sum(w0 * f0) / np.linalg.norm(w0) / np.linalg.norm(f0)))
    got = path_alignment_dynamics_angle(w_sq, w_dot_w0, w0_sq, fb0_sq, 1.0, 1.3,
                                        w_dot_fb0=w_dot_fb0)
    np.testing.assert_allclose(got, measured, rtol=1e-12)


@pytest.mark.parametrize("c", [1.0, 0.6, 0.05, 1e-4])
def test_both_cross_terms_make_b_equal_identity_exact(c):
    """M = I (KP, PFA-o, PFA-id): the path is exactly P = X_t + c F_0, and with
    <W_t, F_0> and <W_0, F_0> (the step-0 row's w_dot_fb0) the prediction is the angle
    between W_t and P to rounding, whatever W_t's correlation with F_0; the numerator's
    term alone is not (its denominator is the expectation's) and clips where W_t has grown
    along F_0. w0_dot_fb0 without w_dot_fb0 is refused."""
    rng = np.random.default_rng(5)
    w0, f0, noise = rng.standard_normal((3, 7, 5))
    wt = 0.8 * w0 + 2.0 * f0 + noise  # W grew along its initial feedback
    path = wt - c * w0 + c * f0
    measured = np.degrees(np.arctan2(
        np.linalg.norm(path - np.sum(wt * path) / np.sum(wt * wt) * wt), np.sum(wt * path)
        / np.linalg.norm(wt)))
    w_sq, w_dot_w0, w0_sq, fb0_sq, w_dot_fb0 = scalars(wt, w0, f0)
    g = float(np.sum(w0 * f0))
    args = (w_sq, w_dot_w0, w0_sq, fb0_sq, c, 1.0)
    got = path_alignment_dynamics_angle(*args, w_dot_fb0=w_dot_fb0, w0_dot_fb0=g)
    np.testing.assert_allclose(got, measured, rtol=1e-11, atol=1e-11)
    cos = path_alignment_dynamics_cos(*args, w_dot_fb0=w_dot_fb0, w0_dot_fb0=g)
    np.testing.assert_allclose(cos, np.cos(np.radians(measured)), rtol=1e-12)
    if c > 0.01:  # the cross term matters: the numerator alone is another number
        alone = path_alignment_dynamics_angle(*args, w_dot_fb0=w_dot_fb0)
        assert abs(alone - measured) > 1e-3
    with pytest.raises(ValueError, match="`w0_dot_fb0`"):
        path_alignment_dynamics_angle(*args, w0_dot_fb0=g)


def test_scalars_equal_the_tensor_form():
    """The logged-scalar form is alignment_dynamics_cos of the tensors with
    lam |R_0|^2 = fb0_sq (float64 rounding: both sum the same products in other orders)."""
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((6, 9))
    wt = rng.standard_normal((4, 6, 9)) + 0.5 * w0  # a time course of 4 points
    c = np.array([1.0, 0.6, 0.1, 0.0])
    r0_norm, lam, m2 = 3.0, 0.25, 1.3
    expect = alignment_dynamics_cos(w0, wt, r0_norm, c, m2, lam=lam)
    w_sq = np.sum(wt * wt, axis=(1, 2))
    w_dot_w0 = np.sum(wt * w0, axis=(1, 2))
    got = path_alignment_dynamics_cos(w_sq, w_dot_w0, np.sum(w0 * w0), lam * r0_norm**2, c, m2)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expect, rtol=1e-13)


def test_small_angle_is_accurate():
    """c = 0, m2 = 1 + 1e-20: the angle is arctan(1e-10) rad = 5.7e-9 deg; an arccos of
    the cosine would return 0 (cos rounds to 1). m2 - 1 is exact here (Sterbenz)."""
    m2 = 1.0 + 2.0**-40  # excess 9.1e-13, representable exactly
    got = path_alignment_dynamics_angle(4.0, 1.0, 2.0, 3.0, 0.0, m2)
    np.testing.assert_allclose(got, np.degrees(np.arctan(np.sqrt(2.0**-40))), rtol=1e-12)
    # a small residual c adds c^2 (w0_perp + fb0) / w_sq exactly
    c, w_sq, wd, w0s, fb0 = 1e-7, 4.0, 1.0, 2.0, 3.0
    perp_sq = c * c * (w0s - wd * wd / w_sq + fb0)
    along = (w_sq - c * wd) / np.sqrt(w_sq)
    np.testing.assert_allclose(
        path_alignment_dynamics_angle(w_sq, wd, w0s, fb0, c, 1.0),
        np.degrees(np.arctan2(np.sqrt(perp_sq), along)), rtol=1e-12)


def test_squared_norm_is_exact_in_expectation_over_B_and_R0():
    """E_{B,R0} |M X + c B^T R_0^T|^2 = m2 |X|^2 + c^2 lam |R_0|^2 exactly (the cross term
    is odd in B), with m2 = mp_second_moment_finite: Monte Carlo over 4000 draws of
    uniform B and Gaussian R_0, within Z standard errors."""
    rng = np.random.default_rng(2)
    n_out, n_mid, n_in, n = 8, 24, 5, 4000
    w0 = rng.standard_normal((n_out, n_in))
    wt = 0.7 * w0 + rng.standard_normal((n_out, n_in))
    c = 0.4
    x = wt - c * w0
    a = np.sqrt(3.0 / n_mid)
    b = rng.uniform(-a, a, size=(n, n_mid, n_out))
    r0t = rng.standard_normal((n, n_mid, n_in))  # E |R_0|^2 = n_mid n_in
    m = np.einsum("kij,kil->kjl", b, b)
    path = m @ x + c * np.einsum("kij,kil->kjl", b, r0t)
    ratio_sq = np.sum(path * path, axis=(1, 2)) / np.sum(wt * wt)
    m2 = mp_second_moment_finite(n_out, n_mid, 1.8)
    fb0_mean = (n_out / n_mid) * n_mid * n_in  # lam E|R_0|^2
    pred = path_norm_ratio_dynamics(np.sum(wt * wt), np.sum(wt * w0), np.sum(w0 * w0),
                                    fb0_mean, c, m2) ** 2
    se = ratio_sq.std(ddof=1) / np.sqrt(n)
    assert abs(ratio_sq.mean() - pred) < Z * se, (ratio_sq.mean(), pred, se)


def test_broadcasts_and_rejects_bad_input():
    got = path_alignment_dynamics_angle(np.full((2, 3), 2.0), 1.0, 2.0, 1.0,
                                        np.array([0.0, 0.5, 1.0]), 1.2)
    assert got.shape == (2, 3)
    with pytest.raises(ValueError, match=r"^`w_sq` must be > 0, got 0.0\.$"):
        path_alignment_dynamics_cos(0.0, 1.0, 1.0, 1.0, 0.5, 1.1)
    with pytest.raises(ValueError, match=r"^`m2` must be >= 1, got 0.9\.$"):
        path_alignment_dynamics_cos(1.0, 1.0, 1.0, 1.0, 0.5, 0.9)
    with pytest.raises(ValueError, match=r"^`decay_c` must be finite"):
        path_alignment_dynamics_angle(1.0, 1.0, 1.0, 1.0, float("nan"), 1.1)
    with pytest.raises(ValueError, match=r"^`fb0_sq` must be >= 0"):
        path_norm_ratio_dynamics(1.0, 1.0, 1.0, -1.0, 0.5, 1.1)


def test_zero_path_is_nan():
    """W_t = c W_0 and F_0 = 0: the predicted path is zero, its angle undefined."""
    assert np.isnan(path_alignment_dynamics_cos(1.0, 1.0, 1.0, 0.0, 1.0, 1.2))
    assert np.isnan(path_alignment_dynamics_angle(1.0, 1.0, 1.0, 0.0, 1.0, 1.2))

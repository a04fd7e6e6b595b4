"""Other closed forms: sign-concordant, FA at init, weight mirror, GAIT-prop, pseudo-inverse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alignlab.theory import (
    abs_moment_ratio,
    angle_deg,
    fa_init_cos_mean,
    fa_init_cos_sd,
    gaitprop_mismatch,
    pinv_alignment_cos,
    sign_concordant_angle_iid,
    sign_concordant_cos,
    sign_concordant_cos_iid,
    sign_concordant_cos_random_magnitude,
    weight_mirror_feedback,
)

EPS = np.finfo(float).eps
Z = 5.0  # two-sided false-alarm probability 6e-7 per statistical check
DEG = 180 / np.pi


def _draw(rng, name, size, density=1.0):
    if name == "gaussian":
        return rng.standard_normal(size)
    if name == "uniform":
        return rng.uniform(-1, 1, size)
    if name == "rademacher":
        return rng.choice([-1.0, 1.0], size)
    if name == "sparse":
        return (rng.random(size) < density) * rng.standard_normal(size)
    raise AssertionError(name)


def _ratio_of_means_se(a, b):
    """Delta-method SE of mean(a) / sqrt(mean(b)) for iid pairs (a_i, b_i)."""
    n = a.size
    ma, mb = a.mean(), b.mean()
    grad = np.array([1 / np.sqrt(mb), -ma / (2 * mb**1.5)])
    cov = np.cov(np.stack([a, b])) / n
    return float(np.sqrt(grad @ cov @ grad))


def test_ceiling_values():
    # arccos(sqrt(2/pi)) = 37.07 deg (the spec's "37.0" truncates it): half a unit of the
    # last printed digit
    assert abs(sign_concordant_angle_iid("gaussian") - 37.07) <= 0.005
    # uniform is exactly 30 deg: arccos(sqrt(3)/2); arccos amplifies rounding by 1/sin(30) = 2
    assert sign_concordant_angle_iid("uniform") == pytest.approx(30.0, abs=DEG * 2 * 4 * EPS)
    assert sign_concordant_cos_iid("gaussian") == pytest.approx(np.sqrt(2 / np.pi), rel=EPS)
    assert sign_concordant_cos_iid("rademacher") == 1.0
    assert abs_moment_ratio("sparse", 0.5) == pytest.approx(np.sqrt(1 / np.pi), rel=2 * EPS)


@given(seed=st.integers(0, 2**32 - 1))
def test_sign_concordant_cos_is_the_angle_to_sign(seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((7, 9))
    cos = sign_concordant_cos(w)
    a = angle_deg(w, 0.3 * np.sign(w))
    # arccos is amplified by 1/sin(angle); the two computations share no rounding
    assert a == pytest.approx(np.degrees(np.arccos(cos)), abs=DEG * 32 * EPS / np.sin(a / DEG))
    rows = sign_concordant_cos(w, axis=1)
    np.testing.assert_allclose(
        rows, np.abs(w).sum(1) / (np.sqrt(9) * np.linalg.norm(w, axis=1)), rtol=8 * EPS
    )


def test_sign_concordant_cos_with_zero_entries_is_the_angle_to_sign():
    """sign(0) = 0: a zero entry adds nothing to |sign W| (the feedback uSF builds), so the
    cosine counts the nonzero entries only (3 of 6 here, not 6)."""
    w = np.array([[0.5, 0.0, -2.0], [0.0, 1.0, 0.0]])
    expect = np.cos(np.radians(angle_deg(w, np.sign(w))))
    assert sign_concordant_cos(w) == pytest.approx(expect, rel=8 * EPS)
    assert sign_concordant_cos(w) == pytest.approx(3.5 / (np.sqrt(3) * np.linalg.norm(w)))
    np.testing.assert_allclose(sign_concordant_cos(w, axis=1), [2.5 / np.sqrt(2 * 4.25), 1.0])


@pytest.mark.parametrize(
    ("ensemble", "density"), [("gaussian", 1.0), ("uniform", 1.0), ("sparse", 0.3)]
)
def test_sign_concordant_iid_monte_carlo(ensemble, density):
    rng = np.random.default_rng(4)
    w = _draw(rng, ensemble, 1_000_000, density)
    measured = sign_concordant_cos(w)
    se = _ratio_of_means_se(np.abs(w), w**2)
    # ratio-of-means bias is O(1/N) = 1e-6, far below Z * se (about 5e-3 here)
    assert abs(measured - sign_concordant_cos_iid(ensemble, density)) <= Z * se + 1.0 / w.size


@pytest.mark.parametrize(("w_ensemble", "w_density", "expected"), [
    ("uniform", 1.0, np.sqrt(3) / 2 * np.sqrt(2 / np.pi)),
    # a zero of W has sign 0, so no feedback there: the nonzero entries' ratio, any density
    ("sparse", 0.3, 2 / np.pi),
])
def test_random_magnitude_monte_carlo(w_ensemble, w_density, expected):
    rng = np.random.default_rng(6)
    w = _draw(rng, w_ensemble, 1_000_000, w_density)
    b = _draw(rng, "gaussian", 1_000_000)
    feedback = np.abs(b) * np.sign(w)
    cos = np.sum(w * feedback) / (np.linalg.norm(w) * np.linalg.norm(feedback))
    # cos = mean(|w||b|) / sqrt(mean(w^2) mean(|sign w| b^2)); SE by the delta method on
    # the three means
    a, q1, q2 = np.abs(w) * np.abs(b), w**2, (w != 0) * b**2
    means = np.array([a.mean(), q1.mean(), q2.mean()])
    grad = np.array([1, -0.5 * means[0] / means[1], -0.5 * means[0] / means[2]]) / np.sqrt(
        means[1] * means[2]
    )
    se = float(np.sqrt(grad @ (np.cov(np.stack([a, q1, q2])) / w.size) @ grad))
    got = sign_concordant_cos_random_magnitude(w_ensemble, "gaussian", w_density=w_density)
    assert got == pytest.approx(expected, rel=2 * EPS)
    assert abs(cos - got) <= Z * se + 1.0 / w.size


def test_fa_init_monte_carlo():
    rng = np.random.default_rng(2)
    n_samples, shape = 20_000, (5, 10)
    N = 50
    W = rng.uniform(-1, 1, shape)  # any fixed W
    B = rng.standard_normal((n_samples, *shape))
    cos = np.einsum("ij,sij->s", W, B) / (np.linalg.norm(W) * np.linalg.norm(B, axis=(1, 2)))
    assert fa_init_cos_mean(N) == 0.0
    assert abs(cos.mean()) <= Z * cos.std(ddof=1) / np.sqrt(n_samples)
    # exact for Gaussian B: E cos^2 = 1/N (cos^2 ~ Beta(1/2, (N-1)/2))
    sq = cos**2
    assert abs(sq.mean() - fa_init_cos_sd(N) ** 2) <= Z * sq.std(ddof=1) / np.sqrt(n_samples)
    np.testing.assert_array_equal(fa_init_cos_sd(np.array([1, 4, 100])), [1.0, 0.5, 0.1])


def test_weight_mirror_monte_carlo():
    rng = np.random.default_rng(9)
    n_samples, n_out, n_in, s = 200_000, 3, 4, 0.5
    W = rng.standard_normal((n_out, n_in))
    xi = rng.standard_normal((n_samples, n_in)) * s
    prod = np.einsum("si,so->sio", xi, xi @ W.T)  # xi (W xi)^T, (n_samples, n_in, n_out)
    se = prod.std(axis=0, ddof=1) / np.sqrt(n_samples)
    expected = weight_mirror_feedback(W, s)
    assert expected.shape == (n_in, n_out)
    # 12 entries: Bonferroni, Z per entry still leaves a false-alarm probability < 1e-5
    assert np.all(np.abs(prod.mean(axis=0) - expected) <= Z * se)
    np.testing.assert_array_equal(expected, s**2 * W.T)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12))
def test_gaitprop_mismatch(seed, n):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) + 3 * np.eye(n)  # usually, not always, well conditioned
    inv = np.linalg.inv(W)
    direct = inv - W.T
    got = gaitprop_mismatch(W)
    # backward-stable solves: inv(W) errs by <= n eps cond |W^-1|_F; -W^-1 (W W^T - I) errs by
    # n eps cond |X|_F from the solve plus |W^-1|_2 times the residual's rounding
    # n eps (|W|_F^2 + 1); 16 covers the constants
    cond = np.linalg.cond(W)
    inv_2 = np.linalg.norm(inv, 2)
    solve_err = cond * (np.linalg.norm(inv) + np.linalg.norm(got))
    residual_err = inv_2 * (np.linalg.norm(W) ** 2 + 1)
    tol = 16 * n * EPS * (solve_err + residual_err)
    assert np.linalg.norm(got - direct) <= tol
    # orthogonal W: zero mismatch up to the orthogonality residual of Q itself
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    resid = np.linalg.norm(Q @ Q.T - np.eye(n))
    assert np.linalg.norm(gaitprop_mismatch(Q)) <= 2 * resid + 16 * n * EPS


def test_gaitprop_batched_and_singular():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 4, 4)) + 4 * np.eye(4)
    out = gaitprop_mismatch(W)
    for i in range(3):
        # same LAPACK solve per matrix; batched BLAS may round differently (a few ulps)
        tol = 16 * 4 * EPS * np.linalg.norm(out[i])
        np.testing.assert_allclose(out[i], gaitprop_mismatch(W[i]), rtol=0, atol=tol)
    with pytest.raises(ValueError, match="`w`"):
        gaitprop_mismatch(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="`w`"):
        gaitprop_mismatch(np.ones((2, 3)))


def test_pinv_alignment():
    assert pinv_alignment_cos(100, 100) == 0.0
    assert pinv_alignment_cos(400, 100) == pytest.approx(np.sqrt(0.75), rel=EPS)
    assert pinv_alignment_cos(100, 400) == pinv_alignment_cos(400, 100)
    rng = np.random.default_rng(3)
    N, C, n_samples = 200, 50, 20  # small: SVDs are slow when BLAS threads are contended
    cos = []
    for _ in range(n_samples):
        B = rng.standard_normal((N, C)) / np.sqrt(N)
        P = np.linalg.pinv(B).T
        cos.append(np.sum(B * P) / (np.linalg.norm(B) * np.linalg.norm(P)))
    cos = np.array(cos)
    # finite size: E tr S^-1 = C N/(N - C - 1) (inverse Wishart) instead of C N/(N - C),
    # moving cos by a relative 1/(2(N - C - 1)); the bound takes twice that, plus Z * se
    bias = 2 * pinv_alignment_cos(N, C) / (2 * (N - C - 1))
    se = cos.std(ddof=1) / np.sqrt(n_samples)
    assert abs(cos.mean() - pinv_alignment_cos(N, C)) <= bias + Z * se

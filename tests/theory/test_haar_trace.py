"""``haar_trace_moments``: the mean and SD of ``tr(A U B U^T)`` over Haar ``U`` against a
Monte Carlo (tolerances from the sample size), and its exact edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignlab.theory import haar_trace_moments


def _haar(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))  # Haar (Mezzadri's sign fix)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_moments_match_a_monte_carlo(n):
    rng = np.random.default_rng(n)
    a, b = rng.uniform(0, 3, n), rng.exponential(size=n)
    xs = np.empty(20_000)
    for i in range(xs.size):
        u = _haar(n, rng)
        xs[i] = np.einsum("k,jk,j,jk->", a, u, b, u)  # tr(diag(a) U^T diag(b) U)
    mean, sd = haar_trace_moments(a, b)
    var_hat = xs.var(ddof=1)
    se_mean = math.sqrt(var_hat / xs.size)
    se_var = math.sqrt((((xs - xs.mean()) ** 4).mean() - var_hat ** 2) / xs.size)
    assert abs(xs.mean() - mean) < 5 * se_mean
    assert abs(var_hat - sd ** 2) < 5 * se_var
    assert 5 * se_var < 0.1 * sd ** 2  # a variance 10% off would fail


def test_exact_cases_and_bad_input():
    assert haar_trace_moments([2.0, 2.0, 2.0], [1.0, 5.0, 0.0]) == (12.0, 0.0)  # A = 2 I
    mean, sd = haar_trace_moments([0.0, 1.0], [0.0, 1.0])  # n = 2: X = cos^2 of a uniform angle
    assert mean == pytest.approx(0.5) and sd == pytest.approx(math.sqrt(1 / 8))
    for a, b in (([1.0], [1.0]), ([1.0, 2.0], [1.0, 2.0, 3.0]), ([[1.0, 2.0]], [[1.0, 2.0]])):
        with pytest.raises(ValueError, match="same length"):
            haar_trace_moments(a, b)
    with pytest.raises(ValueError):
        haar_trace_moments([1.0, math.nan], [1.0, 2.0])

"""Teacher-student closed forms (I2, I3, I4, J2, eg) against Monte Carlo, and their inputs.

Each closed form is the expectation of a function of the Gaussian local fields
``u ~ N(0, C)``; the test samples ``u`` with numpy and compares every entry of every array
with its sample mean within ``Z`` standard errors.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.special import erf
from scipy.stats import norm

from alignlab.theory import (
    covariance,
    generalisation_error,
    i2,
    i3,
    i4,
    j2,
)

# (K, M, seed): sizes up to 4, as the acceptance asks
CASES = [(1, 1, 11), (2, 3, 12), (3, 2, 13), (4, 2, 14), (4, 4, 15)]
N_SAMPLES = 400_000
CHUNK = 50_000
# One family of comparisons: every entry of I2, J2, I3, I4 and eg in every case (about 6400
# entries). Bonferroni at a family-wise false-alarm probability of 1e-3 gives z = 5.3 per
# entry (entries are positively correlated, so the bound is conservative); at 1 SE about
# 32% of entries would fail by chance alone.
N_COMPARISONS = sum((k + m) ** 4 + (k + m) ** 3 + 2 * (k + m) ** 2 + 1 for k, m, _ in CASES)
Z = float(norm.isf(1e-3 / (2 * N_COMPARISONS)))


def _admissible(K, M, seed):
    """Random Q, R, T, A, v with a positive definite C: a Gram matrix of K + M vectors with
    scales from 0.3 to 2.5 and strong correlations (half the vectors share a component)."""
    rng = np.random.default_rng(seed)
    n = K + M
    base = rng.standard_normal((n, n + 3))
    shared = rng.standard_normal(n + 3)
    base[::2] += 1.5 * shared
    base *= rng.uniform(0.3, 2.5, n)[:, None] / np.linalg.norm(base, axis=1, keepdims=True)
    C = base @ base.T
    Q, R, T = C[:K, :K], C[:K, K:], C[K:, K:]
    return Q, R, T, rng.standard_normal(M), rng.standard_normal(K)


def _monte_carlo(C, a, seed):
    """Sample means and standard errors of g g, g' g', g' u g, g' g' g g and (a.g)^2 / 2."""
    rng = np.random.default_rng(seed)
    n = C.shape[0]
    chol = np.linalg.cholesky(C)
    s1 = {k: 0.0 for k in ("i2", "j2", "i3", "i4", "eg")}
    s2 = dict(s1)
    for _ in range(N_SAMPLES // CHUNK):
        u = rng.standard_normal((CHUNK, n)) @ chol.T
        g = erf(u / np.sqrt(2))
        gp = np.sqrt(2 / np.pi) * np.exp(-u * u / 2)
        gpu = (gp[:, :, None] * u[:, None, :]).reshape(CHUNK, n * n)  # g'(u_a) u_b
        gpgp = (gp[:, :, None] * gp[:, None, :]).reshape(CHUNK, n * n)
        gg = (g[:, :, None] * g[:, None, :]).reshape(CHUNK, n * n)
        half_e2 = 0.5 * (g @ a) ** 2
        for key, (x, y) in {"i2": (g, g), "j2": (gp, gp), "i3": (gpu, g),
                            "i4": (gpgp, gg)}.items():
            s1[key] = s1[key] + x.T @ y
            s2[key] = s2[key] + (x * x).T @ (y * y)
        s1["eg"] += half_e2.sum()
        s2["eg"] += (half_e2 * half_e2).sum()
    shapes = {"i2": (n, n), "j2": (n, n), "i3": (n, n, n), "i4": (n, n, n, n), "eg": ()}
    out = {}
    for key, shape in shapes.items():
        mean = np.asarray(s1[key]) / N_SAMPLES
        var = np.asarray(s2[key]) / N_SAMPLES - mean * mean
        out[key] = (mean.reshape(shape), np.sqrt(var / (N_SAMPLES - 1)).reshape(shape))
    return out


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"K{c[0]}M{c[1]}")
def case(request):
    K, M, seed = request.param
    Q, R, T, A, v = _admissible(K, M, seed)
    C = covariance(Q, R, T)
    return {"C": C, "Q": Q, "R": R, "T": T, "A": A, "v": v,
            "mc": _monte_carlo(C, np.concatenate([-v, A]), seed + 1000)}


def _z_scores(exact, mc):
    mean, se = mc
    return np.abs(np.asarray(exact) - mean) / se


@pytest.mark.parametrize("name", ["i2", "j2", "i3", "i4"])
def test_averages_equal_monte_carlo(case, name):
    exact = {"i2": i2, "j2": j2, "i3": i3, "i4": i4}[name](case["C"])
    z = _z_scores(exact, case["mc"][name])
    worst = np.unravel_index(np.argmax(z), z.shape)
    assert z.max() < Z, (f"{name}{worst}: closed form {exact[worst]:.6g}, Monte Carlo "
                         f"{case['mc'][name][0][worst]:.6g} +- {case['mc'][name][1][worst]:.2g}"
                         f" (z = {z.max():.1f} > {Z:.1f})")


def test_generalisation_error_equals_monte_carlo(case):
    eg = generalisation_error(case["Q"], case["R"], case["T"], case["A"], case["v"])
    assert eg.shape == ()
    assert _z_scores(eg, case["mc"]["eg"]) < Z


def test_the_comparison_tells_conventions_apart(case):
    """The Monte Carlo comparison has the power to reject a wrong index convention:
    I3 with its last two indices swapped (E[g'(u_a) g(u_b) u_c]) and I4 with its first and
    third swapped, in every case with more than one field."""
    C = case["C"]
    if C.shape[0] == 1:
        pytest.skip("one field: every convention gives the same array")
    assert _z_scores(np.swapaxes(i3(C), -1, -2), case["mc"]["i3"]).max() > Z
    assert _z_scores(np.swapaxes(i4(C), -4, -2), case["mc"]["i4"]).max() > Z


def test_spec_formula_for_eg(case):
    """eg equals the spec's three-sum arcsin formula (1/pi [...]) written out."""
    Q, R, T, A, v = (case[k] for k in "QRTAv")
    dq, dt = np.diag(Q), np.diag(T)
    spec = (np.sum(np.outer(v, v) * np.arcsin(Q / np.sqrt(np.outer(1 + dq, 1 + dq))))
            + np.sum(np.outer(A, A) * np.arcsin(T / np.sqrt(np.outer(1 + dt, 1 + dt))))
            - 2 * np.sum(np.outer(v, A) * np.arcsin(R / np.sqrt(np.outer(1 + dq, 1 + dt))))
            ) / np.pi
    eg = generalisation_error(Q, R, T, A, v)
    assert eg == pytest.approx(spec, rel=1e-13, abs=1e-15)


def test_known_values():
    # one field of variance q: I2 = (2/pi) asin(q / (1 + q)); q = 1: (2/pi) pi/6 = 1/3
    assert i2([[1.0]])[0, 0] == pytest.approx(1 / 3, rel=1e-15)
    assert j2([[1.0]])[0, 0] == pytest.approx(2 / np.pi / np.sqrt(3), rel=1e-15)
    # student = teacher: eg = 0 exactly in the formula's arithmetic up to rounding
    T = np.array([[1.0, 0.3], [0.3, 0.8]])
    assert generalisation_error(T, T, T, [1.0, -0.5], [1.0, -0.5]) == pytest.approx(0, abs=1e-15)


def test_shapes_and_batching():
    rng = np.random.default_rng(3)
    qs, rs, ts = [], [], []
    for s in range(5):
        Q, R, T, _, _ = _admissible(3, 2, s)
        qs.append(Q), rs.append(R), ts.append(T)
    Q, R, T = np.stack(qs), np.stack(rs), np.stack(ts)
    C = covariance(Q, R, T)
    assert C.shape == (5, 5, 5)
    np.testing.assert_array_equal(C[2], covariance(qs[2], rs[2], ts[2]))
    assert i2(C).shape == (5, 5, 5) and j2(C).shape == (5, 5, 5)
    assert i3(C).shape == (5, 5, 5, 5) and i4(C).shape == (5, 5, 5, 5, 5)
    np.testing.assert_allclose(i4(C)[4], i4(C[4]), rtol=1e-15)
    A, v = rng.standard_normal((5, 2)), rng.standard_normal((5, 3))
    eg = generalisation_error(Q, R, T, A, v)
    assert eg.shape == (5,)
    assert eg[1] == pytest.approx(float(generalisation_error(qs[1], rs[1], ts[1], A[1], v[1])),
                                  rel=1e-15)
    # one teacher for the whole batch: T broadcast over the leading axis
    both = covariance(np.stack([qs[0], qs[0]]), np.stack([rs[0], rs[0]]), ts[0])
    np.testing.assert_array_equal(both, np.stack([C[0], C[0]]))


def test_symmetries_of_the_arrays():
    Q, R, T, _, _ = _admissible(2, 2, 7)
    C = covariance(Q, R, T)
    np.testing.assert_allclose(i2(C), i2(C).T, rtol=1e-15)
    np.testing.assert_allclose(j2(C), j2(C).T, rtol=1e-15)
    four = i4(C)
    np.testing.assert_allclose(four, np.swapaxes(four, 0, 1), rtol=1e-13)  # a <-> b
    np.testing.assert_allclose(four, np.swapaxes(four, 2, 3), rtol=1e-13)  # c <-> d


@pytest.mark.parametrize(("args", "message"), [
    (([[1.0, 0.5], [0.4, 1.0]], [[0.1], [0.2]], [[1.0]]), "`Q` must be symmetric"),
    (([[1.0]], [[2.0]], [[1.0]]), "must be positive semi-definite, got 'smallest eigenvalue"),
    (([[1.0]], [[0.1, 0.2]], [[1.0]]), "`R` must be of shape (..., K, M) = (..., 1, 1)"),
    (([[1.0, 0.0]], [[0.1]], [[1.0]]), "`Q` must be square"),
    (([[np.nan]], [[0.1]], [[1.0]]), "`Q` must be finite"),
])
def test_covariance_refuses_inadmissible_input(args, message):
    with pytest.raises(ValueError, match=None) as info:
        covariance(*args)
    assert message in str(info.value)
    assert str(info.value).endswith(".")


@pytest.mark.parametrize("func", [i2, i3, i4, j2])
def test_averages_refuse_a_bad_covariance(func):
    with pytest.raises(ValueError, match="`C` must be positive semi-definite"):
        func([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match=r"`C` must be a square covariance"):
        func([1.0, 2.0])


def test_generalisation_error_refuses_wrong_second_layers():
    Q, R, T, A, v = _admissible(2, 3, 1)
    with pytest.raises(ValueError, match=r"`v` must be of shape \(\.\.\., K\) = \(\.\.\., 2\)"):
        generalisation_error(Q, R, T, A, np.ones(3))
    with pytest.raises(ValueError, match=r"`A` must be of shape \(\.\.\., M\) = \(\.\.\., 3\)"):
        generalisation_error(Q, R, T, np.ones(2), v)


def test_never_imports_torch():
    code = ("import sys; from alignlab.theory import integrate, i4; "
            "integrate([[1.0]], [[0.1]], [[1.0]], [1.0], [0.5], lr=0.5, t_max=1.0); "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)

"""Teacher-student ODEs: the right-hand side against the spec's equations written out, its
split into O(lr) and O(lr^2) terms, properties along trajectories, the two integrators."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alignlab.theory import (
    TeacherStudentCurve,
    covariance,
    generalisation_error,
    i2,
    i3,
    i4,
    integrate,
    j2,
    order_parameter_derivatives,
)


def _state(K, M, seed, rank_deficit=False):
    """Q, R, T from a Gram matrix of K + M random vectors with random scales (in K + M - 1
    dimensions with ``rank_deficit``: C singular, on the boundary of the admissible set),
    random A, v and feedback."""
    rng = np.random.default_rng(seed)
    n = K + M
    vecs = rng.standard_normal((n, n - 1 if rank_deficit else n + 2))
    vecs *= rng.uniform(0.3, 1.5, n)[:, None] / np.linalg.norm(vecs, axis=1, keepdims=True)
    C = vecs @ vecs.T
    C = 0.5 * (C + C.T)
    return (C[:K, :K], C[:K, K:], C[K:, K:], rng.standard_normal(M), rng.standard_normal(K),
            rng.standard_normal(K))


def _spec_rates(Q, R, T, A, v, b, lr, lr2, sigma, wd):
    """The spec's equations written out index by index (shared/spec/teacher_student.md)."""
    K, M = R.shape
    C = covariance(Q, R, T)
    I2, I3, I4, J2 = i2(C), i3(C), i4(C), j2(C)
    dR = np.zeros((K, M))
    dQ = np.zeros((K, K))
    dv = np.zeros(K)
    for i in range(K):
        for n in range(M):
            dR[i, n] = lr * b[i] * (sum(A[m] * I3[i, K + n, K + m] for m in range(M))
                                    - sum(v[j] * I3[i, K + n, j] for j in range(K)))
            dR[i, n] -= wd * R[i, n]
        for k in range(K):
            dQ[i, k] = (
                lr * b[i] * (sum(A[m] * I3[i, k, K + m] for m in range(M))
                             - sum(v[j] * I3[i, k, j] for j in range(K)))
                + lr * b[k] * (sum(A[m] * I3[k, i, K + m] for m in range(M))
                               - sum(v[j] * I3[k, i, j] for j in range(K)))
                + lr**2 * b[i] * b[k] * (
                    sum(A[n] * A[m] * I4[i, k, K + n, K + m]
                        for n in range(M) for m in range(M))
                    - 2 * sum(v[j] * A[n] * I4[i, k, j, K + n]
                              for j in range(K) for n in range(M))
                    + sum(v[j] * v[m] * I4[i, k, j, m] for j in range(K) for m in range(K)))
                + lr**2 * sigma**2 * b[i] * b[k] * J2[i, k]
                - 2 * wd * Q[i, k])
        dv[i] = lr2 * (sum(A[n] * I2[i, K + n] for n in range(M))
                       - sum(v[k] * I2[i, k] for k in range(K))) - wd * v[i]
    return dQ, dR, dv


@settings(max_examples=30)
@given(K=st.integers(1, 4), M=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       rule=st.sampled_from(["bp", "dfa", "fa"]), lr=st.floats(0.01, 3.0),
       lr2=st.one_of(st.none(), st.floats(0.0, 3.0)), sigma=st.sampled_from([0.0, 0.7]),
       wd=st.sampled_from([0.0, 0.05]))
def test_rhs_is_the_spec_equations(K, M, seed, rule, lr, lr2, sigma, wd):
    Q, R, T, A, v, fb = _state(K, M, seed)
    got = order_parameter_derivatives(Q, R, T, A, v, lr=lr, rule=rule, feedback=fb,
                                      sigma=sigma, weight_decay=wd, lr2=lr2)
    want = _spec_rates(Q, R, T, A, v, v if rule == "bp" else fb, lr,
                       lr if lr2 is None else lr2, sigma, wd)
    for g, w, name in zip(got, want, ("dQ", "dR", "dv"), strict=True):
        assert g.shape == (1, *w.shape), name
        # sums of up to 64 terms of size O(1): a few hundred ulps of the largest term
        np.testing.assert_allclose(g[0], w, rtol=1e-12, atol=1e-13, err_msg=name)


@settings(max_examples=20)
@given(K=st.integers(1, 4), M=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       rule=st.sampled_from(["bp", "dfa"]), sigma=st.sampled_from([0.0, 0.5]))
def test_rhs_is_first_plus_second_order_in_lr(K, M, seed, rule, sigma):
    """dQ = lr X + lr^2 Y, dR = lr Z, dv = lr2 W exactly: as lr -> 0 only the O(lr) terms
    remain, and the O(lr^2) ones (only in dQ) scale as lr^2."""
    Q, R, T, A, v, fb = _state(K, M, seed)

    def rates(lr, sig=sigma):
        return order_parameter_derivatives(Q, R, T, A, v, lr=lr, lr2=1.0, rule=rule,
                                           feedback=fb, sigma=sig)

    def split(sig):
        h = 1e-2
        q1, q2 = rates(h, sig)[0], rates(2 * h, sig)[0]
        second = (q2 - 2 * q1) / (2 * h * h)  # Y
        return (q1 - h * h * second) / h, second  # X, Y

    first, second = split(sigma)
    r1, v1 = rates(1.0)[1:]
    # the split of the spec: X = the I3 terms, Y = b_i b_k (a.I4.a + sigma^2 J2) >= 0
    # (a positive semi-definite matrix: E[b_i g'_i b_k g'_k e^2])
    assert np.linalg.eigvalsh(second[0]).min() >= -1e-12 * max(1.0, np.abs(second).max())
    for lr in (1e-6, 0.37, 3.1):
        q, r, w = rates(lr)
        np.testing.assert_allclose(q, lr * first + lr * lr * second, rtol=1e-9,
                                   atol=1e-12 * lr)
        np.testing.assert_allclose(r, lr * r1, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(w, v1)  # lr2 fixed: dv independent of lr
    # the output noise enters only the O(lr^2) term
    first0, second0 = split(0.0)
    np.testing.assert_allclose(first, first0, rtol=1e-9, atol=1e-12)
    if sigma:
        assert not np.allclose(second, second0)


@settings(max_examples=8)
@given(K=st.integers(1, 4), M=st.integers(1, 3), seed=st.integers(0, 2**32 - 1),
       rule=st.sampled_from(["bp", "dfa"]), lr=st.floats(0.1, 2.0),
       sigma=st.sampled_from([0.0, 0.5]), deficit=st.booleans())
def test_symmetry_and_psd_of_C_along_a_trajectory(K, M, seed, rule, lr, sigma, deficit):
    """Q(t) stays exactly symmetric and C(t) positive semi-definite, also from a singular
    C(0) (the boundary, where the O(lr) terms are tangent and the O(lr^2) term points in)."""
    Q, R, T, A, v, fb = _state(K, M, seed, rank_deficit=deficit)
    curve = integrate(Q, R, T, A, v, lr=lr, rule=rule, feedback=fb, sigma=sigma, t_max=20.0)
    np.testing.assert_array_equal(curve.Q, np.swapaxes(curve.Q, -1, -2))
    C = covariance(curve.Q[0], curve.R[0], T)  # validates PSD to 1e-10 relative itself
    lowest = np.linalg.eigvalsh(C).min(axis=-1)
    assert np.all(lowest >= -1e-12 * np.abs(C).max()), lowest.min()


def test_dfa_equals_bp_at_the_instant_feedback_is_v():
    Q, R, T, A, v, _ = _state(3, 2, 5)
    kw = {"lr": 0.7, "sigma": 0.3, "weight_decay": 0.01}
    bp = order_parameter_derivatives(Q, R, T, A, v, rule="bp", **kw)
    for rule in ("dfa", "fa"):
        other = order_parameter_derivatives(Q, R, T, A, v, rule=rule, feedback=v.copy(), **kw)
        for x, y in zip(bp, other, strict=True):
            np.testing.assert_array_equal(x, y)
    # and differ when it is not
    assert not np.allclose(bp[0], order_parameter_derivatives(Q, R, T, A, v, rule="dfa",
                                                              feedback=-v, **kw)[0])


@pytest.mark.parametrize("rule", ["bp", "dfa"])
def test_the_teacher_is_a_fixed_point(rule):
    """Student = teacher (K = M, Q = R = T, v = A): eg = 0 and every derivative is 0."""
    T = np.array([[1.0, 0.2, -0.1], [0.2, 0.7, 0.3], [-0.1, 0.3, 1.4]])
    A = np.array([0.8, -1.1, 0.5])
    rates = order_parameter_derivatives(T, T, T, A, A, lr=1.0, rule=rule,
                                        feedback=[0.3, 1.0, -2.0])
    for x in rates:
        np.testing.assert_allclose(x, 0.0, atol=1e-15)
    assert generalisation_error(T, T, T, A, A) == pytest.approx(0.0, abs=1e-15)


def test_bp_at_small_lr_decreases_eg():
    """At small lr the dynamics is gradient flow on eg (the O(lr^2) term is negligible):
    eg never rises along the curve and falls substantially from a generic start."""
    Q, R, T, A, v, _ = _state(3, 2, 21)
    curve = integrate(Q, R, T, A, v, lr=0.01, t_max=1000.0,
                      t_eval=np.linspace(0, 1000, 201))
    eg = curve.eg[0]
    assert np.all(np.diff(eg) <= 1e-14), np.diff(eg).max()
    assert eg[-1] < 0.5 * eg[0]


def test_euler_converges_first_order_to_the_adaptive_curve():
    Q, R, T, A, v, fb = _state(2, 2, 8)
    kw = {"lr": 0.8, "rule": "dfa", "feedback": fb, "t_max": 4.0, "t_eval": [1.0, 2.0, 4.0],
          "sigma": 0.3}
    limit = integrate(Q, R, T, A, v, method="DOP853", rtol=1e-12, atol=1e-14, **kw)
    errors = []
    for dt in (0.04, 0.02, 0.01, 0.005):
        curve = integrate(Q, R, T, A, v, dt=dt, **kw)
        np.testing.assert_allclose(curve.t, limit.t, rtol=1e-15)
        errors.append(max(np.abs(curve.Q - limit.Q).max(), np.abs(curve.R - limit.R).max(),
                          np.abs(curve.v - limit.v).max()))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    # first order: the error halves with dt (2 + O(dt))
    np.testing.assert_allclose(ratios, 2.0, atol=0.1)
    # the adaptive curve at the default method and tolerances (LSODA) is the dt -> 0 limit
    # (another method, DOP853, much tighter) to 1e-8; so is Radau, an implicit method
    for method in ("LSODA", "Radau"):
        curve = integrate(Q, R, T, A, v, **kw) if method == "LSODA" else integrate(
            Q, R, T, A, v, method=method, **kw)
        np.testing.assert_allclose(curve.eg, limit.eg, rtol=1e-8, err_msg=method)


def test_curve_fields_shapes_and_alignment():
    Q, R, T, A, v, fb = _state(3, 2, 4)
    curve = integrate(Q, R, T, A, v, lr=0.5, rule="bp", feedback=fb, t_max=100.0)
    assert isinstance(curve, TeacherStudentCurve)
    n_t = curve.t.size
    assert curve.t[0] == 0.0 and curve.t[-1] == pytest.approx(100.0)
    assert np.all(np.diff(curve.t) > 0)
    assert curve.eg.shape == (1, n_t) and curve.alignment.shape == (1, n_t)
    assert curve.Q.shape == (1, n_t, 3, 3) and curve.R.shape == (1, n_t, 3, 2)
    assert curve.v.shape == (1, n_t, 3)
    np.testing.assert_allclose(curve.Q[0, 0], Q, rtol=1e-15)
    np.testing.assert_allclose(
        curve.eg[0], generalisation_error(curve.Q[0], curve.R[0], T, A, curve.v[0]),
        rtol=1e-14)
    vt = curve.v[0]
    np.testing.assert_allclose(curve.alignment[0], vt @ fb / np.linalg.norm(vt, axis=1)
                               / np.linalg.norm(fb), rtol=1e-14)
    # BP's feedback only reports the contrast: the curve is the same without it
    plain = integrate(Q, R, T, A, v, lr=0.5, rule="bp", t_max=100.0)
    np.testing.assert_array_equal(plain.eg, curve.eg)
    assert np.all(np.isnan(plain.alignment))
    assert curve.n_evaluations > 0


def test_batch_equals_one_at_a_time():
    states = [_state(2, 3, s) for s in range(3)]
    Q, R, T, A, v, fb = (np.stack(x) for x in zip(*states, strict=True))
    kw = {"lr": 0.6, "rule": "dfa", "t_max": 10.0, "sigma": 0.2, "weight_decay": 1e-3,
          "lr2": 0.3}
    for dt, rtol in ((0.05, 1e-13), (None, 1e-7)):
        batch = integrate(Q, R, T, A, v, feedback=fb, dt=dt, **kw)
        assert batch.eg.shape[0] == 3
        for s in range(3):
            one = integrate(Q[s], R[s], T[s], A[s], v[s], feedback=fb[s], dt=dt, **kw)
            np.testing.assert_allclose(batch.eg[s], one.eg[0], rtol=rtol)
            np.testing.assert_allclose(batch.Q[s], one.Q[0], rtol=rtol, atol=1e-12)
    # unbatched inputs are shared by the batch: three second layers on one first layer
    shared = integrate(Q[0], R[0], T[0], A[0], v, feedback=fb[0], dt=0.05, **kw)
    assert shared.v.shape[0] == 3
    one = integrate(Q[0], R[0], T[0], A[0], v[1], feedback=fb[0], dt=0.05, **kw)
    np.testing.assert_allclose(shared.eg[1], one.eg[0], rtol=1e-13)


def test_second_layer_rate_and_weight_decay():
    Q, R, T, A, v, fb = _state(2, 2, 9)
    frozen = integrate(Q, R, T, A, v, lr=0.5, lr2=0.0, t_max=5.0)
    np.testing.assert_array_equal(frozen.v[0], np.broadcast_to(v, frozen.v[0].shape))
    # weight decay adds -2 wd Q, -wd R, -wd v to the rates
    base = order_parameter_derivatives(Q, R, T, A, v, lr=0.5)
    decayed = order_parameter_derivatives(Q, R, T, A, v, lr=0.5, weight_decay=0.1)
    for x, y, decay in zip(decayed, base, (-0.2 * Q, -0.1 * R, -0.1 * v), strict=True):
        np.testing.assert_allclose(x[0], y[0] + decay, rtol=1e-14, atol=1e-16)


def test_euler_reports_the_step_grid():
    Q, R, T, A, v, _ = _state(1, 1, 2)
    curve = integrate(Q, R, T, A, v, lr=0.5, t_max=1.0, dt=0.01, t_eval=[0, 0.013, 0.014,
                                                                        0.5, 1.0])
    np.testing.assert_allclose(curve.t, [0, 0.01, 0.5, 1.0])
    assert curve.n_evaluations == 100
    np.testing.assert_array_equal(curve.Q[0, 0], Q)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rule": "pfa"}, "`rule` must be one of 'bp', 'dfa', 'fa'; got 'pfa'."),
    ({"rule": "dfa"}, "`feedback` must be a (K,) or (S, K) vector for rule='dfa', got None."),
    ({"lr": 0.0}, "`lr` must be > 0, got 0.0."),
    ({"lr2": -1.0}, "`lr2` must be >= 0, got -1.0."),
    ({"t_max": -1.0}, "`t_max` must be > 0, got -1.0."),
    ({"dt": 20.0}, "`dt` must be <= t_max = 10 (at least one step), got 20.0."),
    ({"t_eval": [0.0, 11.0]}, "`t_eval` must be increasing and within [0, t_max = 10]"),
    ({"t_eval": [1.0, 0.5]}, "`t_eval` must be increasing and within [0, t_max = 10]"),
    ({"feedback": [1.0, 2.0, 3.0]}, "`feedback` must be of shape (..., K) = (..., 2)"),
    ({"v": np.ones((3, 2)), "feedback": np.ones((4, 2))},
     "`Q, R, T, A, v, feedback` must be batched with one batch size S (or 1), "
     "got 'batch sizes [3, 4]'."),
    ({"v": np.ones((2, 3, 2))}, "`v` must be unbatched or with one leading batch axis"),
    ({"sigma": -0.1}, "`sigma` must be >= 0, got -0.1."),
    ({"method": "euler"}, "`method` must be one of 'LSODA', 'DOP853', 'RK45', 'Radau', 'BDF'"),
])
def test_integrate_refuses_bad_input(kwargs, message):
    Q, R, T, A, v, _ = _state(2, 1, 0)
    args = {"Q": Q, "R": R, "T": T, "A": A, "v": v, "lr": 0.5, "t_max": 10.0}
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        integrate(**args)
    assert message in str(info.value)

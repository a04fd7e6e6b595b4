"""Simulation (b): the teacher-student network of alignlab's layers equals the spec's
SGD step written by hand in float64 numpy (``docs/teacher_student.md``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import erf

from alignlab.data import InputStream, Teacher
from alignlab.train.teacher_student import train_teacher_student


def literal(B, A, w, v, b, *, rule, lr, lr2, wd, x, xi, sigma, record_steps):
    """The spec's online SGD, one step at a time, from the pre-step state::

        w_k <- (1 - wd/N) w_k + (lr / sqrt(N)) b_k g'(lambda_k) e x
        v_k <- (1 - wd/N) v_k + (lr2 / N) g(lambda_k) e,   b = v (bp) or the fixed vector
    """
    N = x.shape[1]
    w, v = w.copy(), v.copy()
    out = {"Q": [], "R": [], "v": []}

    def record():
        out["Q"].append(w @ w.T / N)
        out["R"].append(w @ B.T / N)
        out["v"].append(v.copy())

    for step in range(record_steps[-1] + 1):
        for _ in range(list(record_steps).count(step)):
            record()
        if step == record_steps[-1]:
            break
        xt = x[step]
        lam, nu = w @ xt / math.sqrt(N), B @ xt / math.sqrt(N)
        y = A @ erf(nu / math.sqrt(2)) + sigma * xi[step]
        g = erf(lam / math.sqrt(2))
        e = y - v @ g
        fb = v if rule == "bp" else b
        gprime = math.sqrt(2 / math.pi) * np.exp(-lam**2 / 2)
        w, v = ((1 - wd / N) * w + (lr / math.sqrt(N)) * np.outer(fb * gprime * e, xt),
                (1 - wd / N) * v + (lr2 / N) * g * e)
    return {k: np.array(a) for k, a in out.items()}


def spec_init(K, M, N, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((M, N)), rng.standard_normal(M), rng.standard_normal((K, N)),
            rng.standard_normal(K), rng.standard_normal(K))


def assert_close(actual, desired):
    """Relative 1e-10 of the array's scale (entries of R are O(1/sqrt(N)) and some are
    near 0, so each array is compared at its own largest magnitude)."""
    np.testing.assert_allclose(actual, desired, rtol=1e-10,
                               atol=1e-10 * np.abs(desired).max())


CASES = [  # rule, lr, lr2, weight decay, sigma
    ("bp", 0.8, None, 0.0, 0.0),
    ("dfa", 0.8, None, 0.0, 0.0),
    ("fa", 0.8, None, 0.0, 0.0),
    ("bp", 0.8, 0.3, 0.5, 0.0),
    ("dfa", 0.8, 0.3, 0.5, 0.0),
    ("fa", 1.0, None, 2.0, 0.2),
]


@pytest.mark.parametrize("rule,lr,lr2,wd,sigma", CASES)
def test_harness_step_is_the_spec_step(rule, lr, lr2, wd, sigma):
    K, M, N, steps = 3, 2, 40, 400
    B, A, w, v, b = spec_init(K, M, N, seed=1)
    record = [0, 1, 7, 100, 399, steps]
    stream = InputStream(N, rng=5)
    x, xi = stream.take(steps), stream.take_noise(steps)
    run = train_teacher_student((B, A), w, v, b, rule=rule, lr=lr, lr2=lr2, weight_decay=wd,
                                record_steps=record, inputs=InputStream(N, rng=5),
                                sigma=sigma)
    ref = literal(B, A, w, v, b, rule=rule, lr=lr, lr2=lr if lr2 is None else lr2, wd=wd,
                  x=x, xi=xi, sigma=sigma, record_steps=record)
    assert run.Q.shape == (len(record), K, K) and run.R.shape == (len(record), K, M)
    assert run.v.shape == (len(record), K)
    np.testing.assert_array_equal(run.steps, record)
    np.testing.assert_array_equal(run.t, np.array(record) / N)
    for name in ("Q", "R", "v"):
        assert_close(getattr(run, name), ref[name])
    # the run moved: a test that the weights were trained at all
    assert np.abs(run.v[-1] - v).max() > 1e-2


def test_external_blocks_and_noise_of_any_size():
    """Inputs given as blocks of uneven sizes (the batched simulator's seed s), noise
    given separately: the same run as the stream itself."""
    K, M, N, steps = 2, 2, 30, 250
    B, A, w, v, b = spec_init(K, M, N, seed=2)
    stream = InputStream(N, rng=9, index=3)
    x, xi = stream.take(steps), stream.take_noise(steps)
    cuts = [0, 1, 70, 71, 200, steps]
    blocks = [x[a:c] for a, c in zip(cuts[:-1], cuts[1:], strict=True)]
    noise = [xi[:10], xi[10:]]
    kw = dict(rule="dfa", lr=0.7, record_steps=[0, 50, steps], sigma=0.3)
    given = train_teacher_student(Teacher(B, A), w, v, b, inputs=blocks, noise=noise, **kw)
    own = train_teacher_student(Teacher(B, A), w, v, b, inputs=InputStream(N, rng=9, index=3),
                                **kw)
    for name in ("Q", "R", "v"):
        np.testing.assert_array_equal(getattr(given, name), getattr(own, name))


def test_bp_ignores_the_feedback_and_dfa_uses_it():
    K, M, N = 2, 1, 20
    B, A, w, v, b = spec_init(K, M, N, seed=3)
    kw = dict(lr=0.5, record_steps=[100], rng=0)
    bp1 = train_teacher_student((B, A), w, v, b, rule="bp", **kw)
    bp2 = train_teacher_student((B, A), w, v, -b, rule="bp", **kw)
    dfa = train_teacher_student((B, A), w, v, b, rule="dfa", **kw)
    np.testing.assert_array_equal(bp1.Q, bp2.Q)
    assert np.abs(dfa.Q - bp1.Q).max() > 1e-6


@pytest.mark.parametrize("kwargs,message", [
    ({"rule": "kp"}, "`rule` must be one of 'bp', 'dfa', 'fa'; got 'kp'."),
    ({"lr": -1.0}, "`lr` must be > 0, got -1.0."),
    ({"weight_decay": -0.1}, "`weight_decay` must be >= 0, got -0.1."),
    ({"record_steps": [5, 2]}, "`record_steps` must be a non-empty, non-decreasing list"),
    ({"w": np.zeros((2, 7))}, "`w` must be an array of shape (n, 6), got (2, 7)."),
    ({"v": np.zeros(3)}, "`v` must be an array of shape (2,), got (3,)."),
    ({"inputs": [np.zeros((3, 6))]}, "`inputs` must be blocks covering every step (step 5 "
                                     "was asked for), got '3 rows'."),
    ({"inputs": [np.zeros((3, 5))]}, "`inputs` must be blocks of shape (n, 6), got (3, 5)."),
    ({"inputs": InputStream(5)}, "`inputs` must be an InputStream of N = 6 inputs, got 5."),
    ({"inputs": [np.zeros((9, 6))], "sigma": 0.1}, "`noise` must be blocks of xi when"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    B, A, w, v, b = spec_init(2, 1, 6, seed=0)
    args = dict(teacher=(B, A), w=w, v=v, feedback=b, lr=0.1, record_steps=[0, 5])
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        train_teacher_student(**args)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_float32_network_runs():
    B, A, w, v, b = spec_init(2, 1, 8, seed=0)
    run = train_teacher_student((B, A), w, v, b, lr=0.1, record_steps=[0, 20], rng=0,
                                dtype=torch.float32)
    assert np.isfinite(run.Q).all()


@pytest.mark.parametrize("rule,wd,sigma,lr2", [("dfa", 0.0, 0.0, None), ("bp", 0.3, 0.1, 0.4),
                                               ("fa", 0.0, 0.2, None)])
def test_harness_equals_the_batched_simulator_on_the_same_draws(rule, wd, sigma, lr2):
    """Simulations (a) and (b) of issue 16: the batched simulator (method 'explicit') and
    alignlab's own layers, given one ``rng``, draw the same teacher, inputs and noise for
    each seed and agree to 1e-10 relative in float64."""
    from alignlab.sim import draw_teacher_student, simulate_teacher_student

    K, M, N, S, rng = 3, 2, 60, 3, np.random.SeedSequence(11)
    init = draw_teacher_student(K, M, N, n_seeds=S, rng=rng)
    steps = np.array([0, 1, 7, 60, 300, 900])
    path = simulate_teacher_student(init, lr=0.7, lr2=lr2, rule=rule, t_max=steps[-1] / N,
                                    t_eval=steps / N, sigma=sigma, weight_decay=wd, rng=rng,
                                    method="explicit")
    for s in range(S):
        teacher = Teacher.draw(M, N, rng=rng, index=s)
        np.testing.assert_array_equal(teacher.B, init.B[s].numpy())  # the same draws
        run = train_teacher_student(teacher, init.w[s].numpy(), init.v[s].numpy(),
                                    init.feedback[s].numpy(), rule=rule, lr=0.7, lr2=lr2,
                                    weight_decay=wd, sigma=sigma, record_steps=steps,
                                    inputs=InputStream(N, rng=rng, index=s))
        for name in "QRv":
            ref = getattr(path, name)[s].numpy()
            got = getattr(run, name)
            assert np.abs(got - ref).max() <= 1e-10 * np.abs(ref).max(), (name, s)
        assert np.abs(run.v[-1] - init.v[s].numpy()).max() > 0.01  # it learned something

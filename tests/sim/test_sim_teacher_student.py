"""The teacher-student SGD simulator: batched == literal loop on the same draws, the
streams, the recorded times, what each setting changes, the laws drawn, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import alignlab.sim as sim
from alignlab.sim import teacher_student as ts
from alignlab.sim.teacher_student import (
    TeacherStudentInit,
    draw_teacher_student,
    simulate_one_seed_literal,
    simulate_teacher_student,
)

Z = 5.0  # a handful of z-tests per test: 5 standard errors, no chance failures
FIELDS = ("Q", "R", "v", "alignment")


def _assert_rel(a: torch.Tensor, b: torch.Tensor, rtol: float) -> None:
    """max |a - b| <= rtol * max |b|: relative to the array's scale (entries such as R
    cross zero, where an entrywise relative error means nothing)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * np.abs(b).max())


def _assert_same_path(p, lit, s: int, rtol: float = 1e-12) -> None:
    np.testing.assert_array_equal(p.t, lit.t)
    for name in FIELDS:
        _assert_rel(getattr(p, name)[s], getattr(lit, name)[0], rtol)


# ------------------------------------------------------------ batched == literal
@pytest.mark.parametrize(("K", "M", "rule", "wd", "sigma", "lr2"), [
    (2, 2, "bp", 0.0, 0.0, None),
    (2, 2, "dfa", 0.0, 0.0, None),
    (3, 1, "bp", 0.3, 0.5, 0.4),
    (1, 3, "dfa", 0.5, 0.2, None),
    (4, 2, "fa", 0.0, 0.1, 1.5),
])
def test_batched_equals_literal_on_given_inputs(K, M, rule, wd, sigma, lr2) -> None:
    """The same x (and xi) fed to both, in blocks of uneven sizes: equal to 1e-12."""
    S, N, t_max = 3, 40, 8.0
    init = draw_teacher_student(K, M, N, n_seeds=S, rng=K * 10 + M)
    gen = np.random.default_rng(7)
    X = gen.standard_normal((S, int(t_max * N), N))  # (S, steps, N)
    XI = gen.standard_normal((S, int(t_max * N)))
    kw = dict(lr=0.8, rule=rule, t_max=t_max, sigma=sigma, weight_decay=wd, lr2=lr2,
              rng=123)  # rng unused: everything is given
    cuts = [0, 37, 38, 200, X.shape[1]]
    p = simulate_teacher_student(
        init, inputs=(X[:, a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)),
        noise=[XI[:, :100], XI[:, 100:]], **kw)
    for s in range(S):
        lit = simulate_one_seed_literal(init, seed=s, inputs=[X[s]], noise=[XI[s]], **kw)
        _assert_same_path(p, lit, s)


@pytest.mark.parametrize("rule", ["bp", "dfa"])
def test_batched_equals_literal_on_drawn_inputs(rule) -> None:
    """Drawn from the same rng, the literal loop (row by row) meets the batched
    simulator's numbers (drawn in blocks): the streams are what the docstring says."""
    init = draw_teacher_student(2, 2, 30, n_seeds=2, rng=3)
    kw = dict(lr=1.0, rule=rule, t_max=10.0, sigma=0.3, weight_decay=0.1, rng=99)
    p = simulate_teacher_student(init, **kw)
    for s in range(2):
        _assert_same_path(p, simulate_one_seed_literal(init, seed=s, **kw), s)


def test_seed_does_not_depend_on_n_seeds_or_block_size(monkeypatch) -> None:
    small = draw_teacher_student(2, 3, 25, n_seeds=2, rng=11)
    big = draw_teacher_student(2, 3, 25, n_seeds=5, rng=11)
    for name in ("w", "v", "B", "A", "feedback"):
        torch.testing.assert_close(getattr(big, name)[:2], getattr(small, name), rtol=0, atol=0)
    kw = dict(lr=0.5, rule="dfa", t_max=6.0, sigma=0.2, rng=4)
    a = simulate_teacher_student(small, **kw)
    monkeypatch.setattr(ts, "MAX_BLOCK_STEPS", 7)
    b = simulate_teacher_student(big, **kw)
    for name in FIELDS:  # the same draws; the batch's reductions may round differently
        _assert_rel(getattr(b, name)[:2], getattr(a, name), 1e-12)


def test_threads_do_not_change_the_numbers() -> None:
    """One torch thread: blocks drawn in order; more: drawn ahead, seeds in threads."""
    init = draw_teacher_student(2, 2, 30, n_seeds=3, rng=2)
    kw = dict(lr=0.5, t_max=4.0, sigma=0.1, rng=6)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = simulate_teacher_student(init, **kw)
        torch.set_num_threads(3)
        three = simulate_teacher_student(init, **kw)
        assert torch.get_num_threads() == 3  # restored after the run
    finally:
        torch.set_num_threads(threads)
    for name in FIELDS:
        _assert_rel(getattr(three, name), getattr(one, name), 1e-12)


def test_same_seed_same_path_other_seed_other_path() -> None:
    init = draw_teacher_student(2, 2, 20, n_seeds=2, rng=0)
    kw = dict(lr=0.5, t_max=3.0)
    a, b = (simulate_teacher_student(init, rng=1, **kw) for _ in range(2))
    c = simulate_teacher_student(init, rng=2, **kw)
    torch.testing.assert_close(a.Q, b.Q, rtol=0, atol=0)
    assert not torch.allclose(a.Q[:, -1], c.Q[:, -1])


# --------------------------------------------------------- recorded times, shapes
def test_shapes_and_the_state_at_t0_is_the_init() -> None:
    S, K, M, N = 3, 4, 2, 30
    init = draw_teacher_student(K, M, N, n_seeds=S, rng=5)
    p = simulate_teacher_student(init, lr=0.3, t_max=2.0, rng=0)
    n_t = len(p.t)
    assert p.t[0] == 0 and p.t[-1] == 2.0 and np.all(np.diff(p.t) > 0)
    np.testing.assert_allclose(p.t * N, np.round(p.t * N))  # whole steps
    assert p.Q.shape == (S, n_t, K, K) and p.R.shape == (S, n_t, K, M)
    assert p.v.shape == (S, n_t, K) and p.alignment.shape == (S, n_t)
    assert p.T.shape == (S, M, M) and p.A.shape == (S, M) and p.feedback.shape == (S, K)
    Q0, R0, T0 = init.order_parameters()
    torch.testing.assert_close(p.Q[:, 0], Q0, rtol=0, atol=0)
    torch.testing.assert_close(p.R[:, 0], R0, rtol=0, atol=0)
    torch.testing.assert_close(p.v[:, 0], init.v, rtol=0, atol=0)
    torch.testing.assert_close(p.T, T0, rtol=0, atol=0)
    torch.testing.assert_close(p.A, init.A, rtol=0, atol=0)
    cos0 = (init.v * init.feedback).sum(-1) / (init.v.norm(dim=-1) * init.feedback.norm(dim=-1))
    torch.testing.assert_close(p.alignment[:, 0], cos0)
    assert repr(init) == ("TeacherStudentInit(n_seeds=3, K=4, M=2, N=30, dtype=torch.float64, "
                          "device=cpu)")
    assert repr(p) == f"TeacherStudentPath(n_seeds=3, K=4, M=2, n_t={n_t}, t=[0 .. 2])"


def test_t_eval_is_rounded_to_steps_and_the_run_stops_at_its_last_time() -> None:
    init = draw_teacher_student(2, 2, 10, n_seeds=1, rng=5)
    kw = dict(lr=0.3, rng=0)
    p = simulate_teacher_student(init, t_max=5.0, t_eval=[0.0, 0.04, 0.26, 0.26, 1.0], **kw)
    np.testing.assert_array_equal(p.t, [0.0, 0.0, 0.3, 0.3, 1.0])
    torch.testing.assert_close(p.Q[:, 0], p.Q[:, 1], rtol=0, atol=0)
    longer = simulate_teacher_student(init, t_max=1.0, t_eval=[0.3, 1.0], **kw)
    torch.testing.assert_close(longer.Q, p.Q[:, 3:], rtol=0, atol=0)
    t = ts.default_t_eval(50.0, 500)
    assert t[0] == 0 and t[1] == 1 / 500 and t[-1] == 50.0 and np.all(np.diff(t) > 0)


# ------------------------------------------------------ what each setting changes
def test_rule_changes_what_runs_and_fa_is_dfa() -> None:
    init = draw_teacher_student(3, 2, 30, n_seeds=2, rng=8)
    kw = dict(lr=1.0, t_max=5.0, rng=1)
    bp, dfa, fa = (simulate_teacher_student(init, rule=r, **kw) for r in ("bp", "dfa", "fa"))
    assert (bp.Q[:, -1] - dfa.Q[:, -1]).abs().max() > 1e-2
    torch.testing.assert_close(dfa.Q, fa.Q, rtol=0, atol=0)


def test_sigma_lr2_and_weight_decay_change_what_runs() -> None:
    init = draw_teacher_student(2, 2, 20, n_seeds=2, rng=8)
    kw = dict(lr=1.0, t_max=3.0, rng=1)
    base = simulate_teacher_student(init, **kw)
    for change in (dict(sigma=0.5), dict(lr2=0.3), dict(weight_decay=0.5)):
        other = simulate_teacher_student(init, **kw, **change)
        assert (other.Q[:, -1] - base.Q[:, -1]).abs().max() > 1e-3, change
    frozen = simulate_teacher_student(init, lr2=0.0, **kw)
    torch.testing.assert_close(frozen.v[:, -1], init.v, rtol=0, atol=0)


def test_weight_decay_per_unit_time_is_the_odes() -> None:
    """With the gradient steps negligible (lr 1e-9, lr2 0), t units of decay scale
    ``v`` by ``(1 - wd/N)^(N t) -> exp(-wd t)`` and ``Q`` by its square: the ODE's
    ``dv -= wd v``, ``dQ -= 2 wd Q``, ``dR -= wd R``."""
    N, wd, t = 200, 0.7, 2.0
    init = draw_teacher_student(2, 2, N, n_seeds=2, rng=3)
    p = simulate_teacher_student(init, lr=1e-9, lr2=0.0, weight_decay=wd, t_max=t,
                                 t_eval=[0.0, t], rng=0)
    a = (1 - wd / N) ** (N * t)
    assert abs(a / math.exp(-wd * t) - 1) < wd**2 * t / N  # the step's O(1/N) difference
    torch.testing.assert_close(p.v[:, 1], a * init.v, rtol=1e-12, atol=0)
    torch.testing.assert_close(p.Q[:, 1], a**2 * p.Q[:, 0], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(p.R[:, 1], a * p.R[:, 0], rtol=1e-6, atol=1e-8)


def _eg_monte_carlo(Q, R, T, v, A, n: int, gen: np.random.Generator) -> np.ndarray:
    """``1/2 E[(y - phi)^2]`` per seed, the local fields sampled from ``C = [[Q, R],
    [R^T, T]]`` (an empirical squared error; independent of the ODE's closed form)."""
    out = []
    for q, r, tt, vv, aa in zip(Q, R, T, v, A, strict=True):
        C = np.block([[q, r], [r.T, tt]])
        u = gen.multivariate_normal(np.zeros(len(C)), C, size=n)
        g = np.vectorize(math.erf)(u / math.sqrt(2))
        K = len(q)
        out.append(0.5 * np.mean((g[:, K:] @ aa - g[:, :K] @ vv) ** 2))
    return np.array(out)


@pytest.mark.parametrize("rule", ["bp", "dfa"])
def test_learning_reduces_the_squared_error(rule) -> None:
    init = draw_teacher_student(2, 2, 50, n_seeds=3, rng=21)
    p = simulate_teacher_student(init, lr=0.5, rule=rule, t_max=60.0, t_eval=[0.0, 60.0],
                                 rng=2)
    gen = np.random.default_rng(0)
    eg = [_eg_monte_carlo(p.Q[:, i].numpy(), p.R[:, i].numpy(), p.T.numpy(),
                          p.v[:, i].numpy(), p.A.numpy(), 20000, gen) for i in (0, 1)]
    assert np.all(eg[1] < 0.2 * eg[0]), eg


def test_float32_follows_float64() -> None:
    i64 = draw_teacher_student(2, 2, 30, n_seeds=2, rng=4)
    i32 = TeacherStudentInit(w=i64.w.float(), v=i64.v.float(), B=i64.B.float(),
                             A=i64.A.float(), feedback=i64.feedback.float())
    X = np.random.default_rng(0).standard_normal((2, 60, 30))
    a = simulate_teacher_student(i64, lr=0.5, t_max=2.0, inputs=[X])
    b = simulate_teacher_student(i32, lr=0.5, t_max=2.0, inputs=[X])
    assert b.Q.dtype == torch.float32
    torch.testing.assert_close(b.Q.double(), a.Q, rtol=1e-4, atol=1e-5)


def test_progress_reports_on_stderr(capsys) -> None:
    init = draw_teacher_student(1, 1, 10, n_seeds=1, rng=0)
    simulate_teacher_student(init, lr=0.5, t_max=2.0, rng=0, progress=True)
    assert "teacher-student" in capsys.readouterr().err
    simulate_teacher_student(init, lr=0.5, t_max=2.0, rng=0)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------- the laws drawn
def test_initial_order_parameters_have_the_specs_law() -> None:
    """w, B iid N(0, 1): Q_kk, T_mm have mean 1 and variance 2/N; Q_kl, R_km, T_mn
    (k != l) mean 0 and variance 1/N; v, A, feedback mean 0, variance 1."""
    S, K, M, N = 400, 2, 2, 50
    init = draw_teacher_student(K, M, N, n_seeds=S, rng=6)
    Q, R, T = (x.numpy() for x in init.order_parameters())
    checks = [(Q[:, [0, 1], [0, 1]], 1.0, 2 / N), (T[:, [0, 1], [0, 1]], 1.0, 2 / N),
              (Q[:, 0, 1], 0.0, 1 / N), (T[:, 0, 1], 0.0, 1 / N), (R, 0.0, 1 / N)]
    checks += [(getattr(init, n).numpy(), 0.0, 1.0) for n in ("v", "A", "feedback")]
    for x, mean, var in checks:
        x = x.ravel()
        assert abs(x.mean() - mean) < Z * math.sqrt(var / x.size)
        # variance of a sample variance of near-Gaussian values: 2 var^2 / n
        assert abs(x.var() - var) < Z * var * math.sqrt(2 / x.size)


def test_drawn_inputs_and_noise_are_iid_standard_normal() -> None:
    S, N, n = 4, 64, 300
    streams = ts.make_streams(9)
    blocks = list(ts._drawn_blocks(streams, S, N, n, 1.0, torch.device("cpu"),
                                   torch.float64, threads=2))
    X = torch.cat([b[0] for b in blocks], dim=1).numpy()  # (S, n, N)
    XI = torch.cat([b[1] for b in blocks], dim=1).numpy()  # (S, n)
    assert X.shape == (S, n, N) and XI.shape == (S, n)
    for x in (X.ravel(), XI.ravel()):
        assert abs(x.mean()) < Z / math.sqrt(x.size)
        assert abs(x.var() - 1) < Z * math.sqrt(2 / x.size)
        assert abs(np.mean(x**4) - 3) < Z * math.sqrt(96 / x.size)  # Var x^4 = 105 - 9
    # independent across seeds, steps and coordinates: sample correlations ~ N(0, 1/n)
    flat = X.reshape(S, -1)
    for a, b in ((flat[0], flat[1]), (X[:, :-1].ravel(), X[:, 1:].ravel()),
                 (X[..., :-1].ravel(), X[..., 1:].ravel()), (XI[0], XI[1])):
        assert abs(np.corrcoef(a, b)[0, 1]) < Z / math.sqrt(a.size)


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(lr=0.0), "`lr` must be > 0"),
    (dict(lr=float("nan")), "`lr` must be finite"),
    (dict(rule="sgd"), "`rule` must be one of 'bp', 'dfa', 'fa'"),
    (dict(t_max=-1.0), "`t_max` must be > 0"),
    (dict(t_max=0.01), "`t_max` must be >= 1/N"),
    (dict(sigma=-0.1), "`sigma` must be >= 0"),
    (dict(weight_decay=-1.0), "`weight_decay` must be >= 0"),
    (dict(weight_decay=20.0), "`weight_decay` must be < N = 20"),
    (dict(lr2=-1.0), "`lr2` must be >= 0"),
    (dict(t_eval=[0.0, 3.0]), r"`t_eval` must be non-decreasing times in \[0, t_max = 2\]"),
    (dict(t_eval=[1.0, 0.5]), "`t_eval` must be non-decreasing"),
    (dict(t_eval=[]), "`t_eval` must be a non-empty 1-D array"),
    (dict(rng=-3), "`rng` must be None, an int >= 0"),
    (dict(inputs=[np.zeros((2, 10, 20))]), r"`inputs` must be blocks covering the 40 steps"),
    (dict(inputs=[np.zeros((3, 40, 20))]), r"`inputs` must be blocks of shape \(S, n, N\)"),
    (dict(inputs=[np.zeros((2, 40, 20))], noise=[np.zeros((2, 5))], sigma=1.0),
     "`noise` must be blocks covering the 40 steps"),
])
def test_bad_arguments_are_one_line_value_errors(kwargs, match) -> None:
    init = draw_teacher_student(2, 2, 20, n_seeds=2, rng=0)
    kw = dict(lr=0.5, t_max=2.0) | kwargs
    with pytest.raises(ValueError, match=match) as err:
        simulate_teacher_student(init, **kw)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((0, 2, 10), dict(n_seeds=1), "`K` must be an integer >= 1"),
    ((2, 2, 10), dict(n_seeds=0), "`n_seeds` must be an integer >= 1"),
    ((2, 2, 10), dict(n_seeds=1, dtype=torch.int32), "`dtype` must be torch.float32"),
])
def test_bad_draw_arguments(args, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        draw_teacher_student(*args, **kwargs)


def test_weights_beyond_the_memory_budget_are_refused(monkeypatch) -> None:
    monkeypatch.setenv("ALIGNLAB_MEMORY_BUDGET", "100000")
    draw_teacher_student(2, 2, 1000, n_seeds=2, rng=0)  # 2 * 6 * 1000 * 8 = 96 kB
    with pytest.raises(ValueError, match="`N` must be small enough for the weights of 2 "
                                         "seeds"):
        draw_teacher_student(2, 2, 1100, n_seeds=2, rng=0)


def test_init_from_given_weights_is_checked() -> None:
    good = draw_teacher_student(2, 3, 10, n_seeds=2, rng=0)
    parts = dict(w=good.w, v=good.v, B=good.B, A=good.A, feedback=good.feedback)
    from_numpy = TeacherStudentInit(**{k: t.numpy() for k, t in parts.items()})
    torch.testing.assert_close(from_numpy.B, good.B)
    for name, bad in [("v", good.v[:, :1]), ("B", good.B[:, :, :5]), ("A", good.A[:, :2]),
                      ("feedback", good.feedback[:1]), ("w", good.w[0])]:
        with pytest.raises(ValueError, match=f"`{name}` must be"):
            TeacherStudentInit(**(parts | {name: bad}))
    with pytest.raises(ValueError, match="`init` must be a TeacherStudentInit"):
        simulate_teacher_student(parts, lr=0.1, t_max=1.0)
    with pytest.raises(ValueError, match="`seed` must be < n_seeds = 2"):
        simulate_one_seed_literal(good, seed=2, lr=0.1, t_max=1.0)


def test_exported_from_alignlab_sim() -> None:
    for name in ("TeacherStudentInit", "TeacherStudentPath", "draw_teacher_student",
                 "simulate_teacher_student", "simulate_one_seed_literal"):
        assert getattr(sim, name) is getattr(ts, name) and name in sim.__all__


# ---------------------------------------------------------------- method 'gram'
def _x_with_fields(init: TeacherStudentInit, z: np.ndarray, chi: np.ndarray,
                   gen: np.random.Generator) -> np.ndarray:
    """Inputs ``x (S, 1, N)`` whose coordinates in the orthonormalised span of the rows
    of ``w`` and ``B`` are ``z (S, d)`` and whose remaining squared norm is ``chi (S,)``:
    the explicit step on them is the 'gram' step on ``(z, |z|^2 + chi)``."""
    S, _, N = init.w.shape
    X = np.empty((S, 1, N))
    for s in range(S):
        U = np.concatenate([init.w[s].numpy(), init.B[s].numpy()]) / math.sqrt(N)  # (d, N)
        E = np.linalg.solve(np.linalg.cholesky(U @ U.T), U)  # orthonormal rows, U = L E
        perp = gen.standard_normal(N)
        perp -= E.T @ (E @ perp)
        X[s, 0] = E.T @ z[s] + perp * math.sqrt(chi[s] / (perp @ perp))
    return X


@pytest.mark.parametrize(("rule", "wd", "sigma"), [("bp", 0.0, 0.0), ("dfa", 0.4, 0.3),
                                                   ("bp", 0.7, 0.5)])
def test_gram_step_is_the_explicit_step_on_matching_inputs(rule, wd, sigma) -> None:
    """One step from the same state with the same fields and |x|^2: the same Q, R, v."""
    S, K, M, N = 4, 3, 2, 12
    init = draw_teacher_student(K, M, N, n_seeds=S, rng=17)
    gen = np.random.default_rng(1)
    z, chi, xi = gen.standard_normal((S, K + M)), gen.chisquare(N - K - M, S), \
        gen.standard_normal((S, 1))
    X = _x_with_fields(init, z, chi, gen)
    explicit = simulate_teacher_student(init, inputs=[X], noise=[xi], t_max=1 / N,
                                        t_eval=[0, 1 / N], weight_decay=wd, sigma=sigma,
                                        rule=rule, lr=1.3, lr2=0.7)
    kw = dict(rule=rule, lr=1.3, lr2=0.7, decay=1 - wd / N, sigma=sigma)
    rec = ts._Recorder(np.array([0, 1]), S, K, M, torch.float64)
    xx = (z * z).sum(-1) + chi  # |x|^2
    block = (torch.from_numpy(z[:, None]), torch.from_numpy(xx[:, None]), torch.from_numpy(xi))
    ts._run_gram(init, [block], rec=rec, bar=ts._Bar(False, 1), **kw)
    gram = rec.path(init, N)
    for name in FIELDS:
        _assert_rel(getattr(gram, name), getattr(explicit, name), 1e-12)


def _same_law(a: np.ndarray, b: np.ndarray) -> None:
    """Means and variances of two independent samples (n,) agree within Z SE."""
    n = len(a)
    assert abs(a.mean() - b.mean()) < Z * math.sqrt((a.var() + b.var()) / n)
    da, db = (a - a.mean()) ** 2, (b - b.mean()) ** 2
    assert abs(da.mean() - db.mean()) < Z * math.sqrt((da.var() + db.var()) / n)


@pytest.mark.parametrize("rule", ["bp", "dfa"])
def test_gram_has_the_law_of_the_explicit_simulation(rule) -> None:
    """Many runs from one initial state: the order parameters at t = 1 and t = 3 have the
    same means and variances by both methods (their whole law is the same)."""
    S, K, M, N = 3000, 2, 2, 16
    one = draw_teacher_student(K, M, N, n_seeds=1, rng=5)
    init = TeacherStudentInit(**{k: getattr(one, k).expand(S, *getattr(one, k).shape[1:])
                                 for k in ("w", "v", "B", "A", "feedback")})
    kw = dict(lr=1.5, rule=rule, t_max=3.0, t_eval=[1.0, 3.0], sigma=0.5, weight_decay=0.3)
    ex = simulate_teacher_student(init, rng=1, **kw)
    gr = simulate_teacher_student(init, rng=2, method="gram", **kw)
    for name in ("Q", "R", "v"):
        a, b = getattr(ex, name).reshape(S, -1).numpy(), getattr(gr, name).reshape(S, -1).numpy()
        for col in range(a.shape[1]):
            _same_law(a[:, col], b[:, col])


def test_gram_arguments() -> None:
    init = draw_teacher_student(2, 2, 20, n_seeds=2, rng=0)
    with pytest.raises(ValueError, match="`inputs` must be None with method 'gram'"):
        simulate_teacher_student(init, lr=0.5, t_max=1.0, method="gram",
                                 inputs=[np.zeros((2, 20, 20))])
    with pytest.raises(ValueError, match="`method` must be one of 'explicit', 'gram'"):
        simulate_teacher_student(init, lr=0.5, t_max=1.0, method="ode")
    small = draw_teacher_student(2, 2, 4, n_seeds=1, rng=0)
    with pytest.raises(ValueError, match=r"`method` must be 'explicit' when N <= K \+ M"):
        simulate_teacher_student(small, lr=0.5, t_max=1.0, method="gram")
    a, b = (simulate_teacher_student(init, lr=0.5, t_max=2.0, method="gram", rng=3)
            for _ in range(2))
    torch.testing.assert_close(a.Q, b.Q, rtol=0, atol=0)
    Q0, R0, _ = init.order_parameters()
    torch.testing.assert_close(a.Q[:, 0], Q0, rtol=0, atol=0)
    torch.testing.assert_close(a.R[:, 0], R0, rtol=0, atol=0)

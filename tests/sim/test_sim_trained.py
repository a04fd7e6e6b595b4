"""The Monte Carlos around a trained layer (:mod:`alignlab.sim.trained`) against theory.

One registry-driven property test, as ``test_theory_vs_sim.py``: each :class:`Case` draws
a parameter set, runs its simulator once and knows the *exact* expectations
``E a = E <W, P^T> / |W|^2`` and ``E b = E |P^T|^2 / |W|^2`` over the redrawn feedback,
and the theory function whose value is the angle ``g(E a, E b)`` (``arccos(Ea/sqrt(Eb))``)
and norm ratio ``sqrt(E b)``:

* :func:`fixed_point_mc` and :func:`conditional_mc` (an iid ``W``, kept): ``E a = 1``,
  ``E b = m2`` (``E M = I``, ``E M^2 = m2 I``), theory
  :func:`alignlab.theory.path_alignment_angle_finite` / ``path_norm_ratio_finite``;
* :func:`dynamics_mc`: ``E a = <W_t, X_t>/|W_t|^2``,
  ``E b = (m2 |X_t|^2 + c^2 n_out n_in r0_std^2)/|W_t|^2`` (``X_t = W_t - c W_0``),
  theory :func:`alignlab.theory.dynamics.path_alignment_dynamics_angle` /
  ``path_norm_ratio_dynamics`` at ``|F_0|^2``'s expectation, and
  :func:`alignlab.theory.alignment_dynamics_cos` (the same number, from the tensors).

Per draw, ``a = cos(angle) x ratio`` and ``b = ratio^2``. Asserted, for every draw:

    |mean a - E a| <= Z se_a,   |mean b - E b| <= Z se_b            (exact expectations)
    |mean angle - theory| <= Z se + 2 |Jensen gap|                  (likewise the ratio)

The Jensen bound is ``test_theory_vs_sim.jensen_bound``'s argument: the theory is
``g(E a, E b)``, the simulation averages ``g(a_i, b_i)``, and twice the empirical gap
``mean g(a_i, b_i) - g(mean a, mean b)`` bounds the bias except with negligible
probability. Z = 5 as there: each standardised error is t-distributed with >= 63 degrees
of freedom, P(|t| > 5) ~ 5e-6, over the ~100 comparisons of a run ~5e-4 at most (and
hypothesis is derandomised in CI). A float32 allowance covers the rounding of the path
(relative ~1e-6; Haar ``B^T B = I`` within ~1e-6): ``ROUNDING_DEG``, ``ROUNDING_REL``.
``test_the_test_has_power`` shows a wrong theory fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import alignlab.sim as sim
import alignlab.theory as theory
from alignlab._rng import keyed_seed, make_streams
from alignlab.theory.dynamics import path_alignment_dynamics_angle, path_norm_ratio_dynamics

Z = 5.0
N_SAMPLES = 64  # draws per simulation: a stable se, cheap enough for CI
ROUNDING_DEG = 1e-3  # float32 path: the atan2 angle to ~1e-5 deg; Haar B^T B = I to ~1e-6
ROUNDING_REL = 1e-5  # relative, for a, b and the norm ratio

IID = ("uniform", "gaussian", "rademacher", "sparse", "masked")


@pytest.fixture(autouse=True)
def _torch_one_thread(one_thread):
    """torch on one thread (``one_thread`` in tests/conftest.py)."""


def _ensemble(name: str) -> sim.Ensemble:
    if name == "sparse":
        return sim.get_ensemble("sparse", density=0.3)
    if name == "masked":  # sparse PFA's B for b_init 'uniform'
        return sim.Masked(sim.Uniform(), 0.5)
    return sim.get_ensemble(name)


def _m2(n_out: int, n_mid: int, ens: sim.Ensemble | None) -> float:
    """``E tr M^2 / n_out``: finite-size Proposition 2 (iid), 1 for B^T B = I."""
    if ens is None or not ens.iid:
        return 1.0
    return float(theory.mp_second_moment_finite(n_out, n_mid, ens.kurtosis))


def _xavier(n_out: int, n_in: int, gen: torch.Generator) -> torch.Tensor:
    a = math.sqrt(3.0) * math.sqrt(2.0 / (n_out + n_in))
    return (2 * torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) - 1) * a


# ------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Outcome:
    """One simulation and what theory says of it."""

    stats: sim.AngleStats
    ea: float  # E <W, P^T> / |W|^2 exactly
    eb: float  # E |P^T|^2 / |W|^2 exactly
    angle_deg: float  # the theory function's angle
    norm_ratio: float  # the theory function's norm ratio


@st.composite
def layer_params(draw, ensembles=IID, min_ratio=1.0, max_ratio=20.0):
    n_out = draw(st.integers(8, 60))
    n_in = draw(st.integers(4, 40))
    log_r = draw(st.floats(math.log(min_ratio), math.log(max_ratio)))
    n_mid = max(1, min(int(n_out * math.exp(log_r)), 1200))
    return {"n_out": n_out, "n_in": n_in, "n_mid": n_mid,
            "b": draw(st.sampled_from(ensembles)), "seed": draw(st.integers(0, 2**32 - 1))}


def run_fixed_point(p) -> Outcome:
    ens = _ensemble(p["b"])
    n_out, n_mid = p["n_out"], p["n_mid"]
    s = sim.fixed_point_mc(n_out, p["n_in"], n_mid, b_ensemble=ens, n_samples=N_SAMPLES,
                           seed=p["seed"])
    k4 = ens.kurtosis
    return Outcome(s, 1.0, _m2(n_out, n_mid, ens),
                   float(theory.path_alignment_angle_finite(n_out, n_mid, k4)),
                   float(theory.path_norm_ratio_finite(n_out, n_mid, k4)))


def run_conditional(p) -> Outcome:
    ens = _ensemble(p["b"])
    n_out, n_mid = p["n_out"], p["n_mid"]
    w = _xavier(n_out, p["n_in"], torch.Generator().manual_seed(p["seed"] % 2**63))
    s = sim.conditional_mc(w, n_mid, b_ensemble=ens, n_samples=N_SAMPLES, seed=p["seed"])
    k4 = ens.kurtosis
    return Outcome(s, 1.0, _m2(n_out, n_mid, ens),
                   float(theory.path_alignment_angle_finite(n_out, n_mid, k4)),
                   float(theory.path_norm_ratio_finite(n_out, n_mid, k4)))


@st.composite
def dynamics_params(draw):
    p = draw(layer_params(ensembles=(*IID, "orthogonal", "identity")))
    if p["b"] == "identity":  # B = I (PFA-id, KP's kernel): n_mid = n_out
        p["n_mid"] = p["n_out"]
    p["c"] = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    p["r0"] = draw(st.sampled_from(["uniform", "gaussian", "masked"]))
    return p


def run_dynamics(p, residual: bool = True) -> Outcome:
    """W_0 Xavier-uniform, W_t = 0.6 W_0 + G (G iid), R_0 with Xavier's SD on (n_mid,
    n_in): independent of B and R_0, as the theory assumes. ``residual=False``: a wrong
    theory, without the residual ``c^2 |F_0|^2`` (for the power test)."""
    n_out, n_in, n_mid, c = p["n_out"], p["n_in"], p["n_mid"], p["c"]
    b_ens = None if p["b"] == "identity" else _ensemble(p["b"])
    r0_ens, r0_std = _ensemble(p["r0"]), math.sqrt(2.0 / (n_mid + n_in))
    gen = torch.Generator().manual_seed(p["seed"] % 2**63)
    w0 = _xavier(n_out, n_in, gen)
    wt = 0.6 * w0 + _xavier(n_out, n_in, gen)
    s = sim.dynamics_mc(wt, w0, c, n_mid, b_ensemble=b_ens, r0_ensemble=r0_ens,
                        r0_std=r0_std, n_samples=N_SAMPLES, seed=p["seed"])
    m2 = _m2(n_out, n_mid, b_ens)
    w_sq, w_dot_w0, w0_sq = (float((wt * wt).sum()), float((wt * w0).sum()),
                             float((w0 * w0).sum()))
    fb0_sq = n_out * n_in * r0_std**2  # E |B^T R_0^T|^2 (E B B^T = (n_out/n_mid) I)
    fb0_sq *= 1.0 if residual else 0.0
    x = wt - c * w0
    ea = float((wt * x).sum()) / w_sq
    eb = (m2 * float((x * x).sum()) + c * c * fb0_sq) / w_sq
    angle = float(path_alignment_dynamics_angle(w_sq, w_dot_w0, w0_sq, fb0_sq, c, m2))
    # the same prediction from the tensors (|R_0|^2 at its expectation, lam = n_out/n_mid)
    cos = theory.alignment_dynamics_cos(w0.numpy(), wt.numpy(),
                                        math.sqrt(n_mid * n_in * fb0_sq / (n_out * n_in)),
                                        c, m2,
                                        lam=n_out / n_mid)
    np.testing.assert_allclose(math.cos(math.radians(angle)), cos, rtol=1e-12)
    return Outcome(s, ea, eb, angle,
                   float(path_norm_ratio_dynamics(w_sq, w_dot_w0, w0_sq, fb0_sq, c, m2)))


@dataclass(frozen=True)
class Case:
    simulator: Callable[[dict], Outcome]
    strategy: st.SearchStrategy


CASES = {
    "fixed_point_mc vs path_alignment_angle_finite": Case(run_fixed_point, layer_params()),
    "conditional_mc vs path_alignment_angle_finite": Case(run_conditional, layer_params()),
    "dynamics_mc vs path_alignment_dynamics_angle": Case(run_dynamics, dynamics_params()),
}


def _per_draw(s: sim.AngleStats) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` per draw from its angle and norm ratio."""
    ratio = s.norm_ratios
    return np.cos(np.radians(s.angles_deg)) * ratio, ratio**2


def _failures(out: Outcome) -> list[str]:
    s = out.stats
    a, b = _per_draw(s)
    g_angle = sim.angle_of_moments
    checks = [  # (name, simulated, se, bias bound, theory)
        ("E a", a.mean(), sim.estimate(a).se, ROUNDING_REL * abs(out.ea), out.ea),
        ("E b", b.mean(), sim.estimate(b).se, ROUNDING_REL * out.eb, out.eb),
        ("angle", s.mean_deg, s.se_deg,
         2 * abs(s.mean_deg - float(g_angle(a.mean(), b.mean()))) + ROUNDING_DEG,
         out.angle_deg),
        ("norm ratio", s.norm_ratio_mean, sim.estimate(s.norm_ratios).se,
         2 * abs(s.norm_ratio_mean - math.sqrt(b.mean())) + ROUNDING_REL * out.norm_ratio,
         out.norm_ratio),
    ]
    return [f"{name}: simulated {mean:.6g} +- {se:.2g} (bias bound {bias:.2g}) vs theory "
            f"{expect:.6g}" for name, mean, se, bias, expect in checks
            if not abs(mean - expect) <= Z * se + bias]


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=12)
@given(data=st.data())
def test_simulator_matches_theory(case: str, data) -> None:
    c = CASES[case]
    p = data.draw(c.strategy)
    out = c.simulator(p)
    assert out.stats.n == N_SAMPLES
    # the theory is the angle of the exact moments (a consistency check of the registry)
    assert math.isclose(float(sim.angle_of_moments(out.ea, out.eb)), out.angle_deg,
                        rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(math.sqrt(out.eb), out.norm_ratio, rel_tol=1e-12)
    failures = _failures(out)
    assert not failures, f"{case} at {p}:\n" + "\n".join(failures)


def test_the_test_has_power() -> None:
    """The bounds are tight enough to see a wrong theory: the dynamics prediction without
    the residual c^2 |F_0|^2 (c = 0.3: 0.4 deg) and the fixed point with the kurtosis
    term of m2 dropped (the limit 1 + n_out/n_mid; sparse B at density 0.3, kurtosis 10,
    n_out = 20, n_mid = 60: m2 1.6 against 1.33, 34.3 deg against 30) fail, the angle
    check among them."""
    p = {"n_out": 40, "n_in": 30, "n_mid": 160, "b": "uniform", "seed": 1, "c": 0.3,
         "r0": "uniform"}
    assert not _failures(run_dynamics(p))
    assert any(f.startswith("angle") for f in _failures(run_dynamics(p, residual=False)))
    q = {"n_out": 20, "n_in": 30, "n_mid": 60, "b": "sparse", "seed": 2}
    out = run_fixed_point(q)
    assert not _failures(out)
    limit_m2 = 1.0 + 20 / 60
    wrong = Outcome(out.stats, 1.0, limit_m2, float(sim.angle_of_moments(1.0, limit_m2)),
                    math.sqrt(limit_m2))
    assert any(f.startswith("angle") for f in _failures(wrong))


# ------------------------------------------------------------------ seeding, chunks
N_OUT, N_IN, N_MID = 24, 16, 96


def _layer(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    w0 = _xavier(N_OUT, N_IN, gen)
    return 0.6 * w0 + _xavier(N_OUT, N_IN, gen), w0


@pytest.mark.parametrize("b", ["uniform", "masked", "orthogonal"])
def test_dynamics_at_c_zero_is_the_conditional_mc_draw_by_draw(b: str) -> None:
    """At c = 0 the path is M W_t, and sample i's B comes from stream (i, TAG_B) of the
    B seed in both: the same angle and norm ratio draw by draw, whatever the chunk sizes
    (here one sample per chunk against all at once) and whether the B seed is the
    dynamics MC's own seed or its b_seed. Only float64 summation order can differ."""
    wt, w0 = _layer()
    ens = _ensemble(b)
    cond = sim.conditional_mc(wt, N_MID, b_ensemble=ens, n_samples=40, seed=11)
    one = N_MID * (N_OUT + N_IN) * 4  # less than one sample: one per chunk
    for kw in ({"seed": 11}, {"seed": 99, "b_seed": 11}):
        dyn = sim.dynamics_mc(wt, w0, 0.0, N_MID, b_ensemble=ens, r0_ensemble="uniform",
                              r0_std=0.1, n_samples=40, max_chunk_bytes=one, **kw)
        np.testing.assert_allclose(dyn.angles_deg, cond.angles_deg, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dyn.norm_ratios, cond.norm_ratios, rtol=1e-12)
    other = sim.dynamics_mc(wt, w0, 0.0, N_MID, b_ensemble=ens, r0_ensemble="uniform",
                            r0_std=0.1, n_samples=40, seed=12)
    assert not np.allclose(other.angles_deg, cond.angles_deg)  # another B seed, other B


def test_samples_do_not_depend_on_chunks_or_n_samples() -> None:
    """Sample i has its own streams: the same seed gives the same draws for any chunk
    size, and the first k draws of a larger run are the draws of a run of k."""
    wt, w0 = _layer(1)
    full = sim.dynamics_mc(wt, w0, 0.3, N_MID, b_ensemble="uniform", r0_ensemble="uniform",
                           r0_std=0.1, n_samples=30, seed=5)
    small = sim.dynamics_mc(wt, w0, 0.3, N_MID, b_ensemble="uniform", r0_ensemble="uniform",
                            r0_std=0.1, n_samples=12, seed=5, max_chunk_bytes=1)
    np.testing.assert_allclose(small.angles_deg, full.angles_deg[:12], rtol=1e-12)
    again = sim.conditional_mc(wt, N_MID, n_samples=30, seed=5)
    assert again == sim.conditional_mc(wt, N_MID, n_samples=30, seed=5)
    np.testing.assert_array_equal(
        again.angles_deg, sim.conditional_mc(wt, N_MID, n_samples=30, seed=5,
                                             max_chunk_bytes=1).angles_deg)


def test_fixed_point_mc_is_simulate_path_alignment() -> None:
    res = sim.simulate_path_alignment(N_OUT, N_MID, n_in=N_IN, n_samples=20, rng=3)
    s = sim.fixed_point_mc(N_OUT, N_IN, N_MID, n_samples=20, seed=3)
    assert (s.mean_deg, s.sd_deg, s.n) == (res.angle_deg.mean, res.angle_deg.sd, 20)
    assert s.norm_ratio_mean == res.norm_ratio.mean


def test_identity_feedback_without_r0_is_exact() -> None:
    """R_0^T = B W_0 (no R_0 drawn): the path is M W_t, the conditional MC's; for B = I it
    is W_t itself (angle 0, ratio 1: nothing drawn)."""
    wt, w0 = _layer(2)
    dyn = sim.dynamics_mc(wt, w0, 0.4, N_MID, b_ensemble="gaussian", r0_ensemble=None,
                          n_samples=10, seed=4)
    cond = sim.conditional_mc(wt, N_MID, b_ensemble="gaussian", n_samples=10, seed=4)
    np.testing.assert_allclose(dyn.angles_deg, cond.angles_deg, rtol=1e-12)
    ident = sim.dynamics_mc(wt, w0, 0.4, N_OUT, b_ensemble=None, r0_ensemble=None,
                            n_samples=10, seed=4)
    assert (ident.mean_deg, ident.sd_deg, ident.norm_ratio_mean, ident.n) == (0, 0, 1, 10)


def test_angle_stats() -> None:
    s = sim.AngleStats.from_samples([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (s.mean_deg, s.sd_deg, s.norm_ratio_mean, s.n) == (2.0, 1.0, 2.0, 3)
    assert s.se_deg == pytest.approx(1 / math.sqrt(3))
    t = sim.AngleStats.from_samples([5.0])
    assert t.n == 1 and math.isnan(t.sd_deg) and math.isnan(t.norm_ratio_mean)
    assert sim.AngleStats(1.0, 0.5, 1.1, 4) == sim.AngleStats(1.0, 0.5, 1.1, 4)


# ----------------------------------------------------------------------- keyed seeds
def test_keyed_seed_is_stable_and_separates_keys() -> None:
    """A named computation's root: pinned (the derivation must not drift, or compare's
    numbers would change between versions), distinct per key and per seed, and its
    streams never those of an int seed's samples or children."""
    ss = keyed_seed(0, "cond/run/3")
    assert int(ss.generate_state(1, np.uint64)[0]) == 5067192545038364222
    words = {int(keyed_seed(s, k).generate_state(1, np.uint64)[0])
             for s in (0, 1) for k in ("cond/run/3", "dyn/run/3", "cond/run/4")}
    assert len(words) == 6
    keyed = make_streams(keyed_seed(0, "a")).seed_sequence(0, 0).spawn_key
    plain = make_streams(0).child(5).seed_sequence(0, 0).spawn_key
    assert len(keyed) % 2 == 1 and len(plain) % 2 == 0
    with pytest.raises(ValueError, match=r"^`seed` must be an int >= 0, got -1\.$"):
        keyed_seed(-1, "a")


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, message", [
    (lambda: sim.conditional_mc(torch.zeros(3), 5, n_samples=2),
     r"^`weight` must be a \(n_out, n_in\) matrix, got shape \(3,\)\.$"),
    (lambda: sim.conditional_mc(torch.zeros(3, 2), 5, n_samples=2),
     r"^`weight` must be nonzero"),
    (lambda: sim.conditional_mc(torch.full((3, 2), math.nan), 5, n_samples=2),
     r"^`weight` must be finite"),
    (lambda: sim.conditional_mc(torch.ones(3, 2), 0, n_samples=2), r"^`n_mid` must be"),
    (lambda: sim.conditional_mc(torch.ones(3, 2), 10**12, n_samples=2),
     r"^`n_mid` must be small enough for one sample to fit in memory"),
    (lambda: sim.conditional_mc(torch.ones(3, 2), 5, b_ensemble="cauchy", n_samples=2),
     r"^`b_ensemble` must be one of"),
    (lambda: sim.dynamics_mc(torch.ones(3, 2), torch.ones(2, 3), 0.1, 5,
                             b_ensemble="uniform", r0_ensemble="uniform", r0_std=1.0,
                             n_samples=2),
     r"^`weight0` must be of shape \(3, 2\) \(weight's\), got shape \(2, 3\)\.$"),
    (lambda: sim.dynamics_mc(torch.ones(3, 2), torch.ones(3, 2), math.nan, 5,
                             b_ensemble="uniform", r0_ensemble="uniform", r0_std=1.0,
                             n_samples=2), r"^`decay_c` must be finite"),
    (lambda: sim.dynamics_mc(torch.ones(3, 2), torch.ones(3, 2), 0.1, 5, b_ensemble=None,
                             r0_ensemble="uniform", r0_std=1.0, n_samples=2),
     r"^`n_mid` must be n_out = 3 when `b_ensemble` is None \(B = I\), got 5\.$"),
    (lambda: sim.dynamics_mc(torch.ones(3, 2), torch.ones(3, 2), 0.1, 5,
                             b_ensemble="uniform", r0_ensemble="uniform", n_samples=2),
     r"^`r0_std` must be"),
    (lambda: sim.dynamics_mc(torch.ones(3, 2), torch.ones(3, 2), 0.1, 5,
                             b_ensemble="uniform", r0_ensemble="uniform", r0_std=1.0,
                             n_samples=2, b_seed=-1), r"^`b_seed` must be None"),
])
def test_bad_input(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()

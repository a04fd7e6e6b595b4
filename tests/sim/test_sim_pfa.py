"""The converged-PFA simulator: fast path == literal recipe, Wishart == direct in law,
reproducibility, chunking, Figure 3's claims, bad input."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import alignlab.sim as sim
import alignlab.theory as theory
from alignlab._linalg import mid_width

Z = 5.0  # few two-sample comparisons per run; 5 standard errors: no chance failures


def _assert_same_paths(a: sim.PathSamples, b: sim.PathSamples, *, atol: float) -> None:
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=0, atol=atol)
    np.testing.assert_allclose(a.cos, b.cos, rtol=0, atol=atol)
    np.testing.assert_allclose(a.norm_ratio, b.norm_ratio, rtol=0, atol=atol)
    # degrees; the literal arccos resolves angles near 0 only to sqrt(2 eps64) rad ~ 1e-6
    # deg (PFA-o sits there), the fast path's atan2 to ~eps
    np.testing.assert_allclose(a.angle_deg, b.angle_deg, rtol=0, atol=1e3 * atol + 1e-5)


# ------------------------------------------------------------- fast path == literal
@pytest.mark.parametrize("ensemble", ["uniform", "gaussian", "rademacher", "orthogonal"])
@pytest.mark.parametrize(("n_out", "n_mid", "n_in"), [(30, 90, 40), (30, 20, 17), (25, 25, 64)])
def test_fast_path_equals_literal_recipe_on_same_matrices(ensemble, n_out, n_mid, n_in) -> None:
    """P^T = M W (fast) and P = (B W)^T B formed explicitly (literal): same numbers."""
    kw = dict(n_samples=4, ensemble=ensemble, rng=42)
    B, W = sim.sample_pfa_matrices(n_out, n_mid, n_in, dtype=torch.float64, **kw)
    assert B.shape == (4, n_mid, n_out) and W.shape == (4, n_out, n_in)
    literal = sim.literal_path_statistics(B, W)
    _assert_same_paths(sim.path_statistics(B, W), literal, atol=1e-10)
    # and sample_converged_pfa draws exactly these B and W
    fast = sim.sample_converged_pfa(n_out, n_mid, n_in, dtype=torch.float64, **kw)
    _assert_same_paths(fast, literal, atol=1e-10)


def test_fast_path_float32_equals_literal() -> None:
    B, W = sim.sample_pfa_matrices(100, 400, 256, n_samples=3, rng=1)
    literal = sim.literal_path_statistics(B.double(), W.double())
    fast = sim.sample_converged_pfa(100, 400, 256, n_samples=3, rng=1)
    np.testing.assert_allclose(fast.eigenvalues, literal.eigenvalues, atol=2e-5)
    np.testing.assert_allclose(fast.angle_deg, literal.angle_deg, atol=1e-3)
    np.testing.assert_allclose(fast.norm_ratio, literal.norm_ratio, rtol=1e-5)


def test_float32_rounding_is_negligible_at_figure3_size() -> None:
    """Why float32 is the default: at Figure 3's largest n_mid the float32 fast path is
    within 1e-3 deg / 2e-5 of float64 on the same matrices, while the Monte Carlo
    standard error of a 100-sample mean there is ~6e-3 deg (angle SD ~0.06 deg)."""
    B, W = sim.sample_pfa_matrices(100, 10000, 256, n_samples=2, rng=8)
    f32 = sim.path_statistics(B, W)
    f64 = sim.path_statistics(B.double(), W.double())
    np.testing.assert_allclose(f32.angle_deg, f64.angle_deg, atol=1e-3)
    np.testing.assert_allclose(f32.eigenvalues, f64.eigenvalues, atol=2e-5)


def test_unbatched_statistics() -> None:
    B, W = sim.sample_pfa_matrices(10, 30, 12, n_samples=1, rng=0, dtype=torch.float64)
    a, b = sim.path_statistics(B[0], W[0]), sim.path_statistics(B, W)
    np.testing.assert_array_equal(a.angle_deg, b.angle_deg)
    with pytest.raises(ValueError, match="`W`"):
        sim.path_statistics(B, W[:, :5])
    with pytest.raises(ValueError, match="`B`"):
        sim.path_statistics(B[0, 0], W[0])


def test_literal_sample_agrees_in_distribution() -> None:
    """literal_pfa_sample (torch.nn.init, its own RNG) and the fast path: same law.
    Samples are independent, so two-sample z and KS p-values are valid here."""
    n_out, n_mid, n_in, n = 30, 90, 40, 300
    for b_init in ("uniform", "gaussian"):
        lit = sim.literal_pfa_sample(n_out, n_mid, n_in, n_samples=n, b_init=b_init, rng=5)
        fast = sim.sample_converged_pfa(n_out, n_mid, n_in, n_samples=n, ensemble=b_init,
                                        rng=6)
        assert lit.n_samples == n and lit.eigenvalues.shape == (n, n_out)
        for name in ("angle_deg", "norm_ratio"):
            x, y = getattr(lit, name), getattr(fast, name)
            se = math.hypot(x.std(ddof=1), y.std(ddof=1)) / math.sqrt(n)
            assert abs(x.mean() - y.mean()) <= Z * se, (b_init, name)
            assert stats.ks_2samp(x, y).pvalue > 1e-4, (b_init, name)
        lmax_l, lmax_f = lit.eigenvalues[:, -1], fast.eigenvalues[:, -1]
        assert stats.ks_2samp(lmax_l, lmax_f).pvalue > 1e-4


def test_literal_reference_scale() -> None:
    """Xavier-uniform with gain sqrt((1 + 1/r)/2) on (n_out, n_mid) has variance 1/n_mid."""
    s = sim.literal_pfa_sample(40, 160, 20, n_samples=50, rng=0)
    m1 = s.eigenvalues.astype(float).mean(axis=1)  # tr(B^T B)/n_out, exactly 1 in mean
    assert abs(m1.mean() - 1.0) <= Z * m1.std(ddof=1) / math.sqrt(m1.size)


# ------------------------------------------------------------------ Wishart / Bartlett
def _two_sample_z(x: np.ndarray, y: np.ndarray) -> float:
    se = math.hypot(x.std(ddof=1) / math.sqrt(x.size), y.std(ddof=1) / math.sqrt(y.size))
    return abs(x.mean() - y.mean()) / se


@pytest.mark.parametrize(("n_out", "n_mid"), [(40, 40), (40, 200)])
def test_wishart_has_the_law_of_the_direct_method(n_out: int, n_mid: int) -> None:
    """n_mid M ~ Wishart(n_mid, I): the Bartlett draw and B^T B agree in tr M, tr M^2,
    the extreme eigenvalues (z over independent samples, and a KS test on the largest
    eigenvalue, one independent number per sample) and the path statistics."""
    n = 1500
    kw = dict(n_samples=n, ensemble="gaussian", dtype=torch.float64)
    direct = sim.sample_converged_pfa(n_out, n_mid, 16, method="direct", rng=1, **kw)
    wish = sim.sample_converged_pfa(n_out, n_mid, 16, method="wishart", rng=2, **kw)
    assert wish.method == "wishart"
    stats_of = {
        "tr M / n": lambda s: s.eigenvalues.mean(axis=1),
        "tr M^2 / n": lambda s: (s.eigenvalues**2).mean(axis=1),
        "lambda_max": lambda s: s.eigenvalues[:, -1],
        "lambda_min": lambda s: s.eigenvalues[:, 0],
        "angle": lambda s: s.angle_deg,
        "norm_ratio": lambda s: s.norm_ratio,
    }
    for name, f in stats_of.items():
        assert _two_sample_z(f(direct), f(wish)) <= Z, name
    assert stats.ks_2samp(direct.eigenvalues[:, -1], wish.eigenvalues[:, -1]).pvalue > 1e-4
    # and both sit on the exact finite-size second moment
    m2 = theory.mp_second_moment_finite(n_out, n_mid, 3.0)
    w2 = (wish.eigenvalues**2).mean(axis=1)
    assert abs(w2.mean() - m2) <= Z * w2.std(ddof=1) / math.sqrt(n)


def test_wishart_cost_does_not_grow_with_n_mid() -> None:
    """The Bartlett factor is n_out x n_out: n_mid = 10^7 is as cheap as 10^3."""
    s = sim.sample_converged_pfa(20, 10**7, 8, n_samples=4, ensemble="gaussian",
                                 method="wishart", rng=0)
    assert np.all(np.abs(s.eigenvalues - 1.0) < 0.01)
    assert np.all(s.angle_deg < 0.2)


def test_wishart_small_n_mid_and_errors() -> None:
    # n_mid < n_out: no Bartlett factor; B is drawn directly (exact), rank n_mid
    s = sim.sample_converged_pfa(30, 10, 8, n_samples=3, ensemble="gaussian", method="wishart",
                                 rng=0, dtype=torch.float64)
    assert np.all(np.abs(s.eigenvalues[:, :20]) < 1e-10)
    with pytest.raises(ValueError, match="`method`"):
        sim.sample_converged_pfa(30, 60, 8, n_samples=3, ensemble="uniform", method="wishart")
    with pytest.raises(ValueError, match="`method`"):
        sim.sample_converged_pfa(30, 60, 8, n_samples=3, method="svd")


def test_sample_btb() -> None:
    M = sim.sample_btb(20, 50, n_samples=5, rng=3, dtype=torch.float64)
    B, _ = sim.sample_pfa_matrices(20, 50, 4, n_samples=5, rng=3, dtype=torch.float64)
    torch.testing.assert_close(M, B.mT @ B)  # both default to the uniform B
    Mw = sim.sample_btb(20, 50, n_samples=5, rng=3, ensemble="gaussian", method="wishart")
    assert Mw.shape == (5, 20, 20)
    torch.testing.assert_close(Mw, Mw.mT, rtol=0, atol=1e-6)


# ------------------------------------------------------------------- reproducibility
@settings(max_examples=8)
@given(
    n_out=st.integers(1, 12), n_mid=st.integers(1, 40), n_in=st.integers(1, 10),
    ensemble=st.sampled_from(sorted(sim.ENSEMBLES)), seed=st.integers(0, 2**40),
    method=st.sampled_from(["direct", "wishart"]),
)
def test_same_seed_same_samples(n_out, n_mid, n_in, ensemble, seed, method) -> None:
    if method == "wishart":
        ensemble = "gaussian"
    kw = dict(n_samples=5, ensemble=ensemble, method=method)
    a = sim.sample_converged_pfa(n_out, n_mid, n_in, rng=seed, **kw)
    b = sim.sample_converged_pfa(n_out, n_mid, n_in, rng=seed, **kw)
    for name in ("eigenvalues", "cos", "angle_deg", "norm_ratio"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # another seed, other matrices (W is continuous; the statistics can coincide in
    # degenerate cases: with n_out = 1, M is a positive scalar and cos = 1 always)
    _, w1 = sim.sample_pfa_matrices(n_out, n_mid, n_in, n_samples=5, rng=seed)
    _, w2 = sim.sample_pfa_matrices(n_out, n_mid, n_in, n_samples=5, rng=seed + 1)
    assert not torch.equal(w1, w2)
    if n_out > 1 and ensemble in ("gaussian", "uniform"):
        c = sim.sample_converged_pfa(n_out, n_mid, n_in, rng=seed + 1, **kw)
        assert not np.array_equal(a.cos, c.cos)


def test_seed_round_trip_chunking_and_prefix() -> None:
    kw = dict(n_samples=7, ensemble="uniform", dtype=torch.float64)
    a = sim.sample_converged_pfa(20, 300, 30, **kw)  # rng=None: fresh entropy, recorded
    again = sim.sample_converged_pfa(20, 300, 30, rng=a.entropy, **kw)
    np.testing.assert_array_equal(a.angle_deg, again.angle_deg)
    # chunking (and hence double buffering, threads) changes nothing but rounding
    tiny = sim.sample_converged_pfa(20, 300, 30, rng=a.entropy, max_chunk_bytes=1, **kw)
    _assert_same_paths(a, tiny, atol=1e-12)
    # sample i does not depend on n_samples
    head = sim.sample_converged_pfa(20, 300, 30, rng=a.entropy,
                                    **{**kw, "n_samples": 3})
    _assert_same_paths(head, sim.PathSamples(a.eigenvalues[:3], a.cos[:3], a.angle_deg[:3],
                                             a.norm_ratio[:3]), atol=1e-12)
    # a torch.Generator seeds too
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    np.testing.assert_array_equal(sim.sample_converged_pfa(20, 40, 5, rng=g1, **kw).cos,
                                  sim.sample_converged_pfa(20, 40, 5, rng=g2, **kw).cos)


def test_sweep_records_and_coupling(tmp_path) -> None:
    ratios = [1.0, 2.0, 4.0]
    recs = sim.sweep_expansion_ratio(20, ratios, n_in=16, n_samples=8, rng=3)
    assert recs.column("n_mid") == [20, 40, 80]
    assert list(recs) == list(sim.sweep_expansion_ratio(20, ratios, n_in=16, n_samples=8,
                                                         rng=3))
    # coupled: nested B from the caller's seed (common random numbers); for uniform
    # entries that is sample_converged_pfa with that seed at every ratio
    coupled = sim.sweep_expansion_ratio(20, ratios, n_in=16, n_samples=8, rng=3, coupled=True)
    direct = sim.sample_converged_pfa(20, 40, 16, n_samples=8, rng=3)
    assert coupled[1]["angle_mean"] == pytest.approx(float(direct.angle_deg.mean()), abs=1e-4)
    assert recs[1]["angle_mean"] != coupled[1]["angle_mean"]
    path = recs.to_csv(tmp_path / "sweep.csv")
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == recs.columns and len(lines) == 4
    assert "angle_mean" in str(recs)


@pytest.mark.parametrize("ensemble", ["uniform", "gaussian", "rademacher"])
def test_nested_equals_per_size_draws(ensemble: str) -> None:
    """For these ensembles a sample's numbers fill B row by row, so the nested sizes are
    exactly sample_converged_pfa with the same seed (up to float64 rounding)."""
    n_mids = [50, 20, 33, 50]  # any order, duplicates allowed
    nested = sim.sample_converged_pfa_nested(20, n_mids, 12, n_samples=6, ensemble=ensemble,
                                             rng=9, dtype=torch.float64)
    assert [s.n_mid for s in nested] == n_mids
    for m, s in zip(n_mids, nested, strict=True):
        d = sim.sample_converged_pfa(20, m, 12, n_samples=6, ensemble=ensemble, rng=9,
                                     dtype=torch.float64)
        _assert_same_paths(s, d, atol=1e-10)


@pytest.mark.parametrize("method", ["direct", "wishart"])
def test_nested_law(method: str) -> None:
    """Every nested size has the exact finite-size second moment (sparse: the first
    rows of an iid matrix are iid; wishart: independent Wishart increments, including
    increments with fewer degrees of freedom than n_out)."""
    ens = "gaussian" if method == "wishart" else sim.get_ensemble("sparse", density=0.5)
    n_mids = [20, 30, 60, 500]
    nested = sim.sample_converged_pfa_nested(25, n_mids, 10, n_samples=600, ensemble=ens,
                                             method=method, rng=1)
    k4 = 3.0 if method == "wishart" else 6.0
    for m, s in zip(n_mids, nested, strict=True):
        m2 = theory.mp_second_moment_finite(25, m, k4)
        b = s.norm_ratio_sq  # exact expectation m2
        assert abs(b.mean() - m2) <= Z * b.std(ddof=1) / math.sqrt(b.size), (m, method)
        e2 = (s.eigenvalues.astype(float) ** 2).mean(axis=1)
        assert abs(e2.mean() - m2) <= Z * e2.std(ddof=1) / math.sqrt(e2.size), (m, method)


def test_nested_errors_and_reproducibility() -> None:
    a = sim.sample_converged_pfa_nested(10, [10, 40], 5, n_samples=3, rng=4)
    b = sim.sample_converged_pfa_nested(10, [10, 40], 5, n_samples=3, rng=4)
    np.testing.assert_array_equal(a[1].angle_deg, b[1].angle_deg)
    with pytest.raises(ValueError, match="`ensemble`"):
        sim.sample_converged_pfa_nested(10, [10, 20], 5, n_samples=2, ensemble="orthogonal")
    with pytest.raises(ValueError, match="`n_mids`"):
        sim.sample_converged_pfa_nested(10, [], 5, n_samples=2)
    with pytest.raises(ValueError, match="`n_mids`"):
        sim.sample_converged_pfa_nested(10, [10, 0], 5, n_samples=2)
    with pytest.raises(ValueError, match="`method`"):
        sim.sample_converged_pfa_nested(10, [10], 5, n_samples=2, method="wishart")


def test_orthogonal_pfa_is_bp() -> None:
    s = sim.sample_converged_pfa(50, 200, 30, n_samples=4, ensemble="orthogonal", rng=0)
    assert np.all(s.angle_deg < 1e-3)
    np.testing.assert_allclose(s.norm_ratio, 1.0, atol=1e-5)
    np.testing.assert_allclose(s.eigenvalues, 1.0, atol=1e-5)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"n_out": 0}, "n_out"),
        ({"n_mid": 2.5}, "n_mid"),
        ({"n_mid": float("nan")}, "n_mid"),
        ({"n_in": -4}, "n_in"),
        ({"n_samples": -1}, "n_samples"),
        ({"n_samples": 0}, "n_samples"),
        ({"ensemble": "cauchy"}, "ensemble"),
        ({"w_ensemble": "cauchy"}, "w_ensemble"),
        ({"method": "qr"}, "method"),
        ({"dtype": torch.int64}, "dtype"),
        ({"device": "abacus"}, "device"),
        ({"rng": -1}, "rng"),
        ({"rng": 1.5}, "rng"),
        ({"max_chunk_bytes": 0}, "max_chunk_bytes"),
    ],
)
def test_bad_input(kwargs: dict, arg: str) -> None:
    call = {"n_out": 4, "n_mid": 8, "n_in": 3, "n_samples": 2, **kwargs}
    n_out, n_mid, n_in = call.pop("n_out"), call.pop("n_mid"), call.pop("n_in")
    with pytest.raises(ValueError, match=f"`{arg}`"):
        sim.sample_converged_pfa(n_out, n_mid, n_in, **call)


@pytest.mark.parametrize("ratio", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_ratio(ratio: float) -> None:
    with pytest.raises(ValueError, match="`expansion_ratio`"):
        sim.n_mid_from_ratio(100, ratio)
    with pytest.raises(ValueError, match="`expansion_ratio"):
        sim.sweep_expansion_ratio(100, [1.0, ratio], n_in=4, n_samples=2)


def test_one_n_mid_rounding_rule() -> None:
    """sim rounds n_mid with alignlab._linalg.mid_width, the package's one rule: floor
    (Figure 3's int(n_out r)) on the paper's ratios, a guard so 100 * 0.29 gives 29, and
    at least 1 (r = 0.001 at n_out = 100 is n_mid = 1, as in nn and the CLI)."""
    figure3 = [100, 158, 251, 398, 630, 1000, 1584, 2511, 3981, 6309, 10000]
    ratios = 10 ** (np.arange(11) / 5)
    assert [sim.n_mid_from_ratio(100, r) for r in ratios] == figure3
    assert [sim.n_mid_from_ratio(100, r) for r in np.logspace(0, 2, 11)] == figure3
    assert [mid_width(100, r) for r in ratios] == figure3
    assert sim.n_mid_from_ratio(100, 0.29) == 29 == mid_width(100, 0.29)
    assert sim.n_mid_from_ratio(100, 0.001) == 1 == mid_width(100, 0.001)
    recs = sim.sweep_expansion_ratio(100, [0.29, 0.001], n_in=4, n_samples=2, rng=0)
    assert recs.column("n_mid") == [29, 1]


def test_one_default_ensemble() -> None:
    """Every simulator defaults to the paper's uniform B, the theory's default
    (DEFAULT_ENSEMBLE, kurtosis 9/5): the README's Monte Carlo line sits on the finite-size
    angle at the default kurtosis (it printed 17.62 deg with Gaussian B)."""
    for f in (sim.sample_converged_pfa, sim.sample_converged_pfa_nested, sim.sample_btb,
              sim.sample_pfa_matrices, sim.sweep_expansion_ratio, sim.simulate_spectrum,
              sim.simulate_path_alignment):
        assert inspect.signature(f).parameters["ensemble"].default == theory.DEFAULT_ENSEMBLE
    res = sim.simulate_path_alignment(100, 1000, n_in=256, n_samples=200, rng=0)
    assert res.ensemble == "uniform" and res.kurtosis == theory.DEFAULT_KURTOSIS
    s = res.samples
    jensen = abs(sim.angle_jensen_gap(s))  # bias bound: twice the empirical Jensen gap
    finite = float(theory.path_alignment_angle_finite(100, 1000))
    assert abs(res.angle_deg.mean - finite) <= Z * res.angle_deg.se + 2 * jensen
    # Gaussian B is resolved: its finite-size angle is 0.10 deg higher (k4 3 vs 9/5)
    gaussian = float(theory.path_alignment_angle_finite(100, 1000, 3.0))
    assert abs(res.angle_deg.mean - gaussian) > Z * res.angle_deg.se + 2 * jensen


def test_bad_input_literal_and_simulators() -> None:
    with pytest.raises(ValueError, match="`b_init`"):
        sim.literal_pfa_sample(4, 8, 3, b_init="orthogonal")
    with pytest.raises(ValueError, match="`n_samples`"):
        sim.literal_pfa_sample(4, 8, 3, n_samples=-2)
    with pytest.raises(ValueError, match="`n_mid`"):
        sim.simulate_spectrum(4, 0, n_samples=2)
    with pytest.raises(ValueError, match="`n_samples`"):
        sim.simulate_path_alignment(4, 8, n_samples=-5)
    with pytest.raises(ValueError, match="`ensemble`"):
        sim.simulate_spectrum(4, 8, n_samples=2, ensemble="wigner")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_path() -> None:
    kw = dict(n_samples=64, ensemble="uniform", rng=4)
    a = sim.sample_converged_pfa(50, 500, 64, device="cuda", **kw)
    b = sim.sample_converged_pfa(50, 500, 64, device="cuda", **kw)
    np.testing.assert_array_equal(a.angle_deg, b.angle_deg)
    c = sim.sample_converged_pfa(50, 500, 64, **kw)  # CPU: other numbers, same law
    assert _two_sample_z(a.angle_deg, c.angle_deg) <= Z
    B, W = sim.sample_pfa_matrices(50, 500, 64, device="cuda", **kw)
    _assert_same_paths(sim.path_statistics(B, W), a, atol=1e-4)
    w = sim.sample_converged_pfa(50, 500, 64, device="cuda", n_samples=8, ensemble="gaussian",
                                 method="wishart", rng=1, dtype=torch.float64)
    w_cpu = sim.sample_converged_pfa(50, 500, 64, n_samples=8, ensemble="gaussian",
                                     method="wishart", rng=1, dtype=torch.float64)
    np.testing.assert_allclose(w.eigenvalues, w_cpu.eigenvalues, atol=1e-10)

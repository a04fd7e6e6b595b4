"""Estimators: Estimate, moments with standard errors over samples, KS distance, records."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from scipy import stats

import alignlab.sim as sim
import alignlab.theory as theory


def test_estimate() -> None:
    x = np.array([1.0, 2.0, 4.0, 7.0])
    e = sim.estimate(x)
    assert e == sim.Estimate(x.mean(), x.std(ddof=1), x.std(ddof=1) / 2.0, 4)
    assert e.as_dict("a_") == {"a_mean": e.mean, "a_sd": e.sd, "a_se": e.se, "a_n": 4}
    one = sim.estimate([3.0])
    assert one.mean == 3.0 and math.isnan(one.se)
    with pytest.raises(ValueError, match="`values`"):
        sim.estimate([])
    with pytest.raises(AttributeError):
        e.mean = 0.0  # frozen


def test_moments_and_pooled_sd_definitions() -> None:
    rng = np.random.default_rng(0)
    eig = rng.gamma(2.0, size=(50, 30))
    m2 = sim.spectral_moment(eig, 2)
    assert m2.mean == pytest.approx((eig**2).mean())
    assert m2.se == pytest.approx((eig**2).mean(axis=1).std(ddof=1) / math.sqrt(50))
    sd = sim.pooled_eigenvalue_sd(eig)
    assert sd.mean == pytest.approx(eig.std())  # np.std of the pooled set, ddof=0
    with pytest.raises(ValueError, match="`eigenvalues`"):
        sim.spectral_moment(np.ones(5), 1)


def test_pooled_sd_standard_error_is_calibrated() -> None:
    """The delta-method SE over samples matches the spread of the estimator over
    independent replications, with strongly correlated values within a sample."""
    rng = np.random.default_rng(1)
    n_rep, n_samples, n_vals = 400, 40, 25

    def one_run():
        shift = rng.normal(size=(n_samples, 1))  # within-sample correlation
        return shift + rng.normal(size=(n_samples, n_vals)) * 0.5

    runs = [sim.pooled_eigenvalue_sd(one_run()) for _ in range(n_rep)]
    spread = np.std([r.mean for r in runs], ddof=1)
    mean_se = np.mean([r.se for r in runs])
    # relative sampling error of a SD from 400 replications ~ 1/sqrt(800) = 3.5%
    assert mean_se == pytest.approx(spread, rel=0.2)
    # a naive iid SE over all pooled values would be badly overconfident here
    naive = runs[0].mean / math.sqrt(2 * n_samples * n_vals)
    assert naive < 0.5 * spread


def test_ks_distance_matches_scipy_for_iid_draws() -> None:
    """On iid draws from MP (continuous, lam < 1) the distance is scipy's KS statistic."""
    lam = 0.3
    x = theory.marchenko_pastur(lam).rvs(size=2000, random_state=np.random.default_rng(2))
    d = sim.ks_distance(x.reshape(40, 50), lam)
    assert d == pytest.approx(stats.kstest(x, theory.marchenko_pastur(lam).cdf).statistic,
                              abs=1e-12)
    assert d < 0.05


def test_ks_distance_atom_and_rounding() -> None:
    """lam > 1: a mass 1 - 1/lam at 0; float32 rounding noise around 0 counts as 0."""
    lam = 2.5
    mp = theory.marchenko_pastur(lam)
    x = mp.rvs(size=5000, random_state=np.random.default_rng(3))
    exact = np.sort(x)
    d0 = sim.ks_distance(exact[None, :], lam)
    noisy = exact.astype(np.float32).copy()
    zeros = exact == 0.0
    assert zeros.mean() == pytest.approx(1 - 1 / lam, abs=0.03)
    noisy[zeros] = np.random.default_rng(4).normal(scale=1e-6, size=zeros.sum())
    assert sim.ks_distance(noisy[None, :], lam) == pytest.approx(d0, abs=1e-3)
    assert d0 < 0.05
    # far from the law: a distance near 1
    assert sim.ks_distance(np.full((2, 10), 100.0), 0.5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="`lam`"):
        sim.ks_distance(x[None, :], 0.0)
    with pytest.raises(ValueError, match="`eigenvalues`"):
        sim.ks_distance(np.array([[np.nan, 1.0]]), 0.5)


def test_ks_distance_of_simulated_spectrum() -> None:
    """The simulated pooled spectrum is O(1/n) from MP, and rank-deficient samples
    (n_mid < n_out) put the right mass at 0."""
    res = sim.simulate_spectrum(60, 30, n_samples=20, rng=5)
    assert res.ks < 2.0 / 30
    frac_zero = float(np.mean(np.abs(res.eigenvalues) < 1e-4))
    assert frac_zero == pytest.approx(0.5, abs=1e-12)


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_records_export_and_print(tmp_path) -> None:
    s = sim.sample_converged_pfa(10, 30, 8, n_samples=4, rng=0)
    recs = s.to_records()
    assert len(recs) == 4 and recs.columns[-3:] == ["cos", "angle_deg", "norm_ratio"]
    rows = _read_csv(recs.to_csv(tmp_path / "samples.csv"))
    assert [float(r["angle_deg"]) for r in rows] == s.angle_deg.tolist()  # exact round trip
    assert "angle_deg" in str(recs)
    eig = s.eigenvalue_records()
    assert len(eig) == 4 * 10 and eig.columns[-1] == "eigenvalue"
    summary = s.summary()
    assert {r["statistic"] for r in summary} >= {"angle_deg", "eigenvalue_sd", "norm_ratio_sq"}
    summary.to_csv(tmp_path / "summary.csv")

    spec = sim.simulate_spectrum(10, 30, n_samples=6, rng=1)
    srecs = spec.to_records()
    assert srecs.column("statistic") == ["eigenvalue_mean", "second_moment", "eigenvalue_sd",
                                         "ks_distance"]
    assert len(_read_csv(srecs.to_csv(tmp_path / "spectrum.csv"))) == 4
    assert "second_moment" in str(srecs)

    path = sim.simulate_path_alignment(10, 30, n_in=8, n_samples=6, rng=1)
    precs = path.to_records()
    assert "inner_ratio" in precs.column("statistic")
    assert len(_read_csv(precs.to_csv(tmp_path / "path.csv"))) == 5
    assert "samples=" not in repr(path)  # arrays kept out of the repr


def test_simulators_mirror_theory_signatures() -> None:
    """Same parameters as the theory plus n_samples/rng; Estimates out."""
    spec = sim.simulate_spectrum(20, 80, n_samples=16, ensemble="uniform", rng=3,
                                 dtype=torch.float64)
    assert spec.kurtosis == pytest.approx(1.8) and spec.lam == pytest.approx(0.25)
    assert isinstance(spec.second_moment, sim.Estimate) and spec.second_moment.n == 16
    assert spec.eigenvalue_mean.mean == pytest.approx(1.0, abs=5 * spec.eigenvalue_mean.se)
    path = sim.simulate_path_alignment(20, 80, n_in=12, n_samples=16, rng=3,
                                       ensemble="gaussian", method="wishart")
    assert path.samples.method == "wishart" and path.angle_deg.n == 16

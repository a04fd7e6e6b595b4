"""Figure 3: files, reproducibility, and the figure's claim at the paper's protocol."""

import csv

import numpy as np
import pytest

from alignlab.cli import main
from alignlab.reports.figure3 import CSV_COLUMNS, PAPER_RATIOS, Figure3Config, run_figure3

REQUIRED = (
    "ratio, n_mid, eig_mean, eig_sd, angle_mean_deg, angle_sd_deg, norm_ratio_mean, "
    "theory_angle_deg, theory_angle_finite_deg, theory_eig_sd, theory_eig_sd_finite"
).split(", ")

SMOKE = dict(n_samples=8, ratios=(1.0, 3.0, 10.0))


def test_paper_ratios_and_sizes():
    # figure3.md: n_mid = int(100 r) for logspace(0, 2, 11)
    assert Figure3Config().n_mids() == [
        100, 158, 251, 398, 630, 1000, 1584, 2511, 3981, 6309, 10000
    ]
    assert len(PAPER_RATIOS) == 11


def test_smoke_writes_all_files(tmp_path):
    records, check, paths = run_figure3(Figure3Config(**SMOKE), tmp_path)
    for key in ("csv", "png", "pdf", "json"):
        assert paths[key].exists() and paths[key].stat().st_size > 0
    with paths["csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    assert set(REQUIRED) <= set(rows[0]) and list(rows[0]) == list(CSV_COLUMNS)
    assert check.ok, check.summary()


def test_same_seed_same_csv(tmp_path):
    run_figure3(Figure3Config(**SMOKE, seed=7), tmp_path / "a")
    run_figure3(Figure3Config(**SMOKE, seed=7), tmp_path / "b")
    run_figure3(Figure3Config(**SMOKE, seed=8), tmp_path / "c")
    a, b, c = ((tmp_path / d / "figure3.csv").read_bytes() for d in "abc")
    assert a == b
    assert a != c


def test_cli_smoke(tmp_path, capsys):
    code = main(["figure3", "--samples", "4", "--ratios", "1", "10", "--quiet",
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "claim holds" in out and "angle_mean_deg" in out
    assert (tmp_path / "figure3.png").exists()


def test_paper_protocol_matches_theory(tmp_path):
    """figure3.md: at 100 samples the angle mean is within ~0.1 deg of arctan(1/sqrt r) at
    every ratio and the pooled eigenvalue SD within ~1% of the finite-size value."""
    records, check, _ = run_figure3(Figure3Config(), tmp_path)
    assert check.ok, check.summary()
    assert check.max_angle_dev_asymptotic_deg < 0.1
    assert check.max_eig_sd_rel_dev_finite < 0.01
    eig_mean = np.array(records.column("eig_mean"))
    # E[tr M] / n_out = 1 exactly; pooled mean of 10^4 eigenvalues, SE < 1e-3 at r >= 1
    np.testing.assert_allclose(eig_mean, 1.0, atol=5e-3)


@pytest.mark.slow
def test_wishart_and_gaussian_direct_agree_with_theory(tmp_path):
    for method in ("direct", "wishart"):
        cfg = Figure3Config(ensemble="gaussian", method=method, n_samples=50)
        _, check, _ = run_figure3(cfg, tmp_path / method)
        assert check.ok, check.summary()


def test_orthogonal_ensemble_is_pfa_o(tmp_path):
    records, check, _ = run_figure3(
        Figure3Config(ensemble="orthogonal", n_samples=4, ratios=(1.0, 10.0),
                      dtype="float64"), tmp_path)
    np.testing.assert_allclose(records.column("angle_mean_deg"), 0.0, atol=1e-5)
    np.testing.assert_allclose(records.column("eig_sd"), 0.0, atol=1e-10)
    assert check.ok, check.summary()


def test_sparse_theory_uses_the_simulated_density(tmp_path):
    # the finite-size theory must use the kurtosis 3/density of the B actually drawn
    cfg = Figure3Config(ensemble="sparse", density=0.1, n_samples=30, ratios=(1.0, 10.0))
    records, check, _ = run_figure3(cfg, tmp_path)
    assert check.ok, check.summary()
    k4 = 3 / 0.1
    np.testing.assert_allclose(records[1]["theory_eig_sd_finite"],
                               np.sqrt((100 + k4 - 2) / 1000), rtol=1e-12)

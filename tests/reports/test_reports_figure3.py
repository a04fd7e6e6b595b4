"""Figure 3: the claim at the paper's protocol, the check's power against wrong theory,
the theory of every ensemble, validation before any work, and the files."""

import csv
import json

import numpy as np
import pytest
import torch

import alignlab
from alignlab import theory
from alignlab._records import Records
from alignlab.reports import figure3 as f3
from alignlab.reports.figure3 import (
    CSV_COLUMNS,
    OUTPUT_FILES,
    PAPER_RATIOS,
    Z_CHECK,
    Figure3Config,
    check_figure3,
    figure3_records,
    run_figure3,
)

SMOKE = dict(n_samples=8, ratios=(1.0, 3.0, 10.0))


# ---------------------------------------------------------------- the paper's protocol
def test_paper_ratios_and_sizes():
    # figure3.md: n_mid = floor(100 r) for logspace(0, 2, 11)
    assert Figure3Config().n_mids() == [
        100, 158, 251, 398, 630, 1000, 1584, 2511, 3981, 6309, 10000
    ]
    assert len(PAPER_RATIOS) == 11


def test_paper_protocol_matches_theory(paper_records):
    """figure3.md: at 100 samples the angle mean is within ~0.1 deg of arctan(1/sqrt r) at
    every ratio and the pooled eigenvalue SD within ~1% of the finite-size value."""
    assert [row["n_mid"] for row in paper_records] == Figure3Config().n_mids()
    check = check_figure3(paper_records)
    assert check.ok, check.summary()
    assert check.max_angle_dev_asymptotic_deg < 0.1
    assert check.max_eig_sd_rel_dev_finite < 0.01


def test_paper_protocol_eigenvalue_mean_is_one(paper_records):
    # E tr(M) / n_out = 1 exactly. One sample's tr(M)/n_out = |B|_F^2 / n_out has variance
    # (k4 - 1) / (n_out n_mid) (n_out n_mid iid entries of variance 1/n_mid), so the mean
    # over n_samples has SE sqrt((k4 - 1) / (n_out n_mid n_samples)).
    k4 = theory.entry_kurtosis("uniform")
    for row in paper_records:
        se = np.sqrt((k4 - 1) / (100 * row["n_mid"] * row["n_samples"]))
        assert abs(row["eig_mean"] - 1.0) <= Z_CHECK * se, row


def test_paper_theory_columns_are_the_propositions(paper_records):
    r = np.array(paper_records.column("ratio"))
    n_mid = np.array(paper_records.column("n_mid"))
    col = {c: np.array(paper_records.column(c)) for c in CSV_COLUMNS}
    np.testing.assert_allclose(col["theory_angle_deg"], np.degrees(np.arctan(1 / np.sqrt(r))),
                               rtol=1e-13)
    excess = (100 + 9 / 5 - 2) / n_mid
    np.testing.assert_allclose(col["theory_angle_finite_deg"],
                               np.degrees(np.arctan(np.sqrt(excess))), rtol=1e-13)
    np.testing.assert_allclose(col["theory_eig_sd_finite"], np.sqrt(excess), rtol=1e-13)
    np.testing.assert_allclose(col["theory_norm_ratio_finite"], np.sqrt(1 + excess), rtol=1e-13)


def _with_theory(records, **columns):
    """A copy of ``records`` with theory columns replaced (arrays over the rows)."""
    rows = [dict(row, **{k: float(v[i]) for k, v in columns.items()})
            for i, row in enumerate(records)]
    return Records(rows, records.columns)


def _angle_failures(check):
    return [f for f in check.failures if "angle mean" in f]


def _sd_failures(check):
    return [f for f in check.failures if "eigenvalue SD" in f]


def test_check_fails_on_a_shifted_angle_curve(paper_records):
    wrong = np.array(paper_records.column("theory_angle_finite_deg")) + 1.0
    check = check_figure3(_with_theory(paper_records, theory_angle_finite_deg=wrong))
    assert not check.ok
    assert len(_angle_failures(check)) == len(paper_records)  # every ratio
    assert "claim FAILED" in check.summary()


def test_check_fails_on_a_rescaled_ratio(paper_records):
    """The theory evaluated at 1.2 r instead of r (angle 8% too small, SD 9%): wrong at
    every ratio, for the angle and for the spectrum."""
    n_mid = np.floor(1.2 * np.array(paper_records.column("n_mid")))
    k4 = theory.entry_kurtosis("uniform")
    check = check_figure3(_with_theory(
        paper_records,
        theory_angle_finite_deg=theory.path_alignment_angle_finite(100, n_mid, k4),
        theory_eig_sd_finite=theory.eigenvalue_sd_finite(100, n_mid, k4),
    ))
    assert len(_angle_failures(check)) == len(paper_records)
    assert len(_sd_failures(check)) == len(paper_records)


def test_check_fails_on_nan_theory(paper_records):
    nan = np.full(len(paper_records), np.nan)
    check = check_figure3(_with_theory(paper_records, theory_angle_finite_deg=nan))
    assert len(_angle_failures(check)) == len(paper_records)


# ----------------------------------------------------------- the theory of each ensemble
@pytest.mark.parametrize("ratios", [(0.2, 0.5, 0.9), (1.0, 2.0)])
def test_orthogonal_ensemble_theory_is_the_tight_frame_or_pfa_o(ratios):
    """Failure 6: orthogonal B at r < 1 is a tight frame (B^T B = lambda x projection):
    angle arctan(sqrt(1/r - 1)), 45 deg at r = 1/2; at r >= 1 it is PFA-o (0 deg). The
    theory columns used to be hard-coded zeros, so r = 0.5 'failed' its claim."""
    cfg = Figure3Config(ensemble="orthogonal", n_samples=40, ratios=ratios)
    records = figure3_records(cfg)
    check = check_figure3(records, cfg.z, cfg.dtype)
    assert check.ok, check.summary()
    for row in records:
        lam = 100 / row["n_mid"]
        excess = max(lam - 1.0, 0.0)
        assert row["theory_angle_finite_deg"] == pytest.approx(
            np.degrees(np.arctan(np.sqrt(excess))), abs=1e-12)
        assert row["theory_eig_sd_finite"] == pytest.approx(np.sqrt(excess), abs=1e-12)
        assert row["theory_norm_ratio_finite"] == pytest.approx(np.sqrt(max(lam, 1.0)), rel=1e-12)
        # the spectrum is exact (lambda with multiplicity n_mid, else 0): float32 rounding only
        assert row["eig_sd"] == pytest.approx(np.sqrt(excess), abs=1e-5)
    if 0.5 in ratios:
        assert records[1]["theory_angle_finite_deg"] == pytest.approx(45.0, abs=1e-12)


def test_sparse_theory_uses_the_simulated_density():
    # the finite-size theory must use the kurtosis 3/density of the B actually drawn
    cfg = Figure3Config(ensemble="sparse", density=0.1, n_samples=30, ratios=(1.0, 10.0))
    records = figure3_records(cfg)
    check = check_figure3(records, cfg.z, cfg.dtype)
    assert check.ok, check.summary()
    np.testing.assert_allclose(records[1]["theory_eig_sd_finite"],
                               np.sqrt((100 + 30 - 2) / 1000), rtol=1e-12)


@pytest.mark.parametrize("method, n_samples, ratios", [
    ("wishart", 100, (1.0, 10.0, 100.0, 1000.0)),  # B^T B drawn directly: any ratio
    ("direct", 30, (1.0, 10.0)),
])
def test_gaussian_direct_and_wishart_agree_with_theory(method, n_samples, ratios):
    cfg = Figure3Config(ensemble="gaussian", method=method, n_samples=n_samples, ratios=ratios)
    check = check_figure3(figure3_records(cfg), cfg.z, cfg.dtype)
    assert check.ok, check.summary()


# ---------------------------------------------------- validation, before any work starts
@pytest.mark.parametrize("kwargs, name", [
    (dict(n_samples=1), "n_samples"),
    (dict(ratios=()), "ratios"),
    (dict(ratios=(1.0, -2.0)), "ratios"),
    (dict(ensemble="cauchy"), "ensemble"),
    (dict(method="wishart"), "method"),  # uniform B: B^T B is not Wishart
    (dict(density=0.5), "density"),  # failure 9: uniform B has no density
    (dict(ensemble="gaussian", density=0.5), "density"),
    (dict(ensemble="sparse", density=0.0), "density"),
    (dict(device="cuda:99"), "device"),  # failure 8
    (dict(device="no-such-device"), "device"),
    (dict(ratios=(1e9,)), "ratios"),  # failure 3: one sample needs 4e13 bytes
    (dict(n_in=10**12), "n_in"),
])
def test_bad_config_names_the_field(kwargs, name):
    with pytest.raises(ValueError, match=f"^`{name}`"):
        Figure3Config(**kwargs)


def test_memory_refusal_is_against_the_budget(monkeypatch):
    from alignlab.sim.memory import BUDGET_ENV, sample_bytes

    need = sample_bytes(100, 256, 10_000)  # the paper's largest sample, float32
    monkeypatch.setenv(BUDGET_ENV, str(need))
    Figure3Config()  # fits exactly
    monkeypatch.setenv(BUDGET_ENV, str(need - 1))
    with pytest.raises(ValueError, match=r"^`ratios` must be small enough .*got 100\.0\."):
        Figure3Config()


def test_density_default_is_the_ensembles_own():
    from alignlab.sim import get_ensemble

    assert Figure3Config().density is None
    sparse = Figure3Config(ensemble="sparse")
    assert sparse.b_ensemble() == get_ensemble("sparse")
    assert sparse.resolved()["density"] == get_ensemble("sparse").density
    assert Figure3Config().resolved()["density"] is None  # recorded as not applicable


def test_nothing_runs_or_is_created_for_an_unusable_folder(tmp_path, monkeypatch):
    def no_simulation(*args, **kwargs):
        raise AssertionError("the simulation ran before the output folder was checked")

    monkeypatch.setattr(f3, "figure3_records", no_simulation)
    (tmp_path / "file").write_text("keep")
    for out in (tmp_path / "file", tmp_path / "file" / "sub", "/proc/alignlab-figure3"):
        with pytest.raises(ValueError, match="^`out_dir` must be a writable folder"):
            run_figure3(Figure3Config(**SMOKE), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------------------------------------ files
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figure3")
    return out, run_figure3(Figure3Config(**SMOKE), out)


def test_smoke_writes_all_files(smoke_run):
    out, (records, check, paths) = smoke_run
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert list(paths) == ["csv", "png", "pdf", "json"]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    with paths["csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and list(rows[0]) == list(CSV_COLUMNS)
    assert [float(r["angle_mean_deg"]) for r in rows] == records.column("angle_mean_deg")
    assert check.ok, check.summary()


def test_resolved_config_records_the_versions(smoke_run):
    _, (_, _, paths) = smoke_run
    settings = json.loads(paths["json"].read_text())
    assert settings["versions"]["alignlab"] == alignlab.__version__
    assert settings["versions"]["torch"] == torch.__version__
    assert settings["ratios"] == [1.0, 3.0, 10.0] and settings["n_samples"] == 8
    assert settings["density"] is None  # uniform B takes no density
    assert Figure3Config(**{k: (tuple(v) if k == "ratios" else v) for k, v in settings.items()
                            if k != "versions"}) == Figure3Config(**SMOKE)


def test_same_seed_same_csv(tmp_path):
    def csv_bytes(seed, name):
        return figure3_records(Figure3Config(**SMOKE, seed=seed)).to_csv(
            tmp_path / name).read_bytes()

    a, b, c = csv_bytes(7, "a"), csv_bytes(7, "b"), csv_bytes(8, "c")
    assert a == b
    assert a != c


def test_interrupt_while_writing_keeps_the_previous_set(smoke_run, tmp_path, monkeypatch):
    """Failure 2: an interrupt while the PDF is written (after the CSV and PNG) used to
    leave a new CSV beside the old PDF and JSON; now the old set stays, byte for byte."""
    import shutil

    from matplotlib.figure import Figure

    out, _ = smoke_run
    target = tmp_path / "figures"
    shutil.copytree(out, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real_savefig = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        if kwargs.get("format") == "pdf":
            raise KeyboardInterrupt
        return real_savefig(self, fname, *args, **kwargs)

    def tiny_plot(records, config=None):  # the picture does not matter here
        import matplotlib.pyplot as plt

        return plt.subplots(figsize=(1, 1))[0]

    monkeypatch.setattr(Figure, "savefig", savefig)
    monkeypatch.setattr(f3, "plot_figure3", tiny_plot)
    with pytest.raises(KeyboardInterrupt):
        run_figure3(Figure3Config(**SMOKE, seed=1), target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before

"""The ``alignlab theory`` table: the theory functions' values, every column defined for
every r > 0 (failures 5 and 7 of issue 6), no torch."""

import warnings

import numpy as np
import pytest

from alignlab import theory
from alignlab.reports.theory_table import THEORY_COLUMNS, theory_table


def test_paper_values_and_columns():
    table = theory_table([1, 10, 100], n_out=100, ensemble="uniform")
    assert table.columns == list(THEORY_COLUMNS)
    # theory.md: r = 1: 45 deg, ratio sqrt 2; r = 10: 17.548 deg; r = 100: 5.7106 deg
    np.testing.assert_allclose(table.column("angle_deg"),
                               np.degrees(np.arctan(1 / np.sqrt([1, 10, 100]))), rtol=1e-14)
    np.testing.assert_allclose(table.column("norm_ratio"), np.sqrt(1 + 1 / np.array([1, 10, 100])),
                               rtol=1e-14)
    row = table[1]
    assert row["n_mid"] == 1000
    # finite size: m2 = 1 + (n_out + k4 - 2) / n_mid with k4 = 9/5 for uniform entries
    assert row["m2_finite"] == pytest.approx(1 + (100 + 1.8 - 2) / 1000, rel=1e-14)
    assert row["angle_finite_deg"] == pytest.approx(
        np.degrees(np.arctan(np.sqrt((100 + 1.8 - 2) / 1000))), rel=1e-14)
    assert table.column("orthogonal_angle_deg") == [0.0, 0.0, 0.0]


def test_ratio_below_one_has_every_column():
    """Failure 5: r < 1 is valid for iid B; the orthogonal column is the tight frame's
    angle arccos(sqrt r) (no B has orthonormal columns there), 45 deg at r = 1/2."""
    row = theory_table([0.5], n_out=100)[0]
    assert row["orthogonal_angle_deg"] == pytest.approx(45.0, abs=1e-12)
    assert row["angle_deg"] == pytest.approx(np.degrees(np.arctan(np.sqrt(2))), rel=1e-14)
    assert row["n_mid"] == 50
    assert row["eig_sd_finite"] == pytest.approx(np.sqrt((100 + 1.8 - 2) / 50), rel=1e-14)
    row = theory_table([0.2])[0]
    assert row["orthogonal_angle_deg"] == pytest.approx(np.degrees(np.arccos(np.sqrt(0.2))),
                                                        rel=1e-13)


def test_extreme_ratio_is_finite_and_silent():
    """Failure 7: r = 1e18 (n_mid = 10^20, beyond int64) gave NaN columns and a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = theory_table([1e18, 1e-300], n_out=100)
    big, small = table
    assert big["n_mid"] == 10**20
    for row in table:
        assert all(np.isfinite(row[c]) for c in THEORY_COLUMNS if c != "n_mid"), row
    # arctan(1e-9) and the finite-size excess (n_out + k4 - 2) / n_mid, to rounding
    assert big["angle_deg"] == pytest.approx(np.degrees(1e-9), rel=1e-12)
    assert big["angle_finite_deg"] == pytest.approx(np.degrees(np.sqrt(99.8 / 1e20)), rel=1e-12)
    assert small["n_mid"] == 1 and small["angle_deg"] == pytest.approx(90.0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(ratios=[0]), "ratios"),
    (dict(ratios=[]), "ratios"),
    (dict(ratios=[float("inf")]), "ratios"),
    (dict(ratios=[1e-320]), "ratios"),
    (dict(ratios=[1], n_out=0), "n_out"),
    (dict(ratios=[1], ensemble="orthogonal"), "ensemble"),
    (dict(ratios=[1], ensemble="uniform", density=0.5), "density"),
    (dict(ratios=[1], ensemble="sparse", density=1.5), "density"),
])
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=f"^`{name}`"):
        theory_table(**kwargs)


def test_sparse_density_sets_the_kurtosis():
    dense = theory_table([1], ensemble="sparse")[0]  # the ensemble's default density
    sparse = theory_table([1], ensemble="sparse", density=0.1)[0]
    k4_default = theory.entry_kurtosis("sparse")
    assert dense["m2_finite"] == pytest.approx(1 + (100 + k4_default - 2) / 100, rel=1e-14)
    assert sparse["m2_finite"] == pytest.approx(1 + (100 + 30 - 2) / 100, rel=1e-14)

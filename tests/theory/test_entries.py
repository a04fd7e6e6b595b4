"""The one table of entry moments: its values from the laws themselves, the masked rule,
and the package's one default ensemble."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from scipy import integrate, stats

import alignlab.theory as T

EPS = np.finfo(float).eps


def _moments(dist) -> tuple[float, float, float]:
    """(kurtosis, E|b|/sqrt(E b^2), E|b|^3/(E b^2)^1.5) of a scipy distribution, by its own
    moments and quadrature (independent of the table)."""
    m2, m4 = dist.moment(2), dist.moment(4)
    abs1 = dist.expect(abs)
    abs3 = dist.expect(lambda t: abs(t) ** 3)
    return m4 / m2**2, abs1 / math.sqrt(m2), abs3 / m2**1.5


LAWS = {
    "gaussian": stats.norm(scale=0.7),
    "uniform": stats.uniform(loc=-1.3, scale=2.6),
}


@pytest.mark.parametrize("name", sorted(LAWS))
def test_table_matches_the_laws(name: str) -> None:
    kurt, abs_ratio, abs_third = _moments(LAWS[name])
    # scipy's moments are exact (closed form); expect() is QUADPACK, ~1e-12 relative
    assert T.ENTRY_MOMENTS[name].kurtosis == pytest.approx(kurt, rel=64 * EPS)
    assert T.ENTRY_MOMENTS[name].abs_ratio == pytest.approx(abs_ratio, rel=1e-10)
    assert T.ENTRY_MOMENTS[name].abs_third == pytest.approx(abs_third, rel=1e-10)


def test_rademacher_and_masked_rule() -> None:
    assert T.ENTRY_MOMENTS["rademacher"] == T.EntryMoments(1.0, 1.0, 1.0)
    # b = m x with m ~ Bernoulli(d): E b^k = d E x^k, computed here by quadrature of x
    d = 0.3
    x = stats.norm()
    m2, m4 = d * x.moment(2), d * x.moment(4)
    abs1 = d * integrate.quad(lambda t: abs(t) * x.pdf(t), -np.inf, np.inf)[0]
    abs3 = d * integrate.quad(lambda t: abs(t) ** 3 * x.pdf(t), -np.inf, np.inf)[0]
    assert T.entry_kurtosis("sparse", density=d) == pytest.approx(m4 / m2**2, rel=8 * EPS)
    assert T.abs_moment_ratio("sparse", density=d) == pytest.approx(abs1 / math.sqrt(m2),
                                                                   rel=1e-10)
    assert T.entry_moments("sparse", d).abs_third == pytest.approx(abs3 / m2**1.5, rel=1e-10)
    assert T.ENTRY_MOMENTS["sparse"].at(1.0) == T.EntryMoments(
        3.0, math.sqrt(2 / math.pi), 2 * math.sqrt(2 / math.pi))
    assert T.ENTRY_MOMENTS["uniform"].at(0.5) is T.ENTRY_MOMENTS["uniform"]  # not masked


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`ensemble`.*dependent entries"):
        T.entry_moments("orthogonal")
    with pytest.raises(ValueError, match="`w_density`"):
        T.entry_moments("gaussian", 0.5, density_name="w_density")
    with pytest.raises(ValueError, match="`b_ensemble`"):
        T.entry_moments("cauchy", name="b_ensemble")


def test_one_default_ensemble() -> None:
    """The theory's default kurtosis is the default ensemble's (the paper's uniform B),
    which is also the simulators' default (tests/sim: test_one_default_ensemble)."""
    assert T.DEFAULT_ENSEMBLE == "uniform"
    assert T.DEFAULT_KURTOSIS == T.entry_kurtosis(T.DEFAULT_ENSEMBLE) == 9 / 5
    for f in (T.mp_second_moment_finite, T.eigenvalue_sd_finite, T.path_alignment_angle_finite,
              T.path_alignment_cos_finite, T.path_norm_ratio_finite):
        assert inspect.signature(f).parameters["kurtosis"].default == T.DEFAULT_KURTOSIS, f
    assert T.path_alignment_angle_finite(100, 1000) == T.path_alignment_angle_finite(
        100, 1000, 9 / 5)

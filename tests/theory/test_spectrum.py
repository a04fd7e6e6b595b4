"""Proposition 2: the Marchenko-Pastur distribution and the finite-size moments."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from alignlab.theory import (
    eigenvalue_sd,
    eigenvalue_sd_finite,
    entry_kurtosis,
    marchenko_pastur,
    mp_edges,
    mp_second_moment_finite,
    narayana_moment,
)

EPS = np.finfo(float).eps
Z = 5.0  # z for statistical checks: two-sided false-alarm probability 6e-7 per check

# registry of shape parameters for the generic battery: small, below, at, above 1 (atom)
LAMS = [0.01, 0.1, 0.5, 1.0, 2.0, 10.0]
lams = st.floats(0.01, 100.0)


def cdf_rounding_bound(lam: float) -> float:
    """Absolute rounding bound of the closed-form CDF.

    F = atom + I / (2 pi lam), I = sqrt(R) + (1 + lam) T1 - |1 - lam| T2 with T1, T2 in
    [0, pi] and sqrt(R) <= (l+ - l-)/2 = 2 sqrt(lam); each term carries a few (<= 8) ulps.
    """
    terms = 2 * np.sqrt(lam) + (1 + lam) * np.pi + abs(1 - lam) * np.pi
    return 8 * EPS * terms / (2 * np.pi * lam) + 2 * EPS


def density(x, lam):
    """The spec's formula, transcribed independently of the package (scalar x in (l-, l+))."""
    a, b = (1 - np.sqrt(lam)) ** 2, (1 + np.sqrt(lam)) ** 2
    return np.sqrt((b - x) * (x - a)) / (2 * np.pi * lam * x)


def quad_density(lam, lo, hi, power=0):
    """int_lo^hi x^power p(x) dx by quad, over [lo, hi] clipped to [l-, l+].

    Substituting x = l- + u^2 (dx = 2u du, sqrt(x - l-) = u):

        x^power p(x) dx = x^(power - 1) u^2 sqrt(w - u^2) / (pi lam) du,  w = l+ - l-,

    bounded and smooth for every lam (also lam = 1, where p ~ x^(-1/2) at 0, and lam near 1,
    where 1/x varies on the tiny scale l-); the sqrt(sqrt(w) - u) at the upper edge goes into
    QUADPACK's 'alg' weight. Returns (value, QUADPACK's error estimate).
    """
    a, b = (1 - np.sqrt(lam)) ** 2, (1 + np.sqrt(lam)) ** 2
    lo, hi = max(lo, a), min(hi, b)
    if hi <= lo:
        return 0.0, 0.0
    w = b - a
    u_lo, u_hi, top = np.sqrt(lo - a), np.sqrt(hi - a), np.sqrt(w)
    at_top = hi == b

    def f(u, weighted=False):  # weighted: sqrt(top - u) is left to QUADPACK's weight
        x = a + u * u
        edge = np.sqrt(top + u) if weighted else np.sqrt(w - u * u)
        ratio = u * u / x if x > 0 else 1.0  # x = 0 only when l- = 0: the limit u^2/u^2
        return x**power * ratio * edge / (np.pi * lam)

    # u^2 / (l- + u^2) rises on the scale sqrt(l-) near u = 0 (tiny when lam is near 1):
    # geometric breakpoints toward the lower end let QUADPACK resolve every scale
    u_mid = 0.5 * (u_lo + u_hi) if at_top else u_hi
    breaks = sorted({u_lo + (u_mid - u_lo) * 4.0**-j for j in range(1, 40)} - {u_lo})
    value, err = integrate.quad(f, u_lo, u_mid, points=breaks, limit=400)
    if at_top:
        v2, e2 = integrate.quad(
            f, u_mid, u_hi, args=(True,), weight="alg", wvar=(0.0, 0.5), limit=200
        )
        value, err = value + v2, err + e2
    return value, err


# --- density, CDF, quantiles ----------------------------------------------------------------


@given(lam=lams, frac=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True))
def test_pdf_matches_formula(lam, frac):
    a, b = mp_edges(lam)
    x = float(a + frac * (b - a))
    dens = density(x, lam)
    # a few roundings per evaluation, plus the edges: l-+ carry an ulp (<= eps b), which moves
    # x - l- and l+ - x by that much: relatively eps b / (x - l-) under the square root (halved),
    # and never more than sqrt(2 eps b) in absolute terms inside it
    with np.errstate(divide="ignore", over="ignore"):
        absolute = np.sqrt((b - a) * 2 * EPS * b) / (2 * np.pi * lam * x)
        if x - a > 0 and b - x > 0:
            rel = 16 * EPS + EPS * b / (x - a) + EPS * b / (b - x)
            absolute = min(dens * rel, absolute)
    tol = absolute
    assert marchenko_pastur.pdf(x, lam) == pytest.approx(dens, rel=0, abs=tol)


@given(lam=lams)
def test_pdf_mass(lam):
    mass, err = quad_density(lam, 0.0, np.inf)
    # QUADPACK's error estimate, plus rounding of a sum of O(1) terms
    assert mass == pytest.approx(min(1.0, 1.0 / lam), abs=err + 16 * EPS)
    atom = marchenko_pastur.cdf(0.0, lam)
    assert atom + mass == pytest.approx(1.0, abs=err + 16 * EPS)


@given(lam=lams, frac=st.floats(0.0, 1.0))
def test_cdf_matches_integrated_pdf(lam, frac):
    a, b = mp_edges(lam)
    x = a + frac * (b - a)
    value, err = quad_density(lam, float(a), float(x))
    atom = max(0.0, 1.0 - 1.0 / lam)
    cdf = marchenko_pastur.cdf(x, lam)
    assert cdf == pytest.approx(atom + value, abs=err + cdf_rounding_bound(lam))


@given(lam=lams)
def test_cdf_monotone_and_sf(lam):
    a, b = mp_edges(lam)
    x = np.linspace(-0.5, b + 0.5, 2001)
    F = marchenko_pastur.cdf(x, lam)
    tol = cdf_rounding_bound(lam)
    assert np.all(np.diff(F) >= -2 * tol)  # monotone up to the CDF's own rounding
    assert np.all((F >= 0) & (F <= 1))
    np.testing.assert_allclose(marchenko_pastur.sf(x, lam), 1 - F, rtol=0, atol=2 * tol)


@given(lam=lams, q=st.floats(1e-9, 1 - 1e-9))
def test_ppf_inverts_cdf(lam, q):
    x = marchenko_pastur.ppf(q, lam)
    atom = max(0.0, 1.0 - 1.0 / lam)
    if q <= atom:
        assert x == 0.0
        return
    # Chandrupatla stops at |x - root| <= 4 eps |x| + 4 tiny; over that interval the CDF moves
    # by <= sup(pdf) * dx. The density is unimodal, so on so short an interval its sup is at
    # an end or at the mode (where it is flat). Plus the CDF's own rounding.
    dx = 4 * EPS * abs(x) + 4 * np.finfo(float).tiny
    sup_pdf = np.max(marchenko_pastur.pdf(np.array([x - dx, x, x + dx]), lam))
    tol = sup_pdf * dx + 2 * cdf_rounding_bound(lam)
    assert marchenko_pastur.cdf(x, lam) == pytest.approx(q, abs=tol)


@given(lam=lams, frac=st.floats(0.01, 0.99))
def test_ppf_of_cdf(lam, frac):
    a, b = mp_edges(lam)
    x = float(a + frac * (b - a))
    # conditioning: dx = dF / pdf(x), with dF the CDF rounding; plus the root tolerance
    tol = cdf_rounding_bound(lam) / marchenko_pastur.pdf(x, lam) + 8 * EPS * x
    assert marchenko_pastur.ppf(marchenko_pastur.cdf(x, lam), lam) == pytest.approx(x, abs=tol)


# --- moments ------------------------------------------------------------------------------


@pytest.mark.parametrize("lam", LAMS)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_moments_by_quadrature_match_narayana(lam, k):
    value, err = quad_density(lam, 0.0, np.inf, power=k)  # the atom adds 0 for k >= 1
    m_k = narayana_moment(k, lam)
    assert value == pytest.approx(m_k, abs=err + 16 * EPS * m_k)
    assert marchenko_pastur.moment(k, lam) == m_k


def test_narayana_first_values():
    lam = np.array([0.1, 1.0, 3.0])
    np.testing.assert_array_equal(narayana_moment(0, lam), 1.0)
    np.testing.assert_array_equal(narayana_moment(1, lam), 1.0)
    np.testing.assert_allclose(narayana_moment(2, lam), 1 + lam, rtol=2 * EPS)
    np.testing.assert_allclose(narayana_moment(3, lam), 1 + 3 * lam + lam**2, rtol=4 * EPS)
    np.testing.assert_allclose(
        narayana_moment(4, lam), 1 + 6 * lam + 6 * lam**2 + lam**3, rtol=8 * EPS
    )


@given(lam=lams)
def test_stats(lam):
    d = marchenko_pastur(lam)
    m, v, s, k = d.stats("mvsk")
    assert m == 1.0 and v == lam
    assert s == pytest.approx(np.sqrt(lam), rel=EPS) and k == pytest.approx(lam - 1, abs=EPS)
    # the same from the raw moments; rounding bound from the size of the cancelling terms
    m1, m2, m3, m4 = (d.moment(j) for j in (1, 2, 3, 4))
    terms3 = [m3, 3 * m1 * m2, 2 * m1**3]
    terms4 = [m4, 4 * m1 * m3, 6 * m1**2 * m2, 3 * m1**4]
    mu3 = m3 - 3 * m1 * m2 + 2 * m1**3
    mu4 = m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4
    assert mu3 == pytest.approx(lam**2, abs=8 * EPS * sum(terms3))
    assert mu4 == pytest.approx(2 * lam**2 + lam**3, abs=8 * EPS * sum(terms4))
    assert d.mean() == 1.0 and d.var() == lam and d.std() == pytest.approx(np.sqrt(lam))


@pytest.mark.parametrize("lam", LAMS)
def test_rvs_mean_fraction_and_dkw(lam):
    n = 20_000
    x = marchenko_pastur.rvs(lam, size=n, random_state=np.random.default_rng(12))
    # sample mean: sd sqrt(lam / n) (variance lam)
    assert abs(x.mean() - 1.0) <= Z * np.sqrt(lam / n)
    # zeros are the atom: binomial fraction with p = 1 - 1/lam
    p = max(0.0, 1.0 - 1.0 / lam)
    assert abs(np.mean(x == 0.0) - p) <= Z * np.sqrt(p * (1 - p) / n) + 1e-300
    # Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > e) <= 2 exp(-2 n e^2); e for 1e-6
    # (valid with the atom too). sup |F_n - F| is reached at a sample value u, comparing
    # F_n(u) with F(u) or the left limits F_n(u-) with F(u-) (F(0-) = 0 at the atom).
    xs = np.sort(x)
    u = np.unique(xs)
    F = marchenko_pastur.cdf(u, lam)
    F_left = np.where(u == 0.0, 0.0, F)
    ecdf = np.searchsorted(xs, u, side="right") / n
    ecdf_left = np.searchsorted(xs, u, side="left") / n
    ks = max(np.max(np.abs(ecdf - F)), np.max(np.abs(ecdf_left - F_left)))
    assert ks <= np.sqrt(np.log(2 / 1e-6) / (2 * n))


# --- the generic battery (after scipy's test_continuous_basic) ------------------------------


@pytest.mark.parametrize("lam", LAMS)
class TestBattery:
    def test_support_and_edges(self, lam):
        a, b = mp_edges(lam)
        lo, hi = marchenko_pastur.support(lam)
        assert hi == b
        assert lo == (a if lam <= 1 else np.nextafter(0.0, -1.0))
        assert marchenko_pastur.cdf(lo - 1.0, lam) == 0.0
        assert marchenko_pastur.cdf(b, lam) == 1.0 and marchenko_pastur.cdf(b + 1, lam) == 1.0
        assert marchenko_pastur.sf(b, lam) == 0.0 and marchenko_pastur.sf(lo - 1.0, lam) == 1.0
        assert marchenko_pastur.ppf(0.0, lam) == lo and marchenko_pastur.ppf(1.0, lam) == b
        assert marchenko_pastur.isf(0.0, lam) == b and marchenko_pastur.isf(1.0, lam) == lo
        outside = np.array([-1.0, b + 1e-9, b + 1.0])
        assert np.all(marchenko_pastur.pdf(outside, lam) == 0.0)
        inside = np.linspace(a, b, 101)[1:-1]
        assert np.all(marchenko_pastur.pdf(inside, lam) > 0.0)

    def test_atom_at_zero(self, lam):
        atom = max(0.0, 1.0 - 1.0 / lam)
        below = -1e-300  # cdf(0-)
        assert marchenko_pastur.cdf(below, lam) == 0.0
        assert marchenko_pastur.cdf(0.0, lam) == pytest.approx(atom, abs=EPS)
        assert marchenko_pastur.sf(0.0, lam) == pytest.approx(1.0 - atom, abs=EPS)
        if lam > 1:
            a, _ = mp_edges(lam)
            gap = np.linspace(0.0, a, 5)[:-1]  # no mass strictly between 0 and l-
            np.testing.assert_allclose(marchenko_pastur.cdf(gap, lam), atom, rtol=0, atol=EPS)
            assert marchenko_pastur.pdf(0.0, lam) == 0.0  # pdf is the continuous part
            assert marchenko_pastur.ppf(atom / 2, lam) == 0.0
            assert marchenko_pastur.median(lam) == marchenko_pastur.ppf(0.5, lam)
        if lam == 1.0:
            assert marchenko_pastur.pdf(0.0, lam) == np.inf

    def test_logs_sf_isf_interval(self, lam):
        a, b = mp_edges(lam)
        x = np.linspace(a, b, 9)[1:-1]
        tol = cdf_rounding_bound(lam)
        np.testing.assert_allclose(
            np.exp(marchenko_pastur.logcdf(x, lam)), marchenko_pastur.cdf(x, lam), rtol=4 * EPS
        )
        np.testing.assert_allclose(
            np.exp(marchenko_pastur.logsf(x, lam)), marchenko_pastur.sf(x, lam), rtol=4 * EPS
        )
        q = np.array([0.05, 0.3, 0.7, 0.95])
        q = q[1 - q > max(0.0, 1.0 - 1.0 / lam)]  # ppf(1 - q) off the atom
        # isf(q) = ppf(1 - q) up to the root tolerance, magnified by 1/pdf at that point
        isf = marchenko_pastur.isf(q, lam)
        ppf = marchenko_pastur.ppf(1 - q, lam)
        np.testing.assert_allclose(
            isf, ppf, rtol=0, atol=np.max(tol / marchenko_pastur.pdf(ppf, lam) + 8 * EPS * ppf)
        )
        lo, hi = marchenko_pastur.interval(0.9, lam)
        assert lo == marchenko_pastur.ppf((1 - 0.9) / 2, lam)
        assert hi == marchenko_pastur.ppf((1 + 0.9) / 2, lam)

    def test_expect_matches_moments(self, lam):
        # expect integrates x^k against the continuous part; x^k vanishes on the atom.
        # quad's requested tolerance is the bound (QAGS meets it on these sqrt endpoints)
        epsrel = 1e-10
        a, b = mp_edges(lam)  # the continuous part; expect would integrate over the gap too
        for k in (1, 2, 3):
            m_k = marchenko_pastur.moment(k, lam)
            value = marchenko_pastur.expect(
                lambda x, k=k: x**k, args=(lam,), lb=a, ub=b, epsabs=0, epsrel=epsrel
            )
            assert value == pytest.approx(m_k, rel=epsrel)

    def test_vectorised_over_lam(self, lam):
        x = np.array([0.0, 0.5, 1.0, 2.0, 5.0])
        lam_arr = np.array([lam, 2 * lam])
        out = marchenko_pastur.cdf(x[:, None], lam_arr)
        assert out.shape == (5, 2)
        for j, lj in enumerate(lam_arr):
            np.testing.assert_array_equal(out[:, j], marchenko_pastur.cdf(x, lj))

    def test_rvs_reproducible_shape_and_frozen_pickle(self, lam):
        r1 = marchenko_pastur.rvs(lam, size=(3, 4), random_state=7)
        r2 = marchenko_pastur(lam).rvs(size=(3, 4), random_state=7)
        assert r1.shape == (3, 4)
        np.testing.assert_array_equal(r1, r2)
        frozen = pickle.loads(pickle.dumps(marchenko_pastur(lam)))
        assert frozen.cdf(1.0) == marchenko_pastur.cdf(1.0, lam)

    def test_invalid_lam_is_nan(self, lam):
        # scipy.stats convention for a bad shape parameter
        assert np.isnan(marchenko_pastur.cdf(1.0, -lam))
        assert np.isnan(marchenko_pastur.pdf(1.0, 0.0))


# --- finite size ------------------------------------------------------------------------------


def test_entry_kurtosis_values():
    assert entry_kurtosis("gaussian") == 3.0
    assert entry_kurtosis("uniform") == 9 / 5
    assert entry_kurtosis("rademacher") == 1.0
    assert entry_kurtosis("sparse", density=0.25) == 12.0
    with pytest.raises(ValueError, match="not iid|dependent entries"):
        entry_kurtosis("orthogonal")


def _sample_entries(rng, ensemble, shape, density=1.0):
    """iid entries of variance 1 (rescaling cancels in the kurtosis and in m2 / n_mid)."""
    if ensemble == "gaussian":
        return rng.standard_normal(shape)
    if ensemble == "uniform":
        return rng.uniform(-np.sqrt(3), np.sqrt(3), shape)
    if ensemble == "rademacher":
        return rng.choice([-1.0, 1.0], shape)
    if ensemble == "sparse":
        return (rng.random(shape) < density) * rng.standard_normal(shape) / np.sqrt(density)
    raise AssertionError(ensemble)


@pytest.mark.parametrize(
    ("ensemble", "density"),
    [("gaussian", 1.0), ("uniform", 1.0), ("rademacher", 1.0), ("sparse", 0.3)],
)
def test_second_moment_finite_monte_carlo(ensemble, density):
    """E[tr M^2]/n_out = 1 + (n_out + k4 - 2)/n_mid, for iid B of variance 1/n_mid."""
    rng = np.random.default_rng(3)
    n_samples, n_out, n_mid = 40_000, 4, 6
    B = _sample_entries(rng, ensemble, (n_samples, n_mid, n_out), density) / np.sqrt(n_mid)
    M = np.einsum("sko,skp->sop", B, B)  # (n_samples, n_out, n_out)
    m2 = np.einsum("sop,spo->s", M, M) / n_out  # tr M^2 / n_out per sample
    k4 = entry_kurtosis(ensemble, density)
    se = m2.std(ddof=1) / np.sqrt(n_samples)
    assert abs(m2.mean() - mp_second_moment_finite(n_out, n_mid, k4)) <= Z * se
    # and the entry kurtosis itself: sample E b^4 (E b^2 = 1 exactly by construction)
    b = _sample_entries(rng, ensemble, 400_000, density)
    se4 = (b**4).std(ddof=1) / np.sqrt(b.size)
    assert abs(np.mean(b**4) - k4) <= Z * se4  # population E b^2 = 1, so E b^4 = k4


def test_finite_size_functions():
    n_out, n_mid = 100, np.array([100, 1000, 10000])
    m2 = mp_second_moment_finite(n_out, n_mid, 9 / 5)
    np.testing.assert_allclose(m2, 1 + (100 + 9 / 5 - 2) / n_mid, rtol=2 * EPS)
    # sqrt(m2 - 1), formed from (n_out + k4 - 2) / n_mid without subtracting 1
    np.testing.assert_allclose(
        eigenvalue_sd_finite(n_out, n_mid, 9 / 5), np.sqrt((100 + 9 / 5 - 2) / n_mid), rtol=4 * EPS
    )
    # the limit: m2 -> 1 + lam, sd -> 1/sqrt(r); the gap is (k4 - 2)/n_mid exactly
    r = n_mid / n_out
    # (a difference of O(1) numbers: a few ulps of 1 absolute)
    np.testing.assert_allclose(m2 - (1 + 1 / r), (9 / 5 - 2) / n_mid, rtol=0, atol=4 * EPS)
    np.testing.assert_allclose(eigenvalue_sd(r), 1 / np.sqrt(r), rtol=EPS)
    assert mp_second_moment_finite(1, 7, 1.0) == 1.0  # one Rademacher column: M = 1

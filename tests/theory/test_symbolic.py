"""The numeric closed forms equal the sympy derivations in alignlab.theory.symbolic."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from alignlab.theory import (  # noqa: E402
    decay_factor,
    marchenko_pastur,
    mp_edges,
    mp_second_moment_finite,
    narayana_moment,
    symbolic,
)

EPS = np.finfo(float).eps
DIGITS = 40  # evaluate the symbolic side to 40 digits: it is exact next to float64
SYMBOLIC_ZERO = 1e-30  # a 40-digit evaluation of an exact zero is far below this (O(1e-40))


def _exact(value: float) -> sp.Rational:
    """The float's exact binary value, so both sides see the same input."""
    return sp.Rational(value)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_mp_moments_by_integration_are_narayana(k):
    assert sp.expand(symbolic.mp_moment(k) - symbolic.narayana_polynomial(k)) == 0


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("lam", [0.01, 0.3, 1.0, 2.5, 40.0])
def test_narayana_numeric_equals_symbolic(k, lam):
    exact = float(symbolic.narayana_polynomial(k).subs(symbolic.lam, _exact(lam)).evalf(DIGITS))
    # Horner on k positive-coefficient terms at lam > 0: relative error <= 2 k eps
    assert narayana_moment(k, lam) == pytest.approx(exact, rel=2 * max(k, 1) * EPS)
    if k >= 1:
        assert marchenko_pastur.moment(k, lam) == pytest.approx(exact, rel=2 * k * EPS)


def test_finite_size_moments():
    n_out, n_mid, k4 = symbolic.n_out, symbolic.n_mid, symbolic.k4
    assert sp.simplify(symbolic.finite_moment("M_ii") - 1) == 0
    assert sp.simplify(symbolic.finite_moment("M2_ij")) == 0
    m2 = symbolic.finite_moment("M2_ii")
    assert sp.simplify(m2 - (1 + (n_out + k4 - 2) / n_mid)) == 0
    f = sp.lambdify((n_out, n_mid, k4), m2, "numpy")
    for args in [(1, 1, 1.0), (100, 158, 9 / 5), (7, 3, 3.0), (50, 5000, 12.0)]:
        # two roundings in each evaluation
        assert mp_second_moment_finite(*args) == pytest.approx(f(*args), rel=4 * EPS)


def test_mp_cdf_antiderivative():
    lam_s, x_s = symbolic.lam, symbolic.x
    for lam, branch in [(0.3, "lam<1"), (4.0, "lam>1")]:
        I_expr = symbolic.mp_cdf_antiderivative(branch)
        integrand = sp.sqrt(((1 + sp.sqrt(lam_s)) ** 2 - x_s) * (x_s - (1 - sp.sqrt(lam_s)) ** 2))
        deriv_gap = sp.diff(I_expr, x_s) - integrand / x_s
        a, b = (float(v) for v in mp_edges(lam))
        atom = max(0.0, 1 - 1 / lam)
        for frac in (0.1, 0.5, 0.9):
            x = a + frac * (b - a)
            at = {lam_s: _exact(lam), x_s: _exact(x)}
            # I' = sqrt(R)/x to 40 digits
            assert abs(float(deriv_gap.subs(at).evalf(DIGITS))) <= SYMBOLIC_ZERO
            # the numeric cdf is atom + I/(2 pi lam); rounding bound as in the MP tests
            exact = float((I_expr / (2 * sp.pi * lam_s)).subs(at).evalf(DIGITS)) + atom
            terms = 2 * np.sqrt(lam) + (1 + lam) * np.pi + abs(1 - lam) * np.pi
            tol = 8 * EPS * terms / (2 * np.pi * lam) + 2 * EPS
            assert marchenko_pastur.cdf(x, lam) == pytest.approx(exact, abs=tol)
        # I(l-) = 0 and I(l+) = 2 pi min(lam, 1)
        s = sp.sqrt(_exact(lam))
        for edge, target in [((1 - s) ** 2, 0), ((1 + s) ** 2, 2 * sp.pi * min(_exact(lam), 1))]:
            value = I_expr.subs({lam_s: _exact(lam), x_s: edge})
            assert abs(complex(sp.N(value - target, DIGITS))) <= SYMBOLIC_ZERO


def test_pfa_cancellation():
    lhs, rhs = symbolic.pfa_difference_update()
    # data term B G cancels: D' - (1 - eta kappa) D is the zero matrix
    assert isinstance(sp.expand(lhs - rhs), sp.ZeroMatrix)
    assert sp.expand(lhs) == sp.expand(rhs)


def test_momentum_recursion():
    z = sp.Symbol("z")
    eta, kappa, mu = symbolic.eta, symbolic.kappa, symbolic.mu
    poly = symbolic.momentum_characteristic_polynomial(z)
    assert sp.expand(poly - (z**2 - (1 + mu - eta * kappa) * z + mu)) == 0


@pytest.mark.parametrize(
    ("lr", "wd", "mu"),
    [
        (0.1, 0.01, 0.9),  # real roots, slow decay
        (0.5, 1.0, 0.5),  # complex roots
        (1.0, 2.5, 0.6),  # complex, oscillating with a < 0
        (0.05, 0.3, 0.0),  # plain SGD (mu = 0: z2 = 0)
    ],
)
def test_momentum_closed_form_matches_numeric(lr, wd, mu):
    expr = symbolic.momentum_decay_closed_form()
    sub = {symbolic.eta: _exact(lr), symbolic.kappa: _exact(wd), symbolic.mu: _exact(mu)}
    expr = expr.subs(sub)
    steps = np.array([0, 1, 2, 3, 10, 50, 200])
    exact = np.array([complex(sp.N(expr.subs(symbolic.t, int(s)), DIGITS)) for s in steps])
    assert np.all(np.abs(exact.imag) <= SYMBOLIC_ZERO)  # complex roots still give a real c_t
    got = decay_factor(steps, lr, wd, mu)
    # the recursion's rounding bound (tests/theory/test_decay.py::recursion_tol) at each t,
    # plus lr*wd's own rounding moving c_t by <= t |c'| eps with |c'| <= T/(1 - mu) max|c|
    T = steps.max()
    cmax = max(1.0, float(np.max(np.abs(exact.real))))
    tol = 16 * EPS * (T + 1) ** 2 * cmax + T**2 / (1 - mu) * EPS * cmax
    np.testing.assert_allclose(got, exact.real, rtol=0, atol=tol)

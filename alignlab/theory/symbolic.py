r"""Symbolic (sympy) derivations behind Propositions 1 and 2.

Each function derives a result from first principles, so a test can check the numeric
closed forms of :mod:`alignlab.theory` against it:

* :func:`mp_moment`: Marchenko-Pastur moments by integrating :math:`x^k p(x)`;
  :func:`narayana_polynomial` is the formula they must equal.
* :func:`mp_cdf_antiderivative`: the closed-form CDF used by ``marchenko_pastur``.
* :func:`finite_moment`: exact finite-size ``E[M]`` and ``E[M^2]`` entries of
  ``M = B^T B`` by summing entry moments over index patterns.
* :func:`pfa_difference_update`, :func:`momentum_transition`,
  :func:`momentum_decay_closed_form`: Proposition 1's cancellation and recursion.

Import cost: sympy (about half a second), which is why ``alignlab.theory`` loads this
module lazily.
"""

from __future__ import annotations

from collections import Counter
from itertools import product

import sympy as sp
from sympy.utilities.iterables import multiset_partitions

__all__ = [
    "eta",
    "finite_moment",
    "k4",
    "kappa",
    "lam",
    "momentum_characteristic_polynomial",
    "momentum_decay_closed_form",
    "momentum_transition",
    "mp_cdf_antiderivative",
    "mp_moment",
    "mu",
    "n_mid",
    "n_out",
    "narayana_polynomial",
    "pfa_difference_update",
    "t",
    "x",
]

lam = sp.Symbol("lam", positive=True)
x = sp.Symbol("x", positive=True)
n_out = sp.Symbol("n_out", positive=True, integer=True)
n_mid = sp.Symbol("n_mid", positive=True, integer=True)
k4 = sp.Symbol("k4", positive=True)
eta = sp.Symbol("eta", nonnegative=True)
kappa = sp.Symbol("kappa", nonnegative=True)
mu = sp.Symbol("mu", nonnegative=True)
t = sp.Symbol("t", integer=True, nonnegative=True)


# --- Proposition 2: Marchenko-Pastur -------------------------------------------------------


def narayana_polynomial(k: int) -> sp.Expr:
    r"""Narayana polynomial :math:`\sum_{j=1}^k \frac1k\binom kj\binom k{j-1}\lambda^{j-1}`."""
    if k == 0:
        return sp.Integer(1)
    return sp.expand(
        sum(sp.binomial(k, j) * sp.binomial(k, j - 1) * lam ** (j - 1) for j in range(1, k + 1)) / k
    )


def mp_moment(k: int) -> sp.Expr:
    r"""``k``-th Marchenko-Pastur moment (``k >= 1``) by integrating against the density.

    The atom at 0 contributes nothing for ``k >= 1``. Substituting
    :math:`x = 1 + \lambda + 2\sqrt\lambda\cos\theta` (which maps :math:`[0, \pi]` onto
    :math:`[\ell_-, \ell_+]`) gives :math:`\sqrt{(\ell_+ - x)(x - \ell_-)} =
    2\sqrt\lambda\sin\theta` and :math:`dx = -2\sqrt\lambda\sin\theta\, d\theta`, so

    .. math::

        \int x^k p(x)\,dx = \frac{2}{\pi}\int_0^\pi
        (1 + \lambda + 2\sqrt\lambda\cos\theta)^{k-1}\sin^2\theta\, d\theta,

    a trigonometric polynomial that sympy integrates term by term.
    """
    if k < 1:
        raise ValueError(f"`k` must be an integer >= 1, got {k!r}.")
    theta = sp.Symbol("theta", real=True)
    s = sp.Symbol("s", positive=True)  # sqrt(lam)
    integrand = sp.expand((1 + s**2 + 2 * s * sp.cos(theta)) ** (k - 1) * sp.sin(theta) ** 2)
    value = 2 / sp.pi * sp.integrate(integrand, (theta, 0, sp.pi))
    return sp.expand(value.subs(s, sp.sqrt(lam)))


def mp_cdf_antiderivative(branch: str = "lam<1") -> sp.Expr:
    r"""``I(x)`` with :math:`I' = \sqrt{(\ell_+ - x)(x - \ell_-)}/x` and :math:`I(\ell_-) = 0`.

    From :math:`\sqrt R/x = (\sqrt R)' + \frac{\ell_+ + \ell_-}{2}\frac{1}{\sqrt R}
    - \frac{\ell_+\ell_-}{x\sqrt R}` with :math:`R = (\ell_+ - x)(x - \ell_-)`:

    .. math::

        I(x) = \sqrt R + (1 + \lambda)\Big(\arcsin u + \frac\pi2\Big)
        - |1 - \lambda|\Big(\arcsin v + \frac\pi2\Big),

    :math:`u = \frac{x - 1 - \lambda}{2\sqrt\lambda}`,
    :math:`v = \frac{(1+\lambda)x - (1-\lambda)^2}{2\sqrt\lambda\,x}`. The CDF of the
    continuous part is :math:`I(x)/(2\pi\lambda)`; :math:`I(\ell_+) = 2\pi\min(\lambda, 1)`.

    Parameters
    ----------
    branch : {'lam<1', 'lam>1'}
        Which sign :math:`|1 - \lambda|` takes.
    """
    if branch not in ("lam<1", "lam>1"):
        raise ValueError(f"`branch` must be one of 'lam<1', 'lam>1'; got {branch!r}.")
    s = sp.sqrt(lam)
    a, b = (1 - s) ** 2, (1 + s) ** 2
    u = (x - 1 - lam) / (2 * s)
    v = ((1 + lam) * x - (1 - lam) ** 2) / (2 * s * x)
    abs_1ml = (1 - lam) if branch == "lam<1" else (lam - 1)
    return (
        sp.sqrt((b - x) * (x - a))
        + (1 + lam) * (sp.asin(u) + sp.pi / 2)
        - abs_1ml * (sp.asin(v) + sp.pi / 2)
    )


def _entry_moment(order: int) -> sp.Expr:
    """``E b^order`` for a zero-mean entry with ``E b^2 = 1/n_mid``, ``E b^4 = k4/n_mid^2``."""
    if order % 2 == 1:
        return sp.Integer(0)
    if order == 2:
        return 1 / n_mid
    if order == 4:
        return k4 / n_mid**2
    raise ValueError(f"entry moments above the 4th are not modelled, got order {order}.")


def _falling(n: sp.Expr, m: int) -> sp.Expr:
    return sp.Mul(*[n - i for i in range(m)])


def _expectation_sum(
    factors: list[tuple[str, str]], rows: list[str], cols: list[str], fixed: list[str]
) -> sp.Expr:
    r"""``sum over free indices of E[prod B[row, col]]`` for iid zero-mean entries.

    Row indices range over ``n_mid`` values, column indices over ``n_out``; the ``fixed``
    column indices hold distinct given values. The sum runs over every pattern of equalities
    among the indices (set partitions), each weighted by how many index tuples have it.
    """
    free_cols = [c for c in cols if c not in fixed]
    total = sp.Integer(0)
    for row_part in multiset_partitions(rows) if rows else [[]]:
        for col_part in multiset_partitions(free_cols) if free_cols else [[]]:
            # each block of free columns is new or equals one fixed column
            for attach in product([None, *fixed], repeat=len(col_part)):
                used = [f for f in attach if f is not None]
                if len(used) != len(set(used)):
                    continue
                label = {}
                for bi, block in enumerate(row_part):
                    label.update({r: f"r{bi}" for r in block})
                for f in fixed:
                    label[f] = f
                new = 0
                for block, f in zip(col_part, attach, strict=True):
                    tag = f if f is not None else f"c{new}"
                    new += f is None
                    label.update({c: tag for c in block})
                count = _falling(n_mid, len(row_part)) * _falling(n_out - len(fixed), new)
                mults = Counter((label[r], label[c]) for r, c in factors)
                total += count * sp.Mul(*[_entry_moment(m) for m in mults.values()])
    return sp.simplify(total)


def finite_moment(which: str) -> sp.Expr:
    r"""Exact finite-size entries of ``E[M]`` and ``E[M^2]``, ``M = B^T B`` (Prop. 2).

    ``B`` is ``(n_mid, n_out)`` with iid zero-mean entries, :math:`E b^2 = 1/n_{mid}`,
    :math:`E b^4 = k_4/n_{mid}^2`. Writing
    :math:`(M^2)_{ii'} = \sum_{j,k,l} B_{ki} B_{kj} B_{lj} B_{li'}` and summing the entry
    moments over every equality pattern of ``(j, k, l)``:

    .. math::

        E[M_{ii}] = 1,\qquad E[(M^2)_{ii}] = 1 + \frac{n_{out} + k_4 - 2}{n_{mid}},
        \qquad E[(M^2)_{ii'}] = 0\ (i \ne i').

    Parameters
    ----------
    which : {'M_ii', 'M2_ii', 'M2_ij'}
    """
    if which == "M_ii":
        return _expectation_sum([("k", "i"), ("k", "i")], ["k"], ["i"], ["i"])
    if which == "M2_ii":
        factors = [("k", "i"), ("k", "j"), ("l", "j"), ("l", "i")]
        return _expectation_sum(factors, ["k", "l"], ["i", "j"], ["i"])
    if which == "M2_ij":
        factors = [("k", "i"), ("k", "j"), ("l", "j"), ("l", "i2")]
        return _expectation_sum(factors, ["k", "l"], ["i", "j", "i2"], ["i", "i2"])
    raise ValueError(f"`which` must be one of 'M_ii', 'M2_ii', 'M2_ij'; got {which!r}.")


# --- Proposition 1: decay of D = R^T - B W ---------------------------------------------


def pfa_difference_update() -> tuple[sp.Expr, sp.Expr]:
    r"""One SGD step of ``D = R^T - B W`` in PFA, with matrix symbols (Prop. 1).

    With :math:`G = \nabla_W L` (any data), PFA's :math:`\nabla_{R^T} = B G`, and coupled
    weight decay :math:`\kappa`:

    .. math::

        D' = \big(R^T - \eta(BG + \kappa R^T)\big) - B\big(W - \eta(G + \kappa W)\big)
        = (1 - \eta\kappa)(R^T - BW).

    Returns
    -------
    (sympy.Expr, sympy.Expr)
        ``(D' expanded, (1 - eta kappa) D expanded)``; they are equal.
    """
    n, m, i = sp.symbols("n_out n_mid n_in", positive=True, integer=True)
    W, G = sp.MatrixSymbol("W", n, i), sp.MatrixSymbol("G", n, i)
    R, B = sp.MatrixSymbol("R^T", m, i), sp.MatrixSymbol("B", m, n)
    R_new = R - eta * (B * G + kappa * R)
    W_new = W - eta * (G + kappa * W)
    lhs = sp.expand(R_new - B * W_new)
    rhs = sp.expand((1 - eta * kappa) * (R - B * W))
    return lhs, rhs


def momentum_transition() -> sp.Matrix:
    r"""Transition of ``(c_t, u_t)`` under SGD with momentum (torch semantics).

    From :math:`u_t = \mu u_{t-1} + \kappa c_{t-1}` and :math:`c_t = c_{t-1} - \eta u_t`:

    .. math::

        \begin{pmatrix} c_t \\ u_t \end{pmatrix} =
        \begin{pmatrix} 1 - \eta\kappa & -\eta\mu \\ \kappa & \mu \end{pmatrix}
        \begin{pmatrix} c_{t-1} \\ u_{t-1} \end{pmatrix},\qquad (c_0, u_0) = (1, 0).
    """
    c_prev, u_prev = sp.symbols("c_prev u_prev")
    u_new = mu * u_prev + kappa * c_prev
    c_new = c_prev - eta * u_new
    return sp.Matrix(
        [
            [sp.diff(c_new, c_prev), sp.diff(c_new, u_prev)],
            [sp.diff(u_new, c_prev), sp.diff(u_new, u_prev)],
        ]
    ).applyfunc(sp.expand)


def momentum_characteristic_polynomial(z: sp.Symbol | None = None) -> sp.Expr:
    r"""Characteristic polynomial of :func:`momentum_transition`:
    :math:`z^2 - (1 + \mu - \eta\kappa) z + \mu`."""
    z = sp.Symbol("z") if z is None else z
    return sp.expand(momentum_transition().charpoly(z).as_expr())


def momentum_decay_closed_form() -> sp.Expr:
    r"""``c(t)`` for SGD with momentum, from the characteristic polynomial (Prop. 1).

    :math:`c_t = \alpha_1 z_1^t + \alpha_2 z_2^t` with :math:`z_{1,2}` the roots of
    :func:`momentum_characteristic_polynomial`, :math:`\alpha_{1,2}` fixed by
    :math:`c_0 = 1` and :math:`c_1 = 1 - \eta\kappa` (first row of the transition applied to
    :math:`(1, 0)`). Valid for distinct roots; complex roots give a real ``c_t``.
    """
    z = sp.Symbol("z")
    z1, z2 = sp.solve(momentum_characteristic_polynomial(z), z)
    a1, a2 = sp.symbols("alpha1 alpha2")
    c1 = (momentum_transition() * sp.Matrix([1, 0]))[0]
    sol = sp.solve([sp.Eq(a1 + a2, 1), sp.Eq(a1 * z1 + a2 * z2, c1)], [a1, a2], dict=True)[0]
    return sol[a1] * z1**t + sol[a2] * z2**t

r"""Proposition 2's limit law: the Marchenko-Pastur distribution as a ``scipy.stats``
distribution (``marchenko_pastur``), with closed-form CDF, survival function and moments.

Kept apart from :mod:`alignlab.theory.spectrum` (the closed-form moments): importing
scipy.stats costs about half a second, which commands that need only the moments (e.g.
``alignlab figure3``) do not pay.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import elementwise

from .spectrum import _edges, _narayana

__all__ = ["MarchenkoPasturGen", "marchenko_pastur"]

#: Lower end of the support reported to scipy when ``lam > 1``: the largest float below 0.
#: scipy evaluates ``_cdf`` only on the *open* support, so an atom at 0 needs 0 inside it for
#: ``cdf(0) = 1 - 1/lam`` (right-continuous) and ``sf(0) = 1/lam``.
_ATOM_EDGE = float(np.nextafter(0.0, -1.0))


def _cdf_cont(x, lam, a, b):
    r"""``int_a^x`` of the continuous density, for ``a <= x <= b``, in half-angle form.

    ``I(x) = sqrt(R) + (1+lam) (arcsin u + pi/2) - |1-lam| (arcsin v + pi/2)`` with
    ``arcsin u + pi/2 = 2 arcsin sqrt((x-a)/(b-a))`` and
    ``arcsin v + pi/2 = 2 arcsin sqrt(b (x-a) / ((b-a) x))``, ``x - a`` formed directly.
    Well conditioned for ``x`` up to the midpoint ``(a + b)/2`` (arcsin arguments <= 1/2
    there, or multiplied by a vanishing ``|1 - lam|``); above it, use ``_sf_cont``.
    """
    width = b - a
    xa = np.clip(x - a, 0.0, width)
    root = np.sqrt(np.clip((b - x) * xa, 0.0, None))
    t1 = 2.0 * np.arcsin(np.sqrt(np.clip(xa / width, 0.0, 1.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(x > 0, b * xa / (width * x), 1.0)
    t2 = 2.0 * np.arcsin(np.sqrt(np.clip(ratio, 0.0, 1.0)))
    return (root + (1.0 + lam) * t1 - np.abs(1.0 - lam) * t2) / (2.0 * np.pi * lam)


def _sf_cont(x, lam, a, b):
    r"""``int_x^b`` of the continuous density, for ``a <= x <= b`` (mirror of ``_cdf_cont``)."""
    width = b - a
    bx = np.clip(b - x, 0.0, width)
    root = np.sqrt(np.clip(bx * (x - a), 0.0, None))
    t1 = 2.0 * np.arcsin(np.sqrt(np.clip(bx / width, 0.0, 1.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(x > 0, a * bx / (width * x), 0.0)
    t2 = 2.0 * np.arcsin(np.sqrt(np.clip(ratio, 0.0, 1.0)))
    return (-root + (1.0 + lam) * t1 - np.abs(1.0 - lam) * t2) / (2.0 * np.pi * lam)


class MarchenkoPasturGen(stats.rv_continuous):
    r"""Marchenko-Pastur law with ratio ``lam`` and scale 1 (Prop. 2, limit).

    Limit of the eigenvalue distribution of ``M = B^T B`` for ``B`` of shape
    ``(n_mid, n_out)`` with iid zero-mean entries of variance ``1/n_mid``, as
    ``n_out, n_mid -> inf`` with ``lam = n_out / n_mid = 1/r`` fixed:

    .. math::

        p(x) = \frac{\sqrt{(\ell_+ - x)(x - \ell_-)}}{2\pi\lambda x},\quad
        x \in [\ell_-, \ell_+],\qquad \ell_\pm = (1 \pm \sqrt\lambda)^2,

    plus an atom of mass :math:`1 - 1/\lambda` at 0 when :math:`\lambda > 1`.
    With :math:`I(x) = \sqrt{(\ell_+ - x)(x - \ell_-)} + (1+\lambda)(\arcsin u + \pi/2)
    - |1-\lambda|(\arcsin v + \pi/2)`, :math:`u = (x - 1 - \lambda)/(2\sqrt\lambda)`,
    :math:`v = ((1+\lambda)x - (1-\lambda)^2)/(2\sqrt\lambda\, x)`, the CDF is

    .. math::

        F(x) = \max(0, 1 - 1/\lambda)\,[x \ge 0] + \frac{I(x)}{2\pi\lambda},
        \quad \ell_- \le x \le \ell_+ .

    Moments are the Narayana polynomials (:func:`narayana_moment`): mean 1, variance
    :math:`\lambda`, skewness :math:`\sqrt\lambda`, excess kurtosis :math:`\lambda - 1`.

    Notes
    -----
    * ``pdf`` is the density of the continuous part (it integrates to ``min(1, 1/lam)``);
      ``cdf``, ``sf``, ``ppf``, ``rvs`` and the moments include the atom.
    * When ``lam > 1`` the reported support starts at the largest float below 0 (so that
      scipy evaluates the right-continuous ``cdf(0) = 1 - 1/lam``); ``ppf(q) = 0`` for
      ``q <= 1 - 1/lam``.
    * ``expect(f)`` integrates ``f`` against ``pdf`` only, so it misses the atom's
      ``f(0) (1 - 1/lam)``; ``entropy`` and ``fit`` are not meaningful when ``lam > 1``.
    * An invalid ``lam`` gives NaN, as everywhere in scipy.stats.

    Examples
    --------
    >>> d = marchenko_pastur(0.1)
    >>> round(float(d.mean()), 12), round(float(d.var()), 12)
    (1.0, 0.1)
    """

    def _argcheck(self, lam):
        return (lam > 0) & np.isfinite(lam)

    def _get_support(self, lam):
        with np.errstate(invalid="ignore"):  # scipy asks before _argcheck; bad lam -> NaN
            a, b = _edges(lam)
        return np.where(lam > 1, _ATOM_EDGE, a), b

    def _pdf(self, x, lam):
        a, b = _edges(lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = (x > a) & (x < b)
            p = np.sqrt(np.clip((b - x) * (x - a), 0.0, None)) / (2.0 * np.pi * lam * x)
            # lam = 1: a = 0 and p ~ 1 / (pi sqrt(x)) at 0
            return np.where(inside, p, np.where((x == 0) & (a == 0), np.inf, 0.0))

    # Each of _cdf_cont / _sf_cont is used on its own half of [l-, l+], where its arcsin
    # arguments stay <= 1/2 (well conditioned); the other half comes from the complement.
    def _cdf(self, x, lam):
        a, b = _edges(lam)
        atom = np.where(lam > 1, 1.0 - 1.0 / lam, 0.0)
        xc = np.clip(x, a, b)
        lower = xc <= 0.5 * (a + b)
        cont = np.where(lower, atom + _cdf_cont(xc, lam, a, b), 1.0 - _sf_cont(xc, lam, a, b))
        return np.where(x < 0, 0.0, np.where(x <= a, atom, cont))

    def _sf(self, x, lam):
        a, b = _edges(lam)
        mass = np.minimum(1.0, 1.0 / lam)  # of the continuous part
        xc = np.clip(x, a, b)
        lower = xc <= 0.5 * (a + b)
        cont = np.where(lower, mass - _cdf_cont(xc, lam, a, b), _sf_cont(xc, lam, a, b))
        return np.where(x < 0, 1.0, np.where(x <= a, mass, np.where(x >= b, 0.0, cont)))

    def _ppf(self, q, lam):
        q, lam = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(lam, dtype=float))
        a, b = _edges(lam)
        atom = np.where(lam > 1, 1.0 - 1.0 / lam, 0.0)
        cont = q > atom
        out = np.where(lam > 1, 0.0, a)  # the atom, or the lower edge when q = 0
        if np.any(cont):
            qc, lc, ac, bc = q[cont], lam[cont], a[cont], b[cont]
            atc = atom[cont]

            # F(x) - q on [l-, l+], each half from its well-conditioned formula
            def f(x, qq, ll, aa, bb, at):
                return np.where(
                    x <= 0.5 * (aa + bb),
                    (at - qq) + _cdf_cont(x, ll, aa, bb),
                    (1.0 - qq) - _sf_cont(x, ll, aa, bb),
                )

            res = elementwise.find_root(f, (ac, bc), args=(qc, lc, ac, bc, atc))
            out[cont] = res.x
        return out

    def _rvs(self, lam, size=None, random_state=None):
        # inverse CDF; the atom is drawn directly (a uniform below 1 - 1/lam maps to 0)
        u = random_state.uniform(size=size)
        return self._ppf(u, lam)

    def _munp(self, n, lam):
        return _narayana(int(n), lam)

    def _stats(self, lam):
        return np.ones_like(lam), lam, np.sqrt(lam), lam - 1.0


marchenko_pastur = MarchenkoPasturGen(name="marchenko_pastur", shapes="lam")

r"""Proposition 2: the spectrum of ``M = B^T B`` (Marchenko-Pastur) and its finite-size moments.

``B`` has shape ``(n_mid, n_out)`` with iid zero-mean entries of variance ``1/n_mid``, so
``E[M] = I``. As ``n_out, n_mid -> inf`` with ``lam = n_out / n_mid = 1/r`` fixed, the
eigenvalues of ``M`` follow the Marchenko-Pastur law with ratio ``lam`` and scale 1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.optimize import elementwise

from alignlab._validate import check_at_least, check_int_array, check_positive

from .entries import DEFAULT_KURTOSIS

__all__ = [
    "MarchenkoPasturGen",
    "eigenvalue_sd",
    "eigenvalue_sd_finite",
    "marchenko_pastur",
    "mp_edges",
    "mp_second_moment_finite",
    "narayana_moment",
]

#: Lower end of the support reported to scipy when ``lam > 1``: the largest float below 0.
#: scipy evaluates ``_cdf`` only on the *open* support, so an atom at 0 needs 0 inside it for
#: ``cdf(0) = 1 - 1/lam`` (right-continuous) and ``sf(0) = 1/lam``.
_ATOM_EDGE = float(np.nextafter(0.0, -1.0))


def _edges(lam):
    s = np.sqrt(lam)
    return (1.0 - s) ** 2, (1.0 + s) ** 2


def mp_edges(lam) -> tuple[np.ndarray, np.ndarray]:
    r"""Edges of the continuous part of the Marchenko-Pastur law (Prop. 2, limit).

    .. math::

        \ell_\pm = (1 \pm \sqrt{\lambda})^2 .

    Parameters
    ----------
    lam : float or array_like
        Ratio ``lam = n_out / n_mid > 0``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(l_minus, l_plus)``.
    """
    lam = np.asarray(check_positive("lam", lam))
    return _edges(lam)


def narayana_moment(k, lam) -> np.ndarray:
    r"""``k``-th moment of the Marchenko-Pastur law, atom included (Prop. 2, limit).

    The Narayana polynomial

    .. math::

        m_k(\lambda) = \sum_{j=1}^{k} \frac{1}{k}\binom{k}{j}\binom{k}{j-1}\lambda^{j-1},
        \qquad m_0 = 1,

    so ``m_1 = 1``, ``m_2 = 1 + lam``, ``m_3 = 1 + 3 lam + lam^2``. It is the limit of
    ``E[tr M^k] / n_out``.

    Parameters
    ----------
    k : int
        Order ``>= 0``.
    lam : float or array_like
        Ratio ``lam > 0``.

    Returns
    -------
    numpy.ndarray
    """
    k = check_int_array("k", k, minimum=0)
    if np.ndim(k) != 0:
        raise ValueError(f"`k` must be a scalar integer >= 0, got {k!r}.")
    lam = np.asarray(check_positive("lam", lam))
    return _narayana(int(k), lam)


def _narayana(k: int, lam):
    if k == 0:
        return np.ones_like(np.asarray(lam, dtype=float))
    # exact integer coefficients, highest power first for Horner
    coeffs = [math.comb(k, j) * math.comb(k, j - 1) // k for j in range(k, 0, -1)]
    return np.polyval(np.asarray(coeffs, dtype=float), lam)


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


def mp_second_moment_finite(n_out, n_mid, kurtosis=DEFAULT_KURTOSIS) -> np.ndarray | float:
    r"""Second spectral moment of ``M = B^T B`` at finite size (Prop. 2, exact).

    For ``B`` of shape ``(n_mid, n_out)`` with iid zero-mean entries of variance ``1/n_mid``
    and kurtosis ``k4``, ``E[M] = I`` and

    .. math::

        E[M^2] = m_2 I,\qquad m_2 = 1 + \frac{n_{out} + k_4 - 2}{n_{mid}}
        \;\xrightarrow{\;n \to \infty\;}\; 1 + \lambda,

    from :math:`E[(M^2)_{ii}] = E M_{ii}^2 + \sum_{j \ne i} E M_{ij}^2
    = (1 + (k_4 - 1)/n_{mid}) + (n_{out} - 1)/n_{mid}`. So ``m2 = E[tr M^2] / n_out``.

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        ``k4 >= 1`` (:func:`entry_kurtosis`); default 9/5, the package's default uniform
        ``B`` (``DEFAULT_KURTOSIS``); 3 for Gaussian entries.

    Returns
    -------
    numpy.ndarray or float
    """
    return 1.0 + _finite_excess(n_out, n_mid, kurtosis)


def _sizes(name, value):
    """Layer size(s), validated as integers >= 1 and returned as float64 for the formulas.

    Sizes beyond int64 are valid here (``n_mid = 10^20`` at ``r = 10^18``): the int64
    copy that ``check_int_array`` returns would wrap around there, so it is discarded and
    the value is used as float (every float above 2^53 is an integer; the formulas are
    ratios, accurate to a few ulps at any size).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        check_int_array(name, value)
    return np.asarray(value, dtype=float)


def _finite_excess(n_out, n_mid, kurtosis):
    """``m2 - 1 = (n_out + k4 - 2) / n_mid`` from validated arguments, formed without
    subtracting 1 (so no precision is lost when it is tiny)."""
    n_out = _sizes("n_out", n_out)
    n_mid = _sizes("n_mid", n_mid)
    k4 = check_at_least("kurtosis", kurtosis, 1.0)
    return (n_out + k4 - 2.0) / n_mid


def eigenvalue_sd(expansion_ratio) -> np.ndarray:
    r"""SD of the Marchenko-Pastur law, ``1/sqrt(r)`` (Prop. 2, limit as ``n -> inf``).

    .. math::

        \operatorname{sd} = \sqrt{m_2 - m_1^2} = \sqrt{\lambda} = 1/\sqrt{r}.

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r = n_mid / n_out > 0``.
    """
    r = check_positive("expansion_ratio", expansion_ratio)
    return 1.0 / np.sqrt(r)


def eigenvalue_sd_finite(n_out, n_mid, kurtosis=DEFAULT_KURTOSIS) -> np.ndarray | float:
    r"""Pooled SD of the eigenvalues of ``M = B^T B`` over many samples (Prop. 2, exact).

    Eigenvalues pooled over independent samples have mean ``E[tr M]/n_out = 1`` and second
    moment ``m2`` (:func:`mp_second_moment_finite`), so their (population) SD is

    .. math::

        \operatorname{sd} = \sqrt{m_2 - 1} = \sqrt{\frac{n_{out} + k_4 - 2}{n_{mid}}} .

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        ``k4 >= 1``; default 9/5 (uniform ``B``); 3 for Gaussian entries.
    """
    return np.sqrt(_finite_excess(n_out, n_mid, kurtosis))

r"""Proposition 2: the spectrum of ``M = B^T B`` (Marchenko-Pastur) and its finite-size moments.

``B`` has shape ``(n_mid, n_out)`` with iid zero-mean entries of variance ``1/n_mid``, so
``E[M] = I``. As ``n_out, n_mid -> inf`` with ``lam = n_out / n_mid = 1/r`` fixed, the
eigenvalues of ``M`` follow the Marchenko-Pastur law with ratio ``lam`` and scale 1.

The law itself, a ``scipy.stats`` distribution, is in :mod:`alignlab.theory.mp_law`
(``marchenko_pastur``): it alone needs scipy.stats, which costs about half a second to
import, so the closed forms here do not load it.
"""

from __future__ import annotations

import math

import numpy as np

from alignlab._validate import check_at_least, check_int_array, check_positive

from .entries import DEFAULT_KURTOSIS

__all__ = [
    "eigenvalue_sd",
    "eigenvalue_sd_finite",
    "mp_edges",
    "mp_second_moment_finite",
    "narayana_moment",
]

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

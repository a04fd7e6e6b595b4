r"""Proposition 3: path alignment against the expansion ratio, PFA-o, alignment dynamics.

At the fixed point of Proposition 1, ``R^T = B W``, so the feedback path is
``P^T = B^T R^T = M W`` with ``M = B^T B``. For ``W`` independent of ``B``,
``E[M] = I`` and ``E[M^2] = m2 I`` (Proposition 2) give, exactly at any size,

.. math::

    E\langle W, MW\rangle = |W|_F^2, \qquad E|MW|_F^2 = m_2 |W|_F^2,

and the angle between ``W`` and ``P^T`` self-averages as ``n_out`` grows (``n_in`` does not
help: every column of ``W`` is multiplied by the same ``n_out x n_out`` matrix ``M``).

Every function here is finite for every valid argument, however extreme
(``r = 1e-300`` or ``1e300``, ``n_mid = 10^20``): the formulas are written with
``hypot`` and ``arctan2`` so that no intermediate overflows.
"""

from __future__ import annotations

import numpy as np

from alignlab import _linalg
from alignlab._validate import check_at_least, check_finite, check_positive

from .entries import DEFAULT_KURTOSIS
from .spectrum import _finite_excess

__all__ = [
    "alignment_dynamics_cos",
    "angle_deg",
    "eigenvalue_sd_orthogonal",
    "haar_trace_moments",
    "norm_ratio",
    "path_alignment_angle",
    "path_alignment_angle_finite",
    "path_alignment_angle_orthogonal",
    "path_alignment_cos",
    "path_alignment_cos_finite",
    "path_norm_ratio",
    "path_norm_ratio_finite",
    "path_norm_ratio_orthogonal",
]


def _angle_from_excess(excess):
    # arctan(sqrt(m2 - 1)) = arccos(1/sqrt(m2)), from m2 - 1 itself: no loss near cos = 1
    return np.degrees(np.arctan(np.sqrt(excess)))


def _norm_from_excess(excess):
    # sqrt(1 + (m2 - 1)) without overflow when m2 - 1 is huge (r -> 0)
    return np.hypot(1.0, np.sqrt(excess))


def path_alignment_cos(expansion_ratio) -> np.ndarray:
    r"""Cosine between ``W`` and the converged PFA path ``B^T B W`` (Prop. 3, limit).

    .. math::

        \cos\angle(W, P^T) \to \frac{1}{\sqrt{1 + \lambda}} = \frac{1}{\sqrt{1 + 1/r}}

    as ``n_out, n_mid -> inf`` with ``r = n_mid / n_out`` fixed, for iid ``B`` (any entry
    distribution with variance ``1/n_mid``) independent of ``W``.

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r > 0``.
    """
    r = np.asarray(check_positive("expansion_ratio", expansion_ratio))
    return 1.0 / np.hypot(1.0, 1.0 / np.sqrt(r))


def path_alignment_angle(expansion_ratio) -> np.ndarray:
    r"""Angle in degrees between ``W`` and ``B^T B W`` (Prop. 3, limit).

    .. math::

        \angle(W, P^T) \to \arctan\sqrt{\lambda} = \arctan(1/\sqrt{r}),

    e.g. 45.00 deg at ``r = 1``, 17.55 deg at ``r = 10``, 5.71 deg at ``r = 100``.

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r > 0``.
    """
    r = np.asarray(check_positive("expansion_ratio", expansion_ratio))
    return np.degrees(np.arctan2(1.0, np.sqrt(r)))


def path_norm_ratio(expansion_ratio) -> np.ndarray:
    r"""Norm ratio ``|B^T B W|_F / |W|_F`` (Prop. 3, limit).

    .. math::

        \frac{|P^T|_F}{|W|_F} \to \sqrt{1 + \lambda} = \sqrt{1 + 1/r},

    e.g. 1.414 at ``r = 1``, 1.049 at ``r = 10``, 1.005 at ``r = 100``.

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r > 0``.
    """
    r = np.asarray(check_positive("expansion_ratio", expansion_ratio))
    return np.hypot(1.0, 1.0 / np.sqrt(r))


def path_alignment_cos_finite(n_out, n_mid, kurtosis=DEFAULT_KURTOSIS) -> np.ndarray:
    r"""Finite-size path-alignment cosine (Prop. 3 with Prop. 2's exact ``m2``).

    The ratio of expectations, exact at any size for ``W`` independent of iid ``B``
    (variance ``1/n_mid``, kurtosis ``k4``):

    .. math::

        \frac{E\langle W, MW\rangle}{|W|_F \sqrt{E|MW|_F^2}} = \frac{1}{\sqrt{m_2}},\qquad
        m_2 = 1 + \frac{n_{out} + k_4 - 2}{n_{mid}} .

    The sample cosine concentrates on this value as ``n_out`` grows (not ``n_in``: all
    columns of ``W`` meet the same ``M``); its mean differs from it by a Jensen term of
    the order of the fluctuation of ``M``'s spectral averages, ``O(1/n_out)`` relative.
    At ``n_out = 1`` the formula does not describe a sample at all: ``M`` is a positive
    scalar and the angle is exactly 0 (see ``docs/theory.md``).

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        Entry kurtosis ``k4 >= 1`` of ``B`` (see ``entry_kurtosis``); default 9/5, the
        package's default uniform ``B``; 3 for Gaussian.
    """
    return 1.0 / _norm_from_excess(_finite_excess(n_out, n_mid, kurtosis))


def path_alignment_angle_finite(n_out, n_mid, kurtosis=DEFAULT_KURTOSIS) -> np.ndarray:
    r"""Finite-size path-alignment angle in degrees (Prop. 3 with the exact ``m2``).

    .. math::

        \arccos\frac{1}{\sqrt{m_2}} = \arctan\sqrt{m_2 - 1},\qquad
        m_2 = 1 + \frac{n_{out} + k_4 - 2}{n_{mid}} .

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        Entry kurtosis ``k4 >= 1``; default 9/5 (uniform ``B``); 3 for Gaussian.
    """
    return _angle_from_excess(_finite_excess(n_out, n_mid, kurtosis))


def path_norm_ratio_finite(n_out, n_mid, kurtosis=DEFAULT_KURTOSIS) -> np.ndarray:
    r"""Root-mean-square path norm ratio at finite size (Prop. 3 with the exact ``m2``).

    Exact: :math:`\sqrt{E|MW|_F^2} / |W|_F = \sqrt{m_2}`, with
    :math:`m_2 = 1 + (n_{out} + k_4 - 2)/n_{mid}`.

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        Entry kurtosis ``k4 >= 1``; default 9/5 (uniform ``B``); 3 for Gaussian.
    """
    return _norm_from_excess(_finite_excess(n_out, n_mid, kurtosis))


def _orthogonal_sin_cos(expansion_ratio):
    """``(sqrt(1 - r), sqrt(r))`` clipped at ``r = 1``: the sine and cosine of the
    orthogonal ensemble's angle (``m2 - 1 = (1 - r)/r`` is their squared ratio). No
    division, so no overflow for any ``r > 0``; ``1 - r`` is exact near 1 (Sterbenz)."""
    r = np.asarray(check_positive("expansion_ratio", expansion_ratio), dtype=float)
    return np.sqrt(np.where(r < 1.0, 1.0 - r, 0.0)), np.sqrt(np.minimum(r, 1.0))


def path_alignment_angle_orthogonal(expansion_ratio) -> np.ndarray:
    r"""Path-alignment angle in degrees for Haar-orthogonal ``B`` (PFA-o for ``r >= 1``).

    .. math::

        \angle(W, P^T) = \begin{cases} 0 & r \ge 1 \ \text{(exact, every sample)}\\
        \arctan\sqrt{1/r - 1} = \arccos\sqrt{r} & r < 1 \end{cases}

    ``r >= 1``: ``B`` has orthonormal columns, :math:`M = B^T B = I`, so
    :math:`P^T = W` once ``D`` has decayed (PFA-o, Prop. 3). ``r < 1``: no ``B`` has
    :math:`B^T B = I`; the orthogonal ensemble (entry variance ``1/n_mid``, as every
    ensemble) is then a scaled tight frame, :math:`M = \lambda Q` with ``Q`` a Haar-random
    projection of rank ``n_mid``, so :math:`E\langle W, MW\rangle = |W|^2` and
    :math:`E|MW|^2 = \lambda |W|^2` exactly: the formula is the ratio of expectations,
    exact at any size with ``r = n_mid / n_out``, and the sample angle concentrates on it
    as ``n_out`` grows (45 deg at ``r = 1/2``).

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r > 0`` (the paper uses ``r = 1``). At finite size pass ``n_mid / n_out``.
    """
    sin, cos = _orthogonal_sin_cos(expansion_ratio)
    return np.degrees(np.arctan2(sin, cos))


def path_norm_ratio_orthogonal(expansion_ratio) -> np.ndarray:
    r"""Path norm ratio for Haar-orthogonal ``B``: 1 for ``r >= 1`` (exact, PFA-o:
    :math:`B^T B = I`), :math:`1/\sqrt{r}` for ``r < 1`` (root mean square, exact with
    ``r = n_mid / n_out``: the tight frame of :func:`path_alignment_angle_orthogonal`).

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r > 0``.
    """
    return 1.0 / _orthogonal_sin_cos(expansion_ratio)[1]


def eigenvalue_sd_orthogonal(expansion_ratio) -> np.ndarray:
    r"""Pooled SD of the eigenvalues of ``M = B^T B`` for Haar-orthogonal ``B`` (exact).

    ``r >= 1``: ``M = I``, SD 0. ``r < 1``: ``M = \lambda Q`` has eigenvalue
    :math:`\lambda = 1/r` with multiplicity ``n_mid`` and 0 otherwise, in every sample:
    mean 1 and SD :math:`\sqrt{1/r - 1}`, exact with ``r = n_mid / n_out``.

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r > 0``.
    """
    sin, cos = _orthogonal_sin_cos(expansion_ratio)
    return sin / cos


def haar_trace_moments(a_eigs, b_eigs) -> tuple[float, float]:
    r"""Mean and SD of :math:`X = \operatorname{tr}(A\,U B U^T)` over Haar-random orthogonal
    ``U``, for symmetric ``n x n`` matrices ``A`` and ``B`` with eigenvalues ``a_eigs`` and
    ``b_eigs``:

    .. math::

        E X = n\,\bar a\,\bar b, \qquad
        \operatorname{Var} X = \frac{2 n^2}{(n-1)(n+2)}\, s_a^2\, s_b^2,

    with :math:`s^2 = \frac1n\sum_k (x_k - \bar x)^2` (exact; Weingarten calculus of the
    orthogonal group's fourth moments).

    Where it is used: the PFA path at its fixed point is ``M W`` with ``M = B^T B``, and the
    angle between ``W`` and ``M W`` depends on ``W`` only through the diagonal of ``W W^T``
    in ``M``'s eigenbasis. With ``A = M`` and ``B = W W^T``, ``X / (n \bar a \bar b)`` is the
    weighting of ``M``'s eigenvalues by ``W``'s output-side energy: 1 on average for a ``W``
    whose output directions are independent of ``B``'s (Gaussian ``B``: ``M``'s eigenbasis
    is Haar), above 1 where ``W`` has grown along ``M``'s large eigenvalues.

    Parameters
    ----------
    a_eigs, b_eigs
        The two spectra, 1-D, the same length ``n >= 2``.
    """
    a = np.asarray(check_finite("a_eigs", a_eigs), dtype=float)
    b = np.asarray(check_finite("b_eigs", b_eigs), dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(f"`a_eigs` and `b_eigs` must be 1-D and the same length >= 2, got "
                         f"shapes {a.shape} and {b.shape}.")
    n = a.size
    var = 2 * n * n / ((n - 1) * (n + 2)) * a.var() * b.var()
    return float(n * a.mean() * b.mean()), float(np.sqrt(var))


def alignment_dynamics_cos(w0, wt, r0_norm, c_t, m2, *, lam=None) -> np.ndarray:
    r"""Predicted path-alignment cosine during training (Props. 1 and 3; approximate).

    With ``c_t`` from Proposition 1, :math:`R_t^T = B W_t + c_t (R_0^T - B W_0)`, hence

    .. math::

        P_t^T = M (W_t - c_t W_0) + c_t B^T R_0^T,\qquad
        E|B^T R_0^T|_F^2 = \lambda |R_0|_F^2,

    and dropping the cross terms that vanish in expectation (``R_0`` zero-mean and
    independent of ``B``; ``W`` treated as independent of ``B``),

    .. math::

        \cos_t \approx \frac{\langle W_t, W_t - c_t W_0\rangle}
        {|W_t|_F \sqrt{m_2 |W_t - c_t W_0|_F^2 + \lambda c_t^2 |R_0|_F^2}} .

    At ``c_t = 0`` it is Proposition 3's :math:`1/\sqrt{m_2}`.

    Parameters
    ----------
    w0 : array_like
        Initial forward weights ``W_0`` (any shape ``S``; conv kernels as they are).
    wt : array_like
        Forward weights ``W_t``, shape ``S`` or ``(..., *S)`` for a time course.
    r0_norm : float or array_like
        ``|R_0|_F >= 0``.
    c_t : float or array_like
        Decay factor(s), broadcast against ``wt``'s leading axes.
    m2 : float or array_like
        Second spectral moment of ``B^T B`` (``1 + lam`` or ``mp_second_moment_finite``).
    lam : float or array_like, optional
        ``n_out / n_mid``; defaults to ``m2 - 1`` (the limit relation ``m2 = 1 + lam``).
        Pass it explicitly with a finite-size ``m2``: ``E[B B^T] = lam I`` exactly.

    Returns
    -------
    numpy.ndarray
        Predicted cosine, shape ``wt.shape[:wt.ndim - w0.ndim]`` broadcast with ``c_t``.
    """
    w0 = np.asarray(check_finite("w0", w0))
    wt = np.asarray(check_finite("wt", wt))
    r0_norm = check_positive("r0_norm", r0_norm, allow_zero=True)
    c_t = check_finite("c_t", c_t)
    m2 = check_at_least("m2", m2, 1.0)
    lam = np.asarray(m2) - 1.0 if lam is None else check_positive("lam", lam)
    if wt.shape[wt.ndim - w0.ndim :] != w0.shape or wt.ndim < w0.ndim:
        raise ValueError(f"`wt` must have shape {w0.shape} or (..., *{w0.shape}), got {wt.shape}.")
    axes = tuple(range(-w0.ndim, 0))
    c = np.asarray(c_t, dtype=float)
    diff = wt - c.reshape(c.shape + (1,) * w0.ndim) * w0  # (..., *S)
    inner = np.sum(wt * diff, axis=axes)
    wt_norm = np.sqrt(np.sum(wt * wt, axis=axes))
    if np.any(wt_norm == 0):
        raise ValueError("`wt` must have a nonzero norm (the angle is undefined otherwise).")
    denom_sq = m2 * np.sum(diff * diff, axis=axes) + lam * c**2 * np.asarray(r0_norm) ** 2
    return inner / (wt_norm * np.sqrt(denom_sq))


def _frobenius(name, x, axis):
    n = np.sqrt(np.sum(x * x, axis=axis))
    if np.any(n == 0):
        raise ValueError(f"`{name}` must have a nonzero norm, got all zeros.")
    return n


def angle_deg(x, y, axis=None) -> np.ndarray:
    r"""Angle in degrees between two same-shaped tensors, over all entries (validated).

    .. math::

        \angle(X, Y) = \frac{180}{\pi}\arccos
        \frac{\langle \operatorname{vec} X, \operatorname{vec} Y\rangle}{|X|_F |Y|_F},

    computed by the package's one angle function, :func:`alignlab._linalg.angle_deg`
    (the ``atan2`` form, accurate near 0 and 180 degrees, where ``arccos`` of a clipped
    cosine is off by ~1e-6 deg). This wrapper rejects NaN/inf and zero norms.

    Parameters
    ----------
    x, y : array_like
        Same shape (or broadcastable), nonzero.
    axis : int or tuple of int, optional
        Axes to reduce over; ``None`` (default) uses every entry.
    """
    x = np.asarray(check_finite("x", x))
    y = np.asarray(check_finite("y", y))
    _frobenius("x", x, axis)
    _frobenius("y", y, axis)
    return _linalg.angle_deg(x, y, axis=axis)


def norm_ratio(x, y, axis=None) -> np.ndarray:
    r"""Frobenius norm ratio :math:`|Y|_F / |X|_F` over all entries (or ``axis``).

    Parameters
    ----------
    x, y : array_like
        The reference ``X`` (nonzero) and the compared tensor ``Y``.
    axis : int or tuple of int, optional
        Axes to reduce over; ``None`` (default) uses every entry.
    """
    x = np.asarray(check_finite("x", x))
    y = np.asarray(check_finite("y", y))
    return np.sqrt(np.sum(y * y, axis=axis)) / _frobenius("x", x, axis)

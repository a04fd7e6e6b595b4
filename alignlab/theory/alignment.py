r"""Proposition 3: path alignment against the expansion ratio, PFA-o, alignment dynamics.

At the fixed point of Proposition 1, ``R^T = B W``, so the feedback path is
``P^T = B^T R^T = M W`` with ``M = B^T B``. For ``W`` independent of ``B``,
``E[M] = I`` and ``E[M^2] = m2 I`` (Proposition 2) give, exactly at any size,

.. math::

    E\langle W, MW\rangle = |W|_F^2, \qquad E|MW|_F^2 = m_2 |W|_F^2,

and the angle between ``W`` and ``P^T`` self-averages as the layer grows.
"""

from __future__ import annotations

import numpy as np

from alignlab._validate import check_at_least, check_finite, check_int_array, check_positive

from .marchenko_pastur import _m2_excess

__all__ = [
    "alignment_dynamics_cos",
    "angle_deg",
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


def _cos_from_m2(m2):
    return 1.0 / np.sqrt(m2)


def _angle_from_excess(excess):
    # arctan(sqrt(m2 - 1)) = arccos(1/sqrt(m2)), from m2 - 1 itself: no loss near cos = 1
    return np.degrees(np.arctan(np.sqrt(excess)))


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
    r = check_positive("expansion_ratio", expansion_ratio)
    return _cos_from_m2(1.0 + 1.0 / np.asarray(r))


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
    r = check_positive("expansion_ratio", expansion_ratio)
    return np.degrees(np.arctan(1.0 / np.sqrt(r)))


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
    r = check_positive("expansion_ratio", expansion_ratio)
    return np.sqrt(1.0 + 1.0 / np.asarray(r))


def _finite_excess(n_out, n_mid, kurtosis):
    """``m2 - 1`` at finite size, validated."""
    n_out = check_int_array("n_out", n_out)
    n_mid = check_int_array("n_mid", n_mid)
    k4 = check_at_least("kurtosis", kurtosis, 1.0)
    return _m2_excess(n_out, n_mid, k4)


def path_alignment_cos_finite(n_out, n_mid, kurtosis=3.0) -> np.ndarray:
    r"""Finite-size path-alignment cosine (Prop. 3 with Prop. 2's exact ``m2``).

    The ratio of expectations, exact at any size for ``W`` independent of iid ``B``
    (variance ``1/n_mid``, kurtosis ``k4``):

    .. math::

        \frac{E\langle W, MW\rangle}{|W|_F \sqrt{E|MW|_F^2}} = \frac{1}{\sqrt{m_2}},\qquad
        m_2 = 1 + \frac{n_{out} + k_4 - 2}{n_{mid}} .

    The sample cosine concentrates on this value as ``n_out * n_in`` grows; its mean
    differs from it only by the (second-order) fluctuation of ``|MW|_F``.

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        Entry kurtosis ``k4 >= 1`` of ``B`` (see ``entry_kurtosis``); 3 for Gaussian.
    """
    return _cos_from_m2(1.0 + _finite_excess(n_out, n_mid, kurtosis))


def path_alignment_angle_finite(n_out, n_mid, kurtosis=3.0) -> np.ndarray:
    r"""Finite-size path-alignment angle in degrees (Prop. 3 with the exact ``m2``).

    .. math::

        \arccos\frac{1}{\sqrt{m_2}} = \arctan\sqrt{m_2 - 1},\qquad
        m_2 = 1 + \frac{n_{out} + k_4 - 2}{n_{mid}} .

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        Entry kurtosis ``k4 >= 1``; 3 for Gaussian.
    """
    return _angle_from_excess(_finite_excess(n_out, n_mid, kurtosis))


def path_norm_ratio_finite(n_out, n_mid, kurtosis=3.0) -> np.ndarray:
    r"""Root-mean-square path norm ratio at finite size (Prop. 3 with the exact ``m2``).

    Exact: :math:`\sqrt{E|MW|_F^2} / |W|_F = \sqrt{m_2}`, with
    :math:`m_2 = 1 + (n_{out} + k_4 - 2)/n_{mid}`.

    Parameters
    ----------
    n_out, n_mid : int or array_like of int
        Sizes ``>= 1``.
    kurtosis : float or array_like, optional
        Entry kurtosis ``k4 >= 1``; 3 for Gaussian.
    """
    return np.sqrt(1.0 + _finite_excess(n_out, n_mid, kurtosis))


def _check_orthogonal_ratio(expansion_ratio):
    r = np.asarray(check_positive("expansion_ratio", expansion_ratio))
    if not np.all(r >= 1):
        raise ValueError(
            "`expansion_ratio` must be >= 1 for orthogonal feedback (B^T B = I needs "
            f"orthonormal columns, so n_mid >= n_out), got {expansion_ratio!r}."
        )
    return r


def path_alignment_angle_orthogonal(expansion_ratio) -> np.ndarray:
    r"""PFA-o path-alignment angle: 0 degrees at any size (Prop. 3, exact).

    With ``B`` having orthonormal columns (Haar, ``n_mid >= n_out``),
    :math:`M = B^T B = I`, so :math:`P^T = W` once ``D`` has decayed.

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r >= 1`` (the paper uses ``r = 1``).

    Returns
    -------
    numpy.ndarray
        Zeros of the shape of ``expansion_ratio``.
    """
    return np.zeros_like(_check_orthogonal_ratio(expansion_ratio), dtype=float)


def path_norm_ratio_orthogonal(expansion_ratio) -> np.ndarray:
    r"""PFA-o path norm ratio: 1 at any size (Prop. 3, exact; :math:`B^T B = I`).

    Parameters
    ----------
    expansion_ratio : float or array_like
        ``r >= 1``.

    Returns
    -------
    numpy.ndarray
        Ones of the shape of ``expansion_ratio``.
    """
    return np.ones_like(_check_orthogonal_ratio(expansion_ratio), dtype=float)


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
    r"""Angle in degrees between two same-shaped tensors, over all entries.

    .. math::

        \angle(X, Y) = \frac{180}{\pi}\arccos\operatorname{clip}\Big(
        \frac{\langle \operatorname{vec} X, \operatorname{vec} Y\rangle}{|X|_F |Y|_F},
        -1, 1\Big).

    Parameters
    ----------
    x, y : array_like
        Same shape (or broadcastable).
    axis : int or tuple of int, optional
        Axes to reduce over; ``None`` (default) uses every entry.
    """
    x = np.asarray(check_finite("x", x))
    y = np.asarray(check_finite("y", y))
    cos = np.sum(x * y, axis=axis) / (_frobenius("x", x, axis) * _frobenius("y", y, axis))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


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

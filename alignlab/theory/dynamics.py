r"""Alignment dynamics (Propositions 1 + 3) from the per-layer scalars of a training log.

:func:`alignlab.theory.alignment_dynamics_cos` evaluates the dynamics prediction from the
weight *tensors* ``W_0`` and ``W_t``. A training run does not keep them; it logs five
scalars per layer and log point (``layers.csv``, see ``docs/training.md``)::

    w_sq = |W_t|_F^2,  w_dot_w0 = <W_t, W_0>,  w0_sq = |W_0|_F^2,
    fb0_sq = |F_0|_F^2 (PFA: |B^T R_0^T|_F^2),  decay_c = c_t (Proposition 1),

and ``w_dot_fb0 = <W_t, F_0>``. With ``X_t = W_t - c_t W_0`` those are enough, because

.. math::

    \langle W_t, X_t\rangle = w_{sq} - c\, w_{dot\,w0},\qquad
    |X_t|_F^2 = w_{sq} - 2c\, w_{dot\,w0} + c^2 w_{0\,sq}.

The functions here are that evaluation, vectorised over numpy arrays (one entry per layer
and log point), with the *realised* ``|F_0|^2`` in place of its expectation
``lambda |R_0|_F^2``. Nothing here imports torch.

Where the expression comes from (``docs/compare.md``): Proposition 1 gives
``R_t^T = B W_t + c_t (R_0^T - B W_0)``, so the path is

.. math::

    P_t^T = B^T R_t^T = M X_t + c_t F_0,\qquad M = B^T B,\ F_0 = B^T R_0^T,

and for ``W`` independent of ``B`` (``E M = I``, ``E M^2 = m_2 I``, Proposition 2) and a
zero-mean ``R_0`` independent of both, dropping the cross terms that vanish in expectation,

.. math::

    \cos_t \approx \frac{\langle W_t, X_t\rangle}
    {|W_t|_F \sqrt{m_2 |X_t|_F^2 + c_t^2 |F_0|_F^2}},\qquad
    \frac{|P_t^T|_F}{|W_t|_F} \approx \sqrt{\frac{m_2 |X_t|_F^2 + c_t^2 |F_0|_F^2}{|W_t|_F^2}} .

The same holds for Kolen-Pollack (``B = I``, ``m2 = 1``, ``F_0`` the initial kernel)
and PFA-o / PFA-id (``B^T B = I``, ``m2 = 1``), where it is exact up to the one cross
term ``c_t <W_t, F_0>`` of the numerator (and ``2 c_t <X_t, F_0>`` of the norm).
"""

from __future__ import annotations

import numpy as np

from alignlab import _linalg
from alignlab._validate import check_at_least, check_finite, check_positive

__all__ = [
    "path_alignment_dynamics_angle",
    "path_alignment_dynamics_cos",
    "path_norm_ratio_dynamics",
]


def _terms(w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c, m2, w_dot_fb0, w0_dot_fb0=None):
    """Validated and broadcast: ``|W_t|^2``, the predicted ``a = <W_t, P^T>``, the
    predicted ``p = |P^T|^2`` and the part of it orthogonal to ``W_t``,
    ``p - a^2 / |W_t|^2``, formed without cancellation (see below). With ``w0_dot_fb0``
    (and ``w_dot_fb0``) ``p`` also gets the norm's cross term ``2 c <X_t, F_0>``."""
    w_sq = check_positive("w_sq", w_sq)
    w_dot_w0 = check_finite("w_dot_w0", w_dot_w0)
    w0_sq = check_positive("w0_sq", w0_sq, allow_zero=True)
    fb0_sq = check_positive("fb0_sq", fb0_sq, allow_zero=True)
    c = check_finite("decay_c", decay_c)
    m2 = check_at_least("m2", m2, 1.0)
    f = 0.0 if w_dot_fb0 is None else check_finite("w_dot_fb0", w_dot_fb0)
    if w0_dot_fb0 is not None and w_dot_fb0 is None:
        raise ValueError("`w0_dot_fb0` needs `w_dot_fb0` (the norm's cross term is "
                         "<W_t, F_0> - c <W_0, F_0>).")
    g = 0.0 if w0_dot_fb0 is None else check_finite("w0_dot_fb0", w0_dot_fb0)
    w_sq, w_dot_w0, w0_sq, fb0_sq, c, m2, f, g = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (w_sq, w_dot_w0, w0_sq, fb0_sq, c, m2, f, g)))
    inner = w_sq - c * w_dot_w0  # <W_t, X_t>
    # |X_t|^2 >= 0 mathematically; rounding of the three logged numbers can make it a
    # few ulps of w_sq negative when W_t = c W_0 (epoch 0 with c = 1): clip at 0
    x_sq = np.maximum(w_sq - 2.0 * c * w_dot_w0 + c * c * w0_sq, 0.0)
    # the norm's cross term 2 c <X_t, F_0> = 2 c (<W_t, F_0> - c <W_0, F_0>): exact where
    # M = I (it is 2 c <M X_t, F_0> in general), zero in expectation, so only when asked
    norm_cross = 0.0 if w0_dot_fb0 is None else 2.0 * c * (f - c * g)
    path_sq = m2 * x_sq + c * c * fb0_sq + norm_cross
    # p - a^2/|W|^2 directly from its parts (no difference of two nearly equal numbers
    # when the angle is small): X_t's part orthogonal to W_t is -c W_0's, so
    # |X|^2 - <W, X>^2/|W|^2 = c^2 (w0_sq - w_dot_w0^2 / w_sq), and the cross term adds
    # -(2 c <W, X> f + c^2 f^2) / w_sq
    w0_perp_sq = np.maximum(w0_sq - w_dot_w0 * w_dot_w0 / w_sq, 0.0)
    perp_sq = ((m2 - 1.0) * x_sq + c * c * (w0_perp_sq + fb0_sq) + norm_cross
               - (2.0 * c * inner * f + c * c * f * f) / w_sq)
    return w_sq, inner + c * f, path_sq, np.maximum(perp_sq, 0.0)


def path_alignment_dynamics_cos(w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c, m2, *,
                                w_dot_fb0=None, w0_dot_fb0=None) -> np.ndarray:
    r"""Predicted path-alignment cosine at a log point (Props. 1 + 3; approximate).

    .. math::

        \cos_t \approx \frac{w_{sq} - c\,w_{dot\,w0}}
        {\sqrt{w_{sq}}\,\sqrt{m_2\,(w_{sq} - 2c\,w_{dot\,w0} + c^2 w_{0\,sq})
        + c^2 f_{b0\,sq}}}

    (the module docstring derives it). With ``w_dot_fb0`` the numerator keeps the cross
    term ``c <W_t, F_0>`` that the expectation drops (it is known exactly from the log):
    this variant is exact at ``t = 0`` (``W_t = W_0``, ``c = 1``: the cosine of ``W_0``
    and ``F_0``) and measures how much of the alignment comes from ``W`` having grown
    along the initial feedback.

    Limits: ``c = 0`` gives Proposition 3's :math:`1/\sqrt{m_2}` exactly (whatever
    ``W_t``); ``W_t = W_0`` gives
    :math:`(1 - c)/\sqrt{m_2 (1 - c)^2 + c^2 f_{b0\,sq}/w_{0\,sq}}`.

    Parameters
    ----------
    w_sq, w_dot_w0, w0_sq : float or array_like
        ``|W_t|_F^2 > 0``, ``<W_t, W_0>``, ``|W_0|_F^2 >= 0`` (``layers.csv``).
    fb0_sq : float or array_like
        ``|F_0|_F^2 >= 0``, the initial effective feedback (PFA: ``|B^T R_0^T|^2``, whose
        expectation over ``B`` is ``lambda |R_0|^2``).
    decay_c : float or array_like
        Proposition 1's ``c_t`` (``alignlab.theory.decay_factor_schedule``), finite.
    m2 : float or array_like
        ``E tr (B^T B)^2 / n_out >= 1``: :func:`alignlab.theory.mp_second_moment_finite`
        for iid ``B``, 1 when ``B^T B = I`` (PFA-o, PFA-id, KP).
    w_dot_fb0 : float or array_like, optional
        ``<W_t, F_0>``; None (default) drops the cross term, as the theory does.
    w0_dot_fb0 : float or array_like, optional
        ``<W_0, F_0>`` (``w_dot_fb0`` at step 0), with ``w_dot_fb0``: the norm also gets
        its cross term ``2 c <X_t, F_0> = 2 c (w_dot_fb0 - c w0_dot_fb0)``. Where
        ``M = B^T B = I`` (KP, PFA-o, PFA-id; ``m2 = 1``) the path is exactly
        ``X_t + c F_0`` and the angle is then exact (Proposition 1 as an identity of the
        logged numbers); with iid ``B`` the norm's cross term is ``2 c <M X_t, F_0>``,
        which the log does not hold, so leave it None there.

    Returns
    -------
    numpy.ndarray
        The cosine in [-1, 1], broadcast over the arguments; NaN where the predicted path
        is zero (``W_t = c W_0`` and ``F_0 = 0``). The cross-term variant without
        ``w0_dot_fb0`` keeps the denominator of the expectation and is clipped at 1.
    """
    w_sq, inner, path_sq, _ = _terms(w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c, m2, w_dot_fb0,
                                     w0_dot_fb0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # in [-1, 1] by Cauchy-Schwarz (m2 >= 1) up to rounding; the cross-term variant's
        # numerator is not bounded by the dropped-term norm: clip both
        out = np.clip(inner / np.sqrt(w_sq * path_sq), -1.0, 1.0)
    return np.where(path_sq > 0, out, np.nan)[()]


def path_alignment_dynamics_angle(w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c, m2, *,
                                  w_dot_fb0=None, w0_dot_fb0=None) -> np.ndarray:
    r"""Predicted path-alignment angle in degrees at a log point (Props. 1 + 3).

    The angle of :func:`path_alignment_dynamics_cos`, taken with the package's one angle
    function (:func:`alignlab._linalg.angle_deg`) between ``W = (|W_t|, 0)`` and the
    plane vector ``Y = (a / |W_t|, sqrt(p - a^2 / |W_t|^2))`` whose inner product with
    ``W`` is the predicted ``a = <W_t, P^T>`` and whose squared norm is the predicted
    ``p = |P^T|^2``. The orthogonal part ``p - a^2/|W_t|^2`` is formed from its parts,
    :math:`(m_2 - 1)|X_t|^2 + c^2 (|W_0|^2 - \langle W_t, W_0\rangle^2/|W_t|^2 + |F_0|^2)`
    (minus the cross term's share), so the angle stays accurate near 0 degrees, where
    ``arccos`` of the cosine loses half the digits.
    Parameters as in :func:`path_alignment_dynamics_cos`.
    """
    w_sq, inner, path_sq, perp_sq = _terms(w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c, m2,
                                           w_dot_fb0, w0_dot_fb0)
    w_norm = np.sqrt(w_sq)
    x = np.stack([w_norm, np.zeros_like(w_norm)])
    y = np.stack([inner / w_norm, np.sqrt(perp_sq)])
    return _linalg.angle_deg(x, y, axis=0)


def path_norm_ratio_dynamics(w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c, m2) -> np.ndarray:
    r"""Predicted path norm ratio ``|P_t^T|_F / |W_t|_F`` at a log point (Props. 1 + 3).

    Root mean square over ``B`` (the cross term ``2 c <M X_t, F_0>`` has expectation 0):

    .. math::

        \frac{|P_t^T|_F}{|W_t|_F} \approx
        \sqrt{\frac{m_2 (w_{sq} - 2c\,w_{dot\,w0} + c^2 w_{0\,sq}) + c^2 f_{b0\,sq}}{w_{sq}}},

    which is Proposition 3's :math:`\sqrt{m_2}` at ``c = 0``. Parameters as in
    :func:`path_alignment_dynamics_cos`.
    """
    w_sq, _, path_sq, _ = _terms(w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c, m2, None)
    return np.sqrt(path_sq / w_sq)[()]

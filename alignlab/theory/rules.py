r"""What theory predicts for the learning rules outside the PFA family, at finite size.

Each function gives a rule's feedback angle (and where it applies its norm ratio) as a
mean with the spread a finite layer shows, so a measured angle can be put against it with
a z-score. Each is mirrored by a Monte Carlo in :mod:`alignlab.sim.rules`:

=========================================  ==================================================
theory                                     simulation (``alignlab.sim``)
=========================================  ==================================================
``random_magnitude_angle_given_w`` (brSF,  ``simulate_random_magnitude``: ``M`` redrawn for
frSF: ``sign(W) |M|``)                     the given ``W``
``weight_mirror_floor_angle``,             ``simulate_weight_mirror``: the literal mirror
``weight_mirror_norm_ratio``,              recursion (``WM.mirror_update``) on a fixed ``W``
``weight_mirror_angle_given_w``            at stationarity
``fa_null_angle`` (FA: ``B`` independent   ``simulate_fa_null``: ``B`` redrawn for the given
of ``W``)                                  ``W``
``sign_concordant_angle_sd_iid`` (uSF at   ``simulate_sign_concordant_iid``: iid ``W``
init)                                      redrawn
=========================================  ==================================================

Angles are in degrees, over all entries of ``W`` (``theory.angle_deg``). "Delta method"
below means: the angle is a smooth function of a few sums over entries, expanded to
second order about their means (the mean to second order, the variance to first), which
leaves errors of relative order ``1/N`` in the SD and ``N^{-2}`` in the mean for ``N``
independent terms; each docstring says which sums.
"""

from __future__ import annotations

import numpy as np

from alignlab._validate import check_finite, check_int, check_int_array, check_positive

from .entries import entry_moments

__all__ = [
    "fa_null_angle",
    "random_magnitude_angle_given_w",
    "sign_concordant_angle_sd_iid",
    "weight_mirror_angle_given_w",
    "weight_mirror_effective_samples",
    "weight_mirror_floor_angle",
    "weight_mirror_norm_ratio",
]

_HALF_NORMAL_ABS = np.sqrt(2.0 / np.pi)  # E|m| / sqrt(E m^2) for Gaussian m


def _weight(w, name: str = "w") -> np.ndarray:
    """``w`` as a finite float array with a nonzero norm."""
    w = np.asarray(check_finite(name, w), dtype=float)
    if w.ndim == 0 or not np.any(w):
        got = "a scalar" if w.ndim == 0 else f"all zeros, shape {w.shape}"
        raise ValueError(f"`{name}` must be an array with a nonzero entry, got {got}.")
    return w


def _arccos_moments(cos_mean, cos_var) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD (degrees) of ``arccos(c)`` for ``c`` with mean ``cos_mean`` and variance
    ``cos_var`` (delta method: ``arccos''(c) = -c / (1 - c^2)^{3/2}``)."""
    sin2 = 1.0 - cos_mean**2
    mean = np.arccos(cos_mean) - 0.5 * cos_mean * cos_var / sin2**1.5
    return np.degrees(mean), np.degrees(np.sqrt(cos_var / sin2))


# -------------------------------------------------------------- sign-concordant feedback
def random_magnitude_angle_given_w(w) -> tuple[float, float]:
    r"""brSF/frSF: mean and SD (degrees) of the angle between ``W`` and ``sign(W) |M|``
    over the magnitudes ``M`` (iid :math:`N(0, s^2)`), for the given ``W`` (delta method).

    With :math:`a_i = |w_i|` over the ``n`` nonzero entries (``sign(0) = 0`` drops the
    rest), :math:`N = \sum a_i |m_i|` and :math:`Q = \sum m_i^2`, the cosine is
    :math:`N / (|W|_F \sqrt Q)`; ``s`` cancels. With :math:`\mu = E|m|/s = \sqrt{2/\pi}`,
    :math:`E|m|^3 = 2\mu s^3`, :math:`E N = \mu s |W|_1`, :math:`\operatorname{Var} N =
    (1 - \mu^2) s^2 |W|_F^2`, :math:`E Q = n s^2`, :math:`\operatorname{Var} Q = 2 n s^4`,
    :math:`\operatorname{Cov}(N, Q) = \mu s^3 |W|_1`, and :math:`\kappa = |W|_1^2 /
    (n |W|_F^2)` (the squared uSF cosine of ``W``):

    .. math::

        E\cos &= \mu\sqrt\kappa\,\Big(1 + \frac{1}{4n}\Big), \qquad
        \operatorname{Var}\ln\cos = \frac{1}{n}\Big(\frac{\pi/2 - 1}{\kappa}
            - \frac12\Big), \\
        E\angle &= \arccos E\cos - \frac{c\,\operatorname{Var}\cos}{2(1 - c^2)^{3/2}},
        \qquad \operatorname{sd}\angle = \frac{\sqrt{\operatorname{Var}\cos}}
            {\sqrt{1 - c^2}},

    with :math:`c = \mu\sqrt\kappa` and :math:`\operatorname{Var}\cos = c^2
    \operatorname{Var}\ln\cos`. Errors: :math:`O(n^{-2})` in the mean, relative
    :math:`O(1/n)` in the SD (against 200000 draws: within 1% of the SD from ``n = 10``,
    13% at ``n = 2``; ``n = 1`` is exactly 0). As ``n -> inf`` the mean tends to
    :math:`\arccos(\sqrt{2/\pi}\,|W|_1/(\sqrt n |W|_F))`; for iid ``W`` this is
    :func:`~alignlab.theory.sign_concordant_cos_random_magnitude` with Gaussian ``B``.
    brSF redraws ``M`` at every step, so this is the distribution of every logged angle;
    frSF draws it once, so this is the distribution of its fixed draw (``M`` independent
    of ``W``: exact at initialisation, and the null of "``W`` did not adapt to ``M``"
    during training).

    Parameters
    ----------
    w : array_like
        ``W`` (any shape; every entry counts), with a nonzero entry.

    Returns
    -------
    (mean_deg, sd_deg) : tuple of float
    """
    a = np.abs(_weight(w))
    a = a[a > 0]
    n = a.size
    if n == 1:  # one nonzero entry: the feedback is a multiple of W
        return 0.0, 0.0
    kappa = a.sum() ** 2 / (n * np.sum(a * a))
    c = _HALF_NORMAL_ABS * np.sqrt(kappa)
    var_log = ((np.pi / 2 - 1.0) / kappa - 0.5) / n
    mean, sd = _arccos_moments(c * (1.0 + 0.25 / n), c * c * var_log)
    return float(mean), float(sd)


def sign_concordant_angle_sd_iid(ensemble: str, n_entries) -> np.ndarray:
    r"""uSF at initialisation: SD (degrees) of the angle between ``W`` and ``sign(W)`` over
    iid draws of ``W`` with ``N`` entries (delta method).

    With :math:`N_1 = \sum |w_i|` and :math:`Q = \sum w_i^2`, :math:`\cos = N_1 /
    \sqrt{N Q}`. In scale-free entry moments (:data:`~alignlab.theory.ENTRY_MOMENTS`)
    :math:`m = E|w|/\sqrt{E w^2}`, :math:`k = E w^4/(E w^2)^2`,
    :math:`t = E|w|^3/(E w^2)^{3/2}`:

    .. math::

        \operatorname{Var}\ln\cos = \frac{1}{N}\Big(\frac{1}{m^2} + \frac{k - 1}{4}
            - \frac{t}{m}\Big), \qquad
        \operatorname{sd}\angle = \cot\angle_\infty\,\sqrt{\operatorname{Var}\ln\cos},

    :math:`\angle_\infty` = :func:`~alignlab.theory.sign_concordant_angle_iid`:
    Gaussian :math:`\sqrt{(\pi/2 - 3/2)/N}\cot 37.07^\circ`, uniform
    :math:`\sqrt{(1/30)/N}\cot 30^\circ`, Rademacher 0 (exact). Relative error
    :math:`O(1/N)`. (The mean moves from :math:`\angle_\infty` by :math:`O(1/N)`.)

    Parameters
    ----------
    ensemble : {'gaussian', 'uniform', 'rademacher'}
        Entry law of ``W``. ('sparse' is refused: its exact zeros, where ``sign(W)`` is 0,
        leave the angle of the Gaussian entries over the nonzero ones.)
    n_entries : int or array_like of int
        ``N``.
    """
    if ensemble == "sparse":
        raise ValueError("`ensemble` must be 'gaussian', 'uniform' or 'rademacher' (a sparse "
                         "W's zeros drop out of sign(W): use 'gaussian' over its nonzero "
                         "entries), got 'sparse'.")
    mom = entry_moments(ensemble)
    n = np.asarray(check_int_array("n_entries", n_entries), dtype=float)
    m, k, t = mom.abs_ratio, mom.kurtosis, mom.abs_third
    var_log = max(1.0 / m**2 + (k - 1.0) / 4.0 - t / m, 0.0) / n  # Rademacher: 0 (rounding)
    cot = m / np.sqrt(1.0 - m * m) if m < 1 else 0.0
    return np.degrees(cot * np.sqrt(var_log))


# ------------------------------------------------------------------------- FA's null
def fa_null_angle(n_entries) -> tuple[np.ndarray, np.ndarray]:
    r"""FA's independence null: mean and SD (degrees) of the angle between a given ``W`` and
    a random ``B`` independent of it, with ``N`` entries.

    For any sign-symmetric ``B`` the mean is exactly 90 degrees (``B -> -B``). The angle is
    :math:`\pi/2 - \arcsin c`, :math:`c = \cos\angle(W, B)`, and
    :math:`\arcsin^2 c = c^2 + c^4/3 + O(c^6)`; for Gaussian ``B`` (any fixed ``W``)
    :math:`c^2 \sim \mathrm{Beta}(1/2, (N-1)/2)`, :math:`E c^2 = 1/N`,
    :math:`E c^4 = 3/(N(N+2))`, so

    .. math::

        \operatorname{sd}\angle = \sqrt{\frac1N + \frac{1}{N(N+2)}} + O(N^{-5/2})
        = \frac{1}{\sqrt N}\Big(1 + \frac{1}{2N} + O(N^{-2})\Big)

    (radians): :func:`~alignlab.theory.fa_init_cos_sd` to leading order. For another iid
    ``B`` of kurtosis :math:`k`, :math:`E c^2 = 1/N` holds to relative :math:`O(N^{-2})`
    and :math:`E c^4` gains :math:`(k - 3)\sum w_i^4/|W|^4/N^2`: a relative change of the
    SD of at most :math:`|k - 3| \rho_W / (6N)`, :math:`\rho_W = \sum w_i^4 / |W|_F^4`.
    At initialisation FA's ``B`` is independent of ``W``; during training the angle's
    distance from this null, in SDs, is how far FA has aligned.

    Parameters
    ----------
    n_entries : int or array_like of int
        ``N``, the number of entries of ``W``.

    Returns
    -------
    (mean_deg, sd_deg) : numpy arrays (0-d for a scalar ``n_entries``)
    """
    n = np.asarray(check_int_array("n_entries", n_entries), dtype=float)
    return np.full_like(n, 90.0), np.degrees(np.sqrt(1.0 / n + 1.0 / (n * (n + 2.0))))


# --------------------------------------------------------------------- weight mirror
def _mirror_decay(lr, weight_decay) -> np.ndarray:
    """``a = lr * weight_decay``, validated: the recursion is stable for ``0 < a < 2``."""
    lr = check_positive("lr", lr)
    wd = check_positive("weight_decay", weight_decay)
    a = np.asarray(lr * wd, dtype=float)
    if np.any(a >= 2.0):
        raise ValueError(f"`lr * weight_decay` must be < 2 (the mirror's recursion "
                         f"diverges otherwise), got {float(np.max(a))!r}.")
    return a


def weight_mirror_effective_samples(n_samples, lr, weight_decay) -> np.ndarray:
    r"""Effective number of noise samples in the weight mirror's stationary feedback.

    The mirror step :math:`F \leftarrow (1 - a) F + \eta\,W\hat\Sigma_t`, with
    :math:`a = \eta\lambda` (``lr * weight_decay``) and :math:`\hat\Sigma_t` the sample
    covariance of ``S`` fresh noise vectors, sums independent :math:`\hat\Sigma_t` with
    weights :math:`\eta(1 - a)^k`. Normalised by its mean :math:`\eta s^2/a`, the sum's
    noise has the variance of one sample covariance of

    .. math::

        N_\text{eff} = S\,\frac{\big(\sum_k (1-a)^k\big)^2}{\sum_k (1-a)^{2k}}
        = S\,\frac{2 - a}{a}

    vectors (exact at stationarity, any ``S``, :math:`0 < a < 2`).

    Parameters
    ----------
    n_samples : int or array_like of int
        ``S``, noise samples per mirror step.
    lr, weight_decay : float or array_like
        The mirror's learning rate and decay, ``lr * weight_decay < 2``.
    """
    s = check_int_array("n_samples", n_samples)
    a = _mirror_decay(lr, weight_decay)
    with np.errstate(over="ignore"):  # a below ~1e-300: inf (no sampling noise)
        return np.asarray(s, dtype=float) * (2.0 - a) / a


def weight_mirror_floor_angle(n_in, n_samples, lr, weight_decay) -> np.ndarray:
    r"""Weight mirror: the stationary angle (degrees) between ``W`` (fixed) and the mirror's
    feedback ``F``: the floor its sampling noise sets.

    With Gaussian noise :math:`\xi \sim N(0, s^2 I_{n_\text{in}})`, the stationary
    feedback is :math:`F = \frac{s^2}{\lambda} W (I + E)`, ``E`` symmetric with zero mean
    and :math:`\operatorname{Cov}(E_{ij}, E_{kl}) = (\delta_{ik}\delta_{jl} +
    \delta_{il}\delta_{jk})/N_\text{eff}`: variance :math:`1/N_\text{eff}` off the
    diagonal and :math:`2/N_\text{eff}` on it (Gaussian :math:`E\xi^4 = 3 s^4`), with
    :math:`N_\text{eff}` from :func:`weight_mirror_effective_samples`. Then
    :math:`E (E^2) = \frac{n_\text{in} + 1}{N_\text{eff}} I` (the diagonal adds the
    1) and, exactly,

    .. math::

        \frac{E|F_\perp|^2}{E|F_\parallel|^2}
        = \frac{n_\text{in} + 1 - 2\rho}{N_\text{eff} + 2\rho}, \qquad
        \rho = \frac{|W^T W|_F^2}{|W|_F^4} \in \Big[\frac{1}{\operatorname{rank} W},
        1\Big],

    (:math:`F_\parallel`, :math:`F_\perp`: the parts along and across ``W``). This
    function returns the ``W``-free floor

    .. math::

        \angle = \arctan\sqrt{\frac{n_\text{in} + 1}{N_\text{eff}}},

the angle at the means of :math:`\langle W, F\rangle` and :math:`|F|^2` (where
:math:`\tan^2\angle = E|F|^2 / E\langle W, F\rangle^2\,|W|^2 - 1`, both exact). The mean
angle differs from it by second-order terms of the order of the angle's variance (the
:math:`\rho` terms above among them: relative :math:`2\rho/n_\text{in}` in
:math:`\tan^2`, at most 0.4% for ``n_in = 512``, i.e. 0.02 deg at 16 deg);
:func:`weight_mirror_angle_given_w` keeps them and gives the SD. ``docs/results.md``'s
    :math:`\arctan\sqrt{n_\text{in}/N_\text{eff}}` is this without the diagonal's 1.
    Assumes a linear layer (``n_in`` = its inputs) and ``W`` fixed over the mirror's
    window (``1/a`` steps); a growing ``W`` makes ``F`` lag behind it.

    Parameters
    ----------
    n_in : int or array_like of int
        Inputs of the layer (columns of ``W``).
    n_samples, lr, weight_decay
        As in :func:`weight_mirror_effective_samples`.
    """
    n = np.asarray(check_int_array("n_in", n_in), dtype=float)
    n_eff = weight_mirror_effective_samples(n_samples, lr, weight_decay)
    return np.degrees(np.arctan(np.sqrt((n + 1.0) / n_eff)))


def weight_mirror_norm_ratio(n_in, n_samples, lr, weight_decay, noise_std) -> np.ndarray:
    r"""Weight mirror: the stationary norm ratio ``|F| / |W|`` for a fixed ``W``.

    With the notation of :func:`weight_mirror_floor_angle`, :math:`|F|^2 = (s^2/\lambda)^2
    (|W|^2 + 2\operatorname{tr}(W^T W E) + \operatorname{tr}(W^T W E^2))`, whose
    expectation is exactly :math:`(s^2/\lambda)^2 |W|^2 (1 + (n_\text{in} + 1) /
    N_\text{eff})` for every ``W``; so

    .. math::

        \frac{|F|}{|W|} = \frac{s^2}{\lambda}\sqrt{1 + \frac{n_\text{in} + 1}{N_\text{eff}}}

    as the root mean square (exact); the mean ratio is below it by relative
    :math:`O(\rho / N_\text{eff})` (Jensen), :math:`\rho \le 1` as there.

    Parameters
    ----------
    n_in, n_samples, lr, weight_decay
        As in :func:`weight_mirror_floor_angle`.
    noise_std : float or array_like
        ``s``, the mirror noise's SD.
    """
    n = np.asarray(check_int_array("n_in", n_in), dtype=float)
    n_eff = weight_mirror_effective_samples(n_samples, lr, weight_decay)
    s = check_positive("noise_std", noise_std)
    return s**2 / np.asarray(weight_decay, dtype=float) * np.sqrt(1.0 + (n + 1.0) / n_eff)


def weight_mirror_angle_given_w(w, n_samples, lr, weight_decay) -> tuple[float, float]:
    r"""Weight mirror: mean and SD (degrees) of the stationary angle between a fixed ``W``
    and the mirror's feedback ``F``, over the mirror's noise (delta method on exact
    moments).

    At stationarity :math:`F = \eta\,W G` with :math:`G = \sum_j \beta_j \xi_j\xi_j^T /
    s^2`, a weighted sum of independent Gaussian outer products: each step's ``S``
    vectors with weight :math:`\beta = a(1-a)^k / S` after ``k`` more steps
    (:math:`\sum\beta_j = 1`, :math:`a` = ``lr * weight_decay``). With
    :math:`A = W^T W/|W|_F^2`, :math:`\rho = \operatorname{tr}A^2`, :math:`n` = ``n_in``
    and the power sums :math:`P_k = \sum_j \beta_j^k = a^k / ((1 - (1-a)^k) S^{k-1})`
    (:math:`P_2 = 1/N_\text{eff}`), the cosine is :math:`p/\sqrt q` with
    :math:`p = \operatorname{tr}(AG)` and :math:`q = \operatorname{tr}(AG^2)`, whose
    moments are exact (Gaussian moments of :math:`\xi`):

    .. math::

        E p &= 1, \quad E q = 1 + (n + 1) P_2, \quad
        \operatorname{Var} p = 2\rho P_2, \quad
        \operatorname{Cov}(p, q) = 4\rho P_2 + (2\rho n + 4\rho + 2) P_3, \\
        \operatorname{Var} q &= P_4 V_1 + 2 V_2 (P_2^2 - P_4)
            + 8\rho(P_2 - 2P_3 + 2P_4 - P_2^2) + 4(2\rho n + 8\rho + 2)(P_3 - P_4),

    :math:`V_1 = 2\rho n^2 + 20\rho n + 6n + 20 + 48\rho` (the variance of
    :math:`\xi^T A\xi\,|\xi|^2`) and :math:`V_2 = \rho(n + 6) + 1` (of
    :math:`\xi^T A\zeta\,\xi^T\zeta`). The floor of :func:`weight_mirror_floor_angle` is
    the angle at the means of ``p`` and ``q`` (:math:`\tan^2 = (n+1)/N_\text{eff}`). With
    :math:`X = q - p^2` (the part across ``W``, squared), :math:`\tan\angle = \sqrt X/p`,
    :math:`E X = (n + 1 - 2\rho) P_2` (exact) and, to first order
    (:math:`\operatorname{Var} q - 4\operatorname{Cov}(p, q) + 4\operatorname{Var} p` and
    :math:`\operatorname{Cov}(p, q) - 2\operatorname{Var} p`, whose :math:`O(P_2)` parts
    cancel),

    .. math::

        \operatorname{Var} X = (2(n + 2)\rho + 2) P_2^2
            + (2\rho n^2 + 10\rho n + 6n + 10 + 20\rho) P_4, \qquad
        \operatorname{Cov}(X, p) = (2\rho n + 4\rho + 2) P_3;

    the mean and variance of :math:`\arctan(\sqrt X / p)` follow by the delta method about
    :math:`(E X, 1)` (the mean to second order, the variance to first; the same
    first-order variance as in ``p`` and ``q``, where the :math:`O(P_2)` parts cancel only
    numerically).

    The :math:`P_3`, :math:`P_4` terms are the noise's departure from a Gaussian matrix
    (:math:`P_3 \approx \tfrac43 P_2^2` for small ``a``: relative size about
    :math:`n/N_\text{eff}`, whatever ``S`` and ``a``; a Gaussian ``E`` would put the SD
    35% too high at ``n_in = 784``, ``S = 16``, ``lr = 0.02``, ``wd = 1``, 12% at
    ``S = 64``, 3% at ``S = 256``). Neglected: the terms of the next order of the delta
    method (relative to the SD, of the order of the relative spreads of ``p`` and ``X``,
    :math:`\sqrt{2\rho P_2}` and :math:`\sqrt{2\rho/n}`), and the first-order
    approximation of :math:`\operatorname{Var} X` (relative :math:`O(\rho/n)`). Assumes a
    linear layer and ``W`` fixed over the mirror's window.

    Parameters
    ----------
    w : array_like
        ``W``, shape ``(n_out, n_in)`` (a linear layer), nonzero.
    n_samples, lr, weight_decay
        As in :func:`weight_mirror_effective_samples` (scalars).

    Returns
    -------
    (mean_deg, sd_deg) : tuple of float
    """
    w = _weight(w)
    if w.ndim != 2:
        raise ValueError(f"`w` must be a linear layer's weight, shape (n_out, n_in), "
                         f"got shape {w.shape}.")
    s = check_int("n_samples", n_samples)
    lr = check_finite("lr", lr, scalar=True)
    wd = check_finite("weight_decay", weight_decay, scalar=True)
    a = float(_mirror_decay(lr, wd))
    # 1 - (1-a)^k, without cancellation at small a (1 < a < 2: the weights alternate in sign)
    p2, p3, p4 = (a**k / ((-np.expm1(k * np.log1p(-a)) if a < 1 else 1.0 - (1.0 - a) ** k)
                          * s ** (k - 1)) for k in (2, 3, 4))
    n = w.shape[1]
    # rho = tr(A^2) through the Gram matrix of the shorter side
    g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    g = g / np.trace(g)
    rho = float(np.sum(g * g))
    var_p = 2.0 * rho * p2
    # X = q - p^2 = |F_perp|^2 (scaled), tan(angle) = sqrt(X) / p: E X exact; Var X and
    # Cov(X, p) are Var q - 4 Cov(p, q) + 4 Var p and Cov(p, q) - 2 Var p (first order),
    # written out so that their O(P_2) parts cancel exactly
    x = (n + 1.0 - 2.0 * rho) * p2
    var_x = (2.0 * (n + 2.0) * rho + 2.0) * p2 * p2 + (
        2.0 * rho * n * n + 10.0 * rho * n + 6.0 * n + 10.0 + 20.0 * rho) * p4
    cov_xp = (2.0 * rho * n + 4.0 * rho + 2.0) * p3
    if x <= 0.0:  # n_in = 1: F is a multiple of W, the angle is exactly 0
        return 0.0, 0.0
    t = np.sqrt(x)
    d_x, d_p = 1.0 / (2.0 * t * (1.0 + t * t)), -t / (1.0 + t * t)
    d_xx = -1.0 / (2.0 * t * (1.0 + t * t) ** 2) - 1.0 / (4.0 * t**3 * (1.0 + t * t))
    d_pp = 2.0 * t / (1.0 + t * t) ** 2
    d_xp = t / (1.0 + t * t) ** 2 - 1.0 / (2.0 * t * (1.0 + t * t))
    mean = np.arctan(t) + 0.5 * (d_xx * var_x + d_pp * var_p) + d_xp * cov_xp
    var = d_x**2 * var_x + d_p**2 * var_p + 2.0 * d_x * d_p * cov_xp
    mean, sd = np.degrees(mean), np.degrees(np.sqrt(var))
    return float(mean), float(sd)

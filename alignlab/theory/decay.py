r"""Proposition 1: the feedback weights converge to ``B W`` under weight decay.

PFA trains ``W`` and ``R`` with the same optimiser, and ``grad_{R^T} = B grad_W`` exactly,
so in ``D_t = R_t^T - B W_t`` the data term cancels. With coupled weight decay ``kappa``
the gradient seen by ``D`` is ``kappa D`` alone, and for any *linear* optimiser
(SGD, with or without momentum) ``D_t = c(t) D_0`` with a scalar ``c(t)`` that does not
depend on the data. This module gives ``c(t)``.

Adam and AdamW have no such result: their per-coordinate rescaling by the running second
moment is nonlinear in the gradient, so the data term no longer cancels in ``D``.
Sparse feedback (masks re-applied after each update) breaks the cancellation too.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from alignlab._validate import check_int_array, check_momentum, check_positive

__all__ = [
    "decay_factor",
    "decay_factor_continuous",
    "decay_factor_piecewise",
    "decay_factor_schedule",
    "sgd_decay_step",
    "decay_rate_asymptotic",
]


def _roots(ek: np.ndarray, mu: np.ndarray):
    """Discriminant pieces of ``z^2 - (1 + mu - ek) z + mu`` computed without cancellation.

    ``disc = a^2 - 4 mu = ((1 - rho)^2 - ek) ((1 + rho)^2 - ek)`` with ``rho = sqrt(mu)``:
    each factor is formed directly from the inputs, so the sign (real or complex roots) and
    the size of ``disc`` near a repeated root are as accurate as ``ek`` and ``mu`` are.
    """
    rho = np.sqrt(mu)
    a = 1.0 + mu - ek
    disc = ((1.0 - rho) ** 2 - ek) * ((1.0 + rho) ** 2 - ek)
    return rho, a, disc


def decay_factor(steps, lr, weight_decay, momentum=0.0) -> np.ndarray:
    r"""Decay factor ``c(t)`` of ``D_t = R_t^T - B W_t`` after ``t`` SGD steps (Prop. 1, exact).

    Constant learning rate ``eta``, coupled weight decay ``kappa`` and momentum ``mu`` with
    ``torch.optim.SGD`` semantics (buffer ``v_1 = g_1``, ``v_t = mu v_{t-1} + g_t``,
    ``p <- p - eta v_t``, ``g <- g + kappa p``, no dampening, no Nesterov). The gradient that
    reaches ``D`` is ``kappa D`` (the data cancel because ``grad_{R^T} = B grad_W``), so

    .. math::

        c_t = (1 + \mu - \eta\kappa)\, c_{t-1} - \mu\, c_{t-2},
        \qquad c_0 = 1,\quad c_1 = 1 - \eta\kappa,

    i.e. :math:`c_t = \alpha_1 z_1^t + \alpha_2 z_2^t` with :math:`z_{1,2}` the roots of
    :math:`z^2 - (1 + \mu - \eta\kappa) z + \mu = 0`. It is evaluated in a real form that
    stays accurate at a repeated root and for complex roots: with :math:`|z_1| \ge |z_2|`
    and :math:`q = z_2/z_1`,

    .. math::

        c_t = z_1^t \Big[z_1 + (1 - z_1)\,\frac{1 - q^{t+1}}{1 - q}\Big]
        \quad\text{(real roots)},\qquad
        c_t = \rho^t \Big[\rho\cos((t+1)\theta)
        + \big(1 - \tfrac{a}{2}\big)\frac{\sin((t+1)\theta)}{\sin\theta}\Big]
        \quad\text{(complex roots } \rho e^{\pm i\theta}\text{)},

    with :math:`a = 1 + \mu - \eta\kappa`, :math:`\rho = \sqrt{\mu}`. Plain SGD
    (:math:`\mu = 0`) gives :math:`c_t = (1 - \eta\kappa)^t`.

    Parameters
    ----------
    steps : int or array_like of int
        Number of optimiser steps ``t >= 0``.
    lr, weight_decay : float or array_like
        ``eta >= 0`` and ``kappa >= 0``, the same for ``W`` and ``R``.
    momentum : float or array_like, optional
        ``mu`` in [0, 1).

    Returns
    -------
    numpy.ndarray
        ``c(t)``, broadcast over all arguments.

    Notes
    -----
    Exact for any data and any initial ``D_0``. Kolen-Pollack is the case ``B = I``.
    Not valid for Adam/AdamW (nonlinear per-coordinate scaling), for decoupled weight decay
    applied differently to ``W`` and ``R``, or for masked (sparse) feedback.

    Examples
    --------
    >>> round(float(decay_factor(100, lr=0.1, weight_decay=0.01)), 6)  # 0.999 ** 100
    0.904792
    """
    t = check_int_array("steps", steps, minimum=0)
    eta = check_positive("lr", lr, allow_zero=True)
    kappa = check_positive("weight_decay", weight_decay, allow_zero=True)
    mu = check_momentum(momentum)
    t, eta, kappa, mu = np.broadcast_arrays(
        np.asarray(t, dtype=float), np.asarray(eta), np.asarray(kappa), np.asarray(mu)
    )
    ek = eta * kappa
    rho, a, disc = _roots(ek, mu)
    with np.errstate(all="ignore"):
        # plain SGD (mu = 0): a single root 1 - eta kappa; z^t as exp(t log1p(-ek)) keeps
        # full relative accuracy when the root is close to 1 (power(1 - ek, t) loses t ulps)
        plain = np.where(ek <= 1.0, np.exp(t * np.log1p(-ek)), np.power(1.0 - ek, t))

        # real roots, mu > 0: |z1| >= |z2| > 0, q = z2/z1 = mu / z1^2 in (0, 1]
        s = np.sqrt(np.maximum(disc, 0.0))
        sign = np.where(a >= 0, 1.0, -1.0)
        z1abs = 0.5 * (np.abs(a) + s)
        z1 = sign * z1abs
        # 1 - z1 = eta kappa / (1 - z2), 1 - z2 = (1 - mu + eta kappa + s) / 2 > 0 (a > 0)
        one_minus_z1 = np.where(a >= 0, 2.0 * ek / (1.0 - mu + ek + s), 1.0 + z1abs)
        y = s / np.abs(a)
        # log q: atanh form near a repeated root (y -> 0), log form far from it
        log_q = np.where(y < 0.5, -2.0 * np.arctanh(y), np.log(mu) - 2.0 * np.log(z1abs))
        geom = np.where(log_q < 0, np.expm1((t + 1.0) * log_q) / np.expm1(log_q), t + 1.0)
        parity = np.where((sign < 0) & (np.mod(t, 2.0) == 1.0), -1.0, 1.0)
        # |z1|^t from log1p(-(1 - z1)) when 0 < z1 <= 1 (accurate near 1), else directly
        z1_pow = np.where(
            (a >= 0) & (one_minus_z1 < 1.0),
            np.exp(t * np.log1p(-one_minus_z1)),
            np.power(z1abs, t),
        )
        real = parity * z1_pow * (z1 + one_minus_z1 * geom)

        # complex roots rho exp(+-i theta), theta in (0, pi)
        w = np.sqrt(np.maximum(-disc, 0.0))
        theta = np.arctan2(w, a)
        sin_theta = w / (2.0 * rho)
        complex_ = np.exp(0.5 * t * np.log(mu)) * (  # rho^t without rounding rho first
            rho * np.cos((t + 1.0) * theta)
            + 0.5 * (1.0 - mu + ek) * np.sin((t + 1.0) * theta) / sin_theta
        )
        out = np.where(mu == 0, plain, np.where(disc >= 0, real, complex_))
    out = np.where(t == 0, 1.0, out)
    return out


def decay_rate_asymptotic(lr, weight_decay, momentum=0.0) -> np.ndarray:
    r"""Per-step asymptotic decay rate of ``D_t`` (Prop. 1, exact).

    The spectral radius of the SGD-with-momentum recursion,
    :math:`\limsup_t |c_t|^{1/t} = \max(|z_1|, |z_2|)` with :math:`z_{1,2}` the roots of
    :math:`z^2 - (1 + \mu - \eta\kappa) z + \mu = 0`. For small :math:`\eta\kappa`,

    .. math::

        \max|z| \approx 1 - \frac{\eta\kappa}{1 - \mu}
        \qquad (\eta\kappa \ll (1 - \sqrt{\mu})^2),

    and it equals :math:`\sqrt{\mu}` once the roots turn complex
    (:math:`(1-\sqrt\mu)^2 < \eta\kappa < (1+\sqrt\mu)^2`).

    Parameters
    ----------
    lr, weight_decay : float or array_like
        ``eta >= 0``, ``kappa >= 0``.
    momentum : float or array_like, optional
        ``mu`` in [0, 1).

    Returns
    -------
    numpy.ndarray
        The rate; ``D`` decays iff it is < 1.
    """
    eta = check_positive("lr", lr, allow_zero=True)
    kappa = check_positive("weight_decay", weight_decay, allow_zero=True)
    mu = check_momentum(momentum)
    ek = np.asarray(eta) * np.asarray(kappa)
    mu = np.asarray(mu, dtype=float)
    rho, a, disc = _roots(ek, mu)
    real = 0.5 * (np.abs(a) + np.sqrt(np.maximum(disc, 0.0)))
    return np.where(disc >= 0, real, rho + 0.0 * a)


def decay_factor_schedule(lr, weight_decay, momentum=0.0) -> np.ndarray:
    r"""Decay factor ``c_0 .. c_T`` under a per-step schedule of ``eta`` and ``kappa`` (Prop. 1).

    Exact recursion of the pair (``c_t``, ``u_t``) with ``D_t = c_t D_0`` and the momentum
    buffer of ``D`` equal to ``u_t D_0``, in ``torch.optim.SGD`` semantics; the buffer is
    carried across changes of ``eta`` and ``kappa`` (as changing ``param_groups`` does):

    .. math::

        u_t = \mu\, u_{t-1} + \kappa_t\, c_{t-1},\qquad
        c_t = c_{t-1} - \eta_t\, u_t,\qquad c_0 = 1,\ u_0 = 0,

    which reproduces torch's first step ``v_1 = g_1``.

    Parameters
    ----------
    lr, weight_decay : array_like
        Learning rate and weight decay at steps ``1..T`` along axis 0 (broadcast against each
        other; one may be a scalar). Trailing axes are independent schedules.
    momentum : float or array_like, optional
        ``mu`` in [0, 1), broadcast against the trailing axes.

    Returns
    -------
    numpy.ndarray
        Shape ``(T + 1, ...)``: ``c`` at ``t = 0, ..., T``.
    """
    eta = check_positive("lr", lr, allow_zero=True)
    kappa = check_positive("weight_decay", weight_decay, allow_zero=True)
    mu = check_momentum(momentum)
    eta, kappa = np.broadcast_arrays(np.asarray(eta, dtype=float), np.asarray(kappa))
    if eta.ndim == 0:
        raise ValueError(
            "`lr` must be an array of per-step values (axis 0 is the step), got a scalar "
            "together with a scalar `weight_decay`; use decay_factor for constant values."
        )
    batch = np.broadcast_shapes(eta.shape[1:], np.shape(mu))
    eta = np.broadcast_to(eta, (eta.shape[0], *batch))
    kappa = np.broadcast_to(kappa, eta.shape)
    mu = np.broadcast_to(np.asarray(mu, dtype=float), batch)
    out = np.empty((eta.shape[0] + 1, *batch))
    c = np.ones(batch)
    u = np.zeros(batch)
    out[0] = c
    for step in range(eta.shape[0]):  # sequential by nature; each step is vectorised
        c, u = sgd_decay_step(c, u, eta[step], kappa[step], mu, has_buffer=step > 0)
        out[step + 1] = c
    return out


def sgd_decay_step(c, u, lr, weight_decay, momentum, has_buffer=True):
    r"""One ``torch.optim.SGD`` step of the decay pair ``(c, u)`` of Proposition 1.

    With ``D = c D_0`` and ``D``'s momentum buffer ``u D_0``, a step whose gradient of ``D``
    is ``kappa c D_0`` (the data terms cancel) does, in torch's semantics,

    .. math::

        g = \kappa c,\qquad u \leftarrow \mu u + g\ (\text{or } g \text{ on the first
        step}),\qquad c \leftarrow c - \eta\,(u \text{ if } \mu \ne 0 \text{ else } g);

    a step with ``mu = 0`` leaves the buffer alone, as torch does. Exact; the one place the
    recursion is written (``decay_factor_schedule`` and factored PFA's step hook use it).
    Works on Python floats (returns floats) and on broadcastable numpy arrays.

    Parameters
    ----------
    c, u : float or array_like
        The pair before the step (``c_0 = 1``, ``u_0 = 0``).
    lr, weight_decay, momentum : float or array_like
        ``eta``, ``kappa`` and ``mu`` in force for this step (not validated: hot path).
    has_buffer : bool
        Whether the momentum buffer exists (False on the first momentum step).

    Returns
    -------
    (c, u) after the step.
    """
    g = weight_decay * c
    if np.ndim(momentum) == 0:  # scalar fast path (factored PFA calls this every step)
        if momentum != 0.0:
            u = momentum * u + g if has_buffer else g
            g = u
        return c - lr * g, u
    moving = np.asarray(momentum) != 0
    v = momentum * u + g if has_buffer else g
    return c - lr * np.where(moving, v, g), np.where(moving, v, u)


def decay_factor_piecewise(
    segments: Iterable[tuple[int, float, float]], momentum=0.0
) -> np.ndarray:
    r"""Decay factor under a piecewise-constant schedule (Prop. 1, exact).

    ``segments`` lists ``(n_steps, lr, weight_decay)``, e.g. the PFA paper's epoch-0 burst
    ``[(steps_per_epoch, 0.01, 0.03), (99 * steps_per_epoch, 0.01, 9e-5)]``. The momentum
    buffer is carried across segment boundaries, so the factors of the segments do not simply
    multiply (they would only if the buffer were reset); this is :func:`decay_factor_schedule`
    on the expanded schedule:

    .. math::

        u_t = \mu\, u_{t-1} + \kappa_t\, c_{t-1},\qquad c_t = c_{t-1} - \eta_t\, u_t .

    Parameters
    ----------
    segments : iterable of (int, float, float)
        ``(n_steps >= 0, lr >= 0, weight_decay >= 0)`` in order.
    momentum : float, optional
        ``mu`` in [0, 1), the same in every segment.

    Returns
    -------
    numpy.ndarray
        Shape ``(sum(n_steps) + 1,)``: ``c`` at every step boundary, starting with ``c_0 = 1``.
    """
    segments = list(segments)
    if not segments:
        raise ValueError("`segments` must be a non-empty list of (n_steps, lr, weight_decay).")
    counts, etas, kappas = [], [], []
    for i, seg in enumerate(segments):
        if len(seg) != 3:
            raise ValueError(
                f"`segments` must hold (n_steps, lr, weight_decay) triples, got {seg!r} at {i}."
            )
        n, eta, kappa = seg
        counts.append(check_int_array(f"segments[{i}].n_steps", n, minimum=0))
        etas.append(check_positive(f"segments[{i}].lr", eta, allow_zero=True))
        kappas.append(check_positive(f"segments[{i}].weight_decay", kappa, allow_zero=True))
    check_momentum(momentum)
    if np.ndim(momentum) != 0:
        raise ValueError(f"`momentum` must be a scalar, got {momentum!r}.")
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.sum() == 0:
        raise ValueError(f"`segments` must contain at least one step, got {segments!r}.")
    return decay_factor_schedule(
        np.repeat(np.asarray(etas, dtype=float), counts),
        np.repeat(np.asarray(kappas, dtype=float), counts),
        momentum,
    )


def decay_factor_continuous(t, weight_decay) -> np.ndarray:
    r"""Decay factor under gradient flow, ``c(t) = exp(-kappa t)`` (Prop. 1, exact).

    Gradient flow :math:`\dot W = -\nabla_W L - \kappa W`,
    :math:`\dot R^T = -B\nabla_W L - \kappa R^T` gives :math:`\dot D = -\kappa D`, so

    .. math::

        D(t) = e^{-\kappa t} D(0).

    It is the limit of :func:`decay_factor` with ``momentum=0`` and ``steps = t / lr`` as
    ``lr -> 0``.

    Parameters
    ----------
    t : float or array_like
        Time ``>= 0`` (in units where the learning rate is 1).
    weight_decay : float or array_like
        ``kappa >= 0``.

    Returns
    -------
    numpy.ndarray
    """
    t = check_positive("t", t, allow_zero=True)
    kappa = check_positive("weight_decay", weight_decay, allow_zero=True)
    return np.exp(-np.asarray(kappa) * np.asarray(t))

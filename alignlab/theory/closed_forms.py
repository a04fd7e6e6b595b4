r"""Other closed forms: sign-concordant feedback, FA at init, weight mirror, GAIT-prop
(the mismatch and its isotropic estimate), pseudo-inverse feedback.

The angle between two tensors is taken over all their entries (``theory.angle_deg``). Entry
moments come from the one table, :data:`alignlab.theory.ENTRY_MOMENTS`.
"""

from __future__ import annotations

import numpy as np

from alignlab._validate import check_finite, check_int, check_int_array, check_positive

from .entries import abs_moment_ratio, entry_moments

__all__ = [
    "fa_init_cos_mean",
    "fa_init_cos_sd",
    "gaitprop_mismatch",
    "isotropic_angle",
    "pinv_alignment_cos",
    "sign_concordant_angle_iid",
    "sign_concordant_cos",
    "sign_concordant_cos_iid",
    "sign_concordant_cos_random_magnitude",
    "weight_mirror_feedback",
]


def _abs_ratio(ensemble, density, name="ensemble", density_name="density"):
    return entry_moments(ensemble, density, name=name, density_name=density_name).abs_ratio


def sign_concordant_cos(w, axis=None) -> np.ndarray:
    r"""Cosine between ``W`` and sign-concordant feedback ``s * sign(W)`` (exact).

    For any scale ``s > 0``, over the entries, ``N`` of them nonzero (``sign 0 = 0``, as
    ``torch.sign`` and ``np.sign`` give, so a zero entry adds nothing to ``|sign W|``):

    .. math::

        \cos\angle(W, \operatorname{sign} W) = \frac{|W|_1}{\sqrt{N}\,|W|_F} .

    Parameters
    ----------
    w : array_like
        Forward weights (nonzero).
    axis : int or tuple of int, optional
        Axes to reduce over; ``None`` (default) uses every entry.
    """
    w = np.asarray(check_finite("w", w))
    sq = np.sum(w * w, axis=axis)
    if np.any(sq == 0):
        raise ValueError("`w` must have a nonzero norm, got all zeros.")
    n = np.count_nonzero(w, axis=axis)  # |sign W|^2
    return np.sum(np.abs(w), axis=axis) / np.sqrt(n * sq)


def sign_concordant_cos_iid(ensemble: str, density: float = 1.0) -> float:
    r"""Sign-concordant cosine for iid ``W`` (limit as ``N -> inf``).

    By the law of large numbers :math:`|W|_1/(\sqrt N |W|_F) \to E|w|/\sqrt{E w^2}`
    (``N`` the nonzero entries, the moments those of a nonzero entry):
    Gaussian :math:`\sqrt{2/\pi} \approx 0.798` (37.07 deg), uniform
    :math:`\sqrt3/2` (30.0 deg), Rademacher 1 (0 deg); 'sparse' (Gaussian entries kept
    with probability ``density``) the Gaussian's, whatever the density (its zeros have
    ``sign 0``: :func:`abs_moment_ratio`'s ``sqrt(density)`` cancels against
    ``|sign W| = sqrt(density N)``).

    Parameters
    ----------
    ensemble : {'gaussian', 'uniform', 'rademacher', 'sparse'}
        Entry distribution of ``W``.
    density : float, optional
        Only for ``'sparse'``.
    """
    return abs_moment_ratio(ensemble, density) / float(np.sqrt(density))


def sign_concordant_angle_iid(ensemble: str, density: float = 1.0) -> float:
    r"""Sign-concordant angle in degrees for iid ``W`` (limit as ``N -> inf``).

    .. math::

        \angle = \arccos\frac{E|w|}{\sqrt{E w^2}}:\quad
        \text{Gaussian } 37.07^\circ,\ \text{uniform } 30^\circ .

    Parameters
    ----------
    ensemble : {'gaussian', 'uniform', 'rademacher', 'sparse'}
    density : float, optional
        Only for ``'sparse'``.
    """
    return float(np.degrees(np.arccos(min(sign_concordant_cos_iid(ensemble, density), 1.0))))


def sign_concordant_cos_random_magnitude(
    w_ensemble: str, b_ensemble: str, *, w_density: float = 1.0, b_density: float = 1.0
) -> float:
    r"""Cosine between ``W`` and ``|B| * sign(W)``, ``B`` an independent random magnitude.

    The brSF/frSF variants at initialisation; limit as ``N -> inf`` for iid entries:

    .. math::

        \cos \to \frac{E|w|\,E|b|}{\sqrt{E w^2\, E b^2}}
        \quad (\text{the moments of } w \text{ those of a nonzero entry}).

    Parameters
    ----------
    w_ensemble, b_ensemble : {'gaussian', 'uniform', 'rademacher', 'sparse'}
        Entry distributions of ``W`` and of the magnitudes ``B``.
    w_density, b_density : float, optional
        Only for ``'sparse'``.
    """
    # a zero of W has sign 0 (no feedback there): W's ratio over its nonzero entries
    w_ratio = _abs_ratio(w_ensemble, w_density, "w_ensemble", "w_density") / float(
        np.sqrt(w_density))
    return w_ratio * _abs_ratio(b_ensemble, b_density, "b_ensemble", "b_density")


def fa_init_cos_mean(n_entries) -> np.ndarray:
    r"""Mean cosine between ``W`` and fixed random feedback ``B`` (FA at init; exact): 0.

    For ``B`` with a sign-symmetric distribution independent of ``W``,
    :math:`E\cos\angle(W, B) = 0`.

    Parameters
    ----------
    n_entries : int or array_like of int
        ``N``, the number of entries of ``W``.
    """
    n = check_int_array("n_entries", n_entries)
    return np.zeros_like(np.asarray(n), dtype=float)


def fa_init_cos_sd(n_entries) -> np.ndarray:
    r"""SD of the cosine between ``W`` and fixed random feedback ``B`` (FA at init).

    .. math::

        \operatorname{sd}\cos\angle(W, B) = \frac{1}{\sqrt N},

    exact for Gaussian ``B`` (rotation invariance: :math:`\cos^2 \sim
    \mathrm{Beta}(1/2, (N-1)/2)`, mean :math:`1/N`) and any fixed nonzero ``W``;
    approximate (limit as ``N -> inf``) for other iid ensembles.

    Parameters
    ----------
    n_entries : int or array_like of int
        ``N``, the number of entries of ``W``.
    """
    n = check_int_array("n_entries", n_entries)
    return 1.0 / np.sqrt(np.asarray(n, dtype=float))


def weight_mirror_feedback(w, noise_sd) -> np.ndarray:
    r"""Expected weight-mirror feedback ``E[xi (W xi)^T] = s^2 W^T`` (exact).

    With input noise :math:`\xi \sim N(0, s^2 I)` driven through ``W`` (any zero-mean
    noise with covariance :math:`s^2 I`),

    .. math::

        E[\xi (W\xi)^T] = E[\xi\xi^T]\, W^T = s^2 W^T,

    so the mirrored feedback aligns with :math:`W^T` up to scale (angle 0 in expectation).

    Parameters
    ----------
    w : array_like
        ``W`` of shape ``(..., n_out, n_in)``.
    noise_sd : float
        ``s > 0``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., n_in, n_out)``.
    """
    w = np.asarray(check_finite("w", w))
    s = check_positive("noise_sd", noise_sd)
    if w.ndim < 2:
        raise ValueError(f"`w` must have shape (..., n_out, n_in), got {w.shape}.")
    return np.asarray(s) ** 2 * np.swapaxes(w, -1, -2)


def gaitprop_mismatch(w) -> np.ndarray:
    r"""GAIT-prop's mismatch ``W^{-1} - W^T`` via the orthogonality residual (exact).

    .. math::

        W^{-1} - W^T = W^T\big[(W W^T)^{-1} - I\big] = -W^{-1}\,(W W^T - I),

    first order in the residual :math:`W W^T - I`; zero for orthogonal ``W``, where the
    GAIT-prop update equals BP's as the nudge ``gamma -> 0``. The last form is what is
    computed: it does not subtract two nearly equal matrices (near-orthogonal ``W``) and,
    unlike the middle one, it does not square the condition number of ``W``.

    Parameters
    ----------
    w : array_like
        Square invertible ``W``, shape ``(..., n, n)``.

    Returns
    -------
    numpy.ndarray
        ``W^{-1} - W^T``, shape ``(..., n, n)``.
    """
    w = np.asarray(check_finite("w", w))
    if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"`w` must be square, shape (..., n, n), got {w.shape}.")
    residual = w @ np.swapaxes(w, -1, -2) - np.eye(w.shape[-1])  # W W^T - I
    try:
        return -np.linalg.solve(w, residual)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"`w` must be invertible: {err}.") from err


def isotropic_angle(residual, n, layers_above) -> np.ndarray:
    r"""GAIT-prop: rough first-order angle (degrees) between its update and BP's for random
    perturbations of orthogonality.

    A layer with ``k = layers_above`` perturbed layers above it, each of width ``n`` with
    residual :math:`|W W^T - I|_F` = ``residual``, is off by about

    .. math::

        \angle \approx |R|_F \sqrt{k / n}\ \text{radians},

    from :math:`|R\delta| \approx |R|_F |\delta| / \sqrt n` per layer above, independent
    across layers (isotropic ``R``; first order in ``|R|``: see ``docs/gaitprop.md`` and
    :func:`alignlab.gaitprop.first_order_angles`, the prediction it estimates).
    Vectorised.

    Parameters
    ----------
    residual : float or array_like
        :math:`|W W^T - I|_F` of each layer above, >= 0.
    n : int
        Width of the layers.
    layers_above : int or array_like of int
        ``k``.
    """
    residual = check_positive("residual", residual, allow_zero=True)
    n = check_int("n", n)
    return np.degrees(np.asarray(residual) * np.sqrt(np.asarray(layers_above) / n))


def pinv_alignment_cos(n_rows, n_cols) -> np.ndarray:
    r"""Cosine between a Gaussian matrix ``B`` and ``pinv(B)^T`` (limit as ``N -> inf``).

    For ``B`` of shape ``(N, C)``, ``N >= C``, :math:`\operatorname{pinv}(B)^T = B S^{-1}`
    with :math:`S = B^T B`, so :math:`\cos = C / \sqrt{\operatorname{tr} S\,
    \operatorname{tr} S^{-1}}`; with Marchenko-Pastur's :math:`\operatorname{tr}S^{-1}/C
    \to 1/(1 - C/N)`,

    .. math::

        \cos\angle(B, \operatorname{pinv}(B)^T) \to \sqrt{1 - \frac{\min(N, C)}{\max(N, C)}},

    which tends to 0 for square matrices.

    Parameters
    ----------
    n_rows, n_cols : int or array_like of int
        ``N`` and ``C``.
    """
    n = np.asarray(check_int_array("n_rows", n_rows), dtype=float)
    c = np.asarray(check_int_array("n_cols", n_cols), dtype=float)
    return np.sqrt(1.0 - np.minimum(n, c) / np.maximum(n, c))

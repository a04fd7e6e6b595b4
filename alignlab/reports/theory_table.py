"""The ``alignlab theory`` table: Propositions 2 and 3 evaluated at a list of ratios.

No simulation and no torch: closed forms only (:mod:`alignlab.theory`). One row per
expansion ratio ``r``; the finite-size columns use ``n_mid = floor(n_out r)`` (the
package's one rounding rule, :func:`alignlab._linalg.mid_width`) and the entry kurtosis of
``B``'s law.

Columns: ``ratio``, ``lambda = 1/r``; the limits ``angle_deg = arctan(1/sqrt r)``,
``cos``, ``norm_ratio = sqrt(1 + 1/r)``, ``eig_sd = 1/sqrt r``; ``n_mid`` and the exact
finite-size ``angle_finite_deg``, ``norm_ratio_finite``, ``eig_sd_finite``, ``m2_finite``;
and ``orthogonal_angle_deg``, the angle for Haar-orthogonal ``B`` at the same ratio: 0 for
``r >= 1`` (PFA-o, ``B^T B = I``), ``arctan(sqrt(1/r - 1))`` below, where no ``B`` has
orthonormal columns and the orthogonal law is a tight frame
(:func:`alignlab.theory.path_alignment_angle_orthogonal`). Every column is defined for
every ``r > 0``; the values stay finite at any ratio (``r = 1e18`` gives
``n_mid = 10^20``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alignlab._linalg import mid_width
from alignlab._records import Records
from alignlab._validate import check_int, check_positive

__all__ = ["THEORY_COLUMNS", "theory_table"]

THEORY_COLUMNS = (
    "ratio", "lambda", "angle_deg", "cos", "norm_ratio", "eig_sd", "n_mid",
    "angle_finite_deg", "norm_ratio_finite", "eig_sd_finite", "m2_finite",
    "orthogonal_angle_deg",
)


def theory_table(ratios: Sequence[float], n_out: int = 100, ensemble: str = "uniform",
                 density: float | None = None) -> Records:
    """The ``alignlab theory`` table as :class:`~alignlab.Records`, one row per ratio.

    Parameters
    ----------
    ratios : sequence of float
        Expansion ratios ``r = n_mid / n_out > 0``.
    n_out : int
        Rows of ``W``, for the finite-size columns.
    ensemble : str
        Law of ``B``'s entries (an iid ensemble of :data:`alignlab.theory.ENTRY_MOMENTS`):
        it sets the kurtosis of the finite-size columns.
    density : float, optional
        Fraction of nonzero entries, for an ensemble that takes one ('sparse'); ``None``
        uses the ensemble's default. Other ensembles refuse a density.
    """
    from alignlab import theory

    r = np.atleast_1d(check_positive("ratios", list(np.atleast_1d(ratios))))
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"`ratios` must be a non-empty list of ratios > 0, got {ratios!r}.")
    if np.any(r < 1.0 / np.finfo(float).max):
        raise ValueError(f"`ratios` must be >= {1.0 / np.finfo(float).max:.3g} (so that "
                         f"lambda = 1/r is a finite float), got {float(r.min())!r}.")
    n_out = check_int("n_out", n_out)
    k4 = theory.entry_kurtosis(ensemble, **({} if density is None else {"density": density}))
    n_mid = [int(mid_width(n_out, float(x))) for x in r]  # Python ints: no int64 overflow
    n_mid_f = np.array(n_mid, dtype=float)
    with np.errstate(divide="raise", over="raise", invalid="raise"):  # a NaN here is a bug
        cols = {
            "ratio": r,
            "lambda": 1.0 / r,
            "angle_deg": theory.path_alignment_angle(r),
            "cos": theory.path_alignment_cos(r),
            "norm_ratio": theory.path_norm_ratio(r),
            "eig_sd": theory.eigenvalue_sd(r),
            "n_mid": n_mid,
            "angle_finite_deg": theory.path_alignment_angle_finite(n_out, n_mid_f, k4),
            "norm_ratio_finite": theory.path_norm_ratio_finite(n_out, n_mid_f, k4),
            "eig_sd_finite": theory.eigenvalue_sd_finite(n_out, n_mid_f, k4),
            "m2_finite": theory.mp_second_moment_finite(n_out, n_mid_f, k4),
            "orthogonal_angle_deg": theory.path_alignment_angle_orthogonal(r),
        }
    rows = [
        {k: (v[i] if k == "n_mid" else float(np.broadcast_to(v, r.shape)[i]))
         for k, v in cols.items()}
        for i in range(r.size)
    ]
    return Records(rows, THEORY_COLUMNS)

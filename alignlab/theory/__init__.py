"""Closed forms for feedback-alignment learning rules (numpy/scipy/sympy only; no torch).

Proposition 1 (``decay``): ``D_t = R_t^T - B W_t`` decays as ``c(t) D_0`` under SGD.
Proposition 2 (``marchenko_pastur``): the spectrum of ``B^T B`` and its finite-size moments.
Proposition 3 (``alignment``): path alignment against the expansion ratio, PFA-o, dynamics.
``entries``: the one table of entry moments per ensemble (``ENTRY_MOMENTS``), which
``alignlab.sim`` reads too; ``DEFAULT_ENSEMBLE`` ('uniform') is the package's default ``B``.
``closed_forms``: sign-concordant, FA at init, weight mirror, GAIT-prop, pseudo-inverse.
``symbolic``: sympy derivations of the above (imported lazily: sympy is slow to load).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .alignment import (
    alignment_dynamics_cos,
    angle_deg,
    eigenvalue_sd_orthogonal,
    norm_ratio,
    path_alignment_angle,
    path_alignment_angle_finite,
    path_alignment_angle_orthogonal,
    path_alignment_cos,
    path_alignment_cos_finite,
    path_norm_ratio,
    path_norm_ratio_finite,
    path_norm_ratio_orthogonal,
)
from .closed_forms import (
    fa_init_cos_mean,
    fa_init_cos_sd,
    gaitprop_mismatch,
    pinv_alignment_cos,
    sign_concordant_angle_iid,
    sign_concordant_cos,
    sign_concordant_cos_iid,
    sign_concordant_cos_random_magnitude,
    weight_mirror_feedback,
)
from .decay import (
    decay_factor,
    decay_factor_continuous,
    decay_factor_piecewise,
    decay_factor_schedule,
    decay_rate_asymptotic,
    sgd_decay_step,
)
from .entries import (
    DEFAULT_ENSEMBLE,
    DEFAULT_KURTOSIS,
    ENTRY_MOMENTS,
    EntryMoments,
    abs_moment_ratio,
    entry_kurtosis,
    entry_moments,
)
from .marchenko_pastur import (
    MarchenkoPasturGen,
    eigenvalue_sd,
    eigenvalue_sd_finite,
    marchenko_pastur,
    mp_edges,
    mp_second_moment_finite,
    narayana_moment,
)

__all__ = [
    # Proposition 1
    "decay_factor",
    "decay_factor_continuous",
    "decay_factor_piecewise",
    "decay_factor_schedule",
    "sgd_decay_step",
    "decay_rate_asymptotic",
    # entry moments per ensemble (the one table)
    "DEFAULT_ENSEMBLE",
    "DEFAULT_KURTOSIS",
    "ENTRY_MOMENTS",
    "EntryMoments",
    "abs_moment_ratio",
    "entry_kurtosis",
    "entry_moments",
    # Proposition 2
    "MarchenkoPasturGen",
    "eigenvalue_sd",
    "eigenvalue_sd_finite",
    "marchenko_pastur",
    "mp_edges",
    "mp_second_moment_finite",
    "narayana_moment",
    # Proposition 3 and geometry
    "alignment_dynamics_cos",
    "angle_deg",
    "eigenvalue_sd_orthogonal",
    "norm_ratio",
    "path_alignment_angle",
    "path_alignment_angle_finite",
    "path_alignment_angle_orthogonal",
    "path_alignment_cos",
    "path_alignment_cos_finite",
    "path_norm_ratio",
    "path_norm_ratio_finite",
    "path_norm_ratio_orthogonal",
    # other closed forms
    "fa_init_cos_mean",
    "fa_init_cos_sd",
    "gaitprop_mismatch",
    "pinv_alignment_cos",
    "sign_concordant_angle_iid",
    "sign_concordant_cos",
    "sign_concordant_cos_iid",
    "sign_concordant_cos_random_magnitude",
    "weight_mirror_feedback",
    # sympy derivations (lazy)
    "symbolic",
]


def __getattr__(name: str) -> Any:
    if name == "symbolic":
        return import_module("alignlab.theory.symbolic")
    raise AttributeError(f"module 'alignlab.theory' has no attribute {name!r}")

"""Closed forms for feedback-alignment learning rules (numpy/scipy/sympy only; no torch).

Proposition 1 (``decay``): ``D_t = R_t^T - B W_t`` decays as ``c(t) D_0`` under SGD.
Proposition 2 (``spectrum``): the spectrum of ``B^T B`` and its finite-size moments; its
limit law as a scipy.stats distribution (``mp_law``, imported only when asked for).
Proposition 3 (``alignment``): path alignment against the expansion ratio, PFA-o.
Propositions 1 + 3 over time (``dynamics``): the alignment predicted from logged scalars.
``entries``: the one table of entry moments per ensemble (``ENTRY_MOMENTS``), which
``alignlab.sim`` reads too; ``DEFAULT_ENSEMBLE`` ('uniform') is the package's default ``B``.
``closed_forms``: sign-concordant, FA at init, weight mirror, GAIT-prop, pseudo-inverse.
``rules``: the other learning rules' predictions at finite size (brSF/frSF given ``W``, the
weight mirror's stationary floor, FA's independence null, uSF's spread over iid ``W``).
``symbolic``: sympy derivations of the above.
``teacher_student``: the teacher-student ODEs of online learning in two-layer networks
(BP, FA, DFA; Saad & Solla, Goldt et al., Refinetti et al.), their closed-form averages
for erf and their integration (``R`` there is the student-teacher overlap, not PFA's ``R``).

Every name is imported on first use (PEP 562): ``alignlab.nn`` needs only
``decay.sgd_decay_step``, and loading scipy.stats would add about 2 s to every training
process.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# name -> submodule that defines it
_SOURCES = {
    **dict.fromkeys((
        "path_alignment_dynamics_angle",
        "path_alignment_dynamics_cos",
        "path_norm_ratio_dynamics",
    ), "dynamics"),
    **dict.fromkeys((
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
    ), "alignment"),
    **dict.fromkeys((
        "fa_init_cos_mean",
        "fa_init_cos_sd",
        "gaitprop_mismatch",
        "pinv_alignment_cos",
        "sign_concordant_angle_iid",
        "sign_concordant_cos",
        "sign_concordant_cos_iid",
        "sign_concordant_cos_random_magnitude",
        "weight_mirror_feedback",
    ), "closed_forms"),
    **dict.fromkeys((
        "decay_factor",
        "decay_factor_continuous",
        "decay_factor_piecewise",
        "decay_factor_schedule",
        "decay_rate_asymptotic",
        "sgd_decay_step",
    ), "decay"),
    **dict.fromkeys((
        "DEFAULT_ENSEMBLE",
        "DEFAULT_KURTOSIS",
        "ENTRY_MOMENTS",
        "EntryMoments",
        "abs_moment_ratio",
        "entry_kurtosis",
        "entry_moments",
    ), "entries"),
    **dict.fromkeys(("MarchenkoPasturGen", "marchenko_pastur"), "mp_law"),
    **dict.fromkeys((
        "TeacherStudentCurve",
        "covariance",
        "generalisation_error",
        "i2",
        "i3",
        "i4",
        "integrate",
        "j2",
        "log_time_grid",
        "order_parameter_derivatives",
    ), "teacher_student"),
    **dict.fromkeys((
        "eigenvalue_sd",
        "eigenvalue_sd_finite",
        "mp_edges",
        "mp_second_moment_finite",
        "narayana_moment",
    ), "spectrum"),
    "isotropic_angle": "closed_forms",
    **dict.fromkeys((
        "fa_null_angle",
        "random_magnitude_angle_given_w",
        "sign_concordant_angle_sd_iid",
        "weight_mirror_angle_given_w",
        "weight_mirror_effective_samples",
        "weight_mirror_floor_angle",
        "weight_mirror_norm_ratio",
    ), "rules"),
}

__all__ = [*_SOURCES, "symbolic"]


def __getattr__(name: str) -> Any:
    if name == "symbolic":
        return import_module("alignlab.theory.symbolic")
    if name in _SOURCES:
        value = getattr(import_module(f"alignlab.theory.{_SOURCES[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'alignlab.theory' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

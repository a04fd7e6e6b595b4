"""Monte Carlo random-matrix simulators for PFA (torch backend: CPU or GPU).

A tour, in the order a sample meets them:

* :mod:`~alignlab.sim.ensembles`: *what is drawn*: laws for ``B`` and ``W`` (registry
  :data:`ENSEMBLES`; kurtosis from :data:`alignlab.theory.ENTRY_MOMENTS`).
* :mod:`~alignlab.sim.pfa`: *what is computed per sample*: :func:`sample_converged_pfa`
  (the fast path of Figure 3, optional exact Wishart/Bartlett sampling), nested sizes,
  and :func:`literal_pfa_sample` (the literal recipe: test oracle, benchmark baseline).
* :mod:`~alignlab.sim.engine`: *how it is run*: numpy/torch backends, chunks under
  ``max_chunk_bytes``, threads and double buffering.
* :mod:`~alignlab.sim.memory`: *whether one sample fits*: :func:`sample_bytes`,
  :func:`memory_budget` (``ALIGNLAB_MEMORY_BUDGET``), :func:`check_memory`.
* :mod:`~alignlab.sim.estimators`: *what is reported*: spectra, path alignment, moments
  with standard errors over samples, KS distance to Marchenko-Pastur.
* :mod:`~alignlab.sim.simulators`: :func:`simulate_spectrum`, :func:`simulate_path_alignment`,
  mirroring :mod:`alignlab.theory`.
* :mod:`~alignlab.sim.rules`: the other rules' feedback around a given ``W``, mirroring
  :mod:`alignlab.theory.rules`: :func:`simulate_random_magnitude` (brSF/frSF),
  :func:`simulate_weight_mirror` (the literal mirror recursion), :func:`simulate_fa_null`
  (FA's independence null), :func:`simulate_sign_concordant_iid` (uSF at init).
* :mod:`~alignlab.sim.teacher_student`: online SGD of a two-layer teacher-student network
  (BP, FA, DFA), many seeds at once: :func:`draw_teacher_student`,
  :func:`simulate_teacher_student` (and :func:`simulate_one_seed_literal`, its oracle).
* :mod:`~alignlab.sim.trained`: Monte Carlos around a trained layer (its ``W`` kept):
  :func:`fixed_point_mc`, :func:`conditional_mc`, :func:`dynamics_mc`, each an
  :class:`AngleStats`.

``B`` defaults to the paper's Xavier-uniform everywhere (:data:`alignlab.theory.DEFAULT_ENSEMBLE`).

Every random function takes ``rng`` (None, an int, a SeedSequence, a numpy Generator or
a torch.Generator; never global state); the same seed gives identical results.
See ``docs/simulator.md``.
"""

from alignlab.sim.ensembles import (
    ENSEMBLES,
    Ensemble,
    Gaussian,
    Masked,
    Orthogonal,
    Rademacher,
    Sparse,
    Uniform,
    get_ensemble,
)
from alignlab.sim.estimators import (
    Estimate,
    PathSamples,
    angle_jensen_gap,
    angle_of_moments,
    btb_eigenvalues,
    estimate,
    ks_distance,
    literal_path_statistics,
    path_statistics,
    pooled_eigenvalue_sd,
    spectral_moment,
)
from alignlab.sim.memory import check_memory, check_sample, memory_budget, sample_bytes
from alignlab.sim.pfa import (
    METHODS,
    check_method,
    literal_pfa_sample,
    n_mid_from_ratio,
    sample_btb,
    sample_converged_pfa,
    sample_converged_pfa_nested,
    sample_pfa_matrices,
    sweep_expansion_ratio,
)
from alignlab.sim.rules import (
    simulate_fa_null,
    simulate_random_magnitude,
    simulate_sign_concordant_iid,
    simulate_weight_mirror,
)
from alignlab.sim.simulators import (
    PathAlignmentResult,
    SpectrumResult,
    simulate_path_alignment,
    simulate_spectrum,
)
from alignlab.sim.teacher_student import (
    TeacherStudentInit,
    TeacherStudentPath,
    draw_teacher_student,
    simulate_one_seed_literal,
    simulate_teacher_student,
)
from alignlab.sim.trained import AngleStats, conditional_mc, dynamics_mc, fixed_point_mc

__all__ = [
    "AngleStats",
    "ENSEMBLES",
    "METHODS",
    "Ensemble",
    "Estimate",
    "Gaussian",
    "Masked",
    "Orthogonal",
    "PathAlignmentResult",
    "PathSamples",
    "Rademacher",
    "Sparse",
    "SpectrumResult",
    "TeacherStudentInit",
    "TeacherStudentPath",
    "Uniform",
    "angle_jensen_gap",
    "angle_of_moments",
    "btb_eigenvalues",
    "check_memory",
    "check_method",
    "check_sample",
    "conditional_mc",
    "draw_teacher_student",
    "dynamics_mc",
    "estimate",
    "fixed_point_mc",
    "get_ensemble",
    "ks_distance",
    "literal_path_statistics",
    "literal_pfa_sample",
    "memory_budget",
    "n_mid_from_ratio",
    "path_statistics",
    "pooled_eigenvalue_sd",
    "sample_bytes",
    "sample_btb",
    "sample_converged_pfa",
    "sample_converged_pfa_nested",
    "sample_pfa_matrices",
    "simulate_one_seed_literal",
    "simulate_path_alignment",
    "simulate_spectrum",
    "simulate_teacher_student",
    "spectral_moment",
    "sweep_expansion_ratio",
    "simulate_fa_null",
    "simulate_random_magnitude",
    "simulate_sign_concordant_iid",
    "simulate_weight_mirror",
]

"""Monte Carlo random-matrix simulators for PFA (torch backend: CPU or GPU).

* :mod:`~alignlab.sim.ensembles`: laws for ``B`` and ``W`` (registry :data:`ENSEMBLES`).
* :mod:`~alignlab.sim.pfa`: :func:`sample_converged_pfa` (the fast path of Figure 3,
  optional exact Wishart/Bartlett sampling) and :func:`literal_pfa_sample` (the literal
  recipe, test oracle and benchmark baseline).
* :mod:`~alignlab.sim.estimators`: spectra, path alignment, moments with standard errors
  over samples, KS distance to Marchenko-Pastur.
* :mod:`~alignlab.sim.simulators`: :func:`simulate_spectrum`, :func:`simulate_path_alignment`,
  mirroring :mod:`alignlab.theory`.

Every random function takes ``rng`` (None, an int, a SeedSequence, a numpy Generator or
a torch.Generator; never global state); the same seed gives identical results.
See ``docs/simulator.md``.
"""

from alignlab.sim.ensembles import (
    ENSEMBLES,
    Ensemble,
    Gaussian,
    Orthogonal,
    Rademacher,
    Sparse,
    Uniform,
    get_ensemble,
)
from alignlab.sim.estimators import (
    Estimate,
    PathSamples,
    btb_eigenvalues,
    estimate,
    ks_distance,
    literal_path_statistics,
    path_statistics,
    pooled_eigenvalue_sd,
    spectral_moment,
)
from alignlab.sim.pfa import (
    METHODS,
    literal_pfa_sample,
    n_mid_from_ratio,
    sample_btb,
    sample_converged_pfa,
    sample_converged_pfa_nested,
    sample_pfa_matrices,
    sweep_expansion_ratio,
)
from alignlab.sim.simulators import (
    PathAlignmentResult,
    SpectrumResult,
    simulate_path_alignment,
    simulate_spectrum,
)

__all__ = [
    "ENSEMBLES",
    "METHODS",
    "Ensemble",
    "Estimate",
    "Gaussian",
    "Orthogonal",
    "PathAlignmentResult",
    "PathSamples",
    "Rademacher",
    "Sparse",
    "SpectrumResult",
    "Uniform",
    "btb_eigenvalues",
    "estimate",
    "get_ensemble",
    "ks_distance",
    "literal_path_statistics",
    "literal_pfa_sample",
    "n_mid_from_ratio",
    "path_statistics",
    "pooled_eigenvalue_sd",
    "sample_btb",
    "sample_converged_pfa",
    "sample_converged_pfa_nested",
    "sample_pfa_matrices",
    "simulate_path_alignment",
    "simulate_spectrum",
    "spectral_moment",
    "sweep_expansion_ratio",
]

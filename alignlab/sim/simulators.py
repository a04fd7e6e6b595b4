"""Simulators that mirror the closed forms of :mod:`alignlab.theory` (Propositions 2, 3).

Each takes the proposition's parameters plus keyword-only ``n_samples`` and ``rng`` and
returns a small frozen result of :class:`~alignlab.sim.Estimate` s, so a test compares
``theory(n_out, n_mid, kurtosis)`` with ``simulate(n_out, n_mid, ...).field.mean``
within a few ``.se``.

===========================================  ===========================================
theory (alignlab.theory)                     simulation
===========================================  ===========================================
``mp_second_moment_finite`` (exact)          ``simulate_spectrum(...).second_moment``
``eigenvalue_sd_finite`` / ``eigenvalue_sd``  ``simulate_spectrum(...).eigenvalue_sd``
``marchenko_pastur(lam).cdf`` (limit)        ``simulate_spectrum(...).ks``
``path_alignment_angle(_finite)``            ``simulate_path_alignment(...).angle_deg``
``path_alignment_cos(_finite)``              ``simulate_path_alignment(...).cos``
``path_norm_ratio(_finite)``                 ``simulate_path_alignment(...).norm_ratio``
1 (exact), ``mp_second_moment_finite``       ``.inner_ratio``, ``.norm_ratio_sq``
===========================================  ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from alignlab._records import Records
from alignlab._rng import RngLike
from alignlab.sim.ensembles import Ensemble, resolve_ensemble
from alignlab.sim.estimators import (
    Estimate,
    PathSamples,
    estimate,
    ks_distance,
    pooled_eigenvalue_sd,
    spectral_moment,
)
from alignlab.sim.pfa import DEFAULT_CHUNK_BYTES, btb_eigenvalue_samples, sample_converged_pfa
from alignlab.theory.entries import DEFAULT_ENSEMBLE

__all__ = [
    "PathAlignmentResult",
    "SpectrumResult",
    "simulate_path_alignment",
    "simulate_spectrum",
]


def _rows(meta: dict, estimates: dict[str, Estimate]) -> Records:
    return Records({**meta, "statistic": name, **est.as_dict()}
                   for name, est in estimates.items())


@dataclass(frozen=True)
class SpectrumResult:
    """Monte Carlo spectrum of ``M = B^T B`` (Proposition 2).

    eigenvalue_mean : pooled mean eigenvalue, ``E tr M / n_out`` (exactly 1).
    second_moment : ``E tr M^2 / n_out`` (exactly ``mp_second_moment_finite``).
    eigenvalue_sd : pooled SD of all eigenvalues (the spread of the spectrum), delta-method SE.
    ks : KS distance of the pooled eigenvalues to MP(``lam``), a distance (no p-value).
    """

    n_out: int
    n_mid: int
    ensemble: str
    kurtosis: float | None
    eigenvalue_mean: Estimate
    second_moment: Estimate
    eigenvalue_sd: Estimate
    ks: float
    eigenvalues: np.ndarray = field(repr=False)

    @property
    def lam(self) -> float:
        return self.n_out / self.n_mid

    def to_records(self) -> Records:
        meta = {"n_out": self.n_out, "n_mid": self.n_mid, "ensemble": self.ensemble}
        recs = _rows(meta, {"eigenvalue_mean": self.eigenvalue_mean,
                            "second_moment": self.second_moment,
                            "eigenvalue_sd": self.eigenvalue_sd})
        nan = float("nan")
        return Records(list(recs) + [{**meta, "statistic": "ks_distance", "mean": self.ks,
                                      "sd": nan, "se": nan, "n": self.eigenvalue_mean.n}])


@dataclass(frozen=True)
class PathAlignmentResult:
    """Monte Carlo path alignment at the PFA fixed point (Proposition 3).

    cos, angle_deg, norm_ratio : per-sample statistics averaged over samples (their
    expectations approach the closed forms; at finite size they differ from them by a
    Jensen term of order ``Var``, see the docs).
    inner_ratio : ``<W, P^T> / |W|^2``, expectation exactly 1.
    norm_ratio_sq : ``|P^T|^2 / |W|^2``, expectation exactly ``mp_second_moment_finite``.
    """

    n_out: int
    n_mid: int
    n_in: int
    ensemble: str
    kurtosis: float | None
    cos: Estimate
    angle_deg: Estimate
    norm_ratio: Estimate
    inner_ratio: Estimate
    norm_ratio_sq: Estimate
    samples: PathSamples = field(repr=False)

    def to_records(self) -> Records:
        meta = {"n_out": self.n_out, "n_mid": self.n_mid, "n_in": self.n_in,
                "ensemble": self.ensemble}
        return _rows(meta, {"cos": self.cos, "angle_deg": self.angle_deg,
                            "norm_ratio": self.norm_ratio, "inner_ratio": self.inner_ratio,
                            "norm_ratio_sq": self.norm_ratio_sq})


def simulate_spectrum(
    n_out: int,
    n_mid: int,
    *,
    n_samples: int,
    ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    rng: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    method: str = "direct",
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> SpectrumResult:
    """Spectrum of ``B^T B`` over ``n_samples`` draws of ``B`` ``(n_mid, n_out)`` with iid
    entries of variance ``1/n_mid`` (Proposition 2). Arguments as in
    :func:`~alignlab.sim.sample_converged_pfa`; ``ensemble`` defaults to 'uniform' (the
    paper's Xavier-uniform ``B``), mirroring the theory's default kurtosis 9/5: both are
    :data:`alignlab.theory.DEFAULT_ENSEMBLE`."""
    eig, ens, _ = btb_eigenvalue_samples(n_out, n_mid, n_samples=n_samples, ensemble=ensemble,
                                         rng=rng, device=device, dtype=dtype, method=method,
                                         max_chunk_bytes=max_chunk_bytes)
    return SpectrumResult(
        n_out=int(n_out), n_mid=int(n_mid), ensemble=ens.name, kurtosis=ens.kurtosis,
        eigenvalue_mean=spectral_moment(eig, 1), second_moment=spectral_moment(eig, 2),
        eigenvalue_sd=pooled_eigenvalue_sd(eig), ks=ks_distance(eig, int(n_out) / int(n_mid)),
        eigenvalues=eig,
    )


def simulate_path_alignment(
    n_out: int,
    n_mid: int,
    *,
    n_in: int = 256,
    n_samples: int,
    ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    w_ensemble: str | Ensemble = "uniform",
    rng: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    method: str = "direct",
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> PathAlignmentResult:
    """Path alignment between ``W`` and ``P^T = B^T B W`` at the PFA fixed point
    (Proposition 3), over ``n_samples`` independent ``(B, W)``. Arguments as in
    :func:`~alignlab.sim.sample_converged_pfa` (``n_in`` defaults to Figure 3's 256;
    ``ensemble`` to 'uniform', the theory's default kurtosis 9/5)."""
    s = sample_converged_pfa(n_out, n_mid, n_in, n_samples=n_samples, ensemble=ensemble,
                             w_ensemble=w_ensemble, rng=rng, device=device, dtype=dtype,
                             method=method, max_chunk_bytes=max_chunk_bytes)
    kurt = resolve_ensemble("ensemble", ensemble).kurtosis
    return PathAlignmentResult(
        n_out=s.n_out, n_mid=s.n_mid, n_in=s.n_in, ensemble=s.ensemble, kurtosis=kurt,
        cos=estimate(s.cos), angle_deg=estimate(s.angle_deg), norm_ratio=estimate(s.norm_ratio),
        inner_ratio=estimate(s.inner_ratio), norm_ratio_sq=estimate(s.norm_ratio_sq), samples=s,
    )

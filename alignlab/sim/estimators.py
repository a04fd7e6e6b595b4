"""What is reported: statistics of simulated matrices (spectra, path alignment),
moments with standard errors, the angle's Jensen gap, and the Kolmogorov-Smirnov
distance to the Marchenko-Pastur law.

Angles come from the package's one angle function, :func:`alignlab._linalg.angle_deg`
(atan2 form, float64), with one deliberate exception: :func:`literal_path_statistics`,
the test oracle, keeps the spec's ``arccos`` formula so that it stays independent of
the fast path it checks.

Standard errors are always computed *over independent samples* (one number per sample,
then the usual ``sd / sqrt(n)``), never over the eigenvalues of one sample: those are
strongly correlated (they repel), so treating ``n_samples * n_out`` eigenvalues as iid
would overstate the precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from alignlab._linalg import angle_deg
from alignlab._records import Records
from alignlab._validate import check_positive
from alignlab.sim.memory import check_memory, sample_bytes

__all__ = [
    "Estimate",
    "PathSamples",
    "angle_jensen_gap",
    "angle_of_moments",
    "btb_eigenvalues",
    "estimate",
    "ks_distance",
    "literal_path_statistics",
    "path_statistics",
    "pooled_eigenvalue_sd",
    "spectral_moment",
]


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate: ``mean`` of ``n`` iid per-sample values, their SD ``sd``
    (ddof=1) and the standard error ``se = sd / sqrt(n)`` of the mean.

    For a smooth function of several sample means (e.g. a pooled SD), ``sd`` is the SD
    of the delta-method influence values, so ``se`` is still ``sd / sqrt(n)``.
    """

    mean: float
    sd: float
    se: float
    n: int

    def as_dict(self, prefix: str = "") -> dict[str, Any]:
        return {f"{prefix}mean": self.mean, f"{prefix}sd": self.sd,
                f"{prefix}se": self.se, f"{prefix}n": self.n}


def estimate(values: Any) -> Estimate:
    """:class:`Estimate` of the mean of iid values (1-D)."""
    x = np.asarray(values, dtype=float).ravel()
    n = x.size
    if n == 0:
        raise ValueError("`values` must be non-empty, got an empty array.")
    sd = float(np.std(x, ddof=1)) if n > 1 else math.nan
    return Estimate(float(np.mean(x)), sd, sd / math.sqrt(n) if n > 1 else math.nan, n)


# --------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class PathSamples:
    """Per-sample results at the PFA fixed point ``R^T = B W`` (path ``P^T = B^T B W``).

    Attributes
    ----------
    eigenvalues : ndarray, (n_samples, n_out)
        Eigenvalues of ``M = B^T B``, ascending, in the simulation dtype.
    cos, angle_deg, norm_ratio : ndarray, (n_samples,)
        ``cos`` and angle (degrees) between ``W`` and ``P^T``, and ``|P^T|_F / |W|_F``
        (float64).
    n_out, n_mid, n_in, ensemble, w_ensemble, method, entropy
        What was simulated; ``entropy`` is the root seed (pass it as ``rng`` to rerun).
    """

    eigenvalues: np.ndarray = field(repr=False)
    cos: np.ndarray = field(repr=False)
    angle_deg: np.ndarray = field(repr=False)
    norm_ratio: np.ndarray = field(repr=False)
    n_out: int = 0
    n_mid: int = 0
    n_in: int = 0
    ensemble: str = ""
    w_ensemble: str = ""
    method: str = ""
    entropy: int | None = None

    @property
    def n_samples(self) -> int:
        return int(self.cos.shape[0])

    @property
    def inner_ratio(self) -> np.ndarray:
        """``<W, P^T> / |W|_F^2`` per sample: exact expectation 1 (Proposition 3)."""
        return self.cos * self.norm_ratio

    @property
    def norm_ratio_sq(self) -> np.ndarray:
        """``|P^T|_F^2 / |W|_F^2`` per sample: exact expectation ``m2(finite)``."""
        return self.norm_ratio**2

    def _meta(self) -> dict[str, Any]:
        return {"n_out": self.n_out, "n_mid": self.n_mid, "n_in": self.n_in,
                "ensemble": self.ensemble, "w_ensemble": self.w_ensemble}

    def to_records(self) -> Records:
        """One row per sample: sizes, ensembles, sample index, cos, angle_deg, norm_ratio."""
        meta = self._meta()
        triples = zip(self.cos, self.angle_deg, self.norm_ratio, strict=True)
        return Records(
            {**meta, "sample": i, "cos": float(c), "angle_deg": float(a),
             "norm_ratio": float(q)}
            for i, (c, a, q) in enumerate(triples)
        )

    def eigenvalue_records(self) -> Records:
        """Long format: one row per (sample, eigenvalue index)."""
        meta = self._meta()
        return Records(
            {**meta, "sample": i, "index": j, "eigenvalue": float(v)}
            for i, row in enumerate(self.eigenvalues) for j, v in enumerate(row)
        )

    def summary(self) -> Records:
        """One row per statistic with its :class:`Estimate` (mean, sd, se, n)."""
        rows = []
        stats = {"cos": self.cos, "angle_deg": self.angle_deg, "norm_ratio": self.norm_ratio,
                 "inner_ratio": self.inner_ratio, "norm_ratio_sq": self.norm_ratio_sq}
        for name, values in stats.items():
            rows.append({**self._meta(), "statistic": name, **estimate(values).as_dict()})
        for name, est in (("eigenvalue_mean", spectral_moment(self.eigenvalues, 1)),
                          ("eigenvalue_m2", spectral_moment(self.eigenvalues, 2)),
                          ("eigenvalue_sd", pooled_eigenvalue_sd(self.eigenvalues))):
            rows.append({**self._meta(), "statistic": name, **est.as_dict()})
        return Records(rows)


# ----------------------------------------------------------------------- statistics
def _batched(x: torch.Tensor, name: str, ndim: int = 2) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.ndim == ndim:
        return x.unsqueeze(0)
    if x.ndim != ndim + 1:
        raise ValueError(f"`{name}` must be a matrix or a batch of matrices, "
                         f"got shape {tuple(x.shape)}.")
    return x


def btb_eigenvalues(B: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (ascending) of ``B^T B`` for ``B`` of shape ``(..., n_mid, n_out)``."""
    return torch.linalg.eigvalsh(B.mT @ B)


def _batched_dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Frobenius inner products of matching batch entries, (k, a, b) x (k, a, b) -> (k,)."""
    k = x.shape[0]
    return torch.bmm(x.reshape(k, 1, -1), y.reshape(k, -1, 1)).reshape(k)


def _alignment(W: torch.Tensor, Y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos, angle (degrees) and norm ratio between batched ``W`` and ``Y`` (float64 out).

    The angle is :func:`alignlab._linalg.angle_deg` over each sample's entries (atan2 of
    the part of ``Y`` orthogonal to ``W``, in float64): the spec's ``arccos`` formula, but
    accurate near 0 degrees, where ``arccos`` loses half the digits (PFA-o sits there).
    The inner products for cos and the norm ratio are BLAS dot products in the input
    dtype (float32 by default: relative rounding ~1e-6, far below the Monte Carlo error);
    the scalar arithmetic is float64.
    """
    xy = _batched_dot(W, Y).double()
    xx = _batched_dot(W, W).double()
    yy = _batched_dot(Y, Y).double()
    cos = xy / torch.sqrt(xx * yy)
    angle = angle_deg(W, Y, axis=(-2, -1))
    ratio = torch.sqrt(yy / xx)
    return cos.cpu().numpy(), angle.cpu().numpy(), ratio.cpu().numpy()


def path_statistics_from_m(M: torch.Tensor, W: torch.Tensor) -> tuple[np.ndarray, ...]:
    """(eigenvalues, cos, angle_deg, norm_ratio) from batched ``M = B^T B`` and ``W``.

    The fast path: ``P^T = (R B)^T = B^T R^T = B^T (B W) = M W``; neither ``R`` nor
    ``P`` is formed.
    """
    eig = torch.linalg.eigvalsh(M)  # (k, n_out)
    Y = torch.bmm(M, W)  # P^T, (k, n_out, n_in)
    cos, angle, ratio = _alignment(W, Y)
    return eig.cpu().numpy(), cos, angle, ratio


def path_statistics(B: Any, W: Any) -> PathSamples:
    """Fast-path statistics for given ``B`` ``(.., n_mid, n_out)`` and ``W`` ``(.., n_out, n_in)``.

    Exactly what :func:`~alignlab.sim.sample_converged_pfa` computes for the matrices it
    draws (it never forms ``R`` or ``P``). Use it to run the fast path and
    :func:`literal_path_statistics` on the *same* matrices.
    """
    B = _batched(B, "B")
    W = _batched(W, "W")
    if B.shape[0] != W.shape[0] or B.shape[-1] != W.shape[-2]:
        raise ValueError(f"`W` must have shape (n_samples, n_out={B.shape[-1]}, n_in) "
                         f"to match `B` {tuple(B.shape)}, got {tuple(W.shape)}.")
    M = torch.bmm(B.mT, B)
    eig, cos, angle, ratio = path_statistics_from_m(M, W.to(M.dtype))
    return PathSamples(eig, cos, angle, ratio, n_out=B.shape[-1], n_mid=B.shape[-2],
                       n_in=W.shape[-1], method="direct")


def literal_path_statistics(B: Any, W: Any) -> PathSamples:
    """The literal recipe on given matrices, one sample at a time (test oracle).

    Sets ``R = (B W)^T`` (shape ``(n_in, n_mid)``), forms ``P = R B`` explicitly, and takes
    ``degrees(arccos(clip(<W, P^T> / (|W| |P^T|), -1, 1)))`` and ``eigvalsh(B^T B)``, as
    the spec defines them. Costs ``O(n_in n_mid n_out)`` per sample.

    The angle here is *deliberately* the spec's ``arccos`` formula, not the package's
    angle function (:func:`alignlab._linalg.angle_deg`, atan2): an oracle that shared the
    fast path's code could not catch its mistakes. ``arccos`` of a clipped cosine is
    accurate to ~1e-6 deg near 0 (``sqrt(2 eps)`` rad); the tests allow for that.
    """
    B = _batched(B, "B")
    W = _batched(W, "W")
    n_mid, n_out = B.shape[-2:]
    need = sample_bytes(n_out, W.shape[-1], n_mid, itemsize=B.element_size(), method="literal")
    check_memory("B", need, value=f"shape {tuple(B.shape)}")
    eigs, coss, angles, ratios = [], [], [], []
    for b, w in zip(B, W, strict=True):
        R = (b @ w).T  # R^T = B W at the fixed point; R: (n_in, n_mid)
        P = R @ b  # (n_in, n_out)
        Pt = P.T
        num = float((w * Pt).sum())
        nw = float(torch.linalg.norm(w))
        npt = float(torch.linalg.norm(Pt))
        cos = num / (nw * npt)
        coss.append(cos)
        angles.append(math.degrees(math.acos(min(1.0, max(-1.0, cos)))))
        ratios.append(npt / nw)
        eigs.append(torch.linalg.eigvalsh(b.T @ b).cpu().numpy())
    return PathSamples(np.stack(eigs), np.array(coss), np.array(angles), np.array(ratios),
                       n_out=B.shape[-1], n_mid=B.shape[-2], n_in=W.shape[-1],
                       method="literal")


# ---------------------------------------------------------------------- Jensen gap
def angle_of_moments(a: Any, b: Any) -> np.ndarray:
    """The angle (degrees) between ``W`` and a ``Y`` with ``<W, Y>/|W|^2 = a`` and
    ``|Y|^2/|W|^2 = b`` (so ``b >= a^2``): ``arccos(a / sqrt b)``, elementwise.

    In the plane of ``W`` and ``Y``, with ``|W| = 1``, ``W = (1, 0)`` and
    ``Y = (a, sqrt(b - a^2))``; the angle between them is taken with the package's one
    angle function. ``g(E a, E b)`` with the exact ``E a = 1``, ``E b = m2`` is
    Proposition 3's finite-size angle.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    w = np.stack(np.broadcast_arrays(np.ones_like(a), np.zeros_like(a)))
    y = np.stack(np.broadcast_arrays(a, np.sqrt(np.maximum(b - a * a, 0.0))))
    return angle_deg(w, y, axis=0)


def angle_jensen_gap(s: PathSamples) -> float:
    """``mean_i g(a_i, b_i) - g(mean a, mean b)`` for the angle ``g``
    (:func:`angle_of_moments`), with ``a = <W, P^T>/|W|^2``, ``b = |P^T|^2/|W|^2`` per
    sample.

    Proposition 3's finite-size form is ``g(E a, E b)`` exactly, so the mean angle differs
    from it by the Jensen bias (estimated by this gap) plus a fluctuation of
    ``g(mean a, mean b)`` (standard-error sized). The gap equals
    ``(1/2) mean_i (X_i - Xbar)^T H(xi_i) (X_i - Xbar)`` exactly, ``X = (a, b)``: the
    linear term vanishes about the sample mean.
    """
    a, b = s.inner_ratio.astype(float), s.norm_ratio_sq.astype(float)
    return float(np.mean(angle_of_moments(a, b)) - angle_of_moments(a.mean(), b.mean()))


# -------------------------------------------------------------------------- moments
def _eig_array(eigenvalues: Any) -> np.ndarray:
    x = np.asarray(eigenvalues, dtype=float)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"`eigenvalues` must be a non-empty (n_samples, n_out) array, "
                         f"got shape {x.shape}.")
    return x


def spectral_moment(eigenvalues: Any, k: int) -> Estimate:
    """``E[tr M^k] / n_out`` from ``(n_samples, n_out)`` eigenvalues: the mean over samples
    of each sample's ``mean(lambda^k)``, with the standard error over samples."""
    x = _eig_array(eigenvalues)
    return estimate(np.mean(x**k, axis=1))


def pooled_eigenvalue_sd(eigenvalues: Any) -> Estimate:
    """SD of all eigenvalues pooled (``np.std`` of the flattened array, ddof=0): the
    *spread of the spectrum*, with a delta-method standard error over samples.

    The pooled variance is ``mbar2 - mbar1^2`` with ``mbar_k`` the sample means of the
    per-sample moments ``m_k,i = mean_j lambda_ij^k``; its influence values are
    ``(m2_i - mbar2) - 2 mbar1 (m1_i - mbar1)``, divided by ``2 sd`` for the SD.
    """
    x = _eig_array(eigenvalues)
    x = x - x.mean()  # centre first: no cancellation when the spread is tiny (PFA-o)
    m1 = x.mean(axis=1)
    m2 = (x**2).mean(axis=1)
    mb1, mb2 = m1.mean(), m2.mean()
    sd = math.sqrt(max(mb2 - mb1**2, 0.0))
    n = x.shape[0]
    if n < 2 or sd == 0.0:
        return Estimate(sd, math.nan if n < 2 else 0.0, math.nan if n < 2 else 0.0, n)
    influence = ((m2 - mb2) - 2.0 * mb1 * (m1 - mb1)) / (2.0 * sd)
    isd = float(np.std(influence, ddof=1))
    return Estimate(sd, isd, isd / math.sqrt(n), n)


# ------------------------------------------------------------------------------- KS
def ks_distance(eigenvalues: Any, lam: float, *, zero_tol: float | None = None) -> float:
    """Kolmogorov-Smirnov distance between the pooled eigenvalues and MP(``lam``).

    ``sup_x |F_emp(x) - F_MP(x)|`` with ``F_MP = alignlab.theory.marchenko_pastur(lam).cdf``
    (which includes the atom of mass ``1 - 1/lam`` at 0 when ``lam > 1``). Both one-sided
    limits are compared at every distinct eigenvalue, so the atom and ties are handled.
    Eigenvalues within ``zero_tol`` of 0 are set to exactly 0 (``B^T B`` is PSD and
    rank ``min(n_mid, n_out)``; its zero eigenvalues come out as rounding noise); the
    default is ``64 eps |lambda|_max`` in the eigenvalues' dtype.

    A *distance*, not a test: eigenvalues are correlated, so KS p-values are meaningless
    here. At finite ``n_out`` the distance does not go to 0 with more samples (the
    expected spectrum itself differs from MP at order ``1/n``).
    """
    from alignlab.theory import marchenko_pastur

    lam = float(check_positive("lam", lam))
    arr = np.asarray(eigenvalues)
    if arr.size == 0:
        raise ValueError("`eigenvalues` must be non-empty.")
    eps = np.finfo(arr.dtype).eps if np.issubdtype(arr.dtype, np.floating) else 2.0**-52
    x = np.sort(arr.astype(float).ravel())
    if not np.all(np.isfinite(x)):
        raise ValueError("`eigenvalues` must be finite (no NaN or inf).")
    tol = 64.0 * eps * max(float(np.abs(x).max()), 1.0) if zero_tol is None else zero_tol
    x[x <= tol] = 0.0
    n = x.size
    values, counts = np.unique(x, return_counts=True)
    right = np.cumsum(counts) / n  # F_emp(v)
    left = right - counts / n  # F_emp(v-)
    cdf = np.asarray(marchenko_pastur(lam).cdf(values), dtype=float)
    atom = max(0.0, 1.0 - 1.0 / lam)
    cdf_left = cdf - np.where(values == 0.0, atom, 0.0)  # F_MP(v-): continuous except at 0
    return float(max(np.max(np.abs(right - cdf)), np.max(np.abs(left - cdf_left))))

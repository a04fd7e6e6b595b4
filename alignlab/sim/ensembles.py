"""Random-matrix ensembles for the feedback matrix ``B`` and the forward weights ``W``.

Each ensemble is a small frozen dataclass in the name -> class registry
:data:`ENSEMBLES`; :func:`get_ensemble` builds one from its name and options (unknown
names and options raise ``ValueError``). Entries have mean 0 and standard deviation
``std`` (the ``sample`` argument); ``kurtosis`` is ``E b^4 / (E b^2)^2`` of one entry,
the only property of an iid ensemble that enters the finite-size theory
(:func:`alignlab.theory.mp_second_moment_finite`).

=============  ===========================================================  ==========
name           law of one entry (iid unless said)                           kurtosis
=============  ===========================================================  ==========
gaussian       N(0, std^2)                                                  3
uniform        U[-a, a), a = sqrt(3) std (Xavier-uniform is std^2 =         9/5
               2 / (fan_in + fan_out))
rademacher     +-std, probability 1/2 each                                  1
sparse         Bernoulli(density) x N(0, std^2 / density)                   3 / density
orthogonal     not iid: sqrt(max(rows, cols)) std x a Haar-random matrix    None
               with orthonormal columns (rows >= cols) or rows (rows < cols)
=============  ===========================================================  ==========

Orthogonal scaling. With the PFA convention ``std = 1/sqrt(n_mid)`` and ``B`` of shape
``(n_mid, n_out)``: when ``n_mid >= n_out``, ``B`` has orthonormal columns and
``B^T B = I`` exactly (PFA-o). When ``n_mid < n_out`` no matrix has ``B^T B = I``; we
keep the entry variance ``1/n_mid`` (hence ``E tr(B^T B) / n_out = 1``, the mean
eigenvalue of every other ensemble), which makes ``B`` a scaled tight frame:
``B B^T = (n_out / n_mid) I``, and ``B^T B`` is ``lambda = n_out/n_mid`` times a
Haar-random orthogonal projection of rank ``n_mid``: eigenvalue ``lambda`` with
multiplicity ``n_mid`` and 0 otherwise (mean 1, like the MP law with its atom).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from alignlab._rng import TAG_B, RngLike, Streams, make_streams
from alignlab._validate import check_choice, check_int, check_positive, check_probability
from alignlab.sim._backend import (
    POOL_MIN_ELEMENTS,
    Draw,
    check_device,
    check_dtype,
    draw_for,
    n_workers,
    run_parallel,
)

__all__ = [
    "ENSEMBLES",
    "Ensemble",
    "Gaussian",
    "Orthogonal",
    "Rademacher",
    "Sparse",
    "Uniform",
    "get_ensemble",
    "resolve_ensemble",
]


@dataclass(frozen=True)
class Ensemble:
    """Base class: a law for ``(rows, cols)`` random matrices with entry SD ``std``."""

    name: ClassVar[str] = ""

    @property
    def kurtosis(self) -> float | None:
        """``E b^4 / (E b^2)^2`` of one entry; ``None`` when the entries are not iid."""
        raise NotImplementedError

    def fill_(self, out: Any, std: float, draw: Draw) -> None:
        """Fill one sample ``out`` (numpy array or tensor, shape ``(rows, cols)``) in place.

        Runs in a worker thread on CPU: numpy only (see :mod:`alignlab.sim._backend`).
        """
        raise NotImplementedError

    def finish_(self, batch: torch.Tensor, std: float) -> None:
        """Deterministic batched post-processing of filled samples (main thread, torch).

        A no-op except for ensembles that need linear algebra (orthogonal: QR).
        """

    def sample(
        self,
        n_samples: int,
        rows: int,
        cols: int,
        *,
        std: float = 1.0,
        generator: RngLike = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw ``n_samples`` independent matrices.

        Parameters
        ----------
        n_samples, rows, cols : int
            Output shape ``(n_samples, rows, cols)``.
        std : float
            Entry standard deviation (for 'orthogonal': the RMS entry, see the module doc).
        generator : None, int, SeedSequence, numpy Generator or torch.Generator
            Seed; the same seed gives the same tensor (see :mod:`alignlab._rng`).
            Sample ``i`` comes from its own stream, so it does not depend on ``n_samples``.
        device, dtype
            Where and in which precision (float32 or float64) to draw.
        """
        n_samples = check_int("n_samples", n_samples)
        rows = check_int("rows", rows)
        cols = check_int("cols", cols)
        std = float(check_positive("std", std))
        dev = check_device(device)
        dt = check_dtype(dtype)
        streams = make_streams(generator, "generator")
        out = torch.empty((n_samples, rows, cols), dtype=dt, device=dev)
        fill_samples(self, out, std, streams, tag=TAG_B, start=0)
        return out


def fill_samples(ens: Ensemble, out: torch.Tensor, std: float, streams: Streams, *,
                 tag: int, start: int, pool: ThreadPoolExecutor | None = None) -> None:
    """Fill ``out[j]`` with sample ``start + j`` of role ``tag`` (no validation: internal):
    the per-sample random draws (threads on CPU), then the batched ``finish_``."""
    dev = out.device
    if dev.type == "cpu":
        arr = out.numpy()

        def one(j: int) -> None:
            ens.fill_(arr[j], std, draw_for(streams, start + j, tag, dev))

        big = out.shape[-2] * out.shape[-1] >= POOL_MIN_ELEMENTS  # else threads cost more
        run_parallel(one, range(out.shape[0]), n_workers(out.shape[0]) if big else 1, pool)
    else:
        for j in range(out.shape[0]):
            ens.fill_(out[j], std, draw_for(streams, start + j, tag, dev))
    ens.finish_(out, std)


@dataclass(frozen=True)
class Gaussian(Ensemble):
    """iid N(0, std^2) entries."""

    name: ClassVar[str] = "gaussian"

    @property
    def kurtosis(self) -> float:
        return 3.0

    def fill_(self, out, std, draw):
        draw.normal_(out, std)


@dataclass(frozen=True)
class Uniform(Ensemble):
    """iid U[-sqrt(3) std, sqrt(3) std): Xavier-uniform when std^2 = 2/(fan_in+fan_out)."""

    name: ClassVar[str] = "uniform"

    @property
    def kurtosis(self) -> float:
        return 9.0 / 5.0

    def fill_(self, out, std, draw):
        a = math.sqrt(3.0) * std
        draw.uniform_(out, -a, a)


@dataclass(frozen=True)
class Rademacher(Ensemble):
    """iid +-std with probability 1/2 each."""

    name: ClassVar[str] = "rademacher"

    @property
    def kurtosis(self) -> float:
        return 1.0

    def fill_(self, out, std, draw):
        draw.sign_(out, std)


@dataclass(frozen=True)
class Sparse(Ensemble):
    """iid Bernoulli(density) mask times N(0, std^2/density): variance std^2, kurtosis 3/density."""

    name: ClassVar[str] = "sparse"
    density: float = 0.1  # fraction of nonzero entries

    def __post_init__(self):
        object.__setattr__(self, "density", check_probability("density", self.density))

    @property
    def kurtosis(self) -> float:
        return 3.0 / self.density

    def fill_(self, out, std, draw):
        draw.normal_(out, std / math.sqrt(self.density))
        draw.keep_(out, self.density)


@dataclass(frozen=True)
class Orthogonal(Ensemble):
    """Haar-random orthonormal columns (rows >= cols) or rows (rows < cols), scaled by
    ``std * sqrt(max(rows, cols))`` so the mean squared entry is ``std^2``."""

    name: ClassVar[str] = "orthogonal"

    @property
    def kurtosis(self) -> None:
        return None

    def fill_(self, out, std, draw):
        draw.normal_(out, 1.0)  # iid Gaussian; made Haar-orthonormal in finish_

    def finish_(self, batch, std):
        """QR of the Gaussian samples with the signs of diag(R) made positive: Haar on the
        Stiefel manifold (Mezzadri 2007). Without the sign fix the law is not Haar."""
        rows, cols = batch.shape[-2:]
        tall = rows >= cols
        a = batch if tall else batch.mT
        q, r = torch.linalg.qr(a)  # q: (k, max, min), orthonormal columns
        sign = torch.where(torch.diagonal(r, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(q.dtype)
        q = q * sign[..., None, :]
        batch.copy_(q if tall else q.mT)
        batch.mul_(std * math.sqrt(max(rows, cols)))


ENSEMBLES: dict[str, type[Ensemble]] = {
    cls.name: cls for cls in (Gaussian, Uniform, Rademacher, Orthogonal, Sparse)
}


def get_ensemble(name: str, **options: Any) -> Ensemble:
    """Build the ensemble called ``name`` (a key of :data:`ENSEMBLES`) with ``options``.

    Only 'sparse' takes an option (``density``, default 0.1); any other option raises.
    """
    name = check_choice("ensemble", name, ENSEMBLES)
    cls = ENSEMBLES[name]
    known = {f for f in cls.__dataclass_fields__}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"`{unknown[0]}` is not an option of ensemble {name!r}; "
                         f"options are {sorted(known) or 'none'}.")
    return cls(**options)


def resolve_ensemble(arg_name: str, ensemble: str | Ensemble) -> Ensemble:
    """An Ensemble instance from a registry name or an instance (error names ``arg_name``)."""
    if isinstance(ensemble, Ensemble):
        return ensemble
    if not isinstance(ensemble, str) or ensemble not in ENSEMBLES:
        raise ValueError(f"`{arg_name}` must be one of {', '.join(map(repr, ENSEMBLES))} "
                         f"or an Ensemble instance; got {ensemble!r}.")
    return ENSEMBLES[ensemble]()


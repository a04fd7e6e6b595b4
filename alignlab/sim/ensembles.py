"""Random-matrix ensembles for the feedback matrix ``B`` and the forward weights ``W``.

*What is drawn.* Each ensemble is a small frozen dataclass in the name -> class registry
:data:`ENSEMBLES`; :func:`get_ensemble` builds one from its name and options (unknown
names and options raise ``ValueError``). Entries have mean 0 and standard deviation
``std`` (the ``sample`` argument); ``kurtosis`` is ``E b^4 / (E b^2)^2`` of one entry,
the only property of an iid ensemble that enters the finite-size theory
(:func:`alignlab.theory.mp_second_moment_finite`). It is read from the theory's one
table, :data:`alignlab.theory.ENTRY_MOMENTS`, never restated here.

A class says what it is through class-level properties, which the simulators read
instead of its name: ``iid`` (independent entries: the first rows of a draw are a draw,
so sizes can be nested), ``wishart`` (``B^T B`` is a Wishart matrix: the Bartlett
sampler applies) and ``finish_copies`` (the extra sample-sized arrays ``finish_``
allocates, for the memory estimate). How samples are chunked and threaded is
:mod:`alignlab.sim.engine`'s business.

=============  ================================================================
name           law of one entry (iid unless said)
=============  ================================================================
gaussian       N(0, std^2)
uniform        U[-a, a), a = sqrt(3) std (Xavier-uniform is std^2 =
               2 / (fan_in + fan_out)); the package's default ``B``
rademacher     +-std, probability 1/2 each
sparse         Bernoulli(density) x N(0, std^2 / density)
(masked)       Bernoulli(density) x any iid law of SD std / sqrt(density):
               :class:`Masked`, built from an ensemble (not a registry name)
orthogonal     not iid: sqrt(max(rows, cols)) std x a Haar-random matrix
               with orthonormal columns (rows >= cols) or rows (rows < cols)
=============  ================================================================

Orthogonal scaling. With the PFA convention ``std = 1/sqrt(n_mid)`` and ``B`` of shape
``(n_mid, n_out)``: when ``n_mid >= n_out``, ``B`` has orthonormal columns and
``B^T B = I`` exactly (PFA-o). When ``n_mid < n_out`` no matrix has ``B^T B = I``; we
keep the entry variance ``1/n_mid`` (hence ``E tr(B^T B) / n_out = 1``, the mean
eigenvalue of every other ensemble), which makes ``B`` a scaled tight frame:
``B B^T = (n_out / n_mid) I``, and ``B^T B`` is ``lambda = n_out/n_mid`` times a
Haar-random orthogonal projection of rank ``n_mid``: eigenvalue ``lambda`` with
multiplicity ``n_mid`` and 0 otherwise (mean 1, like the MP law with its atom);
:func:`alignlab.theory.path_alignment_angle_orthogonal` gives its angle at every ``r``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from alignlab._linalg import haar_orthogonal_
from alignlab._registry import Registry
from alignlab._rng import TAG_B, RngLike, make_streams
from alignlab._validate import check_int, check_positive, check_probability
from alignlab.sim.engine import Draw, check_device, check_dtype, fill_samples
from alignlab.sim.memory import check_memory
from alignlab.theory.entries import entry_kurtosis, entry_moments

__all__ = [
    "ENSEMBLES",
    "Ensemble",
    "Gaussian",
    "Masked",
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
    iid: ClassVar[bool] = True  # independent entries (kurtosis defined; sizes nest)
    wishart: ClassVar[bool] = False  # B^T B is Wishart (Gaussian): Bartlett sampling applies
    finish_copies: ClassVar[int] = 0  # extra sample-sized arrays finish_ allocates

    def _moment_options(self) -> dict[str, Any]:
        """Options of :func:`alignlab.theory.entry_kurtosis` for this law (sparse: density)."""
        return {}

    @property
    def kurtosis(self) -> float | None:
        """``E b^4 / (E b^2)^2`` of one entry, from :data:`alignlab.theory.ENTRY_MOMENTS`;
        ``None`` when the entries are not iid."""
        if not self.iid:
            return None
        return entry_kurtosis(self.name, **self._moment_options())

    def fill_(self, out: Any, std: float, draw: Draw) -> None:
        """Fill one sample ``out`` (numpy array or tensor, shape ``(rows, cols)``) in place.

        Runs in a worker thread on CPU: numpy only (see :mod:`alignlab.sim.engine`).
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
        # the whole batch is returned (and finish_ works on all of it at once)
        one = (1 + self.finish_copies) * rows * cols * torch.empty((), dtype=dt).element_size()
        check_memory("rows" if rows >= cols else "cols", one, value=max(rows, cols), device=dev)
        check_memory("n_samples", n_samples * one, value=n_samples, what="all samples",
                     device=dev)
        out = torch.empty((n_samples, rows, cols), dtype=dt, device=dev)
        fill_samples(self, out, std, streams, tag=TAG_B, start=0)
        return out


@dataclass(frozen=True)
class Gaussian(Ensemble):
    """iid N(0, std^2) entries."""

    name: ClassVar[str] = "gaussian"
    wishart: ClassVar[bool] = True

    def fill_(self, out, std, draw):
        draw.normal_(out, std)


@dataclass(frozen=True)
class Uniform(Ensemble):
    """iid U[-sqrt(3) std, sqrt(3) std): Xavier-uniform when std^2 = 2/(fan_in+fan_out)."""

    name: ClassVar[str] = "uniform"

    def fill_(self, out, std, draw):
        a = math.sqrt(3.0) * std
        draw.uniform_(out, -a, a)


@dataclass(frozen=True)
class Rademacher(Ensemble):
    """iid +-std with probability 1/2 each."""

    name: ClassVar[str] = "rademacher"

    def fill_(self, out, std, draw):
        draw.sign_(out, std)


@dataclass(frozen=True)
class Sparse(Ensemble):
    """iid Bernoulli(density) mask times N(0, std^2/density): variance std^2."""

    name: ClassVar[str] = "sparse"
    density: float = 0.1  # fraction of nonzero entries

    def __post_init__(self):
        object.__setattr__(self, "density", check_probability("density", self.density))

    def _moment_options(self) -> dict[str, Any]:
        return {"density": self.density}

    def fill_(self, out, std, draw):
        draw.normal_(out, std / math.sqrt(self.density))
        draw.keep_(out, self.density)


@dataclass(frozen=True)
class Masked(Ensemble):
    """iid Bernoulli(``density``) mask times ``base``'s law with SD ``std / sqrt(density)``:
    variance ``std^2``, any iid ``base`` (sparse PFA's ``B`` and ``R_0`` for every
    ``b_init``; :class:`Sparse` is the Gaussian case, kept as its own registry name).

    Kurtosis ``base.kurtosis / density`` (a masked law has ``E b^k = d E x^k``:
    :meth:`alignlab.theory.EntryMoments.at`). Not in :data:`ENSEMBLES`, whose entries are
    built from a name and numbers: its option is an ensemble, so it is built directly,
    ``Masked(Uniform(), 0.5)`` (``base`` may also be a registry name).
    """

    name: ClassVar[str] = "masked"
    base: Ensemble
    density: float

    def __post_init__(self):
        base = resolve_ensemble("base", self.base)
        if not base.iid:
            raise ValueError(f"`base` must be an iid ensemble (a mask of a dependent law is "
                             f"not iid), got {base.name!r}.")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "density", check_probability("density", self.density))

    @property
    def kurtosis(self) -> float:
        base = entry_moments(self.base.name, **self.base._moment_options())
        return replace(base, masked=True).at(self.density).kurtosis

    def fill_(self, out, std, draw):
        self.base.fill_(out, std / math.sqrt(self.density), draw)
        draw.keep_(out, self.density)


@dataclass(frozen=True)
class Orthogonal(Ensemble):
    """Haar-random orthonormal columns (rows >= cols) or rows (rows < cols), scaled by
    ``std * sqrt(max(rows, cols))`` so the mean squared entry is ``std^2``."""

    name: ClassVar[str] = "orthogonal"
    iid: ClassVar[bool] = False
    finish_copies: ClassVar[int] = 1  # QR's Q (its signs are fixed in place)

    def fill_(self, out, std, draw):
        draw.normal_(out, 1.0)  # iid Gaussian; made Haar-orthonormal in finish_

    def finish_(self, batch, std):
        """Haar frames from the Gaussian samples (:func:`alignlab._linalg.haar_orthogonal_`,
        the package's one Haar sampler), scaled to RMS entry ``std``."""
        rows, cols = batch.shape[-2:]
        haar_orthogonal_(batch)
        batch.mul_(std * math.sqrt(max(rows, cols)))


ENSEMBLES: Registry[type[Ensemble]] = Registry(
    "ensemble", {cls.name: cls for cls in (Gaussian, Uniform, Rademacher, Orthogonal, Sparse)})


def get_ensemble(name: str, **options: Any) -> Ensemble:
    """Build the ensemble called ``name`` (a key of :data:`ENSEMBLES`) with ``options``.

    Only 'sparse' takes an option (``density``, default 0.1); any other option raises.
    """
    cls = ENSEMBLES.get_entry(name)
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


r"""Monte Carlos around a trained layer: the finite-size distribution of its alignment.

:func:`alignlab.sim.simulate_path_alignment` draws ``B`` and ``W`` from their laws; a
trained layer has one ``W`` that training chose (and a ``W_0`` it started from). The
simulators here say what the angle between ``W`` and the feedback path would be had
training left ``W`` independent of the random feedback, each mirroring its theory
function (the same parameters, plus ``n_samples``, ``seed``, ``device``) and returning an
:class:`AngleStats` (``alignlab compare`` puts the measured angle in it as a z-score):

==========================================  =============================================
theory (:mod:`alignlab.theory`)             simulation (``B ~ b_ensemble``, variance
                                            ``1/n_mid``, redrawn each sample)
==========================================  =============================================
``path_alignment_angle_finite``,            :func:`fixed_point_mc`: ``W`` redrawn too,
``path_norm_ratio_finite`` (Prop. 3)        path ``B^T B W``
the same (exact for any fixed ``W``:        :func:`conditional_mc`: the trained ``W``
``E <W, MW> = |W|^2``, ``E |MW|^2 = m2      kept, path ``M W`` (``M = B^T B``)
|W|^2``, ``E M^2 = m2 I``)
``alignment_dynamics_cos``,                 :func:`dynamics_mc`: ``W_t`` and ``W_0`` kept,
:mod:`alignlab.theory.dynamics` (Props.     ``R_0`` redrawn too, Proposition 1's path
1 + 3)                                      ``M (W_t - c W_0) + c B^T R_0^T``
==========================================  =============================================

Each theory is the angle of the exact expectations ``E <W, P^T>`` and ``E |P^T|^2``; the
mean angle differs from it by a Jensen term of second order in the angle's spread
(:func:`alignlab.sim.angle_jensen_gap`; the tests bound it).

Seeding (:mod:`alignlab._rng`): sample ``i`` draws ``B`` from stream ``(i, TAG_B)`` and
``R_0^T`` from ``(i, TAG_AUX)`` of ``seed`` (``B`` from ``b_seed``'s when given), through
:mod:`alignlab.sim.engine`'s chunks. So a sample does not depend on the chunk size, and
:func:`conditional_mc` and :func:`dynamics_mc` with the same seed for ``B`` draw the same
``B`` sample by sample: at ``c = 0`` they agree draw by draw. Arrays are float32 by
default (the Monte Carlo error dwarfs the rounding), angles float64
(:func:`alignlab._linalg.angle_deg`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from alignlab._linalg import angle_deg
from alignlab._rng import TAG_AUX, TAG_B, RngLike, Streams, make_streams
from alignlab._validate import check_finite, check_int, check_positive
from alignlab.sim.engine import (
    DEFAULT_CHUNK_BYTES,
    POOL_MIN_ELEMENTS,
    Buffer,
    check_device,
    check_dtype,
    draw_for,
    iter_chunks,
)
from alignlab.sim.ensembles import Ensemble, resolve_ensemble
from alignlab.sim.estimators import estimate
from alignlab.sim.memory import check_memory, footprint
from alignlab.sim.simulators import simulate_path_alignment
from alignlab.theory.entries import DEFAULT_ENSEMBLE

__all__ = ["AngleStats", "conditional_mc", "dynamics_mc", "fixed_point_mc"]

TAG_R0 = TAG_AUX  # the role of R_0^T's draws (B's is TAG_B)


@dataclass(frozen=True)
class AngleStats:
    """The Monte Carlo distribution of an alignment angle over ``n`` independent draws.

    mean_deg, sd_deg : mean and SD (ddof 1; NaN for ``n = 1``) of the angle in degrees.
    norm_ratio_mean : mean of ``|feedback|_F / |W|_F`` (NaN where a simulator has none).
    n : draws.
    angles_deg, norm_ratios : the per-draw values (``(n,)`` float64), when kept.
    """

    mean_deg: float
    sd_deg: float
    norm_ratio_mean: float
    n: int
    angles_deg: np.ndarray | None = field(default=None, repr=False, compare=False)
    norm_ratios: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def se_deg(self) -> float:
        """Standard error of ``mean_deg``: ``sd_deg / sqrt(n)``."""
        return self.sd_deg / math.sqrt(self.n)

    @classmethod
    def from_samples(cls, angles_deg: Any, norm_ratios: Any = None) -> AngleStats:
        """The statistics of per-draw angles (degrees) and norm ratios (optional), both
        kept (:func:`alignlab.sim.estimate`: mean, SD with ddof 1)."""
        a = estimate(angles_deg)
        ratios = None if norm_ratios is None else np.asarray(norm_ratios, dtype=float).ravel()
        return cls(a.mean, a.sd, math.nan if ratios is None else float(ratios.mean()), a.n,
                   np.asarray(angles_deg, dtype=float).ravel(), ratios)


# --------------------------------------------------------------------------- helpers
def _matrix(name: str, value: Any, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """``value`` as a float64 CPU tensor ``(n_out, n_in)``: finite, nonzero, of ``shape``."""
    x = torch.as_tensor(value).detach().to(device="cpu", dtype=torch.float64)
    if x.ndim != 2 or (shape is not None and tuple(x.shape) != shape):
        want = "a (n_out, n_in) matrix" if shape is None else f"of shape {shape}"
        raise ValueError(f"`{name}` must be {want}, got shape {tuple(x.shape)}.")
    check_finite(name, x.numpy())
    if not bool(x.any()):
        raise ValueError(f"`{name}` must be nonzero (the angle to it is undefined), got zeros.")
    return x


def _check_fits(n_out: int, n_in: int, n_mid: int, draw: int, work: int,
                dev: torch.device) -> None:
    """Refuse one sample over the memory budget, naming its largest size."""
    sizes = {"n_out": n_out, "n_in": n_in, "n_mid": n_mid}
    name = max(sizes, key=sizes.__getitem__)
    check_memory(name, draw + work, value=sizes[name], device=dev)


def _feedback_chunks(
    n_samples: int, b: tuple[Ensemble, int, int, Streams] | None,
    r0: tuple[Ensemble, float, int, int, Streams] | None, dev: torch.device,
    dt: torch.dtype, work: int, max_chunk_bytes: int,
) -> Iterator[tuple[int, torch.Tensor | None, torch.Tensor | None]]:
    """Yield ``(start, B, R)`` chunk by chunk (:func:`alignlab.sim.engine.iter_chunks`):
    ``B`` ``(k, n_mid, n_out)`` with entry SD ``1/sqrt(n_mid)`` from stream
    ``(i, TAG_B)`` of its streams, ``R`` ``(k, n_mid, n_in)`` from ``(i, TAG_R0)`` of
    its own; either None when not asked for (``b = (ensemble, n_mid, n_out, streams)``,
    ``r0 = (ensemble, std, n_mid, n_in, streams)``). Valid until the next iteration."""
    buffers = {}
    if b is not None:
        b_ens, n_mid, n_out, b_streams = b
        b_std = 1.0 / math.sqrt(n_mid)
        buffers["B"] = Buffer((n_mid, n_out), dt)
    if r0 is not None:
        r_ens, r_std, r_rows, n_in, r_streams = r0
        buffers["R"] = Buffer((r_rows, n_in), dt)

    def fill(arrays, j: int, i: int) -> None:
        if b is not None:
            b_ens.fill_(arrays["B"][j], b_std, draw_for(b_streams, i, TAG_B, dev))
        if r0 is not None:
            r_ens.fill_(arrays["R"][j], r_std, draw_for(r_streams, i, TAG_R0, dev))

    largest = max(int(np.prod(buf.shape)) for buf in buffers.values())
    for start, arrays in iter_chunks(n_samples, buffers, fill, device=dev, work_bytes=work,
                                     max_chunk_bytes=max_chunk_bytes,
                                     threaded=largest >= POOL_MIN_ELEMENTS):
        B, R = arrays.get("B"), arrays.get("R")
        if B is not None:
            b_ens.finish_(B, b_std)
        if R is not None:
            r_ens.finish_(R, r_std)
        yield start, B, R


def _alignment(w: torch.Tensor, p: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Angles (degrees) between ``w`` ``(n_out, n_in)`` and each ``p[j]`` and the norm
    ratios ``|p[j]| / |w|`` (float64 numpy)."""
    angles = angle_deg(w, p, axis=(-2, -1))
    ratios = (torch.linalg.vector_norm(p.double(), dim=(-2, -1))
              / torch.linalg.vector_norm(w.double()))
    return angles.cpu().numpy(), ratios.cpu().numpy()


def _common(n_mid, n_samples, device, dtype, max_chunk_bytes):
    return (check_int("n_mid", n_mid), check_int("n_samples", n_samples),
            check_device(device), check_dtype(dtype),
            check_int("max_chunk_bytes", max_chunk_bytes))


# --------------------------------------------------------------------------- simulators
def fixed_point_mc(
    n_out: int,
    n_in: int,
    n_mid: int,
    *,
    b_ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    w_ensemble: str | Ensemble = "uniform",
    n_samples: int,
    seed: RngLike = None,
    device: str | torch.device = "cpu",
) -> AngleStats:
    """The angle at the PFA fixed point ``R^T = B W`` (path ``B^T B W``) over independent
    ``B`` and ``W`` at a layer's exact shapes: mirrors
    :func:`alignlab.theory.path_alignment_angle_finite` and
    :func:`~alignlab.theory.path_norm_ratio_finite` at ``b_ensemble``'s kurtosis.

    :func:`alignlab.sim.simulate_path_alignment` (the same seed, the same draws), its
    per-sample angles and norm ratios as :class:`AngleStats`. ``w_ensemble``: the law of
    ``W``'s entries (a trained layer's initial law; the angle's law depends on it only
    through small terms). ``seed``: anything :func:`alignlab._rng.make_streams` takes.
    """
    res = simulate_path_alignment(n_out, n_mid, n_in=n_in, n_samples=n_samples,
                                  ensemble=b_ensemble, w_ensemble=w_ensemble, rng=seed,
                                  device=device)
    return AngleStats.from_samples(res.samples.angle_deg, res.samples.norm_ratio)


def conditional_mc(
    weight: Any,
    n_mid: int,
    *,
    b_ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    n_samples: int,
    seed: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> AngleStats:
    """The angle between a given ``W`` (the trained one) and its fixed-point path
    ``M W``, ``M = B^T B``, over ``n_samples`` draws of ``B`` ``(n_mid, n_out)``: what
    the angle would be had training not coupled ``W`` to ``B``.

    Mirrors :func:`alignlab.theory.path_alignment_angle_finite` and
    :func:`~alignlab.theory.path_norm_ratio_finite` for *any* fixed ``W``: ``E M = I``
    and ``E M^2 = m2 I`` (iid entries), so ``E <W, MW> = |W|^2`` and
    ``E |MW|^2 = m2 |W|^2`` exactly; a ``W`` coupled to ``B`` lies outside the
    distribution (the point of the comparison).

    Parameters
    ----------
    weight : tensor or array, (n_out, n_in)
        The fixed ``W`` (a conv kernel flattened), finite and nonzero.
    n_mid : int
        Rows of ``B``.
    b_ensemble : str or Ensemble
        The law of ``B`` (entry variance ``1/n_mid``); default 'uniform'.
    n_samples, seed, device, dtype, max_chunk_bytes
        Draws; the root seed (anything :func:`alignlab._rng.make_streams` takes: sample
        ``i``'s ``B`` is stream ``(i, TAG_B)``); where and in which precision; the
        working memory per chunk (:mod:`alignlab.sim.engine`; one sample must fit
        :func:`alignlab.sim.memory_budget`, or ``ValueError`` before anything is drawn).
    """
    w64 = _matrix("weight", weight)
    n_mid, n_samples, dev, dt, max_chunk_bytes = _common(n_mid, n_samples, device, dtype,
                                                         max_chunk_bytes)
    b_ens = resolve_ensemble("b_ensemble", b_ensemble)
    n_out, n_in = w64.shape
    it = torch.empty((), dtype=dt).element_size()
    # B drawn; W kept (counted as a draw); M, M W and the angle's float64 temporaries
    draw, work = footprint(n_out, n_in, n_mid, itemsize=it, ensemble=b_ens)
    _check_fits(n_out, n_in, n_mid, draw, work, dev)
    streams = make_streams(seed, "seed")
    w = w64.to(device=dev, dtype=dt)
    angles, ratios = np.empty(n_samples), np.empty(n_samples)
    for start, B, _ in _feedback_chunks(n_samples, (b_ens, n_mid, n_out, streams), None,
                                        dev, dt, work, max_chunk_bytes):
        m = torch.bmm(B.mT, B)  # (k, n_out, n_out)
        sl = slice(start, start + B.shape[0])
        angles[sl], ratios[sl] = _alignment(w, m @ w)  # path M W: (k, n_out, n_in)
    return AngleStats.from_samples(angles, ratios)


def dynamics_mc(
    weight: Any,
    weight0: Any,
    decay_c: float,
    n_mid: int,
    *,
    b_ensemble: str | Ensemble | None,
    r0_ensemble: str | Ensemble | None,
    r0_std: float = 0.0,
    n_samples: int,
    seed: RngLike = None,
    b_seed: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> AngleStats:
    r"""The angle between the trained ``W_t`` and Proposition 1's path at ``c = decay_c``,

    .. math:: P^T = B^T B\,(W_t - c\,W_0) + c\,B^T R_0^T,

    with ``W_t`` and ``W_0`` kept and ``B`` and ``R_0^T`` redrawn ``n_samples`` times: the
    finite-size distribution of the dynamics prediction if training left ``W``
    independent of ``(B, R_0)``. Mirrors :func:`alignlab.theory.alignment_dynamics_cos`
    and :func:`alignlab.theory.dynamics.path_alignment_dynamics_angle` /
    :func:`~alignlab.theory.dynamics.path_norm_ratio_dynamics` with
    ``|F_0|^2`` at its expectation ``n_out n_in r0_std^2`` (``E B B^T = (n_out/n_mid) I``):
    the angle of the exact ``E <W_t, P^T> = <W_t, X_t>`` and
    ``E |P^T|^2 = m2 |X_t|^2 + c^2 E |B^T R_0^T|^2``, ``X_t = W_t - c W_0``.

    Parameters
    ----------
    weight, weight0 : tensor or array, (n_out, n_in)
        ``W_t`` (finite, nonzero) and ``W_0`` (finite).
    decay_c : float
        Proposition 1's ``c_t`` (finite); at 0 the path is ``M W_t``, the conditional MC's.
    n_mid : int
        Rows of ``B`` (and of ``R_0^T``); ``n_out`` when ``b_ensemble`` is None.
    b_ensemble : str, Ensemble or None
        The law of ``B`` (entry variance ``1/n_mid``); None for ``B = I`` (PFA-id, KP's
        kernel), which is not drawn.
    r0_ensemble : str, Ensemble or None
        The law of ``R_0^T``'s entries (SD ``r0_std > 0``); None when
        ``R_0^T = B W_0`` (the feedback started at its fixed point, KP with
        ``init = 'weight'``): the path is then ``M W_t``, and ``W_t`` itself for ``B = I``
        (angle 0, nothing drawn).
    n_samples : int
        Draws.
    seed, b_seed : anything :func:`alignlab._rng.make_streams` takes
        Sample ``i`` draws ``R_0^T`` from stream ``(i, TAG_AUX)`` of ``seed`` and ``B``
        from stream ``(i, TAG_B)`` of ``b_seed`` (default: of ``seed``). The
        :func:`conditional_mc` given ``b_seed`` as its seed draws the same ``B``.
    device, dtype, max_chunk_bytes
        As in :func:`conditional_mc`.

    Notes
    -----
    ``n_mid n_out (n_out + n_in) + n_out^2 n_in`` multiply-adds per sample; ``B`` and
    ``R_0^T`` are ``n_mid (n_out + n_in)`` numbers, drawn chunk by chunk (one sample at a
    time when one is over ``max_chunk_bytes``).
    """
    w64 = _matrix("weight", weight)
    n_out, n_in = w64.shape
    w0 = torch.as_tensor(weight0).detach().to(device="cpu", dtype=torch.float64)
    if tuple(w0.shape) != (n_out, n_in):
        raise ValueError(f"`weight0` must be of shape {(n_out, n_in)} (weight's), got shape "
                         f"{tuple(w0.shape)}.")
    check_finite("weight0", w0.numpy())
    c = float(check_finite("decay_c", decay_c, scalar=True))
    n_mid, n_samples, dev, dt, max_chunk_bytes = _common(n_mid, n_samples, device, dtype,
                                                         max_chunk_bytes)
    b_ens = None if b_ensemble is None else resolve_ensemble("b_ensemble", b_ensemble)
    if b_ens is None and n_mid != n_out:
        raise ValueError(f"`n_mid` must be n_out = {n_out} when `b_ensemble` is None "
                         f"(B = I), got {n_mid}.")
    r_ens = None if r0_ensemble is None else resolve_ensemble("r0_ensemble", r0_ensemble)
    if r_ens is not None:
        r0_std = float(check_positive("r0_std", r0_std))
    # X_t; with no R_0 drawn, R_0^T = B W_0 folds into it: M X_t + c M W_0 = M W_t
    x64 = w64 - c * w0 if r_ens is not None else w64
    if b_ens is None and r_ens is None:  # P^T = W_t: the angle is 0 for every draw
        return AngleStats.from_samples(np.zeros(n_samples), np.ones(n_samples))
    it = torch.empty((), dtype=dt).element_size()
    bw = n_out * n_in
    draw = it * n_mid * ((n_out if b_ens is not None else 0)
                         + (n_in if r_ens is not None else 0))
    # the conditional MC's work (M, M X, the angle's float64 temporaries) plus P beside M X
    _, work = footprint(n_out, n_in, n_mid, itemsize=it, ensemble=b_ens)
    work += it * bw
    _check_fits(n_out, n_in, n_mid, draw, work, dev)
    streams = make_streams(seed, "seed")
    b_streams = streams if b_seed is None else make_streams(b_seed, "b_seed")
    w = w64.to(device=dev, dtype=dt)
    x = x64.to(device=dev, dtype=dt)
    angles, ratios = np.empty(n_samples), np.empty(n_samples)
    chunks = _feedback_chunks(
        n_samples, None if b_ens is None else (b_ens, n_mid, n_out, b_streams),
        None if r_ens is None else (r_ens, r0_std, n_mid, n_in, streams),
        dev, dt, work, max_chunk_bytes)
    for start, B, R in chunks:
        if B is None:  # B = I: P^T = X_t + c R_0^T
            p = torch.add(x, R, alpha=c)
        else:
            m = torch.bmm(B.mT, B)  # (k, n_out, n_out), as conditional_mc forms it
            p = m @ x  # (k, n_out, n_in)
            if R is not None:
                p = torch.baddbmm(p, B.mT, R, alpha=c)  # M X_t + c B^T R_0^T
        sl = slice(start, start + p.shape[0])
        angles[sl], ratios[sl] = _alignment(w, p)
    return AngleStats.from_samples(angles, ratios)

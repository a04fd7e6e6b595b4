"""Monte Carlos of the other learning rules' feedback, mirroring :mod:`alignlab.theory.rules`.

Each keeps what its theory conditions on (a given ``W``, or only ``W``'s law) and redraws
the rest, and returns :class:`alignlab.sim.trained.AngleStats`: the mean and SD of the
angle (degrees) between ``W`` and the feedback over the draws, the mean norm ratio
``|F| / |W|``, and ``n``.

==========================================  =============================================
simulation                                  theory (``alignlab.theory``)
==========================================  =============================================
``simulate_random_magnitude`` (brSF/frSF)   ``random_magnitude_angle_given_w``
``simulate_weight_mirror`` (WM)             ``weight_mirror_angle_given_w``,
                                            ``weight_mirror_floor_angle``,
                                            ``weight_mirror_norm_ratio``
``simulate_fa_null`` (FA)                   ``fa_null_angle``
``simulate_sign_concordant_iid`` (uSF)      ``sign_concordant_angle_iid``,
                                            ``sign_concordant_angle_sd_iid``
==========================================  =============================================

Seeding is the package's (:mod:`alignlab._rng`): draw ``i`` of a feedback matrix comes
from stream ``(i, TAG_B)`` (``W``'s from ``(i, TAG_W)``) of ``seed``, so the numbers do
not depend on the chunk size; the samplers run ``max_chunk_bytes`` at a time
(:func:`alignlab.sim.engine.plan_chunks`). The weight mirror is one chain, drawn from one
CPU ``torch.Generator`` (stream ``(0, TAG_AUX)``), as the training's mirror phase draws.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from alignlab._linalg import angle_deg
from alignlab._rng import TAG_AUX, TAG_B, TAG_W, RngLike, make_streams
from alignlab._validate import check_finite, check_int, check_positive
from alignlab.sim.engine import (
    DEFAULT_CHUNK_BYTES,
    check_device,
    check_dtype,
    fill_samples,
    plan_chunks,
)
from alignlab.sim.ensembles import Ensemble, resolve_ensemble
from alignlab.sim.memory import check_memory
from alignlab.sim.trained import AngleStats

__all__ = [
    "simulate_fa_null",
    "simulate_random_magnitude",
    "simulate_sign_concordant_iid",
    "simulate_weight_mirror",
]

#: mirror steps are counted in windows of ``ceil(1 / (lr * weight_decay))`` steps (the
#: mirror's time constant): burn in this many, then one draw every so many
MIRROR_BURN_IN_WINDOWS = 5  # the noise's variance within exp(-10) of stationary
MIRROR_SPACING_WINDOWS = 2  # lag-one correlation of successive draws <= exp(-2)


def _stats(angles: list[np.ndarray], ratios: list[np.ndarray]) -> AngleStats:
    return AngleStats.from_samples(np.concatenate(angles), np.concatenate(ratios))


def _weight(weight: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``weight`` (numpy or torch, any shape with >= 2 dims) as a tensor on ``device``,
    validated: finite, a nonzero entry."""
    if isinstance(weight, torch.Tensor):
        t = weight.detach()
    else:
        t = torch.from_numpy(np.array(check_finite("weight", weight), dtype=float, ndmin=1))
    if t.dim() < 2 or not t.is_floating_point() or not bool(torch.isfinite(t).all()) \
            or not bool((t != 0).any()):
        raise ValueError(f"`weight` must be a finite float array with >= 2 dimensions and a "
                         f"nonzero entry, got shape {tuple(t.shape)}, dtype {t.dtype}.")
    return t.to(device=device, dtype=dtype)


def _xavier_std(w: torch.Tensor) -> float:
    from alignlab.nn.methods.base import xavier_std  # the layers' one Xavier rule

    return xavier_std(w)


def _check_run(n_samples: int, seed: RngLike, device: Any, dtype: Any, max_chunk_bytes: int,
               name: str = "n_samples"):
    return (check_int(name, n_samples), make_streams(seed, "seed"), check_device(device),
            check_dtype(dtype), check_int("max_chunk_bytes", max_chunk_bytes))


def _chunk(n_samples: int, numel: int, itemsize: int, max_chunk_bytes: int,
           name: str, value: Any) -> int:
    """Samples per chunk: a sample draws ``numel`` entries and works on two more arrays of
    its size and three float64 ones (``angle_deg``); one must fit the memory budget."""
    draw, work = numel * itemsize, numel * (itemsize + 3 * 8)
    check_memory(name, draw + work, value=value)
    return plan_chunks(n_samples, draw, work, max_chunk_bytes, overlap=False)[0]


def _pair_stats(n_samples: int, chunk: int, dims: tuple[int, ...], pair) -> AngleStats:
    """Angle and norm ratio between ``W`` and its feedback over ``dims`` (one draw's
    entries), ``pair(start, k) -> (W, F)`` giving draws ``start .. start + k - 1`` (``W``
    one matrix or one per draw, ``F`` one per draw), chunk by chunk."""
    angles, ratios = [], []
    for start in range(0, n_samples, chunk):
        w, fb = pair(start, min(chunk, n_samples - start))
        angles.append(angle_deg(w, fb, axis=dims).cpu().numpy())
        ratios.append((torch.linalg.vector_norm(fb.double(), dim=dims)
                       / torch.linalg.vector_norm(w.double(), dim=dims)).cpu().numpy())
        del w, fb
    return _stats(angles, ratios)


def _fill(ens: Ensemble, shape: tuple[int, ...], std: float, streams, tag: int, start: int,
          w: torch.Tensor) -> torch.Tensor:
    """Draws ``start ..`` of role ``tag``: shape ``(k, *w.shape)``, filled as ``(k, rows,
    cols)`` matrices (a conv kernel flattened to ``(C_out, rest)``)."""
    out = torch.empty((shape[0], w.shape[0], int(np.prod(w.shape[1:]))), dtype=w.dtype,
                      device=w.device)
    fill_samples(ens, out, std, streams, tag=tag, start=start)
    return out.view(shape)


def _redrawn_feedback(weight, ensemble, n_samples, seed, device, dtype, max_chunk_bytes,
                      feedback) -> AngleStats:
    """The angle between a given ``W`` and ``feedback(D, W)`` over ``n_samples`` draws
    ``D`` of ``ensemble`` with the layer's Xavier SD (draw ``i`` from stream ``(i, TAG_B)``
    of ``seed``), chunk by chunk; validated here."""
    n_samples, streams, dev, dt, max_chunk_bytes = _check_run(n_samples, seed, device, dtype,
                                                              max_chunk_bytes)
    ens = resolve_ensemble("ensemble", ensemble)
    w = _weight(weight, dev, dt)
    std = _xavier_std(w)
    chunk = _chunk(n_samples, w.numel(), w.element_size(), max_chunk_bytes, "weight",
                   f"shape {tuple(w.shape)}")
    return _pair_stats(n_samples, chunk, tuple(range(-w.dim(), 0)), lambda start, k: (
        w, feedback(_fill(ens, (k, *w.shape), std, streams, TAG_B, start, w), w)))


# ------------------------------------------------------------------------------ samplers
def simulate_random_magnitude(
    weight: Any,
    *,
    n_samples: int,
    seed: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> AngleStats:
    """brSF/frSF for a given ``W``: the angle between ``W`` and ``sign(W) * |M|`` over
    ``n_samples`` draws of ``M`` (iid N(0, s^2), ``s`` the layer's Xavier SD, as
    :class:`alignlab.nn.methods.fixed.SignBatchRandom` draws it), ``W`` kept.

    Mirrors :func:`alignlab.theory.random_magnitude_angle_given_w`; the norm ratio is
    ``|sign(W) |M|| / |W|``. ``weight``: numpy or torch, any layer shape (every entry
    counts).
    """
    return _redrawn_feedback(weight, "gaussian", n_samples, seed, device, dtype,
                             max_chunk_bytes, lambda m, w: m.abs_().mul_(torch.sign(w)))


def simulate_fa_null(
    weight: Any,
    ensemble: str | Ensemble = "uniform",
    *,
    n_samples: int,
    seed: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> AngleStats:
    """FA's independence null for a given ``W``: the angle between ``W`` and ``n_samples``
    fresh feedback matrices ``B`` of ``ensemble`` with the layer's Xavier SD (FA's init
    'uniform' or 'gaussian'; any iid ensemble of :data:`alignlab.sim.ENSEMBLES`), ``W``
    kept.

    Mirrors :func:`alignlab.theory.fa_null_angle`; the norm ratio is ``|B| / |W|``.
    """
    return _redrawn_feedback(weight, ensemble, n_samples, seed, device, dtype,
                             max_chunk_bytes, lambda b, w: b)


def simulate_sign_concordant_iid(
    ensemble: str | Ensemble,
    n_out: int,
    n_in: int,
    *,
    n_samples: int,
    seed: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> AngleStats:
    """uSF at initialisation: the angle between ``W`` and ``s * sign(W)`` (``s`` the Xavier
    SD) over ``n_samples`` iid draws of ``W`` ``(n_out, n_in)`` from ``ensemble`` with the
    Xavier SD.

    Mirrors :func:`alignlab.theory.sign_concordant_angle_iid` (the mean, as ``N -> inf``)
    and :func:`alignlab.theory.sign_concordant_angle_sd_iid` (the SD); the norm ratio is
    ``s sqrt(N') / |W|`` (``N'`` the nonzero entries).
    """
    n_samples, streams, dev, dt, max_chunk_bytes = _check_run(n_samples, seed, device, dtype,
                                                              max_chunk_bytes)
    ens = resolve_ensemble("ensemble", ensemble)
    shape = (check_int("n_out", n_out), check_int("n_in", n_in))
    std = math.sqrt(2.0 / (shape[0] + shape[1]))  # Xavier, as uSF's s
    chunk = _chunk(n_samples, shape[0] * shape[1], torch.empty((), dtype=dt).element_size(),
                   max_chunk_bytes, "n_in" if shape[1] >= shape[0] else "n_out", max(shape))
    like = torch.empty(shape, dtype=dt, device=dev)

    def pair(start: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = _fill(ens, (k, *shape), std, streams, TAG_W, start, like)
        return w, torch.sign(w) * std

    return _pair_stats(n_samples, chunk, (-2, -1), pair)


def simulate_weight_mirror(
    weight: Any,
    *,
    n_samples: int,
    lr: float,
    weight_decay: float,
    noise_std: float,
    n_draws: int,
    seed: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> AngleStats:
    """The weight mirror on a fixed linear ``W`` at stationarity: the literal mirror step
    (:meth:`alignlab.nn.methods.learned.WM.mirror_update`: ``n_samples`` noise vectors
    ``xi ~ N(0, noise_std^2 I)``, ``F <- (1 - lr wd) F + lr <(W xi) xi^T>``) run as one
    chain, and the angle and norm ratio between ``W`` and ``F`` sampled ``n_draws`` times.

    The chain starts at the stationary mean ``F = noise_std^2 W / wd``, runs
    :data:`MIRROR_BURN_IN_WINDOWS` windows of ``ceil(1 / (lr wd))`` steps (the noise's
    variance is then within ``(1 - a)^(10 / a) <= exp(-10)`` of its stationary value), then
    records one draw every :data:`MIRROR_SPACING_WINDOWS` windows. Successive draws are
    correlated (lag one: at most ``(1 - a)^(2 / a) <= exp(-2)`` for the part of the angle
    linear in the noise, its square for the rest), which inflates the standard error of
    the mean by at most ``sqrt((1 + r) / (1 - r)) = 1.15`` (``r = exp(-2)``) over
    ``sd / sqrt(n)``. Cost: ``(5 + 2 n_draws) / a`` mirror steps of ``2 n_samples n_out
    n_in`` multiply-adds.

    Mirrors :func:`alignlab.theory.weight_mirror_angle_given_w` (and the ``W``-free
    :func:`~alignlab.theory.weight_mirror_floor_angle`,
    :func:`~alignlab.theory.weight_mirror_norm_ratio`).
    """
    from alignlab.nn.methods.learned import WM  # the training's mirror step itself
    from alignlab.theory.rules import weight_mirror_effective_samples

    weight_mirror_effective_samples(n_samples, lr, weight_decay)  # validates all three
    noise_std = float(check_positive("noise_std", noise_std, scalar=True))
    n_draws, streams, dev, dt, _ = _check_run(n_draws, seed, device, dtype, 1, "n_draws")
    w = _weight(weight, dev, dt)
    if w.dim() != 2:
        raise ValueError(f"`weight` must be a linear layer's weight, shape (n_out, n_in), "
                         f"got shape {tuple(w.shape)}.")
    a = float(lr) * float(weight_decay)
    window = math.ceil(1.0 / a)
    layer = SimpleNamespace(weight=w, feedback=w * (noise_std**2 / float(weight_decay)))
    gen = streams.torch(0, TAG_AUX, torch.device("cpu"))  # mirror_update draws on the CPU
    method = WM()

    def steps(k: int) -> None:
        for _ in range(k):
            method.mirror_update(layer, lr=lr, weight_decay=weight_decay, noise_std=noise_std,
                                 n_samples=n_samples, generator=gen)

    steps(MIRROR_BURN_IN_WINDOWS * window)
    w_norm = torch.linalg.vector_norm(w.double())
    angles, ratios = np.empty(n_draws), np.empty(n_draws)
    for i in range(n_draws):
        if i:
            steps(MIRROR_SPACING_WINDOWS * window)
        angles[i] = angle_deg(w, layer.feedback)
        ratios[i] = float(torch.linalg.vector_norm(layer.feedback.double()) / w_norm)
    return _stats([angles], [ratios])

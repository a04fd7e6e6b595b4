"""What is computed per sample: the converged PFA layer of Figure 3, fast and literal.

At the fixed point of Proposition 1, ``R^T = B W``, so the feedback path transposed is
``P^T = (R B)^T = B^T B W = M W`` with ``M = B^T B`` (``n_out x n_out``). The fast path
draws ``B`` and ``W``, forms ``M`` with one batched matmul and never forms ``R`` or
``P``. For Gaussian ``B`` it can skip ``B`` altogether: ``n_mid M`` is
Wishart(``n_mid`` dof, ``I``), drawn exactly by the Bartlett decomposition at a cost
independent of ``n_mid`` (``method='wishart'``).

Shapes: ``B (n_mid, n_out)`` with iid entries of variance ``1/n_mid`` (so
``E[B^T B] = I``); ``W (n_out, n_in)`` Xavier-uniform (variance ``2/(n_in + n_out)``; the
angle does not depend on ``W``'s scale). ``B``'s law defaults to the paper's
Xavier-uniform (:data:`alignlab.theory.DEFAULT_ENSEMBLE`), as everywhere in the package.

This module says what one sample draws and computes; :mod:`alignlab.sim.engine` runs
many of them in chunks and threads, :mod:`alignlab.sim.memory` checks up front that
one sample fits, and :mod:`alignlab.sim.estimators` turns the results into statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from alignlab._linalg import mid_width
from alignlab._records import Records
from alignlab._rng import TAG_AUX, TAG_B, TAG_W, RngLike, Streams, make_streams
from alignlab._validate import check_choice, check_finite, check_int, check_positive
from alignlab.sim.engine import (
    DEFAULT_CHUNK_BYTES,
    POOL_MIN_ELEMENTS,
    Buffer,
    check_device,
    check_dtype,
    draw_for,
    fill_samples,
    iter_chunks,
    plan_chunks,
)
from alignlab.sim.ensembles import ENSEMBLES, Ensemble, resolve_ensemble
from alignlab.sim.estimators import (
    PathSamples,
    angle_jensen_gap,
    estimate,
    literal_path_statistics,
    path_statistics_from_m,
    pooled_eigenvalue_sd,
)
from alignlab.sim.memory import check_memory, check_sample
from alignlab.theory.entries import DEFAULT_ENSEMBLE

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "METHODS",
    "check_method",
    "literal_pfa_sample",
    "n_mid_from_ratio",
    "sample_btb",
    "sample_converged_pfa",
    "sample_converged_pfa_nested",
    "sample_pfa_matrices",
    "sweep_expansion_ratio",
]

METHODS = ("direct", "wishart")


def n_mid_from_ratio(n_out: int, expansion_ratio: float) -> int:
    """``n_mid`` at expansion ratio ``r``, validated: :func:`alignlab._linalg.mid_width`, the
    package's one rounding rule (``floor(n_out r)``, at least 1; Figure 3's
    ``100 * 10**0.2 -> 158``)."""
    n_out = check_int("n_out", n_out)
    r = float(check_positive("expansion_ratio", expansion_ratio))
    return mid_width(n_out, r)


def _w_std(n_out: int, n_in: int) -> float:
    return math.sqrt(2.0 / (n_in + n_out))  # Xavier (Glorot), gain 1


def _check_common(n_out, n_mid, n_in, n_samples, device, dtype, max_chunk_bytes):
    n_out = check_int("n_out", n_out)
    n_mid = check_int("n_mid", n_mid)
    n_in = None if n_in is None else check_int("n_in", n_in)
    n_samples = check_int("n_samples", n_samples)
    dev = check_device(device)
    dt = check_dtype(dtype)
    max_chunk_bytes = check_int("max_chunk_bytes", max_chunk_bytes)
    return n_out, n_mid, n_in, n_samples, dev, dt, max_chunk_bytes


def check_method(method: str, b_ens: Ensemble) -> str:
    """``method`` validated for the law of ``B``: 'wishart' needs an ensemble whose
    ``B^T B`` is Wishart (its class says so: ``Ensemble.wishart``)."""
    method = check_choice("method", method, METHODS)
    if method == "wishart" and not b_ens.wishart:
        ok = ", ".join(repr(name) for name, cls in ENSEMBLES.items() if cls.wishart)
        raise ValueError(f"`method` 'wishart' requires an ensemble whose B^T B is Wishart "
                         f"({ok}), got 'wishart' with ensemble={b_ens.name!r}.")
    return method




def _itemsize(dt: torch.dtype) -> int:
    return torch.empty((), dtype=dt).element_size()


def _check_fits(n_out: int, n_in: int, n_mid: int, n_samples: int, dev: torch.device,
                dt: torch.dtype, method: str, b_ens: Ensemble | None = None,
                w_ens: Ensemble | None = None, *, extra: int = 0, per_result: int = 0,
                results_on_device: bool = False,
                n_mid_alias: tuple[str, Any] | None = None) -> int:
    """Refuse, before anything is allocated, a sample that does not fit the memory budget
    (:func:`alignlab.sim.memory.check_sample`), or results that do not (``per_result``
    bytes per sample, numpy on the host unless ``results_on_device``); return one
    sample's work bytes plus ``extra`` (the nested sampler's Gram matrix, ``n_out^2``
    numbers: counted for the chunk size, negligible for the check)."""
    _, work = check_sample(n_out, n_in, n_mid, itemsize=_itemsize(dt), method=method,
                           ensemble=b_ens, w_ensemble=w_ens, n_mid_alias=n_mid_alias,
                           device=dev)
    check_memory("n_samples", n_samples * per_result, value=n_samples, what="the results",
                 device=dev if results_on_device else None)
    return work + extra


def _result_bytes(n_out: int, dt: torch.dtype) -> int:
    """Per sample: eigenvalues in the dtype, cos / angle / norm ratio in float64."""
    return n_out * _itemsize(dt) + 3 * 8


def _fill_bartlett(out: np.ndarray, n_mid: int, gen: np.random.Generator,
                   tril: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Lower-triangular ``L`` with ``L L^T ~ Wishart(n_mid dof, I_p)`` (Bartlett, 1933).

    ``L_ii = sqrt(chi2(n_mid - i))`` for ``i = 0..p-1``, ``L_ij ~ N(0, 1)`` for ``i > j``,
    all independent. Requires ``n_mid >= p``. ``tril``: cached ``np.tril_indices(p, -1)``.
    """
    p = out.shape[0]
    rows, cols = np.tril_indices(p, -1) if tril is None else tril
    out.fill(0.0)
    out[rows, cols] = gen.standard_normal(rows.size)
    diag = np.arange(p)
    out[diag, diag] = np.sqrt(gen.chisquare(n_mid - diag))


def _iter_m_chunks(
    n_out: int, n_mid: int, n_in: int | None, n_samples: int, b_ens: Ensemble,
    w_ens: Ensemble | None, streams: Streams, dev: torch.device, dt: torch.dtype,
    method: str, max_chunk_bytes: int, work_bytes: int, *, b_std: float | None = None,
    want_b: bool = False,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor | None]]:
    """Yield ``(start, M, W)`` chunks: ``M = B^T B`` ``(k, n_out, n_out)`` and ``W``
    ``(k, n_out, n_in)`` (``None`` when ``w_ens`` is None) for samples ``start..start+k-1``.
    With ``want_b`` (direct method only) the chunk of ``B`` itself is yielded instead of
    ``M``; ``b_std`` overrides the entry SD ``1/sqrt(n_mid)``. ``work_bytes``: what the
    caller computes per sample (:func:`alignlab.sim.memory.footprint`), for the chunk size.

    One sample draws ``B`` from stream ``(i, TAG_B)`` (or, for 'wishart', the Bartlett
    factor of ``n_mid M``) and ``W`` from ``(i, TAG_W)``; the engine
    (:func:`alignlab.sim.engine.iter_chunks`) runs the draws chunk by chunk, threaded and
    double-buffered on CPU. The yielded ``W`` is valid until the next iteration.
    """
    # With n_mid < n_out the Bartlett factor does not exist (singular Wishart); a
    # Gaussian B is then drawn directly, which is exact and costs n_mid*n_out <= n_out^2.
    bartlett = method == "wishart" and n_mid >= n_out
    has_w = w_ens is not None and n_in is not None
    b_std = 1.0 / math.sqrt(n_mid) if b_std is None else b_std
    w_std = _w_std(n_out, n_in) if has_w else 0.0
    buffers: dict[str, Buffer] = {}
    if bartlett:
        # Drawn with numpy on the host for every device (O(n_out^2) per sample, cheap),
        # so method='wishart' gives the same numbers on CPU and GPU up to rounding.
        buffers["L"] = Buffer((n_out, n_out), np.float64, host=True)
    else:
        buffers["B"] = Buffer((n_mid, n_out), dt)
    if has_w:
        buffers["W"] = Buffer((n_out, n_in), dt)
    tril = np.tril_indices(n_out, -1) if bartlett else None

    def fill(arrays: Mapping[str, Any], j: int, i: int) -> None:
        """Draw sample ``i`` (all its roles) into slot ``j``."""
        if bartlett:
            _fill_bartlett(arrays["L"][j], n_mid, streams.numpy(i, TAG_B), tril)
        else:
            b_ens.fill_(arrays["B"][j], b_std, draw_for(streams, i, TAG_B, dev))
        if has_w:
            w_ens.fill_(arrays["W"][j], w_std, draw_for(streams, i, TAG_W, dev))

    # Threads pay off only when a sample's draw is long enough to amortise the task
    # overhead; small draws (W alone, the Bartlett factor) hold the GIL most of the time.
    threaded = not bartlett and n_mid * n_out >= POOL_MIN_ELEMENTS
    chunks = iter_chunks(n_samples, buffers, fill, device=dev, work_bytes=work_bytes,
                         max_chunk_bytes=max_chunk_bytes, threaded=threaded)
    for start, arrays in chunks:
        if bartlett:
            L = torch.from_numpy(arrays["L"]).to(device=dev, dtype=dt)
            M = torch.bmm(L, L.mT).div_(n_mid)  # (k, n_out, n_out)
        else:
            B = arrays["B"]  # (k, n_mid, n_out)
            b_ens.finish_(B, b_std)
            M = B if want_b else torch.bmm(B.mT, B)  # B^T B, (k, n_out, n_out)
        W = None
        if has_w:
            W = arrays["W"]  # (k, n_out, n_in)
            w_ens.finish_(W, w_std)
        yield start, M, W


def sample_converged_pfa(
    n_out: int,
    n_mid: int,
    n_in: int,
    *,
    n_samples: int,
    ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    w_ensemble: str | Ensemble = "uniform",
    rng: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    method: str = "direct",
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> PathSamples:
    """Eigenvalues of ``B^T B`` and path alignment at ``R^T = B W``, for ``n_samples``
    independent draws of ``B`` and ``W`` (the fast path of Figure 3).

    Parameters
    ----------
    n_out, n_mid, n_in : int
        Layer sizes; ``B`` is ``(n_mid, n_out)``, ``W`` is ``(n_out, n_in)``.
    n_samples : int
        Independent samples.
    ensemble : str or Ensemble
        Law of ``B``'s entries (variance ``1/n_mid``). Default 'uniform', the package's
        one default (:data:`alignlab.theory.DEFAULT_ENSEMBLE`): the reference code's
        Xavier-uniform with gain ``sqrt((1 + 1/r)/2)``. See :mod:`alignlab.sim.ensembles`.
    w_ensemble : str or Ensemble
        Law of ``W``'s entries (variance ``2/(n_in + n_out)``, Xavier).
    rng : None, int, SeedSequence, numpy Generator or torch.Generator
        Seed. Same seed, same device kind: bit-identical output. Sample ``i`` has its own
        streams, so results do not depend on ``max_chunk_bytes`` or the thread count, and
        the same seed at two ``n_mid`` gives *coupled* samples (same ``W``, ``B``s drawn
        from the same numbers): use different seeds for independent runs.
    device, dtype
        Torch device and float32 (default: the Monte Carlo error, ~1e-2 relative at
        100 samples, dwarfs float32 rounding, ~1e-6) or float64. On CPU the numbers are
        drawn by numpy in parallel threads; on a GPU by torch on that device.
    method : {'direct', 'wishart'}
        'wishart' (Gaussian ``B`` only) draws ``M`` directly by the Bartlett
        decomposition: same law, cost independent of ``n_mid``.
    max_chunk_bytes : int
        Working-memory bound per chunk of samples (one sample is never split: if one
        sample does not fit in :func:`alignlab.sim.memory.memory_budget`, ``ValueError``
        naming the size that makes it large, before anything is allocated).

    Returns
    -------
    PathSamples
        ``eigenvalues (n_samples, n_out)``, ``cos``, ``angle_deg``, ``norm_ratio``
        ``(n_samples,)``.

    Notes
    -----
    ``P^T = B^T (B W) = M W``: ``R`` and ``P`` are never formed, so the cost per sample
    is ``n_mid n_out^2`` (``M``) plus ``n_out^2 n_in`` (``M W``) plus an
    ``n_out x n_out`` eigendecomposition, and the random draws of ``B``
    (``n_mid n_out`` numbers) dominate on a CPU.
    """
    n_out, n_mid, n_in, n_samples, dev, dt, max_chunk_bytes = _check_common(
        n_out, n_mid, n_in, n_samples, device, dtype, max_chunk_bytes)
    b_ens = resolve_ensemble("ensemble", ensemble)
    w_ens = resolve_ensemble("w_ensemble", w_ensemble)
    method = check_method(method, b_ens)
    work = _check_fits(n_out, n_in, n_mid, n_samples, dev, dt, method, b_ens, w_ens,
                       per_result=_result_bytes(n_out, dt))
    streams = make_streams(rng)
    eig = np.empty((n_samples, n_out), dtype=np.float32 if dt == torch.float32 else np.float64)
    cos = np.empty(n_samples)
    angle = np.empty(n_samples)
    ratio = np.empty(n_samples)
    for start, M, W in _iter_m_chunks(n_out, n_mid, n_in, n_samples, b_ens, w_ens, streams,
                                      dev, dt, method, max_chunk_bytes, work):
        sl = slice(start, start + M.shape[0])
        eig[sl], cos[sl], angle[sl], ratio[sl] = path_statistics_from_m(M, W)
    return PathSamples(eig, cos, angle, ratio, n_out=n_out, n_mid=n_mid, n_in=n_in,
                       ensemble=b_ens.name, w_ensemble=w_ens.name, method=method,
                       entropy=streams.entropy)


def sample_converged_pfa_nested(
    n_out: int,
    n_mids: Sequence[int],
    n_in: int,
    *,
    n_samples: int,
    ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    w_ensemble: str | Ensemble = "uniform",
    rng: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    method: str = "direct",
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> list[PathSamples]:
    """:func:`sample_converged_pfa` at several ``n_mid`` with *nested* feedback matrices:
    common random numbers across sizes, at the cost of the largest size alone.

    Sample ``i`` draws one ``W`` and one ``B_max`` of ``max(n_mids)`` rows with unit-variance
    iid entries; at each ``n_mid`` its ``B`` is the first ``n_mid`` rows scaled by
    ``1/sqrt(n_mid)``. Every size therefore has exactly the law of
    :func:`sample_converged_pfa` (the first rows of an iid matrix are iid), while the sizes
    share their randomness, so *differences* between sizes are much less noisy. The Gram
    matrices are accumulated block by block, ``G_k = G_{k-1} + B[n_{k-1}:n_k]^T
    B[n_{k-1}:n_k]``, ``M = G / n_mid``: one draw and one product over ``max(n_mids)`` rows
    per sample instead of one per size (Figure 3: 1.0e4 rows instead of 2.7e4).

    ``method='wishart'`` (Gaussian): the increments ``G_k - G_{k-1}`` are independent
    Wishart matrices with ``n_k - n_{k-1}`` degrees of freedom, each drawn by the Bartlett
    decomposition (or directly when it has fewer than ``n_out`` degrees of freedom), so
    the cost stays independent of ``n_mid``. The 'orthogonal' ensemble does not nest (the
    first rows of an orthonormal matrix are not orthonormal): ``ValueError``.

    Returns one :class:`PathSamples` per entry of ``n_mids``, in the given order.
    """
    n_out = check_int("n_out", n_out)
    n_in = check_int("n_in", n_in)
    n_samples = check_int("n_samples", n_samples)
    if isinstance(n_mids, (str, bytes)) or not isinstance(n_mids, Sequence) or not n_mids:
        raise ValueError(f"`n_mids` must be a non-empty sequence of integers >= 1, "
                         f"got {n_mids!r}.")
    n_mids = [check_int("n_mids", m) for m in n_mids]
    dev = check_device(device)
    dt = check_dtype(dtype)
    max_chunk_bytes = check_int("max_chunk_bytes", max_chunk_bytes)
    b_ens = resolve_ensemble("ensemble", ensemble)
    w_ens = resolve_ensemble("w_ensemble", w_ensemble)
    method = check_method(method, b_ens)
    if not b_ens.iid:
        raise ValueError(f"`ensemble` must have iid entries to nest (the first rows of an "
                         f"orthogonal matrix are not orthogonal), got {b_ens.name!r}.")
    sizes = sorted(set(n_mids))
    n_max = sizes[-1]
    # one sample: the largest B (or the Bartlett factors), plus the running Gram matrix G
    work = _check_fits(n_out, n_in, n_max, n_samples, dev, dt, method, b_ens, w_ens,
                       extra=n_out * n_out * _itemsize(dt),
                       per_result=len(sizes) * _result_bytes(n_out, dt),
                       n_mid_alias=("n_mids", n_max))
    streams = make_streams(rng)
    f_np = np.float32 if dt == torch.float32 else np.float64
    out = {m: (np.empty((n_samples, n_out), dtype=f_np), np.empty(n_samples),
               np.empty(n_samples), np.empty(n_samples)) for m in sizes}

    def record(m: int, start: int, G: torch.Tensor, W: torch.Tensor) -> None:
        eig, cos, angle, ratio = path_statistics_from_m(G / m, W)  # M = G / n_mid
        sl = slice(start, start + G.shape[0])
        for arr, val in zip(out[m], (eig, cos, angle, ratio), strict=True):
            arr[sl] = val

    if method == "direct":
        chunks = _iter_m_chunks(n_out, n_max, n_in, n_samples, b_ens, w_ens, streams, dev, dt,
                                method, max_chunk_bytes, work, b_std=1.0, want_b=True)
        for start, B, W in chunks:  # B: (k, n_max, n_out), unit-variance entries
            G = torch.zeros((B.shape[0], n_out, n_out), dtype=dt, device=dev)
            prev = 0
            for m in sizes:
                block = B[:, prev:m]  # (k, m - prev, n_out)
                G.baddbmm_(block.mT, block)  # G += block^T block
                prev = m
                record(m, start, G, W)
    else:
        _nested_wishart(n_out, sizes, n_in, n_samples, w_ens, streams, dev, dt,
                        max_chunk_bytes, work, record)
    return [PathSamples(*out[m], n_out=n_out, n_mid=m, n_in=n_in, ensemble=b_ens.name,
                        w_ensemble=w_ens.name, method=f"{method}-nested",
                        entropy=streams.entropy) for m in n_mids]


def _nested_wishart(n_out, sizes, n_in, n_samples, w_ens, streams, dev, dt, max_chunk_bytes,
                    work_bytes, record) -> None:
    """Nested Gram matrices of Gaussian B from independent Wishart increments. Each
    sample's increments come one after another from its own stream, so the draws run in
    order here (no threads); only the chunk size comes from the engine."""
    draw_bytes = 8 * n_out * n_out + _itemsize(dt) * n_out * n_in  # an increment's L, W
    chunk, _ = plan_chunks(n_samples, draw_bytes, work_bytes, max_chunk_bytes, overlap=False)
    w_std = _w_std(n_out, n_in)
    tril = np.tril_indices(n_out, -1)
    for start in range(0, n_samples, chunk):
        k = min(chunk, n_samples - start)
        gens = [streams.numpy(start + j, TAG_B) for j in range(k)]  # sequential per sample
        W = torch.empty((k, n_out, n_in), dtype=dt, device=dev)
        fill_samples(w_ens, W, w_std, streams, tag=TAG_W, start=start)
        G = torch.zeros((k, n_out, n_out), dtype=dt, device=dev)
        prev = 0
        for m in sizes:
            dof = m - prev
            if dof >= n_out:  # Bartlett factor of the increment
                L = np.empty((k, n_out, n_out))
                for j, gen in enumerate(gens):
                    _fill_bartlett(L[j], dof, gen, tril)
            else:  # fewer rows than columns: the dof Gaussian rows themselves
                L = np.stack([gen.standard_normal((n_out, dof)) for gen in gens])
            Lt = torch.from_numpy(L).to(device=dev, dtype=dt)
            G.baddbmm_(Lt, Lt.mT)  # G += L L^T
            prev = m
            record(m, start, G, W)


def sample_btb(
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
) -> torch.Tensor:
    """``M = B^T B``, shape ``(n_samples, n_out, n_out)``, ``B`` as in
    :func:`sample_converged_pfa` (same seed, same ``M``)."""
    n_out, n_mid, _, n_samples, dev, dt, max_chunk_bytes = _check_common(
        n_out, n_mid, None, n_samples, device, dtype, max_chunk_bytes)
    b_ens = resolve_ensemble("ensemble", ensemble)
    method = check_method(method, b_ens)
    work = _check_fits(n_out, 0, n_mid, n_samples, dev, dt, method, b_ens,
                       per_result=n_out * n_out * _itemsize(dt), results_on_device=True)
    streams = make_streams(rng)
    out = torch.empty((n_samples, n_out, n_out), dtype=dt, device=dev)
    for start, M, _ in _iter_m_chunks(n_out, n_mid, None, n_samples, b_ens, None, streams,
                                      dev, dt, method, max_chunk_bytes, work):
        out[start:start + M.shape[0]] = M
    return out


def btb_eigenvalue_samples(
    n_out: int, n_mid: int, *, n_samples: int, ensemble: str | Ensemble, rng: RngLike,
    device: Any, dtype: Any, method: str, max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[np.ndarray, Ensemble, Streams]:
    """Eigenvalues of ``B^T B`` chunk by chunk (validated here; used by simulate_spectrum)."""
    n_out, n_mid, _, n_samples, dev, dt, max_chunk_bytes = _check_common(
        n_out, n_mid, None, n_samples, device, dtype, max_chunk_bytes)
    b_ens = resolve_ensemble("ensemble", ensemble)
    method = check_method(method, b_ens)
    work = _check_fits(n_out, 0, n_mid, n_samples, dev, dt, method, b_ens,
                       per_result=_result_bytes(n_out, dt))
    streams = make_streams(rng)
    eig = np.empty((n_samples, n_out), dtype=np.float32 if dt == torch.float32 else np.float64)
    for start, M, _ in _iter_m_chunks(n_out, n_mid, None, n_samples, b_ens, None, streams,
                                      dev, dt, method, max_chunk_bytes, work):
        eig[start:start + M.shape[0]] = torch.linalg.eigvalsh(M).cpu().numpy()
    return eig, b_ens, streams


def sample_pfa_matrices(
    n_out: int,
    n_mid: int,
    n_in: int,
    *,
    n_samples: int,
    ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    w_ensemble: str | Ensemble = "uniform",
    rng: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``B (n_samples, n_mid, n_out)`` and ``W (n_samples, n_out, n_in)`` that
    :func:`sample_converged_pfa` (method 'direct') draws for the same arguments and seed.

    ``path_statistics(B, W)`` then reproduces its output, and
    ``literal_path_statistics(B, W)`` runs the literal recipe on the same matrices.
    """
    n_out, n_mid, n_in, n_samples, dev, dt, _ = _check_common(
        n_out, n_mid, n_in, n_samples, device, dtype, DEFAULT_CHUNK_BYTES)
    b_ens = resolve_ensemble("ensemble", ensemble)
    w_ens = resolve_ensemble("w_ensemble", w_ensemble)
    # all samples are returned, and finish_ works on the whole batch
    per_sample = _itemsize(dt) * ((1 + b_ens.finish_copies) * n_mid * n_out
                                  + (1 + w_ens.finish_copies) * n_out * n_in)
    _check_fits(n_out, n_in, n_mid, n_samples, dev, dt, "direct", b_ens, w_ens,
                per_result=per_sample, results_on_device=True)
    streams = make_streams(rng)
    B = torch.empty((n_samples, n_mid, n_out), dtype=dt, device=dev)
    W = torch.empty((n_samples, n_out, n_in), dtype=dt, device=dev)
    fill_samples(b_ens, B, 1.0 / math.sqrt(n_mid), streams, tag=TAG_B, start=0)
    fill_samples(w_ens, W, _w_std(n_out, n_in), streams, tag=TAG_W, start=0)
    return B, W


def literal_pfa_sample(
    n_out: int,
    n_mid: int,
    n_in: int,
    *,
    n_samples: int = 1,
    b_init: str = "uniform",
    rng: RngLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PathSamples:
    """The literal per-sample recipe of Figure 3: the test oracle and benchmark baseline.

    For each sample: ``W = xavier_uniform_(empty(n_out, n_in))``; ``B`` the transpose of
    ``xavier_uniform_(empty(n_out, n_mid), gain=sqrt((1 + 1/r) / 2))`` (variance
    ``1/n_mid``; the reference code's initialisation) or, with ``b_init='gaussian'``,
    ``normal_(std=1/sqrt(n_mid))``; then ``R = (B W)^T``, ``P = R B``,
    ``eigvalsh(B^T B)`` and the angle by ``arccos``, see
    :func:`~alignlab.sim.literal_path_statistics`. All draws come from one
    ``torch.Generator`` seeded from ``rng``, so the numbers differ from
    :func:`sample_converged_pfa`'s (same law).
    """
    n_out, n_mid, n_in, n_samples, dev, dt, _ = _check_common(
        n_out, n_mid, n_in, n_samples, device, dtype, DEFAULT_CHUNK_BYTES)
    b_init = check_choice("b_init", b_init, ("uniform", "gaussian"))
    _check_fits(n_out, n_in, n_mid, n_samples, dev, dt, "literal",
                per_result=_result_bytes(n_out, dt))
    gen = make_streams(rng).torch(0, TAG_AUX, dev)
    gain = math.sqrt((1.0 + n_out / n_mid) / 2.0)
    parts = []
    for _ in range(n_samples):
        W = torch.empty(n_out, n_in, dtype=dt, device=dev)
        torch.nn.init.xavier_uniform_(W, generator=gen)
        Bt = torch.empty(n_out, n_mid, dtype=dt, device=dev)
        if b_init == "uniform":
            torch.nn.init.xavier_uniform_(Bt, gain=gain, generator=gen)
        else:
            torch.nn.init.normal_(Bt, std=1.0 / math.sqrt(n_mid), generator=gen)
        parts.append(literal_path_statistics(Bt.T, W))
    return PathSamples(
        np.concatenate([p.eigenvalues for p in parts]),
        np.concatenate([p.cos for p in parts]),
        np.concatenate([p.angle_deg for p in parts]),
        np.concatenate([p.norm_ratio for p in parts]),
        n_out=n_out, n_mid=n_mid, n_in=n_in, ensemble=b_init, w_ensemble="uniform",
        method="literal",
    )


def sweep_expansion_ratio(
    n_out: int,
    expansion_ratios: Sequence[float],
    *,
    n_in: int,
    n_samples: int,
    ensemble: str | Ensemble = DEFAULT_ENSEMBLE,
    w_ensemble: str | Ensemble = "uniform",
    rng: RngLike = None,
    coupled: bool = False,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    method: str = "direct",
    progress: Callable[[int, dict], None] | None = None,
) -> Records:
    """:func:`sample_converged_pfa` at each ratio (``n_mid = floor(n_out r)``, the one
    rounding rule :func:`alignlab._linalg.mid_width`), summarised as tidy records: one
    row per ratio with the pooled eigenvalue mean and SD (the spread of the spectrum,
    Figure 3a) and the angle / norm-ratio mean, SD and SE (Figure 3b), and the angle's
    Jensen gap (:func:`~alignlab.sim.estimators.angle_jensen_gap`).

    Every argument is checked before the first ratio is simulated, including that one
    sample at the largest ratio fits in memory (else ``ValueError`` naming
    ``expansion_ratios``).

    ``coupled=False`` (default): independent samples at every ratio (child seeds).
    ``coupled=True``: common random numbers across ratios, by
    :func:`sample_converged_pfa_nested` (the same ``W``; each ``B`` the first ``n_mid``
    rows of one larger draw): each ratio's law is unchanged, differences between ratios
    are much less noisy, and the cost is that of the largest ratio alone (iid
    ensembles only).

    ``progress(k, row)``, if given, is called with each ratio's row as it is finished.
    """
    ratios = np.atleast_1d(check_finite("expansion_ratios", expansion_ratios))
    if ratios.ndim != 1 or ratios.size == 0:
        raise ValueError(f"`expansion_ratios` must be a non-empty 1-D sequence, "
                         f"got {expansion_ratios!r}.")
    check_positive("expansion_ratios", ratios)
    n_out = check_int("n_out", n_out)
    n_in = check_int("n_in", n_in)
    n_samples = check_int("n_samples", n_samples)
    n_mids = [n_mid_from_ratio(n_out, r) for r in ratios]
    dt = check_dtype(dtype)
    dev = check_device(device)
    b_ens = resolve_ensemble("ensemble", ensemble)
    w_ens = resolve_ensemble("w_ensemble", w_ensemble)
    check_method(method, b_ens)
    big = int(np.argmax(n_mids))
    _check_fits(n_out, n_in, n_mids[big], n_samples, dev, dt, method, b_ens, w_ens,
                extra=n_out * n_out * _itemsize(dt) if coupled else 0,
                per_result=len(n_mids) * _result_bytes(n_out, dt),
                n_mid_alias=("expansion_ratios", float(ratios[big])))
    streams = make_streams(rng)
    kw = dict(n_samples=n_samples, ensemble=ensemble, w_ensemble=w_ensemble, device=device,
              dtype=dtype, method=method)
    if coupled:
        results = sample_converged_pfa_nested(n_out, n_mids, n_in, rng=streams.root, **kw)
    else:  # lazily, so progress is reported ratio by ratio
        results = (sample_converged_pfa(n_out, n_mid, n_in, rng=streams.child(k).root, **kw)
                   for k, n_mid in enumerate(n_mids))
    rows = []
    for k, (r, n_mid, s) in enumerate(zip(ratios, n_mids, results, strict=True)):
        eig = s.eigenvalues.astype(float)
        eig_sd = pooled_eigenvalue_sd(eig)
        angle = estimate(s.angle_deg)
        nr = estimate(s.norm_ratio)
        rows.append({
            "expansion_ratio": float(r), "n_out": n_out, "n_mid": n_mid, "n_in": s.n_in,
            "n_samples": s.n_samples, "ensemble": s.ensemble,
            "eig_mean": float(eig.mean()), "eig_sd": eig_sd.mean, "eig_sd_se": eig_sd.se,
            "angle_mean": angle.mean, "angle_sd": angle.sd, "angle_se": angle.se,
            "angle_jensen_gap": angle_jensen_gap(s),
            "cos_mean": float(s.cos.mean()),
            "norm_ratio_mean": nr.mean, "norm_ratio_sd": nr.sd, "norm_ratio_se": nr.se,
        })
        if progress is not None:
            progress(k, rows[-1])
    return Records(rows)

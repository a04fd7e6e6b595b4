"""The chunking engine: how samples are drawn and processed, not what they are.

The simulators describe one sample (which arrays it draws, how to fill them, what to
compute from them); this module runs many of them:

* **backends**: on CPU, numpy fills each sample from its own ``PCG64DXSM`` stream
  (:class:`Draw` over a numpy Generator); on other devices, torch fills it on the device
  from a ``torch.Generator`` seeded from the same ``SeedSequence`` child
  (see :mod:`alignlab._rng`). :func:`check_device` and :func:`check_dtype` validate where
  and in which precision;
* **chunks**: samples are processed ``chunk`` at a time so the working memory stays below
  ``max_chunk_bytes`` (:func:`plan_chunks`); one sample is never split, and whether one
  sample fits at all is :mod:`alignlab.sim.memory`'s check;
* **threads and futures**: on CPU the draws of a chunk run in a thread pool (numpy
  releases the GIL while it fills an array) and are *double-buffered*: chunk ``c + 1`` is
  drawn while the caller works on chunk ``c`` (eigendecompositions, products, mostly
  single-threaded). Only numpy runs in the pool threads, never torch, whose OpenMP
  teams would oversubscribe the cores.

Sample ``i`` always draws from its own streams, and each task writes only its own slot,
so the numbers do not depend on the chunk size, the thread count or the scheduling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alignlab._device import resolve_device
from alignlab._rng import Streams

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "OVERLAP",
    "POOL_MIN_ELEMENTS",
    "Buffer",
    "Draw",
    "check_device",
    "check_dtype",
    "draw_for",
    "fill_samples",
    "iter_chunks",
    "n_workers",
    "plan_chunks",
    "run_parallel",
]

DEFAULT_CHUNK_BYTES = 64 * 2**20  # working memory per chunk of samples (64 MiB)
OVERLAP = True  # CPU: draw chunk c+1 while the caller works on chunk c
# Draw in threads only when one sample has this many entries (~0.1 ms of GIL-free work);
# smaller draws spend most of their time in Python and the task overhead.
POOL_MIN_ELEMENTS = 2**16
_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


# ------------------------------------------------------------------------- backends
def check_dtype(dtype: Any) -> torch.dtype:
    """torch.float32 or torch.float64 (also accepts the strings 'float32'/'float64')."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be torch.float32 or torch.float64, got {dtype!r}.")
    return dtype


def check_device(device: Any) -> torch.device:
    """A torch.device (or its string, or 'auto'); CUDA must be available if asked for
    (:func:`alignlab._device.resolve_device`)."""
    return resolve_device(device, "device")


class Draw:
    """Elementary random draws into one sample's array, from one stream.

    ``out`` is a numpy array (CPU backend, ``gen`` a numpy Generator) or a torch tensor
    (device backend, ``gen`` a torch.Generator). Every ensemble is written with these
    few operations, so the two backends share its definition.
    """

    def __init__(self, gen: np.random.Generator | torch.Generator):
        self.gen = gen
        self.is_numpy = isinstance(gen, np.random.Generator)

    def uniform_(self, out, low: float, high: float) -> None:
        """iid uniform on [low, high)."""
        if self.is_numpy:
            self.gen.random(out=out, dtype=out.dtype)
            out *= high - low
            out += low
        else:
            out.uniform_(low, high, generator=self.gen)

    def normal_(self, out, std: float) -> None:
        """iid N(0, std^2)."""
        if self.is_numpy:
            self.gen.standard_normal(out=out, dtype=out.dtype)
            out *= std
        else:
            out.normal_(0.0, std, generator=self.gen)

    def sign_(self, out, std: float) -> None:
        """iid +-std with probability 1/2 each."""
        if self.is_numpy:
            bits = self.gen.integers(0, 2, size=out.shape, dtype=np.uint8)
            np.copyto(out, bits)
        else:
            out.bernoulli_(0.5, generator=self.gen)
        out *= 2.0 * std
        out -= std

    def keep_(self, out, density: float) -> None:
        """Multiply by an iid Bernoulli(density) mask."""
        if self.is_numpy:
            out *= self.gen.random(size=out.shape, dtype=np.float32) < density
        else:
            u = torch.rand(out.shape, generator=self.gen, device=out.device)
            out.mul_(u < density)


def draw_for(streams: Streams, index: int, tag: int, device: torch.device) -> Draw:
    """The Draw for sample ``index`` of role ``tag`` on ``device``'s backend."""
    if device.type == "cpu":
        return Draw(streams.numpy(index, tag))
    return Draw(streams.torch(index, tag, device))


# -------------------------------------------------------------------------- threads
def n_workers(n_items: int) -> int:
    return max(1, min(torch.get_num_threads(), n_items))


def run_parallel(fn: Callable[[Any], None], items: Iterable[Any], workers: int,
                 pool: ThreadPoolExecutor | None = None) -> None:
    """Run ``fn(item)`` for every item, in a thread pool when ``workers > 1``.

    Used for the CPU random draws: numpy releases the GIL while it fills an array, so two
    threads fill two samples at once. Each item writes only its own slice, so the result
    does not depend on scheduling. ``pool`` reuses an executor across calls.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for i in items:
            fn(i)
        return
    if pool is not None:
        for _ in pool.map(fn, items):  # re-raises the first exception
            pass
        return
    with ThreadPoolExecutor(max_workers=workers) as own:
        for _ in own.map(fn, items):
            pass


def fill_samples(ens: Any, out: torch.Tensor, std: float, streams: Streams, *,
                 tag: int, start: int, pool: ThreadPoolExecutor | None = None) -> None:
    """Fill ``out[j]`` with sample ``start + j`` of role ``tag`` of the ensemble ``ens``
    (no validation: internal): the per-sample draws (threads on CPU), then the batched
    ``ens.finish_``."""
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


# --------------------------------------------------------------------------- chunks
@dataclass(frozen=True)
class Buffer:
    """One array a sample draws into: its shape per sample and dtype.

    ``host=True``: a numpy array on the host whatever the device (the Bartlett factor is
    drawn with numpy everywhere, so 'wishart' gives the same numbers on CPU and GPU).
    """

    shape: tuple[int, ...]
    dtype: torch.dtype | type
    host: bool = False

    def nbytes(self) -> int:
        item = np.dtype(self.dtype).itemsize if self.host else \
            torch.empty((), dtype=self.dtype).element_size()
        return item * int(np.prod(self.shape, dtype=object))


def plan_chunks(n_samples: int, draw_bytes: int, work_bytes: int, max_chunk_bytes: int, *,
                overlap: bool) -> tuple[int, bool]:
    """``(chunk, double_buffered)``: the most samples whose memory fits ``max_chunk_bytes``.

    A sample costs its draws plus its work; with double buffering (``overlap`` and more
    than one chunk) its draws count twice. If not even one sample fits twice, there is
    no overlap (one chunk of one sample: the least memory the computation allows).
    """
    single = draw_bytes + work_bytes
    chunk = max(1, min(n_samples, max_chunk_bytes // max(single, 1)))
    if not overlap or chunk >= n_samples:
        return chunk, False
    double = min(n_samples, max_chunk_bytes // max(2 * draw_bytes + work_bytes, 1))
    return (double, True) if double >= 1 else (1, False)


def iter_chunks(
    n_samples: int,
    buffers: Mapping[str, Buffer],
    fill: Callable[[Mapping[str, Any], int, int], None],
    *,
    device: torch.device,
    work_bytes: int,
    max_chunk_bytes: int,
    threaded: bool,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Draw ``n_samples`` samples chunk by chunk; yield ``(start, arrays)``.

    ``fill(arrays, j, i)`` draws sample ``i`` into slot ``j`` of every buffer:
    ``arrays[name]`` is the whole chunk buffer, as a numpy array on CPU (and for host
    buffers, so it can be filled in a worker thread) or a tensor on other devices. The
    yielded ``arrays[name]`` are the first ``k`` slots (tensors, numpy for host buffers),
    valid until the next iteration. ``work_bytes``: what the caller computes per sample
    from one chunk (for the chunk size). ``threaded``: fill samples in a thread pool on
    CPU (worth it only for large draws, see ``POOL_MIN_ELEMENTS``).
    """
    cpu = device.type == "cpu"
    draw_bytes = sum(b.nbytes() for b in buffers.values())
    chunk, double = plan_chunks(n_samples, draw_bytes, work_bytes, max_chunk_bytes,
                                overlap=OVERLAP and cpu)
    starts = list(range(0, n_samples, chunk))

    def new_set() -> tuple[dict[str, Any], dict[str, Any]]:
        """(what fill writes into, what is yielded): the same memory."""
        writable, tensors = {}, {}
        for name, b in buffers.items():
            if b.host:
                arr = np.empty((chunk, *b.shape), dtype=b.dtype)
                writable[name] = tensors[name] = arr
            else:
                t = torch.empty((chunk, *b.shape), dtype=b.dtype, device=device)
                tensors[name] = t
                writable[name] = t.numpy() if cpu else t
        return writable, tensors

    sets = [new_set() for _ in range(2 if double else 1)]
    workers = n_workers(chunk) if threaded and cpu else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def launch(c: int) -> list[Future]:
            start = starts[c]
            writable = sets[c % len(sets)][0]
            k = min(chunk, n_samples - start)
            if workers == 1:  # also every non-CPU device: torch draws, in order
                for j in range(k):
                    fill(writable, j, start + j)
                return []
            return [pool.submit(fill, writable, j, start + j) for j in range(k)]

        pending = launch(0)
        for c, start in enumerate(starts):
            for fut in pending:
                fut.result()  # wait, re-raising any error from a draw
            k = min(chunk, n_samples - start)
            arrays = {name: t[:k] for name, t in sets[c % len(sets)][1].items()}
            more = c + 1 < len(starts)
            if double and more:  # draw the next chunk into the other buffer meanwhile
                pending = launch(c + 1)
            yield start, arrays
            del arrays
            if not double and more:  # one buffer: refill only once the caller is done
                pending = launch(c + 1)

"""Backend plumbing shared by the simulators: argument checks for device/dtype, the
per-sample random draws (numpy on CPU, torch elsewhere) and the thread pool."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from alignlab._rng import Streams

__all__ = [
    "POOL_MIN_ELEMENTS",
    "Draw",
    "check_device",
    "check_dtype",
    "draw_for",
    "n_workers",
    "run_parallel",
]

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
# Draw in threads only when one sample has this many entries (~0.1 ms of GIL-free work);
# smaller draws spend most of their time in Python and the task overhead.
POOL_MIN_ELEMENTS = 2**16


def check_dtype(dtype: Any) -> torch.dtype:
    """torch.float32 or torch.float64 (also accepts the strings 'float32'/'float64')."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be torch.float32 or torch.float64, got {dtype!r}.")
    return dtype


def check_device(device: Any) -> torch.device:
    """A torch.device (or its string); CUDA must be available if asked for."""
    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError, ValueError):
        raise ValueError(f"`device` must be a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` must be an available device, got {device!r} "
                         "(torch.cuda.is_available() is False).")
    return dev


class Draw:
    """Elementary random draws into one sample's array, from one stream.

    ``out`` is a numpy array (CPU backend, ``gen`` a numpy Generator) or a torch tensor
    (device backend, ``gen`` a torch.Generator). Every ensemble is written with these
    few operations so the two backends share its definition.
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

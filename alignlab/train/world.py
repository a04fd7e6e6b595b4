"""Which process this is among the processes of one run, and what they share.

One process by default. Under ``torchrun --nproc-per-node=N -m alignlab train CONFIG``
every process reads its :class:`World` from the environment torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): the loop then

* joins the process group (``torch.distributed``, backend ``gloo`` on the CPU, ``nccl``
  on CUDA, each rank on ``cuda:LOCAL_RANK``);
* seeds every rank identically (model, feedback, batch order: :meth:`check_identical`
  verifies that the ranks start, and stay, bit-identical);
* splits each global batch (``train.batch_size`` examples, drawn as one process draws
  them) into contiguous shards, one per rank (:meth:`shard`), so the run follows the
  trajectory of one process with the same global batch;
* lets only the main rank (0) write the run directory, evaluate and print.

A single-process :class:`World` does nothing: every collective is the identity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["World"]

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """``rank`` of ``world_size`` processes (the default: a single process).

    ``local_rank`` is the rank among the processes of this node (its CUDA device).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self):
        for name in ("rank", "world_size", "local_rank"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}.")
        if not self.rank < self.world_size:
            raise ValueError(f"`rank` must be < world_size = {self.world_size}, got "
                             f"{self.rank}.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World:
        """The world torchrun (or any launcher setting ``RANK``/``WORLD_SIZE``) describes;
        a single process when ``WORLD_SIZE`` is unset."""
        env = os.environ if environ is None else environ

        def read(name: str, default: int) -> int:
            text = env.get(name)
            if text is None or text == "":
                return default
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"`{name}` (environment) must be an integer, got "
                                 f"{text!r}.") from None

        size = read("WORLD_SIZE", 1)
        return cls(rank=read("RANK", 0), world_size=size,
                   local_rank=read("LOCAL_RANK", read("RANK", 0) if size > 1 else 0))

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    # ---- the process group
    def device(self, device):
        """The device this rank trains on: ``cuda:LOCAL_RANK`` when the run asked for CUDA
        in a distributed run, else ``device`` itself (a ``torch.device``)."""
        import torch

        if self.distributed and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def init(self, device) -> bool:
        """Join the process group (``env://``: ``MASTER_ADDR``, ``MASTER_PORT``) unless
        this is a single process or the group exists already; returns whether it created
        the group (then :meth:`close` it when done)."""
        if not self.distributed:
            return False
        import torch
        import torch.distributed as dist

        if dist.is_initialized():
            if dist.get_world_size() != self.world_size or dist.get_rank() != self.rank:
                raise ValueError(f"`world` must match the existing process group (rank "
                                 f"{dist.get_rank()} of {dist.get_world_size()}), got rank "
                                 f"{self.rank} of {self.world_size}.")
            return False
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
        if missing:
            raise ValueError(f"`{missing[0]}` (environment) must be set for a distributed run "
                             "(torchrun sets it), got nothing.")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=self.rank, world_size=self.world_size)
        return True

    def close(self) -> None:
        """Leave the process group (after :meth:`init` returned True)."""
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    # ---- collectives (the identity for one process)
    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def all_reduce_sum(self, tensor):
        """Sum ``tensor`` over the ranks, in place; returns it."""
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, obj: T) -> T:
        """The main rank's ``obj`` on every rank (picklable objects)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on the main rank only; its result, or the ``ValueError`` it raised,
        on every rank (checks of the run directory, which only the main rank sees)."""
        if not self.distributed:
            return fn()
        outcome: tuple[str, Any] = ("ok", None)
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except ValueError as exc:
                outcome = ("bad", str(exc))
            except BaseException as exc:  # the other ranks must not wait for ever
                self.broadcast_object(("crash", f"{type(exc).__name__}: {exc}"))
                raise
        kind, value = self.broadcast_object(outcome)
        if kind == "bad":
            raise ValueError(value)
        if kind == "crash":
            raise RuntimeError(f"the main rank failed: {value}")
        return value

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (sizes differ by at most one)."""
        return slice(n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size)

    def check_identical(self, named: Mapping[str, Any], what: str) -> None:
        """Raise ``RuntimeError`` unless every tensor (and Python value) in ``named`` is
        bit-identical on every rank: the main rank's copies are broadcast and compared
        (one model's worth of traffic; the loop does it once per epoch)."""
        if not self.distributed:
            return
        import torch
        import torch.distributed as dist

        bad = []
        for name, value in named.items():
            if isinstance(value, torch.Tensor):
                theirs = value.detach().clone()
                dist.broadcast(theirs, src=0)
                same = torch.equal(theirs, value.detach())
            else:
                same = self.broadcast_object(value) == value
            if not same:
                bad.append(name)
        flag = torch.tensor([len(bad)], dtype=torch.int64,
                            device=_collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if int(flag) or bad:
            mine = f"; on rank {self.rank}: {', '.join(bad[:5])}" if bad else ""
            raise RuntimeError(f"{what} differ between ranks{mine} (the ranks must be seeded "
                               "identically and step identically).")


def _collective_device():
    """The device the default group's tensors live on (CUDA for nccl)."""
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")

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

Beside it, what the training loop needs for a distributed run: :func:`check_shards` (every
rank gets examples from every batch), :func:`shared_state` (what must stay identical on
every rank) and :func:`wrap_ddp` (the model in DistributedDataParallel). torch is imported
inside the functions.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["World", "check_shards", "shared_state", "wrap_ddp"]

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


# ---------------------------------------------------------------------------------------
# the training loop's distributed helpers


def check_shards(n_train: int, batch_size: int, drop_last: bool, world_size: int) -> None:
    """Every global batch must give every rank at least one example."""
    last = 0 if drop_last else n_train % batch_size
    if batch_size < world_size or 0 < last < world_size:
        raise ValueError(
            f"`train.batch_size` must split into {world_size} non-empty shards (one per rank) "
            f"for every batch, got batch_size = {batch_size} with a last batch of {last} "
            "examples (set train.drop_last = true or change data.limit).")


def shared_state(model) -> dict[str, Any]:
    """What must be identical on every rank of a distributed run: the parameters, the
    converted layers' feedback state (buffers such as fixed ``B``; BatchNorm's running
    statistics are per rank, as in any DDP run) and their Python scalars (factored PFA's
    ``(c, u)``)."""
    from ..nn import converted_layers

    out: dict[str, Any] = dict(model.named_parameters())
    for name, layer in converted_layers(model):
        for bname, buf in layer.named_buffers(recurse=False):
            if buf is not None:
                out[f"{name}.{bname}"] = buf
        scalars = layer.method.scalar_state(layer)
        if scalars:
            out[f"{name}.<scalars>"] = scalars
    return out


def wrap_ddp(model, device):
    """``model`` wrapped in DistributedDataParallel.

    * ``init_sync=False``: the ranks built identical models (checked by the caller), so
      nothing is broadcast (a broadcast would rewrite factored PFA's ``W`` behind its hook);
    * no buffer sync (``forward_sync_buffers=False``): fixed feedback is identical by
      construction and checked every epoch; re-broadcasting it every forward pass would
      cost a model's worth of traffic per step (BatchNorm statistics stay per rank);
    * feedback learned outside the backward pass (``Method.mirror_trained``: the weight
      mirror) gets no gradient: DDP is told to ignore it, and every rank applies the same
      mirror step (same generator, same ``W``).

    The wrapper calls ``model`` itself, so hooks on the model's root (DFA's output-error
    capture) run as in one process; factored PFA's step hooks live on the optimiser, which
    steps once per global batch on every rank.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    from ..nn import converted_layers

    outside = {id(p) for _, layer in converted_layers(model) if layer.method.mirror_trained
               for p in layer.feedback_parameters()}
    ignore = [name for name, p in model.named_parameters() if id(p) in outside]
    if ignore:
        DDP._set_params_and_buffers_to_ignore_for_model(model, ignore)
    ids = [device.index] if device.type == "cuda" else None
    # torch 2.13 renamed broadcast_buffers; with init_sync=False neither syncs at init
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in
               inspect.signature(DDP.__init__).parameters else "broadcast_buffers")
    return DDP(model, device_ids=ids, init_sync=False, **{no_sync: False})
